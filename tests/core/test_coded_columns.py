"""Text feature columns coded on the wire (``CODED_FORMAT``, core/packed.py): only columns of texts and nulls are
coded, rows read back with exactly the features they had, a bad coding is refused with :class:`RowsFormatError`, a
coded column classifies as its values do, and judging coded records gives what judging the same rows unpacked gives
(the golden stream too)."""

from __future__ import annotations

import json

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.core.classify import classify
from stream_monitor.core.exchange import (
    CODED_FORMAT, COLUMNS_FORMAT, PACKED_FORMAT, RowsFormatError, _rows_of, _typed_columns, _unpack, decode_record, encode_row_lists, row_list,
)  # fmt: skip
from stream_monitor.core.gathering import uniform_columns
from stream_monitor.core.intake import InputRecord, merge_intake, read_inference
from stream_monitor.core.monitor import PartitionMonitor
from stream_monitor.core.packed import CodedColumn, PackedColumn, PackedRows, pack_and_code
from stream_monitor.core.spec import MonitorSpec
from tests.core.test_optimisation_equivalence import BATCHES, GOLDEN, build_records
from tests.core.test_packed_columns import _VALUE, _bodies, _body, _rows, _typed, _wire_of


def _encode(model: str, rows: list, code: bool = True, pack: bool = True, group: tuple[int, int] = (0, 1)) -> bytes:
    return encode_row_lists(model, [row_list(r) for r in rows], *group, pack=pack, code=code)


@pytest.mark.parametrize(
    ("column", "coded"),
    [
        (["a", "b", "a"], True),
        (["a", None, None], True),
        ([None, None, None], False),  # no text: a column of nulls says nothing of its type
        (["a", 1, "b"], False),  # anything but texts and nulls keeps the column in the rows
        (["a", True, "b"], False),
        (["a", 1.5, "b"], False),
    ],
)
def test_only_columns_of_texts_and_nulls_are_coded(column: list, coded: bool) -> None:
    got = pack_and_code([[v, 2] for v in column], 2)
    assert (got is not None) == coded
    if coded:
        packed, data, kept, positions, texts, codes = got  # type: ignore[misc]
        assert (packed, data, positions, kept) == ([], b"", [0], [[2]] * len(column))
        assert texts == [[v for v in dict.fromkeys(column) if v is not None]]  # distinct, in order of first appearance
        assert np.frombuffer(codes, "<i4").tolist() == [-1 if v is None else texts[0].index(v) for v in column]
    assert pack_and_code([[v, 2] for v in column], 2, code=False) is None  # without ``code``: packing only


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(st.sampled_from(["float", "text", "text_or_null", "any"]), min_size=2, max_size=6),
    n=st.integers(min_value=1, max_value=12),
    data=st.data(),
    group=st.sampled_from([(0, 1), (2, 3)]),
)
def test_rows_read_back_with_the_features_they_had(kinds: list[str], n: int, data: st.DataObject, group: tuple[int, int]) -> None:
    names = [f"f{j}" for j in range(len(kinds))]
    strategy = {
        "float": st.floats(allow_nan=False, allow_infinity=False),
        "text": st.text(max_size=4),
        "text_or_null": st.one_of(st.none(), st.sampled_from(["a", "b", "é", ""])),
        "any": _VALUE,
    }
    columns = [data.draw(st.lists(strategy[k], min_size=n, max_size=n)) for k in kinds]
    wire, want = _wire_of(names, columns, n)
    blob = encode_row_lists("m", wire, *group, code=True)
    assert [[(k, _typed(v)) for k, v in w[10].items()] for w in wire] == want  # the rows given are put back as they were
    codable = any(str in {type(v) for v in col} <= {str, type(None)} for col in columns)
    if codable:
        assert _body(blob)[0] == CODED_FORMAT
        if "any" not in kinds:  # (integers beyond 64 bits, say, are the general reading's)
            assert _typed_columns(blob, ("rp", 0, 1)) is not None  # the one-pass reading takes it
    else:
        assert _body(blob)[0] in (PACKED_FORMAT, COLUMNS_FORMAT)
    for model, back in (decode_record(blob, ("rp", 0, 1)), _rows_of(_unpack(blob), ("rp", 0, 1))):  # type: ignore[misc]
        assert model == ("m" if group == (0, 1) else "m\x1e2/3")
        assert [[(k, _typed(v)) for k, v in r.event.features.items()] for r in back] == want


