"""Reading records: raw bytes in, validated rows per model and dead letters out (the per-partition work).

This is the work done where the records are — by whichever instance owns the input partition —
before anything crosses to a model's judgement (:mod:`stream_monitor.core.exchange`): decoding
(the native contract or a model server's format), validation, record-level dead letters, each
event's event time and ordering key. It keeps no state, so any instance can do it for any
partition, and it never raises: a record whose reading fails is a ``processing_error`` dead letter.

:func:`read_inference` gives :class:`Row` objects (judged in the same process: ``replay``, tests);
:func:`read_inference_wire` gives the same rows in their wire form (``run``'s reading, sent on to
the models' owners). Both build the rows of the usual record shape directly in one loop and read any
other record the general way (:func:`_read_record`).

>>> import orjson
>>> recs = [InputRecord(orjson.dumps({"model": "m", "ts": i, "features": {"x": 1.0}}), ev.SourcePosition("t", 0, i, None))
...         for i in range(3)] + [InputRecord(b"{", ev.SourcePosition("t", 0, 3, None))]
>>> out = read_inference(MonitorSpec(), recs)
>>> {m: len(rows) for m, rows in out.rows.items()}, [str(d.reason) for d in out.dead_letters]
({'m': 3}, ['invalid_json'])
"""

from __future__ import annotations

import hashlib
import operator
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated, Any, Sequence, Union

import msgspec
import orjson
import structlog

from stream_monitor.core import events as ev
from stream_monitor.core.batch import error_text
from stream_monitor.core.exchange import INFERENCE, LABEL, EventView, Row, decode_rows, encode_row_lists, inference_row, label_row, row_list, tie_of
from stream_monitor.core.formats import FormatError, to_native
from stream_monitor.core.scan import MIN_BATCH, ScannedRows, scan, scanned_rows, templates_of
from stream_monitor.core.spec import MonitorSpec

log = structlog.get_logger("stream_monitor.core")
tie_state = hashlib.blake2b(digest_size=8).copy  # a fresh state's copy, updated with a record: tie_of's digest without its keyword arguments


@dataclass(frozen=True, slots=True)
class InputRecord:
    """Raw bytes of one record and where it came from."""

    value: bytes
    position: ev.SourcePosition
    headers: Sequence[tuple[str, bytes]] | None = None  # Kafka headers (some input formats read them)


@dataclass(slots=True)
class Intake:
    """What reading a batch of records gave: rows per model (in record order) and dead letters."""

    records: int = 0
    rows: dict[str, list[Row]] = field(default_factory=dict)
    ordered: list[Row] = field(default_factory=list)  # every row, in record order
    dead_letters: list[ev.DeadLetter] = field(default_factory=list)
    invalid_by_reason: Counter[str] = field(default_factory=Counter)

    def dead(self, dl: ev.DeadLetter) -> None:
        """Count and keep one dead letter."""
        self.dead_letters.append(dl)
        self.invalid_by_reason[str(dl.reason)] += 1

    def row(self, model: str, row: Row) -> None:
        """Keep one row for its model."""
        self.ordered.append(row)
        rows = self.rows.get(model)
        if rows is None:
            rows = self.rows[model] = []
        rows.append(row)


def failed(rec: InputRecord, exc: BaseException) -> ev.DeadLetter:
    """The dead letter of a record whose processing raised ``exc`` (logged with the traceback)."""
    pos = rec.position
    log.error("record_processing_failed", topic=pos.topic, offset=pos.offset, error=error_text(exc), exc_info=exc)
    return ev.DeadLetter(ev.DeadLetterReason.PROCESSING_ERROR, error_text(exc), rec.value, pos)


