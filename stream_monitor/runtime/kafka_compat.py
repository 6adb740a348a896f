"""Every use of kafka-python internals, the version range they were verified against, and the
shared rebalance listener and "producer fenced" rule.

kafka-python's ``commit_transaction``, ``abort_transaction`` and ``send_offsets_to_transaction``
wait without a timeout: after a broker restart one of them can wait forever. The functions here
start the same operations on the producer's transaction manager (``_transaction_manager``), wake
its sender thread (``_sender``) and wait with a bound; on expiry the caller re-creates the
producer (its ``init_transactions`` fences the old epoch and aborts what it left open).

A consumer's ``partitions_for_topic`` likewise waits for metadata without a bound (forever when
the brokers do not answer); :func:`await_topic_metadata` (a subscribed consumer) and
:func:`topic_partitions` (a group-less one) read the consumer's metadata cache (``_cluster``)
instead and wait with one. These private attributes are read nowhere else; ``tests/test_checkpoint.py`` and
``tests/test_startup_metadata.py`` fail loudly when an installed kafka-python outside
:data:`VERIFIED_RANGE` or without them is used.

The consumers' fetched records are turned into ``ConsumerRecord`` tuples a batch at a time by ``runtime/fetch_records.py``
(kafka-python's ``Fetcher.PartitionRecords`` subclassed, reading the record batches' private fields), installed per
consumer by :func:`install_fast_records` on the verified versions only (``tests/runtime/test_fetch_records.py`` checks it
against kafka-python's own path); our clients' receive path (socket reads, response frames) is ``runtime/receive.py``'s.

kafka-python 3.0.12 can drop a transactional request: when its coordinator's connection is not
ready within ``request_timeout_ms`` (a broker restart), ``Sender._maybe_send_pending_request``
catches the ``KafkaConnectionError`` of ``await_ready``, looks the coordinator up again and returns
without re-queueing the request. A dropped ``TxnOffsetCommit`` lets the ``EndTxn`` behind it
commit the transaction without its offsets. :func:`keep_transactional_requests` (installed on
every transactional producer) makes that ``await_ready`` answer "not ready" instead of raising,
the path on which the sender re-queues the request; :class:`OffsetsLeftBehind` and
:func:`commit_offsets_alone` handle the case should it happen anyway.

kafka-python's sender thread sleeps ``retry_backoff_ms`` (100 ms by default) before it retries a
transactional request, sending nothing else meanwhile. The common retry is the early
``AddOffsetsToTxn`` (:func:`add_group_early`) of a transaction begun right after the previous
commit, answered ``CONCURRENT_TRANSACTIONS`` while the broker still writes that commit's markers: the
next commit then waits for it (one or two sleeps, most of the checkpoint wait of a run with a label
topic; the commit queues its offsets behind it rather than blocking the caller, but the ``EndTxn``
still comes after). :func:`quick_transactional_retries` (installed on every transactional producer unless
``retry_backoff_ms`` is configured) gives the sender alone a backoff of 20 ms, the one the Java client
uses for the same error on ``AddPartitionsToTxn``; batches and metadata keep the producer's.
"""

from __future__ import annotations

import contextlib
import heapq
import time
from dataclasses import dataclass
from collections.abc import Iterator
from typing import Any, Callable

from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError, ProducerFencedError
from kafka.structs import OffsetAndMetadata

# The kafka-python versions whose private transaction API was read and tested; pyproject pins it.
VERIFIED_RANGE = ((3, 0, 12), (3, 1, 0))  # lower bound inclusive, upper bound exclusive
VERIFIED_SPEC = ">=3.0.12,<3.1"

# Errors after which this producer must never be used again: a newer instance owns our id.
FATAL_PRODUCER_ERRORS: tuple[type[BaseException], ...] = (ProducerFencedError,)


class FatalError(RuntimeError):
    """The monitor cannot continue safely (e.g. fenced by a newer instance)."""


