"""``stats.kstwo_sf`` gives ``scipy.stats.kstwo.sf``'s float exactly (it skips only rv_continuous's per-call handling).

The KS p-value of every window evaluation comes from it, so a different float would change a
decision; the points cover the distances KS can give (multiples of 1/n), both ends of the support
and beyond, NaN, and the effective sizes windows and references have (including a size below 1,
which the public call answers with NaN).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from stream_monitor.core import stats

SIZES = st.one_of(st.sampled_from([0.0, 1.0, 2.0, 3.0, 7.0, 50.0, 141.0, 500.0, 909.0, 1000.0, 2000.0, 100_000.0]), st.integers(1, 20_000).map(float))
DISTANCES = st.one_of(
    st.floats(-0.5, 1.5, allow_nan=False),
    st.tuples(st.integers(0, 2000), st.integers(1, 2000)).map(lambda t: min(t[0], t[1]) / t[1]),
    st.sampled_from([0.0, -0.0, 1.0, 5e-324, 1e-300, 0.999999, math.inf, -math.inf, math.nan]),
)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@settings(max_examples=1500, deadline=None)
@given(DISTANCES, SIZES)
def test_kstwo_sf_is_scipys_float(d: float, en: float) -> None:
    with np.errstate(divide="ignore"):  # (scipy's support bounds divide by n: n = 0 warns, and gives NaN)
        assert _same(stats.kstwo_sf(d, en), float(sps.kstwo.sf(d, en)))


def test_the_short_path_is_taken() -> None:
    # if SciPy ever moves the function, the public call still gives the numbers (the test above),
    # but the saving is gone: this says so rather than let it pass unseen
    assert stats._kolmogn_at is not None


def test_ks_of_extremes_p_value_is_scipys_asymptotic() -> None:
    for n1, n2, hi, lo in [(1000, 500, 0.12, -0.03), (2000, 1000, 0.0, -0.4), (7, 3, 0.5, -0.5), (1, 1, 1.0, 0.0)]:
        m, n = max(n1, n2), min(n1, n2)
        with np.errstate(divide="ignore"):  # (n1 = n2 = 1: an effective size of 0, NaN from scipy as before)
            d, p = stats.ks_of_extremes(n1, n2, hi, lo)
            assert p == float(min(max(sps.kstwo.sf(d, round(m * n / (m + n))), 0.0), 1.0)) or (math.isnan(p) and m * n / (m + n) < 0.5 + 1e-12)
