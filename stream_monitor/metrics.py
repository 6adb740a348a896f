"""Prometheus metrics and the HTTP endpoints ``/metrics``, ``/healthz`` and ``/readyz``.

Each :class:`MonitorMetrics` owns its own ``CollectorRegistry`` (no global state), so tests and
several apps in one process never collide. Per-channel series are capped
(``metrics.max_channel_series``): past the cap new channels are counted, not exported.

>>> m = MonitorMetrics(max_channel_series=1)
>>> m.observe_statistic("m", "x", "psi", 0.1); m.observe_statistic("m", "y", "psi", 0.2)
>>> m.channel_series_dropped._value.get()
1.0
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class MonitorMetrics:
    """All metrics of one monitor instance."""

    def __init__(self, max_channel_series: int = 2000) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.max_channel_series = max_channel_series
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
        self.assigned_partitions = Gauge("stream_monitor_assigned_partitions", "Input partitions assigned", registry=r)
        self._firing: dict[str, tuple[str, str, str]] = {}

    def observe_statistic(self, model: str, channel: str, detector: str, value: float | None) -> None:
        key = (model, channel, detector)
        if key not in self._channel_keys:
            if len(self._channel_keys) >= self.max_channel_series:
                self.channel_series_dropped.inc()
                return
            self._channel_keys.add(key)
        if value is not None:
            self.statistic.labels(*key).set(value)

    def observe_alert(self, fields: dict[str, Any]) -> None:
        model, kind, severity, status = fields["model"], fields["kind"], fields["severity"], fields["status"]
        self.alerts.labels(model, kind, severity, status).inc()
        self.observe_statistic(model, fields["feature"], fields["detector"], fields.get("statistic"))
        fp = fields["fingerprint"]
        previous = self._firing.pop(fp, None)
        if previous is not None:
            self.firing.labels(*previous).dec()
        if status == "firing":
            self._firing[fp] = (model, kind, severity)
            self.firing.labels(model, kind, severity).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HealthServer:
    """``/metrics``, ``/healthz`` (process alive) and ``/readyz`` (``ready()`` says yes) over HTTP."""

    def __init__(self, metrics: MonitorMetrics, host: str, port: int, ready: Callable[[], tuple[bool, str]]) -> None:
        handler = _handler(metrics, ready)
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


def _handler(metrics: MonitorMetrics, ready: Callable[[], tuple[bool, str]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, metrics.render(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._send(200, b"ok\n")
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
