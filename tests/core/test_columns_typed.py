"""Columnar rows records read by msgspec in one pass (``exchange._typed_columns``) against reading them the general way.

``decode_record`` reads a ``COLUMNS_FORMAT`` record with msgspec straight into its rows' views; a
record it does not take (None) is read by ``_rows_of`` after ``msgpack.unpackb``, which also words
the errors. So whatever the one-pass reading takes must give exactly what the general reading
gives: the same rows (kinds, keys, positions, carriers, problems), events (every field, types
included) and features objects; and the usual records must be taken by it.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stream_monitor.core import exchange
from stream_monitor.core.exchange import COLUMNS_FORMAT, ColumnsView, RowsFormatError, decode_record, decode_rows, encode_row_lists
from tests.core.test_optimisation_equivalence import _typed

_FIELDS = ("event_id", "model", "model_version", "ts", "features", "prediction", "label", "latency_ms")


def _seen(got: tuple[str, list[Any]]) -> Any:
    model, rows = got
    return model, [
        (_typed(r.kind), _typed(r.key), _typed(tuple(r.position)), r.carrier, _typed(r.problems), [str(p[0]) for p in r.problems],
         _typed({k: getattr(r.event, k) for k in _FIELDS}), type(r.event).__name__, r.event.names)  # fmt: skip
        for r in rows
    ]


def _general(blob: bytes, carrier: Any) -> Any:
    try:
        return _seen(exchange._rows_of(exchange._unpack(blob), carrier))
    except RowsFormatError as exc:
        return f"error {exc}"


def _check(blob: bytes) -> bool:
    """The one-pass reading against the general one; True when the one-pass reading took the record."""
    carrier = ("rp", 3, 17)
    want = _general(blob, carrier)
    typed = exchange._typed_columns(blob, carrier)
    if typed is not None:
        assert _seen(typed) == want
    assert _record_read(blob, carrier) == _record_read(blob, carrier, general=True)
    return typed is not None


def _record_read(blob: bytes, carrier: Any, general: bool = False) -> Any:
    """What ``decode_record`` gives (or its error); ``general``: with the one-pass reading taking nothing (the reading before it)."""
    real = exchange._typed_columns
    if general:
        exchange._typed_columns = lambda blob, carrier: None
    try:
        got = decode_record(blob, carrier)
        return got if isinstance(got, exchange.Progress) else _seen(got)
    except RowsFormatError as exc:
        return f"error {exc}"
    finally:
        exchange._typed_columns = real


_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=4),
    st.sampled_from([0, -0.0, 1, 1.0, True, 2**63, 2**64 - 1, "", "x"]),
)  # fmt: skip
_odd = st.one_of(
    st.binary(max_size=3), st.lists(_scalar, max_size=2), st.dictionaries(st.text(max_size=2), _scalar, max_size=2),
    st.dictionaries(st.integers(0, 3), _scalar, min_size=1, max_size=2), st.just(msgpack.ExtType(1, b"123")), st.just(msgpack.ExtType(5, b"x")),
)  # fmt: skip
_reasons = st.sampled_from(["non_finite_value", "schema_validation", "no_such_reason", 5])


def _mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.integers(0, 39).flatmap(lambda k: good if k else st.one_of(_scalar, _odd))


@st.composite
def _record(draw: st.DrawFn) -> bytes:
    names = draw(_mostly(st.lists(st.sampled_from(["x", "y", "c", "z"]), min_size=0, max_size=4, unique=draw(st.integers(0, 5)) > 0)))
    width = len(names) if isinstance(names, list) else 2
    rows = []
    for _ in range(draw(st.integers(0, 4))):
        row = [
            draw(_mostly(st.just(0))), draw(_mostly(st.sampled_from(["in", "t"]))), draw(_mostly(st.integers(0, 3))), draw(_mostly(st.integers(0, 2**40))),
            draw(_mostly(st.one_of(st.none(), st.integers(-1, 2**42)))), draw(_mostly(st.integers(-(2**63), 2**63 - 1))),
            draw(_mostly(st.integers(-(2**63), 2**63 - 1))), draw(_mostly(st.integers(0, 3))), draw(_mostly(st.one_of(st.none(), st.text(max_size=3)))),
            draw(_mostly(st.one_of(st.none(), st.text(max_size=3)))), draw(_mostly(st.lists(_mostly(_scalar), min_size=width, max_size=width))),
            draw(_mostly(st.one_of(_scalar, st.dictionaries(st.text(max_size=2), _scalar, max_size=2)))), draw(_mostly(_scalar)),
            draw(_mostly(st.one_of(st.none(), st.floats(), st.integers(-5, 5)))),
            draw(_mostly(st.lists(st.tuples(_reasons, _mostly(st.text(max_size=3))).map(list), max_size=2))),
        ]  # fmt: skip
        if draw(st.integers(0, 9)) == 0:
            row = row[: draw(st.integers(0, 14))] if draw(st.booleans()) else row + [draw(st.one_of(_scalar, _odd))]
        rows.append(row)
    body: list[Any] = [draw(_mostly(st.just(COLUMNS_FORMAT))), draw(_mostly(st.sampled_from(["m", "n"]))), names, rows]
    tail = draw(st.sampled_from([[], [], [], [1, 2], [2, 3], [0, 2], [3, 2], [1], [None, None], [-1, -1], [1, 2, 3], [True, 2]]))
    return msgpack.packb(body + tail, use_bin_type=True)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blob=_record())
@example(blob=b"\x94\x02\xc0\xc0\x90")  # a bad progress record: decode_record words it as before
def test_what_the_one_pass_reading_takes_is_what_the_general_reading_gives(blob: bytes) -> None:
    _check(blob)


def _usual(n: int = 5, problems: bool = False) -> list[list[Any]]:
    return [[0, "in", 2, 10 + i, 1_700_000_000_000 + i, 1_700_000_000_000 + i, -(7**20) + i, i % 2, f"e{i}" if i % 3 else None, "v1",
             {"x": i * 1.5, "c": f"v{i % 2}", "n": None, "b": i % 2 == 0, "i": 2**63 + i}, {"p": 0.5} if i % 2 else 0.25, i % 2 if i % 4 else None,
             3.5 if i % 2 else None, [["non_finite_value", "x is NaN"]] if problems and i % 2 else []] for i in range(n)]  # fmt: skip


@pytest.mark.parametrize("group", [(0, 1), (1, 3)])
@pytest.mark.parametrize("problems", [False, True])
def test_the_usual_records_are_read_in_one_pass(group: tuple[int, int], problems: bool) -> None:
    blob = encode_row_lists("m", _usual(problems=problems), *group)
    assert _check(blob)
    model, rows = decode_record(blob, ("rp", 0, 1))  # type: ignore[misc]
    assert model == ("m" if group == (0, 1) else "m\x1e1/3")
    assert all(type(r.event) is ColumnsView and r.event.made is None for r in rows)
    assert len({id(r.event.names) for r in rows}) == 1  # the names shared (gathering tells a uniform batch by identity)
    assert rows[1].event.features == {"x": 1.5, "c": "v1", "n": None, "b": False, "i": 2**63 + 1} and rows[1].event.made is not None
    assert decode_rows(blob)[0] == model and _seen(decode_rows(blob)) == _seen((model, [r for r in rows]))[:1] + ([
        (*s[:3], None, *s[4:]) for s in _seen((model, rows))[1]],)  # fmt: skip


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b[3][0].append(None),  # a row of 16: the view's own fields are never read from the wire
        lambda b: b[3][0].extend(["m", ["x"], {}]),
        lambda b: b[3][0].__setitem__(0, False),  # the general reading takes these (0 == False == 0.0): so must the result be
        lambda b: b[3][0].__setitem__(0, 0.0),
        lambda b: b[3][0].__setitem__(4, "t"),
        lambda b: b[3][0].__setitem__(7, "i"),
        lambda b: b[3][0].__setitem__(11, {1: 2}),  # a map with a key that is not text: the general reading refuses it
        lambda b: b[3][0][10].__setitem__(0, b"bytes"),
        lambda b: b[3][0][10].__setitem__(0, msgpack.ExtType(1, b"123456789012345678901234567890")),  # an integer beyond 64 bits
        lambda b: b[3][0].__setitem__(14, [["non_finite_value", 5]]),
        lambda b: b[3][0].__setitem__(14, [["non_finite_value", "x", "y"]]),
        lambda b: b[3][0].extend([None] * 6),  # (msgspec takes arrays longer than a struct's fields)
        lambda b: b[3][0].__setitem__(14, None),
        lambda b: b.extend([-1, -1]),
        lambda b: b.extend([None, None]),
        lambda b: b.extend([1, None]),
        lambda b: b.append(1),
    ],
)
def test_unusual_records_read_as_the_general_reading_reads_them(mangle) -> None:  # noqa: ANN001
    body = msgpack.unpackb(encode_row_lists("m", _usual(3)), raw=False, strict_map_key=False, ext_hook=msgpack.ExtType)
    mangle(body)
    assert not _check(msgpack.packb(body, use_bin_type=True))
