"""``bench.ab_replay`` and ``bench.replay_vs_file_loop`` at smoke size, so the replay harnesses never rot (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _workload(tmp_path: Path, n: int = 1500) -> Path:
    sys.path.insert(0, str(REPO_ROOT))
    from bench.workload import throughput_events

    path = tmp_path / "w.jsonl"
    path.write_bytes(b"".join(v + b"\n" for v in throughput_events(n)))
    return path


def test_ab_replay_against_head_runs_both_clis_and_finds_the_same_output(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "bench.ab_replay", "--ref", "HEAD", "--input", str(_workload(tmp_path)), "--reps", "1"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[-2:] == ["summaries identical: True", "alerts identical: True"], lines
    for label in ("old (HEAD)", "new (working tree)", "saved per pair"):
        assert any(line.startswith(label + ":") and "median" in line for line in lines), (label, lines)


def test_replay_vs_file_loop_reports_both_rows_and_their_ratio(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "bench.replay_vs_file_loop", "--input", str(_workload(tmp_path)), "--reps", "1"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("round 0: (f) ") and "(g-file)" in lines[0], lines
    assert lines[-1].startswith("f/g-file by rate: median "), lines
