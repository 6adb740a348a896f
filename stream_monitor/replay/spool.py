"""An external sort for replay output: (key, bytes) pairs back in key order, in bounded memory."""

from __future__ import annotations

import heapq
from functools import partial
from itertools import chain
import struct
import tempfile
from typing import IO, Any, Callable, Iterator, Union

import msgpack

from stream_monitor.core.exchange import Row, decode_rows, encode_rows

Key = tuple[Union[int, str], ...]

SPILL_AFTER = 200_000  # sorted outputs kept in memory before spilling sorted runs to disk
RUN_BLOCK_ROWS = 4096  # rows per block of a spilled run of rows: what one run holds in memory while merged


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


class RowRuns:
    """Sorted runs of rows on disk, merged back in order: the spill of :class:`~stream_monitor.replay.engine._RowSorter`.

    A run is written in blocks of ``block_rows`` rows; a block is plain data, one MessagePack
    array: the models, one rows record per model (:func:`~stream_monitor.core.exchange.encode_rows`
    of that model's rows of the block, in order), the model of each row by its place in the
    models (bytes, so at most 256 models a block; more start a new block), and each row's original
    bytes (``None`` where it had none). Reading a block decodes each model's rows record once and
    lays the rows back in their order, original bytes included, so a spilled row is judged (and
    dead-lettered) as the row it was. Merging holds one block per run.

    >>> from stream_monitor.core.events import SourcePosition
    >>> from stream_monitor.core.exchange import INFERENCE, EventView
    >>> def row(t, model):
    ...     return Row(INFERENCE, (t, 0, 0), SourcePosition("t", 0, t, None), EventView(None, model, None, t, {}, None, None, None), original=b"%d" % t)
    >>> runs = RowRuns(key=lambda r: r.key, block_rows=2)
    >>> runs.write([row(1, "a"), row(3, "b"), row(5, "a")])
    >>> runs.write([row(2, "b"), row(4, "a")])
    >>> [(r.key[0], r.event.model, r.original) for r in runs.merged([row(0, "c")])]
    [(0, 'c', b'0'), (1, 'a', b'1'), (2, 'b', b'2'), (3, 'b', b'3'), (4, 'a', b'4'), (5, 'a', b'5')]
    >>> runs.close()
    """

    def __init__(self, key: Callable[[Row], Any], block_rows: int = RUN_BLOCK_ROWS) -> None:
        if block_rows < 1:
            raise ValueError(f"block_rows must be at least 1, got {block_rows}")
        self.key = key
        self.block_rows = block_rows
        self._runs: list[IO[bytes]] = []
        self._bounds: list[tuple[Any, Any]] = []  # each run's first and last key

    def __len__(self) -> int:
        """Runs written."""
        return len(self._runs)

    def write(self, rows: list[Row]) -> None:
        """One run: ``rows``, already in key order."""
        if not rows:
            return
        run = tempfile.TemporaryFile(prefix="stream-monitor-replay-rows-")  # noqa: SIM115 - closed in close()
        self._runs.append(run)
        self._bounds.append((self.key(rows[0]), self.key(rows[-1])))
        write, pack, size = run.write, _LEN.pack, self.block_rows
        for i in range(0, len(rows), size):
            for blob in _encode_blocks(rows[i : i + size]):
                write(pack(len(blob)))
                write(blob)

    def merged(self, rest: list[Row]) -> Iterator[Row]:
        """Every run's rows and ``rest`` (in key order too), in key order (equal keys: earlier runs first, ``rest`` last).

        Runs whose key ranges overlap are merged row by row; one that starts after every run
        before it ends (a replay of a file in event-time order: every run) follows as it is.
        """
        sources: list[tuple[Any, Any, int, Callable[[], Iterator[Row]]]] = [
            (first, last, i, partial(_read_blocks, run)) for i, (run, (first, last)) in enumerate(zip(self._runs, self._bounds))
        ]
        if rest:
            sources.append((self.key(rest[0]), self.key(rest[-1]), len(sources), partial(iter, rest)))
        sources.sort(key=lambda s: (s[0], s[2]))
        groups: list[list[tuple[Any, Any, int, Callable[[], Iterator[Row]]]]] = []
        end = None
        for src in sources:  # groups of overlapping ranges, each after the one before
            if groups and not end < src[0]:
                groups[-1].append(src)
                end = max(end, src[1])
            else:
                groups.append([src])
                end = src[1]
        return chain.from_iterable(_group_rows(g, self.key) for g in groups)

    def close(self) -> None:
        """Drop the runs (their temporary files)."""
        for run in self._runs:
            run.close()
        self._runs = []


def _group_rows(group: list[tuple[Any, Any, int, Callable[[], Iterator[Row]]]], key: Callable[[Row], Any]) -> Iterator[Row]:
    """The rows of one group of sources: merged when more than one (in source order, so ties go to the earlier)."""
    if len(group) == 1:
        return group[0][3]()
    return heapq.merge(*(src[3]() for src in sorted(group, key=lambda s: s[2])), key=key)


def _encode_blocks(rows: list[Row]) -> Iterator[bytes]:
    """``rows`` as one block (or several: at most 256 models a block)."""
    places: dict[str, int] = {}
    by_model: list[list[Row]] = []
    order = bytearray()
    originals: list[bytes | None] = []
    for r in rows:
        model = r.event.model
        place = places.get(model)
        if place is None:
            if len(places) == 256:
                yield _block(places, by_model, order, originals)
                places, by_model, order, originals = {}, [], bytearray(), []
            place = places[model] = len(places)
            by_model.append([])
        by_model[place].append(r)
        order.append(place)
        originals.append(r.original)
    if rows:
        yield _block(places, by_model, order, originals)


def _block(places: dict[str, int], by_model: list[list[Row]], order: bytearray, originals: list[bytes | None]) -> bytes:
    models = list(places)
    return msgpack.packb([models, [encode_rows(m, rs) for m, rs in zip(models, by_model)], bytes(order), originals], use_bin_type=True)


def _read_blocks(run: IO[bytes]) -> Iterator[Row]:
    """The rows of a run, block by block."""
    run.seek(0)
    read, unpack = run.read, _LEN.unpack
    while True:
        head = read(4)
        if not head:
            return
        blob = read(unpack(head)[0])
        _models, records, order, originals = msgpack.unpackb(blob, raw=False)
        rows = [iter(decode_rows(rec)[1]) for rec in records]
        out = [next(rows[place]) for place in order]
        for r, original in zip(out, originals):
            r.original = original
        yield from out


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
