"""The early ``AddOffsetsToTxn`` (kafka_compat.add_group_early) and a commit queued before its answer, on a real broker.

The commit's offsets join the early request (kafka_compat._offsets_with_early_group); the request's answer
is then held, retried or failed in each way kafka-python's handler meets it: answered late (in flight while
the commit queues), CONCURRENT_TRANSACTIONS or NOT_COORDINATOR (re-queued, retried after a backoff), a
disconnect (the coordinator looked up again, re-queued), an abortable or a fatal error from the broker. With records in the transaction
and without (a reads-only commit: no AddPartitionsToTxn, so kafka-python's "EndTxn of a transaction that
never started" shortcut would commit nothing, silently, were the EndTxn dequeued before the answer). Each
must commit the offsets with their transaction, or fail the commit: never commit the transaction without
them, never send a second AddOffsetsToTxn.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from kafka.producer.transaction_manager import AddOffsetsToTxnHandler, EndTxnHandler, TxnOffsetCommitHandler

from stream_monitor.runtime import kafka_compat
from tests.integration.test_broker import HAVE_PYTEST_TIMEOUT, TEST_TIMEOUT_S, _transactional_pair, poll_n, read_all

pytestmark = [pytest.mark.kafka]
if HAVE_PYTEST_TIMEOUT:
    pytestmark.append(pytest.mark.timeout(TEST_TIMEOUT_S))

CONCURRENT_TRANSACTIONS, NOT_COORDINATOR = 51, 16


def _hold_the_early_answer(monkeypatch: pytest.MonkeyPatch, first: str) -> tuple[threading.Event, threading.Event]:
    """Patch AddOffsetsToTxnHandler's answer handling: the first answer becomes ``first`` ("as is" keeps it and is held),
    a retried request's answer is held; held answers are handled once the returned ``release`` is set. ``retried`` is
    set once the first answer was turned into a retry (the request is then re-queued, backing off or in flight again)."""
    release, retried = threading.Event(), threading.Event()
    real = AddOffsetsToTxnHandler.on_complete
    answers = [0]

    def on_complete(self: Any, correlation_id: int, response_or_exc: Any) -> None:
        answers[0] += 1
        if answers[0] == 1 and first != "as is":
            if first == "disconnect":
                response_or_exc = KafkaConnectionError("injected: the connection to the coordinator dropped")
            elif first in ("concurrent", "not coordinator"):
                response_or_exc = SimpleNamespace(error_code=CONCURRENT_TRANSACTIONS if first == "concurrent" else NOT_COORDINATOR)
            real(self, correlation_id, response_or_exc)
            retried.set()
            return
        assert release.wait(30), "the commit did not queue its offsets"  # the sender thread waits here: nothing else is sent
        real(self, correlation_id, response_or_exc)

    monkeypatch.setattr(AddOffsetsToTxnHandler, "on_complete", on_complete)
    return release, retried


def _handlers(tm: Any) -> list:
    """Every request handler the transaction manager queues from now on (re-queued ones again)."""
    seen: list = []
    enqueue = tm._enqueue_request

    def recording(handler: Any) -> None:
        seen.append(handler)
        enqueue(handler)

    tm._enqueue_request = recording
    return seen


def _distinct(seen: list, kind: type) -> int:
    return len({id(h) for h in seen if isinstance(h, kind)})


@pytest.mark.parametrize("records", [1, 0], ids=["with records", "reads-only"])
@pytest.mark.parametrize("first", ["as is", "concurrent", "not coordinator", "disconnect"])
def test_offsets_queued_before_the_early_answer_commit_with_their_transaction(kafka_bootstrap, topic_factory, unique_name, monkeypatch, first, records):
    sink, tp, consumer, producer = _transactional_pair(kafka_bootstrap, topic_factory, unique_name, 4)
    tm = producer._transaction_manager
    try:
        producer.init_transactions()
        poll_n(consumer, 4)
        producer.partitions_for(sink)  # the sink's metadata now: a send must not wait for the sender thread, held below
        release, retried = _hold_the_early_answer(monkeypatch, first)
        seen = _handlers(tm)
        producer.begin_transaction()
        added = kafka_compat.add_group_early(producer, consumer)
        assert added is not None
        if records:
            producer.send(sink, value=b"one", partition=0)
        if first != "as is":
            assert retried.wait(20), "the early request was not answered"
        commit = kafka_compat.start_commit(producer, consumer, {tp: 2}, 30_000, added, "token-1")
        assert not added.is_done and not added.offsets.read  # the offsets joined the unanswered request
        release.set()
        kafka_compat.finish_commit(commit, 30_000)
        assert added.offsets.read and added.succeeded
        assert _distinct(seen, AddOffsetsToTxnHandler) == 1 and _distinct(seen, TxnOffsetCommitHandler) == 1
        got = consumer.committed(tp, metadata=True, timeout_ms=10_000)
        assert (got.offset, got.metadata) == (2, "token-1")
    finally:
        producer.close(timeout=10)
        consumer.close(autocommit=False)
    assert read_all(kafka_bootstrap, sink, 1, "read_committed") == [b"one"] * records


def _wrong_early_request(monkeypatch: pytest.MonkeyPatch, field: str) -> None:
    """The next AddOffsetsToTxn goes with a wrong producer id or epoch: the broker answers it with an error, adding nothing."""
    real = AddOffsetsToTxnHandler.__init__
    armed = [1]

    def init(self: Any, *args: Any) -> None:
        real(self, *args)
        if armed[0]:
            armed[0] = 0
            setattr(self.request, field, getattr(self.request, field) + 1)

    monkeypatch.setattr(AddOffsetsToTxnHandler, "__init__", init)


@pytest.mark.parametrize("records", [1, 0], ids=["with records", "reads-only"])
@pytest.mark.parametrize("wrong", ["producer_id", "producer_epoch"], ids=["abortable answer", "fatal answer"])
def test_an_early_request_failing_after_the_offsets_joined_it_fails_the_commit_and_commits_nothing(
    kafka_bootstrap, topic_factory, unique_name, monkeypatch, records, wrong
):
    """A wrong producer id is answered INVALID_PRODUCER_ID_MAPPING (abortable: the producer aborts and goes on, and its next
    transaction commits its own offsets only), a wrong epoch PRODUCER_FENCED (fatal: the monitor stops)."""
    sink, tp, consumer, producer = _transactional_pair(kafka_bootstrap, topic_factory, unique_name, 4)
    try:
        producer.init_transactions()
        poll_n(consumer, 4)
        producer.partitions_for(sink)  # the sink's metadata now: a send must not wait for the sender thread, held below
        release, _ = _hold_the_early_answer(monkeypatch, "as is")
        _wrong_early_request(monkeypatch, wrong)
        producer.begin_transaction()
        added = kafka_compat.add_group_early(producer, consumer)
        if records:
            producer.send(sink, value=b"lost", partition=0)
        commit = kafka_compat.start_commit(producer, consumer, {tp: 2}, 30_000, added, "token-1")
        assert not added.is_done and not added.offsets.read
        release.set()
        waited = time.monotonic()
        with pytest.raises(KafkaError) as failed:
            kafka_compat.finish_commit(commit, 30_000)
        # the answer's error, at once: not at the commit's deadline (kafka-python's sender, asleep after failing the queued
        # AddPartitionsToTxn, left the EndTxn queued until something woke it; an abort then would send it)
        assert not isinstance(failed.value, KafkaTimeoutError) and time.monotonic() - waited < 15
        assert added.result.failed and not added.offsets.read
        assert consumer.committed(tp, timeout_ms=10_000) is None
        if wrong == "producer_id":
            monkeypatch.undo()
            kafka_compat.abort_transaction(producer, 30_000)
            producer.begin_transaction()
            again = kafka_compat.add_group_early(producer, consumer)
            producer.send(sink, value=b"two", partition=0)
            kafka_compat.finish_commit(kafka_compat.start_commit(producer, consumer, {tp: 3}, 30_000, again, "token-2"), 30_000)
            got = consumer.committed(tp, metadata=True, timeout_ms=10_000)
            assert (got.offset, got.metadata) == (3, "token-2")
    finally:
        producer.close(timeout=10)
        consumer.close(autocommit=False)
    assert read_all(kafka_bootstrap, sink, 1, "read_committed") == ([b"two"] if wrong == "producer_id" else [])


def _queued_commits(tm: Any) -> int:
    return sum(1 for _, _, h in tm._pending_requests if isinstance(h, EndTxnHandler) and h.request.committed)


def _sender_looks_late(tm: Any) -> tuple[threading.Event, threading.Event]:
    """Hold the sender before it next dequeues while the transaction is in an abortable error with its commit queued
    (``looked`` set), until ``go``: the window in which a caller that gave up on the commit aborts."""
    looked, go = threading.Event(), threading.Event()
    real = tm.next_request_handler

    def next_request_handler(has_incomplete_batches: bool) -> Any:
        if tm.has_abortable_error() and _queued_commits(tm):
            looked.set()
            assert go.wait(30)
        return real(has_incomplete_batches)

    tm.next_request_handler = next_request_handler
    return looked, go


def test_an_abort_never_sends_the_commit_still_queued(kafka_bootstrap, topic_factory, unique_name, monkeypatch):
    """A transaction in an abortable error state with its EndTxn(commit) still queued (the sender fails it when it next
    looks, and it may not look before the caller gives up on the commit): kafka-python's abort queues an EndTxn(abort)
    behind it and, the state no longer an error one, sends the queued commit first. The transaction would commit its
    records without its offsets, and the monitor, believing it aborted, would send them again. abort_transaction fails
    the queued commit instead."""
    sink = topic_factory(partitions=2, prefix="sink2")
    _, tp, consumer, producer = _transactional_pair(kafka_bootstrap, topic_factory, unique_name, 4)
    tm = producer._transaction_manager
    try:
        producer.init_transactions()
        poll_n(consumer, 4)
        producer.partitions_for(sink)
        producer.begin_transaction()
        producer.send(sink, value=b"added", partition=0)
        producer.flush(timeout=20)  # partition 0 is in the transaction: it started
        release, _ = _hold_the_early_answer(monkeypatch, "as is")
        _wrong_early_request(monkeypatch, "producer_id")  # answered INVALID_PRODUCER_ID_MAPPING: abortable
        added = kafka_compat.add_group_early(producer, consumer)
        producer.send(sink, value=b"queued", partition=1)  # its AddPartitionsToTxn waits behind the held answer
        looked, go = _sender_looks_late(tm)
        commit = kafka_compat.start_commit(producer, consumer, {tp: 2}, 30_000, added, "token-1")
        release.set()
        assert looked.wait(20), "the early request's error did not come"
        assert added.result.failed and _queued_commits(tm) == 1

        def go_once_the_abort_is_queued() -> None:
            deadline = time.monotonic() + 20
            while not tm.is_aborting() and time.monotonic() < deadline:
                time.sleep(0.01)
            go.set()

        threading.Thread(target=go_once_the_abort_is_queued, daemon=True).start()
        kafka_compat.abort_transaction(producer, 20_000)
    finally:
        producer.close(timeout=10)
        consumer.close(autocommit=False)
    assert read_all(kafka_bootstrap, sink, 2, "read_committed") == []  # not b"added": the transaction did not commit
    assert commit.committed.failed


@pytest.mark.parametrize("records", [1, 0], ids=["with records", "reads-only"])
def test_offsets_joined_to_a_dropped_early_request_are_noticed_and_committed_alone(kafka_bootstrap, topic_factory, unique_name, records):
    """kafka-python as is (without keep_transactional_requests) drops the early request when its coordinator stays
    unreachable: the offsets joined to it never go, the EndTxn commits (or, reads-only, completes) without them. The
    commit says so (OffsetsLeftBehind) and commit_offsets_alone commits them with their token."""
    from tests.integration.test_broker import _unreachable_once

    sink, tp, consumer, producer = _transactional_pair(kafka_bootstrap, topic_factory, unique_name, 4)
    try:
        producer.init_transactions()
        poll_n(consumer, 4)
        producer.begin_transaction()
        if records:
            producer.send(sink, value=b"one", partition=0)
            producer.flush(timeout=20)  # its AddPartitionsToTxn answered: the next transactional request is the early one
        armed = _unreachable_once(producer)
        added = kafka_compat.add_group_early(producer, consumer)
        commit = kafka_compat.start_commit(producer, consumer, {tp: 2}, 20_000, added, "token-1")
        with pytest.raises(kafka_compat.OffsetsLeftBehind):
            kafka_compat.finish_commit(commit, 20_000)
        assert armed == [0] and not added.is_done and consumer.committed(tp, timeout_ms=10_000) is None
        kafka_compat.commit_offsets_alone(producer, consumer, {tp: 2}, 20_000, "token-1")
        got = consumer.committed(tp, metadata=True, timeout_ms=10_000)
        assert (got.offset, got.metadata) == (2, "token-1")
    finally:
        producer.close(timeout=10)
        consumer.close(autocommit=False)
    assert read_all(kafka_bootstrap, sink, 1, "read_committed") == [b"one"] * records
