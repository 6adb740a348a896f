"""Checkpoint ordering and rollback with fake producer/consumer objects, and the kafka-python compat layer.

The broker tests (tests/integration) are the end-to-end proof; these pin the logic: what is sent
in which order, what moves forward only after a commit, and what a rollback returns to.
"""

from __future__ import annotations

import inspect
import re
import threading
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka import KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata
from kafka.errors import KafkaError, KafkaTimeoutError, ProducerFencedError

from stream_monitor.core.sent import SentLedger, _digest, decode_sent
from stream_monitor.runtime import kafka_compat
from stream_monitor.runtime.checkpoint import Checkpoint

REPO_ROOT = Path(__file__).resolve().parents[1]
TP0, TP1 = TopicPartition("in", 0), TopicPartition("in", 1)


class FakeStore:
    """Encodes items as (key, value) without signing."""

    def encode(self, partition: int, items: dict[str, bytes]) -> list[tuple[bytes, bytes]]:
        return [(k.encode(), v) for k, v in items.items()]


class FakeProducer:
    """Records every call in ``calls``; ``fail_on`` names a call that raises."""

    def __init__(self, calls: list[tuple], fail_on: str | None = None) -> None:
        self.calls = calls
        self.fail_on = fail_on

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        if name == self.fail_on:
            raise KafkaError(f"{name} failed")

    def begin_transaction(self) -> None:
        self._call("begin")

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None, partition: int | None = None, **_: Any) -> None:
        self._call("send", topic, key, value, partition)

    def send_offsets_to_transaction(self, offsets: dict, meta: Any) -> None:
        self._call("send_offsets", {tp: o.offset for tp, o in offsets.items()})

    def commit_transaction(self) -> None:
        self._call("commit")

    def abort_transaction(self) -> None:
        self._call("abort")

    def flush(self) -> None:
        self._call("flush")


class FakeConsumer:
    def __init__(self, calls: list[tuple]) -> None:
        self.calls = calls

    def group_metadata(self) -> str:
        return "group"

    def commit(self, offsets: dict) -> None:
        self.calls.append(("consumer_commit", {tp: o.offset for tp, o in offsets.items()}))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.calls.append(("seek", tp, offset))


class FakeTask:
    """A partition task whose dirty state items are set by the test."""

    def __init__(self, items: dict[str, bytes] | None = None, origin: dict[str, bytes] | None = None) -> None:
        self.dirty = dict(items or {})
        self.origin = origin
        self.sent = SentLedger()  # outputs committed ahead of the state (core/sent.py)

    def state_items(self) -> dict[str, bytes]:
        out, self.dirty = self.dirty, {}
        return out


def make(exactly_once: bool = True, fail_on: str | None = None, max_record_bytes: int = 1 << 20) -> tuple[Checkpoint, list[tuple]]:
    calls: list[tuple] = []
    cp = Checkpoint(
        producer=FakeProducer(calls, fail_on),
        consumer=FakeConsumer(calls),
        store=FakeStore(),  # type: ignore[arg-type]
        exactly_once=exactly_once,
        changelog_topic="cl",
        operation_timeout_ms=1000,
        state_topics={"in"},
        max_record_bytes=max_record_bytes,
    )
    return cp, calls


def test_exactly_once_commit_sends_alerts_then_state_then_offsets_then_commits():
    cp, calls = make()
    cp.ensure_transaction()
    calls.append(("send", "alerts", b"fp", b"alert", None))  # what the app sends in the open transaction
    cp.add_alerts(["alert-1"])  # type: ignore[list-item]
    cp.processed(TP0, 10)
    result = cp.commit({0: FakeTask({"c\x1fm\x1fx": b"state"})})
    assert [c[0] for c in calls] == ["begin", "send", "send", "send_offsets", "commit"]
    assert calls[2] == ("send", "cl", b"c\x1fm\x1fx", b"state", 0)
    assert calls[3] == ("send_offsets", {TP0: 10})
    assert result is not None and result.alerts == ["alert-1"] and result.offsets == {TP0: 10}
    assert cp.committed_offsets == {TP0: 10} and cp.committed_items == {0: {"c\x1fm\x1fx": b"state"}}
    assert not cp.pending_offsets and not cp.pending_alerts and not cp.txn_open


def test_retraining_events_go_in_the_open_transaction_and_count_only_once_it_commits():
    from types import SimpleNamespace

    cp, calls = make()
    cp.ensure_transaction()
    event = SimpleNamespace(model="m", payload=b"retrain")
    cp.send_retraining("retrain-topic", [event])  # type: ignore[list-item]
    cp.processed(TP0, 4)
    result = cp.commit({0: FakeTask()})
    assert [c[0] for c in calls] == ["begin", "send", "send_offsets", "commit"]
    assert calls[1] == ("send", "retrain-topic", b"m", b"retrain", None)
    assert result is not None and result.retraining == [event] and not cp.pending_retraining
    cp.producer.fail_on = "commit"
    cp.ensure_transaction()
    cp.send_retraining("retrain-topic", [event])  # type: ignore[list-item]
    cp.processed(TP0, 8)
    with pytest.raises(KafkaError):
        cp.commit({0: FakeTask()})
    cp.abort()
    cp.rollback({}, {TP0}, lambda p, items: FakeTask())
    assert not cp.pending_retraining


