"""Records the runtime writes besides state: rows records for the models' owners and dead letters that always fit.

With ``state_partitioning: model`` (the default) input records are read where they are and each
model's rows (``core/exchange.py``) go to the internal topic keyed by model; the rows carry where
their record came from, so alerts and dead letters point at the original record.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from stream_monitor.core.events import DEAD_LETTER_ORIGINAL_BYTES, DEAD_LETTER_OVERHEAD, DeadLetter, DeadLetterReason, SourcePosition, format_event_time
from stream_monitor.core.exchange import INFERENCE, Row, encode_rows

ROWS_PER_RECORD = 1000  # rows of one model per internal record (fewer when they would not fit)


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


def late_dead_letter(task: Any, row: Row, max_lateness_seconds: float) -> DeadLetter:
    """The ``late`` dead letter of a row that came after ``task`` (a PartitionMonitor) judged past its event time."""
    merger = task.order if row.kind == INFERENCE else task.label_order
    frontier = merger.frontier[0] if merger.frontier is not None else row.key[0]
    detail = (
        f"event time {format_event_time(row.key[0])} came after events up to {format_event_time(frontier)} "
        f"were judged (more than max_lateness_seconds={max_lateness_seconds:g} behind its partition)"
    )
    return DeadLetter(DeadLetterReason.LATE, detail, row.raw(), row.position)
