"""A channel's window (the ring, values in any order) by the compiled walk and bins equals its sort, float for float.

``KsReference.window_extremes`` (kernels.ks_window_python, the reference's bucket table made once) and
``stats.histogram_unsorted`` (kernels.bin_counts_python) give what the ring's per-step evaluation read from the
sorted window before: the same KS distance and p-value (``ks_sorted``), the same bin counts
(``histogram_of_sorted``), hence the same PSI, JS and KS evaluations. Checked on references and windows with ties
among themselves and with each other, constant references, values near the largest floats and infinities in
the window, for the compiled kernels and their Python sources; the fallbacks (a NaN, an infinite reference
end, numba off) and that the ring is not sorted when the kernels apply.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.core import kernels, stats
from stream_monitor.core.detectors.base import WindowView
from stream_monitor.core.detectors.steps import WALK_PER_VALUE
from stream_monitor.core.detectors.window import JsDetector, KsDetector, PsiDetector
from stream_monitor.core.reference import NumericReference
from stream_monitor.core.settings import JsParams, KsParams, PsiParams
from tests.core.test_ks_steps_kernel import reference_and_values

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
needs_kernel = pytest.mark.skipif(kernels.ks_window_kernel() is None, reason="numba switched off: the window is sorted")


@st.composite
def windows(draw: Any) -> tuple[np.ndarray, np.ndarray]:
    """(sorted reference, window values in ring order), as the batch walk's test draws them."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return reference_and_values(draw, rng, draw(st.integers(1, 150)), draw(st.integers(1, 200)))


@needs_kernel
@PROPS
@given(case=windows())
def test_the_walk_of_a_window_gives_ks_sorted_floats(case: tuple[np.ndarray, np.ndarray]) -> None:
    ref, values = case
    prepared = stats.KsReference(ref)
    got = prepared.window_extremes(values)
    assert got is not None
    assert stats.ks_of_extremes(ref.shape[0], values.shape[0], *got) == stats.ks_sorted(prepared, np.sort(values))
    # the kernel's Python source, on the same table, gives the same extremes
    _kernel, first, run_end, scale = prepared._table  # type: ignore[misc]
    at_j, below_j = stats.ks_steps(values.shape[0])
    scratch = [np.zeros(2 * ref.shape[0] + 1, dtype=np.int64) for _ in range(3)]
    assert tuple(float(x) for x in kernels.ks_window_python(values, ref, first, run_end, scale, below_j, at_j, *scratch)) == got


@needs_kernel
@PROPS
@given(data=st.data())
def test_bins_of_a_window_equal_those_of_its_sort(data: st.DataObject) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    n_edges = data.draw(st.sampled_from([1, 3, 9, 32, 33, 70]))
    grid = data.draw(st.booleans())  # edges and values on a small grid: values equal to edges, repeated edges
    edges = np.sort(rng.integers(0, 5, n_edges).astype(float) if grid else rng.normal(size=n_edges))
    values = rng.integers(-1, 7, data.draw(st.integers(1, 300))).astype(float) if grid else rng.normal(0, 1.5, data.draw(st.integers(1, 300)))
    if data.draw(st.booleans()):
        values[rng.integers(0, values.shape[0], 3)] = rng.choice(np.array([-np.inf, np.inf]), 3)
    got = stats.histogram_unsorted(values, edges)
    assert got is not None and got.tolist() == stats.histogram_of_sorted(np.sort(values), edges).tolist()
    counts = np.empty(n_edges + 1, dtype=np.int64)
    assert kernels.bin_counts_python(values, edges, counts) == 1 and counts.tolist() == got.tolist()


def _evaluations(ref: np.ndarray, values: np.ndarray, presorted: bool) -> list[Any]:
    reference = NumericReference.from_values(ref, 0, 0, "warmup")
    out = []
    for det in (PsiDetector(PsiParams(), reference), JsDetector(JsParams(), reference), KsDetector(KsParams(), reference)):
        view = WindowView(values=values, flags=np.zeros(values.shape[0], np.uint8))
        if presorted:
            view.sorted_values  # noqa: B018  (made: the detectors read the sort)
        out.append(det.evaluate(view))
        walked = not isinstance(det, KsDetector) or 2 * ref.shape[0] + 1 <= WALK_PER_VALUE * values.shape[0]  # (a reference too large to walk: sorted)
        assert view.sorted == (presorted or not walked)  # the kernels applied: nothing sorted the window
    return out


