"""``replay --topic`` and ``export`` wait for topic metadata with a bound, and say why they cannot start (exit 2).

kafka-python's ``KafkaConsumer.partitions_for_topic`` waits for a metadata answer without a
bound: against brokers that never answer (a port that refuses connections, with ``api_version``
given so construction does not bootstrap) it never returns. No broker is needed here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer
from kafka.errors import KafkaTimeoutError

from stream_monitor.replay.errors import ReplayUsageError
from stream_monitor.replay.sources import TopicSource
from stream_monitor.runtime import kafka_compat

GENEROUS_S = 120.0  # bound for conditions on a busy machine; never a measured figure
REPO_ROOT = Path(__file__).resolve().parents[1]


def _refusing_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: connections to it are refused


def _in_thread(fn: Any) -> list[Any]:
    """Run ``fn`` in a thread joined with a generous bound; returns [result] or [exception] (empty: still running)."""
    out: list[Any] = []

    def target() -> None:
        try:
            out.append(fn())
        except Exception as exc:  # noqa: BLE001 - handed to the test
            out.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(GENEROUS_S)
    return out


def test_a_topic_replay_against_brokers_that_never_answer_fails_with_usage_error_not_a_hang():
    consumer = KafkaConsumer(
        bootstrap_servers=f"127.0.0.1:{_refusing_port()}", group_id=None, enable_auto_commit=False, api_version=(3, 9),
        bootstrap_timeout_ms=500, reconnect_backoff_max_ms=200,
    )  # fmt: skip
    try:
        assert kafka_compat.metadata_timeout_s(consumer) == 0.5
        out = _in_thread(TopicSource(consumer, ["inference-events"]).resolve)
    finally:
        consumer.close()
    assert out, "resolve() still waiting for metadata"
    assert isinstance(out[0], ReplayUsageError), out
    assert str(out[0]).startswith("--topic inference-events: no metadata from the brokers within 0.5 s")


@pytest.mark.parametrize("command", ["replay", "export"])
def test_the_cli_exits_2_naming_the_servers_when_no_broker_answers(tmp_path: Path, command: str):
    servers = f"127.0.0.1:{_refusing_port()}"
    out = ["--alerts-out", str(tmp_path / "alerts.jsonl")] if command == "replay" else ["--out", str(tmp_path / "e.jsonl")]
    argv = [sys.executable, "-m", "stream_monitor", "--log-level", "ERROR", command, "--bootstrap-servers", servers, "--topic", "events", *out]
    env = {**os.environ, "STREAM_MONITOR_KAFKA__CLIENT_OPTIONS": "{common: {bootstrap_timeout_ms: 1000}}"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=GENEROUS_S, cwd=REPO_ROOT, env=env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"stream-monitor {command}: error: --bootstrap-servers {servers}: no Kafka broker answered" in done.stderr


class _Future:
    def __init__(self, ok: bool = True) -> None:
        self.ok = ok
        self.is_done = False

    def succeeded(self) -> bool:
        return self.is_done and self.ok

    def failed(self) -> bool:
        return self.is_done and not self.ok


class _Cluster:
    """Metadata whose updates answer on a later request: the first ``fail`` fail, then each lists ``topics``."""

    def __init__(self, topics: dict[str, set[int]], cached: dict[str, set[int]] | None = None, in_progress: bool = False, fail: int = 0) -> None:
        self.topics = topics
        self.partitions = dict(cached or {})
        self.need_all_topic_metadata = False
        self.metadata_refresh_in_progress = in_progress
        self.fail = fail
        self.requests: list[bool] = []  # need_all_topic_metadata at each request

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions.get(topic)

    def request_update(self) -> _Future:
        self.requests.append(self.need_all_topic_metadata)
        future = _Future(ok=self.fail == 0)
        self.fail = max(0, self.fail - 1)
        future.is_done = True
        if future.ok and self.need_all_topic_metadata:
            self.partitions = dict(self.topics)
        self.metadata_refresh_in_progress = False
        return future


class _Consumer:
    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster
        self.config = {"bootstrap_timeout_ms": 30_000}


def test_topic_partitions_answers_from_the_cache_without_a_request():
    cluster = _Cluster({}, cached={"a": {0, 1}})
    assert kafka_compat.topic_partitions(_Consumer(cluster), ["a"], GENEROUS_S) == {"a": {0, 1}}
    assert cluster.requests == []


def test_topic_partitions_asks_for_all_topics_once_and_names_a_missing_one_empty():
    cluster = _Cluster({"a": {0}, "b": {0, 1, 2}}, in_progress=True, fail=1)
    got = kafka_compat.topic_partitions(_Consumer(cluster), ["b", "missing"], GENEROUS_S, poll_s=0.001)
    assert got == {"b": {0, 1, 2}, "missing": set()}
    # the refresh in flight is waited out first (it failed: asked again), then one all-topics request
    assert cluster.requests == [False, False, True]
    assert cluster.need_all_topic_metadata is False, "the consumer's own setting is restored"


def test_topic_partitions_raises_when_no_answer_comes_within_the_bound():
    class Silent(_Cluster):
        def request_update(self) -> _Future:
            self.requests.append(self.need_all_topic_metadata)
            return _Future()  # never done

    cluster = Silent({"a": {0}})
    with pytest.raises(KafkaTimeoutError):
        kafka_compat.topic_partitions(_Consumer(cluster), ["a"], 0.05, poll_s=0.001)
    assert cluster.need_all_topic_metadata is False


def test_the_metadata_internals_topic_partitions_reads_are_there():
    """Fails on a kafka-python that no longer keeps what the bounded wait reads where it reads it."""
    import inspect

    from kafka.cluster import ClusterMetadata
    from kafka.future import Future

    assert "self._cluster = " in inspect.getsource(KafkaConsumer.__init__)
    source = inspect.getsource(ClusterMetadata)
    assert "self.need_all_topic_metadata" in source and "need_all_topic_metadata" in inspect.getsource(ClusterMetadata.metadata_request)
    assert isinstance(inspect.getattr_static(ClusterMetadata, "metadata_refresh_in_progress"), property)
    for name in ("partitions_for_topic", "request_update"):
        assert callable(getattr(ClusterMetadata, name, None)), name
    assert callable(Future.succeeded) and callable(Future.failed)
    assert KafkaConsumer.DEFAULT_CONFIG["bootstrap_timeout_ms"] == kafka_compat.DEFAULT_BOOTSTRAP_TIMEOUT_MS


def test_no_unbounded_metadata_wait_outside_the_compat_layer():
    """``KafkaConsumer.partitions_for_topic`` waits without a bound: the package and the benchmarks use
    ``kafka_compat.topic_partitions`` (or ``known_partitions`` after a bounded wait) instead."""
    import ast

    offenders = []
    for root in ("stream_monitor", "bench"):
        for path in sorted((REPO_ROOT / root).rglob("*.py")):
            if path == REPO_ROOT / "stream_monitor" / "runtime" / "kafka_compat.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "partitions_for_topic":
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert offenders == []
