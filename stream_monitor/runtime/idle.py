"""Idle clocks of the judging tasks: the last resort for an input partition whose reader is gone.

Readers announce when their input partition is caught up (:meth:`Forwarder.announce`), which is
what normally lets an order go on without a source; this clock only covers a reader that sends
nothing at all for ``kafka.idle_timeout_ms`` (5 min by default).

Every judging task expects every input partition (its *sources*). A source that sends a task
neither rows nor progress records for ``kafka.idle_timeout_ms`` (wall clock) is marked idle in
that task's event-time order only; another task it goes on sending to still waits for it.
"""

from __future__ import annotations

import time
from typing import Callable, Hashable, Iterable

from stream_monitor.core.monitor import PartitionMonitor


class IdleClocks:
    """When each source last sent each task something (``clock``: monotonic seconds)."""

    def __init__(self, timeout_ms: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout_ms / 1000.0
        self.clock = clock
        self._arrived: dict[tuple[int, Hashable], float] = {}  # (task partition, source) -> last arrival

    def arrived(self, task: int, sources: Iterable[Hashable]) -> None:
        """``sources`` sent ``task`` rows or progress just now (or count as having sent, after a restore)."""
        now = self.clock()
        arrived = self._arrived
        for source in sources:
            arrived[(task, source)] = now

    def mark_idle(self, task: int, monitor: PartitionMonitor) -> None:
        """Mark idle, in ``monitor``'s orders, the sources silent for ``task`` longer than the timeout."""
        now = self.clock()
        for merger in (monitor.order, monitor.label_order):
            for source in list(merger.latest):
                if source not in merger.idle_sources and now - self._arrived.get((task, source), 0.0) > self.timeout:
                    merger.idle(source)
