"""``intake.plain_values`` (msgspec, one pass) against ``fast_values(orjson.loads(raw))``, what it stands in for.

Whatever ``plain_values`` takes must give exactly (types included, features in the same order) what
orjson and ``fast_values`` give; whatever it refuses (None) goes their way in ``read_inference_wire``,
so refusing is always safe. The usual records must be taken, or the fast path would be dead code.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.core import events as ev
from stream_monitor.core.intake import plain_values
from tests.core.test_optimisation_equivalence import _event, _keys, _raw, _typed, _value


def _reference(raw: bytes) -> Any:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return ev.fast_values(obj) if type(obj) is dict else None


def _check(raw: bytes) -> Any:
    got = plain_values(raw)
    if got is not None:
        assert _typed(got) == _typed(_reference(raw)), raw
    return got


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=st.integers(0, 3).flatmap(lambda k: _event if k else st.one_of(st.dictionaries(_keys, _value, max_size=6), _value)))
def test_what_plain_values_takes_is_what_orjson_and_fast_values_give(obj: Any) -> None:
    _check(_raw(obj))


_number = st.one_of(
    st.integers(-(2**80), 2**80).map(str),
    st.sampled_from(["-0", "-0.0", "1E2", "1e-2", "1e400", "-1e400", "1e-400", "5e-324", "2.2250738585072011e-308", "9223372036854775807",
                     "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "18446744073709551615", "18446744073709551616",
                     "9007199254740993", "01", "1.", ".5", "+1", "4.35000000000000000001", "0.1e1", "123456789012345678901234567890.5"]),  # fmt: skip
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.tuples(st.integers(0, 10**20), st.integers(0, 10**20), st.integers(-400, 400)).map(lambda t: f"{t[0]}.{t[1]}e{t[2]}"),
)
_text = st.one_of(
    st.text(max_size=6).map(json.dumps),
    st.sampled_from(['"\\ud800"', '"\\udc00"', '"\\ud83d\\ude00"', '"a\\u0000b"', '"\\x41"', '"a\nb"', '"\x7f"', '"\\/"', '"é"', '"\\u00e9"']),
)
_json_value = st.one_of(_number, _text, st.sampled_from(["true", "false", "null", "NaN", "[]", "[1]", "{}", '{"a": 1}']))


@st.composite
def _record_text(draw: st.DrawFn) -> bytes:
    """A record's JSON written piece by piece: duplicate keys, odd numbers and strings, odd spacing, extra fields."""
    fields = draw(st.lists(st.sampled_from(["model", "model", "event_id", "model_version", "ts", "features", "features", "prediction", "label",
                                            "latency_ms", "extra"]), max_size=9))  # fmt: skip
    parts = ['"model": "m"'] if draw(st.booleans()) else []
    for name in fields:
        if name == "features" or (name == "prediction" and draw(st.booleans())):
            items = draw(st.lists(st.tuples(st.sampled_from(['"x"', '"y"', '"x"', '""', '"\\u0078"']), _json_value), max_size=4))
            value = "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
        else:
            value = draw(_json_value)
        parts.append(f'"{name}": {value}')
    space = draw(st.sampled_from(["", " ", "\t", "\r\n"]))
    return (space + "{" + ("," + space).join(parts) + "}" + space).encode()


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_record_text())
def test_written_records_too(raw: bytes) -> None:
    _check(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model": "m", "features": {"a": 1, "b": 2, "a": 3}}',  # a duplicate key: the last value, at the first one's place
        b'{"model": "n", "model": "m"}',
        b'{"model": "m", "features": [1], "features": {"a": 1}}',
        b'{"model": "m", "features": {"a": 123456789012345678901234567890}}',  # orjson: a float
        b'{"model": "m", "features": {"a": 18446744073709551615}}',  # orjson: an int beyond int64
        b'{"model": "m", "ts": "2026-01-01T00:00:00Z", "event_id": 5, "model_version": -7, "latency_ms": 9007199254740992}',
        b'{"model": "m", "ts": "yesterday"}',
        b'{"model": "m", "features": {"a": "\\ud800"}}',
        b'\xef\xbb\xbf{"model": "m"}',
        b'{"model": "' + "é".encode() * 256 + b'"}',
        b'{"model": "' + "é".encode() * 257 + b'"}',
        b'{"model": "m", "prediction": {"a": 0.5, "b": null}, "label": true}',
        b'{"model": "m", "extra": 1e400}',  # orjson refuses the record: so must this
    ],
)
def test_edge_cases(raw: bytes) -> None:
    _check(raw)


def test_the_usual_records_are_taken() -> None:
    from bench.workload import throughput_events

    values = throughput_events(200)
    got = [_check(raw) for raw in values]
    assert all(v is not None for v in got)
    assert plain_values(b'{"model": "m", "features": {"a": 1, "b": 2, "a": 3}}') == (None, "m", None, None, {"a": 3, "b": 2}, None, None, None)
    assert plain_values(b'{"model": "m", "ts": "1970-01-01T00:00:01Z", "event_id": 5, "latency_ms": 3}') == ("5", "m", None, 1000, None, None, None, 3.0)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=st.lists(st.sampled_from(["plain", "extra", "bad", "no_ts"]), min_size=20, max_size=80))
def test_long_batches_read_as_record_by_record_whatever_plain_values_takes(kinds: list[str]) -> None:
    """read_inference_wire stops asking plain_values once it takes fewer than half of a batch's records
    (records with more fields): the rows and dead letters stay those of reading record by record."""
    from stream_monitor.core import intake as ik
    from stream_monitor.core.events import SourcePosition
    from stream_monitor.core.spec import MonitorSpec
    from tests.core.test_reading_equivalence import _KafkaRecord, _general, _wire

    bodies = {"plain": b'{"model": "m", "ts": %d, "features": {"x": %d.5, "c": "v"}}', "extra": b'{"model": "m", "ts": %d, "request_id": "r", "features": {"x": %d}}',
              "bad": b'{"model": "m", "ts": %d, "features": {"x": %d}', "no_ts": b'{"model": "m", "tss": %d, "features": {"x": %d}}'}  # fmt: skip
    raws = [bodies[k] % (1_767_225_600_000 + i, i) for i, k in enumerate(kinds)]
    recs = [ik.InputRecord(raw, SourcePosition("t", 1, 7 + i, None)) for i, raw in enumerate(raws)]
    consumer = [_KafkaRecord(raw, 7 + i, None, []) for i, raw in enumerate(raws)]
    spec = MonitorSpec()
    assert _wire(ik.read_inference_wire(spec, "t", 1, consumer)) == _wire(ik.as_wire(_general(spec, recs)))
