"""The performance channels beyond the error stream: recall, precision, log loss, calibration, bias, cost.

:meth:`stream_monitor.core.model_monitor.ModelMonitor.performance` reads a labelled prediction's
score and class and feeds ``__error__`` and ``__error_rate__`` / ``__abs_error__``; the values
here follow, one list per labelled prediction, in channel order:

- classification: ``__recall__`` (on rows whose label is the positive class: 1 when predicted
  positive, else 0) and ``__precision__`` (on rows predicted positive: 1 when the label is
  positive). These are 0/1 success streams, so the rate detectors and SLOs apply (watching falls).
  ``__f1__`` follows on rows that are a true positive, a false positive or a false negative (1
  for a true positive, else 0; true negatives give nothing): its share J = TP / (TP + FP + FN)
  rises and falls with F1 = 2J / (1 + J), which the SLO and the evidence read from the window.
  A binary model's positive class is ``positive_class`` (1 / ``True`` when unset); a multiclass
  model gets them, one class against the rest, only for a configured ``positive_class``;
- binary with a score in [0, 1] (the probability of the positive class): ``__log_loss__``,
  -log p(label) with p clipped to [1e-6, 1] (so one row costs at most 13.8), and
  ``__calibration__``, score - label (the label as 0/1): its window mean is the
  calibration-in-the-large and its window gives the binned expected calibration error
  (:func:`stream_monitor.core.detectors.calibration.ece`); ``__roc_auc__``, score + 2 x label
  (a negative's value is its score, a positive's its score + 2), from which the window's ROC AUC is
  read (:func:`stream_monitor.core.detectors.auc.roc_auc`). One such value says nothing alone (no
  change-point detector reads it); only window detectors watch that channel;
- multiclass, per class (:func:`per_class_values`): ``__recall__.<class>``,
  ``__precision__.<class>`` and ``__f1__.<class>``, the same 0/1 streams with that class as the
  positive one (one class against the rest), for the classes the model tracks;
- regression: ``__signed_error__``, prediction - label (its mean is the bias);
- with a cost model (``cost``): ``__cost__``, the cost of each labelled prediction
  (:func:`classification_cost`, :func:`regression_cost`); its window mean x 1,000 is the cost
  per 1,000 predictions.

>>> [(name, round(v, 6)) for name, v in classification_values("binary", 0.8, None, 1, None)]
[('__recall__', 1.0), ('__precision__', 1.0), ('__f1__', 1.0), ('__log_loss__', 0.223144), ('__calibration__', -0.2), ('__roc_auc__', 2.8)]
>>> [(name, round(v, 6)) for name, v in classification_values("binary", 0.3, None, 0, None)]
[('__log_loss__', 0.356675), ('__calibration__', 0.3), ('__roc_auc__', 0.3)]
>>> classification_values("multiclass", None, "cat", "cat", "cat")
[('__recall__', 1.0), ('__precision__', 1.0), ('__f1__', 1.0)]
"""

from __future__ import annotations

import math
from typing import Any

from stream_monitor.core.reference import bounded_category
from stream_monitor.core.spec import CALIBRATION, F1, LOG_LOSS, PRECISION, RECALL, ROC_AUC, SIGNED_ERROR, CostSpec, class_text, per_class_channel

CLASS_TEXT_MAX = 64
"""Characters of a class name in a per-class channel's name (longer: cut, with a hash suffix)."""
PROBA_FLOOR = 1e-6
"""The smallest probability a log loss takes (a confident miss costs at most -log(1e-6) = 13.8)."""


def number(x: Any) -> float | None:
    """A finite number as a float (``True`` is 1.0), else ``None``.

    >>> number(True), number(3), number("3"), number(float("nan"))
    (1.0, 3.0, None, None)
    """
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, int | float) and math.isfinite(x):
        return float(x)
    return None


