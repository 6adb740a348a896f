"""Prometheus metrics and the HTTP endpoints ``/metrics``, ``/healthz`` and ``/readyz``.

Each :class:`MonitorMetrics` (and :class:`BridgeMetrics`) owns its own ``CollectorRegistry`` (no
global state), so tests and several apps in one process never collide. Per-channel series are
capped (``metrics.max_channel_series``): past the cap new channels are counted, not exported.

Health semantics (the same server, bound to ``metrics.host``, 127.0.0.1 by default):

- ``/healthz`` — the process is alive. Once the main loop reports :meth:`MonitorMetrics.heartbeat`,
  it also fails (503) when the loop has not turned for ``liveness_timeout_s`` (a wedged loop
  should be restarted by the orchestrator).
- ``/readyz`` — every readiness check passes: the app says so (started, state restored), the
  consumer group assigned us partitions at least once (an empty assignment counts: an idle
  standby member is ready), and — when a :class:`BrokerProbe` is added — a bootstrap broker
  accepts TCP connections.

>>> m = MonitorMetrics(max_channel_series=1)
>>> m.observe_statistic("m", "x", "psi", 0.1); m.observe_statistic("m", "y", "psi", 0.2)
>>> m.channel_series_dropped._value.get()
1.0
>>> m.assignment_received, m.assigned_partitions.set(0), m.assignment_received
(False, None, True)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:  # pragma: no cover
    from stream_monitor.core.monitor import PartitionMonitor

ReadinessCheck = Callable[[], tuple[bool, str]]


class _AssignmentGauge(Gauge):
    """``stream_monitor_assigned_partitions`` that also remembers that an assignment happened.

    The consumer's rebalance listener sets it (also to 0 for an empty assignment), so "set at
    least once" means "joined the group and got an assignment": the readiness condition.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.assigned_event = threading.Event()
        super().__init__(*args, **kwargs)

    def set(self, value: float) -> None:
        super().set(value)
        self.assigned_event.set()


