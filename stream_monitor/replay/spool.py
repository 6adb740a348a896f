"""An external sort for replay output: (key, bytes) pairs back in key order, in bounded memory."""

from __future__ import annotations

import heapq
import pickle
import tempfile
from typing import IO, Any, Iterator

SPILL_AFTER = 200_000  # sorted outputs kept in memory before spilling sorted runs to disk


class SortedSpool:
    """Collects (sort key, bytes) pairs and gives the bytes back in key order.

    Beyond ``max_in_memory`` items, sorted runs go to temporary files (our own, pickled) and are
    merged on reading, so a replay that produces millions of dead letters stays in bounded memory.

    >>> s = SortedSpool(max_in_memory=2)
    >>> for k in (3, 1, 2, 0): s.add((k,), b"%d" % k)
    >>> list(s), len(s)
    ([b'0', b'1', b'2', b'3'], 4)
    >>> s.close()
    """

    def __init__(self, max_in_memory: int = SPILL_AFTER) -> None:
        self.max_in_memory = max_in_memory
        self._items: list[tuple[tuple[Any, ...], bytes]] = []
        self._runs: list[IO[bytes]] = []
        self._count = 0

    def add(self, key: tuple[Any, ...], payload: bytes) -> None:
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
        dump = pickle.dump
        for item in self._items:
            dump(item, run, protocol=pickle.HIGHEST_PROTOCOL)
        self._runs.append(run)
        self._items = []

    @staticmethod
    def _read_run(run: IO[bytes]) -> Iterator[tuple[tuple[Any, ...], bytes]]:
        run.seek(0)
        while True:
            try:
                yield pickle.load(run)  # noqa: S301 - a temporary file this process wrote
            except EOFError:
                return

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

