"""The benchmark (``python -m bench.run``) at smoke size, so it never rots. No timing is asserted:
only that every section is there and every figure is a positive number."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from bench.compare import quix_missing
from bench.markdown import render

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(400)]


def _positive(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and x > 0


def test_bench_smoke_reports_every_section(kafka_bootstrap: str, tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--bootstrap", kafka_bootstrap, "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=380,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())

    assert set(report["throughput"]) == {"a", "b", "c", "d", "e", "e0", "f", "g", "g-file", "h-alo", "h-eos", "e+labels"}
    quix = quix_missing() is None
    for key, r in report["throughput"].items():
        if key in ("h-alo", "h-eos") and not quix:
            assert "quixstreams" in r["skipped"], r
            continue
        assert _positive(r["records"]) and _positive(r["records_per_s"]) and _positive(r["channel_values_per_s"]), (key, r)
        assert _positive(r["records_per_cpu_s"]), (key, r)
    for key in ("d", "e", "e0", "e+labels"):
        r = report["throughput"][key]
        assert _positive(r["changelog_per_input_byte"]) and _positive(r["checkpoint_share"]), (key, r)
        # as the broker stores them (DescribeLogDirs): compressed batches of the changelog against the input's
        assert _positive(r["changelog_stored_bytes"]) and _positive(r["input_stored_bytes"]), (key, r)
        assert _positive(r["changelog_stored_per_input_stored_byte"]), (key, r)
    for key in ("g", "g-file", "h-alo", "h-eos", "f"):
        r = report["throughput"][key]
        assert "skipped" in r or _positive(r["alerts"]), (key, r)
    labelled = report["throughput"]["e+labels"]
    assert labelled["labels"] == labelled["records"] // 2 and labelled["labels_unmatched"] == 0, labelled
    ratios = report["ratios"]
    assert set(ratios) == {"d/a", "e/a", "d/c", "e/c", "f/e", "e/h-eos", "e0/h-eos", "d/h-alo", "e/g", "f/g-file"}
    assert all(_positive(v) for k, v in ratios.items() if quix or "h-" not in k), ratios
    # (f) and (g-file) again, alternating (one round at smoke size); the f/g-file target reads their median
    side = report["f_vs_g_file"]
    assert len(side["rounds"]) == 1 and side["rounds"][0]["first"] == "f", side
    r0 = side["rounds"][0]
    assert all(_positive(r0[k]) for k in ("f_records_per_s", "g_file_records_per_s")), r0
    # CPU net of start-up: None when the start-up's own spread hides it at smoke size, never negative
    assert all(r0[k] is None or _positive(r0[k]) for k in ("f_cpu_us_per_record", "g_file_cpu_us_per_record", "ratio_by_cpu")), r0
    assert side["median_ratio_by_rate"] == r0["ratio_by_rate"], side
    assert abs(r0["ratio_by_rate"] - r0["f_records_per_s"] / r0["g_file_records_per_s"]) < 0.01, side
    target = [t for name, t in report["targets"].items() if name.startswith("13: replay --input")]
    assert target == [{"value": side["median_ratio_by_rate"], "met": side["median_ratio_by_rate"] >= 1.0}], report["targets"]
    assert "f/g-file over 1 alternating rounds" in proc.stdout
    if quix:  # (a), (e), (e0) and (h-eos) again, alternating; the e/h-eos and e/a targets read their medians
        side = report["e_vs_h_eos"]
        assert len(side["rounds"]) == 1 and side["rounds"][0]["first"] == "e", side
        r0 = side["rounds"][0]
        assert all(_positive(r0[f"{k}_records_per_s"]) and _positive(r0[f"{k}_records_per_cpu_s"]) for k in ("a", "e", "e0", "h-eos")), r0
        assert side["median_e/a"] == r0["e/a"] and abs(r0["e/a"] - r0["e_records_per_s"] / r0["a_records_per_s"]) < 0.01, side
        target = [t for name, t in report["targets"].items() if name.startswith("13: run exactly-once >= 0.35x bare poll")]
        assert target == [{"value": side["median_e/a"], "met": side["median_e/a"] >= 0.35}], report["targets"]
        assert side["median_e/h-eos"] == r0["e/h-eos"] and abs(r0["e/h-eos"] - r0["e_records_per_s"] / r0["h-eos_records_per_s"]) < 0.01, side
        assert side["median_e0/h-eos"] == r0["e0/h-eos"], side
        # the (e) checkpoint-share target reads the rounds' median too (a single run's share moves with one slow commit)
        assert 0 < r0["e_checkpoint_share"] < 1 and side["median_e_checkpoint_share"] == r0["e_checkpoint_share"], side
        target = [t for name, t in report["targets"].items() if name.startswith("13: checkpoint cost <= 5% of the run, default interval")]
        assert target == [{"value": r0["e_checkpoint_share"], "met": r0["e_checkpoint_share"] <= 0.05}], report["targets"]
        target = [t for name, t in report["targets"].items() if name.startswith("13: run exactly-once >= 1.0x")]
        assert target == [{"value": side["median_e/h-eos"], "met": side["median_e/h-eos"] >= 1.0}], report["targets"]
    else:
        assert "e_vs_h_eos" not in report

    lat = report["latency"]
    assert lat["samples"] > 0 and _positive(lat["p50_ms"]) and _positive(lat["p99_ms"]), lat
    # the paced stream's producer: librdkafka when the bench extra is installed, else kafka-python (as in CI)
    expected = "confluent-kafka" if importlib.util.find_spec("confluent_kafka") else "kafka-python"
    assert lat["generator"] == expected and _positive(lat["generator_cpu_share_while_producing"]), lat
    # the run's topics (input, alerts, dead letters, the monitor's internal ones) are gone afterwards
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        deadline = time.monotonic() + 60  # deleted when the run ended; metadata may take a moment to say so
        while (left := [t for t in admin.list_topics() if t.startswith("bench-latency")]) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        admin.close()
    assert left == [], left
    table = render(report)
    assert f"| {expected} (" in table and "| load generator (its CPU) |" in table, table

    assert len(report["memory"]) >= 2
    for n, m in report["memory"].items():
        assert m["channels"] == int(n), m
        assert _positive(m["state_bytes_per_channel"]) and _positive(m["rss_after_state_bytes"]), m

    assert len(report["scaling"]) >= 2
    for s in report["scaling"].values():
        assert _positive(s["records_per_s"]) and _positive(s["channel_values_per_s"]), s

    assert set(report["targets"]) and all("met" in t for t in report["targets"].values())
    assert "records/s" in proc.stdout and "ratios:" in proc.stdout


@pytest.mark.parametrize("absent", ["quixstreams", "confluent_kafka"])
def test_quix_rows_are_skipped_with_a_note_when_quixstreams_is_absent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, absent: str) -> None:
    import importlib.util

    import bench.compare as compare
    from bench.run import summary

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == absent else real(name, *a))
    ran: list[str] = []

    def fake_peer(variant: str, *args: str, timeout_s: float = 0) -> dict[str, object]:
        ran.append(variant)
        return {"records": 10, "seconds": 1.0, "cpu_seconds": 1.0, "alerts": 1}

    monkeypatch.setattr(compare, "run_peer", fake_peer)
    rows = compare.run_peers("127.0.0.1:1", "t", 10, tmp_path / "w.jsonl", tmp_path, timeout_s=10)
    assert ran == ["loop", "file"]
    for key in ("h-alo", "h-eos"):
        # the note names the missing package (the first one looked for when both are absent, as in CI)
        named = [m for m in ("quixstreams", "confluent_kafka") if m == absent or real(m) is None]
        assert named[0] in rows[key]["skipped"] and "pip install" in rows[key]["skipped"], rows[key]
    for key, r in rows.items():
        r["label"] = key
        if "skipped" not in r:
            r["records_per_s"] = r["channel_values_per_s"] = 10.0
    text = summary({"smoke": True, "started_at": "now", "throughput": rows})
    assert "(h-eos)" in text and named[0] in text


def test_scaleout_bench_runs_every_instance_count_to_lag_zero(kafka_bootstrap: str, tmp_path: Path) -> None:
    out = tmp_path / "scaleout.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.scaleout", "--events", "2000", "--instances", "1,2", "--settle", "3",
         "--bootstrap", kafka_bootstrap, "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=380,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [(r["instances"], r["judging_groups"]) for r in report["runs"]] == [(1, 1), (2, 1), (2, 2)]  # 2 also with the model in 2 groups
    for r in report["runs"]:
        assert len(r["cpu_seconds"]) == r["instances"] and all(_positive(c) for c in r["cpu_seconds"]), r
        assert r["exit_codes"] == [0] * r["instances"], r
        assert _positive(r["records_per_s"]) and r["records"] == 2000, r
        assert r["dead_letters"] == {}, r
    assert _positive(report["bare_consumption"]["records_per_s"]) and _positive(report["startup_cpu_seconds"])
    assert "busiest share" in proc.stdout


def test_bench_only_runs_the_rows_asked_for(kafka_bootstrap: str, tmp_path: Path) -> None:
    out = tmp_path / "only.json"
    # (e0) alone: it needs the workload's topic like (e) (`--only e0` once ran against no topic at all)
    cmd = [sys.executable, "-m", "bench.run", "--smoke", "--only", "e0,e+labels", "--bootstrap", kafka_bootstrap, "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=380)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert set(report["throughput"]) == {"e0", "e+labels"}
    assert not {"latency", "memory", "scaling", "f_vs_g_file", "e_vs_h_eos"} & set(report)
    for r in report["throughput"].values():
        assert _positive(r["records_per_cpu_s"]) and _positive(r["checkpoint_share"]), r


def test_bench_only_refuses_an_unknown_row() -> None:
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--only", "e,x"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--only: unknown x" in proc.stderr
