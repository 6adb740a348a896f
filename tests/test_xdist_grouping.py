"""The suite's own scheduling: under ``make test`` (``-n 2 --dist loadgroup``) the broker tests of
one module run on one worker, and the workers share one broker.

pytest 9.2 stopped reading the node-id suffix by which pytest-xdist 3.8 groups tests, and nothing
failed: the broker tests were spread over both workers one by one, and the suite made every module
fixture (a workload, the SASL broker) on both (tests/conftest.py sets the suffix pytest reads).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

PROBE = '''
import os
import pytest

@pytest.mark.kafka
@pytest.mark.parametrize("i", range(6))
def test_broker(i):
    with open(os.environ["PROBE_OUT"], "a") as f:
        f.write(__name__ + " " + os.environ["PYTEST_XDIST_WORKER"] + "\\n")

@pytest.mark.parametrize("i", range(6))
def test_pure(i):
    pass
'''


def test_the_broker_tests_of_a_module_share_one_worker(tmp_path: Path) -> None:
    for name in ("test_probe_a.py", "test_probe_b.py"):
        (tmp_path / name).write_text(PROBE)
    out = tmp_path / "workers.txt"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=240, env={**os.environ, "PROBE_OUT": str(out)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [line.split() for line in out.read_text().splitlines()]
    assert len(lines) == 12, lines
    by_module: dict[str, set[str]] = {}
    for module, worker in lines:
        by_module.setdefault(module, set()).add(worker)
    assert sorted(by_module) == ["test_probe_a", "test_probe_b"] and all(len(w) == 1 for w in by_module.values()), by_module


def test_the_workers_share_one_broker_and_the_last_one_out_stops_it(tmp_path: Path) -> None:
    import threading
    import time

    from tests.kafka_fixtures import SharedBroker

    started: list[Path] = []
    stopped: list[dict[str, str]] = []

    def start(run_dir: Path) -> tuple[str, dict[str, str]]:
        time.sleep(0.2)  # a slow start: the other worker must wait for it, not start a second broker
        started.append(run_dir)
        return f"127.0.0.1:{9000 + len(started)}", {"KAFKA_RUN_DIR": str(run_dir), "n": str(len(started))}

    workers = [SharedBroker(tmp_path / "shared", start, lambda env: stopped.append(dict(env))) for _ in range(2)]
    addresses: list[str] = []
    threads = [threading.Thread(target=lambda w=w: addresses.append(w.acquire())) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert addresses == ["127.0.0.1:9001"] * 2 and len(started) == 1, (addresses, started)
    workers[0].release()
    workers[0].release()  # a second release (the atexit one after the finalizer's) counts nothing
    assert stopped == []
    workers[1].release()
    assert [e["n"] for e in stopped] == ["1"]
    # a worker that asks after everyone left starts a new broker, and stops it when it leaves
    late = SharedBroker(tmp_path / "shared", start, lambda env: stopped.append(dict(env)))
    assert late.acquire() == "127.0.0.1:9002"
    late.release()
    assert [e["n"] for e in stopped] == ["1", "2"]
