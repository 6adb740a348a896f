"""Two-sample statistics between a reference and a current window, computed with numpy/scipy.

Each function takes already-kept arrays (a sorted reference sample, histogram counts) so a
monitor evaluates a whole window per call instead of recomputing anything per event. Detectors
prepare their reference once (:class:`BinnedReference`, :class:`KsReference`) and evaluate a
window's counts or sorted values against it; the plain functions (``psi``, ``ks_2samp``, ...) do the
same arithmetic for one-off use, and equal scipy's bit for bit where they say so.

>>> import numpy as np
>>> round(psi(np.array([50, 50]), np.array([50, 50])), 6)
0.0
>>> d, p = ks_2samp(np.arange(100.0), np.arange(100.0) + 50)
>>> round(d, 2)
0.5
"""

from __future__ import annotations

import functools
import threading
import weakref
from typing import Any

import numpy as np
from scipy import special as _special
from scipy import stats as _sps

from stream_monitor.core import kernels

# p-values by (statistic, n): a window's KS distance takes few distinct values (multiples of
# 1/lcm(n1, n2)), so most evaluations hit this memo instead of scipy's distribution machinery.
_KS_SF: dict[tuple[float, float], float] = {}
_KS_SF_MAX = 65_536
try:  # what ``kstwo.sf(d, n)`` computes at one point, without rv_continuous's per-call argument handling (~50-120 µs a call)
    from scipy.stats._ksstats import _kolmogn as _kolmogn_at
except ImportError:  # pragma: no cover - a SciPy that moved it: the public call gives the same numbers
    _kolmogn_at = None
_LOG2 = np.log(2)  # scipy's jensenshannon divides by np.log(base)
_rel_entr = _special.rel_entr


def smoothed_proportions(counts: np.ndarray) -> np.ndarray:
    """Histogram counts → proportions with +0.5 (Jeffreys) smoothing, so no bin is ever zero."""
    counts = np.asarray(counts, dtype=np.float64)
    smoothed = counts + 0.5
    return smoothed / smoothed.sum()


