"""Compiled per-value kernels (numba), loaded once, with the pure-Python paths as the fallback.

River stays the reference: a kernel performs River's arithmetic in River's order (IEEE double,
no fast-math, no fused multiply-add), so its state and trips are bitwise those of River's own
``update``; ``tests/core/test_optimisation_equivalence.py`` checks that value by value, on both
paths. Only loops that run once per value are compiled; everything else stays Python.

NaN: LLVM keeps IEEE results but not the sign and payload of a NaN when two NaNs meet in an
addition (it may swap the operands; x86 returns the first one's), so River's state could differ
from the kernel's in a NaN's sign bit. The kernel therefore does only arithmetic on finite
numbers: it stops before a non-finite value or state (only hostile inputs — huge values that
overflow — get there; the channel never passes NaN or infinity) and the caller finishes the call
in Python, where River's order is Python's own. Trips and state stay bitwise River's.

Loading: :func:`page_hinkley` (likewise :func:`hddm_a`, :func:`ddm`) imports numba and compiles the
kernel on its first call (the detector calls it when built). ``@njit(cache=True)`` keeps the machine code on disk: in
``NUMBA_CACHE_DIR`` when set, else next to this file (``__pycache__``) when that is writable, else
in numba's user cache (``~/.cache/numba``). A compile takes about a second of CPU, a cached load
about half of one, numba's import included (measured in the README). When no cache place is
writable the kernel is compiled without a cache (once per process), never an error. With numba
missing, ``NUMBA_DISABLE_JIT`` set, or ``STREAM_MONITOR_NO_JIT=1``, :func:`page_hinkley` returns
``None`` and callers use their Python path.

The kernel's source is plain Python (River's fresh state; the 4th value trips, at min_instances 3):

>>> import numpy as np
>>> state, trips = np.array([0.0, 0.0, 0.0, 0.0, float("inf"), -1.0]), np.zeros(4, dtype=np.int64)
>>> page_hinkley_python(np.array([0.0, 0.0, 0.0, 9.0]), state, 1.0, 0.0, 0.5, 3.0, False, trips)
(1, 4, True, False, True, True)
>>> int(trips[0]), state.tolist()
(3, [4.0, 2.25, 6.75, 6.75, 0.0, 6.75])

The error-stream kernels on 20 successes then 6 errors (plain lists: the Python source): River's
DDM (warm start 10) trips at the first error (its minimum has no spread), HDDM_A (confidence
0.001) at the fifth, as River's own ``update`` does (``tests/core/test_error_stream_kernels.py``):

>>> x, trips = [0.0] * 20 + [1.0] * 6, [0] * 26
>>> ddm_python(x, [0.0, 0.0, 0.0, 0.0, float("inf")], False, 10.0, 3.0, 3.0, False, False, trips), trips[0]
((1, 26, False, False, False), 20)
>>> logs = math.log(1 / 0.001), math.log(2 / 0.001), math.log(2 / 0.001)
>>> hddm_a_python(x, [0.0] * 6, *logs, False, False, trips), trips[0]
((1, 26, False, False), 24)
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable

import numpy as np

__all__ = [
    "JIT_SWITCH", "bin_codes_kernel", "bin_codes_python", "bin_counts_kernel", "bin_counts_python", "compile_kernel", "ddm", "ddm_python", "hddm_a", "hddm_a_python", "jit_enabled", "ks_steps_kernel", "ks_steps_python", "ks_walk", "ks_walk_python", "ks_window_kernel", "ks_window_python",
    "page_hinkley", "page_hinkley_python",
]  # fmt: skip

JIT_SWITCH = "STREAM_MONITOR_NO_JIT"
"""Environment variable: ``1`` keeps every per-value loop in Python (same results, slower)."""

_UNSET: Any = object()
_kernel: Any = _UNSET


def page_hinkley_python(
    z: Any, state: Any, alpha: float, delta: float, threshold: float, min_instances: float, drift: bool, trips: Any
) -> tuple[int, int, bool, bool, bool, bool]:
    """River's ``PageHinkley.update`` (mode "both") over the float64 array ``z``; the kernel's source.

    ``state`` is ``[n, mean, sum_increase, sum_decrease, min_increase, max_decrease]`` (float64,
    updated in place); ``drift`` is the trip flag of the previous value. The index of every value
    that tripped is written to ``trips`` (at least ``z.size`` long). It stops before a value when
    that value or the state is not finite. Returns (number of trips, number of values done, trip
    flag after the last value done, whether a reset happened, and whether ``min_increase`` /
    ``max_decrease`` were assigned since the last reset — River's reset value of ``max_decrease``
    is the int ``-1``, which the caller restores when it was not).
    """
    n = state[0]
    mu = state[1]
    s_inc = state[2]
    s_dec = state[3]
    min_inc = state[4]
    max_dec = state[5]
    inf = float("inf")
    k = 0
    done = z.size
    reset = False
    set_min = False
    set_max = False
    for i in range(z.size):
        if drift:  # River resets at the start of the update after a trip
            n = 0.0
            mu = 0.0
            s_inc = 0.0
            s_dec = 0.0
            min_inc = inf
            max_dec = -1.0
            drift = False
            reset = True
            set_min = False
            set_max = False
        x = z[i]
        if not (math.isfinite(x) and math.isfinite(mu) and math.isfinite(s_inc) and math.isfinite(s_dec) and math.isfinite(max_dec)):
            done = i  # a non-finite operand: the caller goes on in Python (see the module's note on NaN)
            break
        if not (math.isfinite(min_inc) or min_inc == inf):
            done = i
            break
        n += 1.0  # stats.Mean.update(x, w=1.0)
        mu += (1.0 / n) * (x - mu)
        dev = x - mu
        s_inc = alpha * s_inc + dev - delta
        s_dec = alpha * s_dec + dev + delta
        if s_inc < min_inc:
            min_inc = s_inc
            set_min = True
        if s_dec > max_dec:
            max_dec = s_dec
            set_max = True
        if n >= min_instances:
            drift = bool(s_inc - min_inc > threshold or max_dec - s_dec > threshold)
            if drift:
                trips[k] = i
                k += 1
    state[0] = n
    state[1] = mu
    state[2] = s_inc
    state[3] = s_dec
    state[4] = min_inc
    state[5] = max_dec
    return k, done, drift, reset, set_min, set_max


def jit_enabled() -> bool:
    """Whether per-value loops may be compiled: ``STREAM_MONITOR_NO_JIT`` is not set to a true value."""
    return os.environ.get(JIT_SWITCH, "").strip().lower() in ("", "0", "false", "no")


_PAGE_HINKLEY_SIGNATURE = "Tuple((int64, int64, boolean, boolean, boolean, boolean))(float64[::1], float64[::1], float64, float64, float64, float64, boolean, int64[::1])"


def compile_kernel(func: Callable[..., Any], signature: Any) -> Any:
    """``func`` compiled now for ``signature`` (only), with a disk cache when a cache place is writable; ``None`` without numba."""
    try:
        import numba
    except ImportError:
        return None
    if numba.config.DISABLE_JIT:
        return None
    options = {"nogil": True, "error_model": "numpy"}  # no fastmath: IEEE arithmetic exactly as Python's
    try:
        return numba.njit(signature, cache=True, **options)(func)
    except RuntimeError:  # "cannot cache function ...: no locator available" (read-only install, no home)
        return numba.njit(signature, cache=False, **options)(func)


def page_hinkley() -> Callable[..., tuple[int, int, bool, bool, bool, bool]] | None:
    """The compiled :func:`page_hinkley_python` (compiled, or loaded from the cache, on the first call), or ``None``.

    Its arrays must be C-contiguous and writable (the one compiled signature: nothing is compiled later).
    """
    global _kernel
    if _kernel is _UNSET:
        _kernel = compile_kernel(page_hinkley_python, _PAGE_HINKLEY_SIGNATURE) if jit_enabled() else None
    return _kernel


# ------------------------------------------------------------------ the 0/1 error-stream detectors
# River's HDDM_A and DDM over 0.0/1.0 errors. Every value is done on temporaries and committed only
# when nothing would leave River's arithmetic (a square root of a negative number or NaN, DDM's
# test against a minimum it never set): the kernel stops before such a value (``done``) with the
# state as it was, and the caller lets River's own ``update`` take the rest (and raise what River raises).


def hddm_a_python(
    x: Any, state: Any, log_bound: float, log_drift: float, log_warning: float, drift: bool, warning: bool, trips: Any
) -> tuple[int, int, bool, bool]:
    """River's ``HDDMA.update`` (one-sided, ``two_sided_test=False``) over the 0.0/1.0 errors ``x``; the kernel's source.

    ``state`` is ``[z.n, z.mean, x_min.n, x_min.mean, x_max.n, x_max.mean]`` (River's three
    ``stats.Mean``, float64, updated in place); ``log_bound`` is ``math.log(1.0 / drift_confidence)``
    (the Hoeffding bound's), ``log_drift`` and ``log_warning`` are ``math.log(2.0 / confidence)`` of
    the two tests, computed by the caller as River does. The index of every value that tripped is
    written to ``trips``. Returns (number of trips, number of values done, drift flag, warning flag).
    """
    zn = state[0]
    zm = state[1]
    an = state[2]
    am = state[3]
    bn = state[4]
    bm = state[5]
    k = 0
    done = len(x)
    for i in range(len(x)):
        tzn, tzm, tan, tam, tbn, tbm = zn, zm, an, am, bn, bm
        if drift:  # River resets at the start of the update after a trip: three new means
            tzn = 0.0
            tzm = 0.0
            tan = 0.0
            tam = 0.0
            tbn = 0.0
            tbm = 0.0
        tzn += 1.0  # z.update(x)
        tzm += (1.0 / tzn) * (x[i] - tzm)
        if tan == 0.0:  # x_min = z.clone()
            tan, tam = tzn, tzm
        if tbn == 0.0:
            tbn, tbm = tzn, tzm
        a_z = 1.0 / (2.0 * tzn) * log_bound  # _hoeffding_bound(z.n)
        a_x = 1.0 / (2.0 * tan) * log_bound
        if not (a_z >= 0.0 and a_x >= 0.0):
            done = i
            break
        eps_z = math.sqrt(a_z)
        if tam + math.sqrt(a_x) >= tzm + eps_z:  # the cut point for rises
            tan, tam = tzn, tzm
        a_x = 1.0 / (2.0 * tbn) * log_bound
        if not (a_x >= 0.0):
            done = i
            break
        if tbm - math.sqrt(a_x) <= tzm - eps_z:  # the cut point for falls (kept, not tested)
            tbn, tbm = tzn, tzm
        new_drift = False
        new_warning = False
        if tan != tzn:  # _mean_incr(drift_confidence), then _mean_incr(warning_confidence)
            m = (tzn - tan) / tan * (1.0 / tzn)
            a_d = m / 2.0 * log_drift
            if not (a_d >= 0.0):
                done = i
                break
            if tzm - tam >= math.sqrt(a_d):
                new_drift = True
            else:
                a_w = m / 2.0 * log_warning
                if not (a_w >= 0.0):
                    done = i
                    break
                new_warning = tzm - tam >= math.sqrt(a_w)
        zn, zm, an, am, bn, bm = tzn, tzm, tan, tam, tbn, tbm
        drift = new_drift
        warning = new_warning
        if drift:
            trips[k] = i
            k += 1
    state[0] = zn
    state[1] = zm
    state[2] = an
    state[3] = am
    state[4] = bn
    state[5] = bm
    return k, done, drift, warning


def ddm_python(
    x: Any, state: Any, has_min: bool, warm_start: float, warning_level: float, drift_level: float, drift: bool, warning: bool, trips: Any
) -> tuple[int, int, bool, bool, bool]:
    """River's ``DDM.update`` over the 0.0/1.0 errors ``x``; the kernel's source.

    ``state`` is ``[p.n, p.mean, p_min, s_min, ps_min]`` (float64, updated in place); ``has_min``
    says whether ``p_min`` and ``s_min`` are set (River's ``None`` when not). The index of every
    value that tripped is written to ``trips``. Returns (number of trips, number of values done,
    drift flag, warning flag, ``has_min``).
    """
    n = state[0]
    p = state[1]
    p_min = state[2]
    s_min = state[3]
    ps_min = state[4]
    inf = float("inf")
    k = 0
    done = len(x)
    for i in range(len(x)):
        tn, tp, tp_min, ts_min, tps_min, t_has, t_warning = n, p, p_min, s_min, ps_min, has_min, warning
        if drift:  # River's reset
            tn = 0.0
            tp = 0.0
            tp_min = 0.0
            ts_min = 0.0
            tps_min = inf
            t_has = False
            t_warning = False
        tn += 1.0  # p.update(x)
        tp += (1.0 / tn) * (x[i] - tp)
        a = tp * (1.0 - tp) / tn
        if not (a >= 0.0):
            done = i
            break
        s = math.sqrt(a)
        new_drift = False
        if tn > warm_start:
            ps = tp + s
            if ps <= tps_min:
                tp_min = tp
                ts_min = s
                tps_min = tp_min + ts_min
                t_has = True
            if not t_has:  # River compares with None here (and raises)
                done = i
                break
            t_warning = ps > tp_min + warning_level * ts_min
            if ps > tp_min + drift_level * ts_min:
                new_drift = True
                t_warning = False
        n, p, p_min, s_min, ps_min, has_min, warning = tn, tp, tp_min, ts_min, tps_min, t_has, t_warning
        drift = new_drift
        if drift:
            trips[k] = i
            k += 1
    state[0] = n
    state[1] = p
    state[2] = p_min
    state[3] = s_min
    state[4] = ps_min
    return k, done, drift, warning, has_min


_HDDM_A_SIGNATURE = "Tuple((int64, int64, boolean, boolean))(float64[::1], float64[::1], float64, float64, float64, boolean, boolean, int64[::1])"
_DDM_SIGNATURE = "Tuple((int64, int64, boolean, boolean, boolean))(float64[::1], float64[::1], boolean, float64, float64, float64, boolean, boolean, int64[::1])"
_kernels: dict[str, Any] = {}


def _cached_kernel(name: str, func: Callable[..., Any], signature: str) -> Any:
    if name not in _kernels:
        _kernels[name] = compile_kernel(func, signature) if jit_enabled() else None
    return _kernels[name]


def hddm_a() -> Callable[..., tuple[int, int, bool, bool]] | None:
    """The compiled :func:`hddm_a_python` (as :func:`page_hinkley`: on the first call), or ``None``."""
    return _cached_kernel("hddm_a", hddm_a_python, _HDDM_A_SIGNATURE)


def ddm() -> Callable[..., tuple[int, int, bool, bool, bool]] | None:
    """The compiled :func:`ddm_python` (as :func:`page_hinkley`: on the first call), or ``None``."""
    return _cached_kernel("ddm", ddm_python, _DDM_SIGNATURE)


# ------------------------------------------------------------------ two-sample KS of sorted samples


def ks_walk_python(data1: Any, data2: Any) -> tuple[float, float]:
    """(max, min) of I/n1 - J/n2 that :func:`stream_monitor.core.stats.ks_sorted` takes, by one merge walk; the kernel's source.

    ``data1`` (the reference, n1 values) and ``data2`` (the window, n2) are sorted, non-empty and
    NaN-free. For each run of equal window values w (window positions s .. e - 1) the walk counts
    the reference values < w (L) and <= w (R) and computes, as ``ks_sorted`` does from its
    ``searchsorted`` counts, ``at = R/n1 - e/n2`` and ``below = L/n1 - s/n2``: the same integers
    through the same two float operations (an integer divided by an integer is a float64 division
    in both). The min is that of ``at``; the max that of ``below`` and ``at`` (``ks_sorted`` leaves
    ``at`` out when no window value equals a reference value: then ``at`` <= ``below``, same I and a
    larger J, so the max is the same float). O(n1 + n2), no array made.

    >>> import numpy as np
    >>> ks_walk_python(np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 5.0]))
    (0.33333333333333337, -0.16666666666666663)
    """
    n1 = data1.shape[0]
    n2 = data2.shape[0]
    lt = 0  # reference values < w
    le = 0  # reference values <= w
    hi = -1.0  # every value is >= 0.0 - 1.0, and below at the first run is >= 0.0
    lo = 1.0
    s = 0
    while s < n2:
        w = data2[s]
        e = s + 1
        while e < n2 and data2[e] == w:
            e += 1
        while lt < n1 and data1[lt] < w:
            lt += 1
        if le < lt:
            le = lt
        while le < n1 and data1[le] <= w:
            le += 1
        at = le / n1 - e / n2
        below = lt / n1 - s / n2
        if at < lo:
            lo = at
        if below > hi:
            hi = below
        if at > hi:
            hi = at
        s = e
    return hi, lo


_KS_WALK_SIGNATURE = "UniTuple(float64, 2)(float64[::1], float64[::1])"


def ks_walk() -> Callable[..., tuple[float, float]] | None:
    """The compiled :func:`ks_walk_python` (as :func:`page_hinkley`: on the first call), or ``None`` (then ``ks_sorted``'s numpy path runs)."""
    return _cached_kernel("ks_walk", ks_walk_python, _KS_WALK_SIGNATURE)


# ------------------------------------------------------------------ KS at every evaluation step of a batch


def ks_steps_python(span: Any, data1: Any, size: int, starts: Any, below_j: Any, at_j: Any, hi_out: Any, lo_out: Any) -> int:
    """Per window ``span[s : s + size]`` (``s`` in ``starts``, ascending), the max and min of I/n1 - J/n2 that
    :func:`stream_monitor.core.detectors.steps.ks_rows` takes (into ``hi_out``, ``lo_out``); the kernel's source. Returns 1.

    ``data1`` (the reference, n1 values) is sorted, non-empty, its ends finite; ``span`` NaN-free. Each span value's
    L and R (reference values <, <= it) come from a bucket table over the reference's range and a short scan (exact
    whatever the buckets); a window is a count per class ``L + R`` (one per distinct (L, R)), slid from step to step.
    Walking the classes in order visits the window's values in sorted order, a class's run at positions k .. k + c - 1:
    ``ks_rows`` takes ``L/n1 - below_j[k]`` for the max and ``R/n1 - at_j[k + c - 1]`` for the min, the run's extremes
    (rounding is monotone), from the same integers by the same float operations. O(len(span) + steps x n1).

    >>> import numpy as np
    >>> from stream_monitor.core.stats import ks_steps
    >>> hi, lo, (at, below) = np.zeros(2), np.zeros(2), ks_steps(3)
    >>> ks_steps_python(np.array([1.0, 1.0, 5.0, 0.5]), np.array([0.0, 1.0, 2.0, 3.0]), 3, np.array([0, 1]), below, at, hi, lo)
    1
    >>> hi.tolist(), lo.tolist()  # the first window is ks_walk_python's example
    ([0.33333333333333337, 0.33333333333333337], [-0.16666666666666663, -0.16666666666666663])
    """
    n1, n, lo_v, buckets = data1.shape[0], span.shape[0], data1[0], 4 * data1.shape[0]
    scale = buckets / (data1[n1 - 1] - lo_v) if data1[n1 - 1] > lo_v else 0.0
    first = np.empty(buckets + 2, dtype=np.int64)  # first[b]: the reference values in buckets before b
    i = 0
    for b in range(buckets + 2):
        while i < n1:
            t = (data1[i] - lo_v) * scale
            if (buckets if t >= buckets else int(t) if t > 0.0 else 0) >= b:
                break
            i += 1
        first[b] = i
    run_end = np.empty(n1, dtype=np.int64)  # the end of the run of equal reference values at i
    run_end[n1 - 1] = n1
    for i in range(n1 - 2, -1, -1):
        run_end[i] = run_end[i + 1] if data1[i] == data1[i + 1] else i + 1
    keys, kl, kr = np.empty(n, dtype=np.int64), np.zeros(2 * n1 + 1, dtype=np.int64), np.zeros(2 * n1 + 1, dtype=np.int64)
    for j in range(n):
        v = span[j]
        if v < lo_v:
            low = 0
        else:
            t = (v - lo_v) * scale  # (NaN when v is infinite and the reference one value: bucket 0)
            low = first[buckets if t >= buckets else int(t) if t > 0.0 else 0]
            while low < n1 and data1[low] < v:
                low += 1
        high = run_end[low] if low < n1 and data1[low] == v else low
        keys[j] = low + high
        kl[low + high], kr[low + high] = low, high
    counts, cur_s, cur_e = np.zeros(2 * n1 + 1, dtype=np.int64), 0, 0
    for step in range(starts.shape[0]):
        s = starts[step]
        e = s + size
        if step == 0 or s >= cur_e:
            counts[:] = 0
            for j in range(s, e):
                counts[keys[j]] += 1
        else:
            for j in range(cur_s, s):
                counts[keys[j]] -= 1
            for j in range(cur_e, e):
                counts[keys[j]] += 1
        cur_s, cur_e, k, hi, lo = s, e, 0, -math.inf, math.inf
        for key in range(2 * n1 + 1):
            c = counts[key]
            if c:
                below = kl[key] / n1 - below_j[k]
                if below > hi:
                    hi = below
                k += c
                at = kr[key] / n1 - at_j[k - 1]
                if at < lo:
                    lo = at
        hi_out[step], lo_out[step] = hi, lo
    return 1


_KS_STEPS_SIGNATURE = "int64(float64[::1], float64[::1], int64, int64[::1], float64[::1], float64[::1], float64[::1], float64[::1])"


def ks_steps_kernel() -> Callable[..., int] | None:
    """The compiled :func:`ks_steps_python` (as :func:`page_hinkley`: on the first call), or ``None`` (then the steps' numpy path runs)."""
    return _cached_kernel("ks_steps", ks_steps_python, _KS_STEPS_SIGNATURE)


def bin_codes_python(span: Any, edges: Any, out: Any) -> int:
    """``out[j]``: how many of the sorted ``edges`` are <= ``span[j]`` (``edges.searchsorted(span, "right")``: a value's
    histogram bin); the kernel's source. ``span`` NaN-free. Returns 1.

    >>> import numpy as np
    >>> out = np.empty(5, dtype=np.int64)
    >>> bin_codes_python(np.array([-1.0, 0.0, 0.5, 1.0, 9.0]), np.array([0.0, 1.0, 1.0]), out), out.tolist()
    (1, [0, 1, 1, 3, 3])
    """
    ne = edges.shape[0]
    for j in range(span.shape[0]):
        v = span[j]
        if ne <= 32:  # (the usual few edges: counted without a branch to mispredict)
            a = 0
            for k in range(ne):
                a += edges[k] <= v
        else:
            a = 0
            b = ne
            while a < b:
                mid = (a + b) >> 1
                if edges[mid] <= v:
                    a = mid + 1
                else:
                    b = mid
        out[j] = a
    return 1


_BIN_CODES_SIGNATURE = "int64(float64[::1], float64[::1], int64[::1])"


def bin_codes_kernel() -> Callable[..., int] | None:
    """The compiled :func:`bin_codes_python` (as :func:`page_hinkley`: on the first call), or ``None``."""
    return _cached_kernel("bin_codes", bin_codes_python, _BIN_CODES_SIGNATURE)


# ------------------------------------------------------------------ one window's KS and bins, no sort (a channel's ring)


def ks_window_python(window: Any, data1: Any, first: Any, run_end: Any, scale: float, below_j: Any, at_j: Any, kl: Any, kr: Any, counts: Any) -> tuple[float, float]:
    """:func:`ks_steps_python` for one window, in any order (a channel's ring), the bucket table made once (``first``: one entry
    per bucket plus 2, ``run_end``: n1; ``stats.KsReference.window_extremes``): ``ks_rows``' (max, min), the same floats;
    (NaN, NaN) at a NaN. ``kl``, ``kr``, ``counts``: scratch of 2 n1 + 1 each. The kernel's source.

    >>> import numpy as np
    >>> from stream_monitor.core.stats import ks_steps
    >>> first, (at, below), scratch = np.array([0] + [1] * 5 + [2] * 5 + [3] * 6 + [4]), ks_steps(3), [np.zeros(9, dtype=np.int64) for _ in 'lrc']
    >>> got = ks_window_python(np.array([5.0, 1.0, 1.0]), np.arange(4.0), first, np.arange(1, 5), 16 / 3.0, below, at, *scratch)
    >>> [float(x) for x in got]  # ks_walk_python's example
    [0.33333333333333337, -0.16666666666666663]
    """
    n1, lo_v, buckets = data1.shape[0], data1[0], first.shape[0] - 2
    counts[:] = 0
    for j in range(window.shape[0]):
        v = window[j]
        if v != v:
            return math.nan, math.nan
        if v < lo_v:
            low = 0
        else:
            t = (v - lo_v) * scale
            low = first[buckets if t >= buckets else int(t) if t > 0.0 else 0]
            while low < n1 and data1[low] < v:
                low += 1
        high = run_end[low] if low < n1 and data1[low] == v else low
        counts[low + high] += 1
        kl[low + high], kr[low + high] = low, high
    k, hi, lo = 0, -math.inf, math.inf
    for key in range(2 * n1 + 1):
        c = counts[key]
        if c:  # (as ks_steps_python's walk)
            hi = max(hi, kl[key] / n1 - below_j[k])
            k += c
            lo = min(lo, kr[key] / n1 - at_j[k - 1])
    return hi, lo


_KS_WINDOW_SIGNATURE = "UniTuple(float64, 2)(float64[::1], float64[::1], int32[::1], int32[::1], float64, float64[::1], float64[::1], int32[::1], int32[::1], int32[::1])"


def ks_window_kernel() -> Callable[..., tuple[float, float]] | None:
    """The compiled :func:`ks_window_python` (as :func:`page_hinkley`: on the first call), or ``None`` (then the window is sorted)."""
    return _cached_kernel("ks_window", ks_window_python, _KS_WINDOW_SIGNATURE)


def bin_counts_python(values: Any, edges: Any, counts: Any) -> int:
    """``counts[k]``: the values with k of the sorted ``edges`` <= them (``stats.histogram``'s bins), any order; returns 0 at a NaN
    (counts unfinished), else 1. The kernel's source.

    >>> import numpy as np
    >>> counts = np.empty(3, dtype=np.int64)
    >>> bin_counts_python(np.array([9.0, -1.0, 0.0, 0.5, 1.0]), np.array([0.0, 1.0]), counts), counts.tolist()
    (1, [1, 2, 2])
    """
    counts[:] = 0
    ne = edges.shape[0]
    for j in range(values.shape[0]):
        v = values[j]
        if v != v:
            return 0
        a, b = 0, ne
        if ne <= 32:  # (as bin_codes_python)
            for k in range(ne):
                a += edges[k] <= v
        while a < b and ne > 32:
            mid = (a + b) >> 1
            a, b = (mid + 1, b) if edges[mid] <= v else (a, mid)
        counts[a] += 1
    return 1


_BIN_COUNTS_SIGNATURE = "int64(float64[::1], float64[::1], int64[::1])"


def bin_counts_kernel() -> Callable[..., int] | None:
    """The compiled :func:`bin_counts_python` (as :func:`page_hinkley`: on the first call), or ``None``."""
    return _cached_kernel("bin_counts", bin_counts_python, _BIN_COUNTS_SIGNATURE)