def read_inference(spec: MonitorSpec, records: Sequence[InputRecord]) -> Intake:
    """Decode and validate inference records into rows per model; record-level problems are dead letters.

    Records of the usual shape (:func:`~stream_monitor.core.events.fast_values`) become rows here
    directly, their events an :class:`~stream_monitor.core.exchange.EventView` of the validated
    values (as after crossing the internal topic: what judging reads, without building a pydantic
    instance); any other goes through :func:`~stream_monitor.core.events.decode_inference`, which
    words its dead letter (:func:`_read_record`).
    """
    out = Intake(records=len(records))
    max_bytes = spec.max_record_bytes
    formats = {t: f for t, f in spec.input_formats.items() if f.kind != "native"}
    loads, values_of, not_json, plain = orjson.loads, ev.fast_values, orjson.JSONDecodeError, plain_values
    keep = out.row
    for rec in records:
        try:
            raw, pos = rec.value, rec.position
            native = len(raw) <= max_bytes and not (formats and pos.topic in formats)
            values = plain(raw) if native else None
            if values is None and native:  # not of the plainest shape: orjson and fast_values decide
                try:
                    obj = loads(raw)
                except not_json:
                    obj = None
                values = values_of(obj) if type(obj) is dict else None
            t = None if values is None else values[3]
            if t is None and values is not None:
                t = pos.timestamp_ms  # no ts: the record's time (the event-time rule, ev.event_time_of)
                if t is not None and not 0 <= t <= ev.MAX_EPOCH_MS:
                    t = None
            if t is None:  # not the usual shape, or no event time: read (and dead-lettered) the general way
                _read_record(rec, formats, max_bytes, out)
                continue
            keep(values[1], Row(INFERENCE, (t, tie_of(raw), 0), pos, EventView(*values), (), None, raw))  # type: ignore[index,misc]
        except Exception as exc:  # reading never raises; if it ever does, the record alone is lost
            out.dead(failed(rec, exc))
    return out


def _read_record(rec: InputRecord, formats: dict[str, Any], max_bytes: int, out: Intake) -> None:
    """One record read the general way (any format, any shape): its rows or its dead letter into ``out``."""
    try:
        if formats and rec.position.topic in formats:
            _read_formatted(rec, formats[rec.position.topic], max_bytes, out)
            return
        d = ev.decode_inference(rec.value, rec.position.timestamp_ms, rec.position, max_bytes)
        if isinstance(d, ev.DeadLetter):
            out.dead(d)
            return
        out.row(d.event.model, inference_row(d, rec.position, tie_of(rec.value), 0, rec.value))
    except Exception as exc:  # reading never raises; if it ever does, the record alone is lost
        out.dead(failed(rec, exc))


@dataclass(slots=True)
class WireIntake:
    """What :func:`read_inference_wire` gave: each model's rows in wire form (``core/exchange.py``), in record order, and dead letters."""

    records: int = 0
    rows: dict[str, list[list[Any]]] = field(default_factory=dict)
    dead_letters: list[ev.DeadLetter] = field(default_factory=list)
    invalid_by_reason: Counter[str] = field(default_factory=Counter)

    def take(self, intake: Intake) -> None:
        """Add what reading the general way gave (rows made wire lists)."""
        for dl in intake.dead_letters:
            self.dead_letters.append(dl)
            self.invalid_by_reason[str(dl.reason)] += 1
        for model, rows in intake.rows.items():
            lists = self.rows.get(model)
            if lists is None:
                lists = self.rows[model] = []
            lists += map(row_list, rows)


def as_wire(intake: Intake) -> WireIntake:
    """An :class:`Intake` (labels, or inference rows read as objects) in wire form."""
    out = WireIntake(records=intake.records)
    out.take(intake)
    return out


def read_inference_wire(spec: MonitorSpec, topic: str, partition: int, records: Sequence[Any], scan_shapes: bool = True) -> WireIntake:
    """:func:`read_inference` for the internal topic: each model's rows straight in wire form.

    ``records`` are the consumer's records of input partition (``topic``, ``partition``): anything
    with ``value`` (None is read as empty), ``offset``, ``timestamp`` and ``headers``. A record of
    the usual shape (:func:`~stream_monitor.core.events.fast_values`) becomes its wire row here,
    with no event or row object in between; any other is read by :func:`read_inference` (so its
    dead letter, problems and rows are those of the general path) and its rows made wire lists.
    ``tests/core/test_reading_equivalence.py`` checks that both give the same bytes.

    With ``scan_shapes`` (``run``'s reading), a batch of :data:`~stream_monitor.core.scan.MIN_BATCH` records or more is
    first matched against the shapes seen on ``topic`` (:mod:`stream_monitor.core.scan`): the records of a known shape
    become rows in one compiled pass, their features left as columns (:class:`~stream_monitor.core.scan.ScannedRows`),
    and only the others go through the loop below; ``tests/core/test_scan.py`` checks the same rows and bytes.
    """
    out = WireIntake(records=len(records))
    fmt = spec.input_formats.get(topic)
    if fmt is not None and fmt.kind != "native":
        out.take(read_inference(spec, [_input(topic, partition, r) for r in records]))
        return out
    if scan_shapes and len(records) >= MIN_BATCH:
        try:
            got = _read_by_shape(spec, topic, partition, records)
        except Exception as exc:  # never expected; if it happens, the batch is read one by one (nothing lost)
            log.error("reading_by_shape_failed", topic=topic, partition=partition, error=error_text(exc), exc_info=exc)
            got = None
        if got is not None:
            return got
    _read_wire_loop(spec, topic, partition, records, out)
    return out