def _good() -> list:
    body = _body(_encode("m", _rows([{"model": "m", "ts": 1_700_000_000_000 + i, "features": {"x": i + 0.5, "c": "uv"[i % 2], "k": i}} for i in range(3)])))
    assert body[0] == CODED_FORMAT and body[4] == [0] and body[6] == [1] and body[7] == [["u", "v"]]
    return body


def test_a_bad_coding_is_refused() -> None:
    codes = np.frombuffer(_good()[8], "<i4")
    for mangle in (
        lambda b: b.__setitem__(8, b[8][:-4]),  # a code short
        lambda b: b.__setitem__(8, np.array([0, 1, 2], "<i4").tobytes()),  # a code beyond the texts
        lambda b: b.__setitem__(8, np.array([0, -2, 1], "<i4").tobytes()),  # below -1
        lambda b: b.__setitem__(7, [["u", "u"]]),  # texts not distinct
        lambda b: b.__setitem__(7, [["u", 1]]),
        lambda b: b.__setitem__(7, []),  # texts for no column
        lambda b: b.__setitem__(6, [0]),  # a position both packed and coded
        lambda b: b.__setitem__(6, [3]),  # beyond the names
        lambda b: b.__setitem__(6, []),  # nothing coded
        lambda b: b.__setitem__(6, ["1"]),
        lambda b: b.__setitem__(8, "text"),
        lambda b: b[3][0][10].append("extra"),  # a row with the coded value too
        lambda b: (b.__setitem__(4, []), b.__setitem__(5, b"\0" * 8)),  # bytes for no packed column
    ):
        body = _good()
        assert codes.tolist() == [0, 1, 0]
        mangle(body)
        with pytest.raises(RowsFormatError):
            decode_record(msgpack.packb(body, use_bin_type=True))


def test_only_texts_coded_reads_back() -> None:
    rows = _rows([{"model": "m", "ts": 1_700_000_000_000 + i, "features": {"c": "uv"[i % 2], "k": i}} for i in range(3)])
    body = _body(_encode("m", rows))
    assert (body[0], body[4], body[5], body[6]) == (CODED_FORMAT, [], b"", [0])
    assert [r.event.features for r in decode_record(_encode("m", rows))[1]] == [r.event.features for r in rows]  # type: ignore[index]