def installed_version() -> tuple[int, ...]:
    """The installed kafka-python version as a tuple of integers (pre-release tags dropped)."""
    from kafka.version import __version__

    parts = []
    for piece in __version__.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def version_verified(version: tuple[int, ...] | None = None) -> bool:
    """Is ``version`` (default: the installed one) inside :data:`VERIFIED_RANGE`?

    >>> version_verified((3, 0, 12)), version_verified((3, 1, 0)), version_verified((2, 2, 15))
    (True, False, False)
    """
    v = installed_version() if version is None else version
    low, high = VERIFIED_RANGE
    return low <= v < high


@contextlib.contextmanager
def fenced_is_fatal(what: str) -> Iterator[None]:
    """Turn "producer fenced" into :class:`FatalError` (the one place that rule lives).

    >>> with fenced_is_fatal("while committing"):
    ...     raise ProducerFencedError()
    Traceback (most recent call last):
    ...
    stream_monitor.runtime.kafka_compat.FatalError: producer fenced while committing: another instance uses our transactional id
    """
    try:
        yield
    except FATAL_PRODUCER_ERRORS as exc:
        raise FatalError(f"producer fenced {what}: another instance uses our transactional id") from exc


def install_fast_records(consumer: Any) -> bool:
    """Make ``consumer`` decode fetched record batches with :class:`~stream_monitor.runtime.fetch_records.FastPartitionRecords`.

    Only on a kafka-python inside :data:`VERIFIED_RANGE` whose consumer has the fetcher that class
    was written against; otherwise (and for consumers with deserializers, which the class hands
    to the stock code) the consumer stays as it is. Returns whether it was installed.
    """
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not version_verified():
        return False
    from stream_monitor.runtime.fetch_records import FastPartitionRecords, StockPartitionRecords

    if getattr(fetcher, "PartitionRecords", None) is not StockPartitionRecords:
        return False
    fetcher.PartitionRecords = FastPartitionRecords  # an instance attribute: this consumer only
    return True


def prefetch(consumer: Any) -> bool:
    """Send ``consumer``'s next fetch now for the partitions whose fetched records are used up; whether it was sent.

    kafka-python sends a fetch only from a ``poll`` that finds no fetched response left to read: with
    one response holding several partitions, the partitions read first wait, unfetched, until the last
    one is read, and the next ``poll`` then waits for the broker. Called after a ``poll`` (``MonitorApp._poll``),
    this sends the fetch kafka-python would send (``Fetcher.send_fetches``: partitions with nothing
    buffered and no fetch in flight) while the batch is processed, unless a fetch to the node is in
    flight already. On a verified kafka-python only (:data:`VERIFIED_RANGE`); elsewhere it does nothing.
    """
    fetcher = getattr(consumer, "_fetcher", None)
    pending = getattr(fetcher, "_nodes_with_pending_fetch_requests", None)
    if pending is None or pending or not hasattr(fetcher, "send_fetches") or not version_verified():
        return False
    fetcher.send_fetches()
    return True


def _internals(producer: Any) -> tuple[Any, Any] | None:
    tm = getattr(producer, "_transaction_manager", None)
    sender = getattr(producer, "_sender", None)
    if tm is None or sender is None:
        return None
    return tm, sender


TRANSACTIONAL_RETRY_BACKOFF_MS = 20
WAKE_SLICE_MS = 50  # finish_commit wakes the sender this often while it waits


def quick_transactional_retries(producer: Any, backoff_ms: int = TRANSACTIONAL_RETRY_BACKOFF_MS) -> bool:
    """Make ``producer``'s sender thread back off ``backoff_ms`` (not more than it did) before retrying a transactional request.

    Only the sender's own ``retry_backoff_ms`` (its retry sleep and its waits on transactional
    requests in flight) changes; the record accumulator and the metadata keep the producer's. Returns
    whether it was installed (a verified kafka-python with the internals only).
    """
    internals = _internals(producer)
    config = getattr(internals[1], "config", None) if internals is not None else None
    if not isinstance(config, dict) or "retry_backoff_ms" not in config or not version_verified():
        return False
    config["retry_backoff_ms"] = min(config["retry_backoff_ms"], backoff_ms)
    return True


def has_transaction_internals(producer: Any) -> bool:
    """Does ``producer`` have the private transaction manager and sender the bounded calls use?"""
    return _internals(producer) is not None