class BinnedReference:
    """A reference histogram with what PSI, JS, chi-square and total variation need of it, computed once.

    Each method does, on the window's side, the floating-point operations the two-sided formula
    does, in the same order, and takes the reference's side from here: the same floats as computing
    both sides per call (statistics are printed in alerts). ``current_counts`` are window counts
    (int or float) aligned with the reference's bins.
    """

    __slots__ = ("counts", "js_p", "psi_p", "size", "tv_p")

    def __init__(self, counts: np.ndarray) -> None:
        self.counts = np.asarray(counts, dtype=np.float64)
        self.size = self.counts.shape[0]
        self.psi_p = smoothed_proportions(self.counts)
        total = self.counts.sum()
        self.tv_p = self.counts / total if total != 0 else None
        # scipy's jensenshannon normalises its (here already normalised) arguments once more
        self.js_p = self.tv_p / self.tv_p.sum(axis=0, keepdims=True) if self.tv_p is not None else None

    def psi(self, current_counts: np.ndarray) -> float:
        """Population Stability Index: sum((q - p) * ln(q / p)) of the smoothed proportions."""
        smoothed = current_counts + 0.5  # int + 0.5 gives the float64 values float64(counts) + 0.5 does
        q = smoothed / smoothed.sum()
        p = self.psi_p
        return float(((q - p) * np.log(q / p)).sum())

    def psi_rows(self, counts: np.ndarray) -> list[float]:
        """:meth:`psi` of every row of ``counts`` (one window's counts per row): the same operations, row by row."""
        smoothed = counts + 0.5
        q = smoothed / smoothed.sum(axis=1, keepdims=True)
        p = self.psi_p
        return ((q - p) * np.log(q / p)).sum(axis=1).tolist()

    def js_rows(self, counts: np.ndarray) -> list[float]:
        """:meth:`js_distance` of every row of ``counts``: the same operations, row by row."""
        q = counts.astype(np.float64)
        q_total = q.sum(axis=1, keepdims=True)
        if self.js_p is None:
            return [0.0] * q.shape[0]
        empty = q_total[:, 0] == 0
        q = q / np.where(empty[:, None], 1.0, q_total)
        q = q / np.where(empty[:, None], 1.0, q.sum(axis=1, keepdims=True))
        p = self.js_p
        m = (p + q) / 2.0
        js = _rel_entr(p, m).sum(axis=1) + _rel_entr(q, m).sum(axis=1)
        js /= _LOG2
        out = np.sqrt(js / 2.0)
        out[empty] = 0.0
        return out.tolist()

    def js_distance(self, current_counts: np.ndarray) -> float:
        """Jensen-Shannon distance, base 2: scipy's ``jensenshannon`` arithmetic; 0 when a side is empty."""
        q = current_counts.astype(np.float64)
        q_total = q.sum()
        if self.js_p is None or q_total == 0:
            return 0.0
        q = q / q_total
        q = q / q.sum(axis=0, keepdims=True)
        p = self.js_p
        m = (p + q) / 2.0
        js = _rel_entr(p, m).sum() + _rel_entr(q, m).sum()
        js /= _LOG2
        return float(np.sqrt(js / 2.0))

    def total_variation(self, current_counts: np.ndarray) -> float:
        """Half the L1 distance between the proportions; 0 when a side is empty."""
        q = current_counts.astype(np.float64)
        q_total = q.sum()
        if self.tv_p is None or q_total == 0:
            return 0.0
        return float(0.5 * np.abs(self.tv_p - q / q_total).sum())

    def chi2(self, current_counts: np.ndarray) -> tuple[float, float, int]:
        """Chi-square homogeneity (statistic, p-value, dof): see :func:`chi2_two_sample`.

        Row, column and table sums of counts are sums of integers below 2**53, exact in any order;
        the expected frequencies, the terms and their (pairwise, row-major) sum are scipy's
        expressions on the same table.
        """
        cur = current_counts.astype(np.float64)
        cols = self.counts + cur  # the table's column sums
        keep = cols > 0
        k = int(np.count_nonzero(keep))
        if k < 2:
            return 0.0, 1.0, 0
        if k == self.size:
            table = np.stack((self.counts, cur))
        else:
            table = np.stack((self.counts[keep], cur[keep]))
            cols = cols[keep]
        rows = table.sum(axis=1, keepdims=True)
        if rows[0, 0] == 0 or rows[1, 0] == 0:
            return 0.0, 1.0, 0
        expected = (rows * cols) / table.sum()
        terms = (table - expected) ** 2 / expected
        stat = terms.reshape(-1).sum()
        return float(stat), float(_special.chdtrc(np.float64(k - 1), stat)), k - 1


    def chi2_rows(self, counts: np.ndarray) -> list[tuple[float, float, int]]:
        """:meth:`chi2` of every row of ``counts``: rows keeping the same categories are done together, with the same operations per row."""
        cur = counts.astype(np.float64)
        cols = self.counts + cur
        keep = cols > 0
        out: list[tuple[float, float, int]] = [(0.0, 1.0, 0)] * cur.shape[0]
        patterns, which = np.unique(keep, axis=0, return_inverse=True)
        for g, pattern in enumerate(patterns):
            k = int(np.count_nonzero(pattern))
            if k < 2:
                continue
            rows_of = np.flatnonzero(which.reshape(-1) == g)
            table = np.empty((rows_of.shape[0], 2, k))
            table[:, 0] = self.counts[pattern]
            table[:, 1] = cur[rows_of][:, pattern]
            sums = table.sum(axis=2, keepdims=True)
            expected = (sums * cols[rows_of][:, None, pattern]) / table.reshape(rows_of.shape[0], -1).sum(axis=1)[:, None, None]
            terms = (table - expected) ** 2 / expected
            stat = terms.reshape(rows_of.shape[0], -1).sum(axis=1)
            p = _special.chdtrc(np.float64(k - 1), stat)
            empty = ((sums[:, 0, 0] == 0) | (sums[:, 1, 0] == 0)).tolist()
            for r, s_, p_, e in zip(rows_of.tolist(), stat.tolist(), p.tolist(), empty, strict=True):
                if not e:
                    out[r] = (s_, p_, k - 1)
        return out

    def total_variation_rows(self, counts: np.ndarray) -> list[float]:
        """:meth:`total_variation` of every row of ``counts``: the same operations, row by row."""
        q = counts.astype(np.float64)
        q_total = q.sum(axis=1, keepdims=True)
        if self.tv_p is None:
            return [0.0] * q.shape[0]
        empty = q_total[:, 0] == 0
        out = 0.5 * np.abs(self.tv_p - q / np.where(empty[:, None], 1.0, q_total)).sum(axis=1)
        out[empty] = 0.0
        return out.tolist()


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population Stability Index over aligned bins: sum((q - p) * ln(q / p))."""
    return BinnedReference(reference_counts).psi(np.asarray(current_counts, dtype=np.float64))


def js_distance(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two histograms."""
    return BinnedReference(reference_counts).js_distance(np.asarray(current_counts, dtype=np.float64))