def test_a_reads_only_commit_commits_the_inputs_offsets_without_state_and_leaves_the_state_partitions_pending():
    """Rows and progress records for the judge wait for a commit to become visible; a commit of
    what reading sent needs no state (reading keeps none): the input offsets commit with the rows,
    the state partition's offset and its changed items wait for the next full checkpoint."""
    cp, calls = make()
    raw = TopicPartition("raw", 0)  # an input partition read and forwarded (not a state topic)
    cp.ensure_transaction()
    calls.append(("send", "by-model", b"m", b"rows", 0))  # what the forwarder sends
    cp.processed(raw, 12)
    cp.processed(TP0, 3)  # the judge read the state partition up to here
    task = FakeTask({"c\x1fm\x1fx": b"state"})
    result = cp.commit({0: task}, reads_only=True)
    assert [c[0] for c in calls] == ["begin", "send", "send_offsets", "commit"]
    assert calls[2] == ("send_offsets", {raw: 12})
    assert result is not None and result.offsets == {raw: 12} and result.state_bytes == 0
    assert cp.committed_offsets == {raw: 12} and cp.pending_offsets == {TP0: 3} and cp.committed_items == {}
    assert task.dirty and not cp.txn_open
    cp.ensure_transaction()
    result = cp.commit({0: task})  # the next full checkpoint takes the rest
    assert result is not None and result.offsets == {TP0: 3} and cp.committed_items == {0: {"c\x1fm\x1fx": b"state"}}
    assert not cp.pending_offsets


def test_alerts_commit_without_the_state_and_their_sent_item_goes_with_them():
    """An alert's commit writes no state: the task's ``sent`` item (the alert's identity) goes in the same
    transaction, the state partition's offset and changed items wait for the next full checkpoint, which
    deletes the item again (the state written past the alert)."""
    cp, calls = make()
    raw = TopicPartition("raw", 0)
    cp.ensure_transaction()
    calls.append(("send", "alerts", b"fp", b"alert", None))  # what _emit sends
    cp.add_alerts(["alert"])  # type: ignore[list-item]
    cp.processed(raw, 12)
    cp.processed(TP0, 3)
    task = FakeTask({"c\x1fm\x1fx": b"state"})
    task.sent.track = True  # as MonitorApp._rebuild sets it (exactly-once, state kept, commits that may leave it out)
    assert task.sent.settle(["a1"], [], key=_digest) == (["a1"], [])
    quiet = FakeTask({"c\x1fm\x1fy": b"other"})  # a task that sent nothing writes nothing
    result = cp.commit({0: task, 1: quiet}, reads_only=True)
    assert result is not None and result.alerts == ["alert"] and result.offsets == {raw: 12}
    sent = [c for c in calls if c[0] == "send" and c[1] == "cl"]
    assert [(c[2], c[4]) for c in sent] == [(b"sent", 0)] and decode_sent(sent[0][3]) == {_digest("a1"): 1}
    assert cp.committed_items == {0: {"sent": sent[0][3]}} and cp.pending_offsets == {TP0: 3}
    assert task.dirty and quiet.dirty  # the state waits
    assert cp.commit({0: task}, reads_only=True) is not None and cp.committed_items[0] == {"sent": sent[0][3]}  # unchanged: not written again
    cp.ensure_transaction()
    task.dirty["sent"], _ = None, task.sent.state_item()  # what PartitionMonitor.state_items adds: the item deleted
    result = cp.commit({0: task})
    assert result is not None and result.offsets == {TP0: 3} and cp.committed_items[0] == {"c\x1fm\x1fx": b"state"}


def test_output_of_judging_in_the_transaction_refuses_a_reads_only_commit():
    cp, _ = make()
    cp.ensure_transaction()
    cp.ensure_transaction(judged=True)  # a dead letter of judging went in: its state must commit with it
    cp.add_alerts(["alert"])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        cp.commit({}, reads_only=True)
    assert cp.commit({}).alerts == ["alert"] and not cp.judged_in_txn  # type: ignore[union-attr]
    cp_alo, _ = make(exactly_once=False)
    with pytest.raises(ValueError):
        cp_alo.commit({}, reads_only=True)


def test_a_commit_is_due_soon_only_with_something_in_the_transaction_and_every_input_read_to_its_end_or_alerts():
    from types import SimpleNamespace

    now = [0.0]
    cp, _ = make()
    cp.clock = lambda: now[0]
    cp.last_commit_at = cp.last_any_commit_at = 0.0
    ends = {TP0: SimpleNamespace(position=5, highwater=5), TP1: SimpleNamespace(position=3, highwater=9)}
    cp.consumer._subscription = SimpleNamespace(assignment=ends)  # what kafka_compat.caught_up reads
    now[0] = 0.1
    assert not cp.due_soon(0.05, [TP0], True)  # nothing sent: nobody waits
    cp.ensure_transaction()
    assert cp.due_soon(0.05, [TP0], True)
    assert not cp.due_soon(0.05, [TP0], False)  # no reads-only commits here (input partitioning)
    assert not cp.due_soon(0.05, [TP0, TP1], True)  # TP1 has records left: they go with the next batch
    assert not cp.due_soon(0.2, [TP0], True)  # too soon after the last commit
    cp.commit({}, reads_only=True)
    cp.ensure_transaction()
    assert not cp.due_soon(0.05, [TP0], True) and not cp.due(0.25)  # a reads-only commit counts for the soon bound only
    now[0] = 0.2
    cp.ensure_transaction(judged=True)  # a dead letter of judging: nobody waits for it
    assert not cp.due_soon(0.05, [TP0], True)
    cp.add_alerts(["alert"])  # type: ignore[list-item]
    assert cp.due_soon(0.05, [TP0], True) and cp.due_soon(0.05, [TP0], False)  # a full checkpoint, in either topology
    assert cp.due_soon(0.05, [TP0, TP1], True) and cp.alerts_wait(0.05)  # alerts do not wait for a backlog's interval
    assert not cp.alerts_wait(0.3) and not cp.due_soon(0.3, [TP0], True)  # but for the soon bound
    now[0] = 0.26
    assert cp.due(0.25)