def _bounded(sender: Any, result: Any, what: str, timeout_ms: int) -> None:
    sender.wakeup()
    if not result.wait(timeout_ms=timeout_ms):
        raise KafkaTimeoutError(f"{what} did not complete within {timeout_ms} ms")


class OffsetsLeftBehind(KafkaError):
    """The transaction committed, its offsets did not: its records, alerts and state are visible, its input is not marked read."""


def keep_transactional_requests(producer: Any) -> bool:
    """Make ``producer``'s sender re-queue a transactional request whose coordinator is not reachable, rather than drop it.

    The sender calls its client's ``await_ready`` in two places only, both on the transactional
    path; each treats ``False`` as "look the coordinator up again and retry" (or "try another
    node"), while the ``KafkaConnectionError`` it raises after ``request_timeout_ms`` is caught in
    a branch that loses the request (see the module's docstring). Returns whether it was installed
    (a verified kafka-python with the internals only).
    """
    internals = _internals(producer)
    client = getattr(internals[1], "_client", None) if internals is not None else None
    if client is None or not version_verified() or getattr(client, "_stream_monitor_keeps_requests", False):
        return False
    raising = client.await_ready

    def await_ready(node_id: Any, timeout_ms: int = 30_000) -> bool:
        try:
            return raising(node_id, timeout_ms=timeout_ms)
        except KafkaConnectionError:
            return False

    client.await_ready = await_ready
    client._stream_monitor_keeps_requests = True
    return True


class _EarlyOffsets(dict):  # type: ignore[type-arg]
    """The offsets of an early ``AddOffsetsToTxn`` (empty when sent); ``read`` once its answer took them.

    kafka-python's ``AddOffsetsToTxnHandler`` keeps the dict it is given and, on a successful
    answer (under the transaction manager's lock), moves its items to the pending offsets and
    queues the ``TxnOffsetCommit`` of them. Until then, offsets put here go with that request.
    """

    read = False

    def items(self):  # type: ignore[no-untyped-def]
        self.read = True
        return super().items()


@dataclass(slots=True)
class GroupAdded:
    """An early ``AddOffsetsToTxn`` in flight (:func:`add_group_early`): its result, and the offsets it will commit."""

    result: Any
    offsets: _EarlyOffsets

    @property
    def is_done(self) -> bool:
        """Answered: the group added and its ``TxnOffsetCommit`` answered too, or failed."""
        return bool(self.result.is_done)

    @property
    def succeeded(self) -> bool:
        """Answered without an error."""
        return bool(self.result.succeeded)


def add_group_early(producer: Any, consumer: Any) -> GroupAdded | None:
    """Add the consumer group to the transaction just begun (``AddOffsetsToTxn``), in the background.

    Offsets committed in a transaction need that request (to the transaction coordinator) before
    the ``TxnOffsetCommit`` (to the group coordinator) and the ``EndTxn``. Started when the
    transaction begins, it is usually done long before the commit, which then waits for two round
    trips instead of three. The group is added with no offsets (an empty ``TxnOffsetCommit``), unless
    the commit is queued before it was answered: then the commit's offsets go with it
    (:func:`start_commit`). Returns it for :func:`start_commit`, or None for a producer without the
    verified internals.
    """
    internals = _internals(producer)
    if internals is None or consumer is None:
        return None
    tm, sender = internals
    _forget_pending_offsets(tm)
    offsets = _EarlyOffsets()
    try:
        result = tm.send_offsets_to_transaction(offsets, consumer.group_metadata())
    except (KafkaError, ValueError):  # the commit adds the group as before and meets the same error there
        return None
    sender.wakeup()
    return GroupAdded(result, offsets)


def _forget_pending_offsets(tm: Any) -> None:
    """Empty the transaction manager's pending offsets, which every ``TxnOffsetCommit`` it builds sends.

    Entries stay there when a ``TxnOffsetCommit`` failed (an abortable error, a dropped request):
    left, the next transaction would commit them too, e.g. the offsets of an aborted transaction
    whose records are read again. Called when a transaction begins and when its offsets are
    queued, when nothing of the transaction's own is pending.
    """
    with tm._lock:
        tm._pending_txn_offset_commits.clear()


