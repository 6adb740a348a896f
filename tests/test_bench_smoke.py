"""The benchmark (``python -m bench.run``) at smoke size, so it never rots. No timing is asserted:
only that every section is there and every figure is a positive number."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]


def _positive(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and x > 0


def test_bench_smoke_reports_every_section(kafka_bootstrap: str, tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--bootstrap", kafka_bootstrap, "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())

    assert set(report["throughput"]) == {"a", "b", "c", "d", "e", "f"}
    for key, r in report["throughput"].items():
        assert _positive(r["records"]) and _positive(r["records_per_s"]) and _positive(r["channel_values_per_s"]), (key, r)
    assert set(report["ratios"]) == {"d/a", "e/a", "d/c", "e/c", "f/e"}
    assert all(_positive(v) for v in report["ratios"].values()), report["ratios"]

    lat = report["latency"]
    assert lat["samples"] > 0 and _positive(lat["p50_ms"]) and _positive(lat["p99_ms"]), lat

    assert len(report["memory"]) >= 2
    for n, m in report["memory"].items():
        assert m["channels"] == int(n), m
        assert _positive(m["state_bytes_per_channel"]) and _positive(m["rss_after_state_bytes"]), m

    assert len(report["scaling"]) >= 2
    for s in report["scaling"].values():
        assert _positive(s["records_per_s"]) and _positive(s["channel_values_per_s"]), s

    assert set(report["targets"]) and all("met" in t for t in report["targets"].values())
    assert "records/s" in proc.stdout and "ratios:" in proc.stdout
