"""Proves the dev/test broker (deploy/kafka/broker.sh) is a real Kafka with working group
and transaction coordinators, using kafka-python 3.x as the project will.

Every blocking step has its own timeout, and each whole test is bounded too (pytest-timeout's
marker when that plugin is installed, else a SIGALRM guard): kafka-python 3.0's
commit_transaction()/abort_transaction()/send_offsets_to_transaction() wait without a timeout
of their own.
"""

from __future__ import annotations

import importlib.util
import signal
import threading
import time
from typing import Iterable

import pytest

kafka = pytest.importorskip("kafka", minversion="3.0")

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402

TEST_TIMEOUT_S = 60
HAVE_PYTEST_TIMEOUT = importlib.util.find_spec("pytest_timeout") is not None

pytestmark = [pytest.mark.kafka]
if HAVE_PYTEST_TIMEOUT:
    pytestmark.append(pytest.mark.timeout(TEST_TIMEOUT_S))
CLIENT_OPTS = dict(request_timeout_ms=10_000)
CONSUMER_OPTS = dict(
    CLIENT_OPTS,
    enable_auto_commit=False,  # kafka-python 3 default is True: always set it explicitly
    auto_offset_reset="earliest",
    session_timeout_ms=10_000,
    heartbeat_interval_ms=1_000,
)
PRODUCER_OPTS = dict(CLIENT_OPTS, max_block_ms=20_000, linger_ms=0)


@pytest.fixture(autouse=True)
def _bounded_test():
    """Without pytest-timeout: fail (rather than hang) a test running longer than TEST_TIMEOUT_S."""
    if (
        HAVE_PYTEST_TIMEOUT  # its SIGALRM timer is the same one: don't fight over it
        or threading.current_thread() is not threading.main_thread()
        or not hasattr(signal, "SIGALRM")
    ):
        yield
        return

    def on_alarm(signum, frame):
        raise TimeoutError(f"test exceeded {TEST_TIMEOUT_S}s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def poll_n(consumer: KafkaConsumer, n: int, timeout_s: float = 20.0) -> list:
    """Poll until n records arrived (fails after timeout_s)."""
    records: list = []
    deadline = time.monotonic() + timeout_s
    while len(records) < n:
        assert time.monotonic() < deadline, f"got {len(records)} of {n} records in {timeout_s}s"
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    return records


def drain(consumer: KafkaConsumer, tps: Iterable[TopicPartition], timeout_s: float = 20.0) -> list:
    """Read assigned partitions up to their end offsets.

    Under read_committed, end_offsets() is the last stable offset and transaction markers
    occupy offsets: stop on position >= end offset, not on seeing the record at end - 1.
    """
    tps = list(tps)
    end = consumer.end_offsets(tps, timeout_ms=10_000)
    records: list = []
    deadline = time.monotonic() + timeout_s
    while any(consumer.position(tp, timeout_ms=10_000) < end[tp] for tp in tps):
        assert time.monotonic() < deadline, f"did not reach end offsets {end} in {timeout_s}s"
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    return records


def produce(bootstrap: str, topic: str, messages: Iterable[tuple[int, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_OPTS)
    try:
        for partition, value in messages:
            producer.send(topic, value=value, partition=partition)
        producer.flush(timeout=20)
    finally:
        producer.close(timeout=10)


def read_all(bootstrap: str, topic: str, partitions: int, isolation_level: str) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation_level, **CONSUMER_OPTS)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        return [r.value for r in drain(consumer, tps)]
    finally:
        consumer.close(autocommit=False)


def _transactional_producer(bootstrap: str, transactional_id: str) -> KafkaProducer:
    """A transactional producer, its transactions initialised."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=transactional_id, transaction_timeout_ms=30_000, **PRODUCER_OPTS)
    producer.init_transactions()
    return producer


def _group_offsets(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    """The group's committed offsets, read back through the admin API."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, **CLIENT_OPTS)
    try:
        return {tp: om.offset for tp, om in admin.list_group_offsets({group: None})[group].items()}
    finally:
        admin.close()


def test_broker_version_detected(kafka_bootstrap):
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, **CLIENT_OPTS)
    try:
        assert admin._manager.broker_version >= (4, 0)
        cluster = admin.describe_cluster()
        assert [b["broker_id"] for b in cluster["brokers"]] == [1]
    finally:
        admin.close()


def test_produce_consume_group_manual_commit(kafka_bootstrap, topic_factory, unique_name):
    topic = topic_factory(partitions=3)
    group = unique_name("group")
    tps = {TopicPartition(topic, p) for p in range(3)}
    produce(kafka_bootstrap, topic, [(i % 3, b"m%d" % i) for i in range(30)])

    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=group, **CONSUMER_OPTS)
    try:
        records = poll_n(consumer, 30)
        assert sorted(r.value for r in records) == sorted(b"m%d" % i for i in range(30))
        assert consumer.assignment() == tps
        for p in range(3):  # per-partition order is kept
            values = [r.value for r in records if r.partition == p]
            assert values == [b"m%d" % i for i in range(p, 30, 3)]

        # commit a partial position first, then everything consumed
        tp0 = TopicPartition(topic, 0)
        consumer.commit({tp0: OffsetAndMetadata(4, "half", -1)}, timeout_ms=10_000)
        assert consumer.committed(tp0, timeout_ms=10_000) == 4
        consumer.commit(timeout_ms=10_000)
        assert {tp: consumer.committed(tp, timeout_ms=10_000) for tp in tps} == {tp: 10 for tp in tps}
    finally:
        consumer.close(autocommit=False)

    assert _group_offsets(kafka_bootstrap, group) == {tp: 10 for tp in tps}

    # a new member of the group resumes at the committed offsets: only new records arrive
    produce(kafka_bootstrap, topic, [(1, b"late")])
    consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=group, **CONSUMER_OPTS)
    try:
        assert [r.value for r in poll_n(consumer, 1)] == [b"late"]
        assert consumer.poll(timeout_ms=500) == {}
    finally:
        consumer.close(autocommit=False)


