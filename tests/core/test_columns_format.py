"""The columnar rows record (``COLUMNS_FORMAT``, core/exchange.py): sent for uniform inference rows, read
back as exactly the rows the row format gives, old row-format records still read, bad ones rejected
with :class:`RowsFormatError` only, and judged to the same alerts."""

from __future__ import annotations

import json

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.core.events import SourcePosition
from stream_monitor.core.exchange import (
    COLUMNS_FORMAT,
    PACKED_FORMAT,
    ROWS_FORMAT,
    ColumnsView,
    RowsFormatError,
    decode_record,
    decode_rows,
    encode_row_lists,
    encode_rows,
    row_list,
)
from stream_monitor.core.intake import InputRecord, read_inference, read_labels
from stream_monitor.core.monitor import PartitionMonitor
from stream_monitor.core.spec import MonitorSpec
from tests.core.test_exchange import _assert_same_rows

_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _rows(bodies: list[dict], topic: str = "in", partition: int = 0) -> list:
    recs = [InputRecord(json.dumps(b).encode(), SourcePosition(topic, partition, i, 1_700_000_000_000 + i)) for i, b in enumerate(bodies)]
    out = read_inference(MonitorSpec(), recs)
    assert not out.dead_letters
    return out.ordered


def _uniform(n: int = 5) -> list:
    return _rows([{"model": "m", "ts": 1_700_000_000_000 + i, "event_id": f"e{i}", "features": {"x": i * 1.5, "c": f"v{i % 2}", "n": None, "big": 2**70 + i},
                   "prediction": {"p": 0.5} if i % 2 else 0.25, "label": i % 2, "latency_ms": 3} for i in range(n)])  # fmt: skip


def _row_format(model: str, rows: list, group: int = 0, groups: int = 1) -> bytes:
    """The record the encoder of before the columnar format wrote (a rolling upgrade's old records)."""
    body: list = [ROWS_FORMAT, model, [row_list(r) for r in rows]] + ([group, groups] if group else [])
    return msgpack.packb(_wide(body), use_bin_type=True)


def _wide(obj: object) -> object:
    if type(obj) is int and not -(2**63) <= obj < 2**64:
        return msgpack.ExtType(1, str(obj).encode())
    if type(obj) is list:
        return [_wide(v) for v in obj]
    if type(obj) is dict:
        return {k: _wide(v) for k, v in obj.items()}
    return obj


def _format_of(blob: bytes) -> object:
    return msgpack.unpackb(blob, raw=False, ext_hook=lambda c, d: msgpack.ExtType(c, d), strict_map_key=False)[0]


@pytest.mark.parametrize("pack", [True, False])
def test_uniform_rows_go_columnar_and_read_back_as_the_row_format_reads_them(pack: bool) -> None:
    rows = _uniform()
    blob = encode_rows("m", rows, pack=pack)
    assert _format_of(blob) == (PACKED_FORMAT if pack else COLUMNS_FORMAT)  # ("x" is floats only: packed)
    assert len(blob) < len(_row_format("m", rows))  # the names once
    model, back = decode_record(blob, ("rp", 0, 9))
    old_model, old = decode_record(_row_format("m", rows), ("rp", 0, 9))
    assert model == old_model == "m"
    _assert_same_rows(back, rows)
    _assert_same_rows(back, old)
    assert all(type(r.event) is ColumnsView and r.carrier == ("rp", 0, 9) for r in back)
    assert [list(r.event.features) for r in back] == [["x", "c", "n", "big"]] * 5  # the names' order kept
    assert back[0].event.__dict__ == old[0].event.__dict__
    assert back[0].raw() == old[0].raw()  # a dead letter of a crossed row: the same bytes


@pytest.mark.parametrize("pack", [True, False])
def test_a_judging_groups_rows_go_columnar_under_the_groups_name(pack: bool) -> None:
    rows = _uniform()
    blob = encode_rows("m", rows, 1, 3, pack=pack)
    assert _format_of(blob) == (PACKED_FORMAT if pack else COLUMNS_FORMAT)
    name, back = decode_rows(blob)
    assert (name, back[0].event.model) == decode_rows(_row_format("m", rows, 1, 3))[0:1] + (name,)
    _assert_same_rows([r for r in back], [r for r in decode_rows(_row_format("m", rows, 1, 3))[1]])


