"""The suite's own scheduling: under ``make test`` (``-n 2 --dist loadgroup``) every broker test runs on one worker.

pytest 9.2 stopped reading the node-id suffix by which pytest-xdist 3.8 groups tests, and nothing
failed: the broker tests were spread over both workers, each starting its own broker, and the
suite started two brokers, two SASL brokers and every module fixture twice (tests/conftest.py sets the suffix pytest reads).
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
        f.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")

@pytest.mark.parametrize("i", range(6))
def test_pure(i):
    pass
'''


def test_the_broker_tests_share_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_probe.py").write_text(PROBE)
    out = tmp_path / "workers.txt"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "--rootdir", str(tmp_path), str(tmp_path / "test_probe.py")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=240, env={**os.environ, "PROBE_OUT": str(out)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    workers = out.read_text().split()
    assert len(workers) == 6 and len(set(workers)) == 1, workers
