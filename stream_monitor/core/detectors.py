"""Detectors: change-point detectors fed value by value, and window detectors evaluated per step.

*Point detectors* wrap River's ``ADWIN`` and ``PageHinkley`` on values standardised with the
reference's mean and standard deviation, so one threshold means the same on every feature's scale.
A trip only counts when the estimated shift is at least ``threshold`` reference standard
deviations (practical significance), which keeps River's noise-level trips from paging anyone.

*Window detectors* compare the current window with the reference once per step: PSI, KS,
Wasserstein, Jensen-Shannon, chi-square, and the rate detectors (missing, out-of-range, unseen).

>>> import numpy as np
>>> from stream_monitor.core.settings import PsiParams
>>> from stream_monitor.core.reference import NumericReference
>>> ref = NumericReference.from_values(np.linspace(0, 1, 1000), 0, 0, "warmup")
>>> det = PsiDetector(PsiParams(), ref)
>>> window = WindowView(values=np.linspace(0, 1, 500) + 0.5, flags=np.zeros(500, np.uint8))
>>> ev = det.evaluate(window)
>>> ev.breached, ev.severity, round(ev.statistic, 2)
(True, 'critical', 3.17)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from river import drift as river_drift
from river import stats as river_stats

from stream_monitor.core import stats
from stream_monitor.core.reference import CategoricalReference, NumericReference
from stream_monitor.core.settings import (
    AdwinParams,
    Chi2Params,
    DetectorParams,
    JsParams,
    KsParams,
    OutOfRangeParams,
    PageHinkleyParams,
    PsiParams,
    RateParams,
    Severity,
    WassersteinParams,
)

# Observation flags kept per observation in a channel's window.
FLAG_OK = 0
FLAG_MISSING = 1
FLAG_INVALID = 2  # non-finite number, or a value of the wrong type
FLAG_OUTSIDE = 3  # numeric outside the valid range, or a category unseen in the reference


class Evaluation(NamedTuple):
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

    @property
    def flag_counts(self) -> list[int]:
        """Observations per flag value (index FLAG_*), counted once per evaluation."""
        if self._flag_counts is None:
            self._flag_counts = np.bincount(self.flags, minlength=FLAG_OUTSIDE + 1).tolist()
        return self._flag_counts


def _severity(params: DetectorParams, statistic: float) -> Severity:
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
        raise NotImplementedError

    def _threshold_eval(self, statistic: float, p_value: float | None = None, extra_ok: bool = True) -> Evaluation:
        threshold = self.params.threshold
        breached = threshold is not None and statistic > threshold and extra_ok
        return Evaluation(statistic, threshold, p_value, breached, _severity(self.params, statistic))


class PsiDetector(WindowDetector):
    """Population Stability Index over reference-quantile bins (numeric) or categories."""

    name = "psi"

    def __init__(self, params: PsiParams, reference: NumericReference | CategoricalReference) -> None:
        super().__init__(params)
        self.reference = reference
        if isinstance(reference, NumericReference):
            self.edges = stats.quantile_edges(reference.sorted_sample, params.bins)
            self.reference_counts = stats.histogram(reference.sorted_sample, self.edges)
        else:
            self.edges = None
            self.reference_counts = np.append(reference.counts, 0)

    def _counts(self, window: WindowView) -> np.ndarray:
        if self.edges is not None:
            return stats.histogram(window.values, self.edges)
        return np.bincount(window.values, minlength=self.reference_counts.size)

    def evaluate(self, window: WindowView) -> Evaluation | None:
        if window.values.size == 0:
            return None
        return self._threshold_eval(stats.psi(self.reference_counts, self._counts(window)))


class JsDetector(PsiDetector):
    """Jensen-Shannon distance over the same bins as PSI."""

    name = "js"

    def __init__(self, params: JsParams, reference: NumericReference | CategoricalReference) -> None:
        super().__init__(params, reference)  # type: ignore[arg-type]

    def evaluate(self, window: WindowView) -> Evaluation | None:
        if window.values.size == 0:
            return None
        return self._threshold_eval(stats.js_distance(self.reference_counts, self._counts(window)))


class KsDetector(WindowDetector):
    """Two-sample Kolmogorov-Smirnov: breaches when D > threshold and p <= max_p_value."""

    name = "ks"

    def __init__(self, params: KsParams, reference: NumericReference) -> None:
        super().__init__(params)
        self.reference = reference
        self.max_p_value = params.max_p_value

    def evaluate(self, window: WindowView) -> Evaluation | None:
        if window.values.size == 0 or self.reference.sorted_sample.size == 0:
            return None
        d, p = stats.ks_2samp(self.reference.sorted_sample, window.values)
        return self._threshold_eval(d, p, extra_ok=p <= self.max_p_value)


class WassersteinDetector(WindowDetector):
    """Wasserstein-1 distance in reference standard deviations."""

    name = "wasserstein"

    def __init__(self, params: WassersteinParams, reference: NumericReference) -> None:
        super().__init__(params)
        self.reference = reference

    def evaluate(self, window: WindowView) -> Evaluation | None:
        if window.values.size == 0 or self.reference.sorted_sample.size == 0:
            return None
        return self._threshold_eval(stats.wasserstein(self.reference.sorted_sample, window.values) / self.reference.scale)


class Chi2Detector(WindowDetector):
    """Chi-square homogeneity test of category counts (reference vs window).

    ``statistic`` is the chi-square value and ``threshold`` its critical value at the configured
    p-value, so ``statistic > threshold`` reads as it does for every other detector. A breach
    also needs a total-variation distance of at least ``min_effect``.
    """

    name = "chi2"

    def __init__(self, params: Chi2Params, reference: CategoricalReference) -> None:
        super().__init__(params)
        self.reference_counts = np.append(reference.counts, 0)
        self.alpha = params.threshold if params.threshold is not None else 1e-6
        self.min_effect = params.min_effect

    def evaluate(self, window: WindowView) -> Evaluation | None:
        if window.values.size == 0:
            return None
        current = np.bincount(window.values, minlength=self.reference_counts.size)
        chi2, p, dof = stats.chi2_two_sample(self.reference_counts, current)
        critical = stats.chi2_critical_value(self.alpha, dof)
        effect = stats.total_variation(self.reference_counts, current)
        breached = dof > 0 and p <= self.alpha and effect >= self.min_effect
        severity: Severity = "critical" if (self.params.critical is not None and p <= self.params.critical) else self.params.severity
        return Evaluation(chi2, critical, p, breached, severity)


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
        counts = window.flag_counts
        size = sum(counts)
        if self.over_present:
            size -= counts[FLAG_MISSING]
        if size == 0:
            return None
        hit = sum(counts[f] for f in self.flags)
        rate = float(hit) / size
        return self._threshold_eval(rate - self.reference_rate)


def missing_rate_detector(params: RateParams, reference_missing_rate: float) -> RateDetector:
    return RateDetector("missing_rate", params, reference_missing_rate, (FLAG_MISSING,), over_present=False)


def out_of_range_detector(params: OutOfRangeParams, reference_invalid_rate: float, numeric: bool) -> RateDetector:
    flags = (FLAG_INVALID, FLAG_OUTSIDE) if numeric else (FLAG_INVALID,)
    return RateDetector("out_of_range_rate", params, reference_invalid_rate, flags, over_present=True)


def unseen_category_detector(params: RateParams) -> RateDetector:
    return RateDetector("unseen_category_rate", params, 0.0, (FLAG_OUTSIDE,), over_present=True)


class PointDetector:
    """A River change-point detector on standardised values.

    A trip is only a candidate: the channel confirms it at the next evaluation step, when the mean
    of the standardised values since the trip is at least ``threshold`` reference standard
    deviations away from the reference mean (practical significance, and noise trips fade out).
    """

    name = "point"

    def __init__(self, params: DetectorParams) -> None:
        self.params = params
        self.min_shift = params.threshold or 0.0

    def update_many(self, z: list[float]) -> list[int]:
        """Feed standardised values in order; return the indices at which the detector tripped."""
        update = self.detector.update  # type: ignore[attr-defined]
        detector = self.detector  # type: ignore[attr-defined]
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
        severity = _severity(self.params, shift) if shift is not None else self.params.severity
        return Evaluation(shift, self.params.threshold, None, shift is not None, severity)


class AdwinDetector(PointDetector):
    """River ``ADWIN`` (adaptive windowing)."""

    name = "adwin"

    def __init__(self, params: AdwinParams) -> None:
        super().__init__(params)
        self.detector = river_drift.ADWIN(delta=params.delta)

    def update_many(self, z: list[float]) -> list[int]:
        """``ADWIN.update`` per value, calling its (compiled) window directly.

        The same steps as River's ``update``: reset first when the previous value tripped, then
        add the value; ``tests/core/test_optimisation_equivalence.py`` checks it against River.
        """
        d = self.detector
        if type(d) is not river_drift.ADWIN:
            return self._update_many_river(z)
        drift = d._drift_detected
        trips: list[int] = []
        i, size = 0, len(z)
        while i < size:
            if drift:
                d._reset()
            update = d._helper.update
            drift = False
            for value in z[i:] if i else z:
                i += 1
                if update(value):
                    drift = True
                    trips.append(i - 1)
                    break
        d._drift_detected = drift
        return trips


class PageHinkleyDetector(PointDetector):
    """River ``PageHinkley`` with ``alpha=1`` (the classic test; River's fading default drifts)."""

    name = "page_hinkley"

    def __init__(self, params: PageHinkleyParams) -> None:
        super().__init__(params)
        self.detector = river_drift.PageHinkley(
            min_instances=params.min_instances, delta=params.delta, threshold=params.ph_threshold, alpha=1.0
        )

    def update_many(self, z: list[float]) -> list[int]:
        """River's ``PageHinkley.update`` (mode "both") inlined over the values, on local variables.

        Every arithmetic step is River's, in River's order (running mean as ``stats.Mean``, then
        the two cumulative sums, their extremes and the two-sided test), so the state and the trip
        indices are identical; the state is written back to the River object at the end.
        ``tests/core/test_optimisation_equivalence.py`` checks it against River's own ``update``.
        """
        d = self.detector
        if type(d) is not river_drift.PageHinkley or d.mode != "both" or type(d._x_mean) is not river_stats.Mean:
            return self._update_many_river(z)
        mean = d._x_mean
        n, mu = mean.n, mean._mean
        s_inc, s_dec = d._sum_increase, d._sum_decrease
        min_inc, max_dec = d._min_increase, d._max_decrease
        alpha, delta, threshold, min_instances = d.alpha, d.delta, d.threshold, d.min_instances
        drift = d._drift_detected
        trips: list[int] = []
        unit = alpha == 1.0  # 1.0 * s == s exactly: skip the multiplications (alpha is 1 here)
        i, size = 0, len(z)
        while i < size:
            if drift:  # River resets at the start of the update after a trip
                n, mu = 0.0, 0.0
                s_inc = s_dec = 0.0
                min_inc, max_dec = float("inf"), -1
                drift = False
            if unit and n + 1.0 >= min_instances:
                # steady state: every value is tested, until the next trip (index from n)
                n0 = n
                for x in z[i:] if i else z:
                    n += 1.0
                    mu += (1.0 / n) * (x - mu)
                    dev = x - mu
                    s_inc = s_inc + dev - delta
                    s_dec = s_dec + dev + delta
                    if s_inc < min_inc:
                        min_inc = s_inc
                    if s_dec > max_dec:
                        max_dec = s_dec
                    if s_inc - min_inc > threshold or max_dec - s_dec > threshold:
                        drift = True
                        break
                i += int(n - n0)
                if drift:
                    trips.append(i - 1)
                continue
            x = z[i]
            n += 1.0
            mu += (1.0 / n) * (x - mu)
            dev = x - mu
            s_inc = alpha * s_inc + dev - delta
            s_dec = alpha * s_dec + dev + delta
            if s_inc < min_inc:
                min_inc = s_inc
            if s_dec > max_dec:
                max_dec = s_dec
            if n >= min_instances:
                drift = s_inc - min_inc > threshold or max_dec - s_dec > threshold
                if drift:
                    trips.append(i)
            i += 1
        mean.n, mean._mean = n, mu
        d._sum_increase, d._sum_decrease = s_inc, s_dec
        d._min_increase, d._max_decrease = min_inc, max_dec
        d._drift_detected = drift
        return trips
