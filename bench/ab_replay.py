"""A/B of ``stream-monitor replay --input`` against a git ref: ``python -m bench.ab_replay --ref main --input FILE.jsonl``.

Five helpers share a 2-core machine, so one wall time says little. This copies ``stream_monitor``
at ``--ref`` (``git archive``) into a temporary directory and runs the CLI of both (the ref's
with that directory first on ``PYTHONPATH``, the working tree's with the repository first) as
subprocesses, alternating which goes first, ``--reps`` times each over ``--input`` and over an
empty file (start-up: interpreter, imports, the numba cache). It reports, per variant, the median
and range of the user + system CPU of a replay of the file minus the median of the empty-file
replays, per record; the start-up CPU itself; the rate the CLI prints; and whether both wrote the
same alert bytes and the same summary (apart from its timing).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _extract(ref: str, into: Path) -> None:
    archive = into / "old.tar"
    subprocess.run(["git", "archive", "-o", str(archive), ref, "stream_monitor"], cwd=REPO_ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")


def _replay(pythonpath: Path, src: Path, alerts: Path) -> tuple[float, str]:
    """One CLI replay; (CPU seconds of the child, its stdout)."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "STREAM_MONITOR_STATE_SECRET": "ab-replay"}
    cmd = [sys.executable, "-m", "stream_monitor", "--log-level", "WARNING", "replay", "--input", str(src), "--alerts-out", str(alerts), "--progress", "none"]
    cpu0 = _cpu()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=pythonpath, timeout=3600, stdin=subprocess.DEVNULL)
    cpu = _cpu() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"replay ({pythonpath}) failed with {done.returncode}: {done.stderr[-2000:]}")
    return cpu, done.stdout


def _stable(summary: str) -> str:
    """The summary without its timing (records in N s, records/s) and output paths."""
    text = re.sub(r"in [\d.]+ s \([\d,]+ records/s\)", "", summary)
    return "\n".join(line for line in text.splitlines() if not line.strip().startswith("alerts:"))


def run(args: argparse.Namespace) -> dict[str, Any]:
    src = Path(args.input).resolve()
    records = sum(1 for line in open(src, "rb") if line.strip())
    with tempfile.TemporaryDirectory(prefix="ab-replay-") as tmp:
        tmpdir = Path(tmp)
        old_root = tmpdir / "old"
        old_root.mkdir()
        _extract(args.ref, old_root)
        empty = tmpdir / "empty.jsonl"
        empty.write_bytes(b"")
        variants = {"old": old_root, "new": REPO_ROOT}
        startup: dict[str, list[float]] = {k: [] for k in variants}
        full: dict[str, list[float]] = {k: [] for k in variants}
        rates: dict[str, list[float]] = {k: [] for k in variants}
        digests: dict[str, set[str]] = {k: set() for k in variants}
        summaries: dict[str, set[str]] = {k: set() for k in variants}
        for name, root in variants.items():  # warm-up: numba caches, page cache
            _replay(root, empty, tmpdir / f"{name}-alerts.jsonl")
        for rep in range(args.reps):
            order = list(variants) if rep % 2 == 0 else list(reversed(variants))
            for name in order:
                root = variants[name]
                alerts = tmpdir / f"{name}-alerts.jsonl"
                cpu, _ = _replay(root, empty, alerts)
                startup[name].append(cpu)
                cpu, out = _replay(root, src, alerts)
                full[name].append(cpu)
                m = re.search(r"\(([\d,]+) records/s\)", out)
                rates[name].append(float(m.group(1).replace(",", "")) if m else float("nan"))
                digests[name].add(hashlib.sha256(alerts.read_bytes()).hexdigest())
                summaries[name].add(_stable(out))
                print(f"rep {rep} {name}: {cpu:.2f} s CPU, start-up {startup[name][-1]:.2f} s, {rates[name][-1]:,.0f} records/s (CLI)", flush=True)
    result: dict[str, Any] = {"records": records, "ref": args.ref}
    per_record: dict[str, list[float]] = {}
    for name in variants:
        s = statistics.median(startup[name])
        per_record[name] = [(c - s) / records * 1e6 for c in full[name]]
        result[name] = {
            "us_per_record_median": statistics.median(per_record[name]),
            "us_per_record_range": (min(per_record[name]), max(per_record[name])),
            "startup_cpu_s_median": s,
            "startup_cpu_s_range": (min(startup[name]), max(startup[name])),
            "cli_rate_median": statistics.median(rates[name]),
        }
    saved = [o - n for o, n in zip(per_record["old"], per_record["new"])]
    result["saved_us_per_record_pairs"] = saved
    result["alerts_identical"] = len(digests["old"]) == 1 and digests["old"] == digests["new"]
    result["summaries_identical"] = len(summaries["old"]) == 1 and summaries["old"] == summaries["new"]
    return result


