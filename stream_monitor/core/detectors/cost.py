"""Detectors of the ``__cost__`` channel (the cost of each labelled prediction), in money per 1,000 predictions.

``cost_increase`` tests whether the window's mean cost exceeds the reference's: a one-sided
Welch z-test on the two means, a breach when the p-value is at most ``max_p_value`` and the rise
is at least ``threshold`` (relative to the reference's mean cost; and at least
``min_increase_per_1k`` when set). Its statistic is the rise in money per 1,000 predictions, its
threshold the smallest rise that counts, in the same units. ``slo_cost`` compares the window's
cost per 1,000 predictions with ``max_per_1k``.

>>> import numpy as np
>>> from stream_monitor.core.reference import NumericReference
>>> from stream_monitor.core.settings import CostIncreaseParams
>>> from stream_monitor.core.detectors.base import WindowView
>>> ref = NumericReference.from_values(np.array([0.0] * 900 + [10.0] * 100), 0, 0, "warmup")
>>> d = CostIncreaseDetector(CostIncreaseParams(), ref)
>>> ev = d.evaluate(WindowView(np.array([0.0] * 850 + [10.0] * 150), np.zeros(1000, dtype=np.uint8)))
>>> round(ev.statistic), round(ev.threshold), ev.breached
(500, 100, True)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from stream_monitor.core.detectors.base import Evaluation, WindowDetector, WindowView

if TYPE_CHECKING:
    from stream_monitor.core.reference import Reference
    from stream_monitor.core.settings import CostIncreaseParams, SloCostParams

PER = 1000.0
"""Costs are published per this many predictions."""


class CostIncreaseDetector(WindowDetector):
    """The window's mean cost against the reference's (rises only), in money per 1,000 predictions."""

    name = "cost_increase"

    def __init__(self, params: CostIncreaseParams, reference: Reference) -> None:
        super().__init__(params)
        self.mean = float(getattr(reference, "mean", 0.0))
        self.var = float(getattr(reference, "std", 0.0)) ** 2
        present = 1.0 - reference.missing_rate - getattr(reference, "invalid_rate", 0.0)
        self.n_ref = max(1, round(reference.count * present))
        rise = self.mean * PER * (params.threshold or 0.0)
        self.min_rise = max(rise, params.min_increase_per_1k or 0.0)

    def evaluate(self, window: WindowView) -> Evaluation | None:
        """The rise of the window's cost per 1,000 predictions and its p-value; ``None`` for an empty window."""
        values = window.values
        n = int(values.size)
        if n == 0:
            return None
        mean = float(values.mean())
        rise = (mean - self.mean) * PER
        se = math.sqrt(float(values.var()) / n + self.var / self.n_ref)
        if se == 0.0:
            p = 0.0 if mean > self.mean else 1.0
        else:
            p = 0.5 * math.erfc((mean - self.mean) / se / math.sqrt(2.0))
        params: CostIncreaseParams = self.params  # type: ignore[assignment]
        breached = rise > 0.0 and rise >= self.min_rise and p <= params.max_p_value
        relative = rise / (self.mean * PER) if self.mean > 0 else math.inf
        severity = "critical" if breached and params.critical is not None and relative >= params.critical else params.severity
        return Evaluation(rise, self.min_rise, p, breached, severity)


class SloCostDetector(WindowDetector):
    """The window's cost per 1,000 predictions against ``max_per_1k``."""

    name = "slo_cost"

    def __init__(self, params: SloCostParams, reference: Reference) -> None:
        super().__init__(params)

    def evaluate(self, window: WindowView) -> Evaluation | None:
        """The window's cost per 1,000 predictions; a breach above ``max_per_1k``."""
        maximum = self.params.max_per_1k  # type: ignore[attr-defined]
        if window.values.size == 0 or maximum is None:
            return None
        per_1k = float(np.mean(window.values)) * PER
        return Evaluation(per_1k, maximum, None, per_1k > maximum, self.params.severity)


def build_cost_increase(params: CostIncreaseParams, reference: Reference) -> CostIncreaseDetector:
    """Registry factory of ``cost_increase``."""
    return CostIncreaseDetector(params, reference)
