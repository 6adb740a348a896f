"""State items of the event-time order and of the labels waiting for their prediction (see ``core/state.py``).

Same encoding rules as every state item: a MessagePack map with ``format`` and ``kind``, checked
field by field on decoding; anything else raises :class:`StateFormatError`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from stream_monitor.core.state import FORMAT_VERSION, StateFormatError, _pack, _unpack


def encode_order(inference: tuple[Any, dict], labels: tuple[Any, dict], seen: dict[tuple[str, int], int], prediction_time: int | None) -> bytes:
    """The event-time order item: per merger its frontier and each source's latest time; carrier offsets read."""

    def merger(frontier: Any, latest: dict) -> dict[str, Any]:
        return {
            "frontier": list(frontier) if frontier is not None else None,
            "sources": [[t, p, when] for (t, p), when in latest.items()],
        }

    return _pack(
        {
            "format": FORMAT_VERSION, "kind": "order", "inference": merger(*inference), "labels": merger(*labels),
            "seen": [[t, p, o] for (t, p), o in seen.items()], "prediction_time": prediction_time,
        }
    )  # fmt: skip


class OrderRecord(NamedTuple):
    """A decoded event-time order item."""

    inference: tuple[tuple[int, int, int] | None, dict[tuple[str, int], int]]
    labels: tuple[tuple[int, int, int] | None, dict[tuple[str, int], int]]
    seen: dict[tuple[str, int], int]
    prediction_time: int | None


def _triples(obj: Any, what: str) -> dict[tuple[str, int], int]:
    if type(obj) is not list or not all(
        type(x) is list and len(x) == 3 and type(x[0]) is str and type(x[1]) is int and type(x[2]) is int for x in obj
    ):
        raise StateFormatError(f"order item: {what} is not a list of [topic, partition, integer]")
    return {(t, p): v for t, p, v in obj}


def decode_order(blob: bytes) -> OrderRecord:
    """Decode and check the event-time order item; raise :class:`StateFormatError` if it is not one."""
    obj = _unpack(blob, "order")

    def merger(name: str) -> tuple[tuple[int, int, int] | None, dict[tuple[str, int], int]]:
        m = obj.get(name)
        if type(m) is not dict:
            raise StateFormatError(f"order item: {name} is not a map")
        frontier = m.get("frontier")
        if frontier is not None and not (type(frontier) is list and len(frontier) == 3 and all(type(x) is int for x in frontier)):
            raise StateFormatError(f"order item: {name}.frontier is not three integers")
        return (tuple(frontier) if frontier is not None else None), _triples(m.get("sources"), f"{name}.sources")  # type: ignore[return-value]

    pt = obj.get("prediction_time")
    if pt is not None and type(pt) is not int:
        raise StateFormatError("order item: prediction_time is not an integer")
    return OrderRecord(merger("inference"), merger("labels"), _triples(obj.get("seen"), "seen"), pt)


def encode_waiting(blobs: list[bytes]) -> bytes:
    """The item of labels waiting for their prediction: rows records (:mod:`stream_monitor.core.exchange`)."""
    return _pack({"format": FORMAT_VERSION, "kind": "waiting", "rows": list(blobs)})


def decode_waiting(blob: bytes) -> list[bytes]:
    """The rows records of a waiting-labels item (checked by the caller's rows decoder)."""
    rows = _unpack(blob, "waiting").get("rows")
    if type(rows) is not list or not all(type(r) is bytes for r in rows):
        raise StateFormatError("waiting item: rows is not a list of byte strings")
    return rows
