"""Restoring a changelog partition waits for a transaction still finishing (real broker).

A committed transaction is invisible to ``read_committed`` readers until its marker is written,
a moment after its producer heard back; a new owner restoring in that moment would miss the last
state its predecessor committed. ``ChangelogStore`` waits, bounded, while records stand beyond
the last stable offset. Here the "moment" is stretched: the transaction commits a second after the
restore starts (or never, for the bound).
"""

from __future__ import annotations

import threading
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer

from stream_monitor.core.signing import SigningKeys
from stream_monitor.runtime.changelog import ChangelogStore

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

KEYS = SigningKeys(bytes(range(32)))


def _consumer(bootstrap: str, committed: bool) -> KafkaConsumer:
    return KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         isolation_level="read_committed" if committed else "read_uncommitted")  # fmt: skip


def _open_transaction(bootstrap: str, topic: str, txn_id: str) -> KafkaProducer:
    """'before' committed, then 'after' sent in a transaction left open."""
    writer = ChangelogStore(topic, KEYS, None)  # type: ignore[arg-type]
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=txn_id)
    producer.init_transactions()
    for value, commit in ((b"before", True), (b"after", False)):
        ((key, signed),) = writer.encode(0, {"item": value})
        producer.begin_transaction()
        producer.send(topic, key=key, value=signed, partition=0)
        producer.flush()
        if commit:
            producer.commit_transaction()
    return producer


def test_a_restore_waits_for_a_transaction_that_commits_meanwhile(kafka_bootstrap, topic_factory, unique_name):
    topic = topic_factory(partitions=1)
    producer = _open_transaction(kafka_bootstrap, topic, unique_name("txn"))
    store = ChangelogStore(topic, KEYS, _consumer(kafka_bootstrap, True), watermark_consumer=_consumer(kafka_bootstrap, False), settle_s=60)
    later = threading.Timer(1.0, producer.commit_transaction)
    later.start()
    try:
        started = time.monotonic()
        result = store.restore(0)
        assert result.items == {"item": b"after"}
        assert time.monotonic() - started >= 0.9  # it did wait for the commit
    finally:
        later.join()
        store.close()
        producer.close()


def test_a_restore_leaves_out_a_transaction_still_open_after_the_bound(kafka_bootstrap, topic_factory, unique_name):
    topic = topic_factory(partitions=1)
    producer = _open_transaction(kafka_bootstrap, topic, unique_name("txn"))
    store = ChangelogStore(topic, KEYS, _consumer(kafka_bootstrap, True), watermark_consumer=_consumer(kafka_bootstrap, False), settle_s=1.0)
    try:
        started = time.monotonic()
        assert store.restore(0).items == {"item": b"before"}
        assert time.monotonic() - started >= 1.0
    finally:
        store.close()
        producer.abort_transaction()
        producer.close()
