"""A channel's window statistics at every evaluation step of one batch, computed in one pass.

With the default window (1,000 observations, a step of 250), a batch of 5,000 records crosses
twenty evaluation steps of each channel, and the windows of consecutive steps share three
quarters of their values. Evaluating each step on its own sorted the window again and paid
numpy's per-call overhead on small arrays a dozen times per detector. :class:`WindowSteps` takes
the channel's history as it will be at the batch's evaluation points (the ring's content, oldest
first, followed by the batch's values and flags) and gives every detector the same inputs it
would have read from the ring at each point, for all points at once:

- flag counts per step (missing / invalid / outside rates): none to count when every observation
  is valid, else one ``bincount`` over the segments between window bounds (:func:`window_counts`);
- category or bin counts per step from the same segment ``bincount`` (a value's bin: how many
  edges are <= it, counted by a compiled loop, :func:`~stream_monitor.core.kernels.bin_codes_python`);
- KS by a compiled walk (:func:`~stream_monitor.core.kernels.ks_steps_python`): each value's rank
  among the reference values once, each window a count per rank slid from step to step, its
  extremes read off in rank order. Without numba (or for a reference too large to walk at every
  step, ``WALK_PER_VALUE``): each value's rank from one sort of the batch's values and one search
  of the reference in it, one integer sort per window, and the extremes of every step's
  differences in a few array operations (:func:`ks_rows`); the bins then come from that sort.
  Both give the same floats (``tests/core/test_ks_steps_kernel.py``).

Detectors read them through ``WindowDetector.evaluate_steps`` and return the very
:class:`Evaluation` s ``evaluate`` would have (same floats: ``tests/core/test_window_steps.py``
checks it against the per-step code). The window's *order* never mattered to a window statistic
(the ring is read unrolled or not), so only its multiset of values is reproduced here.

Detectors without ``evaluate_steps`` (or that decline a batch: KS with a NaN anywhere, which a
channel's window never holds) keep being evaluated on the live ring, step by step. So are all of a
slice's steps when it reaches only a few (``channel.BATCHED_STEPS``): this pass costs ~200 µs per
channel and slice whatever the number of steps, more than a few steps on the ring.
"""

from __future__ import annotations

import math

import numpy as np

from stream_monitor.core import kernels
from stream_monitor.core.stats import ks_steps
from stream_monitor.core.detectors.base import FLAG_INVALID, FLAG_MISSING, FLAG_OUTSIDE

__all__ = ["ROWS_BUDGET", "WindowSteps", "ks_rows", "window_counts"]

WALK_PER_VALUE = 8
"""The compiled KS walk visits the reference's 2 n1 + 1 classes at every step; it is taken while that is at most this many per window value (else a sort per window is cheaper)."""

ROWS_BUDGET = 1 << 20
"""Values of sorted windows held at once (a chunk of steps): 20 steps of 1,000 in one go, a window of 100,000 one step at a time."""