def _txn_offset_commit(tm: Any, meta: dict[TopicPartition, OffsetAndMetadata], group_metadata: Any) -> Any:
    """Queue a ``TxnOffsetCommit`` of ``meta`` alone (the group is in the transaction already); its result."""
    from kafka.producer.transaction_manager import TxnOffsetCommitHandler

    with tm._lock:
        tm._pending_txn_offset_commits.clear()
        tm._pending_txn_offset_commits.update(meta)
        handler = TxnOffsetCommitHandler(tm, group_metadata, tm._pending_txn_offset_commits, None)
        tm._enqueue_request(handler)
    return handler.result


@dataclass(slots=True)
class CommitInFlight:
    """A transaction commit queued on the producer's sender thread (:func:`start_commit`), not yet awaited."""

    committed: Any = None  # the EndTxn's result; None when the commit is done already (public calls)
    sent: Any = None  # the offsets' result, when there were offsets
    deadline: float = 0.0  # time.monotonic() by which it must be done
    internals: tuple[Any, Any] | None = None  # (transaction manager, sender): finish_commit wakes the sender while it waits
    epoch: Any = None  # the producer id and epoch it began with: a KIP-360 bump in between aborts it on the broker


def start_commit(producer: Any, consumer: Any, offsets: dict[TopicPartition, int], timeout_ms: int, group_added: Any | None = None, token: str = "") -> CommitInFlight:
    """Queue ``offsets`` (next offset per partition) and the commit of the open transaction; :func:`finish_commit` waits for it.

    The offsets and the ``EndTxn`` are queued together: the sender thread sends the ``EndTxn`` once
    the offsets are in and every record of the transaction is written. In between, the caller may
    do anything that does not send (``run`` polls its consumer). ``group_added`` (from
    :func:`add_group_early`) saves the ``AddOffsetsToTxn`` round trip; not answered yet, the offsets
    go with it and nothing here waits for it. ``token``
    is the offsets' metadata (what tells this transaction's offsets from others'). A
    producer without the verified internals (a test fake, another kafka-python) gets the public
    calls, which commit here and wait without a bound.
    """
    meta = {tp: OffsetAndMetadata(off, token, -1) for tp, off in offsets.items()}
    internals = _internals(producer)
    if internals is None:
        if meta:
            producer.send_offsets_to_transaction(meta, consumer.group_metadata())
        producer.commit_transaction()
        return CommitInFlight()
    tm, sender = internals
    sent = None
    if meta:
        sent = _offsets_with_early_group(tm, meta, consumer.group_metadata(), group_added)
        if sent is None:
            _forget_pending_offsets(tm)
            sent = tm.send_offsets_to_transaction(meta, consumer.group_metadata())
        sender.wakeup()
    committed = tm.begin_commit()
    sender.wakeup()
    return CommitInFlight(committed, sent, time.monotonic() + timeout_ms / 1000, internals, getattr(tm, "producer_id_and_epoch", None))


def _offsets_with_early_group(tm: Any, meta: dict[TopicPartition, OffsetAndMetadata], group_metadata: Any, early: GroupAdded | None) -> Any | None:
    """Queue ``meta`` behind the early ``AddOffsetsToTxn``, without waiting for it; the offsets' result, or None (add the group again).

    Under the transaction manager's lock (its answer is handled under it too): not answered yet,
    the offsets join it and its ``TxnOffsetCommit`` carries them (its result completes with that);
    answered and succeeded (done or not), a ``TxnOffsetCommit`` of them alone follows it. Either
    way the ``EndTxn`` queued after them goes last: the sender sends one transactional request at a
    time, highest priority first, and the ``TxnOffsetCommit`` (queued in the answer's handling, before
    the sender picks its next request) outranks it. A failed early request (None returned) leaves
    the caller adding the group again, which meets the transaction's error (two ``AddOffsetsToTxn``
    in one transaction are not sent: their answers would each commit the same pending offsets, and
    the second's fails in kafka-python's callback on an offset the first removed).
    """
    if early is None:
        return None
    with tm._lock:
        if not early.offsets.read and not early.result.is_done:
            early.offsets.update(meta)
            return early.result
        added = early.offsets.read and not (early.result.is_done and not early.result.succeeded)
    return _txn_offset_commit(tm, meta, group_metadata) if added else None  # answered: that stays so