def test_transaction_commit_visible_abort_invisible(kafka_bootstrap, topic_factory, unique_name):
    topic = topic_factory(partitions=3)
    producer = _transactional_producer(kafka_bootstrap, unique_name("txn"))
    try:

        producer.begin_transaction()
        for i in range(6):
            producer.send(topic, value=b"committed-%d" % i, partition=i % 3)
        producer.commit_transaction()

        producer.begin_transaction()
        for i in range(6):
            producer.send(topic, value=b"aborted-%d" % i, partition=i % 3)
        producer.flush(timeout=20)  # make sure the aborted records really reach the log
        producer.abort_transaction()

        producer.begin_transaction()
        producer.send(topic, value=b"after-abort", partition=0)
        producer.commit_transaction()
    finally:
        producer.close(timeout=10)

    committed = read_all(kafka_bootstrap, topic, 3, "read_committed")
    assert sorted(committed) == sorted([b"committed-%d" % i for i in range(6)] + [b"after-abort"])

    everything = read_all(kafka_bootstrap, topic, 3, "read_uncommitted")
    assert sorted(v for v in everything if v.startswith(b"aborted-")) == sorted(
        b"aborted-%d" % i for i in range(6)
    )


def test_send_offsets_to_transaction_commits_group_offsets_atomically(
    kafka_bootstrap, topic_factory, unique_name
):
    source = topic_factory(partitions=3, prefix="source")
    sink = topic_factory(partitions=3, prefix="sink")
    group = unique_name("group")
    source_tps = {TopicPartition(source, p) for p in range(3)}
    produce(kafka_bootstrap, source, [(i % 3, b"in-%d" % i) for i in range(9)])

    consumer = KafkaConsumer(
        source,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        isolation_level="read_committed",
        **CONSUMER_OPTS,
    )
    producer = _transactional_producer(kafka_bootstrap, unique_name("txn"))
    try:
        batch1 = poll_n(consumer, 9)
        assert consumer.assignment() == source_tps
        meta = consumer.group_metadata()
        assert meta.group_id == group and meta.generation_id >= 0 and meta.member_id

        def process(records) -> dict:
            offsets = {}
            for r in records:
                producer.send(sink, value=r.value.replace(b"in-", b"out-"), partition=r.partition)
                tp = TopicPartition(r.topic, r.partition)
                offsets[tp] = OffsetAndMetadata(max(r.offset + 1, offsets.get(tp, OffsetAndMetadata(0)).offset), "", -1)
            return offsets

        # batch 1: consume-transform-produce, offsets committed inside the transaction
        producer.begin_transaction()
        producer.send_offsets_to_transaction(process(batch1), consumer.group_metadata())
        producer.commit_transaction()
        assert {tp: consumer.committed(tp, timeout_ms=10_000) for tp in source_tps} == {tp: 3 for tp in source_tps}

        # batch 2: aborted -> neither the output nor the offsets become visible
        produce(kafka_bootstrap, source, [(i % 3, b"in-x%d" % i) for i in range(3)])
        batch2 = poll_n(consumer, 3)
        producer.begin_transaction()
        producer.send_offsets_to_transaction(process(batch2), consumer.group_metadata())
        producer.abort_transaction()
        assert {tp: consumer.committed(tp, timeout_ms=10_000) for tp in source_tps} == {tp: 3 for tp in source_tps}
    finally:
        producer.close(timeout=10)
        consumer.close(autocommit=False)

    assert _group_offsets(kafka_bootstrap, group) == {tp: 3 for tp in source_tps}

    out = read_all(kafka_bootstrap, sink, 3, "read_committed")
    assert sorted(out) == sorted(b"out-%d" % i for i in range(9))