class WindowSteps:
    """The windows of one channel at the evaluation steps of one batch.

    ``flags`` / ``values`` are the channel's observation flags and present values oldest first
    (the ring's content, then the batch's); step ``j``'s window is the ``size`` observations
    before ``obs_ends[j]`` and the ``size`` values before ``value_ends[j]`` (``full[j]``: there are
    that many values; detectors that need values skip the step otherwise, as on the ring).
    Every array is computed on first use and shared by the channel's detectors.
    """

    __slots__ = ("_bins", "_codes", "_counts", "_plain", "_sorted", "flags", "full", "obs_ends", "size", "value_ends", "values")

    def __init__(self, flags: np.ndarray, values: np.ndarray, obs_ends: np.ndarray, value_ends: np.ndarray, size: int) -> None:
        self.flags = flags
        self.values = values
        self.obs_ends = obs_ends
        self.value_ends = value_ends
        self.size = size
        self.full = value_ends >= size
        self._counts: list[list[int]] | None = None
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None
        self._plain: np.ndarray | bool | None = None  # the span for the compiled walk (False: not for it)
        self._bins: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._codes: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.obs_ends.shape[0]

    @property
    def flag_counts(self) -> list[list[int]]:
        """Per step, observations per flag value (index ``FLAG_*``), as ``WindowView.flag_counts``."""
        if self._counts is None:
            size, ends = self.size, self.obs_ends
            lo, hi = int(ends[0]) - size, int(ends[-1])
            flags = self.flags[lo:hi]
            if not flags.any():  # all FLAG_OK, the usual case
                self._counts = [[size, 0, 0, 0] for _ in range(ends.shape[0])]
            else:
                self._counts = window_counts(flags, FLAG_OUTSIDE + 1, ends - lo, size).tolist()
        return self._counts

    def _span(self) -> tuple[int, int]:
        """The values any full step's window holds: ``values[lo:hi]``."""
        ends = self.value_ends[self.full]
        return int(ends[0]) - self.size, int(ends[-1])

    def _sorted_span(self) -> tuple[np.ndarray, np.ndarray]:
        """(order, sorted values) of the span: ``values[lo:hi][order]`` is sorted; one sort shared by KS and the bins."""
        if self._sorted is None:
            lo, hi = self._span()
            span = self.values[lo:hi]
            order = np.argsort(span)
            self._sorted = (order, span[order])
        return self._sorted

    def ks_extremes(self, data1: np.ndarray) -> tuple[list[float], list[float]] | None:
        """Per full step, the max and min of I/n1 - J/n2 over its window and the sorted reference ``data1`` (see :func:`ks_rows`).

        Each value's R and L (how many reference values are <=, < it) come from one sort of the
        batch's values and a search of the reference in them, not from a search per value per
        window; then each window's R (and L, unless no value equals a reference value) are sorted,
        :data:`ROWS_BUDGET` values at a time. ``None`` when a window holds a NaN (scipy's business,
        step by step).
        """
        ends = self.value_ends[self.full]
        if ends.shape[0] == 0:
            return [], []
        lo, _ = self._span()
        walked = self._ks_walked(data1, ends - self.size - lo)
        if walked is not None:
            return walked
        order, ordered = self._sorted_span()
        if ordered.shape[0] and ordered[-1] != ordered[-1]:  # NaN sorts last
            return None
        k = ordered.shape[0]
        # a reference value x is <= the k-th smallest span value v iff fewer than k + 1 span values are < x
        # (and < v iff at most k are <= x): R and L of every span value by counting
        dtype = np.int32 if data1.shape[0] < 2**31 else np.int64
        right = np.empty(k, dtype=dtype)
        right[order] = np.bincount(ordered.searchsorted(data1, "left"), minlength=k + 1)[:k].cumsum()
        left = np.empty(k, dtype=dtype)
        left[order] = np.bincount(ordered.searchsorted(data1, "right"), minlength=k + 1)[:k].cumsum()
        tied = not np.array_equal(left, right)
        take = ends - self.size - lo
        windows_r = np.lib.stride_tricks.sliding_window_view(right, self.size)
        windows_l = np.lib.stride_tricks.sliding_window_view(left, self.size)
        hi_all: list[float] = []
        lo_all: list[float] = []
        chunk = max(1, ROWS_BUDGET // self.size)
        for c in range(0, take.shape[0], chunk):
            rows = take[c : c + chunk]
            right_rows = windows_r[rows]
            right_rows.sort(axis=1)
            left_rows = right_rows
            if tied:
                left_rows = windows_l[rows]
                left_rows.sort(axis=1)
            h, low = ks_rows(data1.shape[0], right_rows, left_rows)
            hi_all += h
            lo_all += low
        return hi_all, lo_all

    def _plain_span(self) -> np.ndarray | None:
        """The span as the compiled walk takes it (float64, contiguous, no NaN), else None: the sorted span's path."""
        if self._plain is None:
            lo, hi = self._span()
            span = self.values[lo:hi]
            ok = span.dtype == np.float64 and span.flags.c_contiguous and not np.isnan(span).any() and kernels.ks_steps_kernel() is not None
            ok = ok and kernels.bin_codes_kernel() is not None
            self._plain = span if ok else False
        return self._plain if self._plain is not False else None

    def _ks_walked(self, data1: np.ndarray, starts: np.ndarray) -> tuple[list[float], list[float]] | None:
        """:meth:`ks_extremes` by the compiled walk (:func:`~stream_monitor.core.kernels.ks_steps_python`: the same floats,
        no sort), when it applies: a reference of finite ends, not so large that walking it per step costs more than
        sorting the window (and the span as :meth:`_plain_span` takes it); else None."""
        n1 = data1.shape[0]
        if self._sorted is not None or n1 == 0 or 2 * n1 + 1 > WALK_PER_VALUE * self.size or data1.dtype != np.float64:
            return None
        if not (math.isfinite(data1[0]) and math.isfinite(data1[-1])) or not data1.flags.c_contiguous:
            return None
        span = self._plain_span()
        if span is None:
            return None
        at_j, below_j = ks_steps(self.size)
        hi, low = np.empty(starts.shape[0]), np.empty(starts.shape[0])
        kernels.ks_steps_kernel()(span, data1, self.size, starts.astype(np.int64, copy=False), below_j, at_j, hi, low)  # type: ignore[misc]
        return hi.tolist(), low.tolist()

    def counts(self, codes: np.ndarray, minlength: int) -> np.ndarray:
        """Per full step, ``np.bincount`` of ``codes`` over its window, ``minlength`` bins (``codes``: one non-negative int per span value)."""
        ends = self.value_ends[self.full]
        if ends.shape[0] == 0:
            return np.zeros((0, minlength), dtype=np.int64)
        return window_counts(codes, minlength, ends - self._span()[0], self.size)

    def bin_counts(self, inner_edges: np.ndarray) -> np.ndarray:
        """Per full step, ``stats.histogram`` of its window over ``inner_edges`` (bin k: edges[k-1] <= v < edges[k])."""
        key = id(inner_edges)
        hit = self._bins.get(key)
        if hit is None or hit[0] is not inner_edges:
            if not self.full.any():
                return np.zeros((0, inner_edges.shape[0] + 1), dtype=np.int64)
            span = self._plain_span() if self._sorted is None else None
            if span is not None and inner_edges.dtype == np.float64 and inner_edges.flags.c_contiguous:
                # no sort to share (the compiled KS walk needs none): a value's bin is how many edges are <= it
                codes = np.empty(span.shape[0], dtype=np.int64)
                kernels.bin_codes_kernel()(span, inner_edges, codes)  # type: ignore[misc]  # (edges.searchsorted(span, "right"))
            else:  # histogram_of_sorted over the sorted span, each value's bin put back in its place
                order, ordered = self._sorted_span()
                bounds = np.empty(inner_edges.shape[0] + 2, dtype=np.intp)
                bounds[0] = 0
                bounds[1:-1] = ordered.searchsorted(inner_edges, "left")
                bounds[-1] = ordered.shape[0]
                codes = np.empty(ordered.shape[0], dtype=np.intp)
                codes[order] = np.repeat(np.arange(inner_edges.shape[0] + 1), np.diff(bounds))
            hit = self._bins[key] = (inner_edges, self.counts(codes, inner_edges.shape[0] + 1))
        return hit[1]

    def code_counts(self, minlength: int) -> np.ndarray:
        """Per full step, ``np.bincount(window codes, minlength=minlength)`` (categorical channels)."""
        hit = self._codes.get(minlength)
        if hit is None:
            if not self.full.any():
                return np.zeros((0, minlength), dtype=np.int64)
            lo, hi = self._span()
            hit = self._codes[minlength] = self.counts(self.values[lo:hi].astype(np.intp), minlength)
        return hit


def window_counts(codes: np.ndarray, minlength: int, ends: np.ndarray, size: int) -> np.ndarray:
    """``np.bincount(codes[e - size : e], minlength=minlength)`` for every ``e`` of ``ends`` (ascending, all ``>= size``), one row each.

    One ``bincount`` of (segment, code) over the segments between consecutive window bounds,
    summed cumulatively: integer counts, exact. Steps are taken so many at a time that the
    segment table stays within :data:`ROWS_BUDGET` entries.

    >>> window_counts(np.array([0, 1, 1, 2, 0, 0]), 3, np.array([3, 5, 6]), 3).tolist()
    [[1, 2, 0], [1, 1, 1], [2, 0, 1]]
    """
    k = max(minlength, int(codes[int(ends[0]) - size : int(ends[-1])].max()) + 1)  # np.bincount's length
    chunk = max(1, ROWS_BUDGET // (2 * k))
    parts = []
    for c in range(0, ends.shape[0], chunk):
        part_ends = ends[c : c + chunk]
        starts = part_ends - size
        bounds = np.unique(np.concatenate((starts, part_ends)))
        base, span = int(bounds[0]), int(bounds[-1])
        # a value's segment: how many bounds are at or before it (1 .. len(bounds) - 1)
        segment = np.repeat(np.arange(1, bounds.shape[0]) * k, np.diff(bounds))
        per = np.bincount(segment + codes[base:span], minlength=bounds.shape[0] * k).reshape(-1, k)
        cum = per.cumsum(axis=0)  # row b: counts of the values in [base, bounds[b])
        parts.append(cum[np.searchsorted(bounds, part_ends)] - cum[np.searchsorted(bounds, starts)])
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def ks_rows(n1: int, right: np.ndarray, left: np.ndarray) -> tuple[list[float], list[float]]:
    """Max and min of I/n1 - J/n2 over both samples' points, per window, from its values' sorted R and L (see :meth:`WindowSteps.ks_extremes`).

    :func:`stream_monitor.core.stats.ks_sorted`'s arithmetic without finding runs of equal values:
    at sorted position k (0-based) take ``R/n1 - (k + 1)/n2`` for the min and ``L/n1 - k/n2`` for
    the max. Within a run of equal values (equal R and L) the first is smallest at the run's end,
    where it is ks_sorted's ``at``, and the second largest at the run's start, where it is its
    ``below``; elsewhere in the run they are larger / smaller (rounding is monotone), so neither
    extreme moves. ks_sorted's other max candidate, ``at`` of a run equal to a reference value,
    never exceeds the next run's ``below`` (same J, an I at least as large) or, for the last run,
    0.0 <= the first run's ``below``: it is not needed. Same integers, same two float operations:
    the same floats. Returns (max per window, min per window).
    """
    m, n2 = right.shape
    if m == 0:
        return [], []
    at_j, below_j = ks_steps(n2)
    lo = right / n1
    hi = (lo if left is right else left / n1) - below_j
    lo -= at_j
    return hi.max(axis=1).tolist(), lo.min(axis=1).tolist()