class KsReference:
    """A KS reference sample, sorted and NaN-free, for :func:`ks_sorted` (``of`` gives ``None`` otherwise).

    ``walk``: the compiled merge walk (:func:`stream_monitor.core.kernels.ks_walk_python`) when the
    sample is a contiguous float64 array and numba is on, else ``None`` (numpy's searches; also
    taken for a read-only sample or window).
    """

    __slots__ = ("_table", "data1", "n1", "walk")

    def __init__(self, data1: np.ndarray) -> None:
        self.data1 = data1
        self.n1 = data1.shape[0]
        self.walk = kernels.ks_walk() if data1.dtype == np.float64 and data1.flags.c_contiguous else None
        self._table: tuple[Any, ...] | None | bool = False  # window_extremes' bucket table (None: not for it), made on first use

    def window_extremes(self, values: np.ndarray) -> tuple[float, float] | None:
        """(max, min) of I/n1 - J/n2 of the window ``values`` (any order: a channel's ring) by the compiled
        :func:`~stream_monitor.core.kernels.ks_window_python`, no sort: :func:`ks_of_extremes` of them is :func:`ks_sorted`'s
        result. ``None`` when it does not apply (numba off, a reference of infinite ends, a window that is not
        contiguous float64 or holds a NaN): then sort the window for :func:`ks_sorted`.

        >>> ref = KsReference(np.array([0.0, 1.0, 2.0, 3.0]))
        >>> got = ref.window_extremes(np.array([5.0, 1.0, 1.0]))
        >>> got is None or ks_of_extremes(4, 3, *got) == ks_sorted(ref, np.array([1.0, 1.0, 5.0]))
        True
        """
        table = self._table
        if table is False:
            table = self._table = self._window_table()
        if table is None or values.dtype != np.float64 or not (values.flags.c_contiguous and values.flags.writeable) or values.shape[0] == 0:
            return None  # (the kernel's one signature takes writable contiguous float64 arrays)
        kernel, first, run_end, scale = table
        scratch = _scratch(self.n1)
        at_j, below_j = ks_steps(values.shape[0])
        hi, lo = kernel(values, self.data1, first, run_end, scale, below_j, at_j, *scratch)
        return None if hi != hi else (hi, lo)

    def _window_table(self) -> tuple[Any, ...] | None:
        """The kernel, ``first[b]`` (the reference values in buckets before b: the bucket of x is ``(x - data1[0]) * scale``
        truncated, within [0, 2 n1], as the kernel computes it: a value's bucket never exceeds that of a larger one, so
        ``first`` never passes its L), each value's run end and the scale; None when not for it."""
        data1, n1 = self.data1, self.n1
        kernel = kernels.ks_window_kernel()
        if kernel is None or data1.dtype != np.float64 or not (data1.flags.c_contiguous and data1.flags.writeable) or n1 >= 2**30:
            return None
        if not (np.isfinite(data1[0]) and np.isfinite(data1[-1])):
            return None
        buckets, lo_v = 2 * n1, data1[0]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a range that overflows (scale 0) or underflows (inf)
            scale = buckets / (data1[-1] - lo_v) if data1[-1] > lo_v else 0.0
            t = (data1 - lo_v) * scale  # (NaN: 0 * inf at the lowest value, bucket 0 as in the kernel)
        bucket = np.where(t >= buckets, buckets, np.where(t > 0.0, np.trunc(t), 0.0)).astype(np.int64)
        first = np.searchsorted(bucket, np.arange(buckets + 2), "left").astype(np.int32)
        ends = np.append(np.flatnonzero(data1[1:] != data1[:-1]) + 1, n1)
        run_end = ends[np.searchsorted(ends, np.arange(n1), "right")].astype(np.int32)
        return kernel, first, run_end, float(scale)

    @classmethod
    def of(cls, reference: np.ndarray) -> KsReference | None:
        """``reference`` (sorted or not) prepared; ``None`` when it is empty or has a NaN (scipy's business)."""
        if reference.shape[0] == 0 or np.isnan(reference).any():
            return None
        is_sorted = bool((reference[:-1] <= reference[1:]).all())
        return cls(reference if is_sorted else np.sort(reference))