def test_nothing_pending_means_no_transaction():
    cp, calls = make()
    assert cp.commit({0: FakeTask()}) is None
    assert calls == []


def test_at_least_once_flushes_before_committing_offsets():
    cp, calls = make(exactly_once=False)
    cp.processed(TP1, 7)
    cp.commit({1: FakeTask({"labels": b"l"})})
    assert [c[0] for c in calls] == ["send", "flush", "consumer_commit"]
    assert calls[-1] == ("consumer_commit", {TP1: 7})


def test_failed_commit_moves_nothing_forward_and_rollback_returns_to_the_last_commit():
    cp, calls = make()
    cp.processed(TP0, 5)
    cp.commit({0: FakeTask({"a": b"1"})})
    cp.producer.fail_on = "commit"
    cp.ensure_transaction()
    cp.add_alerts(["lost"])  # type: ignore[list-item]
    cp.processed(TP0, 9)
    with pytest.raises(KafkaError):
        cp.commit({0: FakeTask({"a": b"2"})})
    assert cp.committed_offsets == {TP0: 5} and cp.committed_items == {0: {"a": b"1"}}
    cp.abort()
    assert calls[-1] == ("abort",) and not cp.txn_open
    tasks: dict[int, Any] = {0: FakeTask()}
    cp.rollback(tasks, {TP0}, lambda p, items: FakeTask(origin=items))
    assert tasks[0].origin == {"a": b"1"}
    assert ("seek", TP0, 5) in calls
    assert not cp.pending_offsets and not cp.pending_alerts


def test_a_start_below_what_this_process_committed_is_raised_to_it_and_its_polled_records_dropped():
    """After a broker restart the group's committed offsets were once answered as none: the reset
    policy started the input again at 0 and every row already judged came back as a late dead
    letter. An input partition that comes back (lost, then assigned again) never starts below what
    this process committed for it; a state partition's committed offset may move back (rows read
    again after a restore) and is left alone."""
    cp, calls = make()
    in0, in1 = TopicPartition("raw", 0), TopicPartition("raw", 1)  # input partitions (not state topics)
    cp.processed(in0, 40)
    cp.processed(in1, 7)
    cp.processed(TP0, 30)  # a state partition
    cp.commit({})
    cp.forget({in0, in1, TP0})  # lost: the partitions went, their committed offsets with them
    assert cp.committed_offsets == {}
    positions = {in0: 0, in1: 9, TP0: 12}  # in0 came back at its beginning, in1 further on (another owner committed more)
    batch: dict[TopicPartition, list] = {in0: ["polled from 0"], in1: ["polled from 9"]}
    moved = cp.raise_to_committed(positions, batch)
    assert moved == {in0: (0, 40)}
    assert positions == {in0: 40, in1: 9, TP0: 12} and batch == {in1: ["polled from 9"]}
    assert [c for c in calls if c[0] == "seek"] == [("seek", in0, 40)]
    assert cp.raise_to_committed({in0: 40}, {}) == {}  # at or past it: left alone


def test_rollback_seeks_only_owned_partitions():
    cp, calls = make()
    cp.positions({TP0: 3, TP1: 4})
    cp.rollback({}, {TP1}, lambda p, items: FakeTask())
    assert [c for c in calls if c[0] == "seek"] == [("seek", TP1, 4)]


def test_revoked_after_a_commit_is_parked_and_reclaimed_only_at_the_same_offsets():
    cp, _ = make()
    task = FakeTask()
    cp.started(0, {"a": b"1"})
    cp.positions({TP0: 12})
    cp.release(0, task, keep=True)
    cp.forget({TP0})
    assert cp.reclaim(0, {TP0: 12}) is task and cp.committed_items[0] == {"a": b"1"}
    cp.release(0, task, keep=True)
    assert cp.reclaim(0, {TP0: 13}) is None  # came back elsewhere: restore from the changelog


def test_revoked_with_pending_work_or_lost_is_never_parked():
    cp, _ = make()
    cp.positions({TP0: 1})
    cp.release(0, FakeTask(), keep=False)
    assert cp.reclaim(0, {TP0: 1}) is None
    cp.processed(TP1, 2)
    cp.release(0, FakeTask(), keep=True)
    assert cp.reclaim(0, {TP0: 1}) is None


def test_stalled_for_counts_from_the_first_failure():
    now = [100.0]
    cp, _ = make()
    cp.clock = lambda: now[0]
    assert cp.stalled_for() is None
    cp.failing_since = 90.0
    assert cp.stalled_for() == 10.0


# ------------------------------------------------------------------ kafka_compat
class _Result:
    def __init__(self, completes: bool) -> None:
        self.completes = completes

    def wait(self, timeout_ms: int | None = None) -> bool:
        return self.completes


class _Internals:
    """A producer with the private transaction manager and sender the compat layer drives."""

    def __init__(self, completes: bool) -> None:
        self.woken = 0
        outer = self

        class TM:
            _lock = threading.Lock()
            _pending_txn_offset_commits: dict = {}

            def begin_commit(self) -> _Result:
                return _Result(completes)

            def begin_abort(self) -> _Result:
                return _Result(completes)

            def send_offsets_to_transaction(self, offsets: dict, meta: Any) -> _Result:
                return _Result(completes)

        class Sender:
            def wakeup(self) -> None:
                outer.woken += 1

        self._transaction_manager = TM()
        self._sender = Sender()


