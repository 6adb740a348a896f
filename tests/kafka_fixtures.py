"""Pytest fixtures for a real Kafka broker (see deploy/kafka/broker.sh).

Imported into tests/conftest.py with ``from tests.kafka_fixtures import *``.

Fixtures
--------
kafka_bootstrap (session) -> str
    "host:port". Uses $STREAM_MONITOR_BOOTSTRAP when set (nothing is started or stopped);
    otherwise starts a private single-node broker on free ports with a run dir under pytest's
    tmp dir, and stops it at session end (finalizer + atexit; the broker also gets
    KAFKA_OWNER_PID=<pytest pid>, so a watchdog stops it even if pytest is killed). Under
    pytest-xdist the workers share one broker (SharedBroker: the first to ask starts it, the
    last to finish stops it, its owner pid is the xdist controller).
sasl_ssl_broker (module; opt-in: only modules that ask for it start one) -> SaslSslBroker
    A separate private broker with an extra SASL_SSL listener (broker.sh KAFKA_SASL_SSL_PORT):
    ``.plaintext`` / ``.sasl_ssl`` addresses, ``.ca_file`` (the self-signed CA to trust),
    ``.username`` and ``.password_file`` (one user for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512).
    Stopped at the end of the module.
unique_name (function) -> callable(prefix="t") -> str
    Topic/group/transactional-id names unique per call and per test.
topic_factory (function) -> callable(partitions=3, prefix="topic", configs=None) -> str
    Creates a uniquely named topic on kafka_bootstrap and returns its name.

Helpers
-------
create_topic(bootstrap, name, partitions=1, *, replication_factor=1, configs=None,
             timeout_s=30.0, exist_ok=False) -> str
    Creates a topic with kafka-python's KafkaAdminClient and waits until every partition
    has a leader.

Marker: ``@pytest.mark.kafka`` for tests that need a broker (registered here).
"""

from __future__ import annotations

import atexit
import fcntl
import itertools
import json
import os
import re
import socket
import subprocess
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, Optional

import pytest

