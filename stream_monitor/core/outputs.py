"""What a prediction's outputs are: which is the score and which the class, the task they imply, and the errors.

A dict prediction is read through its score and class outputs (:func:`resolve_outputs`); a model's
task is configured or inferred from its first labelled prediction (:func:`infer_task`).
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple

from stream_monitor.core import performance as perf
from stream_monitor.core.spec import Task

SCORE_NAMES = ("y_pred_proba", "proba", "probability", "score", "y_score")
"""Output names taken for the probability / score of a dict prediction."""
CLASS_NAMES = ("y_pred", "label", "class", "predicted_class")
"""Output names taken for the predicted class of a dict prediction."""


class Outputs(NamedTuple):
    """Which outputs of a dict prediction are the score and the class (``None``: not known)."""

    score: str | None
    klass: str | None
    ambiguous: bool = False


def resolve_outputs(keys: Iterable[str], score_output: str | None = None, class_output: str | None = None) -> Outputs:
    """The score and class outputs among a dict prediction's ``keys``.

    A configured name wins. Otherwise an output is taken when exactly one key is a known score
    name (:data:`SCORE_NAMES`) or class name (:data:`CLASS_NAMES`); a dict with one key only is
    that output whatever its name (its value decides: a float is a score, anything else a class).
    ``ambiguous`` is set when neither is configured or recognised, or when several keys match.

    >>> resolve_outputs(["proba", "label"])
    Outputs(score='proba', klass='label', ambiguous=False)
    >>> resolve_outputs(["a", "b"])
    Outputs(score=None, klass=None, ambiguous=True)
    >>> resolve_outputs(["a", "b"], class_output="b")
    Outputs(score=None, klass='b', ambiguous=False)
    """
    keys = list(keys)
    if score_output or class_output:
        return Outputs(score_output, class_output)
    scores = [k for k in keys if k in SCORE_NAMES]
    classes = [k for k in keys if k in CLASS_NAMES]
    score = scores[0] if len(scores) == 1 else None
    klass = classes[0] if len(classes) == 1 else None
    ambiguous = len(scores) > 1 or len(classes) > 1 or (score is None and klass is None and len(keys) != 1)
    return Outputs(score, klass, ambiguous)


_number = perf.number


def infer_task(score: Any, klass: Any, label: Any) -> Task:
    """The task a first (score, class, label) triple implies, when the config does not say.

    - a ``bool`` label is ``binary``; a ``str`` label ``multiclass`` (two string classes are
      told apart only by config);
    - a numeric label with a class prediction (a dict's class output, or a scalar ``str``,
      ``bool`` or integral number with an integral label) is a classification: ``binary`` when
      label and class are in {0, 1}, else ``multiclass``;
    - a label in {0, 1} with only a score in [0, 1] is ``binary`` (the score is a probability);
    - anything else is ``regression``.

    >>> infer_task(None, True, False), infer_task(None, "cat", "dog"), infer_task(0.8, None, 1)
    ('binary', 'multiclass', 'binary')
    >>> infer_task(None, 3, 3), infer_task(12.5, None, 11.0), infer_task(None, 12.0, 11.5)
    ('multiclass', 'regression', 'regression')
    """
    if isinstance(label, bool):
        return "binary"
    if isinstance(label, str):
        return "multiclass"
    lab = _number(label)
    if klass is not None:
        if isinstance(klass, str):
            return "multiclass"
        k = _number(klass)
        if k is not None and lab is not None and k.is_integer() and lab.is_integer():
            return "binary" if {k, lab} <= {0.0, 1.0} else "multiclass"
        if isinstance(klass, bool):
            return "binary"
    s = _number(score)
    if lab in (0.0, 1.0) and s is not None and 0.0 <= s <= 1.0 and klass is None:
        return "binary"
    return "regression"


def legacy_error(prediction: Any, label: Any) -> float | None:
    """The ``__error__`` value: |prediction - label| for numbers, 0/1 mismatch for classes.

    >>> legacy_error(0.9, 1), legacy_error("a", "b"), legacy_error(True, 1)
    (0.09999999999999998, 1.0, 0.0)
    """
    if prediction is None:
        return None
    if isinstance(prediction, bool):
        prediction = int(prediction)
    if isinstance(label, bool):
        label = int(label)
    if isinstance(prediction, int | float) and isinstance(label, int | float):
        return abs(float(prediction) - float(label))
    return 0.0 if str(prediction) == str(label) else 1.0


def class_error(predicted: Any, label: Any) -> float:
    """1.0 when the predicted class differs from the label, else 0.0 (``True`` is 1, numbers compare by value).

    >>> class_error(1, True), class_error("a", "b"), class_error(1.0, 1)
    (0.0, 1.0, 0.0)
    """
    p, lab = _number(predicted), _number(label)
    if p is not None and lab is not None:
        return 0.0 if p == lab else 1.0
    return 0.0 if str(predicted) == str(label) else 1.0
