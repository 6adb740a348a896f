"""Reading by shape (``core/scan.py``) against reading record by record: the same rows, the same bytes on the wire.

``read_inference_wire`` with ``scan_shapes`` (what ``run`` reads with) against the same batch read without
(``core/intake.py``'s loop, itself checked against the general reading in ``test_reading_equivalence``): for
batches of records of a few shapes — key orders, spacing, models — whose values are every kind of JSON scalar
written several ways (17-digit floats, exponents, -0, integers of 19 and 20 digits, texts with escapes and
bytes beyond ASCII, booleans, null, nested values), mixed with records that are not JSON at all.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.core import exchange
from stream_monitor.core import intake as ik
from stream_monitor.core import scan as sc
from stream_monitor.core.spec import MonitorSpec
from tests.core.test_reading_equivalence import _KafkaRecord as _Rec


pytestmark = pytest.mark.skipif(sc.kernel() is None, reason="no numba: nothing is scanned")


def _number(x: float, how: int) -> str:
    if how == 0:
        return repr(x)
    if how == 1:
        return f"{x:.6f}"
    if how == 2:
        return f"{x:.17g}" if "." in f"{x:.17g}" or "e" in f"{x:.17g}" else f"{x:.17g}.0"
    return f"{x:.3e}".replace("e+0", "E").replace("e-0", "e-")


_float = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.floats(-1e6, 1e6),
    st.sampled_from([0.0, -0.0, 1e-320, 5e-324, 1.7976931348623157e308, 9007199254740993.0, 0.1, 123456789.123456789]),
)
_text = st.one_of(st.sampled_from(["", "a", "v1", "v2", "cat", "é", 'q"', "b\\s", "tab\t", "\u2028"]), st.text(max_size=6))


@st.composite
def _scalar_text(draw: Any) -> str:
    """A JSON scalar, as text: every kind, written several ways (some not JSON at all)."""
    k = draw(st.integers(0, 12))
    if k <= 4:
        return _number(draw(_float), draw(st.integers(0, 3)))
    if k == 5:
        return str(draw(st.one_of(st.integers(-(10**6), 10**6), st.integers(-(2**64), 2**64), st.sampled_from([0, 10**18, 10**19, 2**63 - 1, 2**63, -(2**63)]))))
    if k == 6:
        return draw(st.sampled_from(["-0", "1e400", "-1e400", "1E2", "1e-400", "01", "1.", ".5", "+1", "NaN", "0e5", "2.5E+3"]))
    if k in (7, 8):
        return json.dumps(draw(_text), ensure_ascii=draw(st.booleans()))
    if k == 9:
        return draw(st.sampled_from(["true", "false"]))
    if k == 10:
        return draw(st.sampled_from(["{}", "[1]", '{"a": 1}']))
    return "null"


_SHAPES = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["m", "bench-v1", "other"]),
        "names": st.lists(st.sampled_from(["x", "y", "c", "z0", "d"]), min_size=0, max_size=4, unique=True),
        "fields": st.permutations(["event_id", "model", "model_version", "ts", "features", "prediction", "label", "latency_ms"]),
        "drop": st.sets(st.sampled_from(["event_id", "model_version", "ts", "prediction", "label", "latency_ms", "features"]), max_size=2),
        "space": st.sampled_from(["", " "]),
    }
)


@st.composite
def _record(draw: Any, shape: dict[str, Any]) -> bytes:
    sp = shape["space"]
    parts = []
    for f in shape["fields"]:
        if f in shape["drop"]:
            continue
        if f == "model":
            v = json.dumps(shape["model"])
        elif f == "features":
            v = "{" + f",{sp}".join(f'"{n}":{sp}{draw(_scalar_text())}' for n in shape["names"]) + "}"
        elif f == "ts":
            v = draw(st.one_of(st.integers(0, 2_000_000_000_000).map(str), st.sampled_from(["-1", "32503680000001", '"2026-01-01T00:00:00Z"', "null", "1.5"])))
        elif f in ("event_id", "model_version"):
            v = draw(st.one_of(st.from_regex(r"[0-9a-f]{4,8}", fullmatch=True).map(json.dumps), _scalar_text()))
        else:
            v = draw(_scalar_text())
        parts.append(f'"{f}":{sp}{v}')
    return ("{" + f",{sp}".join(parts) + "}").encode()


@st.composite
def _batch(draw: Any) -> list[bytes]:
    shapes = draw(st.lists(_SHAPES, min_size=1, max_size=3))
    n = draw(st.integers(sc.MIN_BATCH, 60))
    out = []
    for _ in range(n):
        if draw(st.integers(0, 15)) == 0:
            out.append(draw(st.sampled_from([b"", b"{oops", b"\xff\xfe", b'{"model": "m", "ts": 5, "features": {"x": 1e400}}', b"[]"])))
            continue
        # mostly a value change only (what a template holds), sometimes a whole new shape
        out.append(draw(_record(draw(st.sampled_from(shapes)))))
    return out


def _encoded(w: ik.WireIntake, step: int, pack: bool, code: bool) -> dict[str, list[bytes]]:
    return {m: [exchange.encode_row_lists(m, rows[i : i + step], pack=pack, code=code) for i in range(0, len(rows), step)] for m, rows in w.rows.items()}


def _rows(w: ik.WireIntake) -> dict[str, list[list[Any]]]:
    return {m: (rows.materialize() if type(rows) is sc.ScannedRows else list(rows)) for m, rows in w.rows.items()}


def _dead(w: ik.WireIntake) -> list[Any]:
    return [[str(d.reason), d.detail, d.raw, d.position] for d in w.dead_letters]


def _typed(x: Any) -> Any:
    """Values with their types (1.0 and 1 and True told apart, -0.0 from 0.0)."""
    if isinstance(x, (list, tuple)):
        return [_typed(v) for v in x]
    if isinstance(x, dict):
        return [(k, _typed(v)) for k, v in x.items()]
    return (type(x).__name__, repr(x))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=_batch(), topic=st.sampled_from(["t", "u"]), step=st.sampled_from([1000, 7]), small=st.booleans())
def test_reading_by_shape_gives_the_rows_and_bytes_of_reading_one_by_one(batch: list[bytes], topic: str, step: int, small: bool) -> None:
    spec = MonitorSpec().model_copy(update={"max_record_bytes": 120}) if small else MonitorSpec()
    recs = [_Rec(raw or None if i % 5 == 0 else raw, 40 + i, 1_767_225_600_000 + i, None) for i, raw in enumerate(batch)]
    want = ik.read_inference_wire(spec, topic, 3, recs, scan_shapes=False)
    got = ik.read_inference_wire(spec, topic, 3, recs)
    assert list(got.rows) == list(want.rows)  # the models in the same order
    for pack, code in ((True, True), (True, False), (False, False)):
        assert _encoded(got, step, pack, code) == _encoded(want, step, pack, code)
    assert _typed(_rows(got)) == _typed(_rows(want))
    assert _dead(got) == _dead(want) and got.invalid_by_reason == want.invalid_by_reason and got.records == want.records


def test_the_benchmark_shape_is_read_by_shape_whole() -> None:
    """The usual records all go through the compiled pass (else the scan would be dead code), and judging groups
    (which split the features) get the same rows as reading one by one."""
    from bench.workload import throughput_events
    from stream_monitor.core.split import split_row_lists

    raws = throughput_events(3000)
    recs = [_Rec(raw, i, None, None) for i, raw in enumerate(raws)]
    got = ik.read_inference_wire(MonitorSpec(), "bench-scan", 0, recs)
    want = ik.read_inference_wire(MonitorSpec(), "bench-scan", 0, recs, scan_shapes=False)
    rows = got.rows["bench-v1"]
    assert type(rows) is sc.ScannedRows and len(rows) == 3000 and not got.dead_letters
    assert _encoded(got, 1000, True, True) == _encoded(want, 1000, True, True)
    assert msgspec.msgpack.decode(_encoded(got, 1000, True, True)["bench-v1"][0])[0] == exchange.CODED_FORMAT
    spec = MonitorSpec.model_validate({"models": {"bench-v1": {"judging_groups": 2}}})
    assert split_row_lists(spec, "bench-v1", got.rows["bench-v1"]) == split_row_lists(spec, "bench-v1", want.rows["bench-v1"])


def test_a_shape_mixed_with_records_read_one_by_one_keeps_record_order() -> None:
    """Rows of one model from a shape and from the loop (an escape in a text) come out in record order, as objects."""
    raws = [b'{"model":"m","ts":%d,"features":{"x":%d.5,"c":"%s"}}' % (i, i, b"a\\u0062" if i % 7 == 3 else b"ab") for i in range(40)]
    recs = [_Rec(raw, i, None, None) for i, raw in enumerate(raws)]
    got = ik.read_inference_wire(MonitorSpec(), "mixed", 0, recs)
    rows = got.rows["m"]
    assert type(rows) is not sc.ScannedRows and [r[3] for r in rows] == list(range(40))
    assert {r[10]["c"] for r in rows} == {"ab"}  # ("a\u0062" is "ab" too)
    assert _rows(got) == _rows(ik.read_inference_wire(MonitorSpec(), "mixed", 0, recs, scan_shapes=False))


def test_a_hash_collision_is_told_apart_by_the_text() -> None:
    """Two texts of one hash (forced here) are still two categories."""
    raws = [b'{"model":"m","ts":%d,"features":{"c":"%s"}}' % (i, b"ab"[i % 2 : i % 2 + 1]) for i in range(20)]
    values = list(raws)
    t = sc.Template.of(raws[0])
    assert t is not None
    got = sc.scan(MonitorSpec(), "collide", values, [t], ik.plain_values)
    assert got is not None
    (one,), rest = got
    assert not rest.size
    s = int(t.feature_slots[0])
    one.ivals[:, s] = 42  # every text the same hash
    texts, codes = one.texts(s)
    assert texts == ["a", "b"] and codes.tolist() == [0, 1] * 10


def test_templates_refuse_what_they_cannot_hold() -> None:
    assert sc.Template.of(b'{"model":"m","ts":1,"features":{"x":1},"prediction":{"p":1}}') is None  # nested prediction
    assert sc.Template.of(b'{"model":"m","features":{"x":1}}') is None  # no ts
    assert sc.Template.of(b'{"model":"m","ts":1,"features":{}}') is None  # no features
    assert sc.Template.of(b'{"model":"m","ts":1,"features":{"x":1,"x":2}}') is None  # a name twice
    assert sc.Template.of(b'{"model":"\\u006d","ts":1,"features":{"x":1}}') is None  # an escape in the model's name
    t = sc.Template.of(b' { "model" : "m" , "ts" : 1 , "features" : { "x" : 1 } } ')
    assert t is not None and t.names == ("x",) and len(t.slots) == 2


def test_kernel_numbers_are_pythons_floats() -> None:
    """Every number the kernel reads itself is the float Python reads from its text (the rest it leaves to Python)."""
    rng = np.random.default_rng(5)
    xs = np.concatenate([rng.normal(0, 1e3, 3000), rng.random(2000), np.round(rng.normal(0, 100, 2000), 6)])
    texts = [repr(float(x)) for x in xs] + [f"{x:.6f}" for x in xs[:500]] + ["0.0", "-0.0", "1e22", "1e23", "9007199254740992.0", "9007199254740993.0"]
    raws = [b'{"model":"m","ts":1,"features":{"x":%s}}' % s.encode() for s in texts]
    t = sc.Template.of(raws[0])
    got = sc.scan(MonitorSpec(), "numbers", raws, [t], ik.plain_values)  # type: ignore[list-item]
    assert got is not None and not got[1].size
    (one,) = got[0]
    values = one.values(int(t.feature_slots[0]), np.arange(len(raws)))  # type: ignore[union-attr]
    assert [v.hex() for v in values] == [float(s).hex() for s in texts]


def test_integers_at_the_64_bit_edge_read_as_one_by_one() -> None:
    """Integers of 19 digits and more (beyond what the kernel holds) and at int64's edges: the rows of reading one by one."""
    edge = [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**18, 10**18 - 1, -(10**18), 10**19, 2**64, 99999999999999999999, 0, -0]
    shape = b'{"model":"m","ts":%d,"event_id":%d,"features":{"x":%d,"y":1.5},"latency_ms":%d}'
    raws = [shape % (i, 1, 1, 1) for i in range(4)]  # the shape learnt from these
    raws += [shape % (i, v, v, 2**53 if i % 2 else 5) for i, v in enumerate(edge * 3)]
    recs = [_Rec(raw, i, None, None) for i, raw in enumerate(raws)]
    got = ik.read_inference_wire(MonitorSpec(), "edges", 0, recs)
    want = ik.read_inference_wire(MonitorSpec(), "edges", 0, recs, scan_shapes=False)
    assert sc.templates_of("edges")  # (the shape was learnt: the kernel read these records)
    assert _encoded(got, 1000, True, True) == _encoded(want, 1000, True, True)
    assert _typed(_rows(got)) == _typed(_rows(want)) and _dead(got) == _dead(want)


def test_a_failure_of_the_scan_reads_the_batch_one_by_one(monkeypatch) -> None:
    """Reading never raises: were the compiled pass ever to fail, the batch is read one by one, nothing lost."""
    from bench.workload import throughput_events

    raws = throughput_events(40)
    recs = [_Rec(raw, i, None, None) for i, raw in enumerate(raws)]
    want = ik.read_inference_wire(MonitorSpec(), "broken", 0, recs, scan_shapes=False)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(ik, "scanned_rows", broken)
    got = ik.read_inference_wire(MonitorSpec(), "broken", 0, recs)
    assert type(got.rows["bench-v1"]) is not sc.ScannedRows and len(got.rows["bench-v1"]) == 40
    assert _encoded(got, 1000, True, True) == _encoded(want, 1000, True, True) and not got.dead_letters
