"""The judging steps of ``stream-monitor run`` (:class:`~stream_monitor.runtime.app.MonitorApp`): rows to their judge.

Rows reach a task (a :class:`~stream_monitor.core.monitor.PartitionMonitor`) one of three ways:

* **off the internal topic** (``state_partitioning: model``, the default): the owner of a by-model
  partition reads the rows records and progress records the inputs' readers sent there
  (:meth:`JudgingSteps._judge_records`);
* **read by the task** (``state_partitioning: input``): a task reads its own input partition (same method);
* **judged where read** (``kafka.judge_locally``, on by default, by-model topology): while this
  instance owns every partition of the inputs and of the internal topic, and the internal topic held
  nothing unread when they were assigned (:meth:`JudgingSteps._judge_locally_if_alone`), the rows
  the reader would send go to their judge here (:meth:`JudgingSteps._judge_here`): the same rows
  records made and decoded the same way (:meth:`Forwarder.judge_here`), without the producer, the
  broker and the second fetch. Each row is then carried by its own input record, so the input's
  committed offset is that of the oldest record with a row still waiting (as with
  ``state_partitioning: input``) and commits with the state only (``Checkpoint.held_topics``). A
  source's progress reaches the tasks it sent no rows as a progress record would say it, and its
  reader being at its end is seen here (:meth:`JudgingSteps._release_idle`).

  The next rebalance goes back to the internal topic (:meth:`JudgingSteps._leave_local`): the rows
  still waiting are dropped and the input partitions read again from their committed offsets, so the
  rows of those records reach their judge through the internal topic. Rows of them judged before are
  recognised by their input record as well as by their carrier (``Carriers.read_before``), so they are
  skipped rather than dead-lettered ``late``.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from kafka import TopicPartition
from kafka.errors import KafkaError

from stream_monitor.core import exchange
from stream_monitor.core.events import DeadLetter, DeadLetterReason
from stream_monitor.core.monitor import BatchResult, PartitionMonitor
from stream_monitor.runtime.kafka_compat import FatalError, caught_up, fenced_is_fatal
from stream_monitor.runtime.records import late_dead_letter, late_rows_logged, read_here

if TYPE_CHECKING:  # pragma: no cover
    from stream_monitor.runtime.checkpoint import Checkpoint


class JudgingSteps:
    """Taking rows into tasks and releasing them; mixed into ``MonitorApp`` (whose attributes it uses)."""

    local = False  # rows judged where they are read (kafka.judge_locally), for this assignment
    _owed_since: dict[int, float]  # per task: since when it waits for rows read again (_give_up_owed)
    _left_local = False  # the last assignment judged locally: its input partitions start again at their committed offsets
    checkpoint: Checkpoint
    cfg: Any
    spec: Any
    tasks: dict[int, PartitionMonitor]
    owned: set[TopicPartition]
    consumer: Any
    guard: Any
    idle: Any
    quiet: Any
    forwarder: Any
    metrics: Any
    log: Any
    repartition_topic: str | None
    state_partitions: int
    _sources: list[tuple[str, int]]
    _unsaved: bool
    _emit: Any
    _send_dead_letter: Any
    _reading: Any

    def _judge_records(self, task: PartitionMonitor, tp: TopicPartition, inputs: list[Any]) -> BatchResult:
        """Records of a state partition: their rows queued in event-time order, and what is due judged.

        On the internal topic a record is a rows record (read where its input was) or a progress record (how far an
        input partition read: its source's order moves on, no rows); with ``state_partitioning: input`` they are read here
        (``inputs``: the consumer's records of a batch, else :class:`InputRecord`; ``runtime/records.py``, :func:`read_here`).
        """
        dead: list[DeadLetter] = []
        rows: list[exchange.Row] = []
        caught: dict[tuple[str, int], tuple[int, float]] = {}  # a source's last caught-up marker in the batch (and its quiet), and ...
        sent: dict[tuple[str, int], int] = {}  # ... its last rows record: the later one tells
        sources: set[tuple[str, int]] = set()
        if self.repartition_topic:
            for i, rec in enumerate(inputs):
                try:  # the rows carry the record's place (Row.carrier): committed offsets follow their wait
                    got = exchange.decode_record(rec.value, (tp.topic, tp.partition, rec.position.offset))
                except exchange.RowsFormatError as exc:
                    dead.append(DeadLetter(DeadLetterReason.PROCESSING_ERROR, f"internal rows record unreadable: {exc}", rec.value, rec.position))
                    continue
                if isinstance(got, exchange.Progress):
                    if got.event_time_ms is not None:
                        task.advance(got.source, got.event_time_ms, labels=got.source[0] == self.cfg.kafka.label_topic)
                    quiet_s = max((got.quiet_ms or 0) / 1000.0, self.quiet.here(got.source))  # its partition's quiet (QuietWatch.here)
                    if got.caught_up:  # nothing more to read there for now: the order waits a grace, then goes on without it
                        task.caught_up(got.source)
                        caught[got.source] = (i, quiet_s)
                    self.idle.arrived(tp.partition, [got.source], caught_up=got.caught_up, quiet_s=quiet_s)
                    continue
                rows += got[1]
                if got[1]:  # one source's rows per rows record (Forwarder: one intake of one input partition)
                    sources.add(got[1][0].source)
                    if caught:
                        sent.update((r.source, i) for r in got[1])
        else:  # state_partitioning: input, rows read here
            rows, read_dead = read_here(self.spec, tp.topic, tp.partition, inputs, self.cfg.kafka.label_topic, self.forwarder.scan_shapes, self.forwarder.code_texts)
            dead += read_dead
            sources = {r.source for r in rows}
        # the rows undo the markers (a source that sends is not caught up), except a marker after its source's last rows
        # here (the reader announced it after sending them): in partition order; see docs/architecture.md, "Idleness comes
        # from the reader"
        self.idle.arrived(tp.partition, sources)
        late = task.take(rows)
        for source, (at, quiet_s) in caught.items():
            if at > sent.get(source, -1) and rows:
                task.caught_up(source)
                self.idle.arrived(tp.partition, [source], caught_up=True, quiet_s=quiet_s)
        self._unsaved = True
        return self._released(task, tp.partition, late, dead)

    def _released(self, task: PartitionMonitor, partition: int, late: list[exchange.Row], dead: list[DeadLetter]) -> BatchResult:
        """``task``'s rows whose turn came judged, with the ``late`` dead letters of ``late`` and the dead letters ``dead`` before them."""
        if late:  # rows sent late, or read again and not recognised as read before: the log tells which
            self.log.warning("rows_late", partition=partition, **late_rows_logged(task, late))
        result = task.release(record_evaluations="latest")
        dead = dead + [late_dead_letter(task, row, self.spec.max_lateness_seconds) for row in late]
        if dead:
            result.dead_letters[:0] = dead
            for dl in dead:
                result.invalid_by_reason[str(dl.reason)] += 1
        self.metrics.late.inc(len(late))
        return result

    # ------------------------------------------------------------ judged where read
    def _judge_here(self, tp: TopicPartition, records: list) -> None:
        """``kafka.judge_locally``: an input partition's records read and their rows judged here, through the poison guard."""
        inputs, read = self.forwarder.reader(tp, records)
        run = functools.partial(self._judged_here, (tp.topic, tp.partition), read)
        self.guard.feed(tp, [r.offset for r in records], inputs, run, self._emit_all, functools.partial(self._send_dead_letter, judged=True))
        for task in self.tasks.values():  # every task knows how far each input was read (rows read again after a restore)
            task.carriers.read((tp.topic, tp.partition), records[-1].offset + 1)
            task.order_dirty = True  # (in its state: a restore must not read that input from before, see _begin)

    def _emit_all(self, results: list[BatchResult]) -> None:
        for result in results:
            self._emit(result)

    def _judged_here(self, source: tuple[str, int], read: Any, inputs: list[Any]) -> list[BatchResult]:
        """The rows of ``inputs`` taken by their tasks, and what is due judged; the others told how far ``source`` read."""
        per, dead, raised = self.forwarder.judge_here(source, read(inputs))
        if not per.keys() <= self.tasks.keys():
            raise FatalError(f"rows for partitions {sorted(per.keys() - self.tasks.keys())} of the internal topic, not owned here, judged locally")
        labels = source[0] == self.cfg.kafka.label_topic
        results: list[BatchResult] = []
        upto = self.forwarder.read_up_to(source)  # what a progress record says: the latest event time the source read
        for p, task in sorted(self.tasks.items()):
            rows = per.get(p)
            if rows:
                late = task.take(rows)
                if upto is not None:  # (through the topic the next batch's progress record tells it so)
                    task.advance(source, upto, labels=labels)
            elif raised is not None:
                task.advance(source, raised, labels=labels)
                late = []
            else:
                continue
            self.idle.arrived(p, [source])
            self._unsaved = True
            results.append(self._released(task, p, late, []))
        if dead:  # of records read before the tasks' restore (or rewind) they were committed then: not sent again
            done = min((task.carriers.restored.get(source, -1) for task in self.tasks.values()), default=-1)
            dead = [dl for dl in dead if dl.position is None or dl.position.offset >= done]
        if dead:  # reading's dead letters: the input's offsets commit with the state, so do they
            if not results:
                results.append(BatchResult())
            results[0].dead_letters[:0] = dead
            for dl in dead:
                results[0].invalid_by_reason[str(dl.reason)] += 1
        return results

    def _judge_locally_if_alone(self, positions: dict[TopicPartition, int]) -> None:
        """At an assignment: judge where read if every partition of the inputs and the internal topic is ours, none unread there."""
        k = self.cfg.kafka
        if self.local or not self.repartition_topic or not k.judge_locally:
            return
        internal = [TopicPartition(self.repartition_topic, p) for p in range(self.state_partitions)]
        inputs = [TopicPartition(t, p) for t, p in self._sources]
        if not internal or not inputs or not self.owned.issuperset(internal + inputs):
            return
        try:
            ends = self.consumer.end_offsets(internal)
        except KafkaError as exc:
            self.log.warning("judge_locally_unknown", error=repr(exc), detail="the internal topic's end offsets did not come: read through it")
            return
        starts = {tp: positions.get(tp, self.checkpoint.committed_offsets.get(tp)) for tp in internal}
        unread = {f"{tp.topic}-{tp.partition}": ends.get(tp, 0) - (starts[tp] or 0) for tp in internal if starts[tp] is None or ends.get(tp, 0) > starts[tp]}
        if unread:
            self.log.info("judging_through_internal_topic", unread=unread, detail="rows there wait for their judge: read them there")
            return
        self.local = True
        self.checkpoint.held_topics = {tp.topic for tp in inputs}
        self.log.info("judging_locally", detail="every partition is ours: rows go to their judge here, not through the internal topic")

    def _leave_local(self) -> None:
        """A rebalance begins: back to the internal topic. Waiting rows are dropped; the inputs are read again from their committed offsets."""
        self._owed_since.clear()
        if not self.local:
            return
        # the waiting rows wait in no other log: every task forgets them and the inputs are read again from their
        # committed offsets (rows judged before are recognised and skipped, as after a rollback)
        for task in self.tasks.values():
            task.forget_queued()
        for tp in self._reading():
            committed = self.checkpoint.committed_offsets.get(tp)
            if committed is not None:
                self.consumer.seek(tp, committed)
        self.forwarder.reset()
        self.local = False
        self._left_local = True
        self.checkpoint.held_topics = set()
        self.log.info("judging_through_internal_topic", detail="rebalance: rows go through the internal topic again")

    def _reseek_inputs(self, new: list[TopicPartition]) -> list[TopicPartition]:
        """Input partitions that must start again at their committed offsets: those of an assignment that judged locally."""
        if not self._left_local:
            return []
        return [tp for tp in new if tp.topic != self.repartition_topic]

    def _owe_inputs(self, task: PartitionMonitor) -> None:
        """A task rebuilt (restored, rolled back) in the by-model topology: the input partitions whose rows it may get again.

        Judging here, its inputs are its carriers, read again from their committed offsets (``Carriers.resume_from``).
        Through the internal topic, any input partition it read here before (``kafka.judge_locally``) may send it again
        rows of records read before: until each is read past them, the order waits (``Carriers.owe``, ``hold_owed``).
        """
        self._owed_since.pop(task.partition, None)
        if not self.repartition_topic:
            return
        task.hold_owed = True
        if self.local:
            held = self.checkpoint.held_topics
            task.read_from({(tp.topic, tp.partition): off for tp, off in self.checkpoint.committed_offsets.items() if tp.topic in held})
        else:
            task.carriers.owe([tp for tp in task.carriers.seen if tp[0] != self.repartition_topic])

    def _give_up_owed(self, p: int, task: PartitionMonitor) -> None:
        """The last resort of the wait for rows read again (``Carriers.owe``), as ``idle_timeout_ms`` is for a silent input: an
        input that neither sends rows from past where it was, nor gets to its end, nor goes silent, is not waited for longer."""
        owed = task.carriers.owed
        if not task.carriers.owing(task.order, task.label_order):  # (owed carriers of the internal topic hold nothing)
            self._owed_since.pop(p, None)
            return
        now = self.idle.clock()
        since = self._owed_since.setdefault(p, now)
        if now - since > self.idle.timeout:
            self.log.warning("owed_rows_given_up", partition=p, sources=sorted(f"{t}-{q}" for t, q in owed), waited_s=round(now - since, 1),
                             detail="rows of these inputs read again may still come: judged on without them (they would be late)")  # fmt: skip
            owed.clear()
            self._owed_since.pop(p, None)

    def _carried_topics(self) -> set[str]:
        """Topics whose committed offsets follow the tasks' waiting rows (``Carriers``): the state topics, and the inputs while judging locally."""
        return self.checkpoint.state_topics | self.checkpoint.held_topics

    # ------------------------------------------------------------------ idle
    def _release_idle(self) -> None:
        """Caught-up input partitions, and those silent for ``idle_timeout_ms``, stop holding back a task's event-time order."""
        for p, task in list(self.tasks.items()):
            if not task.queued():
                continue
            if self.local:  # every input is read here: caught up, it is so for every task
                here = self._reading()
            elif not self.repartition_topic:  # the task reads its input partitions itself: caught up, they are idle
                here = [tp for tp in self.owned if tp.partition == p]
            else:
                here = []
            for tp in here:
                if caught_up(self.consumer, tp):
                    task.caught_up((tp.topic, tp.partition))
                    self.idle.arrived(p, [(tp.topic, tp.partition)], caught_up=True, quiet_s=self.quiet.quiet_for(tp))
            self.idle.mark_idle(p, task)
            self._give_up_owed(p, task)
            result = task.release(record_evaluations="latest")
            if result.alerts or result.dead_letters or result.channel_values or result.retraining or result.held_back:
                with fenced_is_fatal("while processing"):
                    self._emit(result)