def test_bounded_commit_raises_a_timeout_instead_of_waiting_forever():
    producer = _Internals(completes=False)
    with pytest.raises(KafkaTimeoutError, match="send_offsets did not complete"):
        kafka_compat.commit_transaction(producer, FakeConsumer([]), {TP0: 1}, timeout_ms=10)
    with pytest.raises(KafkaTimeoutError, match="abort did not complete"):
        kafka_compat.abort_transaction(producer, timeout_ms=10)
    ok = _Internals(completes=True)
    kafka_compat.commit_transaction(ok, FakeConsumer([]), {TP0: 1}, timeout_ms=10)
    assert ok.woken == 2


def test_fenced_is_fatal_during_abort():
    cp, _ = make()
    cp.ensure_transaction()

    def fenced() -> None:
        raise ProducerFencedError()

    cp.producer.abort_transaction = fenced
    with pytest.raises(kafka_compat.FatalError, match="fenced while aborting"):
        cp.abort()
    assert not cp.txn_open


def test_installed_kafka_python_is_the_verified_one():
    """Fails on a kafka-python upgrade: re-check the private API below, then widen VERIFIED_RANGE."""
    assert kafka_compat.version_verified(), (
        f"kafka-python {kafka_compat.installed_version()} is outside {kafka_compat.VERIFIED_SPEC}: "
        "stream_monitor/runtime/kafka_compat.py drives its private transaction API"
    )


def test_pyproject_pins_the_verified_range():
    deps = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [re.sub(r"\s", "", d) for d in deps if d.replace("_", "-").startswith("kafka-python")]
    assert pins == ["kafka-python" + kafka_compat.VERIFIED_SPEC]


def test_the_private_api_the_compat_layer_uses_is_there():
    from kafka.producer.sender import Sender
    from kafka.producer.transaction_manager import TransactionalRequestResult, TransactionManager

    init = inspect.getsource(KafkaProducer.__init__)
    assert "self._transaction_manager = " in init and "self._sender = " in init
    for name in ("begin_commit", "begin_abort", "send_offsets_to_transaction"):
        assert callable(getattr(TransactionManager, name, None)), name
    assert "timeout_ms" in inspect.signature(TransactionalRequestResult.wait).parameters
    assert callable(getattr(Sender, "wakeup", None))
    # kafka_compat._begin_abort fails a queued EndTxn(commit): the queue is a heap of (priority, sort id, handler) under _lock
    from kafka.producer.transaction_manager import EndTxnHandler, TxnRequestHandler

    enqueue = inspect.getsource(TransactionManager._enqueue_request)
    assert "heapq.heappush(" in enqueue and "self._pending_requests," in enqueue and "request_handler\n" in enqueue
    assert "committed=committed" in inspect.getsource(EndTxnHandler.__init__) and callable(getattr(TxnRequestHandler, "fail", None))
    assert callable(getattr(TransactionManager, "has_abortable_error", None))
    # finish_commit compares the producer id and epoch the commit began with (a KIP-360 bump aborts it on the broker)
    from kafka.producer.transaction_manager import ProducerIdAndEpoch

    assert "self.producer_id_and_epoch = " in inspect.getsource(TransactionManager.__init__) and "__eq__" in vars(ProducerIdAndEpoch)


def test_the_private_api_of_the_early_group_add_is_there():
    """kafka_compat.add_group_early / _txn_offset_commit queue a TxnOffsetCommit on the transaction manager themselves."""
    from kafka.producer.transaction_manager import AddOffsetsToTxnHandler, TransactionalRequestResult, TransactionManager, TxnOffsetCommitHandler

    assert list(inspect.signature(TxnOffsetCommitHandler.__init__).parameters) == ["self", "transaction_manager", "group_metadata", "offsets", "result"]
    assert isinstance(inspect.getattr_static(TxnOffsetCommitHandler, "result"), property)
    init = inspect.getsource(TransactionManager.__init__)
    assert "self._pending_txn_offset_commits = " in init and "self._lock = threading.Condition()" in init
    assert callable(getattr(TransactionManager, "_enqueue_request", None))
    assert isinstance(inspect.getattr_static(TransactionalRequestResult, "succeeded"), property)
    # offsets queued before the early AddOffsetsToTxn answered join it: its handler keeps the dict it was given and
    # reads it (items()) only in its successful answer, under the lock start_commit takes (on_complete holds it)
    assert "self.offsets = offsets" in inspect.getsource(AddOffsetsToTxnHandler.__init__)
    answer = inspect.getsource(AddOffsetsToTxnHandler.handle_response)
    assert answer.count("self.offsets") == 1 and "in self.offsets.items():" in answer
    assert "with self.transaction_manager._lock:\n" in inspect.getsource(inspect.getmodule(AddOffsetsToTxnHandler).TxnRequestHandler.on_complete)


class _Pending:
    """A transactional request result the test completes (or fails) by hand."""

    def __init__(self) -> None:
        self.done, self.error = False, None

    @property
    def succeeded(self) -> bool:
        return self.done and self.error is None

    @property
    def is_done(self) -> bool:
        return self.done or self.error is not None

    def wait(self, timeout_ms: int | None = None) -> bool:
        if self.error is not None:
            raise self.error
        return self.done


def _offsets_sent(calls: list[tuple]) -> list[dict]:
    """The offsets (next offset per partition) of each AddOffsetsToTxn an InternalsProducer got, as they are now."""
    return [{tp: o.offset for tp, o in dict.items(c[1])} for c in calls if c[0] == "send_offsets"]