__all__ = [
    "BROKER_SH",
    "SaslSslBroker",
    "SharedBroker",
    "create_topic",
    "kafka_bootstrap",
    "sasl_ssl_broker",
    "pytest_configure",
    "topic_factory",
    "unique_name",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
BROKER_SH = REPO_ROOT / "deploy" / "kafka" / "broker.sh"
BOOTSTRAP_ENV = "STREAM_MONITOR_BOOTSTRAP"
# first start fetches ~45 MB of jars with Maven; later starts take ~4 s
_START_TIMEOUT_S = 900
_STOP_TIMEOUT_S = 90


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kafka: needs a real Kafka broker (kafka_bootstrap fixture; "
        f"${BOOTSTRAP_ENV} or deploy/kafka/broker.sh)",
    )


def _broker_sh(command: str, env: Mapping[str, str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """``broker.sh COMMAND`` with ``env``, its output captured (never raises on a non-zero exit)."""
    return subprocess.run(
        ["bash", str(BROKER_SH), command], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s, check=False
    )


def _free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (bound at once, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class _Broker:
    """A broker started by broker.sh for this pytest process."""

    def __init__(self, run_dir: Path, sasl_ssl: bool = False, owner_pid: Optional[int] = None) -> None:
        self.run_dir = run_dir
        self.sasl_ssl = sasl_ssl
        self.owner_pid = owner_pid or os.getpid()
        self.env: Optional[dict[str, str]] = None
        self.address: Optional[str] = None
        self.sasl_ssl_port: Optional[int] = None

    def start(self) -> str:
        last_err = ""
        for _attempt in range(3):
            port, cport, sport = _free_ports(3)
            env = dict(os.environ)
            env.update(
                KAFKA_PORT=str(port),
                KAFKA_CONTROLLER_PORT=str(cport),
                KAFKA_RUN_DIR=str(self.run_dir / str(port)),
                KAFKA_OWNER_PID=str(self.owner_pid),
            )
            if self.sasl_ssl:
                env["KAFKA_SASL_SSL_PORT"] = str(sport)
                self.sasl_ssl_port = sport
            self.env = env  # set before start so stop() can clean up a half-started broker
            proc = _broker_sh("start", env, _START_TIMEOUT_S)
            if proc.returncode == 0:
                lines = proc.stdout.strip().splitlines()
                self.address = lines[-1].strip() if lines else f"127.0.0.1:{port}"
                return self.address
            last_err = f"exit {proc.returncode}\n{proc.stderr}"
            self.stop()
            if "already in use" not in proc.stderr:  # only a port race is worth a retry
                break
        raise RuntimeError(f"{BROKER_SH} start failed: {last_err}")

    def stop(self) -> None:
        env, self.env = self.env, None
        if env is None:
            return
        _broker_sh("stop", env, _STOP_TIMEOUT_S)


@dataclass(frozen=True)
class SaslSslBroker:
    plaintext: str
    sasl_ssl: str
    ca_file: Path
    username: str
    password_file: Path


@pytest.fixture(scope="module")
def sasl_ssl_broker(tmp_path_factory: pytest.TempPathFactory):
    """A private broker with a SASL_SSL listener for one test module (see the module doc)."""
    broker = _Broker(tmp_path_factory.mktemp("kafka-sasl-ssl"), sasl_ssl=True)
    atexit.register(broker.stop)
    try:
        address = broker.start()
        assert broker.env is not None and broker.sasl_ssl_port is not None
        run_dir = Path(broker.env["KAFKA_RUN_DIR"])
        yield SaslSslBroker(
            plaintext=address,
            sasl_ssl=f"127.0.0.1:{broker.sasl_ssl_port}",
            ca_file=run_dir / "tls" / "ca.pem",
            username=(run_dir / "sasl" / "username").read_text().strip(),
            password_file=run_dir / "sasl" / "password",
        )
    finally:
        broker.stop()
        atexit.unregister(broker.stop)


class SharedBroker:
    """One broker for every pytest-xdist worker of a run, kept in ``shared_dir`` (the run's base temp dir).

    The first worker to :meth:`acquire` starts it (``start(run_dir) -> (address, env)``) under an
    exclusive lock and writes its address and ``broker.sh`` environment to ``broker.json``; later
    ones read them. Each holder counts itself in ``holders``; the last to :meth:`release` stops the
    broker (``stop(env)``), so a worker that finishes early leaves it to the others (and a worker
    that asks after that starts a new one). The broker's ``KAFKA_OWNER_PID`` is the xdist controller,
    so a killed run leaves no broker behind either.
    """

    def __init__(self, shared_dir: Path, start: Callable[[Path], tuple[str, dict[str, str]]], stop: Callable[[Mapping[str, str]], None]) -> None:
        self.dir = shared_dir
        self._start, self._stop = start, stop
        self._held = False

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def acquire(self) -> str:
        """The broker's address, starting it when no worker holds one."""
        with self._locked():
            state, holders = self.dir / "broker.json", self.dir / "holders"
            if not state.exists():
                address, env = self._start(self.dir / "kafka")
                state.write_text(json.dumps({"address": address, "env": env}))
                holders.write_text("0")
            count = int(holders.read_text() or 0) + 1
            holders.write_text(str(count))
            self._held = True
            return json.loads(state.read_text())["address"]

    def release(self) -> None:
        """Count this worker out; the last one out stops the broker."""
        if not self._held:
            return
        self._held = False
        with self._locked():
            state, holders = self.dir / "broker.json", self.dir / "holders"
            count = int(holders.read_text() or 0) - 1
            holders.write_text(str(max(count, 0)))
            if count <= 0 and state.exists():
                env = json.loads(state.read_text())["env"]
                state.unlink()
                self._stop(env)


def _shared_start(run_dir: Path) -> tuple[str, dict[str, str]]:
    broker = _Broker(run_dir, owner_pid=os.getppid())  # the xdist controller: the watchdog outlives no run
    address = broker.start()
    assert broker.env is not None
    keep = ("KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "KAFKA_RUN_DIR", "KAFKA_OWNER_PID")
    return address, {k: broker.env[k] for k in keep}


def _shared_stop(env: Mapping[str, str]) -> None:
    _broker_sh("stop", {**os.environ, **env}, _STOP_TIMEOUT_S)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory):
    """The broker of the run: $STREAM_MONITOR_BOOTSTRAP, else one private broker, shared by the
    pytest-xdist workers of the run (:class:`SharedBroker`) or this process's own without xdist."""
    external = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if external:
        yield external
        return
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # a worker's base temp dir is <the controller's>/popen-gwN: the parent is the run's own
        shared = SharedBroker(tmp_path_factory.getbasetemp().parent / "kafka-shared", _shared_start, _shared_stop)
        start, stop = shared.acquire, shared.release
    else:
        broker = _Broker(tmp_path_factory.mktemp("kafka"))
        start, stop = broker.start, broker.stop
    atexit.register(stop)
    try:
        yield start()
    finally:
        stop()
        atexit.unregister(stop)


_SANITIZE = re.compile(r"[^A-Za-z0-9._-]+")


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[..., str]:
    """unique_name(prefix="t") -> "<prefix>.<test name>.<n>-<random>" (legal topic/group name)."""
    base = _SANITIZE.sub("-", request.node.name).strip("-.")[:80] or "test"
    counter = itertools.count()

    def make(prefix: str = "t") -> str:
        return f"{_SANITIZE.sub('-', prefix)}.{base}.{next(counter)}-{uuid.uuid4().hex[:8]}"

    return make


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int = 1,
    *,
    replication_factor: int = 1,
    configs: Optional[Mapping[str, str]] = None,
    timeout_s: float = 30.0,
    exist_ok: bool = False,
) -> str:
    """Create ``name`` and wait until all its partitions have a leader. Returns ``name``."""
    from kafka import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="stream-monitor-tests-admin",
        request_timeout_ms=int(timeout_s * 1000),
    )
    try:
        spec = {
            "num_partitions": partitions,
            "replication_factor": replication_factor,
            "configs": dict(configs or {}),
        }
        try:
            admin.create_topics({name: spec}, timeout_ms=int(timeout_s * 1000))
        except TopicAlreadyExistsError:
            if not exist_ok:
                raise
        admin.wait_for_topics([name], timeout_ms=int(timeout_s * 1000))
    finally:
        admin.close()
    return name


@pytest.fixture
def topic_factory(kafka_bootstrap: str, unique_name: Callable[..., str]) -> Callable[..., str]:
    """topic_factory(partitions=3, prefix="topic", configs=None) -> new topic name."""

    def make(partitions: int = 3, prefix: str = "topic", configs: Optional[Mapping[str, str]] = None) -> str:
        return create_topic(kafka_bootstrap, unique_name(prefix), partitions, configs=configs)

    return make
