"""The HTTP endpoints ``/`` (status page), ``/metrics``, ``/healthz`` and ``/readyz``, and the readiness checks behind them.

Health semantics (one server, bound to ``metrics.host``, 127.0.0.1 by default):

- ``/healthz`` — the process is alive. Once the main loop reports a heartbeat, it also fails (503)
  when the loop has not turned for the liveness timeout (a wedged loop should be restarted by the
  orchestrator).
- ``/readyz`` — every readiness check passes: the app says so (started, state restored), the
  consumer group assigned us partitions at least once (an empty assignment counts: an idle
  standby member is ready), and — when a :class:`BrokerProbe` is added — a bootstrap broker
  accepts TCP connections.
- ``/`` — the live status page (:mod:`stream_monitor.ops.status`), when the metrics object renders
  one (``render_status``); otherwise 404.

The server is bounded: a connection that sends nothing for ``request_timeout_s`` is closed, and at
most ``max_connections`` are served at once (more are closed at once), so idle or dripping
clients cannot hold threads forever.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Protocol

from prometheus_client import CONTENT_TYPE_LATEST

ReadinessCheck = Callable[[], tuple[bool, str]]


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


class _BoundedHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that serves at most ``max_connections`` connections at once."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_connections: int) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve on a new thread if a slot is free; otherwise close the connection at once."""
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve one connection, then free its slot."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class HealthServer:
    """``/metrics``, ``/healthz`` (process alive) and ``/readyz`` (every check passes) over HTTP.

    ``ready`` is the app's own readiness; when ``metrics`` knows about partition assignment
    (:class:`MonitorMetrics`, :class:`BridgeMetrics`) "assigned at least once" is added, and
    ``extra_checks`` (e.g. a :class:`BrokerProbe`) come last. ``/healthz`` uses
    ``metrics.liveness()`` when there is one. ``request_timeout_s`` bounds every socket read and
    write of a connection; ``max_connections`` bounds the connections served at once.
    """

    def __init__(
        self,
        metrics: _Exposes,
        host: str,
        port: int,
        ready: ReadinessCheck,
        extra_checks: Sequence[ReadinessCheck] = (),
        request_timeout_s: float = 10.0,
        max_connections: int = 32,
    ) -> None:
        checks: list[ReadinessCheck] = [ready]
        assignment = getattr(metrics, "assignment_check", None)
        if assignment is not None:
            checks.append(assignment)
        checks.extend(extra_checks)
        live: ReadinessCheck = getattr(metrics, "liveness", None) or (lambda: (True, "alive"))
        handler = _handler(metrics, combine_checks(checks), live, request_timeout_s)
        self.server = _BoundedHTTPServer((host, port), handler, max_connections)
        self.thread = threading.Thread(target=self.server.serve_forever, name="stream-monitor-http", daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self.server.server_address[1])

    def start(self) -> HealthServer:
        """Serve on a daemon thread; returns self."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()


def _handler(metrics: _Exposes, ready: ReadinessCheck, live: ReadinessCheck, timeout_s: float) -> type[BaseHTTPRequestHandler]:
    status_page: Callable[[], bytes] | None = getattr(metrics, "render_status", None)

    class Handler(BaseHTTPRequestHandler):
        timeout = timeout_s  # socket timeout for every read and write of the connection

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
            elif path in ("/", "/status") and status_page is not None:
                self._send(200, status_page(), "text/html; charset=utf-8")
            else:
                self._send(404, b"not found\n")

        def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            if ctype.startswith("text/html"):  # the status page loads nothing, runs nothing
                self.send_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
                self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence access logs
            return

    return Handler
