"""No input record can stop the monitor: hostile and careless records are dead letters, never exceptions.

The regression cases below each stopped the processing step once; the property tests then throw
arbitrary JSON (nested values, huge integers, floats at the edges, unicode including lone
surrogates, timestamps at every edge, wrong types everywhere) at ``process`` and
``process_labels`` and check that nothing raises, that every record is accounted for (processed
or a counted dead letter), and that the outcome does not depend on the batch boundaries.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.core import batch as batch_module
from stream_monitor.core.events import DeadLetterReason, SourcePosition, decode_inference, decode_label
from stream_monitor.core.monitor import BatchResult, InputRecord, PartitionMonitor
from stream_monitor.core.model_monitor import ModelMonitor
from stream_monitor.core.spec import MonitorSpec

R = DeadLetterReason
T0 = 1_767_225_600_000


def records(raws: list[bytes], record_ts: int | None = T0, topic: str = "in") -> list[InputRecord]:
    return [InputRecord(raw, SourcePosition(topic, 0, i, record_ts)) for i, raw in enumerate(raws)]


def accounted(result: BatchResult) -> None:
    """Every record is processed, a dead letter or (a label) waiting for its prediction; every dead letter is counted."""
    unprocessed = sum(1 for d in result.dead_letters if not d.processed)
    done = result.processed + unprocessed + result.waiting
    assert done == result.records + result.resumed, (result.processed, unprocessed, result.waiting, result.records, result.resumed)
    assert sum(result.invalid_by_reason.values()) == len(result.dead_letters)


def outcome(results: list[BatchResult]) -> tuple[Any, ...]:
    dead = [(str(d.reason), d.detail, d.position.offset, d.processed) for r in results for d in r.dead_letters]
    return (
        sorted(dead, key=lambda d: d[2]),
        [a.payload for r in results for a in r.alerts],
        sum(r.channel_values for r in results),
        sum(r.processed for r in results),
    )


# ------------------------------------------------------------------------------- the regressions
SURROGATES = [
    b'{"model": "m\\ud800", "features": {"x": 1.0}}',
    b'{"model": "m", "features": {"x\\ud800": 1.0}}',
    b'{"model": "m", "features": {"c": "a\\udc00"}}',
    b'{"model": "m", "prediction": {"\\udfff": 1.0}}',
    b'{"model": "m", "event_id": "\\ud800", "prediction": 1.0}',
    b'{"model": "m", "features": {"x": 1.0}, "extra": ["\\ud800"]}',
    b'{"model": "m", "features": {"x": NaN, "c\\ud800": "v"}}',
]


@pytest.mark.parametrize("raw", SURROGATES)
def test_a_lone_surrogate_is_invalid_json_not_a_crash(raw: bytes) -> None:
    out = decode_inference(raw, T0)
    assert str(out.reason) == R.INVALID_JSON and "surrogate" in out.detail, out  # type: ignore[union-attr]
    result = PartitionMonitor(MonitorSpec(), 0).process(records([raw]))
    assert [str(d.reason) for d in result.dead_letters] == [R.INVALID_JSON]
    accounted(result)


@pytest.mark.parametrize(
    "ts",
    ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "3000-01-01T00:00:00.001Z", "1969-12-31T23:59:59Z"],
)
def test_an_iso_time_outside_the_range_is_an_invalid_timestamp(ts: str) -> None:
    raw = orjson.dumps({"model": "m", "ts": ts, "features": {"x": 1.0}})
    out = decode_inference(raw, T0)
    assert str(out.reason) == R.INVALID_TIMESTAMP and "out of range" in out.detail, out  # type: ignore[union-attr]


@pytest.mark.parametrize("record_ts", [2**62, 32503680000001, -(2**62)])
def test_a_record_timestamp_outside_the_range_is_not_used(record_ts: int) -> None:
    raw = b'{"model": "m", "features": {"x": 1.0}}'
    out = decode_inference(raw, record_ts)
    assert str(out.reason) == R.INVALID_TIMESTAMP, out  # type: ignore[union-attr]
    # a label event takes its prediction's time, never an unusable record timestamp
    assert decode_label(b'{"model": "m", "event_id": "e", "label": 1}', record_ts).label == 1  # type: ignore[union-attr]


def test_an_alert_on_a_record_at_the_edge_of_time_is_published() -> None:
    """Alerts format every time they carry: the latest accepted event time must be printable."""
    from stream_monitor.core.events import MAX_EPOCH_MS, format_event_time

    assert format_event_time(MAX_EPOCH_MS).startswith("3000-01-01T00:00:00.000")
    spec = MonitorSpec.model_validate({"defaults": {"reference": {"size": 50}, "window": {"size": 50, "step": 50}}})
    raws = [orjson.dumps({"model": "m", "ts": MAX_EPOCH_MS - 500 + i, "features": {"x": 0.0 if i < 100 else None}}) for i in range(500)]
    result = PartitionMonitor(spec, 0).process(records(raws))
    assert any(a.event.feature == "x" and a.event.detector == "missing_rate" for a in result.alerts)
    accounted(result)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"])
def test_utf16_and_utf32_are_undecodable(codec: str) -> None:
    raw = '{"model": "m", "features": {"x": 1.0}}'.encode(codec)
    out = decode_inference(raw, T0)
    assert str(out.reason) == R.UNDECODABLE, out  # type: ignore[union-attr]
    assert str(decode_label('{"model": "m", "event_id": "e", "label": 1}'.encode(codec), T0).reason) == R.UNDECODABLE  # type: ignore[union-attr]


def test_utf8_encoded_surrogates_are_undecodable() -> None:
    out = decode_inference(b'{"model": "m\xed\xa0\x80", "features": {"x": NaN}}', T0)
    assert str(out.reason) == R.UNDECODABLE, out  # type: ignore[union-attr]


# ------------------------------------------------------------------------ failures stay per record
GOOD = [orjson.dumps({"model": "m", "ts": T0 + i, "features": {"x": float(i % 5)}, "prediction": 0.5, "label": i % 2}) for i in range(30)]


def _boom_on(label_value: Any):
    original = ModelMonitor.performance

    def performance(self: ModelMonitor, prediction: Any, label: Any) -> list[tuple[str, float]]:
        if label == label_value:
            raise RuntimeError("boom")
        return original(self, prediction, label)

    return performance


def test_an_exception_while_processing_a_record_makes_it_a_dead_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ModelMonitor, "performance", _boom_on("poison"))
    raws = list(GOOD)
    raws[7] = orjson.dumps({"model": "m", "ts": T0 + 7, "features": {"x": 1.0}, "prediction": 0.5, "label": "poison"})
    results = {}
    for size in (1, 4, 30):
        monitor = PartitionMonitor(MonitorSpec(), 0)
        recs = records(raws)
        results[size] = [monitor.process(recs[i : i + size]) for i in range(0, len(recs), size)]
        for r in results[size]:
            accounted(r)
    dead = [d for r in results[30] for d in r.dead_letters]
    assert [(str(d.reason), d.position.offset, d.processed) for d in dead] == [(R.PROCESSING_ERROR, 7, False)]
    assert "RuntimeError: boom" in dead[0].detail
    assert outcome(results[1]) == outcome(results[4]) == outcome(results[30])


def test_an_exception_in_a_channel_resets_that_channel_and_the_batch_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from stream_monitor.core.channel import ChannelMonitor

    original = ChannelMonitor.classify

    def classify(self: ChannelMonitor, values: Any) -> Any:
        if self.name == "x" and 3.0 in values:
            raise ZeroDivisionError("detector bug")
        return original(self, values)

    monkeypatch.setattr(ChannelMonitor, "classify", classify)
    monitor = PartitionMonitor(MonitorSpec(), 0)
    result = monitor.process(records(GOOD))
    accounted(result)
    assert result.processed == len(GOOD)
    bad = {d.position.offset for d in result.dead_letters}
    assert bad == {i for i in range(len(GOOD))}  # the channel's batch was lost: every record of it says so
    assert {str(d.reason) for d in result.dead_letters} == {R.PROCESSING_ERROR}
    assert all(d.processed for d in result.dead_letters)
    assert monitor.models["m"].channels["__label__"].observations == len(GOOD)  # the other channels went on
    assert monitor.models["m"].channels["x"].observations == 0  # the failing channel starts again


# ---------------------------------------------------------------------------- property tests
_SURROGATE = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff", "a\ud800b"])
_text = st.one_of(st.text(max_size=6), _SURROGATE, st.sampled_from(["", "x", "__prediction__", "__label__", "y_pred", "é" * 300]))
_ts = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([0, -1, 32503680000000, 32503680000001, 2**53, 2**63 - 1, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z",
            "2026-01-01T00:00:00Z", "2026-01-01T00:00:00+23:59", "1970-01-01T00:00:00Z", "2999-12-31T23:59:59Z",
            "17", " 17 ", "-5", "1e3", "", "now", "2026-13-01",
        ]
    ),
    _text,
)
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**308 * 10, 2**53 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 5e-324, -0.0, 1.7976931348623157e308]),
    _text,
    _ts,
)
_value = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)), max_leaves=8)
_model = st.one_of(st.sampled_from(["m", "n", "x" * 256, "x" * 257, ""]), _text, _value)
_event = st.fixed_dictionaries(
    {"model": _model},
    optional={
        "event_id": st.one_of(st.sampled_from(["e1", "e2", "e3"]), _value),
        "model_version": _value,
        "ts": _ts,
        "features": st.one_of(st.dictionaries(_text, _scalar, max_size=5), _value),
        "prediction": st.one_of(_scalar, st.dictionaries(_text, _scalar, max_size=3), _value),
        "label": st.one_of(_scalar, _value),
        "latency_ms": st.one_of(_scalar, _value),
        "extra": _value,
    },
)
_raw_fragments = st.sampled_from(
    [
        b"", b"null", b"{", b"[]", b'"x"', b"\xff\xfe{\x00}\x00", b'{"model": "m"}\x00', b"\xef\xbb\xbf{\"model\": \"m\"}",
        b'{"model": "m", "features": {"x": ' + b"9" * 5000 + b"}}", b"[" * 5000, b'{"model": "m", "ts": 1e999}',
        b'{"model": "m", "features": {"x": -Infinity}, "label": NaN}', b'{"model": "m", "model": "n"}',
    ]
)


def _encode(obj: Any) -> bytes:
    return json.dumps(obj, allow_nan=True, ensure_ascii=True).encode()  # ensure_ascii: surrogates become \\u escapes


_raws = st.lists(st.one_of(_event.map(_encode), _value.map(_encode), _raw_fragments), min_size=1, max_size=8)
_record_ts = st.sampled_from([None, -1, 0, T0, 32503680000000, 32503680000001, 2**63 - 1])


def _run(raws: list[bytes], record_ts: int | None, size: int, labels: list[bytes]) -> list[BatchResult]:
    monitor = PartitionMonitor(MonitorSpec(), 0)
    recs = records(raws, record_ts)
    out = [monitor.process(recs[i : i + size]) for i in range(0, len(recs), size)]
    lrecs = records(labels, record_ts, topic="labels")
    out += [monitor.process_labels(lrecs[i : i + size]) for i in range(0, len(lrecs), size)]
    monitor.state_items(only_dirty=False)  # whatever was taken in can be checkpointed
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(raws=_raws, record_ts=_record_ts, labels=st.lists(st.one_of(_event.map(_encode), _raw_fragments), max_size=4))
def test_arbitrary_records_never_raise_and_are_all_accounted_for(raws: list[bytes], record_ts: int | None, labels: list[bytes]) -> None:
    whole = _run(raws, record_ts, len(raws) + len(labels), labels)
    for r in whole:
        accounted(r)
    one_by_one = _run(raws, record_ts, 1, labels)
    assert outcome(whole) == outcome(one_by_one)


# --------------------------------------------------------------------- bounded, with a signal
def _spec(**limits: Any) -> MonitorSpec:
    return MonitorSpec.model_validate({"limits": {"quiet_seconds": 5, **limits}})


def _limit_alerts(results: list[BatchResult]) -> list[Any]:
    return [a.event for r in results for a in r.alerts if a.event.feature == "__limits__"]


def _churn(n: int, new_until: int) -> list[bytes]:
    """Records 10 ms apart with x0..x2 and, until ``new_until``, one never-seen feature name each."""
    out = []
    for i in range(n):
        feats: dict[str, Any] = {"x0": 1.0, "x1": 2.0, "x2": 3.0}
        if i < new_until:
            feats[f"new_{i}"] = float(i)
        out.append(orjson.dumps({"model": "credit-v2", "ts": T0 + 10 * i, "features": feats}))
    return out


@pytest.mark.parametrize("size", [1, 37, 2000])
def test_new_feature_names_beyond_the_cap_are_an_alert_a_count_and_dead_letters(size: int) -> None:
    raws = _churn(2000, new_until=1000)
    monitor = PartitionMonitor(_spec(channels_per_model=10), 0)
    recs = records(raws)
    results = [monitor.process(recs[i : i + size]) for i in range(0, len(recs), size)]
    for r in results:
        accounted(r)
    assert len(monitor.models["credit-v2"].channels) == 10  # x0..x2 and the first seven new names
    refused = 1000 - 7
    assert sum(r.limits_exceeded["channels_per_model"] for r in results) == refused
    dead = [d for r in results for d in r.dead_letters]
    assert [d.position.offset for d in dead] == list(range(7, 1000))
    assert {(str(d.reason), d.processed) for d in dead} == {(R.LIMIT_EXCEEDED, True)}
    assert "features.new_7: model 'credit-v2' reached its limit of 10 channels per model" in dead[0].detail
    alerts = _limit_alerts(results)
    assert [(a.status, a.kind, a.model, a.detector) for a in alerts] == [
        ("firing", "data_quality", "credit-v2", "channels_per_model"),
        ("resolved", "data_quality", "credit-v2", "channels_per_model"),
    ]
    firing, resolved = alerts
    assert firing.annotations["summary"] == "credit-v2: new feature names over the limit of 10 channels per model; new names ignored"
    assert firing.source.offset == 7 and resolved.statistic == refused
    assert resolved.annotations["summary"].startswith(f"resolved: credit-v2: {refused:,} new feature names ignored in 10 s")
    assert resolved.fingerprint == firing.fingerprint and resolved.alert_id == firing.alert_id
    # resolved once quiet_seconds of event time passed without a new name (the first quiet record is 1000)
    assert resolved.source.offset == 1000 + 500


def test_the_same_limit_alerts_whatever_the_batch_boundaries() -> None:
    raws = _churn(1500, new_until=600)
    outs = []
    for size in (1, 64, 1500):
        monitor = PartitionMonitor(_spec(channels_per_model=8), 0)
        recs = records(raws)
        outs.append(outcome([monitor.process(recs[i : i + size]) for i in range(0, len(recs), size)]))
    assert outs[0] == outs[1] == outs[2]


def test_configured_channels_are_never_refused() -> None:
    spec = MonitorSpec.model_validate(
        {"limits": {"channels_per_model": 2}, "models": {"m": {"channels": {"a": {}, "b": {}, "c": {}}}}}
    )
    raw = orjson.dumps({"model": "m", "ts": T0, "features": {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}})
    monitor = PartitionMonitor(spec, 0)
    result = monitor.process(records([raw]))
    assert set(monitor.models["m"].channels) == {"a", "b", "c"}
    assert [(str(d.reason), d.detail.split(":")[0]) for d in result.dead_letters] == [(R.LIMIT_EXCEEDED, "features.d")]


def test_models_beyond_the_cap_are_dead_letters_and_one_partition_alert() -> None:
    raws = [orjson.dumps({"model": f"m{i % 5}", "ts": T0 + i, "features": {"x": 1.0}}) for i in range(50)]
    monitor = PartitionMonitor(_spec(models=3), 0)
    result = monitor.process(records(raws))
    accounted(result)
    assert sorted(monitor.models) == ["m0", "m1", "m2"]
    dead = result.dead_letters
    assert {d.position.offset % 5 for d in dead} == {3, 4} and len(dead) == 20
    assert {(str(d.reason), d.processed) for d in dead} == {(R.LIMIT_EXCEEDED, False)}
    assert result.limits_exceeded["models"] == 20 and result.processed == 30
    [alert] = _limit_alerts([result])
    assert (alert.model, alert.detector, alert.status) == ("*", "models", "firing")
    assert alert.annotations["summary"] == "partition 0: new model names over the limit of 3 models per partition; their records are dead letters"


def test_prediction_outputs_beyond_the_cap_are_refused() -> None:
    raws = [orjson.dumps({"model": "m", "ts": T0 + i, "prediction": {f"p{j}": 0.5 for j in range(i + 1)}}) for i in range(6)]
    monitor = PartitionMonitor(_spec(prediction_outputs=3), 0)
    result = monitor.process(records(raws))
    assert sorted(monitor.models["m"].channels) == ["__prediction__.p0", "__prediction__.p1", "__prediction__.p2"]
    assert result.limits_exceeded["prediction_outputs"] == 0 + 1 + 2 + 3
    assert [a.detector for a in _limit_alerts([result])] == ["prediction_outputs"]


def test_the_label_join_is_bounded_in_bytes() -> None:
    big = {f"class_{j}": "x" * 200 for j in range(20)}  # ~6 KB per pending prediction
    raws = [orjson.dumps({"model": "m", "event_id": f"e{i}", "ts": T0 + i, "prediction": big}) for i in range(400)]
    monitor = PartitionMonitor(_spec(label_join_bytes=200_000, prediction_outputs=64), 0)
    result = monitor.process(records(raws))
    held = sum(batch_module.entry_bytes(k, v) for k, v in monitor.pending_labels.items())
    assert held <= 200_000 and len(monitor.pending_labels) >= 20
    assert result.limits_exceeded["label_join_bytes"] == 400 - len(monitor.pending_labels)
    assert [a.detector for a in _limit_alerts([result])] == ["label_join_bytes"]
    # the newest predictions are the ones kept
    assert list(monitor.pending_labels)[-1] == "e399"


def test_predictions_dropped_by_the_entry_cap_are_signalled() -> None:
    raws = [orjson.dumps({"model": "m", "event_id": f"e{i}", "ts": T0 + i, "prediction": 0.5}) for i in range(50)]
    monitor = PartitionMonitor(MonitorSpec.model_validate({"label_join_max_pending": 20}), 0)
    result = monitor.process(records(raws))
    assert len(monitor.pending_labels) == 20 and result.limits_exceeded["label_join_entries"] == 30
    [alert] = _limit_alerts([result])
    assert alert.detector == "label_join_entries" and "predictions awaiting labels" in alert.annotations["summary"]