@needs_kernel
@PROPS
@given(case=windows())
def test_the_detectors_evaluate_a_ring_as_its_sort(case: tuple[np.ndarray, np.ndarray]) -> None:
    ref, values = case
    values = values[np.isfinite(values)] if np.isfinite(values).any() else np.zeros(1)
    assert _evaluations(ref, values, presorted=False) == _evaluations(ref, values, presorted=True)


def test_the_window_is_sorted_where_the_kernels_do_not_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = np.linspace(-1.0, 1.0, 50)
    nan_window = np.array([0.5, np.nan, -0.2])
    assert stats.KsReference(ref).window_extremes(nan_window) is None
    assert stats.histogram_unsorted(nan_window, np.array([0.0])) is None
    assert stats.KsReference(np.array([-np.inf, 0.0, 1.0])).window_extremes(np.array([0.5])) is None  # an infinite end
    assert stats.KsReference(ref).window_extremes(np.arange(4)) is None  # not float64
    with monkeypatch.context() as m:  # numba off: the sort, the same evaluations
        m.setitem(kernels._kernels, "ks_window", None)
        m.setitem(kernels._kernels, "bin_counts", None)
        values = np.random.default_rng(3).normal(0.3, 1.0, 400)
        assert stats.KsReference(ref).window_extremes(values) is None
        assert stats.histogram_unsorted(values, np.array([0.0])) is None
        sorted_path = _evaluations(ref, values, presorted=True)
    if kernels.ks_window_kernel() is not None:
        assert _evaluations(ref, values, presorted=False) == sorted_path


def test_read_only_arrays_take_the_sort() -> None:
    """The kernels' one signature takes writable arrays: a read-only window, reference or edges is sorted instead."""
    rng = np.random.default_rng(5)
    window, ref, edges = rng.normal(size=300), np.sort(rng.normal(size=200)), np.array([-0.5, 0.0, 0.5])
    for frozen in (window, ref, edges):
        frozen.flags.writeable = False
    assert stats.KsReference(ref).window_extremes(window) is None
    assert stats.KsReference(np.sort(rng.normal(size=50))).window_extremes(window) is None
    assert stats.histogram_unsorted(window, edges) is None and stats.histogram_unsorted(window.copy(), edges) is None
    reference = NumericReference.from_values(ref.copy(), 0, 0, "warmup")
    for det in (PsiDetector(PsiParams(), reference), KsDetector(KsParams(), reference)):
        assert det.evaluate(WindowView(values=window, flags=np.zeros(300, np.uint8))) == det.evaluate(WindowView(values=window.copy(), flags=np.zeros(300, np.uint8)))


@needs_kernel
def test_references_of_one_size_and_tiny_ranges_share_the_walk_safely() -> None:
    """References of one size share their scratch (per thread): alternating them, and two threads at once, change no float;
    a reference whose range underflows the scale (subnormal) or overflows it is walked exactly too."""
    import threading

    rng = np.random.default_rng(9)
    refs = [np.sort(rng.normal(k, 1.0, 400)) for k in range(3)] + [np.sort(rng.integers(0, 3, 400) * 5e-324), np.sort(rng.integers(-1, 2, 400) * 1.7e308)]
    wins = [rng.normal(0.5, 1.0, 250), rng.integers(-1, 4, 250) * 5e-324, np.array([0.0, -0.0, 5e-324, -1.7e308, np.inf] * 50)]
    expected = {(i, j): stats.ks_sorted(stats.KsReference(r), np.sort(w)) for i, r in enumerate(refs) for j, w in enumerate(wins)}
    prepared = [stats.KsReference(r) for r in refs]
    failures: list[Any] = []

    def check(rounds: int) -> None:
        for _ in range(rounds):
            for (i, j), want in expected.items():
                got = prepared[i].window_extremes(wins[j])
                if got is None or stats.ks_of_extremes(400, 250, *got) != want:
                    failures.append((i, j, got, want))

    threads = [threading.Thread(target=check, args=(200,)) for _ in range(2)]
    for t in threads:
        t.start()
    check(5)
    for t in threads:
        t.join()
    assert not failures, failures[:3]
