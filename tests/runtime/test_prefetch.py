"""``kafka_compat.prefetch``: the consumer's next fetch sent after a poll, only when no fetch is in flight and only
on a verified kafka-python (a broker test reads the same records with it: tests/integration/test_fetch_records_broker.py)."""

from __future__ import annotations

from types import SimpleNamespace

from stream_monitor.runtime import kafka_compat


def _consumer(pending: set[int]) -> tuple[SimpleNamespace, list[int]]:
    calls: list[int] = []
    fetcher = SimpleNamespace(_nodes_with_pending_fetch_requests=pending, send_fetches=lambda: calls.append(1))
    return SimpleNamespace(_fetcher=fetcher), calls


def test_the_next_fetch_is_sent_when_none_is_in_flight(monkeypatch):
    monkeypatch.setattr(kafka_compat, "version_verified", lambda version=None: True)
    idle, calls = _consumer(set())
    assert kafka_compat.prefetch(idle) and calls == [1]
    busy, calls = _consumer({0})  # a fetch to node 0 in flight: kafka-python sends one per node at a time
    assert not kafka_compat.prefetch(busy) and calls == []


def test_nothing_is_done_on_an_unverified_kafka_python_or_a_consumer_without_the_fetcher(monkeypatch):
    monkeypatch.setattr(kafka_compat, "version_verified", lambda version=None: False)
    idle, calls = _consumer(set())
    assert not kafka_compat.prefetch(idle) and calls == []
    monkeypatch.setattr(kafka_compat, "version_verified", lambda version=None: True)
    assert not kafka_compat.prefetch(SimpleNamespace())


def test_only_a_consumer_reading_a_backlog_fetches_ahead():
    """MonitorApp._poll prefetches when a polled partition is still ``PREFETCH_MIN_LAG`` records or more behind."""
    from stream_monitor.runtime.fetch_records import reading_backlog

    highwater = {"a": 100, "b": 50}
    consumer = SimpleNamespace(highwater=highwater.get)
    polled = {"a": [SimpleNamespace(offset=o) for o in range(90, 99)], "b": [SimpleNamespace(offset=49)]}
    assert not reading_backlog(consumer, polled, 2)  # 1 and 0 records left: keeping up
    assert reading_backlog(consumer, polled, 1)  # "a" has one more
    highwater["a"] = None  # no high watermark known yet: not behind
    assert not reading_backlog(consumer, {"a": polled["a"], "c": []}, 0)