# per reference array given to ks_2samp: its KsReference (None: scipy), dropped with the array
_KS_REF: dict[int, tuple[weakref.ref, KsReference | None]] = {}
# per window size n: (arange(1, n + 1) / n, arange(n) / n), J / n at and below distinct sorted values
_STEPS: dict[int, tuple[np.ndarray, np.ndarray]] = {}
_EN: dict[tuple[int, int], float] = {}
# per thread and reference size n1: the compiled window walk's scratch (kl, kr, counts: 2 n1 + 1 each), one set for every
# reference of that size, so it stays in cache across a monitor's channels (and per thread: the kernel runs without the GIL)
_KS_SCRATCH = threading.local()


def _scratch(n1: int) -> tuple[np.ndarray, ...]:
    sets: dict[int, tuple[np.ndarray, ...]] | None = getattr(_KS_SCRATCH, "sets", None)
    if sets is None:
        sets = _KS_SCRATCH.sets = {}
    got = sets.get(n1)
    if got is None:
        if len(sets) >= 64:
            sets.clear()
        got = sets[n1] = tuple(np.zeros(2 * n1 + 1, dtype=np.int32) for _ in range(3))
    return got


def _ks_reference(reference: np.ndarray) -> KsReference | None:
    key = id(reference)
    hit = _KS_REF.get(key)
    if hit is not None and hit[0]() is reference:
        return hit[1]
    prepared = KsReference.of(reference)
    try:
        ref = weakref.ref(reference, lambda _r, key=key, cache=_KS_REF: cache.pop(key, None))
    except TypeError:  # not weak-referenceable: no caching
        return prepared
    _KS_REF[key] = (ref, prepared)
    return prepared


def _ks_scipy(data1: np.ndarray, data2: np.ndarray) -> tuple[float, float]:
    res = _sps.ks_2samp(data1, data2, method="asymp")
    return float(res.statistic), float(res.pvalue)