def read_inference_rows(spec: MonitorSpec, topic: str, partition: int, records: Sequence[Any], scan_shapes: bool = True,
                        code: bool = True) -> tuple[list[Row], list[ev.DeadLetter]]:  # fmt: skip
    """The rows of :func:`read_inference_wire` as the judge of ``state_partitioning: model`` reads them, and the dead letters.

    ``state_partitioning: input`` judges where it reads: each model's rows are encoded as one rows record and read back
    (its float columns packed, its texts coded, as :class:`~stream_monitor.runtime.forward.Forwarder` sends them), so
    both modes judge the same rows the same fast way, without the internal topic. Each row is carried by its own
    record (:attr:`Row.carrier`: the committed offset follows the rows still waiting) and keeps its bytes (a dead
    letter of a row, ``late`` or with problems, holds the original record, as :func:`read_inference` gives it).
    """
    wire = read_inference_wire(spec, topic, partition, records, scan_shapes)
    rows: list[Row] = []
    for model, lists in wire.rows.items():
        if lists:
            rows += decode_rows(encode_row_lists(model, lists, code=code))[1]
    raws = {r.offset: r.value or b"" for r in records}
    for r in rows:
        p = r.pos
        offset = r.event.offset if p is None else p.offset
        r.carrier, r.original = (topic, partition, offset), raws[offset]
    return rows, wire.dead_letters


def _read_by_shape(spec: MonitorSpec, topic: str, partition: int, records: Sequence[Any]) -> WireIntake | None:
    """:func:`read_inference_wire` of a batch whose records of a known shape are scanned (None: no record was)."""
    got = scan(spec, topic, [r.value or b"" for r in records], templates_of(topic), plain_values)
    if got is None or not got[0]:
        return None
    scans, rest = got
    scanned = [(sc.template.model, scanned_rows(sc, topic, partition, records, INFERENCE)) for sc in scans]
    out = WireIntake(records=len(records))
    _read_wire_loop(spec, topic, partition, [records[i] for i in rest.tolist()], out)
    by_model = out.rows
    for model, rows in scanned:
        before = by_model.get(model)
        if before:  # rows of this model read one by one too, or of another shape: all as objects, in record order
            rows = sorted(_materialized(before) + rows.materialize(), key=_OFFSET)
        by_model[model] = rows
    if len(by_model) > 1:  # the models in order of their first record, as reading one by one gives them
        out.rows = dict(sorted(by_model.items(), key=lambda item: item[1][0][3]))
    return out


_OFFSET = operator.itemgetter(3)  # of a row in wire form


def _materialized(rows: list[list[Any]]) -> list[list[Any]]:
    return rows.materialize() if type(rows) is ScannedRows else rows


