"""Float feature columns packed as float64 on the wire (``PACKED_FORMAT``, core/packed.py): only columns of
finite floats and nulls are packed, rows read back with exactly the features they had (types, order, -0.0),
a bad packing is refused with :class:`RowsFormatError`, and judging packed records gives the alerts,
evaluations, dead letters and channels that judging the same rows unpacked gives."""

from __future__ import annotations

import json
import math
import struct

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.core.events import SourcePosition
from stream_monitor.core.exchange import COLUMNS_FORMAT, PACKED_FORMAT, RowsFormatError, _rows_of, _unpack, decode_record, encode_row_lists, encode_rows, row_list
from stream_monitor.core.gathering import uniform_columns
from stream_monitor.core.intake import InputRecord, read_inference
from stream_monitor.core.monitor import PartitionMonitor
from stream_monitor.core.packed import PackedColumn, PackedRows, pack_columns
from stream_monitor.core.spec import MonitorSpec


def _rows(bodies: list[dict], partition: int = 0) -> list:
    recs = [InputRecord(json.dumps(b).encode(), SourcePosition("in", partition, i, 1_700_000_000_000 + i)) for i, b in enumerate(bodies)]
    out = read_inference(MonitorSpec(), recs)
    assert not out.dead_letters
    return out.ordered


def _wire_of(names: list[str], columns: list[list], n: int) -> tuple[list, list]:
    """``n`` inference rows in wire form whose features are ``columns`` under ``names``, and each row's (name, typed value) pairs."""
    wire = [row_list(r) for r in _rows([{"model": "m", "ts": 1_700_000_000_000 + i, "features": {"_": 0}} for i in range(n)])]
    for i, w in enumerate(wire):
        w[10] = {name: col[i] for name, col in zip(names, columns)}
    return wire, [[(k, _typed(v)) for k, v in w[10].items()] for w in wire]


def _body(blob: bytes) -> list:
    return msgpack.unpackb(blob, raw=False, ext_hook=lambda c, d: msgpack.ExtType(c, d), strict_map_key=False)


def _typed(v: object) -> object:
    """A value with its type, -0.0 told from 0.0."""
    return (type(v).__name__, repr(v) if type(v) is float else v)


@pytest.mark.parametrize(
    ("column", "packed"),
    [
        ([1.5, -0.0, 2.0], True),
        ([1.5, None, None], True),
        ([None, None, None], False),  # no float: nothing to gain, and a column of nulls only says nothing of its type
        ([1.5, 2, 3.0], False),  # an int keeps its type on the wire
        ([1.5, True, 3.0], False),
        ([1.5, "x", 3.0], False),
        ([1.5, math.inf, 3.0], False),  # non-finite floats are invalid values, not nulls: they travel as they are
        ([1.5, math.nan, 3.0], False),
    ],
)
def test_only_columns_of_finite_floats_and_nulls_are_packed(column: list, packed: bool) -> None:
    got = pack_columns([[v, "c"] for v in column], 2)
    assert (got is not None) == packed
    if packed:
        positions, data, kept = got  # type: ignore[misc]
        assert positions == [0] and len(data) == 8 * len(column) and kept == [["c"]] * len(column)


_VALUE = st.one_of(
    st.none(), st.floats(), st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**70), 2**70), st.booleans(), st.text(max_size=3),
)  # fmt: skip


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(st.sampled_from(["float", "float_or_null", "any"]), min_size=2, max_size=6),
    n=st.integers(min_value=1, max_value=12),
    data=st.data(),
    group=st.sampled_from([(0, 1), (2, 3)]),
)
def test_rows_read_back_with_the_features_they_had(kinds: list[str], n: int, data: st.DataObject, group: tuple[int, int]) -> None:
    names = [f"f{j}" for j in range(len(kinds))]
    strategy = {"float": st.floats(allow_nan=False, allow_infinity=False), "float_or_null": st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)), "any": _VALUE}
    columns = [data.draw(st.lists(strategy[k], min_size=n, max_size=n)) for k in kinds]
    wire, want = _wire_of(names, columns, n)
    blob = encode_row_lists("m", wire, *group)
    assert [[(k, _typed(v)) for k, v in w[10].items()] for w in wire] == want  # the rows given are put back as they were
    readings = [decode_record(blob, ("rp", 0, 1))]
    try:
        readings.append(_rows_of(_unpack(blob), ("rp", 0, 1)))  # the general reading (what reads records with integers beyond 64 bits)
    except RowsFormatError:
        pytest.fail("the general reading refused a record the encoder wrote")
    for model, back in readings:  # type: ignore[misc]
        assert model == ("m" if group == (0, 1) else "m\x1e2/3")
        assert [[(k, _typed(v)) for k, v in r.event.features.items()] for r in back] == want
    packable = any(float in {type(v) for v in col} <= {float, type(None)} and all(math.isfinite(v) for v in col if v is not None) for col in columns)
    assert _body(blob)[0] == (PACKED_FORMAT if packable else COLUMNS_FORMAT)


