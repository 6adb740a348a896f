"""decode_inference / decode_label: never raise; record-level problems are dead letters, value-level ones are listed."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_monitor.core.events import (
    DeadLetter,
    DeadLetterReason,
    DecodedEvent,
    InferenceEvent,
    LabelEvent,
    SourcePosition,
    decode_inference,
    decode_label,
    format_event_time,
    parse_event_time,
)

R = DeadLetterReason
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
POS = SourcePosition("inference-events", 3, 1234, timestamp_ms=T0 + 5)


def enc(obj) -> bytes:
    return json.dumps(obj).encode()


def ok(raw: bytes, record_ts: int | None = None, **kw) -> DecodedEvent:
    out = decode_inference(raw, record_ts, **kw)
    assert isinstance(out, DecodedEvent), out
    return out


def dead(raw: bytes, record_ts: int | None = 0, **kw) -> DeadLetter:
    out = decode_inference(raw, record_ts, **kw)
    assert isinstance(out, DeadLetter), out
    assert out.raw == raw and out.processed is False
    return out


# ----------------------------------------------------------------------------------- event time
@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2026-01-01T00:00:00.123Z", T0 + 123),
        ("2026-01-01T00:00:00.123z", T0 + 123),
        ("2026-01-01T01:00:00+01:00", T0),
        ("2026-01-01T00:00:00", T0),  # naive ISO is UTC
        ("2026-01-01 00:00:00.5+00:00", T0 + 500),
        (T0 + 7, T0 + 7),  # epoch milliseconds
        (float(T0) + 0.9, T0),  # fractional ms truncate
        (str(T0), T0),  # digits in a string are epoch ms
        (0, 0),
    ],
)
def test_event_time_iso_and_epoch_ms(ts, expected):
    d = ok(enc({"model": "m", "ts": ts}), record_ts=999)
    assert d.event_time_ms == expected and d.event.ts == expected


def test_missing_ts_falls_back_to_the_record_timestamp():
    d = ok(enc({"model": "m", "features": {"x": 1.0}}), record_ts=T0 + 42)
    assert d.event.ts is None and d.event_time_ms == T0 + 42
    # an explicit null ts is the same as no ts
    assert ok(enc({"model": "m", "ts": None}), record_ts=T0).event_time_ms == T0


def test_no_timestamp_at_all_is_a_dead_letter():
    out = dead(enc({"model": "m", "features": {"x": 1.0}}), record_ts=None, position=POS)
    assert out.reason == R.INVALID_TIMESTAMP and out.position == POS
    # a negative record timestamp (Kafka's "none", -1) is no timestamp either
    assert dead(enc({"model": "m"}), record_ts=-1).reason == R.INVALID_TIMESTAMP


@pytest.mark.parametrize("ts", ["yesterday", "", True, -5, 1e20, [1], {"t": 1}, "2026-13-01T00:00:00Z"])
def test_bad_ts_is_invalid_timestamp_even_with_a_record_timestamp(ts):
    out = dead(enc({"model": "m", "ts": ts}), record_ts=T0)
    assert out.reason == R.INVALID_TIMESTAMP
    assert out.detail.startswith("ts:")


def test_format_and_parse_event_time_round_trip():
    for ms in (0, T0, T0 + 1, T0 + 999, 32503680000000 - 1):
        assert parse_event_time(format_event_time(ms)) == ms
    assert format_event_time(T0 + 7) == "2026-01-01T00:00:00.007Z"


# --------------------------------------------------------------------------- record-level problems
def test_invalid_json():
    out = dead(b'{"model": "m", "ts": ', position=POS)
    assert out.reason == R.INVALID_JSON and out.position == POS


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"42", b"null", b"true"])
def test_not_an_object(raw):
    assert dead(raw).reason == R.NOT_AN_OBJECT


def test_non_utf8():
    out = dead(b'{"model": "m\xff\xfe", "ts": 1}')
    assert out.reason == R.UNDECODABLE and "UTF-8" in out.detail


def test_oversize_record_is_rejected_before_parsing():
    raw = enc({"model": "m", "ts": 1, "features": {"x": "a" * 2000}})
    out = dead(raw, max_bytes=1024)
    assert out.reason == R.OVERSIZE and str(len(raw)) in out.detail
    assert isinstance(decode_inference(raw, 0, max_bytes=len(raw)), DecodedEvent)


def test_deep_nesting_is_invalid_json_not_a_crash():
    assert dead(b"[" * 100_000 + b"]" * 100_000).reason == R.INVALID_JSON


@pytest.mark.parametrize(
    ("obj", "where"),
    [
        ({"features": {}}, "model"),
        ({"model": ""}, "model"),
        ({"model": 5}, "model"),
        ({"model": "m", "features": {"x": [1, 2]}}, "features.x"),
        ({"model": "m", "features": [1, 2]}, "features"),
        ({"model": "m", "prediction": [0.1, 0.9]}, "prediction"),
        ({"model": "m", "latency_ms": "fast"}, "latency_ms"),
    ],
)
def test_schema_violations_name_the_field(obj, where):
    out = dead(enc({"ts": T0, **obj}))
    assert out.reason == R.SCHEMA_VIOLATION
    assert out.detail.startswith(where), out.detail


def test_dead_letter_json_carries_original_bytes_and_position():
    raw = b'{"model": \xff}'
    out = dead(raw, position=POS)
    doc = orjson.loads(out.to_json())
    assert doc["reason"] == "undecodable" and doc["processed"] is False
    assert doc["source"] == {"topic": "inference-events", "partition": 3, "offset": 1234, "timestamp_ms": T0 + 5}
    import base64

    assert base64.b64decode(doc["original_base64"]) == raw


# ---------------------------------------------------------------------------- value-level problems
@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b'{"model": "m", "ts": 1, "features": {"x": NaN, "y": 2}}', "features.x: nan"),
        (b'{"model": "m", "ts": 1, "features": {"x": Infinity}}', "features.x: inf"),
        (b'{"model": "m", "ts": 1, "features": {"x": -Infinity}}', "features.x: -inf"),
        (b'{"model": "m", "ts": 1, "features": {"x": 1e400}}', "features.x: inf"),
        (b'{"model": "m", "ts": 1, "prediction": NaN}', "prediction: nan"),
        (b'{"model": "m", "ts": 1, "prediction": {"p": Infinity, "y": 1}}', "prediction.p: inf"),
        (b'{"model": "m", "ts": 1, "latency_ms": NaN}', "latency_ms: nan"),
    ],
)
def test_non_finite_values_keep_the_event_and_list_a_problem(raw, detail):
    d = ok(raw)
    assert d.problems == [(R.NON_FINITE_VALUE, detail)]


def test_several_non_finite_values_are_all_listed():
    d = ok(b'{"model": "m", "ts": 1, "features": {"a": NaN, "b": 1, "c": Infinity}, "prediction": NaN}')
    assert [p[1] for p in d.problems] == ["features.a: nan", "features.c: inf", "prediction: nan"]
    assert d.event.features["b"] == 1


# --------------------------------------------------------------------------------------- payloads
def test_feature_value_types_are_preserved():
    d = ok(enc({"model": "m", "ts": 1, "features": {"i": 3, "f": 1.5, "s": "3", "b": True, "n": None}}))
    f = d.event.features
    assert [type(f[k]) for k in ("i", "f", "s", "b")] == [int, float, str, bool] and f["n"] is None


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        (0.87, 0.87),
        (1, 1),
        ("fraud", "fraud"),
        (True, True),
        ({"y_pred_proba": 0.05, "y_pred": 0}, {"y_pred_proba": 0.05, "y_pred": 0}),
        ({"cls": "a", "score": None}, {"cls": "a", "score": None}),
        (None, None),
    ],
)
def test_prediction_as_number_class_or_object(prediction, expected):
    d = ok(enc({"model": "m", "ts": 1, "prediction": prediction}))
    assert d.event.prediction == expected and type(d.event.prediction) is type(expected)


def test_full_contract_event():
    event = {
        "event_id": "9f1c",
        "model": "fraud-v3",
        "model_version": "2026-11-01",
        "ts": "2026-11-25T18:00:00.123Z",
        "features": {"amount": 12.5, "country": "DE", "age": None},
        "prediction": 0.87,
        "label": 1,
        "latency_ms": 12.3,
        "extra_field": {"kept": True},
    }
    d = ok(enc(event))
    e = d.event
    assert (e.event_id, e.model, e.model_version, e.label, e.latency_ms) == ("9f1c", "fraud-v3", "2026-11-01", 1, 12.3)
    assert d.event_time_ms == parse_event_time("2026-11-25T18:00:00.123Z") and d.problems == []
    assert e.model_extra == {"extra_field": {"kept": True}}  # unknown fields are allowed
    # numeric ids become text
    assert ok(enc({"model": "m", "ts": 1, "event_id": 17, "model_version": 3})).event.event_id == "17"


def test_decode_label():
    # no ts: left empty; the join uses the prediction's event time (PartitionMonitor.process_labels)
    lab = decode_label(enc({"event_id": "e1", "model": "m", "label": 1}), T0)
    assert isinstance(lab, LabelEvent) and lab.ts is None and lab.label == 1
    lab = decode_label(enc({"event_id": "e1", "model": "m", "label": "fraud", "ts": "2026-01-01T00:00:00Z"}), None)
    assert lab.ts == T0 and lab.label == "fraud"
    bad = decode_label(enc({"model": "m", "label": 1}), T0)
    assert isinstance(bad, DeadLetter) and bad.reason == R.SCHEMA_VIOLATION and bad.detail.startswith("event_id")
    assert decode_label(b"\xff", T0).reason == R.UNDECODABLE
    assert decode_label(b"[]", T0).reason == R.NOT_AN_OBJECT


# ---------------------------------------------------------------------------------------- property
json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats() | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=20)


@settings(max_examples=250, deadline=None)
@given(st.binary(max_size=300), st.none() | st.integers(-10, 2**45))
def test_decode_never_raises_on_arbitrary_bytes(raw, record_ts):
    out = decode_inference(raw, record_ts, max_bytes=200)
    assert isinstance(out, DecodedEvent | DeadLetter)
    assert isinstance(decode_label(raw, record_ts), LabelEvent | DeadLetter)


@settings(max_examples=250, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "model": st.text(max_size=5) | json_values,
            "ts": json_values | st.integers(0, 2**45),
            "features": st.dictionaries(st.text(max_size=5), json_values, max_size=5) | json_values,
            "prediction": json_values,
            "label": json_values,
            "latency_ms": json_values,
            "event_id": json_values,
        },
    ),
    st.none() | st.integers(-10, 2**45),
)
def test_decode_never_raises_on_arbitrary_json_objects(obj, record_ts):
    raw = json.dumps(obj).encode()  # allow_nan: NaN/Infinity literals too
    out = decode_inference(raw, record_ts)
    assert isinstance(out, DecodedEvent | DeadLetter)
    if isinstance(out, DecodedEvent):
        assert isinstance(out.event, InferenceEvent) and isinstance(out.event_time_ms, int)
        assert all(reason == R.NON_FINITE_VALUE for reason, _ in out.problems)


# ---------------------------------------------------------------------------- dead letters fit
@pytest.mark.parametrize("size", [450_000, 2_000_000])
@pytest.mark.parametrize("utf8", [True, False])
def test_a_big_bad_record_makes_a_small_dead_letter(size: int, utf8: bool) -> None:
    import base64
    import hashlib

    body = b'{"model": "m", "features": {"x": "' + (b"\xe9" if not utf8 else b"a") * size + b'"'  # not JSON (unclosed)
    out = decode_inference(body, 0, POS, max_bytes=1_048_576)
    assert isinstance(out, DeadLetter)
    for limit in (65_536, 10_000):
        blob = out.to_json(limit)
        assert len(blob) <= limit + 4096, len(blob)
        doc = orjson.loads(blob)
        assert doc["original_truncated"] is True and doc["original_size"] == len(body)
        assert doc["original_sha256"] == hashlib.sha256(body).hexdigest()
        kept = base64.b64decode(doc["original_base64"]) if doc["original_base64"] else doc["original"].encode()
        assert body.startswith(kept) and kept


def test_a_dead_letter_keeps_a_small_original_once() -> None:
    raw = b'{"model": "m", "ts": "soon", "features": {"x": 1}}'
    doc = orjson.loads(dead(raw, position=POS).to_json())
    assert doc["original"] == raw.decode() and doc["original_base64"] is None and doc["original_truncated"] is False
    assert doc["original_size"] == len(raw) and "original_sha256" not in doc


def test_a_dead_letter_of_escaped_text_stays_within_the_limit() -> None:
    """JSON escaping can grow text six-fold: the limit applies to the dead letter, not to the raw size."""
    raw = b'{"model": "m", "features": {"x": "' + b"\x01" * 60_000 + b'"}}'  # a control character: invalid JSON
    out = dead(raw)
    assert len(out.to_json(65_536)) <= 65_536 + 4096
    assert orjson.loads(out.to_json(65_536))["original_truncated"] is True