def is_positive(value: Any, positive: Any) -> bool:
    """Whether a class (a label or a predicted class) is the positive class (1 / ``True`` when ``positive`` is None).

    Numbers (and booleans) compare by value, anything else by its text.

    >>> is_positive(True, None), is_positive(1.0, None), is_positive("yes", "yes"), is_positive(0, None)
    (True, True, True, False)
    """
    if positive is None:
        positive = 1
    a, b = number(value), number(positive)
    if a is not None and b is not None:
        return a == b
    return str(value) == str(positive)


def _proba(score: Any) -> float | None:
    s = number(score)
    return s if s is not None and 0.0 <= s <= 1.0 else None


def probability(score: Any) -> float | None:
    """A score as a probability: a number in [0, 1], else ``None``.

    >>> probability(0.25), probability(1.5), probability("0.2")
    (0.25, None, None)
    """
    return _proba(score)


def predicted_positive(task: str, score: Any, klass: Any, positive: Any) -> bool | None:
    """Whether a prediction is the positive class: its class output, else (binary) its score cut at 0.5.

    ``None`` when that cannot be told (a multiclass model without a configured positive class).

    >>> predicted_positive("binary", 0.7, None, None), predicted_positive("multiclass", None, "cat", None)
    (True, None)
    """
    if task != "binary" and positive is None:
        return None
    if klass is not None:
        return is_positive(klass, positive)
    proba = _proba(score)
    return proba >= 0.5 if proba is not None and task == "binary" else None


def classification_values(task: str, score: Any, klass: Any, label: Any, positive: Any) -> list[tuple[str, float]]:
    """The recall, precision, F1, log loss, calibration and ROC AUC values of one labelled classification.

    ``klass`` is the predicted class (``None``: a binary score, cut at 0.5, decides).
    """
    out: list[tuple[str, float]] = []
    proba = _proba(score)
    predicted = predicted_positive(task, score, klass, positive)
    if predicted is not None:
        actual = is_positive(label, positive)
        if actual:
            out.append((RECALL, 1.0 if predicted else 0.0))
        if predicted:
            out.append((PRECISION, 1.0 if actual else 0.0))
        if actual or predicted:
            out.append((F1, 1.0 if actual and predicted else 0.0))
    if task == "binary" and proba is not None:
        y = 1.0 if is_positive(label, positive) else 0.0
        p = proba if y else 1.0 - proba
        out.append((LOG_LOSS, -math.log(max(p, PROBA_FLOOR))))
        out.append((CALIBRATION, proba - y))
        out.append((ROC_AUC, proba + 2.0 * y))
    return out


def class_name(x: Any) -> str:
    """A class as it appears in a per-class channel's name: :func:`class_text`, cut to :data:`CLASS_TEXT_MAX` characters.

    >>> class_name(3.0), class_name("fraud")
    ('3', 'fraud')
    """
    return bounded_category(class_text(x), CLASS_TEXT_MAX)


def class_probabilities(prediction: dict[str, Any], prefix: str) -> dict[str, float]:
    """A multiclass prediction's per-class probabilities: the outputs named ``<prefix><class>`` with a value in [0, 1].

    >>> class_probabilities({"y_pred": "a", "proba_a": 0.7, "proba_b": 0.3, "proba_c": "x"}, "proba_")
    {'a': 0.7, 'b': 0.3}
    """
    n = len(prefix)
    out: dict[str, float] = {}
    for key, value in prediction.items():
        if len(key) > n and key.startswith(prefix):
            p = _proba(value)
            if p is not None:
                out[bounded_category(key[n:], CLASS_TEXT_MAX)] = p
    return out