class InternalsProducer(FakeProducer):
    """A fake producer with the private transaction manager: the commit completes when the test says so."""

    def __init__(self, calls: list[tuple]) -> None:
        super().__init__(calls)
        producer = self
        self.end_txn = _Pending()

        class TM:
            _lock = threading.Lock()
            _pending_txn_offset_commits: dict = {}

            def send_offsets_to_transaction(self, offsets: dict, meta: Any) -> _Pending:
                # as kafka-python's handler, keep the dict (the early add's gets the commit's offsets while unanswered)
                producer._call("send_offsets", offsets)
                done = _Pending()
                done.done = bool(offsets)  # the early add (no offsets) has not answered: the commit's offsets join it
                return done

            def begin_commit(self) -> _Pending:
                producer._call("commit")
                return producer.end_txn

        from types import SimpleNamespace

        self._transaction_manager = TM()
        self._sender = SimpleNamespace(wakeup=lambda: None)


def test_a_begun_commit_moves_nothing_forward_until_it_ends():
    cp, calls = make()
    cp.producer = InternalsProducer(calls)
    cp.processed(TP0, 3)
    cp.ensure_transaction(judged=True)
    cp.add_alerts(["a1"])  # type: ignore[list-item]
    begun = cp.begin_commit({0: FakeTask({"k": b"v"})})
    # one AddOffsetsToTxn, sent when the transaction began; unanswered, it carries the commit's offsets (no second one)
    assert begun is not None and [c[0] for c in calls if c[0] in ("send_offsets", "commit")] == ["send_offsets", "commit"]
    assert _offsets_sent(calls) == [{TP0: 3}]
    assert cp.committed_offsets == {} and cp.committed_items == {} and cp.pending_alerts == ["a1"] and cp.txn_open
    cp.producer.end_txn.done = True
    result = cp.end_commit(begun)
    assert result.alerts == ["a1"] and cp.committed_offsets == {TP0: 3} and cp.committed_items == {0: {"k": b"v"}}
    assert not cp.txn_open and cp.pending_offsets == {} and 0 <= result.waited <= result.seconds


def test_a_begun_commit_that_fails_when_it_ends_moves_nothing_forward():
    cp, calls = make()
    cp.producer = InternalsProducer(calls)
    cp.processed(TP0, 3)
    begun = cp.begin_commit({0: FakeTask({"k": b"v"})})
    assert begun is not None
    cp.producer.end_txn.error = KafkaError("EndTxn failed")
    with pytest.raises(KafkaError, match="EndTxn failed"):
        cp.end_commit(begun)
    assert cp.committed_offsets == {} and cp.committed_items == {} and cp.pending_offsets == {TP0: 3} and cp.txn_open


def _lost_answer(cp: Checkpoint, calls: list[tuple]) -> Any:
    cp.producer = InternalsProducer(calls)
    cp.processed(TP0, 3)
    cp.ensure_transaction(judged=True)
    cp.add_alerts(["a1"])  # type: ignore[list-item]
    begun = cp.begin_commit({0: FakeTask({"k": b"v"})})
    assert begun is not None
    cp.producer.end_txn.error = KafkaTimeoutError("commit did not complete within 1000 ms")
    with pytest.raises(KafkaTimeoutError):
        cp.end_commit(begun)
    return begun


def test_a_reads_only_commit_owning_only_state_partitions_commits_one_of_their_offsets_again_so_a_lost_answer_settles():
    """``state_partitioning: input`` (or a by-model instance with no input partition): a reads-only commit of alerts
    ahead of the state has no offset of its own; it commits an owned state partition's committed offset again, with
    its token, so the outcome of a commit whose answer was lost is known (its alerts and ``sent`` item committed)."""
    cp, calls = make()
    cp.producer = InternalsProducer(calls)
    cp.owned = {TP0}
    cp.positions({TP0: 3})  # assigned there (the group's committed offset)
    cp.processed(TP0, 9)  # judged past it: that offset waits for the state
    cp.ensure_transaction()
    cp.add_alerts(["a1"])  # type: ignore[list-item]
    task = FakeTask({"c\x1fm\x1fx": b"state"})
    task.sent.track = True
    task.sent.settle(["a1"], [], key=_digest)
    begun = cp.begin_commit({0: task}, reads_only=True)
    assert begun is not None and begun.token and begun.offsets == {TP0: 3}  # the committed offset again, not 9
    cp.producer.end_txn.error = KafkaTimeoutError("commit did not complete within 1000 ms")
    with pytest.raises(KafkaTimeoutError):
        cp.end_commit(begun)
    result = cp.settle(begun, lambda tp: OffsetAndMetadata(3, begun.token, -1))
    assert result is not None and result.alerts == ["a1"] and cp.committed_offsets == {TP0: 3} and cp.pending_offsets == {TP0: 9}
    assert set(cp.committed_items[0]) == {"sent"}  # a rollback now rebuilds the task with it: the alert is not sent twice
    cp.owned = set()
    assert cp._anchor(reads_only=True) is None  # nothing owned: nothing to commit again


def test_a_commit_whose_answer_was_lost_but_whose_offsets_the_group_has_moves_forward():
    cp, calls = make()
    begun = _lost_answer(cp, calls)
    assert begun.token and begun.offsets == {TP0: 3}
    asked: list[TopicPartition] = []
    result = cp.settle(begun, lambda tp: asked.append(tp) or OffsetAndMetadata(3, begun.token, -1))
    assert asked == [TP0] and result is not None and result.alerts == ["a1"]
    assert cp.committed_offsets == {TP0: 3} and cp.committed_items == {0: {"k": b"v"}} and not cp.txn_open and not cp.pending_alerts
    tasks: dict[int, Any] = {0: FakeTask()}
    cp.rollback(tasks, {TP0}, lambda p, items: FakeTask(origin=items))  # what was read after it is read again, from it
    assert tasks[0].origin == {"k": b"v"} and ("seek", TP0, 3) in calls


