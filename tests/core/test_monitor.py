"""PartitionMonitor: batch invariance, state round trip, discovery, dead letters, label join, alert payloads."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any, Iterable, Sequence

import orjson
import numpy as np
import pytest
from structlog.testing import capture_logs

from stream_monitor.core.alert import AlertEvent, kind_of
from stream_monitor.core.detectors import is_quality
from stream_monitor.core.events import DeadLetterReason, SourcePosition, format_event_time
from stream_monitor.core.lifecycle import fingerprint
from stream_monitor.core.monitor import Alert, BatchResult, InputRecord, PartitionMonitor
from stream_monitor.core.reference import NumericReference
from stream_monitor.core.spec import MonitorSpec
from stream_monitor.synthetic import Drift, StreamSpec, generate_events

TOPIC = "inference-events"
T0 = 1_767_225_600_000
N_EVENTS = 30_000
LATENCY_DRIFT_AT = 22_000

SPEC_DATA: dict[str, Any] = {
    "instance": "test-instance",
    "version": "9.9.9",
    "labels": {"env": "test"},
    "models": {
        "m": {
            "labels": {"team": "risk-ml", "owner": "alice"},
            "annotations": {"runbook_url": "https://runbooks.example/m"},
            "channels": {"x0": {"labels": {"tier": "1"}, "annotations": {"dashboard": "https://dash.example/x0"}}},
        }
    },
}
SPEC = MonitorSpec.model_validate(SPEC_DATA)

# The alert contract (stream_monitor.core.alert.AlertEvent): every field a published alert carries.
CONTRACT_FIELDS = {
    "schema_version", "alert_id", "fingerprint", "status", "severity", "kind", "model", "model_version", "feature",
    "detector", "statistic", "threshold", "p_value", "event_time", "starts_at", "ends_at", "window", "reference",
    "source", "labels", "annotations", "monitor",
}  # fmt: skip


def to_records(raws: Sequence[bytes], times: Sequence[int | None], partition: int = 0, topic: str = TOPIC) -> list[InputRecord]:
    return [InputRecord(raw, SourcePosition(topic, partition, i, t)) for i, (raw, t) in enumerate(zip(raws, times, strict=True))]


def events_to_records(events: Iterable[dict[str, Any]]) -> list[InputRecord]:
    raws, times = [], []
    for e in events:
        raws.append(orjson.dumps(e))
        times.append(e.get("ts") if isinstance(e.get("ts"), int) else T0)
    return to_records(raws, times)


def drifting_stream() -> list[InputRecord]:
    """30k events of model m: x0 mean shift (8k-20k), new category in c0 (12k-), missing x1 (15k-),
    latency x3 (22k-), plus invalid records sprinkled in (bad JSON, NaN, wrong type). Seed 3."""
    spec = StreamSpec(
        model="m",
        n_events=N_EVENTS,
        seed=3,
        n_numeric=3,
        n_categorical=2,
        drifts=(
            Drift("mean_shift", "x0", 8000, 20_000, amount=1.5),
            Drift("new_category", "c0", 12_000, None, amount=0.3, category="XX"),
            Drift("missing_rate", "x1", 15_000, None, amount=0.3),
        ),
    )
    raws: list[bytes] = []
    times: list[int | None] = []
    for i, e in enumerate(generate_events(spec)):
        if i >= LATENCY_DRIFT_AT:
            e["latency_ms"] = round(e["latency_ms"] * 3, 3)
        if i % 1999 == 1998:
            raws.append(b'{"model": "m", "ts": ')  # invalid JSON
        elif i % 1499 == 7:
            e["features"]["x2"] = float("nan")
            raws.append(json.dumps(e).encode())
        elif i % 2503 == 11:
            e["features"]["x2"] = "oops"
            raws.append(orjson.dumps(e))
        else:
            raws.append(orjson.dumps(e))
        times.append(e["ts"])
    return to_records(raws, times)


def run(monitor: PartitionMonitor, records: Sequence[InputRecord], sizes: Iterable[int]) -> tuple[list[Alert], list[bytes]]:
    """Process ``records`` in batches of the given sizes (cycled); return alerts and dead-letter JSON."""
    alerts: list[Alert] = []
    dlq: list[bytes] = []
    i = 0
    for size in itertools.cycle(sizes):
        if i >= len(records):
            break
        result = monitor.process(records[i : i + size])
        alerts.extend(result.alerts)
        dlq.extend(d.to_json() for d in result.dead_letters)
        i += size
    return alerts, dlq


def by_offset(dlq: Sequence[bytes]) -> list[bytes]:
    """Dead letters in source-offset order. Within one batch the monitor lists record-level dead
    letters (bad JSON, ...) before value-level ones (NaN, wrong type), so their order, unlike their
    content, depends on batch boundaries."""
    return sorted(dlq, key=lambda d: json.loads(d)["source"]["offset"])


def summary(alerts: Sequence[Alert]) -> list[tuple[str, str, str, int]]:
    return [(a.event.feature, a.event.detector, a.event.status, a.position.offset) for a in alerts]


@pytest.fixture(scope="module")
def stream() -> list[InputRecord]:
    return drifting_stream()


@pytest.fixture(scope="module")
def reference_run(stream) -> tuple[list[Alert], list[bytes]]:
    return run(PartitionMonitor(SPEC, partition=0), stream, [5000])


# ----------------------------------------------------------------------------- (a) batch invariance
def test_reference_run_has_firing_escalated_and_resolved_alerts(reference_run):
    alerts, dlq = reference_run
    statuses = {(a.event.status, a.event.escalated) for a in alerts}
    assert {("firing", False), ("firing", True), ("resolved", False)} <= statuses, summary(alerts)
    assert {a.event.feature for a in alerts} >= {"x0", "c0", "x1", "__prediction__", "__latency__"}, summary(alerts)
    reasons = {json.loads(d)["reason"] for d in dlq}
    assert reasons == {"invalid_json", "non_finite_value", "wrong_type"}


@pytest.mark.parametrize("sizes", [[1], [1, 2, 3, 4, 5, 6, 7], [100]], ids=["1", "1..7", "100"])
def test_batch_invariance(stream, reference_run, sizes):
    alerts, dlq = run(PartitionMonitor(SPEC, partition=0), stream, sizes)
    ref_alerts, ref_dlq = reference_run
    assert summary(alerts) == summary(ref_alerts)
    assert [a.payload for a in alerts] == [a.payload for a in ref_alerts]  # byte-identical
    assert [a.fingerprint for a in alerts] == [a.fingerprint for a in ref_alerts]
    assert by_offset(dlq) == by_offset(ref_dlq)


# --------------------------------------------------------------------------- (b) state round trip
@pytest.mark.parametrize("split", [15_000, 12_345])
def test_state_round_trip_equals_an_uninterrupted_run(stream, reference_run, split):
    first = PartitionMonitor(SPEC, partition=0)
    a1, d1 = run(first, stream[:split], [1000])
    items = first.state_items(only_dirty=False)
    assert "labels" in items  # predictions awaiting labels are state too
    restored = PartitionMonitor.from_state_items(SPEC, 0, items)
    a2, d2 = run(restored, stream[split:], [1000])
    assert [a.payload for a in a1 + a2] == [a.payload for a in reference_run[0]]
    assert by_offset(d1 + d2) == by_offset(reference_run[1])


def test_incremental_dirty_checkpoints_compose(stream, reference_run):
    """Only-dirty state items applied in order (a compacted changelog) restore the same state."""
    monitor = PartitionMonitor(SPEC, partition=0)
    changelog: dict[str, bytes] = {}
    alerts: list[Alert] = []
    split = 17_000
    for i in range(0, split, 1000):
        alerts += monitor.process(stream[i : i + 1000]).alerts
        changelog.update(monitor.state_items())
    assert monitor.state_items() == {}  # nothing changed since the last checkpoint
    restored = PartitionMonitor.from_state_items(SPEC, 0, changelog)
    a2, _ = run(restored, stream[split:], [1000])
    assert [a.payload for a in alerts + a2] == [a.payload for a in reference_run[0]]


def with_x0_psi_threshold(threshold: float) -> MonitorSpec:
    data = json.loads(json.dumps(SPEC_DATA))
    data["models"]["m"]["channels"]["x0"]["detection"] = {"detector_params": {"psi": {"threshold": threshold}}}
    return MonitorSpec.model_validate(data)


def test_changed_threshold_resets_only_that_channel(stream, reference_run):
    split = 15_000
    first = PartitionMonitor(SPEC, partition=0)
    a1, _ = run(first, stream[:split], [1000])
    items = first.state_items(only_dirty=False)
    spec2 = with_x0_psi_threshold(0.3)
    with capture_logs() as logs:
        restored = PartitionMonitor.from_state_items(spec2, 0, items)
    resets = [e for e in logs if e["event"] == "state_settings_changed_reset"]
    assert [(e["model"], e["channel"], e["log_level"]) for e in resets] == [("m", "x0", "warning")]
    x0 = restored.models["m"].channels["x0"]
    assert x0.settings.params("psi").threshold == 0.3
    assert x0.observations == 0 and x0.reference is not None  # detectors restart, the reference is kept
    assert restored.models["m"].channels["c0"].observations > 0  # other channels keep their state
    a2, _ = run(restored, stream[split:], [1000])
    # every other channel alerts exactly as in the uninterrupted run
    ref_tail = [a.payload for a in reference_run[0][len(a1) :] if a.event.feature != "x0"]
    assert [a.payload for a in a2 if a.event.feature != "x0"] == ref_tail
    # x0 keeps working under the new threshold: its page, open before the restart, still resolves
    assert any(a.event.feature == "x0" and a.event.status == "resolved" for a in a2), summary(a2)


def open_episodes(alerts: Sequence[Alert]) -> set[str]:
    state: dict[str, str] = {}
    for a in alerts:
        state[a.fingerprint] = a.event.status
    return {fp for fp, status in state.items() if status == "firing"}


def test_uninterrupted_run_leaves_no_x0_episode_open(reference_run):
    x0 = {fingerprint("m", "x0")} | {fingerprint("m", "x0", d) for d in ("psi", "ks", "adwin", "page_hinkley")}
    assert not (open_episodes(reference_run[0]) & x0)


def test_changed_threshold_does_not_leave_a_firing_alert_open_forever(stream):
    split = 19_900  # x0 psi/ks are firing; the x0 shift ends at 20k, before a fresh window fills
    first = PartitionMonitor(SPEC, partition=0)
    a1, _ = run(first, stream[:split], [1000])
    x0_psi = fingerprint("m", "x0")  # x0's page (psi and ks agree)
    assert x0_psi in open_episodes(a1)
    restored = PartitionMonitor.from_state_items(with_x0_psi_threshold(0.3), 0, first.state_items(only_dirty=False))
    a2, _ = run(restored, stream[split:], [1000])
    assert x0_psi not in open_episodes(a1 + a2), "x0's page fired before the restart and never resolved"


def xy_records(start: int, stop: int) -> list[InputRecord]:
    return events_to_records({"model": "m", "ts": T0 + i, "features": {"x": float(i % 7), "y": float(i % 5)}} for i in range(start, stop))


@pytest.mark.parametrize(
    "model_config",
    [
        {"channels": {"y": {"enabled": False}}},
        {"channels": {"y": {"type": "categorical"}}},
        {"discover": False, "channels": {"x": {}}},
    ],
    ids=["disabled", "type-changed", "discovery-off"],
)
def test_restored_state_honours_channel_config_changes(model_config):
    before = PartitionMonitor(MonitorSpec(), partition=0)
    before.process(xy_records(0, 100))
    spec = MonitorSpec.model_validate({"models": {"m": model_config}})
    restored = PartitionMonitor.from_state_items(spec, 0, before.state_items(only_dirty=False))
    restored.process(xy_records(100, 200))
    fresh = PartitionMonitor(spec, partition=0)
    fresh.process(xy_records(0, 200))
    assert channel_types(restored, "m") == channel_types(fresh, "m")


# --------------------------------------------------------------------------- (c) zero-config discovery
REF = 50  # the smallest reference: channels activate after 50 observations, so tests can read them
SMALL = MonitorSpec.model_validate({"defaults": {"reference": {"size": REF}, "window": {"size": 50, "step": 10}}})


def small_events(n: int, model: str = "m", start: int = 0, **over: Any) -> list[dict[str, Any]]:
    out = []
    for i in range(start, start + n):
        e = {
            "event_id": f"{model}-{i}",
            "model": model,
            "ts": T0 + 1000 * i,
            "features": {"x": float(i % 13), "c": "ab"[i % 2], "flag": i % 3 == 0, "late": None if i < 5 else 1.0},
            "prediction": {"y_pred_proba": (i % 10) / 10, "y_pred": int(i % 10 >= 5)},
            "latency_ms": 10.0 + i % 7,
            "label": i % 2,
        }
        e.update(over)
        out.append(e)
    return out


def channel_types(monitor: PartitionMonitor, model: str) -> dict[str, str]:
    return {name: ch.channel_type for name, ch in monitor.models[model].channels.items()}


def numeric_ref(monitor: PartitionMonitor, model: str, channel: str) -> NumericReference:
    ref = monitor.models[model].channels[channel].reference
    assert isinstance(ref, NumericReference), ref
    return ref


def test_zero_config_discovers_models_features_and_reserved_channels():
    monitor = PartitionMonitor(SMALL, partition=0)
    events = small_events(REF) + [
        {"model": "n", "ts": T0 + i, "prediction": ["fraud", "ok"][i % 2], "latency_ms": 5} for i in range(10)
    ]
    result = monitor.process(events_to_records(events))
    assert result.dead_letters == [] and result.alerts == []
    assert channel_types(monitor, "m") == {
        "x": "numeric",
        "c": "categorical",
        "flag": "categorical",  # booleans are categories
        "late": "numeric",
        "__prediction__.y_pred_proba": "numeric",  # named outputs: one channel each
        "__prediction__.y_pred": "numeric",
        "__latency__": "numeric",
        "__label__": "numeric",  # inline label
        "__error__": "numeric",  # ... and the error against the prediction
        "__error_rate__": "numeric",  # ... and, for a classifier, as its 0/1 error stream
        "__recall__": "numeric",  # ... its recall and precision as 0/1 success streams
        "__precision__": "numeric",
        "__f1__": "numeric",  # ... and F1's (true positives among TP, FP and FN)
        "__log_loss__": "numeric",  # ... and, with a probability, its log loss, calibration and ROC AUC
        "__calibration__": "numeric",
        "__roc_auc__": "numeric",
    }
    assert channel_types(monitor, "n") == {"__prediction__": "categorical", "__latency__": "numeric"}
    chans = monitor.models["m"].channels
    # a feature first seen as null has no type yet: it is discovered on its first value (event 5)
    assert chans["late"].observations == REF - 5 and chans["x"].observations == REF
    # inline labels: the error of the y_pred output, |y_pred - label|
    expected_err = sorted(float(abs(int(i % 10 >= 5) - i % 2)) for i in range(REF))
    assert numeric_ref(monitor, "m", "__error__").sorted_sample.tolist() == expected_err
    assert sorted(chans["flag"].reference.categories) == ["false", "true"]
    assert numeric_ref(monitor, "m", "__latency__").maximum == 16.0


def test_absent_known_feature_is_missing_and_prediction_only_events_say_nothing_about_features():
    monitor = PartitionMonitor(SMALL, partition=0)
    events = small_events(REF - 1)
    events.append({"model": "m", "ts": T0 + 10**6, "features": {"x": 1.0}})  # c, flag, late absent -> missing
    events.append({"model": "m", "ts": T0 + 10**6 + 1, "prediction": {"y_pred_proba": 0.3, "y_pred": 0}})  # no features
    monitor.process(events_to_records(events))
    chans = monitor.models["m"].channels
    assert chans["x"].observations == REF and numeric_ref(monitor, "m", "x").missing_rate == 0.0
    assert chans["c"].observations == REF and chans["c"].reference.missing_rate == pytest.approx(1 / REF)
    # 49 full events + the prediction-only one; the features-only event has no prediction
    assert chans["__prediction__.y_pred_proba"].observations == REF


def test_discovery_can_be_switched_off():
    spec = MonitorSpec.model_validate(
        {"discover_models": False, "models": {"m": {"discover": False, "channels": {"x": {}, "c": {"enabled": False}, "__latency__": {}}}}}
    )
    monitor = PartitionMonitor(spec, partition=0)
    monitor.process(events_to_records(small_events(10) + small_events(5, model="other")))
    assert set(monitor.models) == {"m"}
    assert set(monitor.models["m"].channels) == {"x", "__latency__"}


def test_configured_channel_type_wins_over_the_first_value():
    spec = MonitorSpec.model_validate({"models": {"m": {"channels": {"x": {"type": "categorical"}}}}})
    monitor = PartitionMonitor(spec, partition=0)
    result = monitor.process(events_to_records(small_events(3)))
    assert channel_types(monitor, "m")["x"] == "categorical"
    assert [d.reason for d in result.dead_letters] == [DeadLetterReason.WRONG_TYPE] * 3


# ------------------------------------------------------------------------------- (d) wrong type
def test_wrong_type_is_a_processed_dead_letter_and_the_rest_of_the_record_is_monitored():
    monitor = PartitionMonitor(SMALL, partition=0)
    monitor.process(events_to_records(small_events(REF - 1)))
    bad = small_events(1, start=REF - 1)[0]
    bad["features"]["x"] = "twelve"
    raw = orjson.dumps(bad)
    rec = InputRecord(raw, SourcePosition(TOPIC, 0, 99, None))
    result = monitor.process([rec])
    assert len(result.dead_letters) == 1
    dl = result.dead_letters[0]
    assert dl.reason == DeadLetterReason.WRONG_TYPE and dl.processed is True
    assert dl.detail == "x: expected numeric, got str"
    assert dl.raw == raw and dl.position == rec.position
    assert result.invalid_by_reason == {"wrong_type": 1}
    chans = monitor.models["m"].channels
    # the wrong-typed value is an invalid observation of x; every other channel saw the record
    assert chans["x"].observations == REF and numeric_ref(monitor, "m", "x").invalid_rate == pytest.approx(1 / REF)
    assert all(chans[n].observations == REF for n in ("c", "flag", "__latency__", "__error__", "__prediction__.y_pred"))
    # a categorical channel given a number
    bad2 = small_events(1, start=REF)[0]
    bad2["features"]["c"] = 3.5
    assert [d.detail for d in monitor.process(events_to_records([bad2])).dead_letters] == ["c: expected categorical, got float"]


def test_several_problems_in_one_record_are_one_dead_letter():
    monitor = PartitionMonitor(SMALL, partition=0)
    monitor.process(events_to_records(small_events(REF - 1)))
    e = small_events(1, start=REF - 1)[0]
    e["features"]["x"] = float("nan")
    e["features"]["c"] = 1
    result = monitor.process(to_records([json.dumps(e).encode()], [None]))
    assert len(result.dead_letters) == 1
    dl = result.dead_letters[0]
    assert dl.reason == DeadLetterReason.NON_FINITE_VALUE and dl.processed
    assert dl.detail == "features.x: nan (+1 more)"
    assert numeric_ref(monitor, "m", "x").invalid_rate == pytest.approx(1 / REF)  # NaN counts as invalid


def test_record_level_dead_letters_are_not_processed():
    monitor = PartitionMonitor(MonitorSpec(), partition=0)
    result = monitor.process(to_records([b"not json", b"[]", b'{"features": {}}', b'{"model": "m"}'], [1, 1, 1, None]))
    assert [(str(d.reason), d.processed) for d in result.dead_letters] == [
        ("invalid_json", False),
        ("not_an_object", False),
        ("schema_violation", False),
        ("invalid_timestamp", False),
    ]
    assert [d.position.offset for d in result.dead_letters] == [0, 1, 2, 3]
    assert monitor.models == {}


# ------------------------------------------------------------------------------- (e) label join
def label_records(pairs: Sequence[tuple[str, Any]], model: str = "m", ts: int | None = None, start_offset: int = 0) -> list[InputRecord]:
    raws = [orjson.dumps({"event_id": eid, "model": model, "label": lab, **({"ts": ts} if ts else {})}) for eid, lab in pairs]
    return [InputRecord(r, SourcePosition("label-events", 0, start_offset + i, T0 + 10**9)) for i, r in enumerate(raws)]


def test_label_join_feeds_label_and_error_channels():
    monitor = PartitionMonitor(SMALL, partition=0)
    events = small_events(2 * REF, label=None)
    for i, e in enumerate(events):
        e["prediction"] = 0.01 * i
    monitor.process(events_to_records(events))
    assert len(monitor.pending_labels) == 2 * REF
    assert "__label__" not in monitor.models["m"].channels
    result = monitor.process_labels(label_records([(f"m-{i}", 1) for i in range(REF)]))
    assert result.dead_letters == [] and result.channel_values == 8 * REF  # label, error, error rate, recall, F1 (every label is positive), log loss, calibration, ROC AUC
    assert numeric_ref(monitor, "m", "__label__").sorted_sample.tolist() == [1.0] * REF
    assert numeric_ref(monitor, "m", "__error__").sorted_sample.tolist() == pytest.approx(sorted(abs(0.01 * i - 1) for i in range(REF)))
    assert monitor.models["m"].channels["__error_rate__"].observations == REF
    assert len(monitor.pending_labels) == REF
    # each prediction joins once: a second label for the same event waits (its prediction might still
    # come) and is unmatched once predictions label_wait_seconds later than it have been judged
    again = monitor.process_labels(label_records([("m-0", 0)], ts=T0))
    assert again.dead_letters == [] and again.waiting == 1
    later = monitor.process(events_to_records(small_events(1, start=400, label=None)))
    assert [d.reason for d in later.dead_letters] == [DeadLetterReason.LABEL_UNMATCHED]


def test_label_join_uses_y_pred_of_named_outputs_and_class_predictions():
    monitor = PartitionMonitor(SMALL, partition=0)
    events = small_events(REF, label=None)  # y_pred = 1 for i % 10 >= 5
    events += [{"event_id": f"n-{i}", "model": "n", "ts": T0 + i, "prediction": "fraud"} for i in range(REF)]
    monitor.process(events_to_records(events))
    monitor.process_labels(label_records([(f"m-{i}", 1) for i in range(REF)]))
    monitor.process_labels(label_records([(f"n-{i}", "fraud" if i < 10 else "ok") for i in range(REF)], model="n"))
    m_err = numeric_ref(monitor, "m", "__error__")
    assert m_err.mean == pytest.approx(0.5)  # y_pred 0 for half the events, label 1 for all
    n_err = numeric_ref(monitor, "n", "__error__")
    assert n_err.mean == pytest.approx((REF - 10) / REF)  # class mismatch = 1
    assert monitor.models["n"].channels["__label__"].channel_type == "categorical"


def test_label_event_time_is_its_ts_or_its_predictions():
    monitor = PartitionMonitor(SMALL, partition=0)
    monitor.process(events_to_records(small_events(REF + 40, label=None)))
    monitor.process_labels(label_records([(f"m-{i}", i % 2) for i in range(REF + 20)]))
    res = monitor.process_labels(label_records([(f"m-{i}", i % 2) for i in range(REF + 20, REF + 40)], ts=T0 + 10**8), record_evaluations=True)
    assert {e.event_time_ms for e in res.evaluations} == {T0 + 10**8}
    res = PartitionMonitor(SMALL, 0)  # the no-ts case: prediction time (checked through the evaluations)
    res.process(events_to_records(small_events(REF + 20, label=None)))
    out = res.process_labels(label_records([(f"m-{i}", i % 2) for i in range(REF + 20)]), record_evaluations=True)
    assert {e.event_time_ms for e in out.evaluations} <= {T0 + 1000 * i for i in range(REF + 20)}
    assert out.evaluations


def test_unmatched_label_waits_then_is_a_dead_letter():
    monitor = PartitionMonitor(MonitorSpec(), partition=0)
    recs = label_records([("nope", 1)], start_offset=5, ts=T0) + [InputRecord(b'{"model": "m"}', SourcePosition("label-events", 0, 6, 1))]
    result = monitor.process_labels(recs)
    # no prediction judged yet: the label waits (it may come before its prediction); the bad one is a dead letter
    assert [(d.reason, d.position.offset) for d in result.dead_letters] == [(DeadLetterReason.SCHEMA_VIOLATION, 6)]
    assert result.waiting == 1 and list(monitor.joins.waiting) == ["nope"]
    # predictions more than label_wait_seconds later are judged: its prediction is not coming
    later = monitor.process(events_to_records(small_events(1, start=301, label=None)))
    assert [(d.reason, d.processed, d.position.offset) for d in later.dead_letters] == [(DeadLetterReason.LABEL_UNMATCHED, False, 5)]
    assert "nope" in later.dead_letters[0].detail and later.dead_letters[0].raw == recs[0].value
    assert later.invalid_by_reason == {"label_unmatched": 1} and later.resumed == 1


def test_label_before_its_prediction_waits_and_joins():
    monitor = PartitionMonitor(SMALL, partition=0)
    early = monitor.process_labels(label_records([("m-3", 1)], ts=T0 + 3000))
    assert early.dead_letters == [] and early.waiting == 1
    result = monitor.process(events_to_records(small_events(5, label=None)))
    assert result.dead_letters == [] and result.resumed == 1 and not monitor.joins.waiting
    assert monitor.models["m"].channels["__label__"].observations == 1
    assert "m-3" not in monitor.pending_labels


def test_label_join_window_and_capacity_evict_old_predictions():
    spec = MonitorSpec(label_join_window_seconds=5, label_join_max_pending=3, label_wait_seconds=1)
    monitor = PartitionMonitor(spec, partition=0)
    events = small_events(6, label=None)  # one second apart
    monitor.process(events_to_records(events))
    assert list(monitor.pending_labels) == ["m-3", "m-4", "m-5"]  # capacity 3
    late = small_events(1, start=20, label=None)  # 20 s later: everything older than 5 s goes
    monitor.process(events_to_records(late))
    assert list(monitor.pending_labels) == ["m-20"]
    assert monitor.process_labels(label_records([("m-5", 1)], ts=T0)).dead_letters[0].reason == DeadLetterReason.LABEL_UNMATCHED


def test_pending_labels_survive_a_state_round_trip():
    monitor = PartitionMonitor(MonitorSpec(), partition=0)
    monitor.process(events_to_records(small_events(5, label=None)))
    restored = PartitionMonitor.from_state_items(MonitorSpec(), 0, monitor.state_items(only_dirty=False))
    assert restored.process_labels(label_records([("m-2", 1)])).dead_letters == []
    assert restored.models["m"].channels["__label__"].observations == 1


# ------------------------------------------------------------------------------- (f) alert payloads
def test_alert_payloads_validate_and_carry_every_contract_field(reference_run):
    alerts, _ = reference_run
    assert alerts
    kinds = set()
    for a in alerts:
        doc = orjson.loads(a.payload)
        assert doc == a.event.model_dump()
        event = AlertEvent.model_validate(doc)
        assert CONTRACT_FIELDS <= set(doc), CONTRACT_FIELDS - set(doc)
        assert set(doc["window"]) == {"start", "end", "count"}
        assert set(doc["reference"]) == {"kind", "count"}
        assert set(doc["source"]) == {"topic", "partition", "offset"}
        assert set(doc["monitor"]) == {"instance", "version"}
        assert {"summary", "description"} <= set(doc["annotations"])
        kinds.add(event.kind)
        # identity
        assert a.fingerprint == doc["fingerprint"] == fingerprint("m", doc["feature"])
        assert doc["schema_version"] == 1
        # provenance
        assert doc["source"] == {"topic": TOPIC, "partition": 0, "offset": a.position.offset}
        assert doc["event_time"] == format_event_time(a.event_time_ms) == format_event_time(T0 + 10 * a.position.offset)
        assert doc["model_version"] == "2026-11-01"
        assert doc["monitor"] == {"instance": "test-instance", "version": "9.9.9"}
        assert doc["reference"] == {"kind": "warmup", "count": 1000}
        assert 0 < doc["window"]["count"] <= 1000 and doc["window"]["start"] <= doc["window"]["end"] <= doc["event_time"]
        # owners and runbooks from the config, per model and per channel
        assert doc["labels"]["team"] == "risk-ml" and doc["labels"]["env"] == "test" and "partition" not in doc["labels"]
        assert doc["annotations"]["runbook_url"] == "https://runbooks.example/m"
        if doc["feature"] == "x0":
            assert doc["labels"]["tier"] == "1" and doc["annotations"]["dashboard"] == "https://dash.example/x0"
        else:
            assert "tier" not in doc["labels"]
        for key in ("statistic", "threshold", "p_value"):
            assert doc[key] is None or math.isfinite(doc[key])
        if doc["status"] == "firing":
            assert doc["ends_at"] is None and doc["statistic"] is not None
        else:
            assert doc["ends_at"] == doc["event_time"] >= doc["starts_at"]
    assert kinds == {"data_drift", "prediction_drift", "data_quality", "performance"}


def test_episode_identity_across_firing_escalation_and_resolve(reference_run):
    alerts, _ = reference_run
    open_: dict[str, dict[str, Any]] = {}
    resolved = 0
    for a in alerts:
        doc = a.event.model_dump()
        fp = doc["fingerprint"]
        if doc["status"] == "firing" and not doc["escalated"]:
            assert fp not in open_, f"second firing of {fp} without a resolve (dedup)"
            open_[fp] = doc
            assert doc["starts_at"] == doc["event_time"]
            continue
        first = open_[fp]
        assert doc["alert_id"] == first["alert_id"] and doc["starts_at"] == first["starts_at"]
        if doc["status"] == "resolved":
            resolved += 1
            del open_[fp]
    assert resolved >= 2  # at least x0's and the prediction's pages
    # a channel's page and a detector-level page of it have different identities
    assert fingerprint("m", "x0", "psi") != fingerprint("m", "x0")


def test_alert_kinds_by_channel(reference_run):
    # a page's kind is its lead detector's
    kinds = {(a.event.feature, a.event.detector): a.event.kind for a in reference_run[0]}
    for (feature, detector), kind in kinds.items():
        assert kind == kind_of(feature, is_quality(detector))
    assert kinds[("x1", "missing_rate")] == "data_quality"
    assert any(k[0] == "x0" and v == "data_drift" for k, v in kinds.items())
    assert any(k[0] == "__prediction__" and v == "prediction_drift" for k, v in kinds.items())
    assert any(k[0] == "__latency__" and v == "performance" for k, v in kinds.items())


def test_record_evaluations_lists_every_evaluation():
    monitor = PartitionMonitor(MonitorSpec(), partition=0)
    result: BatchResult = monitor.process(events_to_records(small_events(2000)), record_evaluations=True)
    assert result.evaluations
    ev = result.evaluations[0]
    assert ev.model == "m" and ev.event_time_ms >= T0
    assert {e.detector for e in result.evaluations if e.channel == "x"} >= {"psi", "ks", "adwin"}
    assert monitor.process(events_to_records(small_events(1))).evaluations is None


def test_latest_evaluations_are_each_detectors_last_of_every_evaluation():
    """What ``run`` hands the status page (``record_evaluations="latest"``): per (model, channel, detector) the batch's
    last evaluation of all of them, and nothing judged differently (same alerts)."""
    every, latest = PartitionMonitor(MonitorSpec(), partition=0), PartitionMonitor(MonitorSpec(), partition=0)
    events = generate_events(StreamSpec(model="m", n_events=6000, seed=3, drifts=(Drift(kind="mean_shift", feature="x0", start=3000, amount=2.0),)))
    records = events_to_records(events)
    seen = 0
    for a, b in ((0, 1700), (1700, 1701), (1701, 4000), (4000, 6000)):
        all_of = every.process(records[a:b], record_evaluations=True)
        last_of = latest.process(records[a:b], record_evaluations="latest")
        want = {(e.model, e.channel, e.detector): e for e in all_of.evaluations}
        assert sorted(last_of.evaluations) == sorted(want.values())
        assert len(last_of.evaluations) == len(want)
        assert [x.payload for x in last_of.alerts] == [x.payload for x in all_of.alerts]
        seen += len(all_of.evaluations)
    assert seen > 4 * len(want)  # (several evaluations per detector and batch: the latest are fewer)


@pytest.mark.parametrize("channel_type", ["numeric", "categorical"])
def test_an_all_missing_column_is_classified_as_the_channel_would(channel_type: str) -> None:
    """The shortcut for features none of a batch's records has must agree with ChannelMonitor.classify."""
    from stream_monitor.core.channel import ChannelMonitor
    from stream_monitor.core.model_monitor import classify_all_missing
    from stream_monitor.core.settings import DetectionSettings

    ch = ChannelMonitor("m", "x", channel_type, DetectionSettings(), 0, 0)  # type: ignore[arg-type]
    for n in (1, 7, 600):
        want, got = ch.classify([None] * n), classify_all_missing(channel_type, n)  # type: ignore[arg-type]
        assert want[0].dtype == got[0].dtype and want[0].tolist() == got[0].tolist()
        assert type(want[1]) is type(got[1]) and np.array_equal(np.asarray(want[1], dtype=object), np.asarray(got[1], dtype=object)) or (
            channel_type == "numeric" and np.isnan(want[1]).all() and np.isnan(got[1]).all() and want[1].dtype == got[1].dtype
        )
        assert want[2] == got[2] == []
