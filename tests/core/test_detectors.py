"""Detector wrappers: each breaches on a clear shift, stays quiet on the reference, grades severity."""

from __future__ import annotations

import numpy as np
import pytest

from stream_monitor.core import detectors as det
from stream_monitor.core.channel import ChannelMonitor
from stream_monitor.core.reference import CategoricalReference, NumericReference
from stream_monitor.core.settings import (
    AdwinParams,
    Chi2Params,
    DetectionSettings,
    JsParams,
    KsParams,
    OutOfRangeParams,
    PageHinkleyParams,
    PsiParams,
    RateParams,
    ReferenceSettings,
    WassersteinParams,
    WindowSettings,
)

RNG_SEED = 20261125
CATS = ["a", "b", "c", "d"]
CAT_P = [0.4, 0.3, 0.2, 0.1]


def ok_flags(n: int) -> np.ndarray:
    return np.zeros(n, np.uint8)


def view(values: np.ndarray) -> det.WindowView:
    return det.WindowView(values=np.asarray(values), flags=ok_flags(len(values)))


@pytest.fixture(scope="module")
def numeric_ref() -> NumericReference:
    rng = np.random.default_rng(RNG_SEED)
    return NumericReference.from_values(rng.normal(10.0, 2.0, 5000), missing=0, invalid=0, kind="warmup")


@pytest.fixture(scope="module")
def cat_ref() -> CategoricalReference:
    rng = np.random.default_rng(RNG_SEED)
    draws = rng.choice(len(CATS), size=5000, p=CAT_P)
    return CategoricalReference.from_values([CATS[k] for k in draws], missing=0, invalid=0, kind="warmup")


def shifted(shift_sd: float, n: int = 1000, seed: int = 1) -> np.ndarray:
    """Values on the reference's scale (mean 10, sd 2), shifted by ``shift_sd`` standard deviations."""
    return np.random.default_rng(seed).normal(10.0 + 2.0 * shift_sd, 2.0, n)


# ---------------------------------------------------------------------------- numeric window detectors
NUMERIC_WINDOW = [
    # (detector class, params, shift giving a warning-level breach, shift giving a critical one)
    (det.PsiDetector, PsiParams(), 0.5, 1.5),
    (det.JsDetector, JsParams(), 0.6, 1.5),
    (det.KsDetector, KsParams(), 0.5, 1.5),
    (det.WassersteinDetector, WassersteinParams(), 0.5, 1.5),
]


@pytest.mark.parametrize(("cls", "params", "warn_shift", "crit_shift"), NUMERIC_WINDOW, ids=lambda x: getattr(x, "name", None))
def test_numeric_window_detector(numeric_ref, cls, params, warn_shift, crit_shift):
    d = cls(params, numeric_ref)
    # the reference itself, and fresh draws from the same distribution: no breach
    same = d.evaluate(view(numeric_ref.sorted_sample))
    assert not same.breached and same.statistic < params.threshold / 2, same
    fresh = d.evaluate(view(shifted(0.0)))
    assert not fresh.breached, fresh
    # a moderate shift breaches at the detector's own severity, below critical
    warn = d.evaluate(view(shifted(warn_shift)))
    assert warn.breached and warn.threshold == params.threshold, warn
    assert warn.statistic < params.critical and warn.severity == "warning", warn
    # a large shift is critical
    crit = d.evaluate(view(shifted(crit_shift)))
    assert crit.breached and crit.statistic >= params.critical and crit.severity == "critical", crit
    # both directions
    assert d.evaluate(view(shifted(-crit_shift))).breached
    # nothing to compare: no evaluation
    assert d.evaluate(view(np.empty(0))) is None


def test_severity_uses_configured_severity_and_critical(numeric_ref):
    d = det.PsiDetector(PsiParams(severity="info", critical=None), numeric_ref)
    ev = d.evaluate(view(shifted(3.0)))
    assert ev.breached and ev.severity == "info"
    d = det.PsiDetector(PsiParams(threshold=None), numeric_ref)
    assert not d.evaluate(view(shifted(3.0))).breached  # no threshold: report only