def _transactional_pair(kafka_bootstrap, topic_factory, unique_name, records: int):
    """A sink topic, a one-partition source holding ``records`` records, a read_committed consumer of it and a transactional producer."""
    source = topic_factory(partitions=1, prefix="source")
    sink = topic_factory(partitions=1, prefix="sink")
    produce(kafka_bootstrap, source, [(0, b"in-%d" % i) for i in range(records)])
    consumer = KafkaConsumer(source, bootstrap_servers=kafka_bootstrap, group_id=unique_name("group"), isolation_level="read_committed", **CONSUMER_OPTS)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=unique_name("txn"), transaction_timeout_ms=30_000, **PRODUCER_OPTS)
    return sink, TopicPartition(source, 0), consumer, producer


def test_the_compat_layer_commits_and_aborts_through_a_real_producers_internals(kafka_bootstrap, topic_factory, unique_name):
    """kafka_compat drives _transaction_manager/_sender of a real producer: an upgrade that changes them fails here."""
    from stream_monitor.runtime import kafka_compat

    sink, tp, consumer, producer = _transactional_pair(kafka_bootstrap, topic_factory, unique_name, 4)
    try:
        assert kafka_compat.has_transaction_internals(producer), "kafka-python no longer has _transaction_manager/_sender"
        producer.init_transactions()
        poll_n(consumer, 4)
        producer.begin_transaction()
        producer.send(sink, value=b"committed", partition=0)
        kafka_compat.commit_transaction(producer, consumer, {tp: 2}, timeout_ms=30_000)
        assert consumer.committed(tp, timeout_ms=10_000) == 2
        producer.begin_transaction()
        producer.send(sink, value=b"aborted", partition=0)
        kafka_compat.abort_transaction(producer, timeout_ms=30_000)
        producer.begin_transaction()
        kafka_compat.commit_transaction(producer, consumer, {tp: 4}, timeout_ms=30_000)
        assert consumer.committed(tp, timeout_ms=10_000) == 4
    finally:
        producer.close(timeout=10)
        consumer.close(autocommit=False)
    assert read_all(kafka_bootstrap, sink, 1, "read_committed") == [b"committed"]


def test_offsets_commit_with_the_group_added_when_the_transaction_began_and_without(kafka_bootstrap, topic_factory, unique_name):
    """kafka_compat.add_group_early: the commit then skips AddOffsetsToTxn; if it has not answered yet, the commit adds the group itself."""
    from stream_monitor.runtime import kafka_compat

    sink, tp, consumer, producer = _transactional_pair(kafka_bootstrap, topic_factory, unique_name, 6)
    tm = producer._transaction_manager
    adds: list[dict] = []
    add = tm.send_offsets_to_transaction
    tm.send_offsets_to_transaction = lambda offsets, meta: adds.append(dict(offsets)) or add(offsets, meta)
    try:
        producer.init_transactions()
        poll_n(consumer, 6)
        producer.begin_transaction()
        added = kafka_compat.add_group_early(producer, consumer)
        producer.send(sink, value=b"one", partition=0)
        deadline = time.monotonic() + 20
        while not added.succeeded and time.monotonic() < deadline:
            time.sleep(0.01)
        assert added.succeeded
        kafka_compat.commit_transaction(producer, consumer, {tp: 2}, timeout_ms=30_000, group_added=added)
        assert adds == [{}]  # only the early one: the commit sent TxnOffsetCommit and EndTxn
        assert consumer.committed(tp, timeout_ms=10_000) == 2
        producer.begin_transaction()
        added = kafka_compat.add_group_early(producer, consumer)
        producer.send(sink, value=b"two", partition=0)
        kafka_compat.commit_transaction(producer, consumer, {tp: 3}, timeout_ms=30_000, group_added=None)  # as when it has not answered
        assert adds[-1] == {tp: OffsetAndMetadata(3, "", -1)} and consumer.committed(tp, timeout_ms=10_000) == 3
        producer.begin_transaction()
        kafka_compat.add_group_early(producer, consumer)
        producer.send(sink, value=b"aborted", partition=0)
        kafka_compat.abort_transaction(producer, timeout_ms=30_000)
        assert consumer.committed(tp, timeout_ms=10_000) == 3
    finally:
        producer.close(timeout=10)
        consumer.close(autocommit=False)
    assert read_all(kafka_bootstrap, sink, 1, "read_committed") == [b"one", b"two"]


