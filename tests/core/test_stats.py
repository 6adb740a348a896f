"""Window statistics (stream_monitor.core.stats) against scipy and hand-computed values, plus properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from stream_monitor.core import stats

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
samples = hnp.arrays(np.float64, st.integers(1, 60), elements=finite)
counts = st.integers(2, 12).flatmap(
    lambda k: st.tuples(
        hnp.arrays(np.int64, k, elements=st.integers(0, 10_000)),
        hnp.arrays(np.int64, k, elements=st.integers(0, 10_000)),
    )
)


# ----------------------------------------------------------------------------- hand-computed cases
def test_smoothed_proportions_add_half_and_normalise():
    p = stats.smoothed_proportions(np.array([0, 1, 2]))
    assert p.tolist() == pytest.approx([0.5 / 4.5, 1.5 / 4.5, 2.5 / 4.5])
    assert p.sum() == pytest.approx(1.0)


def test_psi_hand_computed():
    # smoothed: reference [49.5, 49.5] -> [.5, .5]; current [89.5, 9.5] -> [.9, .1]
    expected = (0.9 - 0.5) * math.log(0.9 / 0.5) + (0.1 - 0.5) * math.log(0.1 / 0.5)
    assert stats.psi(np.array([49.5, 49.5]), np.array([89.5, 9.5])) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.878890, abs=1e-6)


def test_psi_identical_and_empty_histograms_are_zero():
    assert stats.psi(np.array([50, 50]), np.array([50, 50])) == 0.0
    assert stats.psi(np.array([0, 0, 0]), np.array([0, 0, 0])) == 0.0
    # proportions matter, not totals
    assert stats.psi(np.array([10, 30]), np.array([100, 300])) == pytest.approx(0.0, abs=1e-3)


def test_js_distance_hand_computed_and_against_scipy():
    # disjoint supports: maximal distance 1 (base 2)
    assert stats.js_distance(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    # p = [.5, .5], q = [1, 0]: m = [.75, .25]
    kl_pm = 0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25)
    kl_qm = math.log2(1 / 0.75)
    expected = math.sqrt((kl_pm + kl_qm) / 2)
    assert stats.js_distance(np.array([5, 5]), np.array([7, 0])) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.557923, abs=1e-6)
    # against scipy with an independent entropy-based formula
    p = np.array([3, 1, 4, 1, 5], float)
    q = np.array([9, 2, 6, 5, 3], float)
    pn, qn = p / p.sum(), q / q.sum()
    m = (pn + qn) / 2
    by_entropy = math.sqrt((sps.entropy(pn, m, base=2) + sps.entropy(qn, m, base=2)) / 2)
    assert stats.js_distance(p, q) == pytest.approx(by_entropy, rel=1e-12)
    assert stats.js_distance(p, q) == pytest.approx(jensenshannon(pn, qn, base=2), rel=1e-12)


def test_js_distance_of_an_empty_histogram_is_zero():
    assert stats.js_distance(np.array([0, 0]), np.array([1, 2])) == 0.0
    assert stats.js_distance(np.array([1, 2]), np.array([0, 0])) == 0.0


def test_ks_hand_computed():
    d, p = stats.ks_2samp(np.arange(100.0), np.arange(100.0) + 50)
    assert d == 0.5
    # F_x(3) = 1, F_y(3) = 0.5
    d, _ = stats.ks_2samp(np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0, 5.0]))
    assert d == 0.5
    d, p = stats.ks_2samp(np.arange(10.0), np.arange(10.0))
    assert d == 0.0 and p == 1.0


def test_ks_matches_scipy_asymptotic_p_value():
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, 2000), rng.normal(0.2, 1, 500)
    ref = sps.ks_2samp(x, y, method="asymp")
    d, p = stats.ks_2samp(np.sort(x), y)
    assert d == ref.statistic
    assert p == pytest.approx(ref.pvalue, rel=1e-12)
    assert p < 1e-3


def test_wasserstein_hand_computed():
    assert stats.wasserstein(np.array([0.0, 1.0, 3.0]), np.array([5.0, 6.0, 8.0])) == pytest.approx(5.0)
    assert stats.wasserstein(np.array([0.0, 1.0]), np.array([0.0, 3.0])) == pytest.approx(1.0)
    assert stats.wasserstein(np.array([2.0]), np.array([2.0])) == 0.0


def test_wasserstein_against_scipy():
    rng = np.random.default_rng(2)
    x, y = rng.exponential(2.0, 777), rng.normal(1, 3, 333)
    assert stats.wasserstein(x, y) == pytest.approx(sps.wasserstein_distance(x, y), rel=1e-12)
    # normal shifted by 0.5: W1 -> 0.5
    a, b = rng.normal(0, 1, 50_000), rng.normal(0.5, 1, 50_000)
    assert stats.wasserstein(a, b) == pytest.approx(0.5, abs=0.03)


def test_chi2_hand_computed():
    # 2x2 table [[10, 20], [20, 10]]: all expected counts 15 -> 4 * 25/15
    stat, p, dof = stats.chi2_two_sample(np.array([10, 20, 0]), np.array([20, 10, 0]))
    assert stat == pytest.approx(20 / 3)
    assert dof == 1  # the category empty on both sides is dropped
    assert p == pytest.approx(sps.chi2.sf(20 / 3, 1))
    assert p == pytest.approx(0.009823, abs=1e-6)


def test_chi2_against_scipy_contingency():
    ref = np.array([500, 250, 125, 60, 65])
    cur = np.array([100, 60, 20, 10, 30])
    expected = sps.chi2_contingency(np.vstack([ref, cur]), correction=False)
    stat, p, dof = stats.chi2_two_sample(ref, cur)
    assert stat == pytest.approx(expected.statistic, rel=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-12)
    assert dof == expected.dof == 4


def test_chi2_degenerate_tables():
    assert stats.chi2_two_sample(np.array([5, 0]), np.array([7, 0])) == (0.0, 1.0, 0)  # one category
    assert stats.chi2_two_sample(np.array([0, 0]), np.array([3, 4])) == (0.0, 1.0, 0)  # empty reference
    assert stats.chi2_two_sample(np.array([3, 4]), np.array([0, 0])) == (0.0, 1.0, 0)  # empty window


def test_chi2_critical_value_inverts_the_survival_function():
    for p, dof in [(1e-6, 1), (0.05, 3), (1e-3, 10)]:
        c = stats.chi2_critical_value(p, dof)
        assert sps.chi2.sf(c, dof) == pytest.approx(p, rel=1e-9)
    assert stats.chi2_critical_value(0.05, 0) == stats.chi2_critical_value(0.05, 1)


def test_total_variation_hand_computed():
    assert stats.total_variation(np.array([1, 1]), np.array([1, 0])) == pytest.approx(0.5)
    assert stats.total_variation(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    assert stats.total_variation(np.array([0, 0]), np.array([0, 1])) == 0.0


def test_quantile_edges_and_histogram():
    sample = np.arange(1.0, 101.0)
    edges = stats.quantile_edges(sample, 4)
    assert edges.tolist() == pytest.approx(np.quantile(sample, [0.25, 0.5, 0.75]).tolist())
    assert stats.histogram(sample, edges).tolist() == [25, 25, 25, 25]
    # outer bins are open: values beyond the reference range land in the first/last bin
    assert stats.histogram(np.array([-1e9, 1e9]), edges).tolist() == [1, 0, 0, 1]
    # a constant reference collapses to one inner edge; empty reference has none
    assert stats.quantile_edges(np.ones(10), 10).tolist() == [1.0]
    assert stats.quantile_edges(np.empty(0), 10).size == 0
    # right-closed bins: a value equal to an edge goes to the bin above
    assert stats.histogram(np.array([1.0]), np.array([1.0])).tolist() == [0, 1]


# ------------------------------------------------------------------------------- property tests
@PROPS
@given(counts)
def test_psi_is_non_negative(pair):
    ref, cur = pair
    assert stats.psi(ref, cur) >= -1e-12


@PROPS
@given(hnp.arrays(np.int64, st.integers(1, 12), elements=st.integers(0, 10_000)))
def test_psi_of_a_histogram_with_itself_is_zero(h):
    assert stats.psi(h, h) == 0.0


@PROPS
@given(counts)
def test_js_distance_is_bounded_and_symmetric(pair):
    ref, cur = pair
    d = stats.js_distance(ref, cur)
    assert 0.0 <= d <= 1.0 + 1e-12
    assert d == pytest.approx(stats.js_distance(cur, ref), abs=1e-12)
    if ref.sum() and cur.sum():
        assert stats.js_distance(ref, ref) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy on degenerate tiny samples
@PROPS
@given(samples, samples)
def test_ks_statistic_equals_scipy_exactly(x, y):
    d, p = stats.ks_2samp(np.sort(x), y)
    # the core uses scipy's asymptotic method: same D, bit for bit
    assert d == sps.ks_2samp(x, y, method="asymp").statistic
    # scipy's exact method rounds D to a multiple of 1/lcm(n, m): equal up to the last ulp
    assert d == pytest.approx(sps.ks_2samp(x, y).statistic, rel=1e-12, abs=0)
    assert 0.0 <= d <= 1.0
    # scipy's asymptotic p is NaN only with one value per side (n*m/(n+m) rounds to 0); never a
    # breach, and windows are never that small (window.size >= 50)
    assert (0.0 <= p <= 1.0) or (math.isnan(p) and x.size == y.size == 1)


@PROPS
@given(samples, samples, st.floats(min_value=1e-3, max_value=1e3), st.sampled_from([1.0, -1.0]))
def test_wasserstein_is_scale_equivariant(x, y, scale, sign):
    a = sign * scale
    base = stats.wasserstein(x, y)
    assert stats.wasserstein(a * x, a * y) == pytest.approx(scale * base, rel=1e-9, abs=1e-6 * scale)


@PROPS
@given(samples, finite)
def test_wasserstein_of_a_shift_is_the_shift(x, c):
    assert stats.wasserstein(x, x + c) == pytest.approx(abs(c), rel=1e-9, abs=1e-6)


@PROPS
@given(
    hnp.arrays(np.float64, st.integers(0, 200), elements=st.floats(allow_nan=False, width=64)),
    hnp.arrays(np.float64, st.integers(1, 80), elements=finite),
    st.integers(2, 20),
)
def test_histogram_counts_sum_to_n(values, reference, bins):
    edges = stats.quantile_edges(np.sort(reference), bins)
    assert np.all(np.diff(edges) > 0)
    assert edges.size <= bins - 1
    h = stats.histogram(values, edges)
    assert h.size == edges.size + 1
    assert int(h.sum()) == values.size
    assert h.tolist() == np.bincount(np.digitize(values, edges), minlength=edges.size + 1).tolist()


@PROPS
@given(counts)
def test_chi2_matches_scipy_and_tv_is_bounded(pair):
    ref, cur = pair
    stat, p, dof = stats.chi2_two_sample(ref, cur)
    table = np.vstack([ref, cur]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] >= 2 and (table.sum(axis=1) > 0).all():
        res = sps.chi2_contingency(table, correction=False)
        assert stat == pytest.approx(res.statistic, rel=1e-9, abs=1e-9)
        assert dof == res.dof
    else:
        assert (stat, p, dof) == (0.0, 1.0, 0)
    assert 0.0 <= stats.total_variation(ref, cur) <= 1.0 + 1e-12


# ----------------------------------------------- prepared references: bit-identical to the formulas
def _same(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Equal element by element, NaN equal to NaN (scipy's p with one value per side)."""
    return all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True))