@pytest.mark.parametrize(
    "bodies",
    [
        [{"model": "m", "ts": 1, "features": {"a": 1, "b": 2}}, {"model": "m", "ts": 2, "features": {"b": 2, "a": 1}}],  # another order
        [{"model": "m", "ts": 1, "features": {"a": 1, "b": 2}}, {"model": "m", "ts": 2, "features": {"a": 1}}],  # other names
        [{"model": "m", "ts": 1, "features": {"a": 1}}, {"model": "m", "ts": 2, "prediction": 0.5}],  # no features
        [{"model": "m", "ts": 1, "features": {}}],  # an empty features object
    ],
)
def test_rows_that_are_not_uniform_keep_the_row_format(bodies: list[dict]) -> None:
    rows = _rows(bodies)
    blob = encode_rows("m", rows)
    assert _format_of(blob) == ROWS_FORMAT
    _assert_same_rows(decode_rows(blob)[1], rows)


def test_label_rows_keep_the_row_format() -> None:
    recs = [InputRecord(b'{"event_id": "a", "model": "m", "label": 1}', SourcePosition("labels", 0, 0, 5))]
    rows = read_labels(recs).ordered
    assert _format_of(encode_rows("m", rows)) == ROWS_FORMAT


def test_old_row_format_records_still_read() -> None:
    rows = _uniform()
    _assert_same_rows(decode_rows(_row_format("m", rows))[1], rows)


def _columnar_body() -> list:
    return msgpack.unpackb(encode_rows("m", _uniform(3)), raw=False, ext_hook=lambda c, d: msgpack.ExtType(c, d), strict_map_key=False)


def _packed(body: list) -> bytes:
    return msgpack.packb(body, use_bin_type=True)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b.__setitem__(2, ["x", "x", "y", "z"]),  # a name twice
        lambda b: b.__setitem__(2, ["x", 1, "n", "big"]),  # a name that is not text
        lambda b: b.__setitem__(2, "x"),  # names not a list
        lambda b: b[3][0].__setitem__(10, [1.0, "v", None]),  # fewer values than names
        lambda b: b[3][0].__setitem__(10, {"x": 1.0, "c": "v", "n": None, "big": 1}),  # a map, not values
        lambda b: b[3][0].__setitem__(0, 1),  # a label row
        lambda b: b[3][0].__setitem__(5, "t"),  # a bad event time
        lambda b: b[3][0].__setitem__(14, [["no_such_reason", "x"]]),  # an unknown problem
        lambda b: b[3].__setitem__(0, b[3][0][:14]),  # a short row
        lambda b: b.append(1),  # a group without its count
        lambda b: b.extend([3, 2]),  # group 3 of 2
        lambda b: b.__setitem__(1, 7),  # a model that is not text
    ],
)
def test_mangled_columnar_records_are_rejected(mangle) -> None:  # noqa: ANN001
    body = _columnar_body()
    mangle(body)
    with pytest.raises(RowsFormatError):
        decode_record(_packed(body))


@_SETTINGS
@given(data=st.data())
def test_truncated_or_flipped_columnar_records_raise_rows_format_error_only(data: st.DataObject) -> None:
    blob = encode_rows("m", _uniform(4))
    cut = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    with pytest.raises(RowsFormatError):
        decode_rows(blob[:cut])
    i = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    flipped = blob[:i] + bytes([blob[i] ^ data.draw(st.integers(min_value=1, max_value=255))]) + blob[i + 1 :]
    try:
        _, rows = decode_rows(flipped)
    except RowsFormatError:
        return
    for r in rows:  # what reads is whole: every row's features object can be made
        assert type(r.event.features) is dict


@_SETTINGS
@given(
    obj=st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1), st.floats(), st.text(max_size=5), st.binary(max_size=5)),
        lambda inner: st.one_of(st.lists(inner, max_size=12), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
        max_leaves=30,
    )
)
def test_well_formed_messagepack_in_a_columnar_record_raises_rows_format_error_only(obj: object) -> None:
    row = [0, "t", 0, 0, None, 1, 2, 0, None, None, obj, None, None, None, []]
    for body in ([COLUMNS_FORMAT, "m", obj, []], [COLUMNS_FORMAT, "m", ["a"], obj], [COLUMNS_FORMAT, "m", ["a"], [obj]], [COLUMNS_FORMAT, "m", ["a", "b"], [row]]):
        try:
            decode_rows(msgpack.packb(body, use_bin_type=True))
        except RowsFormatError:
            pass


