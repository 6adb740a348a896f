"""Reading a batch of records into rows (``core/intake.py``) against reading them record by record.

``read_inference`` builds rows of the usual shape directly, and ``read_inference_wire`` (what
``run`` sends to the internal topic) builds their wire lists directly; both against reading record
by record the general way (``decode_inference``, ``inference_row``, ``row_list``): the same rows,
the same bytes on the wire, the same dead letters with the same words. The record strategies are
those of ``test_optimisation_equivalence`` (the fast decode against pydantic).
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.core import events as ev
from stream_monitor.core import exchange
from stream_monitor.core import intake as ik
from stream_monitor.core.events import SourcePosition
from stream_monitor.core.intake import InputRecord
from stream_monitor.core.spec import MonitorSpec
from tests.core.test_optimisation_equivalence import _event, _keys, _model_name, _mostly, _raw, _scalar, _typed, _value

_KafkaRecord = namedtuple("_KafkaRecord", "value offset timestamp headers")
_SMALL = MonitorSpec().model_copy(update={"max_record_bytes": 60})  # oversize records too (validation asks for 1 KiB)


def _general(spec: MonitorSpec, recs: list[InputRecord]) -> ik.Intake:
    out = ik.Intake(records=len(recs))
    for rec in recs:
        ik._read_record(rec, {}, spec.max_record_bytes, out)
    return out


_FIELDS = list(ev.InferenceEvent.model_fields)  # what judging reads of an event (rows of the usual shape carry an EventView)


def _rows(intake: ik.Intake) -> Any:
    return {
        m: [(r.kind, r.key, r.position, _typed({k: getattr(r.event, k) for k in _FIELDS}), r.problems, r.original) for r in rows]
        for m, rows in intake.rows.items()
    }


def _dead(dls: list[ev.DeadLetter]) -> list[Any]:
    return [[str(d.reason), d.detail, d.raw, d.position, d.processed] for d in dls]


def _wire(intake: ik.WireIntake) -> Any:
    return {m: exchange.encode_row_lists(m, rows) for m, rows in intake.rows.items()}, _dead(intake.dead_letters), intake.invalid_by_reason, intake.records


_batch = st.lists(
    st.tuples(
        st.one_of(
            st.integers(0, 3).flatmap(lambda k: _event if k else st.one_of(st.dictionaries(_keys, _value, max_size=6), _value)).map(_raw),
            st.sampled_from([b"", b"{oops", b"\xff\xfe", b'{"model": "m", "features": {"x": NaN}}', b'{"model": "m", "ts": 5, "features": {"x": 1e400}}']),
        ),
        st.sampled_from([None, -1, 0, 1_767_225_600_000]),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=_batch, small=st.booleans())
def test_batch_reading_equals_reading_record_by_record(batch: list[tuple[bytes, int | None]], small: bool) -> None:
    spec = _SMALL if small else MonitorSpec()
    recs = [InputRecord(raw, SourcePosition("t", 1, 7 + i, ts)) for i, (raw, ts) in enumerate(batch)]
    reference = _general(spec, recs)
    got = ik.read_inference(spec, recs)
    assert _rows(got) == _rows(reference)
    assert [(r.key, r.position) for r in got.ordered] == [(r.key, r.position) for r in reference.ordered]
    assert _dead(got.dead_letters) == _dead(reference.dead_letters) and got.invalid_by_reason == reference.invalid_by_reason
    consumer = [_KafkaRecord(raw or None if i % 2 else raw, 7 + i, ts, []) for i, (raw, ts) in enumerate(batch)]  # a tombstone reads as b""
    assert _wire(ik.read_inference_wire(spec, "t", 1, consumer)) == _wire(ik.as_wire(reference))


def _judged(rows: list[exchange.Row]) -> list[Any]:
    """What judging reads of rows (in key order: ``read_inference_rows`` gives them model by model; events by repr: NaN).
    Not ``ts``: a row off the internal topic carries its event time there, ``key[0]``, whether it came from ``ts`` or not."""
    fields = [k for k in _FIELDS if k != "ts"]
    return sorted(((r.kind, r.key, r.position, r.carrier, r.original, repr(_typed({k: getattr(r.event, k) for k in fields})), list(r.problems)) for r in rows),
                  key=lambda t: (t[1], t[2].offset))  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=_batch, small=st.booleans(), copies=st.sampled_from([1, 40]))
def test_rows_read_here_are_the_rows_read_record_by_record(batch: list[tuple[bytes, int | None]], small: bool, copies: int) -> None:
    """``state_partitioning: input`` reads a batch with ``read_inference_rows`` (the internal topic's rows, read back):
    the rows of the general reading, each carried by its own record and keeping its bytes, and its dead letters (40
    copies: the scan too)."""
    spec = _SMALL if small else MonitorSpec()
    batch = batch * copies
    recs = [InputRecord(raw, SourcePosition("t", 1, 7 + i, ts)) for i, (raw, ts) in enumerate(batch)]
    reference = _general(spec, recs)
    for r in reference.ordered:
        r.carrier = ("t", 1, r.position.offset)
    consumer = [_KafkaRecord(raw or None if i % 2 else raw, 7 + i, ts, []) for i, (raw, ts) in enumerate(batch)]  # a tombstone reads as b""
    rows, dead = ik.read_inference_rows(spec, "t", 1, consumer)
    assert _judged(rows) == _judged(reference.ordered)
    assert _dead(dead) == _dead(reference.dead_letters)


def test_batch_reading_of_the_benchmark_shape_takes_the_direct_path() -> None:
    """The usual records never reach the general path (else the direct paths would be dead code)."""
    from bench.workload import throughput_events

    raws = throughput_events(50)
    recs = [InputRecord(raw, SourcePosition("t", 0, i, None)) for i, raw in enumerate(raws)]
    general = ik._read_record
    ik._read_record = None  # type: ignore[assignment]
    try:
        rows = ik.read_inference(MonitorSpec(), recs)
        wire = ik.read_inference_wire(MonitorSpec(), "t", 0, [_KafkaRecord(raw, i, None, None) for i, raw in enumerate(raws)])
    finally:
        ik._read_record = general
    assert not rows.dead_letters and not wire.dead_letters and len(rows.ordered) == 50
    assert _wire(wire) == _wire(ik.as_wire(_general(MonitorSpec(), recs)))


def test_wire_reading_of_a_formatted_topic_is_reading_it_as_objects() -> None:
    from tests.core.test_formats import FEATURES, MODEL_HEADERS, _request, _response

    spec = MonitorSpec.model_validate({"input_formats": {"req": {"kind": "oip", "feature_names": list(FEATURES)}, "resp": {"kind": "oip"}}})
    bad = b'{"id": "q-9", "inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64", "data": [1]}]}'
    for topic, raws in (("req", [_request("q-1"), bad, b"{oops"]), ("resp", [_response("q-1")])):
        consumer = [_KafkaRecord(raw, i, 1_000 + i, list(MODEL_HEADERS)) for i, raw in enumerate(raws)]
        objects = ik.read_inference(spec, [InputRecord(r.value, SourcePosition(topic, 0, r.offset, r.timestamp), r.headers) for r in consumer])
        assert sum(map(len, objects.rows.values())) >= 1
        assert _wire(ik.read_inference_wire(spec, topic, 0, consumer)) == _wire(ik.as_wire(objects))
        for r in objects.ordered:  # and as state_partitioning: input judges them: each row keeps its record's bytes
            r.carrier = (topic, 0, r.position.offset)
        rows, dead = ik.read_inference_rows(spec, topic, 0, consumer)
        assert _judged(rows) == _judged(objects.ordered) and _dead(dead) == _dead(objects.dead_letters)


# --- labels: read_labels_wire (the direct path of the usual label shape) against read_labels (pydantic) ---

_label = st.fixed_dictionaries(
    {},
    optional={
        "event_id": _mostly(st.one_of(st.text(max_size=4), st.integers(), st.none(), st.sampled_from(["", "e1"]))),
        "model": _model_name,
        "ts": _mostly(st.one_of(st.integers(0, 32503680000000), st.none(), st.floats(0, 1e13), st.sampled_from(["2026-01-01T00:00:00Z", "17", "2026-01-01 00:00", 32503680000001, -1, True]))),
        "label": _mostly(_scalar),
        "extra": _value,
        "model_version": _value,
    },
)
_label_batch = st.lists(
    st.tuples(
        st.one_of(
            st.integers(0, 3).flatmap(lambda k: _label if k else st.one_of(st.dictionaries(_keys, _value, max_size=6), _value)).map(_raw),
            st.sampled_from([b"", b"{oops", b"\xff\xfe", b'{"event_id": "e", "model": "m", "label": NaN}', b'{"event_id": "e", "model": "m", "ts": 5, "label": 1e400}']),
        ),
        st.sampled_from([None, -1, 0, 1_767_225_600_000, 32503680000001]),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=_label_batch, small=st.booleans())
def test_label_wire_reading_equals_reading_labels_the_general_way(batch: list[tuple[bytes, int | None]], small: bool) -> None:
    """Rows (as wire bytes), dead letters (reason, words, bytes, position) and counts as :func:`read_labels` gives them."""
    recs = [InputRecord(raw, SourcePosition("labels", 2, 7 + i, ts)) for i, (raw, ts) in enumerate(batch)]
    consumer = [_KafkaRecord(raw or None if i % 2 else raw, 7 + i, ts, []) for i, (raw, ts) in enumerate(batch)]  # a tombstone reads as b""
    limit = ik.LABEL_MAX_BYTES
    ik.LABEL_MAX_BYTES = 60 if small else limit  # oversize records too, on both paths
    try:
        reference = ik.read_labels(recs)
        got = ik.read_labels_wire("labels", 2, consumer)
    finally:
        ik.LABEL_MAX_BYTES = limit
    assert _wire(got) == _wire(ik.as_wire(reference))


def test_label_values_are_what_pydantic_validates() -> None:
    """The accepted shape gives LabelEvent's values; every refusal is one pydantic also refuses or words differently."""
    ok = [
        {"event_id": "e", "model": "m", "label": 1},
        {"event_id": "e", "model": "m", "label": None, "ts": "2026-01-01T00:00:00Z", "extra": [1]},
        {"event_id": "é", "model": "x" * 256, "label": True, "ts": 1.9},
        {"event_id": "e", "model": "m", "label": "cat", "ts": "17"},
    ]
    for obj in ok:
        e = ev.LabelEvent.model_validate(obj)
        assert _typed(ev.label_values(obj)) == _typed((e.event_id, e.model, e.ts, e.label))
    refused = [
        {"model": "m", "label": 1},  # no event_id
        {"event_id": "", "model": "m", "label": 1},
        {"event_id": 7, "model": "m", "label": 1},  # pydantic takes no integer id for a label
        {"event_id": "e", "model": "", "label": 1},
        {"event_id": "e", "model": "x" * 257, "label": 1},
        {"event_id": "e", "model": "m"},  # label is required
        {"event_id": "e", "model": "m", "label": [1]},
        {"event_id": "e", "model": "m", "label": 1, "ts": "yesterday"},
        {"event_id": "e", "model": "m", "label": 1, "ts": True},
    ]
    for obj in refused:
        assert ev.label_values(obj) is None
        assert isinstance(ev.decode_label(orjson.dumps(obj), 5), ev.DeadLetter)


def test_label_wire_reading_of_the_benchmark_shape_takes_the_direct_path() -> None:
    """The bench's labels (``bench/compare.label_events``) never reach the general path, and give its bytes."""
    from bench.compare import label_events
    from bench.workload import throughput_events

    raws = [raw for _, raw in label_events(throughput_events(60))]
    consumer = [_KafkaRecord(raw, i, 1_000 + i, None) for i, raw in enumerate(raws)]
    recs = [InputRecord(raw, SourcePosition("l", 0, i, 1_000 + i)) for i, raw in enumerate(raws)]
    general = ik.read_labels
    ik.read_labels = None  # type: ignore[assignment]
    try:
        wire = ik.read_labels_wire("l", 0, consumer)
    finally:
        ik.read_labels = general
    assert not wire.dead_letters and sum(map(len, wire.rows.values())) == 30
    assert _wire(wire) == _wire(ik.as_wire(ik.read_labels(recs)))


@settings(max_examples=300, deadline=None)
@given(event_id=st.text(min_size=1, max_size=4), model=st.text(min_size=1, max_size=4), ts=st.integers(0, 32503680000000), label=_scalar)
def test_joined_event_is_what_model_construct_builds(event_id: str, model: str, ts: int, label: Any) -> None:
    """``core/joins.py``'s joined event (``events.joined_event``) against ``InferenceEvent.model_construct``: values, fields set, extras."""
    got = ev.joined_event(event_id, model, ts, label)
    ref = ev.InferenceEvent.model_construct(event_id=event_id, model=model, ts=ts, label=label)
    assert _typed(got.__dict__) == _typed(ref.__dict__) and list(got.__dict__) == list(ref.__dict__)
    assert (got.__pydantic_fields_set__, got.__pydantic_extra__, got.__pydantic_private__) == (ref.__pydantic_fields_set__, ref.__pydantic_extra__, ref.__pydantic_private__)