def test_ks_needs_a_small_p_value_as_well_as_a_large_distance(numeric_ref):
    d = det.KsDetector(KsParams(), numeric_ref)
    tiny = d.evaluate(view(shifted(1.0, n=6)))
    assert tiny.statistic > KsParams().threshold and tiny.p_value > KsParams().max_p_value
    assert not tiny.breached
    assert d.evaluate(view(shifted(1.0, n=1000))).p_value < 1e-10


def test_wasserstein_is_in_reference_standard_deviations(numeric_ref):
    d = det.WassersteinDetector(WassersteinParams(), numeric_ref)
    ev = d.evaluate(view(numeric_ref.sorted_sample + 2.0 * 0.8))  # 0.8 sd on a scale of 2
    assert ev.statistic == pytest.approx(2.0 * 0.8 / numeric_ref.std, rel=1e-6)


def test_psi_bins_are_reference_quantiles(numeric_ref):
    d = det.PsiDetector(PsiParams(bins=5), numeric_ref)
    assert d.edges.size == 4
    assert d.reference_counts.sum() == numeric_ref.sorted_sample.size
    assert np.ptp(d.reference_counts) <= 1  # equal-frequency bins


# ------------------------------------------------------------------------- categorical window detectors
def cat_window(p: list[float], n: int = 1000, seed: int = 2, ref: CategoricalReference | None = None) -> np.ndarray:
    """Category codes (aligned with ``ref.categories``, extra index = unseen) drawn with probabilities ``p``."""
    labels = CATS + ["NEW"]
    draws = np.random.default_rng(seed).choice(len(p), size=n, p=p)
    codes = {c: i for i, c in enumerate(ref.categories)} if ref else {}
    return np.asarray([codes.get(labels[k], len(codes)) for k in draws], dtype=np.int32)


@pytest.mark.parametrize(("cls", "params"), [(det.PsiDetector, PsiParams()), (det.JsDetector, JsParams())], ids=["psi", "js"])
def test_categorical_frequency_detectors(cat_ref, cls, params):
    d = cls(params, cat_ref)
    assert d.edges is None and d.reference_counts.size == len(CATS) + 1  # + unseen bucket
    assert not d.evaluate(view(cat_window(CAT_P + [0.0], ref=cat_ref))).breached
    crit = d.evaluate(view(cat_window([0.1, 0.1, 0.2, 0.6, 0.0], ref=cat_ref)))
    assert crit.breached and crit.severity == "critical", crit
    # a new category gets its own (unseen) bucket and moves the distribution
    new = d.evaluate(view(cat_window([0.2, 0.15, 0.1, 0.05, 0.5], ref=cat_ref)))
    assert new.breached, new


def test_chi2_detector(cat_ref):
    d = det.Chi2Detector(Chi2Params(), cat_ref)
    same = d.evaluate(view(cat_window(CAT_P + [0.0], ref=cat_ref)))
    assert not same.breached and same.p_value > 1e-6
    shift = d.evaluate(view(cat_window([0.2, 0.2, 0.3, 0.3, 0.0], ref=cat_ref)))
    assert shift.breached and shift.p_value <= 1e-6
    # statistic is chi-square, threshold its critical value at the configured p: breach reads stat > thr
    assert shift.statistic > shift.threshold
    assert shift.severity == "warning"  # no `critical` p-value bound by default
    # critical is a p-value bound for chi2
    d_crit = det.Chi2Detector(Chi2Params(critical=1e-20), cat_ref)
    assert d_crit.evaluate(view(cat_window([0.2, 0.2, 0.3, 0.3, 0.0], ref=cat_ref))).severity == "critical"
    assert d_crit.evaluate(view(cat_window([0.36, 0.3, 0.22, 0.12, 0.0], n=300, ref=cat_ref))).severity == "warning"
    # an unseen category alone is a change of distribution
    assert d.evaluate(view(cat_window([0.3, 0.2, 0.15, 0.05, 0.3], ref=cat_ref))).breached


def test_chi2_requires_a_minimum_effect(cat_ref):
    window = view(cat_window([0.3, 0.3, 0.25, 0.15, 0.0], n=5000, ref=cat_ref))
    assert det.Chi2Detector(Chi2Params(), cat_ref).evaluate(window).breached
    big_effect = det.Chi2Detector(Chi2Params(min_effect=0.5), cat_ref).evaluate(window)
    assert big_effect.p_value < 1e-6 and not big_effect.breached