@pytest.mark.parametrize("repair_fails", [False, True])
def test_a_transaction_that_committed_without_its_offsets_has_them_committed_alone(monkeypatch, repair_fails):
    """kafka-python can drop the offsets' request and commit the rest (tests/integration/test_broker.py shows it):
    the offsets then go in a transaction of their own, with the same token; if that fails, the commit fails as any."""
    cp, calls = make()
    real_finish = kafka_compat.finish_commit
    finishes: list[int] = []

    def finish(commit: Any, timeout_ms: int) -> None:
        finishes.append(1)
        if len(finishes) == 1:
            raise kafka_compat.OffsetsLeftBehind("the transaction committed before its offsets")
        if repair_fails:
            raise KafkaTimeoutError("commit did not complete")
        real_finish(commit, timeout_ms)

    monkeypatch.setattr(kafka_compat, "finish_commit", finish)
    cp.ensure_transaction()
    cp.add_alerts(["a1"])  # type: ignore[list-item]
    cp.processed(TP0, 5)
    begun = cp.begin_commit({0: FakeTask({"k": b"v"})})
    assert begun is not None
    del calls[:]
    if repair_fails:
        with pytest.raises(KafkaTimeoutError):
            cp.end_commit(begun)
        assert cp.txn_open and cp.committed_offsets == {} and cp.pending_alerts == ["a1"]  # the caller aborts, settles, rolls back
        return
    result = cp.end_commit(begun)
    assert calls == [("begin",), ("send_offsets", {TP0: 5}), ("commit",)]
    assert cp.offsets_left_behind == 1 and result.offsets == {TP0: 5} and result.alerts == ["a1"]
    assert cp.committed_offsets == {TP0: 5} and cp.committed_items == {0: {"k": b"v"}} and not cp.txn_open


def test_a_lost_answer_found_in_a_rebalance_callback_is_rolled_back_not_fatal():
    """kafka-python runs rebalance callbacks on its IO thread and refuses blocking consumer calls there: a commit
    that fails when a revocation ends it cannot ask the group, and the monitor rolls back as when the broker does
    not answer (seen in test_fault_injection's broker restart: the RuntimeError failed the callback, exit 1)."""
    from stream_monitor.config import load_config
    from stream_monitor.runtime.app import MonitorApp

    app = MonitorApp(load_config(None, env={}, overrides={"kafka.group_id": "g", "state.enabled": False, "metrics.enabled": False}))
    cp, calls = make()
    app.checkpoint = cp
    begun = _lost_answer(cp, calls)
    refusal = "Cannot block on net.run() from the IO thread itself."

    def committed(tp: TopicPartition, metadata: bool = False, timeout_ms: int | None = None) -> Any:
        raise RuntimeError(refusal)

    app.consumer = SimpleNamespace(committed=committed)
    app._settle(begun)  # no answer: nothing moves forward, the rollback that follows returns to the checkpoint before
    assert cp.committed_offsets == {} and cp.pending_alerts == ["a1"] and app.stats.checkpoints == 0
    refusal = "something else"
    with pytest.raises(RuntimeError, match="something else"):
        app._settle(begun)


@pytest.mark.parametrize("on_broker", [None, (0, "same"), (2, "same"), (3, ""), (3, "stream-monitor another 1")])
def test_a_commit_whose_answer_was_lost_and_whose_offsets_the_group_has_not_moves_nothing(on_broker):
    cp, calls = make()
    begun = _lost_answer(cp, calls)
    answer = None if on_broker is None else OffsetAndMetadata(on_broker[0], begun.token if on_broker[1] == "same" else on_broker[1], -1)
    assert cp.settle(begun, lambda tp: answer) is None
    assert cp.committed_offsets == {} and cp.committed_items == {} and cp.pending_alerts == ["a1"]


def test_a_transaction_without_offsets_commits_an_owned_partitions_offset_again_so_its_outcome_can_be_told():
    cp, calls = make()
    cp.producer = InternalsProducer(calls)
    cp.committed_offsets.update({TP0: 7, TP1: 4})
    cp.owned = {TP1}  # TP0 went to another instance: never committed from here again
    cp.ensure_transaction(judged=True)
    cp.add_alerts(["a1"])  # type: ignore[list-item]
    begun = cp.begin_commit({0: FakeTask({"k": b"v"})})
    assert begun is not None and begun.offsets == {TP1: 4} and begun.token
    tokens = {o.metadata for c in calls if c[0] == "send_offsets" for o in dict.values(c[1])}
    assert tokens == {begun.token}  # the offsets went with the transaction's token as their metadata
    cp.producer.end_txn.done = True
    assert cp.end_commit(begun).offsets == {TP1: 4}
    begun2 = cp.begin_commit({0: FakeTask({"k": b"w"})})
    assert begun2 is not None and begun2.token != begun.token  # each transaction its own


def test_the_next_send_ends_a_begun_commit_first_once_and_its_failure_stops_the_send():
    cp, calls = make()
    ended: list[int] = []
    cp.before_send = lambda: ended.append(len(calls))
    cp.ensure_transaction()
    cp.ensure_transaction()
    assert ended == [0] and cp.before_send is None and calls == [("begin",)]  # ended before the transaction began, once

    def failed() -> None:
        raise KafkaError("EndTxn failed")

    cp, calls = make()
    cp.before_send = failed
    with pytest.raises(KafkaError, match="EndTxn failed"):
        cp.ensure_transaction(judged=True)
    assert calls == [] and not cp.txn_open and not cp.judged_in_txn


