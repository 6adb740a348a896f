"""``auc_drop`` and ``slo_roc_auc``: the ROC AUC of a window of (score + 2 x label) values.

A binary classifier's ``__roc_auc__`` channel holds score + 2 x label per labelled prediction
(score: the predicted probability of the positive class, in [0, 1]; label: 1 for the positive
class, else 0), so a value of at least 1.5 is a positive with score value - 2, any other a
negative with that score. The window's ROC AUC is the Mann-Whitney statistic: the share of
(positive, negative) pairs whose positive has the higher score, ties counting one half, computed
exactly from average ranks.

``auc_drop`` breaches when the window's AUC is below the reference's by at least ``threshold``
and a one-sided z-test (Hanley and McNeil's standard error of each AUC) gives a p-value of at
most ``max_p_value``; its statistic is the window's AUC, its threshold the reference's AUC minus
``threshold``.

>>> import numpy as np
>>> roc_auc(np.array([2.9, 2.4, 0.6, 0.1]))  # positives 0.9, 0.4; negatives 0.6, 0.1
0.75
>>> roc_auc(np.array([2.5, 0.5])), roc_auc(np.array([0.2, 0.3])) is None
(0.5, True)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from stream_monitor.core.detectors.base import Evaluation, WindowDetector, WindowView, severity_of

if TYPE_CHECKING:
    from stream_monitor.core.reference import Reference
    from stream_monitor.core.settings import AucDropParams, SloShareParams


def _split(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a key that orders the scores, whether positive): score + 2 for both classes.

    A positive's stored value is score + 2 rounded to the [2, 3] float grid; a negative's score
    goes through the same rounding, so a positive and a negative with one score stay tied.
    """
    v = np.asarray(values, dtype=np.float64)
    positive = v >= 1.5
    return np.where(positive, v, v + 2.0), positive


def roc_auc(values: np.ndarray) -> float | None:
    """The ROC AUC of score + 2 x label values (``None`` without both a positive and a negative)."""
    scores, positive = _split(values)
    n1 = int(np.count_nonzero(positive))
    n0 = int(scores.size) - n1
    if n1 == 0 or n0 == 0:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]  # 1-based average ranks
    u = float(ranks[positive].sum()) - n1 * (n1 + 1) / 2.0
    return u / (n1 * n0)


def auc_variance(auc: float, values: np.ndarray) -> float:
    """Hanley and McNeil's variance of an AUC estimated from ``values`` (score + 2 x label).

    >>> round(auc_variance(0.8, np.array([2.9] * 50 + [0.1] * 50)), 6)
    0.00198
    """
    n1 = int(np.count_nonzero(np.asarray(values) >= 1.5))
    n0 = int(np.asarray(values).size) - n1
    if n1 == 0 or n0 == 0:
        return math.inf
    q1, q2 = auc / (2.0 - auc), 2.0 * auc * auc / (1.0 + auc)
    return max(auc * (1.0 - auc) + (n1 - 1) * (q1 - auc * auc) + (n0 - 1) * (q2 - auc * auc), 0.0) / (n1 * n0)


class AucDropDetector(WindowDetector):
    """The window's ROC AUC against the reference's: a significant fall of at least ``threshold``."""

    name = "auc_drop"

    def __init__(self, params: AucDropParams, reference: Reference) -> None:
        super().__init__(params)
        self.sample = getattr(reference, "sorted_sample", np.empty(0))
        self.reference_auc = roc_auc(self.sample)
        self.reference_var = auc_variance(self.reference_auc, self.sample) if self.reference_auc is not None else math.inf

    def evaluate(self, window: WindowView) -> Evaluation | None:
        """The window's AUC; a breach when it fell by ``threshold`` or more with p <= ``max_p_value``."""
        value = roc_auc(window.values)
        if value is None or self.reference_auc is None:
            return None
        drop = self.reference_auc - value
        se = math.sqrt(self.reference_var + auc_variance(value, window.values))
        p_value = 0.5 * math.erfc(drop / se / math.sqrt(2.0)) if se > 0 else (0.0 if drop > 0 else 1.0)
        limit = self.reference_auc - (self.params.threshold or 0.0)
        breached = value <= limit and p_value <= self.params.max_p_value  # type: ignore[attr-defined]
        return Evaluation(value, limit, p_value, breached, severity_of(self.params, drop))


class SloRocAucDetector(WindowDetector):
    """Service level: the window's ROC AUC against ``min``."""

    name = "slo_roc_auc"

    def __init__(self, params: SloShareParams, reference: Reference) -> None:
        super().__init__(params)

    def evaluate(self, window: WindowView) -> Evaluation | None:
        """The window's AUC; a breach below ``min``."""
        value = roc_auc(window.values)
        minimum = self.params.min  # type: ignore[attr-defined]
        if value is None or minimum is None:
            return None
        return Evaluation(value, minimum, None, value < minimum, self.params.severity)


def build_auc_drop(params: AucDropParams, reference: Reference) -> AucDropDetector:
    """Registry factory of ``auc_drop``."""
    return AucDropDetector(params, reference)