def ks_2samp(reference_sorted: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov distance and asymptotic p-value (scipy's 'asymp' method).

    Bit-identical to ``scipy.stats.ks_2samp(reference_sorted, current, method="asymp")`` (two-sided)
    without its per-call argument handling (see :func:`ks_sorted`); inputs with NaN, or empty
    ones, go to scipy itself.

    >>> a, b = np.sort(np.sin(np.arange(500.0))), np.cos(np.arange(300.0)) + 0.3
    >>> res = _sps.ks_2samp(a, b, method="asymp")
    >>> ks_2samp(a, b) == (float(res.statistic), float(res.pvalue))
    True
    """
    ref = _ks_reference(reference_sorted) if current.shape[0] else None
    if ref is None:
        return _ks_scipy(reference_sorted, current)
    return ks_sorted(ref, np.sort(current))


def ks_steps(n2: int) -> tuple[np.ndarray, np.ndarray]:
    """(J/n2 at, J/n2 below) the sorted values of a window of ``n2`` distinct values: ``arange(1, n2 + 1) / n2``, ``arange(n2) / n2`` (cached)."""
    steps = _STEPS.get(n2)
    if steps is None:
        if len(_STEPS) >= 64:
            _STEPS.clear()
        steps = _STEPS[n2] = (np.arange(1, n2 + 1) / n2, np.arange(n2) / n2)
    return steps


def ks_sorted(ref: KsReference, data2: np.ndarray) -> tuple[float, float]:
    """:func:`ks_2samp` of a prepared reference and a non-empty *sorted* window, in O(n2 log n1).

    scipy computes v(x) = I(x)/n1 - J(x)/n2 at every point x of both samples (I, J: how many
    reference / window values are <= x) and takes D from max v and min v. This computes values of
    that same set only, from the same integer counts with the same two float operations, at points
    that include both extremes; so max and min, hence D and p, are the same floats:

    - rounding is monotone, so I/n1 - J/n2 never decreases as I grows and never increases as J grows;
    - at the largest point of both samples I = n1, J = n2 and v = 1.0 - 1.0 = 0.0: 0 is in the set;
    - min: a reference point x lies in a run [a, w) between consecutive distinct window values,
      where J is constant, so v(x) >= v(a) (I(x) >= I(a)); before the first window value J = 0 and
      v >= 0. The minimum is attained at a window value, and v is computed at each (``at``);
    - max: for a reference point x let w be the next window value above x (if there is none,
      J(x) = n2 and v(x) <= 0). The largest point x* of both samples below w has J(x*) = J(x) and
      I(x*) >= I(x), so v(x) <= v(x*) = #(ref < w)/n1 - #(window < w)/n2 (0.0, in the set, when
      nothing lies below w), computed for every window value w (``below``). The maximum is among
      those and ``at``.
    """
    n1, n2 = ref.n1, data2.shape[0]
    if data2[-1] != data2[-1]:  # NaN sorts last
        return _ks_scipy(ref.data1, data2)
    walk = ref.walk
    if walk is not None and data2.dtype == np.float64 and data2.flags.c_contiguous and data2.flags.writeable and ref.data1.flags.writeable:
        # the same counts and floats by one merge walk of both samples (kernels.ks_walk_python), no arrays; its
        # one signature takes writable contiguous float64 arrays (a read-only one would be a TypeError)
        max_s, min_s = walk(ref.data1, data2)
        return ks_of_extremes(n1, n2, max_s, min_s)
    data1 = ref.data1
    right1 = data1.searchsorted(data2, "right")
    # #(ref < w) is #(ref <= w) except where w is a reference value, i.e. data1[right1 - 1] == w
    # (where right1 is 0, data1[-1] >= data1[0] > w); those few are searched again
    tied = (data1[right1 - 1] == data2).nonzero()[0]
    if tied.shape[0]:
        left1 = right1.copy()
        left1[tied] = data1.searchsorted(data2[tied], "left")
    else:
        left1 = right1
    # J at a window value is the end of its run of equal values, J below it the run's start; the
    # values of a run are all equal, so one per run (its first) is enough
    first = np.empty(n2, dtype=bool)
    first[0] = True
    np.not_equal(data2[1:], data2[:-1], out=first[1:])
    steps = ks_steps(n2)
    if first.all():  # distinct: J at a window value is its rank, below it one less
        at_j, below_j = steps
    else:
        starts = first.nonzero()[0]
        ends = np.empty_like(starts)
        ends[:-1] = starts[1:]
        ends[-1] = n2
        at_j, below_j = ends / n2, starts / n2
        if left1 is right1:
            right1 = left1 = right1[starts]
        else:
            right1, left1 = right1[starts], left1[starts]
    i_at = right1 / n1
    at = i_at - at_j
    if left1 is right1:  # no window value is a reference value: below >= at elementwise (same I, smaller J)
        max_s = float((i_at - below_j).max())
    else:
        max_s = float(max((left1 / n1 - below_j).max(), at.max()))
    return ks_of_extremes(n1, n2, max_s, float(at.min()))


def ks_of_extremes(n1: int, n2: int, max_v: float, min_v: float) -> tuple[float, float]:
    """KS distance and asymptotic p-value from the max and min of I/n1 - J/n2 over both samples' points (scipy's)."""
    # scipy clips -min to [0, 1]: it is there already (v >= 0.0 - 1.0, and v = 0.0 at the largest
    # point), bar the sign of a zero, and a zero is never chosen over max_v >= 0
    min_s = -min_v
    d = min_s if min_s > max_v else max_v
    en = _EN.get((n1, n2))
    if en is None:
        m, n = sorted([float(n1), float(n2)], reverse=True)
        en = _EN[(n1, n2)] = float(np.round(m * n / (m + n)))
    key = (d, en)
    p = _KS_SF.get(key)
    if p is None:
        if len(_KS_SF) >= _KS_SF_MAX:
            _KS_SF.clear()
        p = _KS_SF[key] = float(np.clip(kstwo_sf(d, en), 0, 1))
    return d, p


def kstwo_sf(d: float, en: float) -> float:
    """``scipy.stats.kstwo.sf(d, en)``, the same number, for one point of a whole ``en`` >= 1.

    >>> kstwo_sf(0.05, 500.0) == float(_sps.kstwo.sf(0.05, 500.0))
    True
    """
    if _kolmogn_at is not None and en >= 1.0 and d == d:
        return float(_kolmogn_at(int(en), d, cdf=False))
    return float(_sps.kstwo.sf(d, en))


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
    return BinnedReference(reference_counts).chi2(np.asarray(current_counts, np.float64))


@functools.lru_cache(maxsize=1024)
def chi2_critical_value(p_value: float, dof: int) -> float:
    """The chi-square statistic at which a test with ``dof`` degrees of freedom reaches ``p_value``."""
    return float(_sps.chi2.isf(p_value, max(dof, 1)))


def total_variation(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Half the L1 distance between two histograms' proportions, in [0, 1]."""
    return BinnedReference(reference_counts).total_variation(np.asarray(current_counts, np.float64))


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


