"""An external sort for replay output: (key, bytes) pairs back in key order, in bounded memory."""

from __future__ import annotations

import heapq
import struct
import tempfile
from typing import IO, Iterator, Union

Key = tuple[Union[int, str], ...]

SPILL_AFTER = 200_000  # sorted outputs kept in memory before spilling sorted runs to disk


class SortedSpool:
    """Collects (sort key, bytes) pairs and gives the bytes back in key order.

    Beyond ``max_in_memory`` items, sorted runs go to temporary files and are merged on reading, so
    a replay that produces millions of dead letters stays in bounded memory. A run is plain data
    (:func:`encode_item`): key fields of 64-bit integers and UTF-8 strings, then the payload bytes.

    >>> s = SortedSpool(max_in_memory=2)
    >>> for k in (3, 1, 2, 0): s.add((k,), b"%d" % k)
    >>> list(s), len(s)
    ([b'0', b'1', b'2', b'3'], 4)
    >>> s.close()
    """

    def __init__(self, max_in_memory: int = SPILL_AFTER) -> None:
        self.max_in_memory = max_in_memory
        self._items: list[tuple[Key, bytes]] = []
        self._runs: list[IO[bytes]] = []
        self._count = 0

    def add(self, key: Key, payload: bytes) -> None:
        """Add one payload under its sort key."""
        self._items.append((key, payload))
        self._count += 1
        if len(self._items) >= self.max_in_memory:
            self._spill()

    def __len__(self) -> int:
        return self._count

    def _spill(self) -> None:
        self._items.sort(key=lambda kv: kv[0])
        run = tempfile.TemporaryFile(prefix="stream-monitor-replay-")  # noqa: SIM115 - closed in close()
        write = run.write
        for key, payload in self._items:
            write(encode_item(key, payload))
        self._runs.append(run)
        self._items = []

    @staticmethod
    def _read_run(run: IO[bytes]) -> Iterator[tuple[Key, bytes]]:
        run.seek(0)
        while True:
            item = read_item(run)
            if item is None:
                return
            yield item

    def __iter__(self) -> Iterator[bytes]:
        self._items.sort(key=lambda kv: kv[0])
        if not self._runs:
            return (payload for _, payload in self._items)
        runs = [self._read_run(r) for r in self._runs]
        merged = heapq.merge(*runs, iter(self._items), key=lambda kv: kv[0])
        return (payload for _, payload in merged)

    def close(self) -> None:
        """Drop everything, temporary files included."""
        for run in self._runs:
            run.close()
        self._runs = []
        self._items = []



_COUNT = struct.Struct(">B")
_INT = struct.Struct(">q")
_LEN = struct.Struct(">I")


def encode_item(key: Key, payload: bytes) -> bytes:
    """One spool record: field count, each field (``i`` + int64 or ``s`` + length + UTF-8), payload length, payload.

    >>> len(encode_item((1, "t"), b"x"))  # 1 + (1 + 8) + (1 + 4 + 1) + (4 + 1)
    21
    """
    parts = [_COUNT.pack(len(key))]
    for field in key:
        if isinstance(field, int):
            parts += [b"i", _INT.pack(field)]
        elif isinstance(field, str):
            data = field.encode("utf-8")
            parts += [b"s", _LEN.pack(len(data)), data]
        else:
            raise TypeError(f"sort key fields must be int or str, got {type(field).__name__}")
    parts += [_LEN.pack(len(payload)), payload]
    return b"".join(parts)


def _exact(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ValueError("truncated spool record")
    return data


def read_item(stream: IO[bytes]) -> tuple[Key, bytes] | None:
    """The next record written by :func:`encode_item`, or ``None`` at the end of the stream.

    >>> import io
    >>> read_item(io.BytesIO(encode_item((-5, "é"), b"payload")))
    ((-5, 'é'), b'payload')
    """
    head = stream.read(1)
    if not head:
        return None
    fields: list[int | str] = []
    for _ in range(_COUNT.unpack(head)[0]):
        kind = _exact(stream, 1)
        if kind == b"i":
            fields.append(_INT.unpack(_exact(stream, 8))[0])
        elif kind == b"s":
            fields.append(_exact(stream, _LEN.unpack(_exact(stream, 4))[0]).decode("utf-8"))
        else:
            raise ValueError(f"bad spool field type {kind!r}")
    payload = _exact(stream, _LEN.unpack(_exact(stream, 4))[0])
    return tuple(fields), payload
