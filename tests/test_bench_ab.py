"""``python -m bench.ab_against_ref`` at smoke size, so the A/B harness never rots (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_ab_against_head_runs_both_and_finds_the_same_alerts() -> None:
    cmd = [sys.executable, "-m", "bench.ab_against_ref", "--ref", "HEAD", "--records", "1500", "--reps", "2", "--batch", "700", "--evaluations"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[-1] == "alerts identical: True"
    for label in ("old (HEAD)", "new (working tree)", "  old _evaluate_detectors", "  new _evaluate_detectors", "saved per pair"):
        assert any(line.startswith(label + ":") and "median" in line for line in lines), (label, lines)


def test_ab_rows_runs_both_encoders_and_finds_the_same_alerts() -> None:
    """``python -m bench.ab_rows`` at smoke size: each side encodes and judges its own rows records."""
    cmd = [sys.executable, "-m", "bench.ab_rows", "--base", "HEAD", "--events", "3000", "--rounds", "1"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("3000 rows; bytes per row")
    for step in ("encode", "decode", "gather", "stage2"):
        assert any(line.startswith(step + ": base HEAD") and "saved median" in line for line in lines), (step, lines)
    assert any("identical" in line for line in lines if line.startswith("stage2"))


def test_ab_hop_runs_both_sides_and_finds_the_same_rows() -> None:
    """``python -m bench.ab_hop`` at smoke size: each side fetches, reads, encodes and decodes its own records."""
    cmd = [sys.executable, "-m", "bench.ab_hop", "--base", "HEAD", "--events", "2000", "--rounds", "1", "--steps"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("2000 records") and lines[0].endswith("decoded rows identical")
    for step in ("fetch", "hop", "read", "encode", "decode", "columns"):
        assert any(line.startswith(step + ": base HEAD") and "saved median" in line for line in lines), (step, lines)


def test_ab_small_runs_both_sides_at_each_batch_size_and_finds_the_same_alerts() -> None:
    """``python -m bench.ab_small`` at smoke size: both sides judge the same events in batches of each size."""
    cmd = [sys.executable, "-m", "bench.ab_small", "--base", "HEAD", "--events", "6000", "--rounds", "1", "--batches", "100,2000"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    for batch in (100, 2000):
        assert any(line.startswith(f"batch {batch}: base HEAD") and "saved median" in line and line.endswith("identical") for line in lines), lines
