"""Window detectors that compare a window's distribution with the reference's.

PSI and Jensen-Shannon over reference-quantile bins (numeric) or categories, two-sample
Kolmogorov-Smirnov, Wasserstein-1 in reference standard deviations, and chi-square homogeneity of
category counts. Each is built from its params and the channel's reference, once per reference.

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

from typing import TYPE_CHECKING

import numpy as np

from stream_monitor.core import stats
from stream_monitor.core.detectors.base import Evaluation, WindowDetector, WindowView, spread
from stream_monitor.core.detectors.steps import WALK_PER_VALUE
from stream_monitor.core.reference import CategoricalReference, NumericReference

if TYPE_CHECKING:
    from stream_monitor.core.detectors.steps import WindowSteps
    from stream_monitor.core.settings import Chi2Params, JsParams, KsParams, PsiParams, Severity, WassersteinParams


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
        self.binned = stats.BinnedReference(self.reference_counts)

    def _counts(self, window: WindowView) -> np.ndarray:
        if self.edges is not None:  # the ring's values binned as they lie (compiled), else from their sort
            counts = None if window.sorted else stats.histogram_unsorted(window.values, self.edges)
            return stats.histogram_of_sorted(window.sorted_values, self.edges) if counts is None else counts
        return window.code_counts(self.reference_counts.size)

    def evaluate(self, window: WindowView) -> Evaluation | None:
        """PSI of the window's bin (or category) counts against the reference's."""
        if window.values.size == 0:
            return None
        return self._threshold_eval(self.binned.psi(self._counts(window)))

    def _step_counts(self, steps: WindowSteps) -> np.ndarray:
        if self.edges is not None:
            return steps.bin_counts(self.edges)
        return steps.code_counts(self.reference_counts.size)

    def evaluate_steps(self, steps: WindowSteps) -> list[Evaluation | None]:
        """:meth:`evaluate` of every full step, from the steps' counts."""
        return spread(steps.full, [self._threshold_eval(s) for s in self.binned.psi_rows(self._step_counts(steps))])


class JsDetector(PsiDetector):
    """Jensen-Shannon distance over the same bins as PSI."""

    name = "js"

    def __init__(self, params: JsParams, reference: NumericReference | CategoricalReference) -> None:
        super().__init__(params, reference)  # type: ignore[arg-type]

    def evaluate(self, window: WindowView) -> Evaluation | None:
        """Jensen-Shannon distance of the window's bin counts from the reference's."""
        if window.values.size == 0:
            return None
        return self._threshold_eval(self.binned.js_distance(self._counts(window)))

    def evaluate_steps(self, steps: WindowSteps) -> list[Evaluation | None]:
        """:meth:`evaluate` of every full step, from the steps' counts."""
        return spread(steps.full, [self._threshold_eval(s) for s in self.binned.js_rows(self._step_counts(steps))])


class KsDetector(WindowDetector):
    """Two-sample Kolmogorov-Smirnov: breaches when D > threshold and p <= max_p_value."""

    name = "ks"

    def __init__(self, params: KsParams, reference: NumericReference) -> None:
        super().__init__(params)
        self.reference = reference
        self.max_p_value = params.max_p_value
        self.prepared = stats.KsReference.of(reference.sorted_sample)  # None: empty, or NaN (scipy's)

    def evaluate(self, window: WindowView) -> Evaluation | None:
        """KS distance and p-value of the window against the reference sample."""
        if window.values.size == 0 or self.reference.sorted_sample.size == 0:
            return None
        ref = self.prepared
        if ref is None:
            d, p = stats.ks_2samp(self.reference.sorted_sample, window.values)
        else:
            n2 = window.values.shape[0]
            # the ring's values walked as they lie (compiled, no sort; the same floats), unless its sort is made already or
            # the reference is too large to walk for this window (WALK_PER_VALUE, as for a batch's steps)
            extremes = None if window.sorted or 2 * ref.n1 + 1 > WALK_PER_VALUE * n2 else ref.window_extremes(window.values)
            d, p = stats.ks_sorted(ref, window.sorted_values) if extremes is None else stats.ks_of_extremes(ref.n1, n2, *extremes)
        return self._threshold_eval(d, p, extra_ok=p <= self.max_p_value)

    def evaluate_steps(self, steps: WindowSteps) -> list[Evaluation | None] | None:
        """:meth:`evaluate` of every full step, from the ranks of the steps' values among the reference's."""
        ref = self.prepared
        if ref is None:
            return None
        extremes = steps.ks_extremes(ref.data1)
        if extremes is None:
            return None
        hi, lo = extremes
        results = [stats.ks_of_extremes(ref.n1, steps.size, h, low) for h, low in zip(hi, lo, strict=True)]
        max_p = self.max_p_value
        return spread(steps.full, [self._threshold_eval(d, p, extra_ok=p <= max_p) for d, p in results])


class WassersteinDetector(WindowDetector):
    """Wasserstein-1 distance in reference standard deviations."""

    name = "wasserstein"

    def __init__(self, params: WassersteinParams, reference: NumericReference) -> None:
        super().__init__(params)
        self.reference = reference

    def evaluate(self, window: WindowView) -> Evaluation | None:
        """Wasserstein-1 distance of the window from the reference, in reference sds."""
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
        self.binned = stats.BinnedReference(self.reference_counts)
        self.alpha = params.threshold if params.threshold is not None else 1e-6
        self.min_effect = params.min_effect

    def evaluate(self, window: WindowView) -> Evaluation | None:
        """Chi-square statistic of the window's category counts against the reference's."""
        if window.values.size == 0:
            return None
        return self._judge(window.code_counts(self.reference_counts.size))

    def _judge(self, current: np.ndarray) -> Evaluation:
        chi2, p, dof = self.binned.chi2(current)
        return self._evaluation(chi2, p, dof, self.binned.total_variation(current))

    def _evaluation(self, chi2: float, p: float, dof: int, effect: float) -> Evaluation:
        critical = stats.chi2_critical_value(self.alpha, dof)
        breached = dof > 0 and p <= self.alpha and effect >= self.min_effect
        severity: Severity = "critical" if (self.params.critical is not None and p <= self.params.critical) else self.params.severity
        return Evaluation(chi2, critical, p, breached, severity)

    def evaluate_steps(self, steps: WindowSteps) -> list[Evaluation | None]:
        """:meth:`evaluate` of every full step, from the steps' category counts."""
        counts = steps.code_counts(self.reference_counts.size)
        evaluations = []
        for (chi2, p, dof), effect in zip(self.binned.chi2_rows(counts), self.binned.total_variation_rows(counts), strict=True):
            evaluations.append(self._evaluation(chi2, p, dof, effect))
        return spread(steps.full, evaluations)