# --------------------------------------------------------------------------------------- rate detectors
def flags_with(n: int, **rates: float) -> np.ndarray:
    """A flag array with the given fractions of missing / invalid / outside observations."""
    f = np.zeros(n, np.uint8)
    pos = 0
    for name, flag in (("missing", det.FLAG_MISSING), ("invalid", det.FLAG_INVALID), ("outside", det.FLAG_OUTSIDE)):
        k = int(round(rates.get(name, 0.0) * n))
        f[pos : pos + k] = flag
        pos += k
    np.random.default_rng(3).shuffle(f)
    return f


def rate_eval(d: det.RateDetector, flags: np.ndarray) -> det.Evaluation | None:
    return d.evaluate(det.WindowView(values=np.empty(0), flags=flags))


def test_missing_rate_detector():
    d = det.missing_rate_detector(RateParams(), reference_missing_rate=0.0)
    assert not d.needs_values
    assert not rate_eval(d, flags_with(1000)).breached
    assert not rate_eval(d, flags_with(1000, missing=0.04)).breached
    warn = rate_eval(d, flags_with(1000, missing=0.15))
    assert warn.breached and warn.statistic == pytest.approx(0.15) and warn.severity == "warning"
    crit = rate_eval(d, flags_with(1000, missing=0.4))
    assert crit.breached and crit.severity == "critical"
    # relative to the reference: a reference missing rate of 20 % is normal
    d20 = det.missing_rate_detector(RateParams(), reference_missing_rate=0.2)
    assert not rate_eval(d20, flags_with(1000, missing=0.2)).breached
    assert rate_eval(d20, flags_with(1000, missing=0.3)).statistic == pytest.approx(0.1)
    # invalid and outside observations are not missing
    assert not rate_eval(d, flags_with(1000, invalid=0.3, outside=0.3)).breached


def test_out_of_range_detector_numeric_and_categorical():
    num = det.out_of_range_detector(OutOfRangeParams(), reference_invalid_rate=0.0, numeric=True)
    assert not rate_eval(num, flags_with(1000)).breached
    both = rate_eval(num, flags_with(1000, invalid=0.05, outside=0.05))
    assert both.breached and both.statistic == pytest.approx(0.1)
    # rate among present observations: missing values do not dilute it
    assert rate_eval(num, flags_with(1000, missing=0.5, outside=0.05)).statistic == pytest.approx(0.1)
    assert rate_eval(num, flags_with(1000, outside=0.3)).severity == "critical"
    # all missing: nothing to judge
    assert rate_eval(num, flags_with(1000, missing=1.0)) is None
    # categorical: only invalid values (wrong type) count, unseen categories have their own detector
    cat = det.out_of_range_detector(OutOfRangeParams(), reference_invalid_rate=0.0, numeric=False)
    assert not rate_eval(cat, flags_with(1000, outside=0.5)).breached
    assert rate_eval(cat, flags_with(1000, invalid=0.1)).breached


def test_unseen_category_rate_detector():
    d = det.unseen_category_detector(RateParams())
    assert d.name == "unseen_category_rate"
    assert not rate_eval(d, flags_with(1000, outside=0.02)).breached
    warn = rate_eval(d, flags_with(1000, outside=0.1))
    assert warn.breached and warn.severity == "warning"
    assert rate_eval(d, flags_with(1000, outside=0.3)).severity == "critical"
    assert not rate_eval(d, flags_with(1000, missing=0.5, invalid=0.2)).breached


# --------------------------------------------------------------------------------- change-point detectors
@pytest.mark.parametrize(
    ("factory", "params"),
    [(det.AdwinDetector, AdwinParams()), (det.PageHinkleyDetector, PageHinkleyParams())],
    ids=["adwin", "page_hinkley"],
)
@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_point_detectors(factory, params, direction):
    rng = np.random.default_rng(RNG_SEED)
    d = factory(params)
    assert d.update_many(rng.normal(0, 1, 20_000).tolist()) == [], "tripped on stationary standard-normal noise"
    trips = d.update_many((rng.normal(0, 1, 2000) + 1.5 * direction).tolist())
    assert trips and trips[0] < 200, trips[:3]
    # the channel confirms a trip with the mean shift since it: severity from threshold/critical
    assert d.evaluation(1.5) == det.Evaluation(1.5, params.threshold, None, True, "critical")
    assert d.evaluation(0.5).severity == "warning" and d.evaluation(0.5).breached
    assert d.evaluation(None) == det.Evaluation(None, params.threshold, None, False, params.severity)