def _in_process_run(pkg: str, src: Path, spec_kw: dict[str, Any]) -> tuple[float, int, list[bytes]]:
    """One replay of ``src`` by package ``pkg`` as ``cmd_replay`` feeds it; (CPU seconds, records, alert payloads)."""
    import importlib
    import time

    engine_mod = importlib.import_module(f"{pkg}.replay.engine")
    sources = importlib.import_module(f"{pkg}.replay.sources")
    spec = importlib.import_module(f"{pkg}.core.spec").MonitorSpec(**spec_kw)
    engine = engine_mod.ReplayEngine(spec)
    source = sources.FileSource(src)
    t0 = time.process_time()
    if hasattr(source, "line_chunks"):
        for lines in source.line_chunks():
            engine.feed_lines(lines)
    else:
        for chunk in source.chunks():
            engine.feed(chunk)
    outcome = engine.finish()
    cpu = time.process_time() - t0
    alerts = list(engine.alert_payloads())
    engine.close()
    source.close()
    return cpu, outcome.records_read, alerts


def in_process(args: argparse.Namespace) -> None:
    """``--in-process``: the engine of both over the file in this process, alternating (no start-up; CPU from reading to judged)."""
    import gc
    import logging

    import structlog

    from bench.ab_against_ref import OLD, extract
    from stream_monitor.ops.collector import tune_collector

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    src = Path(args.input).resolve()
    with tempfile.TemporaryDirectory(prefix="ab-replay-") as tmp:
        extract(args.ref, Path(tmp))
        sys.path.insert(0, tmp)
        spec_kw = {"instance": "replay", "label_join_max_pending": 0}
        tune_collector()
        times: dict[str, list[float]] = {OLD: [], "stream_monitor": []}
        alerts: dict[str, set[bytes]] = {OLD: set(), "stream_monitor": set()}
        records = 0
        for rep in range(args.reps + 1):  # the first round warms up (numba caches, page cache) and is not counted
            for pkg in (OLD, "stream_monitor") if rep % 2 else ("stream_monitor", OLD):
                gc.collect()
                cpu, records, out = _in_process_run(pkg, src, spec_kw)
                alerts[pkg].add(b"".join(out))
                if rep:
                    times[pkg].append(cpu / records * 1e6)
                    print(f"round {rep} {'old' if pkg == OLD else 'new'}: {times[pkg][-1]:.2f} µs CPU per record", flush=True)
    old, new = times[OLD], times["stream_monitor"]
    saved = [o - n for o, n in zip(old, new)]
    print(f"old ({args.ref}): median {statistics.median(old):.2f} µs per record (range {min(old):.2f}-{max(old):.2f})")
    print(f"new (working tree): median {statistics.median(new):.2f} µs per record (range {min(new):.2f}-{max(new):.2f})")
    print(f"saved per pair: median {statistics.median(saved):.2f} µs per record (range {min(saved):.2f}-{max(saved):.2f}) over {records:,} records")
    print(f"alerts identical: {len(alerts[OLD]) == 1 and alerts[OLD] == alerts['stream_monitor']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default="main", help="git ref of the old code (default main)")
    ap.add_argument("--input", required=True, help="a JSONL file to replay")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--in-process", action="store_true", help="time the engines in this process instead of the CLI in subprocesses")
    args = ap.parse_args(argv)
    if args.in_process:
        in_process(args)
        return 0
    r = run(args)
    for name, label in (("old", f"old ({args.ref})"), ("new", "new (working tree)")):
        v = r[name]
        lo, hi = v["us_per_record_range"]
        print(
            f"{label}: CPU per record median {v['us_per_record_median']:.2f} µs (range {lo:.2f}-{hi:.2f}); "
            f"start-up CPU median {v['startup_cpu_s_median']:.2f} s (range {v['startup_cpu_s_range'][0]:.2f}-{v['startup_cpu_s_range'][1]:.2f}); "
            f"CLI rate median {v['cli_rate_median']:,.0f} records/s"
        )
    saved = r["saved_us_per_record_pairs"]
    print(f"saved per pair: median {statistics.median(saved):.2f} µs per record (range {min(saved):.2f}-{max(saved):.2f}) over {r['records']:,} records")
    print(f"summaries identical: {r['summaries_identical']}")
    print(f"alerts identical: {r['alerts_identical']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
