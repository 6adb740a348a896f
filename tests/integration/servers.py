"""Real Prometheus / Alertmanager servers and small HTTP helpers for integration tests.

The servers are the Debian packages' binaries (``prometheus``, ``prometheus-alertmanager``; the
upstream name ``alertmanager`` works too), started directly with a temporary config and data dir on
127.0.0.1 — never the packages' systemd services. Every wait is bounded. A missing binary skips
the test on a developer machine and fails it under CI (``CI=true``), where ``make test`` installs
the packages first.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import pytest

from tests.kafka_fixtures import _free_ports

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[2]


def require_binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    msg = f"needs {' or '.join(names)} (apt-get install prometheus prometheus-alertmanager)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(msg)
    pytest.skip(msg)
    raise AssertionError("unreachable")


free_ports = _free_ports  # one implementation: tests/kafka_fixtures.py


def http(method: str, url: str, body: Any = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """One request; HTTP errors are returned as (status, body), network errors raise OSError."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(what: str, fn: Callable[[], T | None], timeout_s: float, interval_s: float = 0.25, check: Callable[[], None] | None = None) -> T:
    """Call ``fn`` until it returns a truthy value (returned) or ``timeout_s`` passes (raises)."""
    deadline = time.monotonic() + timeout_s
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        if check is not None:
            check()
        try:
            value = fn()
            if value:
                return value
        except (OSError, ValueError, KeyError) as exc:
            last_exc = exc
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}" + (f" (last error: {last_exc!r})" if last_exc else ""))


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(10)
    return proc.returncode


@dataclass
class Server:
    """A server binary started by a test, with its log file."""

    name: str
    args: list[str]
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str = "/-/ready", timeout_s: float = 60.0) -> Server:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(self.args, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir)
        log_file.close()

        def ready() -> bool:
            self.check_alive()
            return http("GET", self.url + ready_path, timeout=2)[0] == 200

        wait_for(f"{self.name} ready on {self.url}", ready, timeout_s)
        return self

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


def prometheus_server(workdir: Path, scrape_targets: dict[str, str], port: int | None = None) -> Server:
    """A Prometheus scraping ``{job: "host:port"}`` every second."""
    binary = require_binary("prometheus")
    port = port or free_ports(1)[0]
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    jobs = "".join(
        f"  - job_name: {json.dumps(job)}\n    static_configs:\n      - targets: [{json.dumps(target)}]\n" for job, target in scrape_targets.items()
    )
    config.write_text(f"global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{jobs}")
    args = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
    ]
    return Server("prometheus", args, port, workdir)


def alertmanager_server(workdir: Path, port: int | None = None) -> Server:
    """An Alertmanager with clustering off and a do-nothing receiver (we read its API)."""
    binary = require_binary("prometheus-alertmanager", "alertmanager")
    port = port or free_ports(1)[0]
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: sink\n  group_by: [alertname, model, feature]\n  group_wait: 1s\n  group_interval: 1s\n"
        "  repeat_interval: 1h\nreceivers:\n  - name: sink\n"
    )
    args = [
        binary,
        f"--config.file={config}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    return Server("alertmanager", args, port, workdir)


def promql(server: Server, query: str) -> list[dict[str, Any]]:
    """Instant query via Prometheus' HTTP API; returns the result vector."""
    status, body = http("GET", f"{server.url}/api/v1/query?{urllib.parse.urlencode({'query': query})}")
    data = json.loads(body)
    if status != 200 or data.get("status") != "success":
        raise ValueError(f"query {query!r} failed: {status} {body[:300]!r}")
    return list(data["data"]["result"])


def committed_total(bootstrap: str, group: str, topic: str) -> int:
    """Sum of ``group``'s committed offsets on ``topic`` (0 when nothing is committed)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    return sum(max(0, o.offset) for tp, o in offsets.items() if tp.topic == topic)


def monitor_command(*args: str) -> list[str]:
    """The command line of ``python -m stream_monitor`` with JSON logs."""
    return [sys.executable, "-m", "stream_monitor", "--log-format", "json", *args]


def start_monitor_cli(
    bootstrap: str, topic: str, alerts: str, group: str, metrics_port: int, log_path: Path, secret: str
) -> tuple[subprocess.Popen, Callable[[], None]]:
    """``stream-monitor run`` as deployed (the CLI in a subprocess) with its HTTP server on ``metrics_port``.

    Returns the process and a check that raises (with the log's tail) once it has exited.
    """
    env = {**os.environ, "STREAM_MONITOR_STATE_SECRET": secret, "STREAM_MONITOR_DLQ_TOPIC": f"{alerts}-dlq"}
    args = monitor_command(
        "run", "--bootstrap-servers", bootstrap, "--input-topic", topic, "--alerts-topic", alerts,
        "--group-id", group, "--metrics-port", str(metrics_port),
    )  # fmt: skip
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)

    def alive() -> None:
        if proc.poll() is not None:
            raise RuntimeError(f"monitor exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")

    return proc, alive
