"""Default detectors on synthetic streams: false alarms on stationary data, detection delays on drift.

Measured numbers are printed (run with ``-s``) as ``FALSE-ALARMS ...`` and ``DETECTION ...`` lines:

    /work/venv/bin/python -m pytest tests/core/test_false_alarms.py -q -s

Streams come from :mod:`stream_monitor.synthetic` with the seeds stated below.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from stream_monitor.core.events import SourcePosition
from stream_monitor.core.monitor import Alert, InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec
from stream_monitor.synthetic import StreamSpec, demo_streams, generate_events

BATCH = 5000


# detector-level pages: the delays below are each detector's (a channel's page fires with the first)
DETECTOR_PAGES = MonitorSpec.model_validate({"defaults": {"alerting": {"group_by": "detector"}}})


def monitor_stream(spec: StreamSpec, monitor_spec: MonitorSpec = DETECTOR_PAGES) -> tuple[list[Alert], PartitionMonitor, float]:
    monitor = PartitionMonitor(monitor_spec, partition=0)
    alerts: list[Alert] = []
    batch: list[InputRecord] = []
    started = time.perf_counter()
    for i, event in enumerate(generate_events(spec)):
        batch.append(InputRecord(orjson.dumps(event), SourcePosition("inference-events", 0, i, event["ts"])))
        if len(batch) == BATCH:
            alerts += monitor.process(batch).alerts
            batch = []
    if batch:
        alerts += monitor.process(batch).alerts
    return alerts, monitor, time.perf_counter() - started


def describe(alerts: list[Alert]) -> list[tuple[Any, ...]]:
    return [(a.event.feature, a.event.detector, a.event.status, a.event.severity, a.position.offset, a.event.statistic) for a in alerts]


# ----------------------------------------------------------------------------------------- false alarms
@pytest.mark.parametrize("seed", [11, 12])
def test_stationary_stream_raises_at_most_one_alert(seed):
    spec = StreamSpec(model="stationary", n_events=100_000, seed=seed, n_numeric=20, n_categorical=5)
    alerts, monitor, seconds = monitor_stream(spec)
    channels = monitor.models["stationary"].channels
    n_detectors = sum(len(ch.detector_names) for ch in channels.values())
    print(
        f"\nFALSE-ALARMS seed={seed}: {len(alerts)} alerts on {len(channels)} channels ({n_detectors} detectors), "
        f"{spec.n_events} events in {seconds:.1f}s {describe(alerts)}"
    )
    # 20 numeric + 5 categorical features, plus __prediction__ and __latency__
    assert len(channels) == 27
    assert len(alerts) <= 1, describe(alerts)


# ------------------------------------------------------------------------------------- detection delays
N_DRIFT = 60_000
DRIFT_SEED = 42
# (channel, detector) -> the most events after the drift starts within which the alert must fire.
# Window detectors evaluate every 250 observations on a 1000-observation window and need two breaching
# evaluations (min_consecutive=2); ADWIN confirms a trip at the next evaluation step.
MAX_DELAY = {
    ("x0", "adwin"): 750,
    ("x0", "ks"): 1000,
    ("x0", "psi"): 1250,
    ("c0", "chi2"): 1000,
    ("c0", "unseen_category_rate"): 1000,
    ("x3", "missing_rate"): 1000,
}
MAX_RESOLVE_DELAY = {("x0", "psi"): 2500, ("x0", "ks"): 2500}
STATIONARY_FEATURES = {"x1", "x2", "x4", "x5", "x6", "x7", "c1", "c2", "__latency__"}


@pytest.fixture(scope="module")
def fraud_run():
    fraud, _churn = demo_streams(N_DRIFT, seed=DRIFT_SEED)
    alerts, monitor, seconds = monitor_stream(fraud)
    return fraud, alerts, seconds


def test_fraud_v3_drifts_are_detected_within_stated_delays(fraud_run):
    fraud, alerts, seconds = fraud_run
    start = {d.feature: d.start for d in fraud.drifts}
    end = {d.feature: d.end for d in fraud.drifts}
    firing: dict[tuple[str, str], int] = {}
    resolved: dict[tuple[str, str], int] = {}
    for a in alerts:
        key = (a.event.feature, a.event.detector)
        if a.event.status == "firing":
            firing.setdefault(key, a.position.offset)
        else:
            resolved.setdefault(key, a.position.offset)
    print(f"\nDETECTION fraud-v3 seed={DRIFT_SEED} n={N_DRIFT} ({seconds:.1f}s); drifts {[(d.kind, d.feature, d.start, d.end) for d in fraud.drifts]}")
    for key, bound in MAX_DELAY.items():
        delay = firing[key] - start[key[0]] if key in firing else None
        print(f"DETECTION {key[0]}/{key[1]}: fired {delay} events after the drift started (bound {bound})")
    for key, bound in MAX_RESOLVE_DELAY.items():
        delay = resolved[key] - end[key[0]] if key in resolved else None
        print(f"DETECTION {key[0]}/{key[1]}: resolved {delay} events after the drift reverted (bound {bound})")
    for key, bound in MAX_DELAY.items():
        assert key in firing, f"{key} never fired: {describe(alerts)}"
        delay = firing[key] - start[key[0]]
        assert 0 <= delay <= bound, f"{key} fired {delay} events after the drift started (bound {bound})"
    for key, bound in MAX_RESOLVE_DELAY.items():
        assert key in resolved, f"{key} never resolved after the revert at {end[key[0]]}: {describe(alerts)}"
        delay = resolved[key] - end[key[0]]
        assert 0 <= delay <= bound, f"{key} resolved {delay} events after the revert (bound {bound})"


def test_fraud_v3_has_no_alert_before_the_first_drift_nor_on_stationary_features(fraud_run):
    fraud, alerts, _ = fraud_run
    first = min(d.start for d in fraud.drifts)
    early = [a for a in alerts if a.position.offset < first]
    assert early == [], describe(early)
    wrong = [a for a in alerts if a.event.feature in STATIONARY_FEATURES]
    assert wrong == [], describe(wrong)
    print(f"\nFALSE-ALARMS fraud-v3 seed={DRIFT_SEED}: 0 alerts before index {first}; 0 on {sorted(STATIONARY_FEATURES)}")
