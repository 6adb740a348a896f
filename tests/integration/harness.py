"""Helpers for end-to-end tests against the real broker: produce streams, run monitors, read alerts.

Nothing here mocks Kafka: monitors run either in-process (``MonitorApp`` in a thread) or as a
``python -m stream_monitor run`` subprocess, and alerts are read back with ``read_committed``.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterable

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from stream_monitor.config import AppConfig, load_config
from stream_monitor.runtime.app import MonitorApp

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE_SECRET = secrets.token_hex(32)  # one random state key per test session, as run requires


def produce(bootstrap: str, topic: str, events: Iterable[dict[str, Any] | bytes], key_field: str = "model") -> int:
    """Produce events (dicts are JSON-encoded, bytes sent as is), keyed by ``key_field``."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all", max_block_ms=20_000)
    n = 0
    for e in events:
        if isinstance(e, bytes):
            producer.send(topic, key=b"raw", value=e)
        else:
            producer.send(topic, key=str(e.get(key_field, "")).encode(), value=orjson.dumps(e))
        n += 1
    producer.flush(timeout=60)
    producer.close()
    return n


def read_all(bootstrap: str, topic: str, timeout_s: float = 30.0, read_committed: bool = True) -> list[tuple[bytes | None, bytes]]:
    """Every record of ``topic`` up to its current end, in (partition, offset) order."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed" if read_committed else "read_uncommitted",
    )
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out: dict[TopicPartition, list] = {tp: [] for tp in tps}
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} did not reach its end offsets {end}")
            for tp, records in consumer.poll(timeout_ms=200).items():
                out[tp].extend(records)
        return [(r.key, r.value) for tp in tps for r in out[tp]]
    finally:
        consumer.close()


def read_alerts(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(v) for _, v in read_all(bootstrap, topic)]


# Client timeouts of the lag probes: generous, so a busy machine makes them slow, not wrong.
PROBE_TIMEOUT_MS = 30_000


def group_lag(bootstrap: str, group: str, topics: list[str]) -> int | None:
    """Records not yet committed by ``group`` (None while unknown: nothing committed, broker away).

    The group's internal topic (``<group>-by-model``, when it exists) counts too: its committed
    offset stays behind the rows still waiting for their turn in event-time order, so lag 0 means
    every event was judged.
    """
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, bootstrap_timeout_ms=PROBE_TIMEOUT_MS, request_timeout_ms=PROBE_TIMEOUT_MS)
    except KafkaError:
        return None
    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, bootstrap_timeout_ms=PROBE_TIMEOUT_MS)
    except KafkaError:
        admin.close()
        return None
    try:
        committed = admin.list_group_offsets({group: None}).get(group, {})
        topics = [*topics, f"{group}-by-model"]
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or [])]
        ends = consumer.end_offsets(tps)
        if not committed:
            return None
        lag = 0
        for tp in tps:
            c = committed.get(tp)
            start = c.offset if c is not None and c.offset >= 0 else 0
            if ends[tp] > start:
                lag += _records_between(consumer, tp, start, ends[tp])
        return lag
    except KafkaError:
        return None
    finally:
        admin.close()
        consumer.close()


def _records_between(consumer: KafkaConsumer, tp: TopicPartition, start: int, end: int) -> int:
    """Committed data records in [start, end): transaction markers take offsets but are not records."""
    if end - start > 50:
        return end - start  # plainly behind; no need to look
    reader = KafkaConsumer(bootstrap_servers=consumer.config["bootstrap_servers"], group_id=None, isolation_level="read_committed", enable_auto_commit=False)
    try:
        reader.assign([tp])
        reader.seek(tp, start)
        n = 0
        deadline = time.monotonic() + PROBE_TIMEOUT_MS / 1000
        while reader.position(tp) < end and time.monotonic() < deadline:
            for records in reader.poll(timeout_ms=200).values():
                n += sum(1 for r in records if r.offset < end)
        return n if reader.position(tp) >= end else max(n, 1)
    finally:
        reader.close()


def wait_for_lag_zero(bootstrap: str, group: str, topics: list[str], timeout_s: float = 120.0, check: Any = None) -> None:
    """Wait until the group committed everything (transaction markers count: lag may stay 0..n)."""
    deadline = time.monotonic() + timeout_s
    lag: int | None = None
    while time.monotonic() < deadline:
        if check is not None:
            check()
        lag = group_lag(bootstrap, group, topics)
        if lag is not None and lag <= 0:
            return
        time.sleep(0.5)
    raise TimeoutError(f"group {group} still lags on {topics} after {timeout_s} s (last lag seen: {lag}; None = nothing committed yet or broker unreachable)")


def app_config(bootstrap: str, input_topics: list[str], alerts: str, group: str, **extra: Any) -> AppConfig:
    overrides: dict[str, Any] = {
        "kafka.bootstrap_servers": bootstrap,
        "kafka.input_topics": input_topics,
        "kafka.alerts_topic": alerts,
        "kafka.dlq_topic": f"{alerts}-dlq",
        "kafka.group_id": group,
        "kafka.session_timeout_ms": 6000,
        "state.hmac_secret": STATE_SECRET,
        "instance": "test",
        "metrics.enabled": False,
    }
    overrides.update(extra)
    return load_config(None, env={}, overrides=overrides)


@dataclass
class InProcessMonitor:
    """A MonitorApp on a background thread."""

    app: MonitorApp
    thread: threading.Thread
    exit_code: list[int]

    @classmethod
    def start(cls, cfg: AppConfig, app: MonitorApp | None = None) -> InProcessMonitor:
        """Run ``app`` (else a MonitorApp of ``cfg``; one built by the caller can be set up before its loop starts)."""
        app = app if app is not None else MonitorApp(cfg)
        code: list[int] = []
        thread = threading.Thread(target=lambda: code.append(app.run()), daemon=True)
        thread.start()
        return cls(app, thread, code)

    def check_alive(self) -> None:
        if not self.thread.is_alive():
            raise RuntimeError(f"monitor thread exited early with {self.exit_code}")

    def stop(self, timeout_s: float = 30.0) -> int:
        self.app.request_stop()
        self.thread.join(timeout_s)
        if self.thread.is_alive():
            raise TimeoutError("monitor did not stop in time")
        return self.exit_code[0] if self.exit_code else -1


class MonitorProcess:
    """``python -m stream_monitor run`` as a subprocess (killable with SIGKILL).

    Every instance is remembered in ``MonitorProcess.started`` so the autouse fixture in
    ``tests/conftest.py`` can kill what a failing test left running.
    """

    started: ClassVar[list[MonitorProcess]] = []

    def __init__(self, bootstrap: str, input_topics: list[str], alerts: str, group: str, log_path: Path, extra_args: list[str] | None = None, env: dict[str, str] | None = None,
                 entry: list[str] | None = None) -> None:  # fmt: skip
        # ``entry``: what runs the CLI instead of ``-m stream_monitor`` (a ``-c`` script that injects a crash, then calls it)
        args = [sys.executable, *(entry or ["-m", "stream_monitor"]), "--log-format", "json", "run", "--bootstrap-servers", bootstrap, "--alerts-topic", alerts, "--group-id", group, "--metrics-port", "0"]
        for t in input_topics:
            args += ["--input-topic", t]
        args += extra_args or []
        self.log_path = log_path
        self.log_start = log_path.stat().st_size if log_path.exists() else 0  # this process's part of a shared log
        self.log_file = open(log_path, "ab")  # noqa: SIM115 - closed in wait/kill
        full_env = {
            **os.environ,
            "STREAM_MONITOR_STATE_SECRET": STATE_SECRET,
            "STREAM_MONITOR_DLQ_TOPIC": f"{alerts}-dlq",
            "STREAM_MONITOR_INSTANCE": "test",
            "STREAM_MONITOR_KAFKA__SESSION_TIMEOUT_MS": "6000",
            **(env or {}),
        }
        self.proc = subprocess.Popen(args, stdout=self.log_file, stderr=subprocess.STDOUT, env=full_env, cwd=REPO_ROOT)
        MonitorProcess.started.append(self)

    @classmethod
    def kill_leftovers(cls) -> None:
        while cls.started:
            p = cls.started.pop()
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait(30)
            if not p.log_file.closed:
                p.log_file.close()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise RuntimeError(f"monitor exited with {self.proc.returncode}; log:\n{self.log_tail()}")

    def wait_started(self, timeout_s: float = 60.0) -> None:
        """Until the monitor has joined its group (so a SIGTERM meets the monitor, not the interpreter)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            with open(self.log_path, "rb") as f:
                f.seek(self.log_start)
                mine = f.read().decode(errors="replace")
            for line in mine.splitlines():
                if '"partitions_assigned"' in line and orjson.loads(line).get("partitions"):
                    return
            time.sleep(0.1)
        raise TimeoutError(f"monitor not assigned after {timeout_s} s:\n{self.log_tail()}")

    def wait_events(self, event: str, count: int = 1, timeout_s: float = 60.0) -> list[dict[str, Any]]:
        """Until this process logged ``event`` at least ``count`` times; returns those log records."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            with open(self.log_path, "rb") as f:
                f.seek(self.log_start)
                found = [orjson.loads(line) for line in f.read().splitlines() if f'"event": "{event}"'.encode() in line]
            if len(found) >= count:
                return found
            time.sleep(0.1)
        raise TimeoutError(f"{event} not logged {count} times in {timeout_s} s:\n{self.log_tail()}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.log_file.close()

    def terminate(self, timeout_s: float = 45.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout_s)
        finally:
            self.log_file.close()
        return code

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def alert_keys(alerts: list[dict[str, Any]]) -> list[tuple[str, str, str, str, str]]:
    """What must match between runs: identity, status and evidence position of every alert."""
    return [(a["alert_id"], a["status"], a["feature"], a["detector"], a["event_time"]) for a in alerts]