def per_class_values(predicted: str, label: str, tracked: Any) -> list[tuple[str, float]]:
    """The per-class recall, precision and F1 values of one labelled multiclass prediction (classes as text).

    The label's class gets a recall value (1 when predicted) and an F1 value (1 for a true
    positive, 0 for a false negative); the predicted class, when it differs, a precision value of
    0 and an F1 value of 0 (a false positive); a right prediction a precision value of 1. Only
    classes in ``tracked`` get values.

    >>> per_class_values("cat", "cat", {"cat", "dog"})
    [('__recall__.cat', 1.0), ('__precision__.cat', 1.0), ('__f1__.cat', 1.0)]
    >>> per_class_values("dog", "cat", {"cat", "dog"})
    [('__recall__.cat', 0.0), ('__f1__.cat', 0.0), ('__precision__.dog', 0.0), ('__f1__.dog', 0.0)]
    >>> per_class_values("dog", "cat", {"dog"})
    [('__precision__.dog', 0.0), ('__f1__.dog', 0.0)]
    """
    out: list[tuple[str, float]] = []
    hit = 1.0 if predicted == label else 0.0
    if label in tracked:
        out.append((per_class_channel(RECALL, label), hit))
        if hit:
            out.append((per_class_channel(PRECISION, label), 1.0))
        out.append((per_class_channel(F1, label), hit))
    if not hit and predicted in tracked:
        out.append((per_class_channel(PRECISION, predicted), 0.0))
        out.append((per_class_channel(F1, predicted), 0.0))
    return out


def classes_from_state(obj: Any) -> tuple[list[str], int]:
    """A model item's ``classes`` field, ``{tracked: [distinct str], untracked: int >= 0}``, as (tracked, untracked).

    >>> classes_from_state({"tracked": ["a", "b"], "untracked": 3})
    (['a', 'b'], 3)
    >>> classes_from_state({"tracked": ["a", "a"], "untracked": 0})
    Traceback (most recent call last):
    ...
    ValueError: not a {tracked: [distinct class names], untracked: count} map
    """
    ok = isinstance(obj, dict) and set(obj) == {"tracked", "untracked"}
    tracked, untracked = (obj["tracked"], obj["untracked"]) if ok else (None, None)
    ok = ok and isinstance(tracked, list) and all(type(k) is str for k in tracked) and len(set(tracked)) == len(tracked)
    if not ok or type(untracked) is not int or untracked < 0:
        raise ValueError("not a {tracked: [distinct class names], untracked: count} map")
    return list(tracked), untracked


def regression_values(predicted: float, label: float) -> list[tuple[str, float]]:
    """The signed error (prediction - label) of one labelled regression.

    >>> regression_values(12.5, 10.0)
    [('__signed_error__', 2.5)]
    """
    return [(SIGNED_ERROR, predicted - label)]


def classification_cost(cost: CostSpec, predicted: Any, positive_predicted: bool | None, label: Any, positive: Any) -> float | None:
    """The cost of one labelled classification: a false positive's or false negative's, or the matrix cell.

    >>> c = CostSpec(false_positive=5, false_negative=120)
    >>> classification_cost(c, 1, True, 0, None), classification_cost(c, 0, False, 1, None), classification_cost(c, 1, True, 1, None)
    (5.0, 120.0, 0.0)
    >>> classification_cost(CostSpec(matrix={"cat": {"dog": 3}}), "dog", None, "cat", None)
    3.0
    """
    family = cost.family
    if family == "binary":
        if positive_predicted is None:
            return None
        actual = is_positive(label, positive)
        if positive_predicted and not actual:
            return float(cost.false_positive or 0.0)
        if actual and not positive_predicted:
            return float(cost.false_negative or 0.0)
        return 0.0
    if family == "matrix" and cost.matrix is not None:
        return float(cost.matrix.get(class_text(label), {}).get(class_text(predicted), 0.0))
    return None


def regression_cost(cost: CostSpec, predicted: float, label: float) -> float | None:
    """The cost of one labelled regression: ``per_unit`` x |error|, or ``over_per_unit`` / ``under_per_unit`` x the excess.

    >>> regression_cost(CostSpec(per_unit=2), 12.0, 10.0), regression_cost(CostSpec(over_per_unit=1, under_per_unit=4), 9.0, 10.0)
    (4.0, 4.0)
    """
    error = predicted - label
    if cost.per_unit is not None:
        return cost.per_unit * abs(error)
    if cost.family == "asymmetric":
        return (cost.over_per_unit or 0.0) * max(error, 0.0) + (cost.under_per_unit or 0.0) * max(-error, 0.0)
    return None