def _scipy_ks(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    res = sps.ks_2samp(a, b, method="asymp")
    return float(res.statistic), float(res.pvalue)


# samples with many ties, within and across the two sides: values drawn from a small pool
pools = st.lists(finite, min_size=1, max_size=8, unique=True)


@st.composite
def tied_pair(draw: st.DrawFn, max1: int, max2: int) -> tuple[np.ndarray, np.ndarray]:
    pool = draw(pools)
    n1, n2 = draw(st.integers(1, max1)), draw(st.integers(1, max2))
    pick = st.sampled_from(pool)
    a = np.array(draw(st.lists(pick, min_size=n1, max_size=n1)), dtype=np.float64)
    b = np.array(draw(st.lists(pick | finite, min_size=n2, max_size=n2)), dtype=np.float64)
    return a, b


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy on degenerate tiny samples
@PROPS
@given(
    st.one_of(
        st.tuples(samples, samples),
        tied_pair(60, 60),
        tied_pair(2000, 25),  # reference much larger than the window
        tied_pair(25, 400),  # window larger than the reference
        st.tuples(hnp.arrays(np.float64, st.integers(200, 2000), elements=finite), hnp.arrays(np.float64, st.integers(1, 30), elements=finite)),
    )
)
def test_ks_sorted_equals_scipy_asymp_exactly(pair):
    a, b = pair
    expected = _scipy_ks(a, b)
    prepared = stats.KsReference.of(a)  # sorts an unsorted reference
    assert prepared is not None
    assert _same(stats.ks_sorted(prepared, np.sort(b)), expected)
    assert _same(stats.ks_sorted(stats.KsReference.of(np.sort(a)), np.sort(b)), expected)
    assert _same(stats.ks_2samp(a, b), expected)


def test_ks_with_nan_or_empty_goes_to_scipy():
    assert stats.KsReference.of(np.array([0.0, math.nan])) is None
    assert stats.KsReference.of(np.empty(0)) is None
    ref = stats.KsReference.of(np.array([0.0, 1.0, 2.0]))
    window = np.sort(np.array([0.5, math.nan, 1.5]))
    assert _same(stats.ks_sorted(ref, window), _scipy_ks(np.array([0.0, 1.0, 2.0]), window))


def _psi_two_sided(ref: np.ndarray, cur: np.ndarray) -> float:
    """The formula as it was computed on both sides per call."""
    p, q = stats.smoothed_proportions(ref), stats.smoothed_proportions(cur)
    return float(np.sum((q - p) * np.log(q / p)))


@PROPS
@given(counts)
def test_binned_reference_equals_the_two_sided_formulas_and_scipy(pair):
    ref, cur = pair
    binned = stats.BinnedReference(ref)
    assert binned.psi(cur) == _psi_two_sided(ref, cur)
    p, q = ref.astype(float), cur.astype(float)
    if p.sum() and q.sum():
        assert binned.js_distance(cur) == float(jensenshannon(p / p.sum(), q / q.sum(), base=2))
        assert binned.total_variation(cur) == float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())
    else:
        assert binned.js_distance(cur) == binned.total_variation(cur) == 0.0
    table = np.vstack([p, q])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] >= 2 and (table.sum(axis=1) > 0).all():
        res = sps.chi2_contingency(table, correction=False)
        assert binned.chi2(cur) == (float(res.statistic), float(res.pvalue), int(res.dof))
    else:
        assert binned.chi2(cur) == (0.0, 1.0, 0)
    # a BinnedReference is reused across windows: evaluating does not change it
    again = stats.BinnedReference(ref)
    assert (binned.psi(ref), binned.chi2(ref)) == (again.psi(ref), again.chi2(ref))


@PROPS
@given(
    hnp.arrays(np.float64, st.integers(0, 300), elements=st.floats(allow_nan=True, allow_infinity=True, width=64)),
    hnp.arrays(np.float64, st.integers(1, 80), elements=finite),
    st.integers(2, 20),
)
def test_histogram_of_sorted_equals_histogram(values, reference, bins):
    edges = stats.quantile_edges(np.sort(reference), bins)
    # values equal to an edge go to the bin above in both
    values = np.concatenate([values, edges[: values.size % 3]])
    assert stats.histogram_of_sorted(np.sort(values), edges).tolist() == stats.histogram(values, edges).tolist()
