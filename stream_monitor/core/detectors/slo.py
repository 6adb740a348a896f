"""Service-level checks in the metric's own units, evaluated on the channel's window.

``slo_accuracy`` and ``slo_error_rate`` watch a 0/1 error channel (``__error_rate__``; a value of
at least 0.5 counts as an error), or with ``expected`` set an expected-error channel
(``__estimated_error_rate__``: the error rate is the window's mean), ``slo_mae`` an
absolute-error channel (``__abs_error__``), ``slo_recall`` and ``slo_precision`` a 0/1 success
channel (``__recall__``, ``__precision__``: the window's share of 1s against a minimum), or with
``expected`` set ``slo_precision`` an expected-hit channel (``__estimated_precision__``: the
precision is the window's mean),
``slo_f1`` the F1 channel (``__f1__``: 2J / (1 + J) from the window's share J of true positives
among true positives, false positives and false negatives, against a minimum), ``slo_log_loss``
the per-row log loss (``__log_loss__``: the window's mean against a maximum). The
statistic is the window's metric (accuracy, error rate, mean absolute error) and the threshold
the level it must respect, so an alert reads "accuracy 0.89 < 0.92". A check whose limits are
all unset never breaches.

>>> import numpy as np
>>> from stream_monitor.core.reference import NumericReference
>>> from stream_monitor.core.settings import SloAccuracyParams, SloErrorRateParams
>>> from stream_monitor.core.detectors.base import WindowView
>>> ref = NumericReference.from_values(np.array([0.0] * 90 + [1.0] * 10), 0, 0, "warmup")
>>> view = WindowView(np.array([0.0] * 85 + [1.0] * 15), np.zeros(100, dtype=np.uint8))
>>> SloAccuracyDetector(SloAccuracyParams(min=0.9), ref).evaluate(view)[:4]
(0.85, 0.9, None, True)
>>> ev = SloErrorRateDetector(SloErrorRateParams(max_relative_increase=0.2), ref).evaluate(view)
>>> round(ev.statistic, 2), round(ev.threshold, 2), ev.breached
(0.15, 0.12, True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from stream_monitor.core.detectors.base import Evaluation, WindowDetector, WindowView

if TYPE_CHECKING:
    from stream_monitor.core.reference import Reference
    from stream_monitor.core.settings import SloAccuracyParams, SloErrorRateParams, SloMaeParams, SloMeanParams, SloShareParams


def _error_rate(window: WindowView, expected: bool = False) -> float | None:
    n = int(window.values.size)
    if n == 0:
        return None
    return float(np.mean(window.values)) if expected else float(np.count_nonzero(window.values >= 0.5)) / n


class SloAccuracyDetector(WindowDetector):
    """Accuracy of the window (1 - error rate) against ``min``."""

    name = "slo_accuracy"

    def __init__(self, params: SloAccuracyParams, reference: Reference) -> None:
        super().__init__(params)

    def evaluate(self, window: WindowView) -> Evaluation | None:
        """The window's accuracy; a breach below ``min``."""
        rate = _error_rate(window, self.params.expected)  # type: ignore[attr-defined]
        minimum = self.params.min  # type: ignore[attr-defined]
        if rate is None or minimum is None:
            return None
        accuracy = 1.0 - rate
        return Evaluation(accuracy, minimum, None, accuracy < minimum, self.params.severity)


class SloErrorRateDetector(WindowDetector):
    """Error rate of the window against ``max`` and ``(1 + max_relative_increase)`` x the reference's."""

    name = "slo_error_rate"

    def __init__(self, params: SloErrorRateParams, reference: Reference) -> None:
        super().__init__(params)
        limits = []
        if params.max is not None:
            limits.append(params.max)
        if params.max_relative_increase is not None:
            limits.append(float(getattr(reference, "mean", 0.0)) * (1.0 + params.max_relative_increase))
        self.limit = min(limits) if limits else None

    def evaluate(self, window: WindowView) -> Evaluation | None:
        """The window's error rate; a breach above the tighter of the two limits."""
        rate = _error_rate(window, self.params.expected)  # type: ignore[attr-defined]
        if rate is None or self.limit is None:
            return None
        return Evaluation(rate, self.limit, None, rate > self.limit, self.params.severity)


class SloMaeDetector(WindowDetector):
    """Mean absolute error of the window against ``max`` (and the base of the other mean-against-``max`` checks)."""

    name = "slo_mae"

    def __init__(self, params: SloMaeParams | SloMeanParams, reference: Reference) -> None:
        super().__init__(params)

    def evaluate(self, window: WindowView) -> Evaluation | None:
        """The window's mean (here of absolute errors); a breach above ``max``."""
        maximum = self.params.max  # type: ignore[attr-defined]
        if window.values.size == 0 or maximum is None:
            return None
        mean = float(np.mean(window.values))
        return Evaluation(mean, maximum, None, mean > maximum, self.params.severity)


class SloShareDetector(WindowDetector):
    """Share of 1s (values of at least 0.5) of a success stream's window against ``min``."""

    name = "slo_share"

    def __init__(self, params: SloShareParams, reference: Reference) -> None:
        super().__init__(params)

    def evaluate(self, window: WindowView) -> Evaluation | None:
        """The window's share of 1s (with ``expected``, the mean of expected hits); a breach below ``min``."""
        rate = _error_rate(window, getattr(self.params, "expected", False))
        minimum = self.params.min  # type: ignore[attr-defined]
        if rate is None or minimum is None:
            return None
        return Evaluation(rate, minimum, None, rate < minimum, self.params.severity)


class SloRecallDetector(SloShareDetector):
    """The window's recall (``__recall__``: 1 per positive predicted positive) against ``min``."""

    name = "slo_recall"


class SloPrecisionDetector(SloShareDetector):
    """The window's precision (``__precision__``: 1 per predicted positive that is positive) against ``min``."""

    name = "slo_precision"


def f1_of_share(share: float) -> float:
    """F1 from the share J = TP / (TP + FP + FN) of an ``__f1__`` window: 2J / (1 + J).

    >>> f1_of_share(0.5), f1_of_share(1.0), f1_of_share(0.0)
    (0.6666666666666666, 1.0, 0.0)
    """
    return 2.0 * share / (1.0 + share)


class SloF1Detector(WindowDetector):
    """The window's F1 (read from ``__f1__``'s share of true positives) against ``min``."""

    name = "slo_f1"

    def __init__(self, params: SloShareParams, reference: Reference) -> None:
        super().__init__(params)

    def evaluate(self, window: WindowView) -> Evaluation | None:
        """The window's F1; a breach below ``min``."""
        share = _error_rate(window)
        minimum = self.params.min  # type: ignore[attr-defined]
        if share is None or minimum is None:
            return None
        f1 = f1_of_share(share)
        return Evaluation(f1, minimum, None, f1 < minimum, self.params.severity)


class SloLogLossDetector(SloMaeDetector):
    """Mean log loss of the window against ``max`` (the same check as ``slo_mae``, on per-row log losses)."""

    name = "slo_log_loss"
