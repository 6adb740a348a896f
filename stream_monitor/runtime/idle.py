"""Idle clocks of the judging tasks: the last resort for an input partition whose reader is gone.

Readers announce when their input partition is caught up (:meth:`Forwarder.announce`), which is
what normally lets an order go on without a source; this clock only covers a reader that sends
nothing at all for ``kafka.idle_timeout_ms`` (5 min by default).

A caught-up announcement does not make a source idle at once when it has sent before: it holds the
order at its latest time until its partition has been quiet for ``kafka.caught_up_grace_ms`` (5 s),
then it is marked idle — unless it sends again first. *Quiet* is what the reader saw
(:class:`QuietWatch`): how long the partition's end has not moved since it was assigned, which the
announcement carries (or, where the judge's instance reads the partition too, its own watch as of the
announcement's arrival: :meth:`QuietWatch.here`), or, when no record in it is stamped within the
grace at its assignment (``kafka.grace_from_record_timestamps``), since longer than the grace. A partition still growing when its reader caught up waits the whole grace
from the announcement; one whose records were all there long before (a backlog read to its end, a
topic produced before the monitor started) has served its grace while it was being read, and goes
idle at once (read faster than the grace, it waits the rest). The grace runs from the first
announcement since the source last sent (repeats do not extend it; one that says the partition has
been quiet longer moves its start back). Every
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
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence

from kafka.errors import KafkaError

from stream_monitor.core.monitor import PartitionMonitor


class IdleClocks:
    """When each source last sent each task something (``clock``: monotonic seconds)."""

    def __init__(self, timeout_ms: int, clock: Callable[[], float] = time.monotonic, grace_ms: int = 5000) -> None:
        self.timeout = timeout_ms / 1000.0
        self.grace = grace_ms / 1000.0
        self.clock = clock
        self._arrived: dict[tuple[int, Hashable], float] = {}  # (task partition, source) -> last arrival
        self._caught_up: dict[tuple[int, Hashable], float] = {}  # (task partition, source) -> first announcement since it sent

    def arrived(self, task: int, sources: Iterable[Hashable], caught_up: bool = False, quiet_s: float = 0.0) -> None:
        """``sources`` sent ``task`` rows or progress just now (or count as having sent, after a restore).

        ``caught_up``: what they sent is a caught-up announcement: its grace starts, if not started,
        ``quiet_s`` ago (how long the partition had not grown when its reader said so; the hop since
        is not counted, so the start is never earlier than the partition really went quiet).
        """
        now = self.clock()
        arrived, announced = self._arrived, self._caught_up
        start = now - min(max(quiet_s, 0.0), self.grace) if caught_up else now
        for source in sources:
            arrived[(task, source)] = now
            if caught_up:
                key = (task, source)
                if announced.get(key, start) >= start:
                    announced[key] = start
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


class QuietWatch:
    """The reader's side: how long each input partition has not grown (its high watermark unchanged).

    ``observe`` after every poll with the high watermarks of the last fetches; a partition is quiet
    from the first time its current high watermark was seen (so never longer than it really was: a
    partition first seen now counts from now, however long it was quiet before). ``observe_ends``
    when partitions are assigned: their end offsets, asked of the broker then, are seen then.

    >>> t = [0.0]; w = QuietWatch(clock=lambda: t[0])
    >>> w.observe([("p0", 100), ("p1", None)]); t[0] = 4.0; w.observe([("p0", 100)]); w.quiet_for("p0"), w.quiet_for("p1")
    (4.0, 0.0)
    >>> w.observe([("p0", 120)]); t[0] = 6.5; w.quiet_for("p0")  # it grew at 4.0
    2.5
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, older_than_s: float = 0.0, wall: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.older_than = older_than_s  # > 0: at assignment, a partition with no record stamped this recently counts as quiet this long
        self.wall = wall  # (epoch seconds: what the records' timestamps are compared with)
        self._seen: dict[Hashable, tuple[int, float]] = {}  # partition -> (high watermark, when first seen)

    def observe(self, highwaters: Iterable[tuple[Hashable, int | None]]) -> None:
        """Note each (partition, high watermark of its last fetch; None: not fetched yet)."""
        now = None
        seen = self._seen
        for key, hw in highwaters:
            if hw is None:
                continue
            was = seen.get(key)
            if was is None or was[0] != hw:
                if now is None:
                    now = self.clock()
                seen[key] = (hw, now)

    def observe_ends(self, consumer: Any, partitions: Sequence[Hashable], timeout_ms: int = 5000) -> None:
        """Note the end offsets of newly assigned ``partitions`` as ``consumer``'s broker gives them now.

        Without it a partition's high watermark is first seen when a fetch of it is read, and
        kafka-python reads a fetch response's partitions one after another: a backlog's last
        partition can be seen seconds after its first, and its grace wait that much longer at its
        end. ``end_offsets`` gives a ``read_committed`` consumer the last stable offset: where that
        is not the high watermark (a transaction open on the input), the first fetch restarts the
        clock, as any growth does. Nothing is noted when the broker does not answer in ``timeout_ms``.

        With ``older_than_s`` (the grace, when ``kafka.grace_from_record_timestamps`` is on), the broker
        is then asked for the first record stamped at most that long ago (``offsets_for_times``). None
        (a topic produced before the monitor started, a backlog whose writer stopped) means the
        partition had not grown for that long already: it counts as quiet that long from now, so its
        reader's caught-up announcement ends the grace at once. The timestamps are the records' own
        (``CreateTime``: the producer's clock; ``LogAppendTime``: the broker's), which is why it can be
        switched off. Asked after the end offsets, a record appended in between is found and earns
        nothing; growth seen later restarts the clock as ever. A ``read_committed`` consumer is not
        told of an open transaction's records here, but then its first fetch's high watermark is not
        the end noted now, and the clock restarts from that fetch.
        """
        if not partitions:
            return
        try:
            ends = consumer.end_offsets(list(partitions), timeout_ms=timeout_ms)
        except KafkaError:
            return
        self.observe(ends.items())
        if self.older_than > 0:
            self._credit_record_quiet(consumer, ends, timeout_ms)

    def _credit_record_quiet(self, consumer: Any, ends: Mapping[Any, int], timeout_ms: int) -> None:
        since_ms = int((self.wall() - self.older_than) * 1000)
        try:
            found = consumer.offsets_for_times({tp: since_ms for tp in ends}, timeout_ms=timeout_ms)
        except (KafkaError, ValueError):  # no answer, or a broker too old for timestamps: counted from now, as without
            return
        start = self.clock() - self.older_than
        seen = self._seen  # (every partition of ``ends`` noted with its end just before)
        for tp, end in ends.items():
            if found.get(tp, 0) is None and seen[tp][1] > start:
                seen[tp] = (end, start)

    local = True
    """Whether :meth:`here` answers (an A/B switch: ``python -m bench.ab_quiet --here``)."""

    def here(self, source: Hashable) -> float:
        """How long a caught-up marker's source has been quiet *now*, when this instance reads it too (else 0).

        A marker carries the quiet its reader saw when sending it; the judge cannot count the hop since (the
        reader may be another instance, on another clock), so its grace would start later than the partition
        went quiet by the hop's time (the transaction's commit, the internal topic's fetch: ~0.3-1 s). When the
        judge's instance reads that partition itself, its own watch tells the quiet as of now, on the same clock:
        still only what was seen (the end unchanged since), and growth seen since restarts it, as ever.
        """
        return self.quiet_for(source) if self.local else 0.0

    def quiet_for(self, key: Hashable) -> float:
        """Seconds since ``key``'s high watermark last moved (0: never fetched)."""
        was = self._seen.get(key)
        return 0.0 if was is None else max(self.clock() - was[1], 0.0)

    def forget(self, keys: Iterable[Hashable]) -> None:
        """Partitions no longer read here (revoked): a next owner counts from its own first fetch."""
        for key in keys:
            self._seen.pop(key, None)
