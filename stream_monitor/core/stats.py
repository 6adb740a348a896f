"""Two-sample statistics between a reference and a current window, computed with numpy/scipy.

Each function takes already-kept arrays (a sorted reference sample, histogram counts) so a
monitor evaluates a whole window per call instead of recomputing anything per event.

>>> import numpy as np
>>> round(psi(np.array([50, 50]), np.array([50, 50])), 6)
0.0
>>> d, p = ks_2samp(np.arange(100.0), np.arange(100.0) + 50)
>>> round(d, 2)
0.5
"""

from __future__ import annotations

import numpy as np
from scipy import stats as _sps
from scipy.spatial.distance import jensenshannon as _jensenshannon


def smoothed_proportions(counts: np.ndarray) -> np.ndarray:
    """Histogram counts → proportions with +0.5 (Jeffreys) smoothing, so no bin is ever zero."""
    counts = np.asarray(counts, dtype=np.float64)
    smoothed = counts + 0.5
    return smoothed / smoothed.sum()


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population Stability Index over aligned bins: sum((q - p) * ln(q / p))."""
    p = smoothed_proportions(reference_counts)
    q = smoothed_proportions(current_counts)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two histograms."""
    p = np.asarray(reference_counts, dtype=np.float64)
    q = np.asarray(current_counts, dtype=np.float64)
    if p.sum() == 0 or q.sum() == 0:
        return 0.0
    return float(_jensenshannon(p / p.sum(), q / q.sum(), base=2))


def ks_2samp(reference_sorted: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov distance and asymptotic p-value (scipy's 'asymp' method)."""
    res = _sps.ks_2samp(reference_sorted, current, method="asymp")
    return float(res.statistic), float(res.pvalue)


def wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    """First Wasserstein (earth mover's) distance between two samples, in the data's units."""
    return float(_sps.wasserstein_distance(reference, current))


def chi2_two_sample(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float, int]:
    """Chi-square test of homogeneity on a 2 x K table; categories empty in both are dropped.

    Returns (statistic, p_value, degrees_of_freedom).
    """
    table = np.vstack([np.asarray(reference_counts, np.float64), np.asarray(current_counts, np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0, 0
    res = _sps.chi2_contingency(table, correction=False)
    return float(res.statistic), float(res.pvalue), int(res.dof)


def chi2_critical_value(p_value: float, dof: int) -> float:
    """The chi-square statistic at which a test with ``dof`` degrees of freedom reaches ``p_value``."""
    return float(_sps.chi2.isf(p_value, max(dof, 1)))


def total_variation(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Half the L1 distance between two histograms' proportions, in [0, 1]."""
    p = np.asarray(reference_counts, np.float64)
    q = np.asarray(current_counts, np.float64)
    if p.sum() == 0 or q.sum() == 0:
        return 0.0
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def quantile_edges(sorted_sample: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges at the reference's quantiles (duplicates removed); outer bins are open."""
    if sorted_sample.size == 0:
        return np.empty(0)
    qs = np.quantile(sorted_sample, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return np.unique(qs)


def histogram(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the bins defined by ``inner_edges`` (len(inner_edges) + 1 bins)."""
    idx = np.searchsorted(inner_edges, values, side="right")
    return np.bincount(idx, minlength=inner_edges.size + 1)