def test_encode_row_lists_of_wire_rows_goes_columnar() -> None:
    rows = _uniform(3)
    blob = encode_row_lists("m", [row_list(r) for r in rows])
    assert blob == encode_rows("m", rows)
    assert _format_of(blob) == PACKED_FORMAT
    assert _format_of(encode_row_lists("m", [row_list(r) for r in rows], pack=False)) == COLUMNS_FORMAT


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shapes=st.lists(st.sampled_from([("a", "b", "c"), ("a", "b"), ("b", "a", "c"), ("a",)]), min_size=1, max_size=5),
    sizes=st.lists(st.integers(min_value=1, max_value=80), min_size=5, max_size=5),
)
def test_columnar_records_are_judged_as_row_format_records(shapes: list[tuple[str, ...]], sizes: list[int]) -> None:
    """Batches of records whose names change between (and within) rows records: the same alerts, evaluations and channels."""
    bodies, i = [], 0
    for names, size in zip(shapes, sizes):
        for _ in range(size):
            feats = {n: (float((i * 7919) % 97) + (40.0 if i > 120 else 0.0) if n != "c" else f"v{i % 3}") for n in names}
            bodies.append({"model": "m", "ts": 1_700_000_000_000 + i * 1000, "event_id": f"e{i}", "features": feats, "prediction": (i % 10) / 10})
            i += 1
    for k in range(1500):  # then enough uniform rows (and a shift) for the windows to judge
        feats = {"a": float(k % 13) + (30.0 if k > 900 else 0.0), "b": float(k % 5), "c": f"v{k % 3}"}
        bodies.append({"model": "m", "ts": 1_700_000_000_000 + (i + k) * 1000, "features": feats, "prediction": (k % 10) / 10})
    rows = _rows(bodies)
    outs = []
    for encode in (lambda chunk: encode_rows("m", chunk), lambda chunk: encode_rows("m", chunk, pack=False), lambda chunk: _row_format("m", chunk)):
        m = PartitionMonitor(MonitorSpec(), partition=0)
        alerts, evaluations = [], []
        for s in range(0, len(rows), 50):  # judging batches of 50 rows, made of rows records of 20
            got = [r for k in range(s, min(s + 50, len(rows)), 20) for r in decode_rows(encode(rows[k : min(k + 20, s + 50)]))[1]]
            result = m.judge(got, record_evaluations=True)
            alerts += [a.payload for a in result.alerts]
            evaluations += [repr(tuple(e)) for e in result.evaluations or []]
        channels = [(name, ch.ordinal) for name, ch in m.models["m"].channels.items()]
        outs.append((alerts, evaluations, channels))
    assert outs[0] == outs[1] == outs[2]  # packed float columns, columnar, row format
    assert outs[0][1]  # something was evaluated


def test_a_uniform_batch_of_columnar_rows_is_judged_without_making_features_objects() -> None:
    """The point of the format: once the features are channels, gathering takes the rows' values as they are."""
    rows = _rows([{"model": "m", "ts": 1_700_000_000_000 + i, "features": {"a": float(i % 7), "b": f"v{i % 3}"}, "prediction": 0.5} for i in range(400)])
    m = PartitionMonitor(MonitorSpec(), partition=0)
    m.judge(decode_rows(encode_rows("m", rows[:200]))[1])  # discovers the channels
    _, second = decode_rows(encode_rows("m", rows[200:]))
    result = m.judge(second)
    assert result.processed == 200
    unmade = sum(r.event.made is None for r in second)  # (ColumnsView.made: the features object, once asked for)
    assert unmade == 200
    assert [list(r.event.features) for r in second[:1]] == [["a", "b"]]  # made when asked for


_JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80), st.floats(), st.text(max_size=5), st.binary(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=8), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=30,
)


@_SETTINGS
@given(obj=_JSONISH)
def test_records_are_packed_to_msgpacks_bytes(obj: object) -> None:
    """The encoder (msgspec) writes what msgpack.packb wrote, integers beyond 64 bits as extension type 1 included."""
    from stream_monitor.core.exchange import _packed

    body = [ROWS_FORMAT, "m", [obj]]
    try:
        want = msgpack.packb(body, use_bin_type=True)
    except OverflowError:
        want = msgpack.packb(_wide(body), use_bin_type=True)
    assert _packed(body) == want