def test_a_uniform_batch_of_coded_rows_gives_whole_coded_columns() -> None:
    """Rows of several records (as the event-time order interleaves them) gather into the columns of their values, the
    records' texts merged."""
    bodies = [{"model": "m", "ts": 1_700_000_000_000 + i, "features": {"x": float(i), "c": None if i % 5 == 0 else f"v{i % 4}"}} for i in range(30)]
    rows = _rows(bodies)
    first, second = decode_record(_encode("m", rows[::2]))[1], decode_record(_encode("m", rows[1::2]))[1]  # type: ignore[index]
    assert set(_body(_encode("m", rows[::2]))[7][0]) == {"v0", "v2"}  # each record codes its own texts
    merged = sorted(first + second, key=lambda r: r.key)
    model, names, tuples = uniform_columns(merged)  # type: ignore[misc]
    assert (model, names, type(tuples)) == ("m", ("x", "c"), PackedRows)
    cols = tuples.columns()
    assert type(cols["x"]) is PackedColumn and type(cols["c"]) is CodedColumn
    want = [b["features"]["c"] for b in bodies]
    assert cols["c"].tolist() == list(cols["c"]) == [cols["c"][i] for i in range(30)] == want
    assert cols["c"][3:7].tolist() == want[3:7]
    assert tuples[4] == (4.0, "v0")
    one = uniform_columns(decode_record(_encode("m", rows))[1])[2].columns()["c"]  # type: ignore[index,union-attr]
    assert one.tolist() == want


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "x" * 20, "y" * 30, "é" * 17])), max_size=30), max_length=st.sampled_from([4, 16, 64]))
def test_a_coded_column_classifies_as_its_values(values: list, max_length: int) -> None:
    texts = [v for v in dict.fromkeys(values) if v is not None]
    column = CodedColumn(np.array([-1 if v is None else texts.index(v) for v in values], dtype=np.int32), texts)
    flags, payload, truncated = column.classified(max_length)
    want_flags, want_payload, wrong, want_truncated = classify(values, "categorical", max_length)
    assert flags.tolist() == want_flags.tolist() and payload.tolist() == list(want_payload) and truncated == want_truncated and wrong == []


def _judged(rows: list, code: bool, pack: bool = True) -> tuple:
    m = PartitionMonitor(MonitorSpec(), partition=0)
    alerts, evaluations, dead, formats = [], [], [], []
    for s in range(0, len(rows), 60):  # judging batches of 60 rows, made of rows records of 25 from two "partitions"
        chunk = rows[s : s + 60]
        blobs = [_encode("m", chunk[k : k + 25][p::2], code=code, pack=pack) for k in range(0, len(chunk), 25) for p in (0, 1)]
        formats += [_body(b)[0] for b in blobs]
        got = sorted((r for b in blobs for r in decode_record(b, ("rp", 0, 1))[1]), key=lambda r: r.key)  # type: ignore[index]
        result = m.judge(got, record_evaluations=True)
        alerts += [a.payload for a in result.alerts]
        evaluations += [repr(tuple(e)) for e in result.evaluations or []]
        dead += [(d.reason, d.detail, d.raw, d.position, d.processed) for d in result.dead_letters]
    channels = [(name, ch.ordinal, ch.channel_type, ch.truncated_categories) for name, ch in m.models["m"].channels.items()]
    return (alerts, evaluations, dead, channels), formats


def _coded_bodies(n: int, shift_at: int) -> list[dict]:
    """Records whose rows records all code the same columns (so a judging batch gathers whole coded columns), but for the
    judging batch of rows 2040-2099, whose ``n`` is text (coded: wrong types for a numeric channel)."""
    out = []
    for i in range(n):
        feats = {
            "x": float((i * 7919) % 101) / 10 + (6.0 if i > shift_at else 0.0),
            "t": None if i % 13 == 0 else ("w" * 300 + str(i % 2) if i % 7 == 0 else f"t{i % 5}") if i < shift_at else f"new{i % 3}",  # nulls, cut texts, unseen ones
            "c": f"v{i % 3}" if i < shift_at else f"v{(i * 7) % 4}",
            "n": float(i % 9) if not 2040 <= i < 2100 else "text",
            "k": i % 4,  # ints: in the rows
        }
        out.append({"model": "m", "ts": 1_700_000_000_000 + i * 1000, "event_id": f"e{i}", "features": feats, "prediction": (i % 10) / 10})
    return out


