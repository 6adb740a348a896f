"""A transactional producer's sender retries a transactional request after 20 ms, not kafka-python's 100 ms
(``kafka_compat.quick_transactional_retries``): the early AddOffsetsToTxn of a transaction begun right after a commit
is answered CONCURRENT_TRANSACTIONS, and the next commit waited for its retries. Nothing else of the producer changes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from stream_monitor.config import KafkaSettings
from stream_monitor.runtime import clients, kafka_compat


@pytest.mark.parametrize("options", [{}, {"retry_backoff_ms": 250}], ids=["default", "configured"])
def test_a_transactional_producer_retries_transactional_requests_sooner_unless_the_backoff_is_configured(options):
    # api_version given: the producer is built without contacting a broker
    settings = KafkaSettings(bootstrap_servers=["127.0.0.1:1"], client_options={"producer": {"api_version": (3, 0), **options}})
    producer = clients.producer(settings, "t", transactional_id="t-txn")
    plain = clients.producer(settings, "t", None)
    try:
        backoff = options.get("retry_backoff_ms", 100)
        assert producer._sender.config["retry_backoff_ms"] == (kafka_compat.TRANSACTIONAL_RETRY_BACKOFF_MS if not options else backoff)
        # batches and metadata keep the producer's backoff; a producer without transactions is left as it is
        assert producer.config["retry_backoff_ms"] == producer._accumulator.config["retry_backoff_ms"] == backoff
        assert plain._sender.config["retry_backoff_ms"] == backoff
    finally:
        producer.close(timeout=0)
        plain.close(timeout=0)


def test_quick_transactional_retries_needs_the_internals_and_never_lengthens_the_backoff():
    assert not kafka_compat.quick_transactional_retries(SimpleNamespace())  # a fake without them
    sender = SimpleNamespace(config={"retry_backoff_ms": 5})
    assert kafka_compat.quick_transactional_retries(SimpleNamespace(_transaction_manager=object(), _sender=sender))
    assert sender.config["retry_backoff_ms"] == 5
