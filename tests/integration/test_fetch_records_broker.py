"""The monitor's consumers (runtime/clients.py, batch-at-a-time decoding) on a real broker: a topic of
interleaved committed and aborted transactions, gzip and plain batches, keys, headers and null values
reads as exactly the committed records, record for record as kafka-python's own decoding reads it."""

from __future__ import annotations

from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from stream_monitor.config import KafkaSettings
from stream_monitor.runtime import clients
from stream_monitor.runtime.fetch_records import FastPartitionRecords, StockPartitionRecords
from tests.integration.test_broker import CONSUMER_OPTS, PRODUCER_OPTS, _transactional_producer, drain

pytestmark = [pytest.mark.kafka]


def _write(bootstrap: str, topic: str, unique_name) -> list[tuple[int, bytes | None]]:
    """Two transactional producers (one gzip) and a plain one, interleaved on two partitions; the committed (partition, value)s."""
    a = _transactional_producer(bootstrap, unique_name("txn-a"))
    b = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=unique_name("txn-b"), transaction_timeout_ms=30_000,
                      compression_type="gzip", **PRODUCER_OPTS)  # fmt: skip
    plain = KafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_OPTS)
    committed: list[tuple[int, bytes | None]] = []
    try:
        b.init_transactions()
        for round_ in range(3):
            a.begin_transaction()
            b.begin_transaction()
            for i in range(40):
                p = i % 2
                a.send(topic, key=b"a%d" % i, value=b"a-%d-%d" % (round_, i), partition=p, headers=[("h", b"%d" % i), ("e", b"")])
                b.send(topic, key=None if i % 7 else b"null", value=None if i % 7 == 0 else b"b-%d-%d" % (round_, i) * (1 + i), partition=p)
                if i % 10 == 0:
                    plain.send(topic, value=b"plain-%d-%d" % (round_, i), partition=p)
                    committed.append((p, b"plain-%d-%d" % (round_, i)))
            a.flush(timeout=20)
            b.flush(timeout=20)
            plain.flush(timeout=20)
            if round_ == 1:
                a.abort_transaction()
            else:
                a.commit_transaction()
                committed += [(i % 2, b"a-%d-%d" % (round_, i)) for i in range(40)]
            if round_ == 0:
                b.abort_transaction()
            else:
                b.commit_transaction()
                committed += [(i % 2, None if i % 7 == 0 else b"b-%d-%d" % (round_, i) * (1 + i)) for i in range(40)]
    finally:
        for producer in (a, b, plain):
            producer.close(timeout=10)
    return committed


def _read(consumer: KafkaConsumer, tps: list[TopicPartition], max_records: int) -> list:
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    consumer.config["max_poll_records"] = max_records  # small portions: records handed out across takes of one fetch
    return drain(consumer, tps, timeout_s=40)


def _by_producer(values: Any) -> dict[bytes, list[bytes | None]]:
    out: dict[bytes, list[bytes | None]] = {}
    for v in values:
        out.setdefault(b"b" if v is None else v.split(b"-")[0], []).append(v)
    return out


def test_read_committed_gets_exactly_the_committed_records_as_kafka_python_decodes_them(kafka_bootstrap, topic_factory, unique_name):
    topic = topic_factory(partitions=2, prefix="fetch")
    committed = _write(kafka_bootstrap, topic, unique_name)
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    fast = clients.plain_consumer(KafkaSettings(bootstrap_servers=[kafka_bootstrap]), unique_name("fast"), read_committed=True)
    stock = KafkaConsumer(bootstrap_servers=kafka_bootstrap, isolation_level="read_committed", **CONSUMER_OPTS)
    try:
        assert fast._fetcher.PartitionRecords is FastPartitionRecords and stock._fetcher.PartitionRecords is StockPartitionRecords
        got = _read(fast, tps, 7)
        want = _read(stock, tps, 500)
        ends = {tp: fast.position(tp) for tp in tps}
        stock_ends = {tp: stock.position(tp) for tp in tps}
    finally:
        fast.close(autocommit=False)
        stock.close(autocommit=False)
    assert got == want  # every field: offsets, timestamps, keys, values, headers, sizes, leader epochs
    for p in (0, 1):  # each producer's records in its order (how the producers' batches interleave in the log varies)
        assert _by_producer(r.value for r in got if r.partition == p) == _by_producer(v for q, v in committed if q == p)
    assert any(r.value is None for r in got) and any(r.headers == [("h", b"0"), ("e", b"")] for r in got)
    assert ends == stock_ends and all(ends[tp] >= max(r.offset for r in got if r.partition == tp.partition) + 2 for tp in tps)  # past the markers