def histogram_unsorted(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray | None:
    """:func:`histogram_of_sorted` of ``values`` in any order (a channel's ring), by the compiled
    :func:`~stream_monitor.core.kernels.bin_counts_python`, no sort; ``None`` when it does not apply (numba off, arrays not
    contiguous float64, a NaN): then sort.

    >>> got = histogram_unsorted(np.array([9.0, -1.0, 0.0, 0.5, 1.0]), np.array([0.0, 1.0]))
    >>> got is None or got.tolist() == histogram_of_sorted(np.array([-1.0, 0.0, 0.5, 1.0, 9.0]), np.array([0.0, 1.0])).tolist()
    True
    """
    kernel = kernels.bin_counts_kernel()
    if kernel is None or values.dtype != np.float64 or inner_edges.dtype != np.float64:
        return None
    if not (values.flags.c_contiguous and inner_edges.flags.c_contiguous and values.flags.writeable and inner_edges.flags.writeable):
        return None  # (the kernel's one signature takes writable contiguous float64 arrays)
    counts = np.empty(inner_edges.shape[0] + 1, dtype=np.int64)
    return counts if kernel(values, inner_edges, counts) else None


def histogram_of_sorted(sorted_values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """:func:`histogram` of sorted ``values``: bin k holds edges[k-1] <= v < edges[k].

    One binary search per edge instead of one per value; NaN sorts last and lands in the last
    bin, as in :func:`histogram`.
    """
    bounds = np.empty(inner_edges.shape[0] + 2, dtype=np.intp)
    bounds[0] = 0
    bounds[1:-1] = sorted_values.searchsorted(inner_edges, "left")
    bounds[-1] = sorted_values.shape[0]
    return bounds[1:] - bounds[:-1]