# ------------------------------------------------------ every detector through a channel, end to end
def channel_for(detector: str, ctype: str) -> ChannelMonitor:
    key = "numeric_detectors" if ctype == "numeric" else "categorical_detectors"
    settings = DetectionSettings(
        window=WindowSettings(size=500, step=100), reference=ReferenceSettings(size=1000), **{key: (detector,)}
    )
    return ChannelMonitor("m", "f", ctype, settings, partition=0, ordinal=0)


def feed(ch: ChannelMonitor, values: list) -> list:
    n = len(values)
    rows = list(range(n))
    return ch.ingest(values, rows, row_times=[1000 * i for i in rows], row_offsets=rows)


def numeric_stream(kind: str, n_ref: int = 1000, n_after: int = 3000) -> list:
    rng = np.random.default_rng(RNG_SEED)
    before = rng.normal(100.0, 5.0, n_ref + 500).tolist()
    after = rng.normal(100.0, 5.0, n_after)
    if kind == "shift":
        after = after + 10.0
    values: list = [*before, *after.tolist()]
    if kind == "missing":
        values[n_ref + 500 :: 3] = [None] * len(values[n_ref + 500 :: 3])
    if kind == "outside":
        values[n_ref + 500 :: 4] = [1e6] * len(values[n_ref + 500 :: 4])
    return values


def categorical_stream(kind: str, n_ref: int = 1000, n_after: int = 3000) -> list:
    rng = np.random.default_rng(RNG_SEED)
    before = [CATS[k] for k in rng.choice(4, size=n_ref + 500, p=CAT_P)]
    p_after = [0.1, 0.1, 0.3, 0.5] if kind == "shift" else CAT_P
    after = [CATS[k] for k in rng.choice(4, size=n_after, p=p_after)]
    if kind == "unseen":
        after[::4] = ["NEW"] * len(after[::4])
    if kind == "missing":
        after[::3] = [None] * len(after[::3])
    if kind == "invalid":
        after[::4] = [3.5] * len(after[::4])  # wrong type for a categorical channel
    return before + after


CHANNEL_CASES = [
    ("adwin", "numeric", "shift"),
    ("page_hinkley", "numeric", "shift"),
    ("psi", "numeric", "shift"),
    ("ks", "numeric", "shift"),
    ("wasserstein", "numeric", "shift"),
    ("js", "numeric", "shift"),
    ("missing_rate", "numeric", "missing"),
    ("out_of_range_rate", "numeric", "outside"),
    ("chi2", "categorical", "shift"),
    ("js", "categorical", "shift"),
    ("psi", "categorical", "shift"),
    ("unseen_category_rate", "categorical", "unseen"),
    ("missing_rate", "categorical", "missing"),
    ("out_of_range_rate", "categorical", "invalid"),
]


@pytest.mark.parametrize(("detector", "ctype", "kind"), CHANNEL_CASES, ids=[f"{c[1]}-{c[0]}" for c in CHANNEL_CASES])
def test_every_detector_fires_through_a_channel(detector, ctype, kind):
    stream = numeric_stream if ctype == "numeric" else categorical_stream
    quiet = channel_for(detector, ctype)
    assert feed(quiet, stream("none")) == [], f"{detector} fired on a stationary {ctype} stream"
    ch = channel_for(detector, ctype)
    triggers = feed(ch, stream(kind))
    firing = [t for t in triggers if t.transition == "firing"]
    assert firing, f"{detector} did not fire on {kind}"
    first = firing[0]
    assert first.detector == detector and first.channel == "f"
    assert first.row >= 1500, "fired before the change"
    assert first.row < 1500 + 1500, f"{detector} took {first.row - 1500} observations to fire"
    assert first.reference_kind == "warmup" and first.reference_count == 1000
    assert first.quality == (detector in ("missing_rate", "out_of_range_rate", "unseen_category_rate"))


