"""KS at every step of a batch by the compiled walk (kernels.ks_steps_python) equals the sort per window, float for float.

Three ways to the same (max, min) per step: the compiled kernel, its Python source, and
``WindowSteps``' sort path (``ks_rows`` over each window's sorted ranks), on references and
windows with ties among themselves and with each other, constant references, infinite values
and repeated window ends. PSI's bins without the sort (a value's bin: the edges <= it) equal
those of the sorted span. Which path a batch takes: ``test_the_walk_is_taken_and_no_sort_is_made``.
The per-step equality with scipy and ``evaluate`` is ``test_window_steps.py``'s (run with the walk).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.core import kernels
from stream_monitor.core.detectors import steps as steps_module
from stream_monitor.core.detectors.steps import WindowSteps
from stream_monitor.core.stats import ks_steps

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
KERNEL = kernels.ks_steps_kernel()
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="numba switched off: the sort path is the only one")


@st.composite
def batches(draw: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(sorted reference, span values, window ends, size): values drawn from a small grid (ties) or continuous."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    m = draw(st.integers(1, 120))
    size = draw(st.integers(1, 60))
    n = size + draw(st.integers(0, 150))
    ref, values = reference_and_values(draw, rng, m, n)
    k = draw(st.integers(1, 12))
    ends = np.sort(rng.integers(size, n + 1, k))  # ascending, repeats allowed (no value between two steps)
    return ref, values, ends, size


def reference_and_values(draw: Any, rng: np.random.Generator, m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A sorted reference of ``m`` values and ``n`` values to compare (unsorted): normal, on a small grid (ties with each
    other and with the reference), against a constant reference, or near the largest floats with infinities."""
    kind = draw(st.sampled_from(["normal", "grid", "constant", "huge"]))
    if kind == "normal":
        ref, values = rng.normal(size=m), rng.normal(draw(st.sampled_from([0.0, 0.8])), 1.0, n)
    elif kind == "grid":
        ref, values = rng.integers(0, 6, m).astype(float), rng.integers(-1, 8, n).astype(float)
    elif kind == "constant":
        ref, values = np.full(m, 2.0), rng.integers(0, 5, n).astype(float)
    else:  # the reference's range near the largest floats; windows with infinities
        ref = rng.integers(-2, 3, m) * 5e307
        values = rng.choice(np.array([-np.inf, np.inf, 0.0, 5e307, -1e308, 1.7e308]), n)
    return np.sort(ref), values


def _sorted_path(values: np.ndarray, ends: np.ndarray, size: int, ref: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as m:
        m.setattr(steps_module, "WALK_PER_VALUE", 0)  # the walk never applies
        steps = WindowSteps(np.zeros(values.size, np.uint8), values, ends, ends, size)
        got = steps.ks_extremes(ref)
        assert steps._sorted is not None
        return got


@needs_kernel
@PROPS
@given(batches())
def test_the_walk_equals_the_sort_per_window(monkeypatch: pytest.MonkeyPatch, case: tuple) -> None:
    ref, values, ends, size = case
    want = _sorted_path(values, ends, size, ref, monkeypatch)
    lo = int(ends[0]) - size
    span = np.ascontiguousarray(values[lo : int(ends[-1])])
    starts = (ends - size - lo).astype(np.int64)
    at_j, below_j = ks_steps(size)
    for walk in (KERNEL, kernels.ks_steps_python):
        hi, low = np.empty(ends.size), np.empty(ends.size)
        with np.errstate(all="ignore"):  # (the Python source on numpy scalars: infinities, overflow near the largest floats)
            assert walk(span, ref, size, starts, below_j, at_j, hi, low) == 1
        assert (hi.tolist(), low.tolist()) == want
    steps = WindowSteps(np.zeros(values.size, np.uint8), values, ends, ends, size)
    assert steps.ks_extremes(ref) == want


@needs_kernel
@PROPS
@given(batches(), st.sampled_from([1, 2, 5, 10, 40, 70]), st.booleans())  # (over 32 edges: the binary search)
def test_bins_without_the_sort_equal_those_of_the_sorted_span(monkeypatch: pytest.MonkeyPatch, case: tuple, bins: int, tied: bool) -> None:
    ref, values, ends, size = case
    edges = np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]) if bins > 1 else np.array([float(ref[0])])
    if tied:
        edges = np.sort(np.concatenate([edges, edges[:1]]))  # repeated edges: an empty bin between them
    plain = WindowSteps(np.zeros(values.size, np.uint8), values, ends, ends, size)
    got = plain.bin_counts(edges)
    assert plain._sorted is None
    with monkeypatch.context() as m:
        m.setattr(kernels, "ks_steps_kernel", lambda: None)  # no walk: the sorted span's bins
        sorted_ = WindowSteps(np.zeros(values.size, np.uint8), values, ends, ends, size)
        want = sorted_.bin_counts(edges)
        assert sorted_._sorted is not None
    assert got.tolist() == want.tolist()


@needs_kernel
def test_the_walk_is_taken_and_no_sort_is_made() -> None:
    rng = np.random.default_rng(7)
    ref = np.sort(rng.normal(size=1000))
    values = rng.normal(0.2, 1.0, 6000)
    ends = np.arange(1250, 6001, 250)
    steps = WindowSteps(np.zeros(values.size, np.uint8), values, ends, ends, 1000)
    steps.bin_counts(np.quantile(ref, [0.25, 0.5, 0.75]))
    hi, lo = steps.ks_extremes(ref)
    assert steps._sorted is None and len(hi) == len(lo) == ends.size
    # a reference too large to walk at every step (2 n1 + 1 > WALK_PER_VALUE x size): the sort per window
    big = np.sort(rng.normal(size=4 * steps_module.WALK_PER_VALUE * 1000))
    sorting = WindowSteps(np.zeros(values.size, np.uint8), values, ends, ends, 1000)
    sorting.ks_extremes(big)
    assert sorting._sorted is not None
    # a NaN in the span: neither (KS declines the batch, as before)
    values[3000] = np.nan
    assert WindowSteps(np.zeros(values.size, np.uint8), values, ends, ends, 1000).ks_extremes(ref) is None


@needs_kernel
def test_a_reference_with_an_infinite_end_takes_the_sort() -> None:
    ref = np.array([-np.inf, 0.0, 1.0, 2.0])
    values = np.array([0.5, 1.0, 3.0, -5.0, 2.0, 0.0])
    ends = np.array([3, 5, 6])
    steps = WindowSteps(np.zeros(6, np.uint8), values, ends, ends, 3)
    got = steps.ks_extremes(ref)
    assert steps._sorted is not None and len(got[0]) == 3
