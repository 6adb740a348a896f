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
