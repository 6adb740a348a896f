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

import functools
import weakref

import numpy as np
from scipy import special as _special
from scipy import stats as _sps
from scipy.spatial.distance import jensenshannon as _jensenshannon

# p-values by (statistic, n): a window's KS distance takes few distinct values (multiples of
# 1/lcm(n1, n2)), so most evaluations hit this memo instead of scipy's distribution machinery.
_KS_SF: dict[tuple[float, float], float] = {}
_KS_SF_MAX = 65_536


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


# per reference sample: (it sorted, its own ECDF at its points or None when its values are
# distinct, i.e. the ECDF is arange(1, n + 1) / n), computed once per array. An already sorted
# reference is used as is, so the cache holds no copy of it in the usual case.
_KS_REF: dict[int, tuple[weakref.ref, np.ndarray, np.ndarray | None]] = {}


def _reference_side(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    key = id(reference)
    hit = _KS_REF.get(key)
    if hit is None or hit[0]() is not reference:
        if np.isnan(reference).any():
            return None
        n = reference.shape[0]
        data1 = reference if bool(np.all(reference[:-1] <= reference[1:])) else np.sort(reference)
        ranks = np.searchsorted(data1, data1, side="right")
        cdf = None if bool((ranks == np.arange(1, n + 1)).all()) else ranks / n
        try:
            ref = weakref.ref(reference, lambda _r, key=key, cache=_KS_REF: cache.pop(key, None))
        except TypeError:  # not weak-referenceable: no caching
            return data1, (np.arange(1, n + 1) / n if cdf is None else cdf)
        hit = _KS_REF[key] = (ref, data1, cdf)
    data1, cdf = hit[1], hit[2]
    return data1, (np.arange(1, data1.shape[0] + 1) / data1.shape[0] if cdf is None else cdf)


def ks_2samp(reference_sorted: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov distance and asymptotic p-value (scipy's 'asymp' method).

    The same numpy operations as ``scipy.stats.ks_2samp(..., method="asymp")`` (two-sided), so
    the results are bit-identical, without its per-call argument handling (about 20x the cost of
    the arithmetic for a 1000-value window); inputs with NaN, or empty ones, go to scipy itself.

    >>> a, b = np.sort(np.sin(np.arange(500.0))), np.cos(np.arange(300.0)) + 0.3
    >>> res = _sps.ks_2samp(a, b, method="asymp")
    >>> ks_2samp(a, b) == (float(res.statistic), float(res.pvalue))
    True
    """
    n1, n2 = reference_sorted.shape[0], current.shape[0]
    ref = _reference_side(reference_sorted) if n1 and n2 else None
    if ref is None or np.isnan(current).any():
        res = _sps.ks_2samp(reference_sorted, current, method="asymp")
        return float(res.statistic), float(res.pvalue)
    # scipy evaluates both ECDFs at data_all = [data1, data2]; the halves at data1 and at data2
    # are the same elementwise numbers, and D only needs their extremes
    data1, cdf1_at_1 = ref
    data2 = np.sort(current)
    at_1 = cdf1_at_1 - np.searchsorted(data2, data1, side="right") / n2
    at_2 = np.searchsorted(data1, data2, side="right") / n1 - np.searchsorted(data2, data2, side="right") / n2
    min_s = np.clip(-min(at_1.min(), at_2.min()), 0, 1)
    max_s = max(at_1.max(), at_2.max())
    d = min_s if min_s > max_s else max_s
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = float(np.round(m * n / (m + n)))
    key = (float(d), en)
    p = _KS_SF.get(key)
    if p is None:
        if len(_KS_SF) >= _KS_SF_MAX:
            _KS_SF.clear()
        p = _KS_SF[key] = float(np.clip(_sps.kstwo.sf(d, en), 0, 1))
    return float(d), p


def wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    """First Wasserstein (earth mover's) distance between two samples, in the data's units."""
    return float(_sps.wasserstein_distance(reference, current))


def chi2_two_sample(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float, int]:
    """Chi-square test of homogeneity on a 2 x K table; categories empty in both are dropped.

    Returns (statistic, p_value, degrees_of_freedom). The arithmetic of ``scipy.stats.chi2_contingency(table, correction=False)`` (expected
    frequencies from the margins, Pearson's statistic over the flattened table, ``chdtrc`` for
    the p-value), bit-identical to it without its per-call overhead.

    >>> ref, cur = np.array([50, 30, 20, 0]), np.array([40, 30, 20, 10])
    >>> res = _sps.chi2_contingency(np.vstack([ref, cur]).astype(float), correction=False)
    >>> chi2_two_sample(ref, cur) == (float(res.statistic), float(res.pvalue), int(res.dof))
    True
    """
    table = np.vstack([np.asarray(reference_counts, np.float64), np.asarray(current_counts, np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0, 0
    expected = (np.sum(table, axis=1, keepdims=True) * np.sum(table, axis=0, keepdims=True)) / table.sum()
    dof = expected.size - sum(expected.shape) + expected.ndim - 1
    f_obs = table.reshape(-1)
    f_exp = expected.reshape(-1)
    terms = (f_obs - f_exp) ** 2 / f_exp
    stat = np.sum(terms, axis=-1)
    p = _special.chdtrc(np.float64(dof), stat)
    return float(stat), float(p), int(dof)


@functools.lru_cache(maxsize=1024)
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
