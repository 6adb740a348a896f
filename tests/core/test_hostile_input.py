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

from stream_monitor.core import monitor as monitor_module
from stream_monitor.core.events import DeadLetterReason, SourcePosition, decode_inference, decode_label
from stream_monitor.core.monitor import BatchResult, InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec

R = DeadLetterReason
T0 = 1_767_225_600_000


def records(raws: list[bytes], record_ts: int | None = T0, topic: str = "in") -> list[InputRecord]:
    return [InputRecord(raw, SourcePosition(topic, 0, i, record_ts)) for i, raw in enumerate(raws)]


def accounted(result: BatchResult) -> None:
    """Every record is processed or a dead letter, and every dead letter is counted."""
    unprocessed = sum(1 for d in result.dead_letters if not d.processed)
    assert result.processed + unprocessed == result.records, (result.processed, unprocessed, result.records)
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
    original = monitor_module.error_value

    def error_value(prediction: Any, label: Any) -> float | None:
        if label == label_value:
            raise RuntimeError("boom")
        return original(prediction, label)

    return error_value


def test_an_exception_while_processing_a_record_makes_it_a_dead_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitor_module, "error_value", _boom_on("poison"))
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
