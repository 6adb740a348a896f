"""What every detector shares: observation flags, the window view, evaluations and the two families.

*Window detectors* compare the current window with the reference once per evaluation step;
*point detectors* (change-point detectors) are fed standardised values one by one and report the
indices at which they tripped, which the channel then confirms by the size of the shift.

>>> ev = Evaluation(0.3, 0.2, None, True, "warning")
>>> ev.breached, ev.severity
(True, 'warning')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from stream_monitor.core.settings import DetectorParams, Severity

# Observation flags kept per observation in a channel's window.
FLAG_OK = 0
FLAG_MISSING = 1
FLAG_INVALID = 2  # non-finite number, or a value of the wrong type
FLAG_OUTSIDE = 3  # numeric outside the valid range, or a category unseen in the reference


class Evaluation(NamedTuple):
    """The outcome of one detector evaluation: statistic against threshold, breach and severity."""

    statistic: float | None
    threshold: float | None
    p_value: float | None
    breached: bool
    severity: Severity


@dataclass(slots=True)
class WindowView:
    """The current window of one channel at an evaluation point."""

    values: np.ndarray  # numeric values or categorical codes of present, valid observations
    flags: np.ndarray  # one flag per observation (FLAG_*)
    _flag_counts: list[int] | None = None
    _sorted: np.ndarray | None = None
    _code_counts: tuple[int, np.ndarray] | None = None

    @property
    def flag_counts(self) -> list[int]:
        """Observations per flag value (index FLAG_*), counted once per evaluation."""
        if self._flag_counts is None:
            flags = self.flags
            if np.count_nonzero(flags):
                self._flag_counts = np.bincount(flags, minlength=FLAG_OUTSIDE + 1).tolist()
            else:  # all FLAG_OK, the usual case: a quarter of bincount's cost (it widens uint8 to intp)
                self._flag_counts = [flags.shape[0], 0, 0, 0]
        return self._flag_counts

    @property
    def sorted(self) -> bool:
        """Are the values sorted already (:attr:`sorted_values` made)? Then detectors read them rather than walk the ring."""
        return self._sorted is not None

    @property
    def sorted_values(self) -> np.ndarray:
        """The values sorted (a copy, do not modify), sorted once per evaluation for every detector that needs them."""
        if self._sorted is None:
            self._sorted = np.sort(self.values)
        return self._sorted

    def code_counts(self, minlength: int) -> np.ndarray:
        """``np.bincount(values, minlength=minlength)`` of categorical codes, counted once per evaluation (do not modify)."""
        cached = self._code_counts
        if cached is None or cached[0] != minlength:
            cached = self._code_counts = (minlength, np.bincount(self.values, minlength=minlength))
        return cached[1]


def spread(full: np.ndarray, evaluations: list[Evaluation]) -> list[Evaluation | None]:
    """``evaluations`` (one per full step, in order) placed at the steps where ``full`` is true, ``None`` elsewhere."""
    if len(evaluations) == full.shape[0]:
        return list(evaluations)
    it = iter(evaluations)
    return [next(it) if f else None for f in full.tolist()]


def severity_of(params: DetectorParams, statistic: float) -> Severity:
    """``critical`` when the statistic reaches the params' critical level, else their severity.

    >>> from stream_monitor.core.settings import PsiParams
    >>> severity_of(PsiParams(), 0.6), severity_of(PsiParams(), 0.3)
    ('critical', 'warning')
    """
    if params.critical is not None and statistic >= params.critical:
        return "critical"
    return params.severity


class WindowDetector:
    """Base class: compares a window with the reference once per evaluation step."""

    name = "window"
    needs_values = True

    def __init__(self, params: DetectorParams) -> None:
        self.params = params

    def evaluate(self, window: WindowView) -> Evaluation | None:  # pragma: no cover - abstract
        """The evaluation of ``window``, or ``None`` when the window says nothing (e.g. empty)."""
        raise NotImplementedError

    def evaluate_steps(self, steps: Any) -> list[Evaluation | None] | None:
        """The evaluations of every step of ``steps`` (a batch's windows, a ``detectors.steps.WindowSteps``), as :meth:`evaluate` of each; ``None``: evaluate step by step.

        A step's entry is ``None`` where :meth:`evaluate` would return ``None``, or where the
        detector needs values and the step's window has fewer than its size (the channel skips it).
        """
        return None

    def _threshold_eval(self, statistic: float, p_value: float | None = None, extra_ok: bool = True) -> Evaluation:
        threshold = self.params.threshold
        breached = threshold is not None and statistic > threshold and extra_ok
        return Evaluation(statistic, threshold, p_value, breached, severity_of(self.params, statistic))


class PointDetector:
    """A change-point detector on standardised values (River's, through the River adapter).

    A trip is only a candidate: the channel confirms it at the next evaluation step, when the mean
    of the standardised values since the trip is at least ``threshold`` reference standard
    deviations away from the reference mean (practical significance, and noise trips fade out).
    Subclasses set ``detector`` (an object with ``update(x)`` and ``drift_detected``).
    """

    name = "point"
    detector: Any
    takes_array = False  # update_many wants the values as a float64 array (a compiled kernel), not a list

    def __init__(self, params: DetectorParams) -> None:
        self.params = params
        self.min_shift = params.threshold or 0.0

    def update_many(self, z: list[float]) -> list[int]:
        """Feed standardised values in order (a list; a float64 array when ``takes_array``); return the indices at which the detector tripped."""
        update = self.detector.update
        detector = self.detector
        trips: list[int] = []
        for i, value in enumerate(z):
            update(value)
            if detector.drift_detected:
                trips.append(i)
        return trips

    def _update_many_river(self, z: list[float]) -> list[int]:
        return PointDetector.update_many(self, z)

    def evaluation(self, shift: float | None) -> Evaluation:
        """A confirmed shift (breach) or ``None`` (clear) as an evaluation."""
        severity = severity_of(self.params, shift) if shift is not None else self.params.severity
        return Evaluation(shift, self.params.threshold, None, shift is not None, severity)
