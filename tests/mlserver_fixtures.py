"""Pytest fixtures for a real MLServer (PyPI ``mlserver`` + ``mlserver-sklearn``) with Kafka enabled.

MLServer pins many packages (grpcio, protobuf, fastapi, pandas, ...), so it gets its own
virtualenv, never ours: made on first use under ``tests/.cache/mlserver-venv/<pins>/`` (gitignored,
keyed by the pinned versions and the Python version) and reused afterwards. Set
``$STREAM_MONITOR_MLSERVER_VENV`` to use an existing one instead.

Fixtures
--------
mlserver_python (session) -> Path
    The Python interpreter of MLServer's virtualenv (installed when missing; an install that
    fails fails the test with pip's output, it does not skip).
broker_or_skip (session) -> str
    ``kafka_bootstrap``, or a skip naming why no broker could be started (no Java, ...).
mlserver (module) -> MLServer
    A running ``mlserver start`` serving :data:`MODEL_NAME` (a seeded scikit-learn logistic
    regression over :data:`FEATURES`, trained here in MLServer's venv), reading requests from
    ``.input_topic`` and writing responses to ``.output_topic`` on the test broker. Stopped at the
    end of the module.

Helpers
-------
oip_request(request_id, rows) -> bytes
    An Open Inference Protocol request: one FP64 tensor of shape [len(rows), len(FEATURES)].
sample_rows(rng, n, shift=None) -> list[list[float]]
    Rows from the training distribution, with ``shift = (feature, amount)`` added to one feature.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import orjson
import pytest

from tests.kafka_fixtures import REPO_ROOT, _free_ports, create_topic

MLSERVER_PINS = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "scikit-learn==1.9.1")
VENV_ENV = "STREAM_MONITOR_MLSERVER_VENV"
CACHE_DIR = REPO_ROOT / "tests" / ".cache" / "mlserver-venv"
MODEL_NAME = "credit-risk"
MODEL_VERSION = "v1"
MODEL_HEADER = "mlserver-model"  # MLServer's Kafka server takes the model name from this header
# feature -> (mean, standard deviation) of the training data
FEATURES: dict[str, tuple[float, float]] = {
    "age": (41.0, 11.0),
    "income": (5200.0, 1400.0),
    "debt_ratio": (0.35, 0.1),
    "tenure_months": (30.0, 9.0),
}
_INSTALL_TIMEOUT_S = 1800
_READY_TIMEOUT_S = 600


def _venv_key() -> str:
    pins = "_".join(p.replace("==", "-") for p in MLSERVER_PINS)
    return f"{pins}_py{sys.version_info.major}.{sys.version_info.minor}"


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_mlserver_venv() -> Path:
    """MLServer's virtualenv: the cached one, or a new one built aside and moved into place.

    One build at a time (a lock file beside the venvs): a caller that finds a build under way
    (:func:`prebuild_in_background`'s, started with the test session) waits for it and uses it.
    """
    override = os.environ.get(VENV_ENV, "").strip()
    if override:
        return Path(override)
    venv = CACHE_DIR / _venv_key()
    if (venv / "complete").exists():
        return venv
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / "build.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        if (venv / "complete").exists():  # built while we waited
            return venv
        for stale in CACHE_DIR.glob(f"{venv.name}.tmp-*"):  # a build killed half-way (we hold the lock: nobody else is building)
            shutil.rmtree(stale, ignore_errors=True)
        _build(venv)
    return venv


def prebuild_in_background() -> subprocess.Popen[bytes] | None:
    """Start building MLServer's virtualenv in a subprocess (None when it is there or overridden).

    The test session starts it so that the ~90 s install (pip, on a fresh clone) overlaps the other
    tests instead of delaying the broker tests' worker; its output goes to ``build.log`` beside it.
    """
    if os.environ.get(VENV_ENV, "").strip() or (CACHE_DIR / _venv_key() / "complete").exists():
        return None
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / "build.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-c", "from tests.mlserver_fixtures import ensure_mlserver_venv; ensure_mlserver_venv()"],
            cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _build(venv: Path) -> None:
    tmp = CACHE_DIR / f"{venv.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        steps = [
            [sys.executable, "-m", "venv", str(tmp)],
            [str(_venv_python(tmp)), "-m", "pip", "install", "--disable-pip-version-check", "-q", *MLSERVER_PINS],
        ]
        for cmd in steps:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT_S, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                pytest.fail(f"installing MLServer failed: {' '.join(cmd)} exited {proc.returncode}\n{proc.stderr[-4000:]}")
        (tmp / "complete").write_text(" ".join(MLSERVER_PINS) + "\n")
        try:
            tmp.rename(venv)
        except OSError:  # another session finished first: use theirs
            if not (venv / "complete").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def mlserver_python() -> Path:
    """The interpreter of MLServer's own virtualenv."""
    return _venv_python(ensure_mlserver_venv())


@pytest.fixture(scope="session")
def broker_or_skip(request: pytest.FixtureRequest) -> str:
    """The test broker's address, or a skip saying why no broker could be started."""
    try:
        return request.getfixturevalue("kafka_bootstrap")
    except RuntimeError as exc:
        pytest.skip(f"no Kafka broker (Java or the broker is unavailable): {str(exc)[-500:]}")


_TRAIN = textwrap.dedent(
    """
    import json, sys
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    out, features = sys.argv[1], json.loads(sys.argv[2])
    rng = np.random.default_rng(20260101)
    cols = [rng.normal(m, s, 4000) for m, s in features.values()]
    x = np.column_stack(cols)
    z = np.column_stack([(c - m) / s for c, (m, s) in zip(cols, features.values())])
    y = (1.6 * z[:, 2] - 0.8 * z[:, 1] + 0.3 * z[:, 0] + rng.normal(0, 0.5, len(z)) > 0.4).astype(int)
    joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), out)
    """
)


def train_model(python: Path, model_dir: Path) -> None:
    """Train the seeded logistic regression in MLServer's venv and write its model settings."""
    model_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [str(python), "-c", _TRAIN, str(model_dir / "model.joblib"), json.dumps(FEATURES)],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"training the test model failed:\n{proc.stderr[-4000:]}")
    settings = {
        "name": MODEL_NAME,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": MODEL_VERSION},
    }
    (model_dir / "model-settings.json").write_text(json.dumps(settings, indent=2))


