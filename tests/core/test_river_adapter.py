"""The River adapter against the installed River: attributes it reads exist and behave as verified.

These tests fail with a message naming the River internal that changed, so a River upgrade that
breaks the adapter is caught here rather than as a subtle detection difference.
"""

from __future__ import annotations

import numpy as np
import pytest
import river
from river import drift as river_drift
from river import stats as river_stats

from stream_monitor.core.detectors import river_adapter
from stream_monitor.core.settings import AdwinParams, PageHinkleyParams


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def test_installed_river_is_in_the_verified_range():
    low, high = river_adapter.RIVER_VERIFIED
    assert _version(low) <= _version(river.__version__) < _version(high), (
        f"River {river.__version__} is outside the range the River adapter was verified against "
        f"{river_adapter.RIVER_VERIFIED}: re-run tests/core/test_river_adapter.py and widen RIVER_VERIFIED"
    )


@pytest.mark.parametrize(
    ("make", "attributes"),
    [
        (lambda: river_drift.ADWIN(), ("_helper", "_drift_detected", "_reset", "drift_detected")),
        (
            lambda: river_drift.PageHinkley(alpha=1.0),
            ("_x_mean", "_sum_increase", "_sum_decrease", "_min_increase", "_max_decrease", "_drift_detected", "mode"),
        ),
    ],
    ids=["ADWIN", "PageHinkley"],
)
def test_river_private_attributes_exist(make, attributes):
    obj = make()
    missing = [a for a in attributes if not hasattr(obj, a)]
    assert not missing, f"River {river.__version__} {type(obj).__name__} lacks {missing}: the River adapter needs them"


def test_page_hinkley_running_mean_is_rivers_mean():
    mean = river_drift.PageHinkley()._x_mean
    assert type(mean) is river_stats.Mean and {"n", "_mean"} <= set(vars(mean)), (
        f"River {river.__version__} PageHinkley._x_mean is no longer a stats.Mean with n and _mean"
    )


def test_adwin_helper_exposes_update_and_a_binary_snapshot():
    helper = river_drift.ADWIN()._helper
    for name in ("update", "__getstate__", "__setstate__"):
        assert hasattr(helper, name), f"River {river.__version__} ADWIN._helper lacks {name}"


@pytest.mark.parametrize("cls,params", [(river_adapter.AdwinDetector, AdwinParams(delta=0.5)), (river_adapter.PageHinkleyDetector, PageHinkleyParams(ph_threshold=3.0, min_instances=5))])
def test_fast_update_trips_where_river_update_does(cls, params):
    rng = np.random.default_rng(7)
    z = rng.normal(0, 1, 4000)
    z[1500:2500] += 2.0
    ours, rivers = cls(params), cls(params)
    trips = ours.update_many(z.tolist())
    assert trips == rivers._update_many_river(z.tolist()) and trips, (
        f"River {river.__version__}: the adapter's inlined update of {cls.__name__} no longer matches River's own update"
    )


def _shifting(seed: int, n: int) -> list[float]:
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1, n)
    for start in rng.integers(0, n, 5):
        z[start : start + 300] += rng.choice([-2.0, 1.0, 2.5])
    return z.tolist()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    ("cls", "params"),
    [
        (river_adapter.AdwinDetector, AdwinParams()),
        (river_adapter.AdwinDetector, AdwinParams(delta=0.5)),  # trips often: restores right after a trip too
        (river_adapter.PageHinkleyDetector, PageHinkleyParams()),
        (river_adapter.PageHinkleyDetector, PageHinkleyParams(ph_threshold=3.0, min_instances=5)),
    ],
    ids=["adwin", "adwin-trippy", "page_hinkley", "page_hinkley-trippy"],
)
def test_state_rebuilt_from_plain_numbers_trips_like_the_uninterrupted_detector(cls, params, seed):
    import msgpack

    z = _shifting(seed, 8000)
    split = 1000 + 1500 * seed
    uninterrupted = cls(params)
    interrupted = cls(params)
    assert uninterrupted.update_many(z[:split]) == interrupted.update_many(z[:split])
    plain = msgpack.unpackb(msgpack.packb(interrupted.get_state()), raw=False)  # numbers, lists, maps only
    restored = cls(params)
    restored.set_state(plain)
    after = uninterrupted.update_many(z[split:])
    assert restored.update_many(z[split:]) == after, f"River {river.__version__}: restored {cls.__name__} trips differently"
    trippy = getattr(params, "delta", None) == 0.5 or getattr(params, "ph_threshold", None) == 3.0
    assert after or not trippy, "the sensitive settings should trip after the split"
    assert restored.get_state() == uninterrupted.get_state()


def test_adwin_snapshot_layout_is_the_one_the_adapter_reads():
    d = river_adapter.AdwinDetector(AdwinParams())
    d.update_many(_shifting(1, 3000))
    blob = d.detector._helper.__getstate__()
    try:
        state = river_adapter._adwin_snapshot_to_state(blob)
    except (river_adapter.RiverStateError, Exception) as exc:  # noqa: BLE001 - any failure means the layout changed
        pytest.fail(f"River {river.__version__}: ADWIN's window snapshot no longer has the layout the adapter reads ({exc})")
    assert river_adapter._adwin_state_to_snapshot(state) == blob, f"River {river.__version__}: ADWIN snapshot does not re-encode identically"
    assert state["width"] == d.detector.width and state["total"] == d.detector.total