@pytest.mark.parametrize("detector", ["adwin", "page_hinkley"])
@pytest.mark.parametrize("spike", [1e300, 1e160, -1e200])
def test_one_absurd_value_does_not_blind_a_point_detector(detector, spike):
    """A finite value whose square overflows once made ADWIN's totals inf: that channel never tripped again."""
    rng = np.random.default_rng(RNG_SEED)
    values = [*rng.normal(100.0, 5.0, 2000).tolist(), spike, *(rng.normal(100.0, 5.0, 3000) + 10.0).tolist()]
    firing = [t for t in feed(channel_for(detector, "numeric"), values) if t.transition == "firing" and t.detector == detector]
    assert firing, f"{detector} never fired on the shift after one value of {spike}"
    assert 2001 <= firing[0].row < 2001 + 500, f"{detector} fired at row {firing[0].row}, the shift starts at 2001"


def test_point_detector_trip_needs_a_practically_significant_shift():
    """A 0.15 sd shift trips ADWIN over long windows, but is below the 0.25 sd confirmation threshold."""
    settings = DetectionSettings(numeric_detectors=("adwin", "page_hinkley"), reference=ReferenceSettings(size=1000))
    ch = ChannelMonitor("m", "f", "numeric", settings, partition=0, ordinal=0)
    rng = np.random.default_rng(RNG_SEED)
    values = [*rng.normal(0, 1, 16_000).tolist(), *(rng.normal(0, 1, 30_000) + 0.15).tolist()]
    # the raw detector on the same standardised values does trip ...
    raw = det.AdwinDetector(AdwinParams())
    ref = NumericReference.from_values(values[:1000], 0, 0, "warmup")
    assert raw.update_many(((np.asarray(values[1000:]) - ref.mean) / ref.scale).tolist()), "ADWIN did not trip at all"
    # ... but the channel does not confirm the trip as an alert
    assert feed(ch, values) == []


def test_a_shared_view_sorts_and_counts_once_and_gives_each_detector_what_a_fresh_view_does(numeric_ref, cat_ref):
    values = shifted(0.7, seed=5)
    before = values.copy()
    shared = view(values)
    sorted_once = shared.sorted_values
    assert shared.sorted_values is sorted_once and sorted_once.tolist() == np.sort(before).tolist()
    assert values.tolist() == before.tolist()  # the window (a ring buffer's entries) is not reordered
    numeric = [det.KsDetector(KsParams(), numeric_ref), det.PsiDetector(PsiParams(), numeric_ref), det.WassersteinDetector(WassersteinParams(), numeric_ref)]
    assert [d.evaluate(shared) for d in numeric] == [d.evaluate(view(values)) for d in numeric]
    codes = np.random.default_rng(6).integers(0, len(CATS) + 1, 1000).astype(np.int32)
    shared = view(codes)
    assert shared.code_counts(len(CATS) + 1).tolist() == np.bincount(codes, minlength=len(CATS) + 1).tolist()
    assert shared.code_counts(9).tolist() == np.bincount(codes, minlength=9).tolist()  # another length: counted again
    categorical = [det.Chi2Detector(Chi2Params(), cat_ref), det.JsDetector(JsParams(), cat_ref), det.PsiDetector(PsiParams(), cat_ref)]
    assert [d.evaluate(shared) for d in categorical] == [d.evaluate(view(codes)) for d in categorical]


@pytest.mark.parametrize("flags", [[], [0] * 5, [0, 1, 1, 3, 0, 2], [3] * 4])
def test_flag_counts_are_the_bincount_of_the_flags(flags):
    arr = np.array(flags, dtype=np.uint8)
    assert det.WindowView(values=np.empty(0), flags=arr).flag_counts == np.bincount(arr, minlength=4).tolist()


def test_ks_against_a_reference_scipy_must_handle():
    # a baseline sample with NaN cannot be prepared: KS falls back to scipy on it
    ref = NumericReference.from_values([0.0, 1.0, 2.0, 3.0], 0, 0, "baseline")
    ref.sorted_sample = np.array([0.0, 1.0, 2.0, np.nan])
    d = det.KsDetector(KsParams(), ref)
    assert d.prepared is None
    from scipy import stats as sps

    expected = sps.ks_2samp(ref.sorted_sample, np.array([0.5, 1.5]), method="asymp")
    got = d.evaluate(view(np.array([0.5, 1.5])))
    assert got is not None
    same = [a == b or (np.isnan(a) and np.isnan(b)) for a, b in [(got.statistic, expected.statistic), (got.p_value, expected.pvalue)]]
    assert same == [True, True] and not got.breached