def _read_wire_loop(spec: MonitorSpec, topic: str, partition: int, records: Sequence[Any], out: WireIntake) -> None:
    """:func:`read_inference_wire`'s reading of records one by one (those no shape took) into ``out``."""
    by_model = out.rows
    max_bytes = spec.max_record_bytes
    loads, values_of, not_json, plain = orjson.loads, ev.fast_values, orjson.JSONDecodeError, plain_values
    fresh, from_bytes = tie_state, int.from_bytes
    tried = misses = 0  # by plain_values: when it takes fewer than half of them (records with more fields), orjson alone reads the rest
    for rec in records:
        try:
            raw = rec.value
            if raw is None:
                raw = b""
            values = None
            if len(raw) <= max_bytes and (misses < 16 or 2 * misses <= tried):
                tried += 1
                values = plain(raw)
                misses += values is None
            if values is None:  # not of the plainest shape: orjson and fast_values decide
                try:
                    obj = loads(raw) if len(raw) <= max_bytes else None
                except not_json:
                    obj = None
                values = values_of(obj) if type(obj) is dict else None
            if values is not None:
                event_id, model, version, ts, features, prediction, label, latency = values
                if ts is None:
                    ts = rec.timestamp
                    if ts is None or not 0 <= ts <= ev.MAX_EPOCH_MS:  # no event time: the dead letter is worded below
                        values = None
            if values is None:
                out.take(read_inference(spec, [_input(topic, partition, rec)]))
                continue
            rows = by_model.get(model)
            if rows is None:
                rows = by_model[model] = []
            tie = fresh()  # tie_of(raw), inline
            tie.update(raw)
            rows.append([INFERENCE, topic, partition, rec.offset, rec.timestamp, ts, from_bytes(tie.digest(), "big", signed=True), 0, event_id, version,
                         features, prediction, label, latency, []])  # fmt: skip
        except Exception as exc:  # reading never raises; if it ever does, the record alone is lost
            out.take(Intake(dead_letters=[failed(_input(topic, partition, rec), exc)]))


_I64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]  # (orjson reads integers from 2**64 up, and below -2**63, as floats)
_SCALAR = Union[str, _I64, float, bool, None]


