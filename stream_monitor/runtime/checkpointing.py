"""The checkpoint steps of ``stream-monitor run`` (:class:`~stream_monitor.runtime.app.MonitorApp`).

Under exactly-once a checkpoint is begun at the end of a loop (state items sent, offsets and
``EndTxn`` queued: :meth:`Checkpoint.begin_commit`) and ended by the next send
(``Checkpoint.before_send``), or after the next batch when nothing is sent, or before anything
that needs its outcome (a rebalance, a restore, a rollback): the broker commits while the consumer
polls and the first records are read, which sends nothing. A failure found when it ends aborts and
rolls back as any other, and what was read since is read again.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from kafka import TopicPartition
from kafka.errors import KafkaError

from stream_monitor.runtime.checkpoint import CommitResult, InFlight
from stream_monitor.runtime.kafka_compat import caught_up, fenced_is_fatal

if TYPE_CHECKING:  # pragma: no cover
    from stream_monitor.runtime.checkpoint import Checkpoint


class CheckpointSteps:
    """Beginning, ending, counting and undoing checkpoints; mixed into ``MonitorApp`` (whose attributes it uses)."""

    checkpoint: Checkpoint
    _begun: InFlight | None
    _unsettled: InFlight | None = None  # a commit that failed when it ended: committed on the broker or not (_settle)
    _unsaved = False  # judged (rows or progress) since the state was last written: see _state_waits
    _oversized_partitions: set[int]  # state partitions whose items were too large to write: rolled back between batches
    consumer: Any
    tasks: dict[int, Any]
    owned: set[TopicPartition]
    guard: Any
    metrics: Any
    stats: Any
    timings: Any
    log: Any
    forwarder: Any
    on_alert: Any
    on_checkpoint: Any
    _rebuild: Any
    _reset_producer: Any
    _carried_topics: Any
    repartition_topic: str | None

    def _checkpoint_or_recover(self, reads_only: bool = False, overlap: bool = False) -> None:
        """Checkpoint; with ``overlap`` only begin: the broker commits during the next poll and reading, ended by the next send."""
        try:
            self._begin_overlapped(reads_only)
        except KafkaError as exc:
            self._recover(exc)
            return
        if not overlap:
            self._end_checkpoint()

    def _begin_overlapped(self, reads_only: bool = False) -> None:
        """Begin a checkpoint, ended by the next send (``Checkpoint.before_send``) or by the caller; a failure raises.

        Mid-batch (alerts judged, inputs still to read: see ``MonitorApp._process``) the caller's
        ``KafkaError`` handler rolls back and drops the rest of the batch.
        """
        cp = self.checkpoint
        cp.in_flight_since = cp.clock()
        try:
            with fenced_is_fatal("while committing"):
                self._begun = self._begin(reads_only)
        except KafkaError:
            cp.in_flight_since = None
            raise
        if self._begun is None:  # nothing to commit
            cp.failing_since = cp.in_flight_since = None
        else:
            cp.before_send = functools.partial(self._end_checkpoint, recover=False)

    def _end_checkpoint(self, recover: bool = True) -> bool:
        """Wait for the checkpoint begun, if any, and count it; False when it failed and was rolled back (``recover``, else it raises)."""
        begun, self._begun = self._begun, None
        cp = self.checkpoint
        cp.before_send = None
        if begun is None:
            return True
        left_behind = cp.offsets_left_behind
        try:
            with fenced_is_fatal("while committing"):
                self._committed(cp.end_commit(begun))
            if cp.offsets_left_behind != left_behind:
                self.log.warning("offsets_committed_alone", detail="the transaction committed without its offsets; they were committed in one of their own")
            cp.failing_since = None
            return True
        except KafkaError as exc:
            if begun.commit is not None:  # its answer may be lost while the broker committed: _recover asks
                self._unsettled = begun
            if not recover:  # the caller (a send in _process) rolls back
                raise
            self._recover(exc)
            return False
        finally:
            cp.in_flight_since = None

    def _state_waits(self, soon_s: float) -> bool:
        """Should the state be written now, ``soon_s`` after the last commit: judged since it was last written, and nothing left to read or judge?

        The state is otherwise written every ``state_interval_ms`` (and with judged output); reads-only
        commits between cannot commit the internal topic's offsets, which go with the state. A
        monitor that has caught up with its input would keep the judging of its last rows unsaved
        (and its offsets uncommitted) until then, for nothing: there is no batch to wait for.
        """
        if not self._unsaved or not self.checkpoint.due_any(soon_s) or any(task.queued() for task in self.tasks.values()):
            return False
        return all(caught_up(self.consumer, tp) for tp in self.owned)

    def _reads_only_possible(self) -> bool:
        """Can the open transaction commit without the state: exactly-once, commits that may leave it out, nothing in it that needs it?"""
        return self.checkpoint.exactly_once and self._state_apart() and not self.checkpoint.judged_in_txn

    def _state_apart(self) -> bool:
        """May commits leave the state out (written every ``state_interval_ms``)? With the by-model topology (its readers' offsets
        commit alone), and with ``state_partitioning: input`` when state is kept: alerts then commit ahead of it with their
        ``sent`` item (``core/sent.py``), the input offsets, the judges' own, with it."""
        return bool(self.repartition_topic) or self.checkpoint.store is not None

    def _begin(self, reads_only: bool = False) -> InFlight | None:
        if reads_only and any(task.sent.large for task in self.tasks.values()):  # so many alerts ahead of the state: write it
            reads_only = False
        if not reads_only:
            self._unsaved = False
        # a state partition's offset (an input's, judged here): its oldest record with rows still waiting in any task
        held: dict[tuple[str, int], int] = {}
        for task in self.tasks.values() if not reads_only else ():
            for carrier, offset in task.carriers.commit_offsets().items():
                if held.get(carrier, offset) >= offset:
                    held[carrier] = offset
        carried, inputs = self._carried_topics(), self.checkpoint.held_topics
        for (topic, partition), offset in held.items():
            tp = TopicPartition(topic, partition)
            if tp in self.owned and topic in carried:
                if topic in inputs:  # an input judged here never goes back below what was committed (a task's stale seen)
                    offset = max(offset, self.checkpoint.committed_offsets.get(tp, offset))
                self.checkpoint.processed(tp, offset)
        self.checkpoint.owned = self.owned  # a transaction without offsets commits one of these again (Checkpoint._anchor)
        return self.checkpoint.begin_commit(self.tasks, reads_only)

    def _commit(self, reads_only: bool = False) -> None:
        begun = self._begin(reads_only)
        if begun is not None:
            self._committed(self.checkpoint.end_commit(begun))

    def _committed(self, result: CommitResult) -> None:
        self.guard.committed(result.offsets)
        for alert in result.alerts:
            self.metrics.observe_alert(alert.event)
            if self.on_alert is not None:
                self.on_alert(alert)
        self.stats.alerts += len(result.alerts)
        self.stats.checkpoints += 1
        self.timings.checkpoint_seconds += result.waited
        self.metrics.state_bytes.inc(result.state_bytes)
        self.metrics.checkpoints.labels("committed").inc()
        self.metrics.status.checkpoint_committed()
        self.metrics.status.observe_channels(self.tasks.values())
        self.metrics.checkpoint_seconds.observe(result.seconds)
        if result.oversized:
            self._reset_oversized(result.oversized)
        if self.on_checkpoint is not None:
            self.on_checkpoint(result)

    def _reset_oversized(self, oversized: list[tuple[int, str, int]]) -> None:
        """State items too large to write were dropped: their partitions start again without them, at the batch's end
        (:meth:`_roll_back_oversized`), as after a failure."""
        limit = self.checkpoint.max_record_bytes
        for p, name, size in oversized:
            self.metrics.state_oversized.inc()
            self.log.error("state_item_too_large", partition=p, item=name.replace("\x1f", "/"), bytes=size, limit=limit,
                           detail="not written; what it held starts again")  # fmt: skip
        self._oversized_partitions.update(p for p, _, _ in oversized)

    def _roll_back_oversized(self) -> None:
        """After state items too large to write were dropped (:meth:`_reset_oversized`): back to the checkpoint that dropped
        them, as a failure rolls back (the open transaction aborted, every task rebuilt from the committed state, every
        partition read again from its committed offset), between batches.

        The commit that dropped them ends at the first send of a batch or after it; the batch's work since is undone with
        its outputs rather than kept beside a task rebuilt in its middle. So the rows a rebuilt task was waiting with come
        back from where they wait, its inputs judging here or its carrying partition of the internal topic, and (under
        exactly-once) nothing judged after the commit is judged or sent twice; at-least-once sends it again, as after
        any rollback."""
        partitions = sorted(self._oversized_partitions)  # (_rollback clears them)
        self._abort()
        self._rollback()
        self.stats.oversized_rollbacks += 1
        self.log.warning("state_items_dropped_rolled_back", partitions=partitions, detail="read again from the checkpoint that dropped them")

    def _recover(self, exc: BaseException) -> None:
        """An abortable failure: abort (or re-create the producer), then roll back and retry."""
        cp = self.checkpoint
        if self._begun is not None:  # a commit in flight (a record failed before the first send): its outcome first
            try:
                self._end_checkpoint(recover=False)
            except KafkaError:  # it failed too: the abort below covers it
                pass
        cp.failing_since = cp.failing_since or cp.clock()
        self.stats.aborts += 1
        self.metrics.checkpoints.labels("aborted").inc()
        self.metrics.status.checkpoint_failed(repr(exc))
        self.log.warning("transaction_failed_rolling_back", error=repr(exc))
        self._abort()
        unsettled, self._unsettled = self._unsettled, None
        if unsettled is not None:
            self._settle(unsettled)
        self._rollback()

    def _abort(self) -> None:
        """Abort the open transaction, or re-create the producer when that fails (nothing of it stays open either way)."""
        try:
            self.checkpoint.abort()
        except KafkaError as exc:
            self._reset_producer(f"abort failed: {exc!r}")

    def _settle(self, begun: InFlight) -> None:
        """A failed commit may have committed on the broker (a lost answer, a client-side timeout): ask the group.

        Called once the transaction is finished either way (aborted, or the producer replaced). If
        it committed, it is counted and the rollback that follows returns to it rather than to the
        checkpoint before: rolling back past it would send its alerts and rows again and judge its
        records twice (their rows ``late`` dead letters).
        """
        timeout_ms = self.checkpoint.operation_timeout_ms
        answers: dict[str, Any] = {}

        def committed_on_broker(tp: TopicPartition) -> int | None:
            got = self.consumer.committed(tp, metadata=True, timeout_ms=timeout_ms)
            answers[f"{tp.topic}-{tp.partition}"] = None if got is None else [got.offset, got.metadata]
            return got

        try:
            result = self.checkpoint.settle(begun, committed_on_broker)
        except KafkaError as exc:  # the broker did not say: roll back as before
            self.log.error("commit_outcome_unknown", error=repr(exc), detail="rolled back to the checkpoint before it; its records may be judged twice")
            return
        except RuntimeError as exc:  # a rebalance callback (kafka-python's IO thread) may not block: it cannot ask
            if "IO thread" not in str(exc):
                raise
            self.log.error("commit_outcome_unknown", error=repr(exc), detail="during a rebalance: rolled back to the checkpoint before it; "
                           "the partitions' next owner starts from what the group committed")  # fmt: skip
            return
        if result is None:
            self.log.warning("commit_not_committed", offsets={f"{tp.topic}-{tp.partition}": off for tp, off in sorted(begun.offsets.items())},
                             on_broker=answers, detail="rolled back to the checkpoint before it")  # fmt: skip
            return
        self.log.warning("commit_answer_lost_but_committed", offsets={f"{tp.topic}-{tp.partition}": off for tp, off in sorted(result.offsets.items())})
        self._committed(result)

    def _rollback(self) -> None:
        """Back to the last committed state and offsets: the retry repeats the same work."""
        self.checkpoint.rollback(self.tasks, self.owned, self._rebuild)
        self._oversized_partitions.clear()  # (back to the last commit: one that dropped items included)
        self.forwarder.reset()  # the inputs are read again from their committed offsets
        self.log.warning("rolled_back_to_last_checkpoint", partitions=sorted(self.tasks))
