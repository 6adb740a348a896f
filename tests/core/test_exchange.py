"""Rows crossing from reading to judging (core/exchange.py): round trips of every shape, key order, bad input."""

from __future__ import annotations

import math

import msgpack
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.core import events as ev
from stream_monitor.core.events import DeadLetterReason, SourcePosition
from stream_monitor.core.exchange import (
    INFERENCE,
    LABEL,
    PROGRESS_FORMAT,
    ROWS_FORMAT,
    Progress,
    Row,
    RowsFormatError,
    decode_record,
    decode_rows,
    encode_progress,
    encode_rows,
)
from stream_monitor.core.intake import InputRecord, read_inference, read_labels
from stream_monitor.core.spec import MonitorSpec

_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _same_value(a: object, b: object) -> bool:
    """Equality that takes NaN as equal to NaN and tells bool from int and int from float."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return (math.isnan(a) and math.isnan(b)) or a == b  # type: ignore[arg-type]
    if type(a) is dict:
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)  # type: ignore[union-attr,index]
    if type(a) is list:
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))  # type: ignore[arg-type]
    return a == b


def _assert_same_rows(got: list[Row], want: list[Row]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.kind == w.kind
        assert g.key == w.key
        assert (g.position.topic, g.position.partition, g.position.offset, g.position.timestamp_ms) == (
            w.position.topic, w.position.partition, w.position.offset, w.position.timestamp_ms,
        )  # fmt: skip
        assert g.problems == w.problems
        for name in ("event_id", "model", "label", "ts") if g.kind == LABEL else (
            "event_id", "model", "model_version", "features", "prediction", "label", "latency_ms",
        ):  # fmt: skip
            assert _same_value(getattr(g.event, name), getattr(w.event, name)), name
        if g.kind == INFERENCE:  # an inference row crosses with its resolved event time as ``ts``
            assert g.event.ts == w.key[0]


def _records(raws: list[bytes], topic: str = "in", partition: int = 0) -> list[InputRecord]:
    return [InputRecord(raw, SourcePosition(topic, partition, i, 1_700_000_000_000 + i)) for i, raw in enumerate(raws)]


# ------------------------------------------------------------------ every shape
_AWKWARD = [
    # NaN, infinities and a float beyond range: values with problems (kept, flagged)
    b'{"model": "m", "ts": 5, "event_id": "a", "features": {"x": NaN, "y": Infinity, "z": -1e400, "ok": 1.5}}',
    # bool, str, None, an integer beyond 64 bits, a negative one beyond 64 bits
    b'{"model": "m", "ts": 6, "features": {"b": true, "s": "h\\u00e9", "n": null, "big": 123456789012345678901234567890, "neg": -98765432109876543210987}}',
    # a prediction dict, a label, latency, version
    b'{"model": "m", "ts": 7, "event_id": "e7", "model_version": "v2", "features": {"x": 2}, "prediction": {"p": 0.25, "cls": "a"}, "label": 1, "latency_ms": 3.5}',
    # no features, a bare prediction
    b'{"model": "m", "ts": 8, "prediction": 0.5}',
    # a big integer as prediction, ISO time
    b'{"model": "m", "ts": "2026-01-01T00:00:00Z", "prediction": 340282366920938463463374607431768211457}',
]


def test_inference_rows_of_every_shape_round_trip() -> None:
    out = read_inference(MonitorSpec(), _records(_AWKWARD))
    assert not out.dead_letters
    rows = out.rows["m"]
    assert len(rows) == len(_AWKWARD)
    assert any(r.problems for r in rows)  # the non-finite values crossed as problems
    model, back = decode_rows(encode_rows("m", rows))
    assert model == "m"
    _assert_same_rows(back, rows)
    big = back[1].event.features
    assert back[4].event.prediction == rows[4].event.prediction
    assert type(big["b"]) is bool and big["n"] is None
    assert all(r.kind == INFERENCE for r in back)


def test_non_finite_problems_keep_their_reason() -> None:
    rows = read_inference(MonitorSpec(), _records(_AWKWARD[:1])).ordered
    _, back = decode_rows(encode_rows("m", rows))
    assert {reason for reason, _ in back[0].problems} == {DeadLetterReason.NON_FINITE_VALUE}
    assert back[0].problems == rows[0].problems


def test_label_rows_with_and_without_ts_round_trip() -> None:
    raws = [
        b'{"event_id": "a", "model": "m", "label": "fraud"}',
        b'{"event_id": "b", "model": "m", "label": 0, "ts": 1700000000500}',
        b'{"event_id": "c", "model": "m", "label": true, "ts": "2026-01-01T00:00:01Z"}',
        b'{"event_id": "d", "model": "m", "label": 12345678901234567890123456789}',
    ]
    out = read_labels(_records(raws, "labels", 3))
    assert not out.dead_letters
    rows = out.rows["m"]
    model, back = decode_rows(encode_rows("m", rows))
    assert model == "m"
    _assert_same_rows(back, rows)
    assert back[0].event.ts is None and back[0].key[0] == 1_700_000_000_000  # the record's time orders it
    assert back[1].key[0] == 1_700_000_000_500
    assert all(r.kind == LABEL for r in back)
    assert back[3].event.label == rows[3].event.label


def test_integers_beyond_64_bits_anywhere_round_trip() -> None:
    huge, tiny = 2**64 + 5, -(2**63) - 7
    event = ev.trusted_event("e", "m", "v", 9, {"x": huge, "y": 1.0}, {"p": tiny}, huge, None)
    row = Row(INFERENCE, (9, 2**64 - 1, 3), SourcePosition("t", 1, 2**40, None), event)
    _, (back,) = decode_rows(encode_rows("m", [row]))
    assert back.key == (9, 2**64 - 1, 3)
    assert back.event.features == {"x": huge, "y": 1.0} and back.event.prediction == {"p": tiny} and back.event.label == huge


def _oip_request(rid: str, rows: int) -> bytes:
    data = [[30.0 + i, 5000.0 + i, 0.3 + 0.01 * i] for i in range(rows)]
    return orjson.dumps({"id": rid, "model_name": "credit", "inputs": [{"name": "input-0", "shape": [rows, 3], "datatype": "FP64", "data": data}]})


def test_multi_event_oip_records_round_trip_with_their_index() -> None:
    spec = MonitorSpec.model_validate({"input_formats": {"oip-in": {"kind": "oip", "feature_names": ["a", "b", "c"]}}})
    recs = [InputRecord(_oip_request(f"q-{i}", 3), SourcePosition("oip-in", 0, i, 1_700_000_000_000 + i)) for i in range(2)]
    out = read_inference(spec, recs)
    rows = out.ordered
    assert not out.dead_letters and len(rows) == 6
    # events of one record share its time and tie and differ by index
    assert [r.key[2] for r in rows] == [0, 1, 2, 0, 1, 2]
    assert len({r.key[:2] for r in rows}) == 2
    (model,) = out.rows
    _, back = decode_rows(encode_rows(model, out.rows[model]))
    _assert_same_rows(back, rows)
    assert {r.event.model for r in back} == {model}


def test_key_order_is_preserved_and_independent_of_position() -> None:
    raws = [orjson.dumps({"model": "m", "ts": t, "features": {"x": float(i)}}) for i, t in enumerate([30, 10, 20, 10, 30])]
    rows_p0 = read_inference(MonitorSpec(), _records(raws, "in", 0)).ordered
    rows_p5 = read_inference(MonitorSpec(), [InputRecord(r, SourcePosition("other", 5, 100 + i, None)) for i, r in enumerate(raws)]).ordered
    assert [r.key for r in rows_p0] == [r.key for r in rows_p5]  # no partition, no offset in the key
    _, back = decode_rows(encode_rows("m", rows_p0))
    assert [r.key for r in back] == [r.key for r in rows_p0]
    assert sorted(r.key for r in back) == [r.key for r in sorted(rows_p0, key=lambda r: r.key)]


_feature_values = st.one_of(
    st.none(), st.booleans(), st.text(max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True, allow_infinity=True),
)  # fmt: skip


@_SETTINGS
@given(
    events=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=4_000_000_000_000),
            st.dictionaries(st.text(min_size=1, max_size=6), _feature_values, max_size=5),
            st.one_of(st.none(), st.floats(allow_nan=False), st.dictionaries(st.sampled_from(["p", "q"]), st.floats(allow_nan=False), max_size=2)),
        ),
        min_size=1, max_size=20,
    ),  # fmt: skip
)
def test_any_valid_rows_round_trip(events: list[tuple[int, dict, object]]) -> None:
    import json

    raws = [json.dumps({"model": "m", "ts": t, "features": f, "prediction": p}).encode() for t, f, p in events]
    out = read_inference(MonitorSpec(), _records(raws))
    rows = out.rows.get("m", [])
    _, back = decode_rows(encode_rows("m", rows))
    _assert_same_rows(back, rows)


# ------------------------------------------------------------------ bad input
def _valid_blob() -> bytes:
    return encode_rows("m", read_inference(MonitorSpec(), _records(_AWKWARD)).ordered)


@_SETTINGS
@given(blob=st.binary(max_size=300))
def test_arbitrary_bytes_raise_rows_format_error_only(blob: bytes) -> None:
    try:
        decode_rows(blob)
    except RowsFormatError:
        pass


@_SETTINGS
@given(data=st.data())
def test_truncated_or_flipped_records_raise_rows_format_error_only(data: st.DataObject) -> None:
    blob = _valid_blob()
    cut = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    with pytest.raises(RowsFormatError):
        decode_rows(blob[:cut])
    i = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    flipped = blob[:i] + bytes([blob[i] ^ data.draw(st.integers(min_value=1, max_value=255))]) + blob[i + 1 :]
    try:
        decode_rows(flipped)
    except RowsFormatError:
        pass


@_SETTINGS
@given(
    obj=st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1), st.floats(), st.text(max_size=5), st.binary(max_size=5)),
        lambda inner: st.one_of(st.lists(inner, max_size=12), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
        max_leaves=30,
    )
)
def test_well_formed_messagepack_of_any_shape_raises_rows_format_error_only(obj: object) -> None:
    for body in (obj, [ROWS_FORMAT, "m", obj], [ROWS_FORMAT, "m", [obj]], [ROWS_FORMAT, "m", [[0, "t", 0, 0, None, 1, 2, 0, None, obj]]]):
        try:
            decode_rows(msgpack.packb(body, use_bin_type=True))
        except RowsFormatError:
            pass


@pytest.mark.parametrize("version", [0, ROWS_FORMAT + 1, "1", None])
def test_other_format_versions_are_rejected(version: object) -> None:
    body = msgpack.unpackb(_valid_blob(), raw=False, ext_hook=lambda c, d: msgpack.ExtType(c, d), strict_map_key=False)
    body[0] = version
    with pytest.raises(RowsFormatError, match="format"):
        decode_rows(msgpack.packb(body, use_bin_type=True))


def test_unknown_extension_type_and_bad_big_integer_are_rejected() -> None:
    row = [0, "t", 0, 0, None, 1, 2, 0, None, None, {"x": msgpack.ExtType(7, b"1")}, None, None, None, []]
    with pytest.raises(RowsFormatError):
        decode_rows(msgpack.packb([ROWS_FORMAT, "m", [row]], use_bin_type=True))
    row[10] = {"x": msgpack.ExtType(1, b"12x")}
    with pytest.raises(RowsFormatError):
        decode_rows(msgpack.packb([ROWS_FORMAT, "m", [row]], use_bin_type=True))


def test_unknown_problem_reason_is_rejected() -> None:
    row = [0, "t", 0, 0, None, 1, 2, 0, None, None, {"x": 1.0}, None, None, None, [["no_such_reason", "x"]]]
    with pytest.raises(RowsFormatError):
        decode_rows(msgpack.packb([ROWS_FORMAT, "m", [row]], use_bin_type=True))


# ------------------------------------------------------------------ progress records
@_SETTINGS
@given(
    topic=st.text(max_size=20),
    partition=st.integers(min_value=0, max_value=2**31 - 1),
    t=st.integers(min_value=-(2**70), max_value=2**70),
)
def test_progress_records_round_trip_and_are_told_from_rows_records(topic: str, partition: int, t: int) -> None:
    got = decode_record(encode_progress(topic, partition, t))
    assert got == Progress((topic, partition), t)
    with pytest.raises(RowsFormatError):
        decode_rows(encode_progress(topic, partition, t))  # a progress record is never taken for rows


def test_decode_record_gives_rows_records_as_decode_rows_does() -> None:
    blob = _valid_blob()
    model, rows = decode_record(blob)  # type: ignore[misc]
    want_model, want = decode_rows(blob)
    assert model == want_model
    _assert_same_rows(rows, want)


def test_decode_record_gives_every_row_its_carrier_and_reads_inference_rows_as_the_slow_path_does() -> None:
    """Inference rows are read in line, label rows (and bad rows) by ``_row``: both get the carrier, the same values."""
    from stream_monitor.core.exchange import _row

    labels = read_labels([InputRecord(orjson.dumps({"event_id": f"e{i}", "model": "m", "label": i, "ts": i}), SourcePosition("l", 0, i, None)) for i in range(3)])
    rows = read_inference(MonitorSpec(), _records(_AWKWARD)).ordered + labels.ordered
    blob = encode_rows("m", rows)
    model, got = decode_record(blob, ("rp", 3, 41))  # type: ignore[misc]
    assert model == "m" and len(got) == len(rows) and {r.carrier for r in got} == {("rp", 3, 41)}
    slow = [_row("m", r) for r in msgpack.unpackb(blob, raw=False)[2]]
    _assert_same_rows(got, slow)
    assert [type(r.position) for r in got] == [SourcePosition] * len(rows)
    assert decode_record(blob)[1][0].carrier is None  # type: ignore[index]


@_SETTINGS
@given(t=st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1), quiet_ms=st.integers(min_value=0, max_value=2**40))
def test_caught_up_records_say_how_long_the_partition_was_quiet_and_earlier_ones_still_read(t: int | None, quiet_ms: int) -> None:
    assert decode_record(encode_progress("in", 1, t, caught_up=True, quiet_ms=quiet_ms)) == Progress(("in", 1), t, True, quiet_ms)
    earlier = msgpack.packb([PROGRESS_FORMAT, "in", 1, t, True], use_bin_type=True)  # what a caught-up record was before quiet_ms
    assert decode_record(earlier) == Progress(("in", 1), t, True, None) == decode_record(encode_progress("in", 1, t, caught_up=True))
    with pytest.raises(ValueError):
        encode_progress("in", 1, 5, quiet_ms=quiet_ms)  # only a caught-up record says it


@pytest.mark.parametrize(
    "body",
    [
        [PROGRESS_FORMAT, "t", 0],
        [PROGRESS_FORMAT, "t", 0, 5, 6, 7],
        [PROGRESS_FORMAT, "t", 0, 5, -1],
        [PROGRESS_FORMAT, "t", 0, 5, 1.5],
        [PROGRESS_FORMAT, "t", 0, 5, "6"],
        [PROGRESS_FORMAT, "t", 0, 5, False],
        [PROGRESS_FORMAT, "t", 0, 5, None],
        [PROGRESS_FORMAT, 3, 0, 5],
        [PROGRESS_FORMAT, "t", "0", 5],
        [PROGRESS_FORMAT, "t", 0, 5.0],
        [PROGRESS_FORMAT, "t", 0, None],
        [PROGRESS_FORMAT + 1, "t", 0, 5],
    ],
)
def test_malformed_progress_records_are_rejected(body: list) -> None:
    with pytest.raises(RowsFormatError):
        decode_record(msgpack.packb(body, use_bin_type=True))


@_SETTINGS
@given(blob=st.binary(max_size=300))
def test_arbitrary_bytes_raise_rows_format_error_only_as_any_record(blob: bytes) -> None:
    try:
        decode_record(blob)
    except RowsFormatError:
        pass
