"""What a prediction's outputs are: which is the score and which the class, the task they imply, and the errors.

A dict prediction is read through its score and class outputs (:func:`resolve_outputs`); a model's
task is configured or inferred from its first labelled prediction (:func:`infer_task`).
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple, Sequence

from stream_monitor.core import performance as perf
from stream_monitor.core.spec import PREDICTION, ModelSpec, Task

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


# ------------------------------------------------------------------- baseline channel names
_OUTPUT_PREFIX = PREDICTION + "."


def is_prediction_channel(name: str) -> bool:
    """``__prediction__`` (a scalar prediction) or ``__prediction__.<output>`` (an output of an object prediction)."""
    return name == PREDICTION or name.startswith(_OUTPUT_PREFIX)


def configured_prediction_channels(spec: ModelSpec | None) -> list[str]:
    """The prediction channels a model's config says it produces: one per named output (none when no output is named).

    >>> configured_prediction_channels(ModelSpec(score_output="proba", class_output="label"))
    ['__prediction__.proba', '__prediction__.label']
    """
    if spec is None:
        return []
    return [f"{PREDICTION}.{o}" for o in dict.fromkeys((spec.score_output, spec.class_output)) if o]


def prediction_columns(columns: str | Sequence[str] | None, spec: ModelSpec | None = None) -> dict[str, str | None]:
    """Which training-data column feeds which prediction channel (``baseline --prediction-column``): column -> output.

    ``COLUMN`` is a scalar prediction (output ``None``: channel ``__prediction__``), unless the
    model's config names its outputs (``score_output`` / ``class_output``): its live predictions
    are then objects, and ``COLUMN`` must be one of those outputs (channel
    ``__prediction__.<COLUMN>``). ``OUTPUT=COLUMN`` (repeatable) says that the column holds output
    ``OUTPUT`` of an object prediction (channel ``__prediction__.<OUTPUT>``), as ``run`` names it.
    ``ValueError`` says what is wrong.

    >>> prediction_columns("p"), prediction_columns(["proba=p", "label=y"])
    ({'p': None}, {'p': 'proba', 'y': 'label'})
    >>> prediction_columns("proba", ModelSpec(score_output="proba"))
    {'proba': 'proba'}
    """
    if columns is None:
        return {}
    items = [columns] if isinstance(columns, str) else list(columns)
    out: dict[str, str | None] = {}
    for item in items:
        output, eq, column = item.partition("=")
        if not eq:
            output, column = None, item  # type: ignore[assignment]
        if not column or (eq and not output):
            raise ValueError(f"--prediction-column {item!r}: expected COLUMN or OUTPUT=COLUMN")
        if column in out:
            raise ValueError(f"--prediction-column: column {column!r} is given twice")
        out[column] = output or None
    plain = [c for c, o in out.items() if o is None]
    if plain and len(out) > 1:
        raise ValueError("--prediction-column: give one COLUMN (a scalar prediction) or OUTPUT=COLUMN pairs (an object prediction's outputs), not both")
    named = configured_prediction_channels(spec)
    if plain and named:
        outputs = [n[len(_OUTPUT_PREFIX) :] for n in named]
        if plain[0] not in outputs:
            raise ValueError(
                f"--prediction-column {plain[0]!r}: the model's config names its outputs ({', '.join(map(repr, outputs))}), so its live "
                f"prediction channels are {', '.join(named)}; say which output the column holds: --prediction-column {outputs[0]}={plain[0]}"
            )
        out = {plain[0]: plain[0]}
    outputs_given = [o for o in out.values() if o is not None]
    if len(set(outputs_given)) < len(outputs_given):
        raise ValueError("--prediction-column: an output is given twice")
    return out


def prediction_mismatch(profile: Iterable[str], live: Iterable[str], complete: bool) -> tuple[list[str], list[str]]:
    """(live prediction channels without a profile entry, profile prediction channels that match no live one).

    Nothing when the profile has no prediction channel or ``live`` is empty. ``complete``: ``live``
    is every prediction channel the model produces (seen in a sample); otherwise only named ones
    (the config), and only the profile's ``__prediction__`` can be said to match nothing (the
    model's predictions are objects).

    >>> prediction_mismatch(["x", "__prediction__"], ["__prediction__.proba"], complete=False)
    (['__prediction__.proba'], ['__prediction__'])
    >>> prediction_mismatch(["__prediction__.proba", "__prediction__.extra"], ["__prediction__.proba"], complete=False)
    ([], [])
    """
    have = [n for n in profile if is_prediction_channel(n)]
    want = list(dict.fromkeys(live))
    if not have or not want:
        return [], []
    missing = [n for n in want if n not in have]
    unmatched = [n for n in have if n not in want and (complete or n == PREDICTION)]
    return missing, unmatched


def mismatch_text(model: str, missing: Sequence[str], unmatched: Sequence[str], profile: Iterable[str], source: str) -> str:
    """A warning naming both sides of a prediction channel mismatch between a baseline profile and what a model produces."""
    have = sorted(n for n in profile if is_prediction_channel(n))
    parts = []
    if unmatched:
        parts.append(f"baseline channel {', '.join(unmatched)} matches no prediction channel of model {model!r} ({source})")
    if missing:
        parts.append(f"prediction channel {', '.join(missing)} has no entry in the profile (it has {', '.join(have)}) and starts from a warm-up")
    return "; ".join(parts) + (
        "; build the profile with --prediction-column OUTPUT=COLUMN for each output of an object prediction "
        "(or from inference events), so that it uses the channel names run uses"
    )