@dataclass
class MLServer:
    """A running MLServer and where it reads and writes."""

    bootstrap: str
    input_topic: str
    output_topic: str
    http_port: int
    log_path: Path
    proc: subprocess.Popen[bytes]

    def log_tail(self, n: int = 60) -> str:
        """The last lines of MLServer's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def check_alive(self) -> None:
        """Fail with MLServer's log when the process has exited."""
        if self.proc.poll() is not None:
            pytest.fail(f"MLServer exited with {self.proc.returncode}:\n{self.log_tail()}")

    def model_ready(self) -> bool:
        """Whether the REST endpoint says the model is loaded."""
        url = f"http://127.0.0.1:{self.http_port}/v2/models/{MODEL_NAME}/ready"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """SIGTERM to MLServer's process group, SIGKILL after 30 s."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)


@pytest.fixture(scope="module")
def mlserver(broker_or_skip: str, mlserver_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MLServer]:
    """MLServer serving the test model over Kafka on the test broker (see the module doc)."""
    work = tmp_path_factory.mktemp("mlserver")
    model_dir = work / "models" / MODEL_NAME
    train_model(mlserver_python, model_dir)
    suffix = uuid.uuid4().hex[:8]
    input_topic = create_topic(broker_or_skip, f"mlserver-input.{suffix}", 1)
    output_topic = create_topic(broker_or_skip, f"mlserver-output.{suffix}", 1)
    http_port, grpc_port, metrics_port = _free_ports(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSERVER_")}
    env.update(
        MLSERVER_KAFKA_ENABLED="true",
        MLSERVER_KAFKA_SERVERS=broker_or_skip,
        MLSERVER_KAFKA_TOPIC_INPUT=input_topic,
        MLSERVER_KAFKA_TOPIC_OUTPUT=output_topic,
        MLSERVER_HTTP_PORT=str(http_port),
        MLSERVER_GRPC_PORT=str(grpc_port),
        MLSERVER_METRICS_PORT=str(metrics_port),
        MLSERVER_PARALLEL_WORKERS="0",  # inference in the server process: two cores are shared
        MLSERVER_HOST="127.0.0.1",
    )
    log_path = work / "mlserver.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(mlserver_python), "-c", "import sys; from mlserver.cli import main; sys.exit(main())", "start", str(work / "models")],
            cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    server = MLServer(broker_or_skip, input_topic, output_topic, http_port, log_path, proc)
    try:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while not server.model_ready():
            server.check_alive()
            if time.monotonic() > deadline:
                pytest.fail(f"MLServer's model not ready after {_READY_TIMEOUT_S} s:\n{server.log_tail()}")
            time.sleep(0.5)
        yield server
    finally:
        server.stop()


def sample_rows(rng: np.random.Generator, n: int, shift: tuple[str, float] | None = None) -> list[list[float]]:
    """``n`` rows from the training distribution; ``shift=(feature, amount)`` moves one feature."""
    cols = []
    for name, (mean, sd) in FEATURES.items():
        col = rng.normal(mean, sd, n)
        if shift is not None and shift[0] == name:
            col = col + shift[1]
        cols.append(col)
    return np.column_stack(cols).round(4).tolist()


def oip_request(request_id: str, rows: list[list[float]]) -> bytes:
    """An Open Inference Protocol request with one FP64 tensor of shape [rows, features]."""
    body: dict[str, Any] = {
        "id": request_id,
        "inputs": [{"name": "input-0", "shape": [len(rows), len(FEATURES)], "datatype": "FP64", "data": rows}],
        "parameters": {"content_type": "np"},
    }
    return orjson.dumps(body)
