"""``run`` waits for its input topics' metadata before joining the group, with a bound.

The monitor's group consumer here is a real kafka-python consumer whose broker never answers (a
port that refuses connections; ``api_version`` given so construction does not bootstrap): its
metadata never arrives. Topic checks and the producer are replaced, so no broker is needed.
kafka-python's own ``partitions_for_topic`` would wait for that metadata forever.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
import structlog

from stream_monitor.config import load_config
from stream_monitor.runtime import app as app_module
from stream_monitor.runtime import kafka_compat
from stream_monitor.runtime.app import MonitorApp

GENEROUS_S = 120.0  # bound for conditions on a busy machine; never a measured figure


class _Admin:
    def close(self) -> None:
        """Nothing to release."""


class _Producer:
    def close(self, timeout: float | None = None) -> None:
        """Nothing to release."""


def _refusing_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: connections to it are refused


def _silent_app(monkeypatch: pytest.MonkeyPatch) -> MonitorApp:
    cfg = load_config(
        None,
        env={},
        overrides={
            "kafka.bootstrap_servers": f"127.0.0.1:{_refusing_port()}",
            "kafka.input_topics": ["in-a", "in-b"],
            "kafka.alerts_topic": "alerts",
            "kafka.group_id": "g",
            "kafka.exactly_once": False,
            "kafka.client_options": {"consumer": {"api_version": (3, 9), "reconnect_backoff_max_ms": 200}},
            "state.enabled": False,
            "instance": "test",
            "metrics.enabled": False,
        },
    )
    monkeypatch.setattr(app_module.clients, "admin", lambda *a, **k: _Admin())
    monkeypatch.setattr(app_module, "prepare_topology", lambda *a, **k: 1)

    def fake_producer(self: MonitorApp) -> None:
        self.producer = _Producer()
        self.checkpoint.producer_replaced(self.producer)

    monkeypatch.setattr(MonitorApp, "_new_producer", fake_producer)
    return MonitorApp(cfg)


def _start(app: MonitorApp) -> tuple[threading.Thread, list[int]]:
    code: list[int] = []
    thread = threading.Thread(target=lambda: code.append(app.run()), daemon=True)
    thread.start()
    return thread, code


def _wait_until(condition: Any) -> bool:
    deadline = time.monotonic() + GENEROUS_S
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_stop_requested_while_waiting_for_topic_metadata_ends_run(monkeypatch):
    app = _silent_app(monkeypatch)
    app.metadata_wait_s = 10 * GENEROUS_S  # only the stop request can end the wait
    thread, code = _start(app)
    assert _wait_until(lambda: getattr(app, "consumer", None) is not None), "run never built its consumer"
    app.request_stop()
    thread.join(GENEROUS_S)
    assert not thread.is_alive(), "run kept waiting for metadata after a stop request"
    assert code == [0]


def test_missing_topic_metadata_is_logged_and_run_goes_on(monkeypatch):
    app = _silent_app(monkeypatch)
    app.metadata_wait_s = 0.5
    with structlog.testing.capture_logs() as logs:
        thread, code = _start(app)
        started = _wait_until(lambda: app.ready)
        app.request_stop()
        thread.join(GENEROUS_S)
    assert started, "run never got past the wait for topic metadata"
    assert not thread.is_alive() and code == [0]
    missing = [e for e in logs if e["event"] == "topic_metadata_missing"]
    # the inputs and the internal by-model topic of the default topology
    assert [sorted(e["topics"]) for e in missing] == [["g-by-model", "in-a", "in-b"]]


class _Cluster:
    """Metadata that learns ``topics`` after ``updates_needed`` update requests."""

    def __init__(self, topics: set[str], updates_needed: int) -> None:
        self.topics = topics
        self.updates_needed = updates_needed
        self.requests = 0

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return {0} if topic in self.topics and self.requests >= self.updates_needed else None

    def request_update(self) -> None:
        self.requests += 1


class _Consumer:
    def __init__(self, cluster: _Cluster) -> None:
        self._cluster = cluster


def test_await_topic_metadata_returns_once_every_topic_is_known():
    cluster = _Cluster({"a", "b"}, updates_needed=1)
    assert kafka_compat.await_topic_metadata(_Consumer(cluster), ["a", "b"], GENEROUS_S, lambda: False) == []
    assert cluster.requests == 1


def test_await_topic_metadata_names_the_topics_still_unknown_when_the_bound_expires():
    cluster = _Cluster({"a"}, updates_needed=0)
    assert kafka_compat.await_topic_metadata(_Consumer(cluster), ["a", "b"], 0.2, lambda: False) == ["b"]


def test_the_consumer_metadata_cache_the_compat_layer_reads_is_there():
    """Fails on a kafka-python that no longer keeps the metadata cache where the wait reads it."""
    import inspect

    from kafka import KafkaConsumer
    from kafka.cluster import ClusterMetadata

    assert "self._cluster = " in inspect.getsource(KafkaConsumer.__init__)
    for name in ("partitions_for_topic", "request_update"):
        assert callable(getattr(ClusterMetadata, name, None)), name