def finish_commit(commit: CommitInFlight, timeout_ms: int) -> None:
    """Wait for a commit started by :func:`start_commit`, until its deadline; raise if it failed or did not complete."""
    if commit.committed is None:
        return
    # the sender woken every slice: an error answered once the EndTxn is queued fails it only when the sender next looks,
    left_ms = max(0, int((commit.deadline - time.monotonic()) * 1000))  # and it can sleep past the deadline before that
    while commit.internals is not None and left_ms > WAKE_SLICE_MS and not commit.committed.wait(timeout_ms=WAKE_SLICE_MS):
        commit.internals[1].wakeup()
        left_ms = max(0, int((commit.deadline - time.monotonic()) * 1000))
    if not commit.committed.wait(timeout_ms=left_ms):
        stage = "send_offsets" if commit.sent is not None and not commit.sent.wait(timeout_ms=0) else "commit"
        raise KafkaTimeoutError(f"{stage} did not complete within {timeout_ms} ms")
    if commit.epoch is not None and commit.internals[0].producer_id_and_epoch != commit.epoch:  # kafka-python then "commits"
        raise KafkaError(f"the producer's epoch was bumped during the commit (now {commit.internals[0].producer_id_and_epoch}): the broker aborted it")
    if commit.sent is not None and not commit.sent.wait(timeout_ms=0):  # the EndTxn goes last: not reached
        raise OffsetsLeftBehind("the transaction committed before its offsets")


def commit_offsets_alone(producer: Any, consumer: Any, offsets: dict[TopicPartition, int], timeout_ms: int, token: str) -> None:
    """Commit ``offsets`` in a transaction of their own: the repair of :class:`OffsetsLeftBehind`.

    The transaction that should have carried them committed everything else, so moving the
    group's offsets to where it read is what makes the two agree again. The group's metadata
    (generation, member) fences it if the partitions changed hands in between. Raises like
    :func:`commit_transaction`; the caller then aborts and rolls back as for any failed commit.
    """
    producer.begin_transaction()
    finish_commit(start_commit(producer, consumer, offsets, timeout_ms, None, token), timeout_ms)


def commit_transaction(producer: Any, consumer: Any, offsets: dict[TopicPartition, int], timeout_ms: int, group_added: Any | None = None) -> None:
    """Send ``offsets`` into the open transaction and commit it, bounded: :func:`start_commit` then :func:`finish_commit`."""
    finish_commit(start_commit(producer, consumer, offsets, timeout_ms, group_added), timeout_ms)


def abort_transaction(producer: Any, timeout_ms: int) -> None:
    """Abort the open transaction with a bound (the public call when the internals are absent)."""
    internals = _internals(producer)
    if internals is None:
        producer.abort_transaction()
        return
    _bounded(internals[1], _begin_abort(internals[0]), "abort", timeout_ms)


def _begin_abort(tm: Any) -> Any:
    """``begin_abort``, failing first an ``EndTxn(commit)`` still queued in an abortable error (else sent first: committed)."""
    from kafka.producer.transaction_manager import EndTxnHandler

    if getattr(tm, "_pending_requests", None) is None:  # a test fake
        return tm.begin_abort()
    with tm._lock:  # (in any other state with a commit queued, COMMITTING, begin_abort raises: the caller replaces the producer)
        queued = [e for e in tm._pending_requests if isinstance(e[2], EndTxnHandler) and e[2].request.committed and tm.has_abortable_error()]
        tm._pending_requests[:] = [e for e in tm._pending_requests if e not in queued]
        heapq.heapify(tm._pending_requests)
        for _, _, handler in queued:
            handler.fail(KafkaError("the transaction aborts: its commit was given up"))
        return tm.begin_abort()