def test_a_bad_packing_is_refused() -> None:
    good = _body(encode_rows("m", _rows([{"model": "m", "ts": 1_700_000_000_000 + i, "features": {"x": i + 0.5, "c": "v"}} for i in range(3)])))
    assert good[0] == PACKED_FORMAT and good[4] == [0]
    inf = good[5][:8] + struct.pack("<d", math.inf) + good[5][16:]
    for mangle in (
        lambda b: b.__setitem__(5, b[5][:-8]),  # a value short
        lambda b: b.__setitem__(5, inf),  # infinity: packing never writes it
        lambda b: b.__setitem__(4, []),  # nothing packed
        lambda b: b.__setitem__(4, [2]),  # beyond the names
        lambda b: b.__setitem__(4, [1, 0]),  # not ascending
        lambda b: b.__setitem__(4, ["0"]),
        lambda b: b.__setitem__(5, "text"),
        lambda b: b[3][0][10].append("extra"),  # a row with the packed value too
    ):
        body = _body(encode_rows("m", _rows([{"model": "m", "ts": 1_700_000_000_000 + i, "features": {"x": i + 0.5, "c": "v"}} for i in range(3)])))
        mangle(body)
        with pytest.raises(RowsFormatError):
            decode_record(msgpack.packb(body, use_bin_type=True))


def test_a_uniform_batch_of_packed_rows_gives_whole_packed_columns() -> None:
    """Rows of several records (as the event-time order interleaves them) gather into the columns of their values."""
    rows = _rows([{"model": "m", "ts": 1_700_000_000_000 + i, "features": {"x": float(i), "y": None if i % 3 else i / 4, "c": f"v{i % 2}"}} for i in range(30)])
    first, second = decode_record(encode_rows("m", rows[::2]))[1], decode_record(encode_rows("m", rows[1::2]))[1]  # type: ignore[index]
    merged = sorted(first + second, key=lambda r: r.key)
    model, names, tuples = uniform_columns(merged)  # type: ignore[misc]
    assert (model, names, type(tuples)) == ("m", ("x", "y", "c"), PackedRows)
    cols = tuples.columns()
    assert type(cols["x"]) is PackedColumn and type(cols["y"]) is PackedColumn
    assert cols["x"].tolist() == [r.event.features["x"] for r in merged] == [float(i) for i in range(30)]
    assert cols["y"].tolist() == [None if i % 3 else i / 4 for i in range(30)]
    assert list(cols["c"]) == [f"v{i % 2}" for i in range(30)]
    flags, payload, wrong = cols["y"].classified()
    assert flags.tolist() == [0 if i % 3 == 0 else 1 for i in range(30)] and wrong == []
    assert tuples[4] == (4.0, None, "v0")


def _bodies(n: int, shift_at: int) -> list[dict]:
    out = []
    for i in range(n):
        x = float((i * 7919) % 101) / 10 + (6.0 if i > shift_at else 0.0)
        feats = {
            "x": None if i % 17 == 0 else x,  # nulls among floats: packed
            "y": float(i % 7) if i % 50 else int(i % 7),  # an int now and then: this record's column stays in the rows
            "c": f"v{i % 3}" if i < 700 or i % 9 else 1.5,  # floats reaching a categorical channel: wrong type, as ever
            "z": math.inf if i == 1234 else float(i % 11),  # a non-finite float: invalid, as ever
            "k": f"k{i % 4}" if not 1800 <= i < 1900 else i / 3,  # whole records of floats to a categorical channel: packed, unpacked there
        }
        out.append({"model": "m", "ts": 1_700_000_000_000 + i * 1000, "event_id": f"e{i}", "features": feats, "prediction": (i % 10) / 10})
    return out


def test_packed_records_are_judged_as_unpacked_ones() -> None:
    """Alerts, evaluations, dead letters (wrong types, invalid values) and channels: the same, packed or not."""
    rows = _rows(_bodies(2400, 1500))
    outs = []
    formats = []
    for pack in (True, False):
        m = PartitionMonitor(MonitorSpec(), partition=0)
        alerts, evaluations, dead = [], [], []
        for s in range(0, len(rows), 60):  # judging batches of 60 rows, made of rows records of 25 from two "partitions"
            chunk = rows[s : s + 60]
            blobs = [encode_rows("m", chunk[k : k + 25][p::2], pack=pack) for k in range(0, len(chunk), 25) for p in (0, 1)]
            formats += [_body(b)[0] for b in blobs]
            got = sorted((r for b in blobs for r in decode_record(b, ("rp", 0, 1))[1]), key=lambda r: r.key)  # type: ignore[index]
            result = m.judge(got, record_evaluations=True)
            alerts += [a.payload for a in result.alerts]
            evaluations += [repr(tuple(e)) for e in result.evaluations or []]
            dead += [(d.reason, d.detail, d.raw, d.position, d.processed) for d in result.dead_letters]
        channels = [(name, ch.ordinal, ch.channel_type) for name, ch in m.models["m"].channels.items()]
        outs.append((alerts, evaluations, dead, channels))
    assert PACKED_FORMAT in formats and COLUMNS_FORMAT in formats
    assert outs[0] == outs[1]
    assert {d[3].offset for d in outs[0][2] if 1800 <= d[3].offset < 1900} == set(range(1800, 1900))  # every record of floats to "k"
    alerts, evaluations, dead, _ = outs[0]
    assert alerts and evaluations  # something fired, something was evaluated
    assert any("expected categorical, got float" in str(d[1]) for d in dead)