# ------------------------------------------------------------------ sizes
def test_an_oversized_state_item_is_a_tombstone_not_a_commit_that_fails_forever():
    cp, calls = make(max_record_bytes=100)
    cp.processed(TP0, 3)
    result = cp.commit({0: FakeTask({"small": b"s" * 10, "c\x1fm\x1fbig": b"b" * 200})})
    assert result is not None and result.oversized == [(0, "c\x1fm\x1fbig", 200)]
    sends = {c[2]: c[3] for c in calls if c[0] == "send"}
    assert sends == {b"small": b"s" * 10, b"c\x1fm\x1fbig": None}  # the stale version is deleted too
    assert calls[-1][0] == "commit" and cp.committed_offsets == {TP0: 3}
    assert cp.committed_items[0] == {"small": b"s" * 10}  # a rebuild starts the big item's channel again


def test_an_item_that_is_gone_is_a_tombstone_and_leaves_the_committed_items():
    cp, calls = make()
    cp.processed(TP0, 3)
    cp.commit({0: FakeTask({"labels": b"l", "labels\x1f1": b"s"})})
    assert cp.committed_items[0] == {"labels": b"l", "labels\x1f1": b"s"}
    calls.clear()
    cp.processed(TP0, 5)
    result = cp.commit({0: FakeTask({"labels": b"l2", "labels\x1f1": None})})
    assert result is not None and result.state_bytes == 2
    assert [c[2:] for c in calls if c[0] == "send"] == [(b"labels", b"l2", 0), (b"labels\x1f1", None, 0)]
    assert cp.committed_items[0] == {"labels": b"l2"}  # a rollback rebuilds without it


def test_the_app_never_sends_a_state_record_above_the_producer_request_size():
    from stream_monitor.config import KafkaSettings
    from stream_monitor.runtime import clients

    settings = KafkaSettings(client_options={"producer": {"max_request_size": 4096}})
    assert clients.max_request_size(settings) == 4096
    assert 0 < clients.max_record_bytes(settings) < 4096


class FakeAdmin:
    """describe_topics/create_topics over an in-memory topic table."""

    def __init__(self, topics: dict[str, int]) -> None:
        self.topics = dict(topics)
        self.created: dict[str, dict] = {}

    def describe_topics(self, names: list[str]) -> list[dict]:
        return [{"name": n, "error_code": 0, "partitions": [{}] * self.topics[n]} for n in names if n in self.topics]

    def create_topics(self, specs: dict[str, dict]) -> None:
        for name, spec in specs.items():
            self.created[name] = spec["configs"]
            self.topics[name] = spec["num_partitions"]


def test_created_topics_admit_what_the_producer_may_send():
    from stream_monitor.config import load_config
    from stream_monitor.runtime.topics import prepare_topology

    cfg = load_config(None, env={}, overrides={"kafka.input_topics": ["in"], "kafka.client_options": {"producer": {"max_request_size": 5_000_000}}})
    admin = FakeAdmin({"in": 2})
    assert prepare_topology(admin, cfg, lambda: False) == 2
    k = cfg.kafka
    assert set(admin.created) == {k.alerts_topic, k.dlq_topic, k.resolved_changelog_topic(), k.resolved_repartition_topic()}
    for name, configs in admin.created.items():
        assert configs["max.message.bytes"] == "5000000", name


# ------------------------------------------------------------------ changelog restore
class FakeRestoreConsumer:
    """One changelog partition's records, served by poll until the position reaches the end."""

    def __init__(self, records: list[tuple[bytes, bytes | None]]) -> None:
        self.records = records
        self.pos = 0

    def assign(self, tps: list) -> None:
        pass

    def seek_to_beginning(self, tp: TopicPartition) -> None:
        self.pos = 0

    def end_offsets(self, tps: list) -> dict:
        return {tp: len(self.records) for tp in tps}

    def position(self, tp: TopicPartition) -> int:
        return self.pos

    def poll(self, timeout_ms: int, max_records: int) -> dict:
        from types import SimpleNamespace

        batch = [SimpleNamespace(key=k, value=v) for k, v in self.records[self.pos :]]
        self.pos = len(self.records)
        return {TopicPartition("cl", 0): batch}


def test_restore_rejects_moved_forged_and_old_records_by_reason_and_keeps_the_rest():
    from stream_monitor.core.signing import SigningKeys
    from stream_monitor.runtime.changelog import ChangelogStore

    keys = SigningKeys(bytes(range(32)))
    writer = ChangelogStore("cl", keys, None)  # type: ignore[arg-type]
    good, other = writer.encode(0, {"c\x1fm\x1fx": b"x-state", "c\x1fm\x1fy": b"y-state"})
    (from_p1,) = writer.encode(1, {"c\x1fm\x1fz": b"z-state"})
    records = [
        good,
        (b"c\x1fm\x1fy2", other[1]),  # y's signed value under another key
        from_p1,  # partition 1's record copied into partition 0
        (b"c\x1fm\x1fold", b"\x00" * 32 + b"\x01" + b"old pickle"),  # the previous format
        (b"c\x1fm\x1fforged", b"\x00" * 32 + b"\x02" + keys.current_id.encode() + b"forged"),
    ]
    result = ChangelogStore("cl", keys, FakeRestoreConsumer(records)).restore(0)  # type: ignore[arg-type]
    assert result.items == {"c\x1fm\x1fx": b"x-state"}
    assert result.rejected_by_reason == {"signature": 3, "old_format": 1}
    assert result.rejected == 4