def test_coded_records_are_judged_as_unpacked_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """Alerts, evaluations, dead letters (wrong types) and channels (cut texts counted): the same, coded, packed or neither."""
    from stream_monitor.core.channel import ChannelMonitor

    seen: list[str] = []
    classify_coded = ChannelMonitor.classify_coded
    monkeypatch.setattr(ChannelMonitor, "classify_coded", lambda ch, column: (seen.append(ch.name), classify_coded(ch, column))[1])
    for bodies in (_coded_bodies(2400, 1500), _bodies(2400, 1500)):  # (the second: records of every shape, rows gathered one by one)
        rows = _rows(bodies)
        seen.clear()
        coded, formats = _judged(rows, code=True)
        assert CODED_FORMAT in formats
        assert coded == _judged(rows, code=False)[0] == _judged(rows, code=False, pack=False)[0]
        alerts, evaluations, dead, channels = coded
        assert alerts and evaluations
    rows = _rows(_coded_bodies(2400, 1500))
    seen.clear()
    alerts, evaluations, dead, channels = _judged(rows, code=True)[0]
    assert {"t", "c"} <= set(seen) and "n" not in seen  # whole coded columns reached the categorical channels
    assert any("n: expected numeric, got str" in str(d[1]) for d in dead)
    assert dict((c[0], c[3]) for c in channels)["t"] > 0  # long texts were cut, and counted
    assert any('"t"' in a.decode() or "unseen" in a.decode() for a in alerts)


def _hop(records: list[InputRecord], code: bool) -> dict:
    """The golden stream judged as ``run`` judges it: each batch read, every model's rows through a rows record and back."""
    spec = MonitorSpec()
    monitor = PartitionMonitor(spec, partition=0)
    alerts: list[str] = []
    dead: list[list] = []
    formats: list[int] = []
    i = b = 0
    while i < len(records):
        batch = records[i : i + BATCHES[b % len(BATCHES)]]
        i, b = i + len(batch), b + 1
        intake = read_inference(spec, batch)
        back = []
        for model, rows in intake.rows.items():
            blob = _encode(model, rows, code=code)
            formats.append(_body(blob)[0])
            back += decode_record(blob, ("rp", 0, i))[1]  # type: ignore[index]
        back.sort(key=lambda r: (r.position.offset, r.key[2]))  # record order, as the golden run judges them
        result = monitor.judge(back)
        merge_intake(result, intake)
        alerts += [a.payload.decode() for a in result.alerts]
        dead += [[str(d.reason), d.detail, d.position.offset if d.position else None] for d in result.dead_letters]
    return {"alerts": alerts, "dead_letters": sorted(dead, key=lambda d: (d[2], d[0], d[1])), "formats": formats}


@pytest.mark.slow
def test_the_golden_stream_through_coded_records_gives_the_golden_alerts() -> None:
    golden = json.loads(GOLDEN.read_text())
    got = _hop(build_records(), code=True)
    assert got["formats"].count(CODED_FORMAT) > len(got["formats"]) // 3  # (the demo models have text features)
    assert golden["alerts"] and got["alerts"] == golden["alerts"]
    assert got["dead_letters"] == sorted(([d[0], d[1], d[2]] for d in golden["dead_letters"]), key=lambda d: (d[2], d[0], d[1]))


def test_codes_are_exact_for_equal_texts_that_are_different_objects() -> None:
    a, b = "".join(["v", "1"]), "".join(["v", "1"])
    assert a is not b
    packed, data, kept, positions, texts, codes = pack_and_code([[a], [b], [None]], 1)  # type: ignore[misc]
    assert texts == [["v1"]] and np.frombuffer(codes, "<i4").tolist() == [0, 0, -1]
    rows = _rows([{"model": "m", "ts": 1_700_000_000_000, "features": {"c": "v1", "x": 1.0}}])
    assert decode_record(_encode("m", rows))[1][0].event.features == {"c": "v1", "x": 1.0}  # type: ignore[index]


def test_the_one_pass_decoders_are_those_of_the_formats() -> None:
    from stream_monitor.core import exchange

    assert {head[1] for head in exchange._DECODERS} == {COLUMNS_FORMAT, PACKED_FORMAT, CODED_FORMAT}
    assert {head[0] - 0x90 for head in exchange._DECODERS} == {4, 6, 8, 9, 11}  # array lengths, without and with the group