def await_topic_metadata(
    consumer: Any,
    topics: list[str],
    timeout_s: float,
    should_stop: Callable[[], bool],
    poll_s: float = 0.05,
) -> list[str]:
    """Wait until ``consumer``'s own metadata knows the partitions of every one of ``topics``.

    Call it after ``subscribe`` and before the first ``poll``: a group leader assigns partitions
    from its own metadata, so joining before that metadata arrived assigns nothing of the topics
    it lacks. Metadata updates are requested about once a second; kafka-python's IO thread
    fetches them. Returns when all are known, after ``timeout_s``, or as soon as
    ``should_stop()``; the result lists the topics still unknown (empty: all known). A consumer
    without the metadata cache (a test fake, another kafka-python) is not waited for.
    """
    cluster = getattr(consumer, "_cluster", None)
    if cluster is None:
        return []
    deadline = time.monotonic() + timeout_s
    next_request = 0.0
    while True:
        missing = [t for t in topics if cluster.partitions_for_topic(t) is None]
        now = time.monotonic()
        if not missing or now >= deadline or should_stop():
            return missing
        if now >= next_request:
            cluster.request_update()
            next_request = now + 1.0
        time.sleep(poll_s)


DEFAULT_BOOTSTRAP_TIMEOUT_MS = 30_000  # kafka-python's own default of bootstrap_timeout_ms


def metadata_timeout_s(consumer: Any) -> float:
    """The bound on a metadata wait: the consumer's ``bootstrap_timeout_ms`` (kafka-python's bound on its
    first metadata, 30 s unless ``kafka.client_options`` sets it)."""
    config = getattr(consumer, "config", None)
    value = config.get("bootstrap_timeout_ms") if isinstance(config, dict) else None
    return (value if isinstance(value, (int, float)) and value > 0 else DEFAULT_BOOTSTRAP_TIMEOUT_MS) / 1000


def topic_partitions(consumer: Any, topics: list[str], timeout_s: float | None = None, poll_s: float = 0.05) -> dict[str, set[int]]:
    """The partitions of each of ``topics`` (an empty set: the topic does not exist or is not visible).

    For a group-less consumer, in place of ``KafkaConsumer.partitions_for_topic``. Topics already
    in the consumer's metadata cache are answered at once; otherwise one metadata request for all
    topics (as ``partitions_for_topic`` makes: asking for topics by name could auto-create them)
    is awaited for at most ``timeout_s`` (default :func:`metadata_timeout_s`). Raises
    ``KafkaTimeoutError`` when no metadata answer came in time (unreachable brokers). A consumer
    without the metadata cache (a test fake, another kafka-python) gets the public call.
    """
    cluster = getattr(consumer, "_cluster", None)
    if cluster is None:
        return {t: set(consumer.partitions_for_topic(t) or ()) for t in topics}
    if all(cluster.partitions_for_topic(t) is not None for t in topics):
        return {t: set(cluster.partitions_for_topic(t)) for t in topics}
    deadline = time.monotonic() + (metadata_timeout_s(consumer) if timeout_s is None else timeout_s)
    stash = cluster.need_all_topic_metadata
    try:
        if cluster.metadata_refresh_in_progress:  # its answer may be to a request without our topics
            _await_metadata_update(cluster, deadline, poll_s)
        cluster.need_all_topic_metadata = True
        _await_metadata_update(cluster, deadline, poll_s)
    finally:
        cluster.need_all_topic_metadata = stash
    return {t: set(cluster.partitions_for_topic(t) or ()) for t in topics}


def _await_metadata_update(cluster: Any, deadline: float, poll_s: float) -> None:
    """Request a metadata update and wait for an answer until ``deadline`` (a failed request is made again)."""
    future = cluster.request_update()
    while not future.succeeded():
        if time.monotonic() >= deadline:
            raise KafkaTimeoutError("no metadata answer from the brokers")
        if future.failed():
            future = cluster.request_update()
        time.sleep(poll_s)


def known_partitions(consumer: Any, topic: str) -> set[int]:
    """The partitions of ``topic`` in ``consumer``'s metadata cache, without waiting (empty: unknown).

    kafka-python's ``KafkaConsumer.partitions_for_topic`` blocks until the metadata arrives, with
    no bound; after :func:`await_topic_metadata` the cache is as complete as it will get.
    """
    cluster = getattr(consumer, "_cluster", None)
    if cluster is None:
        return set(consumer.partitions_for_topic(topic) or ())
    return set(cluster.partitions_for_topic(topic) or ())