def test_prefetching_after_every_poll_reads_the_same_records(kafka_bootstrap, topic_factory, unique_name):
    """``kafka_compat.prefetch`` (called by ``MonitorApp._poll``): the next fetch sent while a batch is processed
    changes nothing of what is read — small fetches and polls, so prefetches happen with records still buffered."""
    from stream_monitor.runtime.kafka_compat import prefetch

    topic = topic_factory(partitions=2, prefix="prefetch")
    _write(kafka_bootstrap, topic, unique_name)
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    settings = KafkaSettings(bootstrap_servers=[kafka_bootstrap], client_options={"consumer": {"max_partition_fetch_bytes": 2048}})
    fetching = clients.plain_consumer(settings, unique_name("prefetch"), read_committed=True)
    plain = clients.plain_consumer(settings, unique_name("plain"), read_committed=True)
    sent: list[bool] = []
    poll = fetching.poll

    def poll_then_prefetch(*args: Any, **kwargs: Any) -> Any:
        got = poll(*args, **kwargs)
        if got:
            sent.append(prefetch(fetching))
        return got

    fetching.poll = poll_then_prefetch  # type: ignore[method-assign]
    try:
        got = _read(fetching, tps, 5)
        want = _read(plain, tps, 5)
    finally:
        fetching.close(autocommit=False)
        plain.close(autocommit=False)
    assert got == want and len(got) > 100
    assert any(sent)  # fetches were sent ahead, with records of the other partition still to read


def test_the_monitors_own_lz4_batches_read_back_in_the_fast_loop(kafka_bootstrap, topic_factory, unique_name, monkeypatch):
    """What the monitor writes (clients.producer: kafka.compression_type lz4 by default), committed and aborted, reads back
    through its consumers as kafka-python's own decoding reads it, every lz4 batch decoded by the fast loop."""
    from stream_monitor.runtime import fetch_records

    topic = topic_factory(partitions=2, prefix="lz4")
    settings = KafkaSettings(bootstrap_servers=[kafka_bootstrap])
    assert settings.compression_type == "lz4"
    producer = clients.producer(settings, unique_name("lz4"), unique_name("txn-lz4"))
    committed: list[tuple[int, bytes]] = []
    try:
        producer.init_transactions()
        for round_ in range(3):
            producer.begin_transaction()
            values = [(i % 2, b"state-%d-%d;" % (round_, i) * 40) for i in range(60)]
            for p, value in values:
                producer.send(topic, key=b"model-%d" % (len(value) % 3), value=value, partition=p, headers=[("v", b"1")])
            producer.flush(timeout=20)
            if round_ == 1:
                producer.abort_transaction()
            else:
                producer.commit_transaction()
                committed += values
    finally:
        producer.close(timeout=10)
    decoded: list[tuple[int, bool]] = []
    decode = fetch_records.decode_v2

    def watched(batch: Any, topic_: str, partition: int) -> Any:
        got = decode(batch, topic_, partition)
        decoded.append((batch.compression_type, got is not None))
        return got

    monkeypatch.setattr(fetch_records, "decode_v2", watched)
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    fast = clients.plain_consumer(settings, unique_name("fast"), read_committed=True)
    stock = KafkaConsumer(bootstrap_servers=kafka_bootstrap, isolation_level="read_committed", **CONSUMER_OPTS)
    try:
        got = _read(fast, tps, 7)
        want = _read(stock, tps, 500)
    finally:
        fast.close(autocommit=False)
        stock.close(autocommit=False)
    assert got == want
    assert sorted((r.partition, r.value) for r in got) == sorted(committed)
    assert decoded and all(ok for _, ok in decoded) and {codec for codec, _ in decoded} == {3}  # lz4 (codec 3), none left to kafka-python's path
