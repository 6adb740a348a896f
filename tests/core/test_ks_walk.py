"""KS by one merge walk of the sorted samples (``kernels.ks_walk``) gives ``stats.ks_sorted``'s numpy path's floats exactly.

The compiled kernel, its Python source and the numpy searches are compared on samples with ties
within and across the two sides, signed zeros, infinities, constant windows, one-value samples,
references much larger or smaller than the window; and with the JIT switched off no kernel is
loaded (numba never imported) and the numpy path gives the same result.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from stream_monitor.core import kernels, stats
from tests.core.test_kernels import ROOT

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
POOL = [-math.inf, -2.5, -1.0, -0.0, 0.0, 1e-300, 0.25, 1.0, 3.0, 1e300, math.inf]


@st.composite
def sorted_pair(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """A sorted reference and a sorted window: values from a small pool (ties, signed zeros, infinities) or continuous ones."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n1 = draw(st.sampled_from([1, 2, 7, 50, 300, 2000]))
    n2 = draw(st.sampled_from([1, 3, 40, 250, 1000]))
    out = []
    for n in (n1, n2):
        x = rng.normal(draw(st.sampled_from([0.0, 0.5, 5.0])), 1.0, n)
        share = draw(st.sampled_from([0.0, 0.3, 1.0]))
        pick = rng.random(n) < share
        x[pick] = rng.choice(POOL[: draw(st.integers(1, len(POOL)))], int(pick.sum()))
        out.append(np.sort(x))
    return out[0], out[1]


def _same(x: tuple[float, float], y: tuple[float, float]) -> bool:
    """Equal floats, a NaN p-value (scipy's, one value per side) equal to a NaN."""
    return all(u == v or (math.isnan(u) and math.isnan(v)) for u, v in zip(x, y, strict=True))


def _numpy_path(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    ref = stats.KsReference(a)
    ref.walk = None
    return stats.ks_sorted(ref, b)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy on one-value samples
@PROPS
@given(sorted_pair())
def test_the_walk_equals_the_numpy_searches_and_scipy(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    expected = _numpy_path(a, b)
    hi, lo = kernels.ks_walk_python(a, b)
    assert _same(stats.ks_of_extremes(a.size, b.size, hi, lo), expected)
    walk = kernels.ks_walk()
    if walk is not None:  # numba on: the compiled walk gives the Python source's extremes, and ks_sorted takes it
        assert walk(a, b) == (hi, lo)
        ref = stats.KsReference(a)
        assert ref.walk is walk
        assert _same(stats.ks_sorted(ref, b), expected)
    if np.isfinite(a).all() and np.isfinite(b).all():
        res = sps.ks_2samp(a, b, method="asymp")
        assert _same(expected, (float(res.statistic), float(res.pvalue)))


@pytest.mark.parametrize("level", [-1.0, 0.0, 0.5, 2.0, 9.0])  # below all, a reference value, between two, the largest, above all
def test_constant_windows(level: float) -> None:
    a = np.array([-1.0, 0.0, 1.0, 1.0, 2.0])
    b = np.full(20, level)
    hi, lo = kernels.ks_walk_python(a, b)
    assert _same(stats.ks_of_extremes(a.size, b.size, hi, lo), _numpy_path(a, b))


def test_a_reference_the_walk_cannot_read_keeps_the_numpy_path() -> None:
    """float32, a strided view or a read-only array: not for the kernel (its one signature is writable contiguous float64), the same result."""
    base = np.sort(np.random.default_rng(4).normal(size=400))
    window = np.sort(np.random.default_rng(5).normal(0.2, 1, 100))
    strided = base[::2]
    assert stats.KsReference(strided).walk is None
    assert stats.ks_sorted(stats.KsReference(strided), window) == _numpy_path(np.ascontiguousarray(strided), window)
    assert stats.KsReference(base.astype(np.float32)).walk is None
    # read-only arrays (the kernel's signature wants writable ones): the numpy path, not a TypeError
    frozen, frozen_window = base.copy(), window.copy()
    frozen.flags.writeable = False
    frozen_window.flags.writeable = False
    expected = _numpy_path(base, window)
    assert stats.ks_sorted(stats.KsReference(frozen), window) == expected
    assert stats.ks_sorted(stats.KsReference(base), frozen_window) == expected


def test_switched_off_loads_no_kernel_and_never_imports_numba() -> None:
    import json
    import os
    import subprocess
    import sys

    probe = (
        "import json, sys, numpy as np\n"
        "from stream_monitor.core import stats\n"
        "ref = stats.KsReference.of(np.arange(10.0))\n"
        "print(json.dumps({'numba': 'numba' in sys.modules, 'walk': ref.walk is not None, 'ks': stats.ks_sorted(ref, np.arange(5.0) + 3)}))\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "STREAM_MONITOR_NO_JIT"))}
    outs = []
    for env in ({"STREAM_MONITOR_NO_JIT": "1"}, {"NUMBA_DISABLE_JIT": "1"}, {}):
        proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env={**environ, **env}, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert outs[0]["numba"] is False and outs[0]["walk"] is False
    assert outs[1]["walk"] is False
    assert outs[2]["walk"] is True
    assert outs[0]["ks"] == outs[1]["ks"] == outs[2]["ks"]
