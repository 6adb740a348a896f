"""Idle clocks of the judging tasks: the last resort for an input partition whose reader is gone.

Readers announce when their input partition is caught up (:meth:`Forwarder.announce`), which is
what normally lets an order go on without a source; this clock only covers a reader that sends
nothing at all for ``kafka.idle_timeout_ms`` (5 min by default).

A caught-up announcement does not make a source idle at once when it has sent before: it holds the
order at its latest time for ``kafka.caught_up_grace_ms`` (5 s) from the first announcement since it
last sent (repeats do not extend it), then it is marked idle — unless it sends again first. Every
source caught up is no exception (an announcement is as old as the hop that brought it: another
reader's may be stale). Records produced to a caught-up partition soon after — labels trickling in,
rows of a reader killed before they were committed, a burst its reader has not fetched yet — are
then judged in order instead of coming back ``late``.

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

    def __init__(self, timeout_ms: int, clock: Callable[[], float] = time.monotonic, grace_ms: int = 5000) -> None:
        self.timeout = timeout_ms / 1000.0
        self.grace = grace_ms / 1000.0
        self.clock = clock
        self._arrived: dict[tuple[int, Hashable], float] = {}  # (task partition, source) -> last arrival
        self._caught_up: dict[tuple[int, Hashable], float] = {}  # (task partition, source) -> first announcement since it sent

    def arrived(self, task: int, sources: Iterable[Hashable], caught_up: bool = False) -> None:
        """``sources`` sent ``task`` rows or progress just now (or count as having sent, after a restore).

        ``caught_up``: what they sent is a caught-up announcement (its grace starts, if not started).
        """
        now = self.clock()
        arrived, announced = self._arrived, self._caught_up
        for source in sources:
            arrived[(task, source)] = now
            if caught_up:
                announced.setdefault((task, source), now)
            elif announced:
                announced.pop((task, source), None)

    def mark_idle(self, task: int, monitor: PartitionMonitor) -> None:
        """Mark idle, in ``monitor``'s orders, the sources silent for ``task`` longer than the timeout."""
        now = self.clock()
        for merger in (monitor.order, monitor.label_order):
            for source in list(merger.caught_up_sources):
                if now - self._caught_up.setdefault((task, source), now) >= self.grace:
                    merger.idle(source)
            for source in list(merger.latest):
                if source not in merger.idle_sources and now - self._arrived.get((task, source), 0.0) > self.timeout:
                    merger.idle(source)