class _Plain(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """An inference record of the plainest shape, as :func:`plain_values` reads it (msgspec validates the types while parsing)."""

    model: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    event_id: Union[str, _I64, None] = None
    model_version: Union[str, _I64, None] = None
    ts: Union[Annotated[int, msgspec.Meta(ge=0, le=ev.MAX_EPOCH_MS)], str, None] = None
    features: Union[dict[str, _SCALAR], None] = None
    prediction: Union[_SCALAR, dict[str, _SCALAR]] = None
    label: _SCALAR = None
    latency_ms: Union[Annotated[int, msgspec.Meta(ge=-(2**53), le=2**53)], float, None] = None


_PLAIN = msgspec.json.Decoder(_Plain).decode
_NOT_PLAIN = msgspec.DecodeError  # (msgspec.ValidationError is one)


def plain_values(raw: bytes) -> tuple[Any, str, Any, int | None, Any, Any, Any, float | None] | None:
    """``fast_values(orjson.loads(raw))`` for a record of the plainest shape, in one pass; None when unsure.

    The record must be a JSON object of only the fields of an inference event, each of a type
    :func:`~stream_monitor.core.events.fast_values` takes as it is (integers of 64 bits; ``ts`` an
    integer in range or text), which msgspec checks while parsing, without a dict of the record.
    Anything else (another field, a number orjson would read as a float, text ``ts`` that does not
    parse, JSON orjson would refuse) gives None: the caller reads it the usual way, so whatever
    this takes gives what orjson and ``fast_values`` give (``tests/core/test_plain_values.py``).

    >>> plain_values(b'{"model": "m", "event_id": 7, "ts": "1970-01-01T00:00:01Z", "features": {"x": 1}, "latency_ms": 5}')
    ('7', 'm', None, 1000, {'x': 1}, None, None, 5.0)
    >>> plain_values(b'{"model": "m", "extra": 1}') is None
    True
    """
    try:
        p = _PLAIN(raw)
    except (_NOT_PLAIN, RecursionError):
        return None
    event_id, version, ts, latency = p.event_id, p.model_version, p.ts, p.latency_ms
    if type(event_id) is int:
        event_id = str(event_id)
    if type(version) is int:
        version = str(version)
    if type(ts) is str:
        try:
            ts = ev.parse_event_time(ts)
        except (ValueError, TypeError, OverflowError):
            return None
    if type(latency) is int:
        latency = float(latency)
    return event_id, p.model, version, ts, p.features, p.prediction, p.label, latency


def _input(topic: str, partition: int, rec: Any) -> InputRecord:
    """The :class:`InputRecord` of a consumer's record of (``topic``, ``partition``)."""
    return InputRecord(rec.value or b"", ev.SourcePosition(topic, partition, rec.offset, rec.timestamp), rec.headers or None)


def _read_formatted(rec: InputRecord, fmt: Any, limit: int, out: Intake) -> None:
    """A record in a model server's format: each event it holds read as a native one.

    Dead letters keep the original record bytes; a record that cannot be read in its format is
    one ``format_error`` dead letter whose detail starts with the format's reason.
    """
    if len(rec.value) > limit:
        out.dead(ev.DeadLetter(ev.DeadLetterReason.OVERSIZE, f"record is {len(rec.value)} bytes, limit is {limit}", rec.value, rec.position))
        return
    events = to_native(rec.value, rec.headers, fmt)
    if isinstance(events, FormatError):
        out.dead(ev.DeadLetter(ev.DeadLetterReason.FORMAT_ERROR, f"{events.reason}: {events.detail}", rec.value, rec.position))
        return
    tie = tie_of(rec.value)
    for index, event in enumerate(events):
        d = ev.decode_inference(orjson.dumps(event), rec.position.timestamp_ms, rec.position, limit)
        if isinstance(d, ev.DeadLetter):
            out.dead(ev.DeadLetter(d.reason, d.detail, rec.value, rec.position))
            continue
        out.row(d.event.model, inference_row(d, rec.position, tie, index, rec.value))


LABEL_MAX_BYTES = 1_048_576  # label records are read to 1 MiB (decode_label's limit), whatever max_record_bytes says


def read_labels(records: Sequence[InputRecord]) -> Intake:
    """Decode and validate label records into rows per model, ordered by the label's ``ts`` (else its record's time)."""
    out = Intake(records=len(records))
    for rec in records:
        try:
            label = ev.decode_label(rec.value, rec.position.timestamp_ms, rec.position, LABEL_MAX_BYTES)
            if isinstance(label, ev.DeadLetter):
                out.dead(label)
                continue
            t = ev.event_time_of(label.ts, rec.position.timestamp_ms)
            if t is None:
                out.dead(ev.DeadLetter(ev.DeadLetterReason.INVALID_TIMESTAMP, "label has no ts and its record no timestamp", rec.value, rec.position))
                continue
            out.row(label.model, label_row(label, t, rec.position, tie_of(rec.value), rec.value))
        except Exception as exc:  # noqa: BLE001 - reading never raises
            out.dead(failed(rec, exc))
    return out


def read_labels_wire(topic: str, partition: int, records: Sequence[Any]) -> WireIntake:
    """:func:`read_labels` for the internal topic: each model's label rows straight in wire form.

    ``records`` are the consumer's records of label partition (``topic``, ``partition``), as for
    :func:`read_inference_wire`. A label of the usual shape (:func:`~stream_monitor.core.events.label_values`)
    becomes its wire row here, with no pydantic event or row object in between; any other is read
    by :func:`read_labels` (so its dead letter and rows are those of the general path).
    ``tests/core/test_reading_equivalence.py`` checks that both give the same bytes.
    """
    out = WireIntake(records=len(records))
    by_model = out.rows
    loads, values_of, not_json = orjson.loads, ev.label_values, orjson.JSONDecodeError
    for rec in records:
        try:
            raw = rec.value
            if raw is None:
                raw = b""
            try:
                obj = loads(raw) if len(raw) <= LABEL_MAX_BYTES else None
            except not_json:
                obj = None
            values = values_of(obj) if type(obj) is dict else None
            if values is not None:
                event_id, model, ts, label = values
                t = ts
                if t is None:
                    t = rec.timestamp
                    if t is None or not 0 <= t <= ev.MAX_EPOCH_MS:  # no event time: the dead letter is worded below
                        values = None
            if values is None:
                out.take(read_labels([_input(topic, partition, rec)]))
                continue
            rows = by_model.get(model)
            if rows is None:
                rows = by_model[model] = []
            rows.append([LABEL, topic, partition, rec.offset, rec.timestamp, t, tie_of(raw), 0, event_id, label, ts])
        except Exception as exc:  # reading never raises; if it ever does, the record alone is lost
            out.take(Intake(dead_letters=[failed(_input(topic, partition, rec), exc)]))
    return out


def merge_intake(result: Any, intake: Intake) -> None:
    """Add reading's counts and dead letters to a judgement's result (dead letters in record order)."""
    result.records += intake.records
    if intake.dead_letters:
        result.dead_letters[:0] = intake.dead_letters
        result.invalid_by_reason.update(intake.invalid_by_reason)
        result.dead_letters.sort(key=lambda dl: dl.position.offset if dl.position is not None else -1)
