"""Records the runtime writes besides state: re-keyed input records and dead letters that always fit.

With ``state_partitioning: model`` every input record is sent, unchanged, to the repartition
topic keyed by its model; where it came from travels in headers, so alerts and dead letters
point at the record the model's owner produced.
"""

from __future__ import annotations

from typing import Any

import orjson

from stream_monitor.core.events import DEAD_LETTER_ORIGINAL_BYTES, DEAD_LETTER_OVERHEAD, DeadLetter, SourcePosition

SOURCE_HEADER = "sm-source"  # "topic\x1fpartition\x1foffset" of the original record
KIND_HEADER = "sm-kind"  # b"inference" | b"label"


def model_of(value: bytes | None) -> str:
    """The ``model`` of a raw record, or "" when there is none (it then dead-letters downstream).

    >>> model_of(b'{"model": "m1"}'), model_of(b"not json"), model_of(b'{"model": 3}')
    ('m1', '', '')
    """
    if not value:
        return ""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return ""
    model = obj.get("model") if isinstance(obj, dict) else None
    return model if isinstance(model, str) else ""


def forward_headers(topic: str, partition: int, offset: int, is_label: bool) -> list[tuple[str, bytes]]:
    """Headers of a re-keyed record: its source position and whether it is a label event."""
    return [(SOURCE_HEADER, f"{topic}\x1f{partition}\x1f{offset}".encode()), (KIND_HEADER, b"label" if is_label else b"inference")]


def source_of(record: Any, topic: str, partition: int) -> tuple[SourcePosition, bool]:
    """(where a re-keyed record came from, is it a label event); its own position when headers are bad.

    >>> from types import SimpleNamespace as R
    >>> source_of(R(headers=forward_headers("in", 2, 7, True), offset=1, timestamp=5), "rp", 0)
    (SourcePosition(topic='in', partition=2, offset=7, timestamp_ms=5), True)
    >>> source_of(R(headers=[(SOURCE_HEADER, b"in\\x1fx\\x1f7")], offset=1, timestamp=5), "rp", 0)[0].topic
    'rp'
    """
    headers = dict(record.headers or ())
    src = headers.get(SOURCE_HEADER, b"").decode("utf-8", "replace").split("\x1f")
    position = SourcePosition(topic, partition, record.offset, record.timestamp)
    if len(src) == 3 and src[1].isdigit() and src[2].isdigit():
        position = SourcePosition(src[0], int(src[1]), int(src[2]), record.timestamp)
    return position, headers.get(KIND_HEADER) == b"label"


def fitted_dead_letter(dl: DeadLetter, limit: int, max_original_bytes: int = DEAD_LETTER_ORIGINAL_BYTES) -> tuple[bytes, bool]:
    """(the dead letter as sent, was its original cut): keeps the original up to what ``limit`` bytes allow.

    :meth:`DeadLetter.to_json` keeps the original whole up to ``max_original_bytes`` (the configured
    ``limits.dead_letter_original_bytes``), else its size, SHA-256 and first bytes; here that cap is
    lowered further when the producer's request size ``limit`` is smaller.
    """
    cap = max(0, min(max_original_bytes, limit - DEAD_LETTER_OVERHEAD))
    value = dl.to_json(cap)
    return value, len(dl.raw) > cap