@pytest.mark.parametrize(
    "bad",
    [
        {"drift": False},
        {"drift": 1, "window": {}},
        "x",
    ],
)
def test_a_state_that_does_not_fit_is_refused_before_river_sees_it(bad):
    for cls, params in ((river_adapter.AdwinDetector, AdwinParams()), (river_adapter.PageHinkleyDetector, PageHinkleyParams())):
        with pytest.raises(river_adapter.RiverStateError):
            cls(params).set_state(bad)


def test_a_forged_adwin_window_is_refused():
    d = river_adapter.AdwinDetector(AdwinParams())
    d.update_many(_shifting(2, 2000))
    good = d.get_state()
    forgeries = []
    for change in ("fill", "width", "delta", "levels", "empty-last"):
        s = {"drift": False, "window": {**good["window"], "buckets": [dict(b) for b in good["window"]["buckets"]]}}
        w = s["window"]
        if change == "fill":
            w["buckets"][0]["fill"] = 6
        elif change == "width":
            w["width"] = w["width"] + 1.0
        elif change == "delta":
            w["delta"] = 0.3
        elif change == "levels":
            w["buckets"] = w["buckets"] * 40
        else:
            w["buckets"].append({**w["buckets"][-1], "fill": 0})
        forgeries.append(s)
    for forged in forgeries:
        with pytest.raises(river_adapter.RiverStateError):
            river_adapter.AdwinDetector(AdwinParams()).set_state(forged)


# ------------------------------------------------------------------ the 0/1 error-stream detectors
def _errors(seed: int, n: int) -> list[float]:
    """Standardised 0/1 errors (reference rate 0.1) whose rate rises in places."""
    rng = np.random.default_rng(seed)
    rate = np.full(n, 0.1)
    for start in rng.integers(0, n, 4):
        rate[start : start + 1500] = 0.35
    x = (rng.random(n) < rate).astype(float)
    return ((x - 0.1) / 0.3).tolist()


def _error_detector(name: str, trippy: bool):
    from stream_monitor.core.detectors.ddm import DdmDetector
    from stream_monitor.core.detectors.hddm import EddmDetector, HddmADetector, HddmWDetector
    from stream_monitor.core.reference import NumericReference
    from stream_monitor.core.settings import DdmParams, EddmParams, HddmAParams, HddmWParams

    ref = NumericReference.from_values(np.array([0.0] * 90 + [1.0] * 10), 0, 0, "warmup")  # mean 0.1, sd 0.3
    if name == "ddm":
        return DdmDetector(DdmParams(warm_start=30 if trippy else 1000), ref)
    if name == "eddm":
        return EddmDetector(EddmParams(warm_start=30 if trippy else 300, beta=0.95 if trippy else 0.9), ref)
    if name == "hddm_w":
        return HddmWDetector(HddmWParams(drift_confidence=0.05 if trippy else 1e-4), ref)
    return HddmADetector(HddmAParams(drift_confidence=0.05 if trippy else 1e-4), ref)


def test_river_binary_detectors_have_the_attributes_the_adapter_reads():
    for obj, attributes in (
        (river_drift.binary.DDM(), ("_p", "_p_min", "_s_min", "_ps_min", "_drift_detected", "_warning_detected")),
        (river_drift.binary.HDDMA(), ("_z", "_x_min", "_x_max", "_drift_detected", "_warning_detected")),
        (river_drift.binary.EDDM(), ("_error_distances", "_n", "_last_error", "_n_errors", "_p2s_prime_max", "_drift_detected")),
        (river_drift.binary.HDDMW(), ("_total", "_s1_decr", "_s1_incr", "_s2_decr", "_s2_incr", "_incr_cutpoint", "_decr_cutpoint")),
    ):
        missing = [a for a in attributes if not hasattr(obj, a)]
        assert not missing, f"River {river.__version__} {type(obj).__name__} lacks {missing}: the River adapter needs them"


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", ["ddm", "hddm_a", "eddm", "hddm_w"])
@pytest.mark.parametrize("trippy", [False, True], ids=["default", "trippy"])
def test_error_stream_detector_state_round_trips_through_plain_numbers(name, trippy, seed):
    import msgpack

    z = _errors(seed, 12000)
    split = 2000 + 3000 * seed
    uninterrupted, interrupted = _error_detector(name, trippy), _error_detector(name, trippy)
    assert uninterrupted.update_many(z[:split]) == interrupted.update_many(z[:split])
    plain = msgpack.unpackb(msgpack.packb(interrupted.get_state()), raw=False)
    restored = _error_detector(name, trippy)
    restored.set_state(plain)
    after = uninterrupted.update_many(z[split:])
    assert restored.update_many(z[split:]) == after, f"River {river.__version__}: restored {name} trips differently"
    assert after, f"{name} should trip on the rises after the split"
    assert restored.get_state() == uninterrupted.get_state()


@pytest.mark.parametrize("name", ["ddm", "hddm_a", "eddm", "hddm_w"])
def test_an_error_stream_state_that_does_not_fit_is_refused(name):
    d = _error_detector(name, False)
    good = d.get_state()
    key = {"ddm": "p", "hddm_a": "z", "eddm": "distances", "hddm_w": "total"}[name]
    for bad in ({**good, key: [1.0]}, {**good, "drift": 1}, {k: v for k, v in good.items() if k != key}, [], {**good, key: [-1.0, 0.0]}):
        with pytest.raises(river_adapter.RiverStateError):
            d.set_state(bad)