def _unreachable_once(producer: KafkaProducer) -> list[int]:
    """The producer's next ``await_ready`` raises what kafka-python raises when a coordinator stays unreachable for ``request_timeout_ms``.

    Only the sender's transactional path calls it. Returns the count of raises still armed.
    """
    from kafka.errors import KafkaConnectionError

    client = producer._sender._client
    real = client.await_ready
    armed = [1]

    def await_ready(node_id, timeout_ms=30_000):
        if armed[0]:
            armed[0] -= 1
            raise KafkaConnectionError(f"Node {node_id} not ready after {timeout_ms} ms (injected)")
        return real(node_id, timeout_ms=timeout_ms)

    client.await_ready = await_ready
    return armed


@pytest.mark.parametrize("kept", [False, True], ids=["kafka-python as is", "keep_transactional_requests"])
def test_an_unreachable_coordinator_loses_no_offsets(kafka_bootstrap, topic_factory, unique_name, kept):
    """kafka-python 3.0.12 drops the AddOffsetsToTxn met by that error and commits the transaction without its offsets.

    As is: the commit says so (OffsetsLeftBehind) and commit_offsets_alone repairs it. With
    keep_transactional_requests (what clients.producer installs) the request is retried and the
    offsets commit with their transaction. Should the first case stop failing, kafka-python fixed
    the drop and the workaround can go.
    """
    from stream_monitor.runtime import kafka_compat

    sink, tp, consumer, producer = _transactional_pair(kafka_bootstrap, topic_factory, unique_name, 4)
    try:
        producer.init_transactions()
        poll_n(consumer, 4)
        producer.begin_transaction()
        producer.send(sink, value=b"one", partition=0)
        producer.flush(timeout=20)  # its AddPartitionsToTxn is answered: the next transactional request is the commit's
        armed = _unreachable_once(producer)
        if kept:
            assert kafka_compat.keep_transactional_requests(producer)
            assert not kafka_compat.keep_transactional_requests(producer)  # once per producer
        commit = kafka_compat.start_commit(producer, consumer, {tp: 2}, 30_000, None, "token-1")
        if kept:
            kafka_compat.finish_commit(commit, 30_000)
        else:
            with pytest.raises(kafka_compat.OffsetsLeftBehind):
                kafka_compat.finish_commit(commit, 30_000)
            assert consumer.committed(tp, timeout_ms=10_000) is None  # the record is committed, the offsets are not
            kafka_compat.commit_offsets_alone(producer, consumer, {tp: 2}, 30_000, "token-1")
        assert armed == [0]
        got = consumer.committed(tp, metadata=True, timeout_ms=10_000)
        assert (got.offset, got.metadata) == (2, "token-1")
    finally:
        producer.close(timeout=10)
        consumer.close(autocommit=False)
    assert read_all(kafka_bootstrap, sink, 1, "read_committed") == [b"one"]