def highwater(consumer: Any, tp: TopicPartition) -> int | None:
    """``tp``'s high watermark as of ``consumer``'s last fetch of it (None: not assigned, or not fetched yet)."""
    state = getattr(getattr(consumer, "_subscription", None), "assignment", {}).get(tp)
    return getattr(state, "highwater", None) if state is not None else None


def caught_up(consumer: Any, tp: TopicPartition) -> bool:
    """Whether ``consumer`` has read ``tp`` to its end: its position is at the high watermark of the last fetch.

    Read from kafka-python's subscription state without waiting (``KafkaConsumer.position`` may
    block to look an unknown position up). Control records (transaction markers) do not hold it
    back: the fetcher moves the position past them. False while either is unknown.
    """
    state = getattr(getattr(consumer, "_subscription", None), "assignment", {}).get(tp)
    if state is None:
        return False
    position, highwater = getattr(state, "position", None), getattr(state, "highwater", None)
    offset = getattr(position, "offset", position)
    return offset is not None and highwater is not None and offset >= highwater


def seek_to_committed(consumer: Any, tps: list[TopicPartition], timeout_ms: int) -> dict[TopicPartition, int | None]:
    """Move ``consumer`` to the group's committed offset of each of ``tps`` (its beginning when none); returns them.

    kafka-python 3.x keeps the position of a partition that stays assigned across a rebalance
    (``SubscriptionState.assign_from_subscribed``), where a state partition must start again from
    the offset committed with its state: rows read after it may still have been waiting.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is not None and hasattr(coordinator, "fetch_committed_offsets"):
        found = coordinator.fetch_committed_offsets(tps, timeout_ms=timeout_ms)
        committed = {tp: (found[tp].offset if tp in found and found[tp].offset >= 0 else None) for tp in tps}
    else:
        committed = {tp: consumer.committed(tp) for tp in tps}
    for tp, offset in committed.items():
        if offset is None:
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, offset)
    return committed


def commit_offsets(consumer: Any, offsets: dict[TopicPartition, int]) -> None:
    """Commit ``offsets`` (next offset per partition) with the consumer (at-least-once mode).

    kafka-python 3.x runs rebalance listeners on its IO thread and refuses a blocking commit there
    (``RuntimeError: Cannot block on net.run() from the IO thread``): the commit of a revocation or
    of a close is then sent asynchronously. At-least-once: if it is lost, those records are read
    again by the next owner, as after a crash.
    """
    if not offsets:
        return
    meta = {tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()}
    try:
        consumer.commit(meta)
    except RuntimeError as exc:
        if "IO thread" not in str(exc):
            raise
        consumer.commit_async(meta)


Callback = Callable[[set[TopicPartition]], None]


class RebalanceListener(ConsumerRebalanceListener):
    """A rebalance listener made of three callbacks, each given a set of partitions.

    kafka-python calls them on its IO thread while the main thread waits in ``poll``; they must
    not make blocking consumer calls. ``on_lost`` defaults to ``on_revoked``.

    >>> seen = []
    >>> listener = RebalanceListener(lambda a: seen.append(("assigned", a)), lambda r: seen.append(("revoked", r)))
    >>> listener.on_partitions_lost([TopicPartition("t", 0)]); seen
    [('revoked', {TopicPartition(topic='t', partition=0)})]
    """

    def __init__(self, on_assigned: Callback, on_revoked: Callback, on_lost: Callback | None = None) -> None:
        self._assigned = on_assigned
        self._revoked = on_revoked
        self._lost = on_lost or on_revoked

    def on_partitions_revoked(self, revoked: Any) -> None:
        """Partitions taken away in an orderly rebalance."""
        self._revoked(set(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        """Partitions given to this member (possibly none)."""
        self._assigned(set(assigned))

    def on_partitions_lost(self, lost: Any) -> None:
        """Partitions lost without a rebalance (session expired): they may already be elsewhere."""
        self._lost(set(lost))