class MonitorMetrics:
    """All metrics of one monitor instance."""

    def __init__(self, max_channel_series: int = 2000, liveness_timeout_s: float = 300.0) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.max_channel_series = max_channel_series
        self.liveness_timeout_s = liveness_timeout_s
        self._lock = threading.Lock()
        self._last_heartbeat: float | None = None
        self._channel_keys: set[tuple[str, str, str]] = set()
        self.records = Counter("stream_monitor_records_consumed_total", "Records consumed", ["topic", "partition"], registry=r)
        self.invalid = Counter("stream_monitor_invalid_records_total", "Records sent to the dead-letter topic", ["reason"], registry=r)
        self.channel_values = Counter("stream_monitor_channel_values_total", "Channel values fed to detectors", registry=r)
        self.lag = Gauge("stream_monitor_consumer_lag", "High watermark minus position", ["topic", "partition"], registry=r)
        self.batch_seconds = Histogram(
            "stream_monitor_batch_processing_seconds",
            "Time to process one polled batch",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.checkpoint_seconds = Histogram(
            "stream_monitor_checkpoint_seconds",
            "Time to commit alerts, state and offsets",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.checkpoints = Counter("stream_monitor_checkpoints_total", "Checkpoints by outcome", ["outcome"], registry=r)
        self.state_bytes = Counter("stream_monitor_state_bytes_written_total", "Changelog bytes written", registry=r)
        self.state_rejected = Counter("stream_monitor_state_records_rejected_total", "Changelog records whose HMAC failed", registry=r)
        self.alerts = Counter(
            "stream_monitor_alerts_total", "Alert events emitted", ["model", "kind", "severity", "status"], registry=r
        )
        self.firing = Gauge("stream_monitor_alerts_firing", "Alerts currently firing", ["model", "kind", "severity"], registry=r)
        self.statistic = Gauge(
            "stream_monitor_drift_statistic", "Latest alerting statistic per channel", ["model", "channel", "detector"], registry=r
        )
        self.channel_series_dropped = Counter(
            "stream_monitor_channel_series_dropped_total", "Channel series not exported (cardinality cap)", registry=r
        )
        self.assigned_partitions = _AssignmentGauge("stream_monitor_assigned_partitions", "Input partitions assigned", registry=r)
        self.up_since = Gauge("stream_monitor_start_time_seconds", "Unix time the monitor process started", registry=r)
        self.up_since.set_to_current_time()
        self.loop_heartbeat = Gauge(
            "stream_monitor_loop_heartbeat_timestamp_seconds", "Unix time the main loop last turned (0: never)", registry=r
        )
        # fingerprint -> (model, kind, severity) and the partition it belongs to
        self._firing: dict[str, tuple[str, str, str]] = {}
        self._firing_partition: dict[str, int] = {}

    # ------------------------------------------------------------------ health
    @property
    def assignment_received(self) -> bool:
        return self.assigned_partitions.assigned_event.is_set()

    def heartbeat(self) -> None:
        """The main loop turned (call once per poll). Enables the ``/healthz`` stall check."""
        self._last_heartbeat = time.monotonic()
        self.loop_heartbeat.set_to_current_time()

    def liveness(self) -> tuple[bool, str]:
        last = self._last_heartbeat
        if last is None:
            return True, "alive"
        stalled = time.monotonic() - last
        if stalled > self.liveness_timeout_s:
            return False, f"main loop stalled for {stalled:.0f} s (limit {self.liveness_timeout_s:g} s)"
        return True, "alive"

    def assignment_check(self) -> tuple[bool, str]:
        return (True, "assigned") if self.assignment_received else (False, "waiting for a partition assignment")

    def observe_statistic(self, model: str, channel: str, detector: str, value: float | None) -> None:
        key = (model, channel, detector)
        if key not in self._channel_keys:
            if len(self._channel_keys) >= self.max_channel_series:
                self.channel_series_dropped.inc()
                return
            self._channel_keys.add(key)
        if value is not None:
            self.statistic.labels(*key).set(value)

    def observe_statistics(self, latest: Iterable[tuple[str, str, str, float | None]]) -> None:
        """The latest statistic of many (model, channel, detector) evaluations (capped like above)."""
        for model, channel, detector, value in latest:
            self.observe_statistic(model, channel, detector, value)

    def observe_alert(self, fields: dict[str, Any]) -> None:
        """A committed alert event: count it and keep the firing gauge exact per fingerprint."""
        model, kind, severity, status = fields["model"], fields["kind"], fields["severity"], fields["status"]
        self.alerts.labels(model, kind, severity, status).inc()
        self.observe_statistic(model, fields["feature"], fields["detector"], fields.get("statistic"))
        # the partition of the task that owns the fingerprint: labels.partition (the source
        # record's partition differs when records are re-keyed by model)
        labels = fields.get("labels") or {}
        source = fields.get("source") or {}
        partition = labels.get("partition") if isinstance(labels, dict) and labels.get("partition") is not None else None
        if partition is None and isinstance(source, dict):
            partition = source.get("partition")
        with self._lock:
            self._set_firing(fields["fingerprint"], (model, kind, severity) if status == "firing" else None, partition)

    def _set_firing(self, fp: str, labels: tuple[str, str, str] | None, partition: int | None) -> None:
        previous = self._firing.pop(fp, None)
        self._firing_partition.pop(fp, None)
        if previous is not None:
            self.firing.labels(*previous).dec()
        if labels is not None:
            self._firing[fp] = labels
            if partition is not None:
                self._firing_partition[fp] = int(partition)
            self.firing.labels(*labels).inc()

    def forget_partitions(self, partitions: Iterable[int]) -> None:
        """Partitions revoked: their firing alerts are now counted by the member that owns them."""
        gone = set(partitions)
        with self._lock:
            for fp in [fp for fp, p in self._firing_partition.items() if p in gone]:
                self._set_firing(fp, None, None)

    def restore_partition(self, partition: int, task: PartitionMonitor) -> None:
        """A partition's state was restored: count its open episodes as firing alerts."""
        with self._lock:
            for fp, labels in open_episodes(task):
                self._set_firing(fp, labels, partition)

    @property
    def firing_count(self) -> int:
        return len(self._firing)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def open_episodes(task: PartitionMonitor) -> list[tuple[str, tuple[str, str, str]]]:
    """(fingerprint, (model, kind, severity)) of every firing episode in a partition's state."""
    from stream_monitor.core.channel import QUALITY_DETECTORS
    from stream_monitor.core.lifecycle import fingerprint
    from stream_monitor.core.monitor import _kind_of

    out: list[tuple[str, tuple[str, str, str]]] = []
    for model in task.models.values():
        for channel in model.channels.values():
            # episodes of detectors a config change removed still fire until they resolve
            lifecycles = {**getattr(channel, "_orphans", {}), **channel.lifecycles}
            for detector, life in lifecycles.items():
                if life.firing:
                    kind = "data_quality" if detector in QUALITY_DETECTORS else _kind_of(channel.name)
                    fp = channel.fingerprints.get(detector) or fingerprint(model.model, channel.name, detector, task.partition)
                    out.append((fp, (model.model, kind, life.severity)))
    return out


class BridgeMetrics:
    """Metrics of one ``stream-monitor bridge`` process (its own registry)."""

    def __init__(self, target: str) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.target = target
        self.received = Counter(
            "stream_monitor_bridge_alerts_received_total", "Alert events read from the alert topic", ["target", "status"], registry=r
        )
        self.invalid = Counter(
            "stream_monitor_bridge_invalid_events_total", "Alert-topic records that are not valid alert events", ["target"], registry=r
        )
        self.deliveries = Counter(
            "stream_monitor_bridge_deliveries_total",
            "Delivery attempts by outcome (accepted, retry, rejected)",
            ["target", "outcome"],
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "stream_monitor_bridge_delivery_seconds",
            "Time of one HTTP delivery attempt",
            ["target"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.active = Gauge("stream_monitor_bridge_active_alerts", "Firing alerts the bridge keeps re-sending", ["target"], registry=r)
        self.last_success = Gauge(
            "stream_monitor_bridge_last_success_timestamp_seconds", "Unix time of the last accepted delivery", ["target"], registry=r
        )
        self.committed = Counter(
            "stream_monitor_bridge_offsets_committed_total", "Offset commits after accepted deliveries", ["target"], registry=r
        )
        self.assigned_partitions = _AssignmentGauge(
            "stream_monitor_bridge_assigned_partitions", "Alert-topic partitions assigned", registry=r
        )

    @property
    def assignment_received(self) -> bool:
        return self.assigned_partitions.assigned_event.is_set()

    def assignment_check(self) -> tuple[bool, str]:
        return (True, "assigned") if self.assignment_received else (False, "waiting for a partition assignment")

    def liveness(self) -> tuple[bool, str]:
        return True, "alive"

    def render(self) -> bytes:
        return generate_latest(self.registry)


class BrokerProbe:
    """Readiness check: does any bootstrap server accept a TCP connection? (cached ``ttl_s``).

    It checks reachability only (no TLS/SASL handshake): the clients themselves report auth
    failures. Cached so frequent probes cost at most one connection attempt per ``ttl_s``.
    """

    def __init__(self, bootstrap_servers: Sequence[str], timeout_s: float = 1.0, ttl_s: float = 5.0) -> None:
        self.servers = [_split_host_port(s) for s in bootstrap_servers]
        self.timeout_s = timeout_s
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, tuple[bool, str]] | None = None

    def __call__(self) -> tuple[bool, str]:
        with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self.ttl_s:
                return self._cached[1]
            result = self._probe()
            self._cached = (now, result)
            return result

    def _probe(self) -> tuple[bool, str]:
        errors = []
        for host, port in self.servers:
            try:
                with socket.create_connection((host, port), timeout=self.timeout_s):
                    return True, f"broker {host}:{port} reachable"
            except OSError as exc:
                errors.append(f"{host}:{port} ({exc.__class__.__name__})")
        return False, "no bootstrap broker reachable: " + ", ".join(errors)


def _split_host_port(server: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` (an optional ``PROTOCOL://`` prefix is ignored).

    >>> _split_host_port("kafka:9092"), _split_host_port("SASL_SSL://[::1]:9093"), _split_host_port("k")
    (('kafka', 9092), ('::1', 9093), ('k', 9092))
    """
    text = server.split("://", 1)[-1].strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest.lstrip(":") or 9092)
    host, sep, port = text.rpartition(":")
    return (host, int(port)) if sep else (text, 9092)


def combine_checks(checks: Sequence[ReadinessCheck]) -> ReadinessCheck:
    """One readiness check that passes when all pass; the message lists the failing ones.

    >>> combine_checks([lambda: (True, "a"), lambda: (False, "b"), lambda: (False, "c")])()
    (False, 'b; c')
    >>> combine_checks([lambda: (True, "a"), lambda: (True, "b")])()
    (True, 'a; b')
    """

    def check() -> tuple[bool, str]:
        results = [c() for c in checks]
        failing = [why for ok, why in results if not ok]
        return (False, "; ".join(failing)) if failing else (True, "; ".join(why for _, why in results))

    return check


class _Exposes(Protocol):
    def render(self) -> bytes: ...


class HealthServer:
    """``/metrics``, ``/healthz`` (process alive) and ``/readyz`` (every check passes) over HTTP.

    ``ready`` is the app's own readiness; when ``metrics`` knows about partition assignment
    (:class:`MonitorMetrics`, :class:`BridgeMetrics`) "assigned at least once" is added, and
    ``extra_checks`` (e.g. a :class:`BrokerProbe`) come last. ``/healthz`` uses
    ``metrics.liveness()`` when there is one.
    """

    def __init__(
        self,
        metrics: _Exposes,
        host: str,
        port: int,
        ready: ReadinessCheck,
        extra_checks: Sequence[ReadinessCheck] = (),
    ) -> None:
        checks: list[ReadinessCheck] = [ready]
        assignment = getattr(metrics, "assignment_check", None)
        if assignment is not None:
            checks.append(assignment)
        checks.extend(extra_checks)
        live: ReadinessCheck = getattr(metrics, "liveness", None) or (lambda: (True, "alive"))
        handler = _handler(metrics, combine_checks(checks), live)
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="stream-monitor-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> HealthServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(metrics: _Exposes, ready: ReadinessCheck, live: ReadinessCheck) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, metrics.render(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok, why = live()
                self._send(200 if ok else 503, (why + "\n").encode())
            elif path == "/readyz":
                ok, why = ready()
                self._send(200 if ok else 503, (why + "\n").encode())
            else:
                self._send(404, b"not found\n")

        def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence access logs
            return

    return Handler
