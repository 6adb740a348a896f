"""Reading records: raw bytes in, validated rows per model and dead letters out (the per-partition work).

This is the work done where the records are — by whichever instance owns the input partition —
before anything crosses to a model's judgement (:mod:`stream_monitor.core.exchange`): decoding
(the native contract or a model server's format), validation, record-level dead letters, each
event's event time and ordering key. It keeps no state, so any instance can do it for any
partition, and it never raises: a record whose reading fails is a ``processing_error`` dead letter.

>>> import orjson
>>> recs = [InputRecord(orjson.dumps({"model": "m", "ts": i, "features": {"x": 1.0}}), ev.SourcePosition("t", 0, i, None))
...         for i in range(3)] + [InputRecord(b"{", ev.SourcePosition("t", 0, 3, None))]
>>> out = read_inference(MonitorSpec(), recs)
>>> {m: len(rows) for m, rows in out.rows.items()}, [str(d.reason) for d in out.dead_letters]
({'m': 3}, ['invalid_json'])
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import orjson
import structlog

from stream_monitor.core import events as ev
from stream_monitor.core.batch import error_text
from stream_monitor.core.exchange import Row, inference_row, label_row, tie_of
from stream_monitor.core.formats import FormatError, to_native
from stream_monitor.core.spec import MonitorSpec

log = structlog.get_logger("stream_monitor.core")


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
    """Decode and validate inference records into rows per model; record-level problems are dead letters."""
    out = Intake(records=len(records))
    max_bytes = spec.max_record_bytes
    formats = {t: f for t, f in spec.input_formats.items() if f.kind != "native"}
    for rec in records:
        try:
            if formats and rec.position.topic in formats:
                _read_formatted(rec, formats[rec.position.topic], max_bytes, out)
                continue
            d = ev.decode_inference(rec.value, rec.position.timestamp_ms, rec.position, max_bytes)
            if isinstance(d, ev.DeadLetter):
                out.dead(d)
                continue
            out.row(d.event.model, inference_row(d, rec.position, tie_of(rec.value), 0, rec.value))
        except Exception as exc:  # reading never raises; if it ever does, the record alone is lost
            out.dead(failed(rec, exc))
    return out


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


def read_labels(records: Sequence[InputRecord]) -> Intake:
    """Decode and validate label records into rows per model, ordered by the label's ``ts`` (else its record's time)."""
    out = Intake(records=len(records))
    for rec in records:
        try:
            label = ev.decode_label(rec.value, rec.position.timestamp_ms, rec.position)
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


def merge_intake(result: Any, intake: Intake) -> None:
    """Add reading's counts and dead letters to a judgement's result (dead letters in record order)."""
    result.records += intake.records
    if intake.dead_letters:
        result.dead_letters[:0] = intake.dead_letters
        result.invalid_by_reason.update(intake.invalid_by_reason)
        result.dead_letters.sort(key=lambda dl: dl.position.offset if dl.position is not None else -1)