def test_a_transaction_commits_only_its_own_offsets_and_adds_the_group_once(kafka_bootstrap, topic_factory, unique_name):
    """Offsets a failed TxnOffsetCommit left in kafka-python's pending map are not committed by the next
    transaction; a commit whose early AddOffsetsToTxn has not answered queues its offsets with it, without
    waiting for it, instead of adding the group a second time (two would each send the offsets, and
    kafka-python's callback fails on the second)."""
    from stream_monitor.runtime import kafka_compat

    sink, tp, consumer, producer = _transactional_pair(kafka_bootstrap, topic_factory, unique_name, 4)
    group = consumer.config["group_id"]
    tm = producer._transaction_manager
    adds: list[dict] = []
    add = tm.send_offsets_to_transaction
    tm.send_offsets_to_transaction = lambda offsets, meta: adds.append(dict(offsets)) or add(offsets, meta)
    client = producer._sender._client
    ready = client.await_ready
    slow = [1]

    def await_ready(node_id, timeout_ms=30_000):  # the early AddOffsetsToTxn answers late
        if slow[0]:
            slow[0] -= 1
            time.sleep(0.5)
        return ready(node_id, timeout_ms=timeout_ms)

    try:
        producer.init_transactions()
        poll_n(consumer, 4)
        stale = TopicPartition(sink, 0)
        producer.begin_transaction()
        producer.send(sink, value=b"one", partition=0)
        producer.flush(timeout=20)
        with tm._lock:
            tm._pending_txn_offset_commits[stale] = OffsetAndMetadata(1, "", -1)  # what a failed TxnOffsetCommit leaves
        client.await_ready = await_ready
        added = kafka_compat.add_group_early(producer, consumer)
        assert not added.is_done
        commit = kafka_compat.start_commit(producer, consumer, {tp: 2}, 30_000, added, "")
        assert not added.is_done  # queued behind the early one, not waited for (it answers 0.5 s late)
        kafka_compat.finish_commit(commit, 30_000)
        assert slow == [0] and adds == [{}] and added.offsets.read  # no second AddOffsetsToTxn: the early one's answer took the offsets
        assert {t: o.offset for t, o in dict.items(added.offsets)} == {tp: 2}
        producer.begin_transaction()
        producer.send(sink, value=b"two", partition=0)
        producer.flush(timeout=20)
        with tm._lock:
            tm._pending_txn_offset_commits[stale] = OffsetAndMetadata(1, "", -1)
        kafka_compat.commit_transaction(producer, consumer, {tp: 3}, timeout_ms=30_000, group_added=None)
        assert adds[-1] == {tp: OffsetAndMetadata(3, "", -1)}
    finally:
        producer.close(timeout=10)
        consumer.close(autocommit=False)
    assert _group_offsets(kafka_bootstrap, group) == {tp: 3}  # never the stale sink offset
    assert read_all(kafka_bootstrap, sink, 1, "read_committed") == [b"one", b"two"]


def test_a_commit_during_which_the_producer_epoch_is_bumped_fails(kafka_bootstrap, topic_factory, unique_name, monkeypatch):
    """A produce error kafka-python answers with a KIP-360 epoch bump (OUT_OF_ORDER_SEQUENCE_NUMBER) while the commit is
    queued: the new InitProducerId makes the broker abort the transaction, and kafka-python, the transaction no longer
    "started", completes the queued EndTxn without sending it, as if committed. finish_commit must fail (the monitor
    then rolls back and reads again) rather than move on with alerts, state and offsets the broker threw away."""
    import kafka.errors as errors
    from kafka.producer.sender import Sender

    from stream_monitor.runtime import kafka_compat

    sink, tp, consumer, producer = _transactional_pair(kafka_bootstrap, topic_factory, unique_name, 4)
    release = threading.Event()
    complete = Sender._complete_batch
    armed = [1]

    def fails_once(self, batch, partition_response):  # the sink's batch: held until the commit is queued, then failed
        if armed[0] and batch.topic_partition.topic == sink:
            armed[0] = 0
            assert release.wait(20)
            return self._dispatch_error(batch, errors.OutOfOrderSequenceNumberError(), None)
        return complete(self, batch, partition_response)

    try:
        producer.init_transactions()
        poll_n(consumer, 4)
        producer.partitions_for(sink)
        producer.begin_transaction()
        added = kafka_compat.add_group_early(producer, consumer)
        assert added.result.wait(timeout_ms=10_000)
        monkeypatch.setattr(Sender, "_complete_batch", fails_once)
        producer.send(sink, value=b"one", partition=0)
        commit = kafka_compat.start_commit(producer, consumer, {tp: 2}, 20_000, added, "token-1")
        release.set()
        with pytest.raises(errors.KafkaError, match="epoch was bumped"):
            kafka_compat.finish_commit(commit, 20_000)
        assert commit.committed.succeeded  # what kafka-python says: the check above is what tells
        assert consumer.committed(tp, timeout_ms=10_000) is None
    finally:
        producer.close(timeout=10)
        consumer.close(autocommit=False)
    assert read_all(kafka_bootstrap, sink, 1, "read_committed") == []