def test_a_dead_letter_too_large_to_send_becomes_a_summary_that_fits():
    import hashlib

    import orjson

    from stream_monitor.core.events import DeadLetter, DeadLetterReason, SourcePosition
    from stream_monitor.runtime.records import fitted_dead_letter

    raw = b'{"model": "m", "blob": "' + b"x" * 50_000 + b'"}'
    dl = DeadLetter(DeadLetterReason.OVERSIZE, "too big", raw, SourcePosition("in", 1, 42))
    value, summarised = fitted_dead_letter(dl, limit=20_000)
    assert summarised and len(value) <= 20_000
    doc = orjson.loads(value)
    assert doc["original_size"] == len(raw) and doc["original_sha256"] == hashlib.sha256(raw).hexdigest() and doc["original_truncated"]
    assert doc["source"]["topic"] == "in" and doc["source"]["offset"] == 42 and doc["reason"] == "oversize"
    assert fitted_dead_letter(dl, limit=1 << 20) == (dl.to_json(), False)  # fits whole under the default cap
    assert fitted_dead_letter(dl, limit=1 << 20, max_original_bytes=10_000)[1], "the configured cap applies too"


def test_an_unreadable_state_item_resets_only_its_channel():
    import orjson

    from stream_monitor.core.events import SourcePosition
    from stream_monitor.core.monitor import InputRecord, PartitionMonitor
    from stream_monitor.core.spec import MonitorSpec
    from stream_monitor.runtime.changelog import tolerant_rebuild
    from stream_monitor.synthetic import StreamSpec, generate_events

    spec = MonitorSpec()
    events = generate_events(StreamSpec(model="m", n_events=500, seed=1, n_numeric=2, n_categorical=0))
    task = PartitionMonitor(spec, 0)
    task.process([InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, None)) for i, e in enumerate(events)])
    items = task.state_items(only_dirty=False)
    bad = sorted(k for k in items if k.startswith("c\x1fm\x1f"))[0]
    items[bad] = b"\x80\x05not state at all"  # verified by HMAC, yet unreadable by the codec
    restored, dropped = tolerant_rebuild(lambda part: PartitionMonitor.from_state_items(spec, 0, part), items)
    assert dropped in ([bad], [])  # [] once the core itself resets an unreadable channel
    assert set(restored.models["m"].channels) == set(task.models["m"].channels) - {bad.split("\x1f")[2]}


# ------------------------------------------------------------------ re-keyed records


def test_poison_guard_isolates_the_record_that_raises_then_dead_letters_it():
    from types import SimpleNamespace

    from stream_monitor.runtime.poison import PoisonGuard, PoisonRecord

    def run(records: list) -> list:
        if any(r.value == b"bad" for r in records):
            raise ValueError("core bug")
        return [r.value for r in records]

    records = [SimpleNamespace(value=v, position=None) for v in (b"a", b"bad", b"c")]
    guard, emitted, dead = PoisonGuard(), [], []

    def feed() -> None:
        guard.feed(TP0, [10, 11, 12], records, run, emitted.append, dead.append)

    with pytest.raises(PoisonRecord) as first:
        feed()  # the batch raises: the caller rolls back
    assert first.value.offset is None and emitted == []
    with pytest.raises(PoisonRecord) as second:
        feed()  # one at a time: the record is found
    assert second.value.offset == 11
    emitted.clear()  # what the rolled-back attempts emitted is discarded with the transaction
    feed()
    assert emitted == [[b"a"], [b"c"]] and [(d.reason, d.raw) for d in dead] == [("processing_error", b"bad")]
    guard.committed({TP0: 13})
    assert guard.careful == {} and guard.poison == {}


def test_an_at_least_once_commit_refused_on_the_io_thread_is_sent_asynchronously():
    """kafka-python 3.x calls rebalance listeners on its IO thread, where a blocking commit raises
    RuntimeError (seen closing an at-least-once `run`: "User rebalance callback throws an error")."""

    class IoThreadConsumer:
        def __init__(self) -> None:
            self.sent: list[dict] = []

        def commit(self, offsets: dict) -> None:
            raise RuntimeError("Cannot block on net.run() from the IO thread itself.")

        def commit_async(self, offsets: dict) -> None:
            self.sent.append({tp: o.offset for tp, o in offsets.items()})

    consumer = IoThreadConsumer()
    kafka_compat.commit_offsets(consumer, {TP0: 7})
    assert consumer.sent == [{TP0: 7}]

    class Broken(IoThreadConsumer):
        def commit(self, offsets: dict) -> None:
            raise RuntimeError("something else")

    with pytest.raises(RuntimeError, match="something else"):
        kafka_compat.commit_offsets(Broken(), {TP0: 7})


def test_partitions_restored_together_share_one_wait_for_a_transaction_still_open():
    import time as _time

    from stream_monitor.core.signing import SigningKeys
    from stream_monitor.runtime.changelog import ChangelogStore

    class Beyond(FakeRestoreConsumer):  # a high watermark past the last stable offset, forever
        def end_offsets(self, tps: list) -> dict:
            return {tp: len(self.records) + 1 for tp in tps}

    store = ChangelogStore("cl", SigningKeys(bytes(range(32))), FakeRestoreConsumer([]), watermark_consumer=Beyond([]), settle_s=0.3)  # type: ignore[arg-type]
    started = _time.monotonic()
    for p in range(4):
        assert store.restore(p).items == {}
    assert 0.3 <= _time.monotonic() - started < 0.9  # one wait of 0.3 s, not four
