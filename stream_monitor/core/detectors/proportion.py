"""``two_proportion``: a one-sided two-proportion z-test of the window's error rate against the reference's.

The window's 0/1 errors (values of at least 0.5 count as errors) against the reference's error
rate and size; the statistic is the rise of the error rate in points, the p-value that of the
pooled one-sided z-test. With ``direction: down`` (a success stream: recall, precision) the
values below 0.5 are the errors, so the statistic is the fall of the share of 1s.

>>> import numpy as np
>>> from stream_monitor.core.reference import NumericReference
>>> from stream_monitor.core.settings import TwoProportionParams
>>> from stream_monitor.core.detectors.base import WindowView
>>> ref = NumericReference.from_values(np.array([0.0] * 870 + [1.0] * 130), 0, 0, "warmup")
>>> d = TwoProportionDetector(TwoProportionParams(), ref)
>>> ev = d.evaluate(WindowView(np.array([0.0] * 750 + [1.0] * 250), np.zeros(1000, dtype=np.uint8)))
>>> round(ev.statistic, 3), ev.breached
(0.12, True)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from stream_monitor.core.detectors.base import Evaluation, WindowDetector, WindowView, severity_of

if TYPE_CHECKING:
    from stream_monitor.core.reference import Reference
    from stream_monitor.core.settings import TwoProportionParams


def one_sided_p(rate_ref: float, n_ref: int, rate_win: float, n_win: int) -> float:
    """P-value of the pooled two-proportion z-test that the window rate exceeds the reference rate.

    >>> one_sided_p(0.1, 1000, 0.1, 1000)
    0.5
    """
    pooled = (rate_ref * n_ref + rate_win * n_win) / (n_ref + n_win)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_ref + 1.0 / n_win))
    if se == 0.0:
        return 0.5 if rate_win == rate_ref else (0.0 if rate_win > rate_ref else 1.0)
    return 0.5 * math.erfc((rate_win - rate_ref) / se / math.sqrt(2.0))


class TwoProportionDetector(WindowDetector):
    """Window error rate against the reference error rate (rises only)."""

    name = "two_proportion"

    def __init__(self, params: TwoProportionParams, reference: Reference) -> None:
        super().__init__(params)
        self.down = params.direction == "down"  # a success stream: the rate of values below 0.5 is watched
        self.rate = float(getattr(reference, "mean", 0.0))
        if self.down:
            self.rate = 1.0 - self.rate
        present = 1.0 - reference.missing_rate - getattr(reference, "invalid_rate", 0.0)
        self.n_ref = max(1, round(reference.count * present))

    def evaluate(self, window: WindowView) -> Evaluation | None:
        """The rise of the window's error rate and its p-value; ``None`` for an empty window."""
        n = int(window.values.size)
        if n == 0:
            return None
        rate = float(np.count_nonzero(window.values >= 0.5)) / n
        if self.down:
            rate = 1.0 - rate
        rise = rate - self.rate
        p = one_sided_p(self.rate, self.n_ref, rate, n)
        params: TwoProportionParams = self.params  # type: ignore[assignment]
        threshold = params.threshold or 0.0
        breached = rise >= threshold and p <= params.max_p_value
        return Evaluation(rise, params.threshold, p, breached, severity_of(params, rise))


def build_two_proportion(params: TwoProportionParams, reference: Reference) -> TwoProportionDetector:
    """Registry factory of ``two_proportion``."""
    return TwoProportionDetector(params, reference)
