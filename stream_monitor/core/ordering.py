"""Event-time order across input partitions: rows wait until no source can still send an earlier one.

A model's rows come from every input partition that carries it (its *sources*), each roughly in
event-time order, at different speeds. :class:`EventTimeMerger` keeps them in sorted runs and releases
them in key order (``(event_time_ms, tie, index)``, see :mod:`stream_monitor.core.exchange`) once
the *watermark* passed them: the smallest, over the active sources, of the latest event time a
source has sent, minus the allowed lateness. Within that bound, rows out of order — inside one
source or between sources — are judged exactly as if they had come sorted, which is what a file
replay does. A row whose key is at or below the last released key (the *frontier*) comes too late
to be put in order: :meth:`EventTimeMerger.add` hands it back for a ``late`` dead letter.

A source that reads on without sending rows here says so with a progress marker
(:meth:`EventTimeMerger.advance`): its latest time moves as if it had sent a row then. Sources
that send nothing at all do not stall the others either: the caller marks them idle
(:meth:`EventTimeMerger.idle`, after a wall-clock timeout in the runtime; at the end of input in a
replay) and the watermark ignores them until they send again. The buffer is bounded too: beyond
``max_rows`` the oldest rows are released anyway (``forced`` counts them).

Pure and deterministic: the same rows added in the same order with the same idle marks are
released in the same order.

>>> from types import SimpleNamespace as R
>>> m = EventTimeMerger(lateness_ms=10)
>>> rows = lambda src, *ts: [R(key=(t, 0, 0), source=src) for t in ts]
>>> m.add(rows(("a", 0), 5, 30)), m.add(rows(("a", 1), 8, 22)), [r.key[0] for r in m.release()]
([], [], [5, 8])
>>> m.add(rows(("a", 1), 40)), [r.key[0] for r in m.release()]
([], [])
>>> m.idle(("a", 0)); [r.key[0] for r in m.release()]
[22]
>>> [r.key[0] for r in m.release(final=True)], m.frontier, [r.key[0] for r in m.add(rows(("a", 0), 25))]
([30, 40], (40, 0, 0), [25])
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from operator import attrgetter
from typing import Any, Hashable, Iterable

from stream_monitor.core import state, state_order

Key = tuple[int, int, int]
NOT_SENT = -(2**62)  # the latest event time of an expected source that has sent nothing yet
_KEY = attrgetter("key")
_CARRIER = attrgetter("carrier")
_MAX_RUNS = 64  # more waiting runs than this are merged into one


class EventTimeMerger:
    """Rows of several sources, released in key order behind a watermark (see the module docstring)."""

    def __init__(self, lateness_ms: int, max_rows: int = 1_000_000) -> None:
        self.lateness_ms = lateness_ms
        self.max_rows = max_rows
        self.latest: dict[Hashable, int] = {}  # per source: the latest event time it sent
        self.idle_sources: set[Hashable] = set()
        self.caught_up_sources: set[Hashable] = set()  # read to their end: hold at their latest time, see caught_up()
        self.frontier: Key | None = None  # the key of the last released row
        self.judged_before: Key | None = None  # the frontier at the last restore (or rewind): rows read again at or below it were judged
        self.forced = 0  # rows released early because the buffer was full
        self._runs: list[list[Any]] = []  # sorted runs of waiting rows, in arrival order (see add)
        self._times: list[list[int]] = []  # per run, its rows' event times
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, rows: Iterable[Any]) -> list[Any]:
        """Buffer rows (each with ``key`` and ``source``); return those that come too late, in arrival order.

        The rows of one call are sorted once (stably: rows of equal keys keep their arrival order)
        and kept as one sorted *run*; :meth:`release` merges the runs' released parts. Rows of a
        rows record usually come in key order already, so the sort is one pass.
        """
        rows = rows if type(rows) is list else list(rows)
        if not rows:
            return []
        latest = self.latest
        sources: set[Hashable] = set()
        for row in rows:
            src = row.source
            t = row.key[0]
            if latest.get(src, t - 1) < t:
                latest[src] = t
            sources.add(src)
        self.idle_sources -= sources
        if self.caught_up_sources:
            self.caught_up_sources -= sources
        run = sorted(rows, key=_KEY)
        late: list[Any] = []
        frontier = self.frontier
        if frontier is not None and run[0].key <= frontier:
            late = [row for row in rows if row.key <= frontier]
            run = [row for row in run if row.key > frontier]
            if not run:
                return late
        self._push(run)
        return late

    def _push(self, run: list[Any]) -> None:
        """Keep a sorted run (after the runs before it: its rows come later on equal keys)."""
        runs = self._runs
        if runs and runs[-1][-1].key <= run[0].key:  # it continues the last run: one run
            runs[-1].extend(run)
            self._times[-1].extend([row.key[0] for row in run])
        else:
            runs.append(run)
            self._times.append([row.key[0] for row in run])
        self._count += len(run)
        if len(runs) > _MAX_RUNS:
            merged = self._take(len(runs) * [None])
            self._runs, self._times, self._count = [merged], [[row.key[0] for row in merged]], len(merged)

    def _take(self, ends: list[int | None]) -> list[Any]:
        """The first ``ends[i]`` rows of run ``i`` (None: all of it), in key order (equal keys: earlier runs first); the rest stay."""
        parts: list[Any] = []
        runs, times = self._runs, self._times
        taken = 0  # runs that gave rows
        for i, end in enumerate(ends):
            run = runs[i]
            if end is None or end >= len(run):
                parts += run
                runs[i] = times[i] = None  # type: ignore[call-overload]
                taken += 1
            elif end:
                parts += run[:end]
                runs[i], times[i] = run[end:], times[i][end:]
                taken += 1
        if len(parts) < self._count:
            self._runs = [r for r in runs if r is not None]
            self._times = [t for t in times if t is not None]
        else:
            self._runs, self._times = [], []
        self._count -= len(parts)
        if taken > 1:
            parts.sort(key=_KEY)  # stable: a merge of the sorted parts, in run order on equal keys
        return parts

    def advance(self, source: Hashable, event_time_ms: int) -> None:
        """``source`` has read up to ``event_time_ms`` but sent no row here: a progress marker.

        Raises the source's latest time (never lowers it) and counts it active again, like a row
        at that time would, without adding a row.

        >>> from types import SimpleNamespace as R
        >>> m = EventTimeMerger(lateness_ms=10)
        >>> m.expect(("a", 1)); m.add([R(key=(t, 0, 0), source=("a", 0)) for t in (5, 50)]), m.release()
        ([], [])
        >>> m.advance(("a", 1), 70); [r.key[0] for r in m.release()], m.latest[("a", 1)]
        ([5], 70)
        >>> m.advance(("a", 1), 30); m.latest[("a", 1)]
        70
        """
        if self.latest.get(source, event_time_ms - 1) < event_time_ms:
            self.latest[source] = event_time_ms
        self.idle_sources.discard(source)
        self.caught_up_sources.discard(source)

    def caught_up(self, source: Hashable) -> None:
        """``source``'s reader is at its end offset: it sends nothing more *for now*.

        A source that never sent is left out of the watermark at once (its partition is empty). One
        that sent still holds the watermark at its latest time — records produced to it after the
        announcement may carry times close to it (labels trickling in, a reader killed before its
        last rows were committed, a burst its reader has not fetched yet), and rows of the others
        released past them would make them ``late`` — until it sends again or the caller marks it
        idle (the runtime does after ``kafka.caught_up_grace_ms``). Every source caught up is no
        exception: an announcement is as old as the hop that brought it, and releasing everything
        then (as this order once did) let another source's rows go past records its reader had not
        fetched yet, whatever the lateness allowed.

        >>> from types import SimpleNamespace as R
        >>> m = EventTimeMerger(lateness_ms=10)
        >>> m.add([R(key=(t, 0, 0), source=s) for s, t in ((("a", 0), 5), (("a", 1), 50), (("a", 1), 90))])
        []
        >>> m.caught_up(("a", 0)); [r.key[0] for r in m.release()]  # still holds at 5
        []
        >>> m.caught_up(("a", 1)); [r.key[0] for r in m.release()]  # every source caught up: the watermark still holds
        []
        >>> m.idle(("a", 0)); m.idle(("a", 1)); [r.key[0] for r in m.release()]  # after the grace: idle, all of them
        [5, 50, 90]
        >>> m.expect(("a", 2)); m.caught_up(("a", 2)); ("a", 2) in m.idle_sources  # never sent: left out
        True
        """
        t = self.latest.get(source)
        if t is None:
            return
        if t == NOT_SENT:
            self.idle(source)
        elif source not in self.idle_sources:
            self.caught_up_sources.add(source)

    def expect(self, source: Hashable) -> None:
        """``source`` will send: until it does (or is marked idle) it holds the watermark back.

        A source nobody expects counts only from its first row on, so rows of the sources that
        were read first would pass the watermark before a slower source's earlier rows arrive.

        >>> from types import SimpleNamespace as R
        >>> m = EventTimeMerger(lateness_ms=10)
        >>> m.expect(("a", 1)); m.add([R(key=(50, 0, 0), source=("a", 0))]), m.release()
        ([], [])
        >>> m.add([R(key=(5, 0, 0), source=("a", 1))]), [r.key[0] for r in m.release()]
        ([], [])
        >>> m.idle(("a", 1)); [r.key[0] for r in m.release()]
        [5]
        """
        if source not in self.latest:
            self.latest[source] = NOT_SENT

    def idle(self, source: Hashable) -> None:
        """Leave ``source`` out of the watermark until it sends again."""
        if source in self.latest:
            self.idle_sources.add(source)
            self.caught_up_sources.discard(source)

    def watermark(self) -> int | None:
        """Rows with an event time below this can be released; None while no active source has sent."""
        active = [t for s, t in self.latest.items() if s not in self.idle_sources]
        if not active:
            return None
        return min(active) - self.lateness_ms

    def release(self, final: bool = False) -> list[Any]:
        """The rows the watermark passed (all of them when ``final``, or every source idle), in key order."""
        if not self._count:
            return []
        wm = self.watermark()
        everything = final or self.latest.keys() <= self.idle_sources
        if everything:
            out = self._take(len(self._runs) * [None])
        elif wm is None:
            out = []
        else:
            out = self._take([bisect_left(times, wm) for times in self._times])
        if self._count > self.max_rows:  # the oldest beyond the bound go anyway
            rest = self._take(len(self._runs) * [None])
            excess = len(rest) - self.max_rows
            out += rest[:excess]
            self.forced += excess
            if rest[excess:]:
                self._push(rest[excess:])
        if out:
            self.frontier = out[-1].key
        return out

    def clear(self) -> None:
        """Forget the waiting rows (frontier and sources' times stay)."""
        self._runs, self._times, self._count = [], [], 0

    def buffered(self) -> list[Any]:
        """The rows still waiting (in no particular order)."""
        return [row for run in self._runs for row in run]

    def oldest_source_time(self) -> int | None:
        """The smallest latest event time over the active sources (what holds the watermark back)."""
        active = [t for s, t in self.latest.items() if s not in self.idle_sources]
        return min(active) if active else None


class Carriers:
    """Which records of the carrying partitions still hold rows waiting for their turn.

    Rows wait in memory, not in the state: the offset committed for a carrying partition (the
    internal topic's, or the input's) is that of its oldest record with a row still waiting, so a
    restart reads those records again. ``seen`` (checkpointed) tells the rows read before from the
    new ones: after a restore, a re-read row at or below the frontier was judged (or dead-lettered
    as late) before the restart and is skipped, not dead-lettered again.

    >>> from types import SimpleNamespace as R
    >>> c = Carriers()
    >>> rows = [R(carrier=("rp", 0, 5)), R(carrier=("rp", 0, 5)), R(carrier=("rp", 0, 6))]
    >>> c.queue(rows); c.commit_offsets()
    {('rp', 0): 5}
    >>> c.release(rows[:2]); c.commit_offsets()
    {('rp', 0): 6}
    >>> c.release(rows[2:]); c.commit_offsets()
    {('rp', 0): 7}
    """

    def __init__(self, seen: dict[tuple[str, int], int] | None = None) -> None:
        self.seen: dict[tuple[str, int], int] = dict(seen or {})  # per carrier partition: next offset to read
        self.restored: dict[tuple[str, int], int] = dict(self.seen)  # ``seen`` at the last restore
        self._waiting: dict[tuple[str, int], dict[int, int]] = {}  # per carrier partition: offset -> rows waiting
        # per carrier partition read again after a rebuild: (where reading started, ``seen`` then)
        self._resume: dict[tuple[str, int], tuple[int, int]] = {}
        # per input partition read again since a rebuild whose rows may still be owed: ``seen`` then (see owe)
        self.owed: dict[tuple[str, int], int] = {}
        self._foreign: set[tuple[str, int]] = set()  # owed input partitions that are not carriers here (owe)

    def resume_from(self, offsets: dict[tuple[str, int], int]) -> None:
        """The carrying partitions are read again from ``offsets`` (their committed offsets) after a rebuild.

        Until reading passes what was seen before, the records in between may hold rows that were
        waiting, not queued again yet: the commit offset stays at most where reading started.

        >>> c = Carriers({("rp", 0): 9}); c.resume_from({("rp", 0): 4}); c.commit_offsets()
        {('rp', 0): 4}
        >>> c.read(("rp", 0), 7); c.commit_offsets()
        {('rp', 0): 4}
        >>> c.read(("rp", 0), 9); c.commit_offsets()
        {('rp', 0): 9}
        """
        for tp, off in offsets.items():
            if off < self.seen.get(tp, off):
                self._resume[tp] = (off, self.seen[tp])
                self.owed[tp] = self.seen[tp]

    def owe(self, sources: Iterable[tuple[str, int]]) -> None:
        """Rows of these input partitions, read before up to ``seen``, may come again and be owed (not judged yet).

        A task that takes rows of several input partitions and whose waiting rows were dropped (a
        restore, a rebalance) gets them again as their records are read again, each partition at its
        own pace: until every such partition is read past where it was (:meth:`paid`), releasing
        could pass a row still to come again, which would then be skipped as judged (or be ``late``).
        ``PartitionMonitor.release`` waits meanwhile (``hold_owed``). ``resume_from`` owes the
        carrying partitions it resumes; this, input partitions whose rows come through another
        carrier (read before where they were judged, ``kafka.judge_locally``, then through the
        internal topic).

        >>> c = Carriers({("in", 0): 9, ("rp", 0): 3}); c.owe([("in", 0), ("in", 1)]); c.owed
        {('in', 0): 9}
        >>> c.paid(("in", 0), 8); c.owed
        {('in', 0): 9}
        >>> c.paid(("in", 0), 9); c.owed
        {}
        """
        for tp in sources:
            if tp in self.seen:
                self.owed[tp] = self.seen[tp]
                self._foreign.add(tp)

    def owing(self, *mergers: EventTimeMerger) -> bool:
        """May rows read again still come (:meth:`owe`) from a partition that holds one of ``mergers`` back?

        A task of several input partitions whose waiting rows were dropped gets them again as each
        partition is read again; releasing before every one is read past where it was could pass a
        row still to come. Partitions idle in their order owe nothing (it goes on without them).
        """
        owed = self.owed
        if not owed:
            return False
        for source in list(owed):
            if any(source in m.idle_sources for m in mergers):
                self.paid(source, forget=False)  # (its next reader may read again from before: keep knowing what was read)
        return any(source in m.latest for source in owed for m in mergers)

    def paid_by(self, rows: Iterable[Any]) -> None:
        """Rows of an owed partition from a record past where it was read before: that partition owes nothing more."""
        owed = self.owed
        for row in rows:
            source = row.source
            if source in owed and row.position.offset >= owed[source]:
                self.paid(source)
                if not owed:
                    return

    def paid(self, source: tuple[str, int], next_offset: int | None = None, forget: bool = True) -> None:
        """``source`` was read up to ``next_offset`` (None: to its end, or gone idle): nothing read before is owed any more.

        An input partition owed through another carrier (:meth:`owe`) is then forgotten (``forget``) from ``seen``: read
        past where it was, its rows read before never come again, and a later restore owes nothing for it. ``restored``
        keeps it until the next restore: rows of the same batch (a caught-up marker is taken before its batch's rows)
        are still told apart.

        >>> c = Carriers({("in", 0): 9}); c.owe([("in", 0)]); c.paid(("in", 0)); c.owed, c.seen, c.restored
        ({}, {}, {('in', 0): 9})
        """
        owed = self.owed.get(source)
        if owed is not None and (next_offset is None or next_offset >= owed):
            del self.owed[source]
            if forget and source in self._foreign:
                self._foreign.discard(source)
                self.seen.pop(source, None)

    def rewound(self, offsets: dict[tuple[str, int], int]) -> Carriers:
        """These carriers when their waiting rows are dropped and their partitions read again from ``offsets``.

        Rows of records read before (up to ``seen``) are recognised, and ``seen`` itself is kept, not
        lowered to ``offsets``: a checkpoint written before reading passes it again, or a second
        rewind, must still know which records were read (else their judged rows would come back as
        ``late`` after the next restore). The commit offset stays at most ``offsets`` meanwhile.

        >>> c = Carriers(); c.read(("rp", 0), 9); r = c.rewound({("rp", 0): 4})
        >>> r.commit_offsets(), r.seen, r.restored
        ({('rp', 0): 4}, {('rp', 0): 9}, {('rp', 0): 9})
        >>> r2 = r.rewound(r.commit_offsets()); r2.commit_offsets(), r2.restored
        ({('rp', 0): 4}, {('rp', 0): 9})
        """
        out = Carriers(self.seen)
        out.owed, out._foreign = dict(self.owed), set(self._foreign)
        out.resume_from(offsets)
        return out

    def queue(self, rows: Iterable[Any]) -> None:
        """Count rows that now wait, by the record that carried them (counted per record, not per row)."""
        for carrier, n in Counter(map(_CARRIER, rows)).items():
            if carrier is not None:
                self._queue(carrier, n)

    def _queue(self, carrier: tuple[str, int, int], n: int) -> None:
        tp = (carrier[0], carrier[1])
        offsets = self._waiting.get(tp)
        if offsets is None:
            offsets = self._waiting[tp] = {}
        offsets[carrier[2]] = offsets.get(carrier[2], 0) + n
        if self.seen.get(tp, -1) <= carrier[2]:
            self.seen[tp] = carrier[2] + 1

    def read(self, tp: tuple[str, int], next_offset: int) -> None:
        """Records of ``tp`` up to ``next_offset`` were read (some may have carried no waiting row)."""
        if self.seen.get(tp, -1) < next_offset:
            self.seen[tp] = next_offset
        resume = self._resume.get(tp)
        if resume is not None and next_offset >= resume[1]:
            del self._resume[tp]
        if self.owed:
            self.paid(tp, next_offset)

    def release(self, rows: Iterable[Any]) -> None:
        """Rows left the wait (judged or dead-lettered)."""
        for carrier, n in Counter(map(_CARRIER, rows)).items():
            if carrier is not None:
                self._release(carrier, n)

    def _release(self, carrier: tuple[str, int, int], n: int) -> None:
        offsets = self._waiting.get((carrier[0], carrier[1]))
        if offsets is None or carrier[2] not in offsets:
            return
        left = offsets[carrier[2]] - n
        if left > 0:
            offsets[carrier[2]] = left
        else:
            del offsets[carrier[2]]

    def read_before(self, row: Any) -> bool:
        """Was this row's record read before the last restore?"""
        c = row.carrier
        if c is not None and c[2] < self.restored.get((c[0], c[1]), -1):
            return True
        # its input record read before by this task where it was read (kafka.judge_locally), now come through another carrier
        source = row.source
        return source in self.restored and (c is None or (c[0], c[1]) != source) and row.position.offset < self.restored[source]

    def commit_offsets(self) -> dict[tuple[str, int], int]:
        """Per carrier partition, the offset to commit: the oldest record with a waiting row, else the next to read."""
        out = {}
        for tp, nxt in self.seen.items():
            offsets = self._waiting.get(tp)
            out[tp] = min(offsets) if offsets else nxt  # label and inference rows of one batch queue apart: not in offset order
            if tp in self._resume:
                out[tp] = min(out[tp], self._resume[tp][0])
        return out


def restore_order(monitor: Any, blob: bytes) -> None:
    """Frontiers, sources' latest times and the carrier offsets read (rows read again after them are new)."""
    try:
        record = state_order.decode_order(blob)
    except state.StateFormatError as exc:
        monitor._rejected(None, None, exc)
        return
    monitor.order.frontier, monitor.order.latest = record.inference[0], dict(record.inference[1])
    monitor.label_order.frontier, monitor.label_order.latest = record.labels[0], dict(record.labels[1])
    monitor.order.judged_before, monitor.label_order.judged_before = monitor.order.frontier, monitor.label_order.frontier
    monitor.carriers = Carriers(record.seen)
    monitor.joins.prediction_time = record.prediction_time
