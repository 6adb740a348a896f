"""The A/B scripts of ``bench/`` (``bench/ab_arms.py``'s alternating rounds) at smoke size against the real broker, so
they never rot (no timing asserted): both sides run and find the same alerts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]


@pytest.mark.parametrize(("module", "arm"), [("bench.ab_quiet", "ends asked"), ("bench.ab_scan", "by shape")])
def test_an_ab_script_runs_both_sides_and_they_find_the_same_alerts(kafka_bootstrap, module: str, arm: str) -> None:
    cmd = [sys.executable, "-m", module, "--bootstrap", kafka_bootstrap, "--events", "4000", "--rounds", "1"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = [line for line in proc.stdout.splitlines() if line.startswith(f"round 0: {arm}")]
    assert len(runs) == 2, proc.stdout
    assert len({line.rsplit(", ", 1)[1] for line in runs}) == 1, f"the two sides found different alerts: {runs}"
    assert any(line.startswith("paired ratio (yes/no): median") for line in proc.stdout.splitlines()), proc.stdout
