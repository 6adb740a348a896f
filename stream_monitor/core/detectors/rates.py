"""Rate detectors: the share of missing, invalid / out-of-range or unseen observations in a window.

Each compares the window's rate of some observation flags with the reference's rate; they need
only the flags, never the values, so they also run on high-cardinality categorical channels.

>>> import numpy as np
>>> from stream_monitor.core.settings import RateParams
>>> d = missing_rate_detector(RateParams(), 0.0)
>>> d.evaluate(WindowView(values=np.zeros(0), flags=np.array([0, 1, 1, 0], np.uint8))).statistic
0.5
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stream_monitor.core.detectors.base import FLAG_INVALID, FLAG_MISSING, FLAG_OUTSIDE, Evaluation, WindowDetector, WindowView
from stream_monitor.core.reference import NumericReference, Reference

if TYPE_CHECKING:
    from stream_monitor.core.detectors.steps import WindowSteps
    from stream_monitor.core.settings import OutOfRangeParams, RateParams


class RateDetector(WindowDetector):
    """Rate of a flag in the window minus the reference's rate, against ``threshold``."""

    needs_values = False

    def __init__(self, name: str, params: RateParams, reference_rate: float, flags: tuple[int, ...], over_present: bool) -> None:
        super().__init__(params)
        self.name = name
        self.reference_rate = reference_rate
        self.flags = flags
        self.over_present = over_present  # rate among non-missing observations

    def evaluate(self, window: WindowView) -> Evaluation | None:
        """Window rate minus reference rate, or ``None`` when no observation counts."""
        counts = window.flag_counts
        size = sum(counts)
        if self.over_present:
            size -= counts[FLAG_MISSING]
        if size == 0:
            return None
        hit = sum(counts[f] for f in self.flags)
        rate = float(hit) / size
        return self._threshold_eval(rate - self.reference_rate)


    def evaluate_steps(self, steps: WindowSteps) -> list[Evaluation | None]:
        """:meth:`evaluate` of every step, from the steps' flag counts."""
        out: list[Evaluation | None] = []
        flags, over_present, reference_rate, threshold_eval = self.flags, self.over_present, self.reference_rate, self._threshold_eval
        done: dict[tuple[int, int], Evaluation | None] = {}  # most steps of a batch have the same counts (all valid)
        for counts in steps.flag_counts:
            size = sum(counts)
            if over_present:
                size -= counts[FLAG_MISSING]
            hit = sum(counts[f] for f in flags)
            key = (hit, size)
            if key in done:
                out.append(done[key])
            else:
                out.append(None if size == 0 else threshold_eval(float(hit) / size - reference_rate))
                done[key] = out[-1]
        return out


def missing_rate_detector(params: RateParams, reference_missing_rate: float) -> RateDetector:
    """Share of missing observations, against the reference's missing rate."""
    return RateDetector("missing_rate", params, reference_missing_rate, (FLAG_MISSING,), over_present=False)


def out_of_range_detector(params: OutOfRangeParams, reference_invalid_rate: float, numeric: bool) -> RateDetector:
    """Share of invalid (and, for numbers, out-of-range) observations among the present ones."""
    flags = (FLAG_INVALID, FLAG_OUTSIDE) if numeric else (FLAG_INVALID,)
    return RateDetector("out_of_range_rate", params, reference_invalid_rate, flags, over_present=True)


def unseen_category_detector(params: RateParams) -> RateDetector:
    """Share of present observations whose category the reference never saw."""
    return RateDetector("unseen_category_rate", params, 0.0, (FLAG_OUTSIDE,), over_present=True)


def build_missing_rate(params: RateParams, reference: Reference) -> RateDetector:
    """Registry factory of ``missing_rate``."""
    return missing_rate_detector(params, reference.missing_rate)


def build_out_of_range(params: OutOfRangeParams, reference: Reference) -> RateDetector:
    """Registry factory of ``out_of_range_rate``."""
    return out_of_range_detector(params, reference.invalid_rate, isinstance(reference, NumericReference))


def build_unseen_category(params: RateParams, reference: Reference) -> RateDetector:
    """Registry factory of ``unseen_category_rate``."""
    return unseen_category_detector(params)
