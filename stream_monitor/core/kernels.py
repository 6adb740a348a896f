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

Loading: :func:`page_hinkley` imports numba and compiles the kernel on its first call (the
detector calls it when built). ``@njit(cache=True)`` keeps the machine code on disk: in
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
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable

__all__ = ["JIT_SWITCH", "jit_enabled", "page_hinkley", "page_hinkley_python"]

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


def _compile(func: Callable[..., Any], signature: str) -> Any:
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
        _kernel = _compile(page_hinkley_python, _PAGE_HINKLEY_SIGNATURE) if jit_enabled() else None
    return _kernel
