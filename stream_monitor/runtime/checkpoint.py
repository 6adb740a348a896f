"""The checkpoint: what has been processed but not committed, what is committed, and the commit order.

Under exactly-once a checkpoint is one Kafka transaction holding the alerts, retraining events and
dead letters sent since the last one, the changed state items (changelog) and the consumer offsets
(``send_offsets_to_transaction`` with the group metadata). Only after the commit returns do the
committed items and offsets move forward and the pending alerts count as delivered. When a
commit fails the caller aborts and calls :meth:`Checkpoint.rollback`: every partition is rebuilt
from its last committed items and the consumer seeks back to the last committed offsets, so the
retry produces the same alerts with the same ids.

Without exactly-once the order is: send state items, flush the producer, commit the offsets.

A state item given as ``None`` is gone: a tombstone deletes it from the changelog (and from the
committed items). A state item whose record would exceed ``max_record_bytes`` (below the producer's request limit)
is never sent: a tombstone replaces it, so the changelog holds no stale version, and it is left
out of the committed items, so the caller rolls back to this commit once its batch is done
(``CheckpointSteps._roll_back_oversized``) and only what the item held starts again. The commit itself goes through.

The producer and the consumer are anything with the kafka-python methods used here, so the
ordering and rollback logic is unit-tested with fakes (``tests/test_checkpoint.py``).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

from kafka import TopicPartition

from stream_monitor.core.sent import ITEM as SENT_ITEM
from stream_monitor.runtime import kafka_compat

if TYPE_CHECKING:  # pragma: no cover
    from stream_monitor.core.monitor import Alert, PartitionMonitor
    from stream_monitor.core.retraining import Retraining
    from stream_monitor.runtime.changelog import ChangelogStore

Rebuild = Callable[[int, dict[str, bytes]], "PartitionMonitor"]


def _ahead(task: PartitionMonitor) -> dict[str, bytes | None]:
    """What a reads-only commit writes of a task: its ``sent`` item when alerts it judged go with the commit (``core/sent.py``)."""
    item = task.sent.ahead_item()
    return {} if item is None else {SENT_ITEM: item}


@dataclass(slots=True)
class CommitResult:
    """What one successful checkpoint committed.

    ``offsets`` are the next offsets to read per partition; ``started``/``finished`` are
    ``time.perf_counter()`` readings around the commit; ``oversized`` lists the state items
    (partition, item name, bytes) that were too large to write and were dropped. ``waited`` is
    the part of ``seconds`` the caller spent in :meth:`Checkpoint.begin_commit` and
    :meth:`Checkpoint.end_commit` (the rest it did other work while the broker committed).
    """

    offsets: dict[TopicPartition, int]
    alerts: list[Alert]
    state_bytes: int
    started: float
    finished: float
    oversized: list[tuple[int, str, int]] = field(default_factory=list)
    retraining: list[Retraining] = field(default_factory=list)
    waited: float = 0.0

    @property
    def seconds(self) -> float:
        """How long the commit took."""
        return self.finished - self.started


@dataclass(slots=True)
class InFlight:
    """A checkpoint begun (:meth:`Checkpoint.begin_commit`) whose commit the broker may still be doing."""

    changed: dict[int, dict[str, bytes | None]]
    offsets: dict[TopicPartition, int]
    written: int
    oversized: list[tuple[int, str, int]]
    started: float
    waited: float
    commit: kafka_compat.CommitInFlight | None  # None: done already (at-least-once)
    token: str = ""  # the metadata of its offsets: this transaction's, no other's (settle)


@dataclass(slots=True)
class _Parked:
    task: PartitionMonitor
    items: dict[str, bytes]
    offsets: dict[TopicPartition, int]


@dataclass
class Checkpoint:
    """Pending and committed offsets, state items and alerts of one monitor, and the commit order.

    ``producer`` may be replaced (after a producer reset); ``state_topics`` are the topics whose
    partition number identifies a state partition. ``clock`` is monotonic seconds.
    """

    producer: Any
    consumer: Any
    store: ChangelogStore | None
    exactly_once: bool
    changelog_topic: str
    operation_timeout_ms: int
    state_topics: set[str]
    max_record_bytes: int = 16 * 1024 * 1024 - 1024
    clock: Callable[[], float] = time.monotonic
    committed_items: dict[int, dict[str, bytes]] = field(default_factory=dict)
    committed_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    # the highest offset this process committed per input partition, kept when the partition goes: see raise_to_committed
    ever_committed: dict[TopicPartition, int] = field(default_factory=dict)
    pending_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    pending_alerts: list[Alert] = field(default_factory=list)
    pending_retraining: list[Retraining] = field(default_factory=list)
    txn_open: bool = False
    judged_in_txn: bool = False  # the open transaction holds output of judging that commits with the state (see ensure_transaction)
    last_commit_at: float = 0.0  # when the last full checkpoint began
    last_any_commit_at: float = 0.0  # ... or reads-only commit
    failing_since: float | None = None
    in_flight_since: float | None = None
    offsets_left_behind: int = 0  # transactions that committed without their offsets, then had them committed alone
    _parked: dict[int, _Parked] = field(default_factory=dict)
    _group_added: Any = None  # the open transaction's early AddOffsetsToTxn (kafka_compat.add_group_early)
    before_send: Callable[[], Any] | None = None  # called (once) by the next ensure_transaction: ends a commit begun
    owned: set[TopicPartition] = field(default_factory=set)  # the partitions this process reads (an anchor's candidates)
    # topics whose offsets commit with the state only, beside the state topics: the inputs while judging where read
    # (kafka.judge_locally: their offsets follow the rows still waiting, as a state partition's do)
    held_topics: set[str] = field(default_factory=set)
    _session: str = field(default_factory=lambda: secrets.token_hex(6))
    _commits: int = 0

    def __post_init__(self) -> None:
        self.last_commit_at = self.last_any_commit_at = self.clock()

    # ------------------------------------------------------------ in between
    def ensure_transaction(self, judged: bool = False) -> None:
        """Open a transaction before the first send of a checkpoint (exactly-once only).

        ``judged``: what is sent next must commit with the state that made it (dead letters of
        judging; alerts and retraining events too when no state is kept), so the commit is a full
        one. Reading's records (rows, progress records and their dead letters) need no state, nor
        do alerts and retraining events, whose ``sent`` item goes with them (``core/sent.py``).
        """
        if self.before_send is not None:
            hook, self.before_send = self.before_send, None
            hook()
        if self.exactly_once and not self.txn_open:
            self._begin()
            self._group_added = kafka_compat.add_group_early(self.producer, self.consumer)  # done by the commit
        self.judged_in_txn |= judged

    def _begin(self) -> None:
        self.producer.begin_transaction()
        self.txn_open = True
        self._group_added = None

    def processed(self, tp: TopicPartition, next_offset: int) -> None:
        """Records of ``tp`` before ``next_offset`` are processed; commit that at the next checkpoint."""
        self.pending_offsets[tp] = next_offset

    def add_alerts(self, alerts: list[Alert]) -> None:
        """Alerts sent in the open transaction: delivered when it commits, forgotten when it aborts."""
        self.pending_alerts.extend(alerts)

    def send_retraining(self, topic: str, events: list[Retraining]) -> None:
        """Send retraining events (keyed by model) in the open transaction, like alerts: delivered when it commits."""
        for r in events:
            self.producer.send(topic, key=r.model.encode(), value=r.payload)
        self.pending_retraining.extend(events)

    def due(self, interval_s: float) -> bool:
        """Has ``interval_s`` passed since the last full checkpoint (state written) began?"""
        return self.clock() - self.last_commit_at >= interval_s

    def due_any(self, interval_s: float) -> bool:
        """Has ``interval_s`` passed since the last commit of any kind (reads-only too) began?"""
        return self.clock() - self.last_any_commit_at >= interval_s

    def full_due(self, interval_s: float, state_interval_s: float, reads_only_possible: bool) -> bool | None:
        """What the interval asks for: a full checkpoint (True), a reads-only one (False) or nothing yet (None).

        Every ``interval_s`` a commit; it writes the state when the open transaction holds output
        of judging that commits with the state that made it (:meth:`ensure_transaction`), or when
        reads-only commits are not possible (at-least-once, or input partitioning without state). And the state
        is due every ``state_interval_s`` whatever the commits in between: reads-only commits
        come sooner than ``interval_s`` when readers wait for them (:meth:`due_soon`: a monitor
        keeping up with a live stream, its alerts), and until 2026-12-02 such a monitor never
        wrote its state while the stream flowed (the alerts' commits were full ones then, which
        hid it wherever alerts fired) — judging after a failure would be redone from its last
        pause, and the internal topic's committed offsets stood still.

        >>> cp = Checkpoint(None, None, None, True, "c", 1000, set(), clock=lambda: 0.0)
        >>> cp.last_commit_at, cp.last_any_commit_at = -1.0, -0.1
        >>> cp.full_due(0.25, 2.0, True), cp.full_due(0.05, 2.0, True), cp.full_due(0.05, 0.5, True), cp.full_due(0.05, 2.0, False)
        (None, False, True, True)
        >>> cp.full_due(0.25, 0.5, True)  # the state interval passed, a reads-only commit 0.1 s ago
        True
        """
        if self.exactly_once and reads_only_possible and self.due(state_interval_s):
            return True
        if not self.due_any(interval_s):
            return None
        if not reads_only_possible or not self.exactly_once or self.judged_in_txn:
            return True
        return False

    def due_soon(self, soon_s: float, reading: Iterable[TopicPartition], reads_only: bool) -> bool:
        """Should the open transaction commit now, ``soon_s`` after the last commit, because readers wait for it?

        Records sent in a transaction are invisible to ``read_committed`` readers until it commits:
        the judge of the internal topic waits for rows and progress records, the alerts' readers
        for the alerts. So a commit is due after ``soon_s`` when the open transaction holds alerts
        or retraining events (:meth:`alerts_wait`; a reads-only commit with their ``sent`` items where possible), also behind the input (alerts
        are few; a page should not wait for a backlog's interval), and, once every partition of
        ``reading`` is read to its end (nothing left to batch with), when it holds only what
        reading sent and ``reads_only`` commits are possible (the by-model topology). Dead letters
        of judging alone wait for the interval. Exactly-once only: otherwise records are visible
        once sent. Without alerts a monitor behind its input is never read to its end and commits
        every ``commit_interval_ms`` as before.

        >>> cp = Checkpoint(None, None, None, True, "c", 1000, set(), clock=iter([0.0, 0.01, 0.1, 0.1]).__next__)
        >>> cp.due_soon(0.05, [], True), cp.txn_open
        (False, False)
        >>> cp.txn_open = True; cp.due_soon(0.05, [], True), cp.due_soon(0.05, [], True), cp.due_soon(0.05, [], False)
        (False, True, False)
        """
        if not self.txn_open or self.clock() - self.last_any_commit_at < soon_s:
            return False
        if self.pending_alerts or self.pending_retraining:
            return True
        if not (reads_only and not self.judged_in_txn):
            return False
        return all(kafka_compat.caught_up(self.consumer, tp) for tp in reading)

    def alerts_wait(self, soon_s: float) -> bool:
        """Does the open transaction hold alerts or retraining events, ``soon_s`` after the last commit? (Then a commit is due.)"""
        return self.txn_open and bool(self.pending_alerts or self.pending_retraining) and self.clock() - self.last_any_commit_at >= soon_s

    def stalled_for(self) -> float | None:
        """Seconds since checkpoints started failing, or since the one in flight began; None if neither."""
        since = self.failing_since or self.in_flight_since
        return None if since is None else self.clock() - since

    # ---------------------------------------------------------------- commit
    def commit(self, tasks: dict[int, PartitionMonitor], reads_only: bool = False) -> CommitResult | None:
        """Commit alerts, changed state items and offsets in that order; None when there is nothing to do.

        :meth:`begin_commit` then :meth:`end_commit`.
        """
        begun = self.begin_commit(tasks, reads_only)
        return None if begun is None else self.end_commit(begun)

    def begin_commit(self, tasks: dict[int, PartitionMonitor], reads_only: bool = False) -> InFlight | None:
        """Send the changed state items and queue the offsets and the commit; None when there is nothing to do.

        Exactly-once, the broker then commits while the caller does other work that sends nothing
        (``run`` polls its consumer; a rebalance callback ends the commit first), and
        :meth:`end_commit` waits for it and moves the committed offsets, items and alerts forward.
        At-least-once, everything is done here.

        ``reads_only`` (when the open transaction holds no output of judging, see
        :meth:`ensure_transaction`): commit what reading the inputs sent and the input partitions'
        offsets, without state and without the state partitions' offsets, which wait for the next
        full checkpoint. Exactly-once holds: reading keeps no state, so its records and the offsets
        of the records they came from commit together, and judging is redone from the last full
        checkpoint after a failure. Alerts and retraining events judged since go with it, and each
        task that sent some writes its ``sent`` item (``core/sent.py``): judging redone makes them
        again and holds those back. Much cheaper than a full checkpoint (no state written).

        Raises a ``KafkaError`` when the commit fails (here or in :meth:`end_commit`): the caller
        aborts and calls :meth:`rollback`.
        """
        if reads_only and (self.judged_in_txn or not self.exactly_once):
            raise ValueError("a reads-only commit needs exactly-once and no output of judging in the transaction")
        self.last_any_commit_at = self.clock()
        if not reads_only:
            self.last_commit_at = self.last_any_commit_at
        started = time.perf_counter()
        changed: dict[int, dict[str, bytes | None]] = {}
        for p, task in tasks.items() if self.store is not None else ():
            items = task.state_items() if not reads_only else _ahead(task)
            if items:
                changed[p] = items
        if not changed and not self.pending_offsets and not self.txn_open:
            return None
        if self.exactly_once and not self.txn_open:
            self._begin()  # and commit at once: adding the group early would save nothing
        written = 0
        oversized: list[tuple[int, str, int]] = []
        if self.store is not None:
            for p, items in changed.items():
                for key, value in self.store.encode(p, items):
                    if value is None:  # an item that is gone: delete it
                        self.producer.send(self.changelog_topic, key=key, value=None, partition=p)
                        continue
                    if len(key) + len(value) > self.max_record_bytes:
                        oversized.append((p, key.decode("utf-8"), len(value)))
                        self.producer.send(self.changelog_topic, key=key, value=None, partition=p)
                        continue
                    self.producer.send(self.changelog_topic, key=key, value=value, partition=p)
                    written += len(value)
        offsets = {tp: off for tp, off in self.pending_offsets.items() if not (reads_only and self._with_state(tp))}
        commit = None
        token = ""
        if self.exactly_once:
            if not offsets:  # every transaction carries an offset, so a lost answer can be settled (settle)
                anchor = self._anchor(reads_only)
                if anchor is not None:
                    offsets[anchor] = self.committed_offsets[anchor]
            self._commits += 1
            token = f"stream-monitor {self._session} {self._commits}"
            commit = kafka_compat.start_commit(self.producer, self.consumer, offsets, self.operation_timeout_ms, self._group_added, token)
        else:
            self.producer.flush()
            kafka_compat.commit_offsets(self.consumer, offsets)
        return InFlight(changed, offsets, written, oversized, started, time.perf_counter() - started, commit, token)

    def _anchor(self, reads_only: bool) -> TopicPartition | None:
        """An owned partition whose committed offset a transaction without offsets commits again (same offset, its token):
        for a reads-only one, not a state partition's where another is owned (``state_partitioning: input`` owns no other)."""
        owned = sorted(self.owned & self.committed_offsets.keys())
        for tp in owned:
            if not (reads_only and self._with_state(tp)):
                return tp
        return owned[0] if owned else None

    def _with_state(self, tp: TopicPartition) -> bool:
        """Does ``tp``'s offset commit with the state only (a state partition's, or a held input's)?"""
        return tp.topic in self.state_topics or tp.topic in self.held_topics

    def end_commit(self, begun: InFlight) -> CommitResult:
        """Wait for the commit of :meth:`begin_commit` (bounded) and move what it committed forward.

        Raises a ``KafkaError`` when it failed: the caller aborts and calls :meth:`rollback`.
        """
        waiting = time.perf_counter()
        if begun.commit is not None:
            try:
                kafka_compat.finish_commit(begun.commit, self.operation_timeout_ms)
            except kafka_compat.OffsetsLeftBehind:  # committed without them: commit them alone, or fail as any commit
                self.offsets_left_behind += 1
                kafka_compat.commit_offsets_alone(self.producer, self.consumer, begun.offsets, self.operation_timeout_ms, begun.token)
            self.txn_open = self.judged_in_txn = False
            self._group_added = None
        return self._moved_forward(begun, waiting)

    def settle(self, begun: InFlight, committed_on_broker: Callable[[TopicPartition], Any]) -> CommitResult | None:
        """The outcome of a commit whose answer was lost (:meth:`end_commit` raised), once the broker finished it.

        Call it after the transaction was aborted or the producer replaced (a new producer's
        ``InitProducerId`` makes the coordinator complete or abort what the old one left). A
        transaction commits its offsets atomically, and each carries the transaction's own token as
        its metadata: the group's committed offsets with that token (``committed_on_broker`` gives
        kafka-python's ``OffsetAndMetadata``) mean it committed, and everything moves forward as
        :meth:`end_commit` would have (the result to count); anything else means it did not (None:
        roll back as before). Every exactly-once transaction carries an offset: one that has none
        commits an owned partition's committed offset again (``owned``), with its token.
        """
        if not begun.offsets or not begun.token:
            return None
        for tp, off in sorted(begun.offsets.items()):
            got = committed_on_broker(tp)
            if got is None or got.offset != off or got.metadata != begun.token:
                return None
        self.txn_open = self.judged_in_txn = False
        self._group_added = None
        return self._moved_forward(begun, time.perf_counter())

    def _moved_forward(self, begun: InFlight, waiting: float) -> CommitResult:
        """Committed: the offsets, items and alerts of ``begun`` become the committed ones."""
        changed, offsets, oversized = begun.changed, begun.offsets, begun.oversized
        for p, items in changed.items():
            mine = self.committed_items.setdefault(p, {})
            for name, value in items.items():
                if value is None:
                    mine.pop(name, None)
                else:
                    mine[name] = value
        for p, name, _ in oversized:
            self.committed_items[p].pop(name, None)
        self.committed_offsets.update(offsets)
        for tp, off in offsets.items():
            if tp.topic not in self.state_topics and off > self.ever_committed.get(tp, -1):
                self.ever_committed[tp] = off
        for tp, off in offsets.items():
            if self.pending_offsets.get(tp) == off:
                del self.pending_offsets[tp]
        alerts, self.pending_alerts = self.pending_alerts, []
        retraining, self.pending_retraining = self.pending_retraining, []
        finished = time.perf_counter()
        return CommitResult(offsets, alerts, begun.written, begun.started, finished, oversized, retraining, begun.waited + finished - waiting)

    def abort(self) -> None:
        """Abort the open transaction (bounded). Raises ``KafkaError`` when that does not work."""
        if self.exactly_once and self.txn_open:
            try:
                with kafka_compat.fenced_is_fatal("while aborting"):
                    kafka_compat.abort_transaction(self.producer, self.operation_timeout_ms)
            finally:
                self.txn_open = self.judged_in_txn = False

    def producer_replaced(self, producer: Any) -> None:
        """A new producer replaces a broken one: nothing of the old transaction is open any more."""
        self.producer = producer
        self.txn_open = self.judged_in_txn = False

    def rollback(self, tasks: dict[int, PartitionMonitor], owned: set[TopicPartition], rebuild: Rebuild) -> None:
        """Back to the last committed state and offsets: the retry repeats the same work."""
        for p in list(tasks):
            tasks[p] = rebuild(p, self.committed_items.get(p, {}))
        for tp, off in self.committed_offsets.items():
            if tp in owned:
                self.consumer.seek(tp, off)
        self.pending_offsets.clear()
        self.pending_alerts.clear()
        self.pending_retraining.clear()

    # -------------------------------------------------------------- partitions
    def started(self, partition: int, items: dict[str, bytes]) -> None:
        """A state partition was restored from ``items`` (its committed state)."""
        self.committed_items[partition] = dict(items)

    def positions(self, positions: dict[TopicPartition, int]) -> None:
        """Where newly assigned partitions start: the offsets a rollback returns to."""
        self.committed_offsets.update(positions)

    def raise_to_committed(self, positions: dict[TopicPartition, int], batch: dict[TopicPartition, list]) -> dict[TopicPartition, tuple[int, int]]:
        """Move newly assigned partitions that start below an offset this process committed up to it; returns them (position, committed).

        An input partition's committed offset only moves forward while the group is active, so a
        start below one we committed is a lookup that came back wrong. Not so a state partition's
        (the oldest record with a row still waiting: it moves back when rows are read again after a
        restore), which is left alone. Seen after a broker restart: the group's
        committed offsets were answered as none, the reset policy read the input again from its
        beginning, and every row already judged came back as a ``late`` dead letter. Records
        polled from the wrong position are dropped from ``batch``.
        """
        moved = {tp: (pos, self.ever_committed[tp]) for tp, pos in positions.items() if pos < self.ever_committed.get(tp, -1)}
        for tp, (_, committed) in moved.items():
            self.consumer.seek(tp, committed)
            positions[tp] = committed
            batch.pop(tp, None)
        return moved

    def state_offsets(self, partition: int, offsets: dict[TopicPartition, int] | None = None) -> dict[TopicPartition, int]:
        """The offsets (the committed ones unless ``offsets`` is given) of state partition ``partition``'s topics."""
        source = self.committed_offsets if offsets is None else offsets
        return {tp: off for tp, off in source.items() if tp.partition == partition and tp.topic in self.state_topics}

    def release(self, partition: int, task: PartitionMonitor, keep: bool) -> None:
        """A state partition is no longer ours; with ``keep`` (revoked right after a commit) park it.

        A parked partition is handed back by :meth:`reclaim` if the rebalance returns it at the
        offsets we committed, which saves reading the changelog again.
        """
        items = self.committed_items.pop(partition, None)
        if keep and not self.pending_offsets:
            self._parked[partition] = _Parked(task, items or {}, self.state_offsets(partition))

    def forget(self, revoked: set[TopicPartition]) -> None:
        """Drop the offsets of revoked partitions."""
        for tp in revoked:
            self.committed_offsets.pop(tp, None)
            self.pending_offsets.pop(tp, None)

    def reclaim(self, partition: int, positions: dict[TopicPartition, int]) -> PartitionMonitor | None:
        """The parked task of ``partition`` if it came back at exactly the offsets we committed."""
        parked = self._parked.pop(partition, None)
        if parked is None:
            return None
        mine = self.state_offsets(partition, positions)
        if mine and all(parked.offsets.get(tp) == off for tp, off in mine.items()):
            self.committed_items[partition] = parked.items
            return parked.task
        return None

    def drop_parked(self) -> None:
        """Anything not reclaimed now may be processed elsewhere: never reuse it."""
        self._parked.clear()
