"""Records the runtime writes besides state: rows records for the models' owners and dead letters that always fit;
and the rows of records judged where they are read (``state_partitioning: input``).

With ``state_partitioning: model`` (the default) input records are read where they are and each
model's rows (``core/exchange.py``) go to the internal topic keyed by model; the rows carry where
their record came from, so alerts and dead letters point at the original record.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from stream_monitor.core.events import DEAD_LETTER_ORIGINAL_BYTES, DEAD_LETTER_OVERHEAD, DeadLetter, DeadLetterReason, SourcePosition, format_event_time
from stream_monitor.core.exchange import INFERENCE, Row, encode_rows
from stream_monitor.core.intake import InputRecord, read_inference, read_inference_rows, read_labels
from stream_monitor.core.spec import MonitorSpec

ROWS_PER_RECORD = 1000  # rows of one model per internal record (fewer when they would not fit)


def read_here(spec: MonitorSpec, topic: str, partition: int, inputs: Sequence[Any], label_topic: str | None, scan_shapes: bool = True,
              code: bool = True) -> tuple[list[Row], list[DeadLetter]]:  # fmt: skip
    """``state_partitioning: input``: the rows of records judged where they are read, each carried by its own record, and the dead letters.

    A batch of the consumer's inference records (``inputs`` not :class:`InputRecord`) is read as the judge of
    ``state_partitioning: model`` reads rows off the internal topic (:func:`read_inference_rows`: same rows, same fast
    path); records one at a time (the poison guard's careful pass) and labels the general way.
    """
    if type(inputs[0]) is not InputRecord:
        return read_inference_rows(spec, topic, partition, inputs, scan_shapes, code)
    intake = read_labels(inputs) if topic == label_topic else read_inference(spec, inputs)  # type: ignore[arg-type]
    for row in intake.ordered:
        p = row.position
        row.carrier = (p.topic, p.partition, p.offset)
    return intake.ordered, intake.dead_letters


def rows_records(model: str, rows: list[Any], limit: int, encode: Callable[[str, list[Any]], bytes] = encode_rows) -> Iterator[bytes]:
    """One model's rows as rows records of at most ``limit`` bytes (halving the count until they fit).

    A single row larger than ``limit`` cannot exist: its record was at most ``max_record_bytes``
    and a row holds less than its JSON. ``encode`` makes one record of a chunk: ``encode_rows``
    of :class:`Row` objects, or ``encode_row_lists`` of a judging group's rows already in wire form.

    >>> from stream_monitor.core.events import decode_inference
    >>> from stream_monitor.core.exchange import inference_row
    >>> d = decode_inference(b'{"model": "m", "ts": 1, "features": {"x": "%s"}}' % (b"a" * 300), None)
    >>> rows = [inference_row(d, SourcePosition("t", 0, i, None), i, 0) for i in range(10)]
    >>> len(list(rows_records("m", rows, 100_000)))  # all ten rows (about 3 KB) in one record
    1
    >>> sizes = [len(v) for v in rows_records("m", rows, 2_000)]
    >>> len(sizes), all(size <= 2_000 for size in sizes)
    (2, True)
    """
    step = ROWS_PER_RECORD
    i = 0
    while i < len(rows):
        chunk = rows[i : i + step]
        value = encode(model, chunk)
        if len(value) > limit and len(chunk) > 1:
            step = max(1, len(chunk) // 2)
            continue
        yield value
        i += len(chunk)


def fitted_dead_letter(dl: DeadLetter, limit: int, max_original_bytes: int = DEAD_LETTER_ORIGINAL_BYTES) -> tuple[bytes, bool]:
    """(the dead letter as sent, was its original cut): keeps the original up to what ``limit`` bytes allow.

    :meth:`DeadLetter.to_json` keeps the original whole up to ``max_original_bytes`` (the configured
    ``limits.dead_letter_original_bytes``), else its size, SHA-256 and first bytes; here that cap is
    lowered further when the producer's request size ``limit`` is smaller.
    """
    cap = max(0, min(max_original_bytes, limit - DEAD_LETTER_OVERHEAD))
    value = dl.to_json(cap)
    return value, len(dl.raw) > cap


def late_rows_logged(task: Any, rows: list[Row]) -> dict[str, Any]:
    """What to log about ``late`` rows of ``task`` (a PartitionMonitor), to tell rows sent late from rows read again.

    Per carrying partition, the first and last offset of the records that carried them and how far
    the task had read before its last restore (``restored``: rows of records below it were read
    before) and since (``seen``); per source, how many rows.

    >>> from types import SimpleNamespace as R
    >>> from stream_monitor.core.ordering import Carriers, EventTimeMerger
    >>> task = R(order=EventTimeMerger(0), label_order=EventTimeMerger(0), carriers=Carriers({("rp", 1): 7}))
    >>> task.order.frontier = (60_000, 0, 0)
    >>> rows = [R(kind=0, key=(t, 0, 0), source=("in", 3), carrier=("rp", 1, o)) for t, o in ((20, 9), (80, 9), (10, 12))]
    >>> late_rows_logged(task, rows)  # doctest: +NORMALIZE_WHITESPACE
    {'rows': 3, 'sources': {'in-3': 3}, 'carriers': {'rp-1': {'offsets': [9, 12], 'restored': 7, 'seen': 7}},
     'event_times': ['1970-01-01T00:00:00.010Z', '1970-01-01T00:00:00.080Z'], 'frontier': '1970-01-01T00:01:00.000Z'}
    """
    sources: dict[str, int] = {}
    offsets: dict[tuple[str, int], list[int]] = {}
    for row in rows:
        name = f"{row.source[0]}-{row.source[1]}"
        sources[name] = sources.get(name, 0) + 1
        c = row.carrier
        if c is not None:
            span = offsets.setdefault((c[0], c[1]), [c[2], c[2]])
            span[0], span[1] = min(span[0], c[2]), max(span[1], c[2])
    carriers = task.carriers
    times = [row.key[0] for row in rows]
    frontier = task.order.frontier
    return {
        "rows": len(rows),
        "sources": sources,
        "carriers": {f"{tp[0]}-{tp[1]}": {"offsets": span, "restored": carriers.restored.get(tp), "seen": carriers.seen.get(tp)} for tp, span in offsets.items()},
        "event_times": [format_event_time(min(times)), format_event_time(max(times))],
        "frontier": format_event_time(frontier[0]) if frontier is not None else None,
    }


def late_dead_letter(task: Any, row: Row, max_lateness_seconds: float) -> DeadLetter:
    """The ``late`` dead letter of a row that came after ``task`` (a PartitionMonitor) judged past its event time."""
    merger = task.order if row.kind == INFERENCE else task.label_order
    frontier = merger.frontier[0] if merger.frontier is not None else row.key[0]
    detail = (
        f"event time {format_event_time(row.key[0])} came after events up to {format_event_time(frontier)} "
        f"were judged (more than max_lateness_seconds={max_lateness_seconds:g} behind its partition)"
    )
    return DeadLetter(DeadLetterReason.LATE, detail, row.raw(), row.position)
