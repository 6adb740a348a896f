"""A/B of the core against a git ref, in one process: ``python -m bench.ab_against_ref --ref main``.

Five helpers share a 2-core machine, so wall times from separate runs are noise. This copies
``stream_monitor`` at ``--ref`` (``git archive``) into a temporary directory as the package
``stream_monitor_old``, imports it next to the working tree's ``stream_monitor``, and runs
:meth:`PartitionMonitor.process` of both over the same throughput workload (``bench/workload.py``,
batches of 5,000) alternately, ``--reps`` times each, reporting CPU time (``time.process_time``)
per record, the saving per pair, and whether both produced the same alert bytes. ``--evaluations``
also times ``ChannelMonitor._evaluate_detectors`` (the window evaluations) inside each run.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib
import logging
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
OLD = "stream_monitor_old"


def extract(ref: str, into: Path, name: str = OLD) -> None:
    """``stream_monitor`` at ``ref`` as the package ``name`` (``stream_monitor_old``) under ``into``."""
    archive = into / "old.tar"
    subprocess.run(["git", "archive", "-o", str(archive), ref, "stream_monitor"], cwd=REPO_ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    (into / "stream_monitor").rename(into / name)
    pattern = re.compile(r"\bstream_monitor(?=[.\s])")
    for path in (into / name).rglob("*.py"):
        text = path.read_text()
        path.write_text(pattern.sub(name, text))


def run(args: argparse.Namespace) -> dict[str, Any]:
    import structlog

    from bench.workload import throughput_events

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    events = throughput_events(args.records)
    variants: dict[str, tuple[Any, Any, list[Any]]] = {}
    evaluation_time: dict[str, list[float]] = {}
    for name, pkg in (("old", OLD), ("new", "stream_monitor")):
        monitor = importlib.import_module(f"{pkg}.core.monitor")
        spec = importlib.import_module(f"{pkg}.core.spec")
        position = importlib.import_module(f"{pkg}.core.events").SourcePosition
        records = [monitor.InputRecord(raw, position("ab", 0, i, None)) for i, raw in enumerate(events)]
        variants[name] = (monitor, spec, records)
        acc = evaluation_time[name] = [0.0]
        if args.evaluations:
            channel = importlib.import_module(f"{pkg}.core.channel").ChannelMonitor
            channel._evaluate_detectors = _timed(channel._evaluate_detectors, acc)
    times: dict[str, list[float]] = {"old": [], "new": []}
    evals: dict[str, list[float]] = {"old": [], "new": []}
    digests: dict[str, set[str]] = {"old": set(), "new": set()}
    for rep in range(args.reps):
        for name in ("old", "new") if rep % 2 == 0 else ("new", "old"):
            monitor, spec, records = variants[name]
            mon = monitor.PartitionMonitor(spec.MonitorSpec(), 0)
            digest = hashlib.sha256()
            evaluation_time[name][0] = 0.0
            gc.collect()
            start = time.process_time()
            for i in range(0, len(records), args.batch):
                for alert in mon.process(records[i : i + args.batch]).alerts:
                    digest.update(alert.payload)
            times[name].append((time.process_time() - start) / len(records) * 1e6)
            evals[name].append(evaluation_time[name][0] / len(records) * 1e6)
            digests[name].add(digest.hexdigest())
    return {"times": times, "evaluations": evals if args.evaluations else None, "same_alerts": digests["old"] == digests["new"] and len(digests["old"]) == 1}


def _timed(method: Any, acc: list[float]) -> Any:
    clock = time.process_time

    def timed(self: Any, *a: Any) -> None:
        start = clock()
        method(self, *a)
        acc[0] += clock() - start

    return timed


def _line(label: str, values: list[float]) -> str:
    return f"{label}: " + " ".join(f"{v:.1f}" for v in values) + f"  median {statistics.median(values):.1f} us/record"


def main(argv: list[str] | None = None) -> int:
    """Print old/new CPU per record, the saving per pair and whether the alerts are identical."""
    ap = argparse.ArgumentParser(prog="python -m bench.ab_against_ref", description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default="main", help="git ref of the old code (default: main)")
    ap.add_argument("--records", type=int, default=55_000)
    ap.add_argument("--reps", type=int, default=6, help="runs of each, alternating (default: 6)")
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--evaluations", action="store_true", help="also time ChannelMonitor._evaluate_detectors")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        extract(args.ref, Path(tmp))
        sys.path.insert(0, tmp)
        r = run(args)
    t = r["times"]
    print(f"CPU per record, {args.records:,} records of the throughput workload, batches of {args.batch:,}, {args.ref} vs working tree")
    print(_line(f"old ({args.ref})", t["old"]))
    print(_line("new (working tree)", t["new"]))
    if r["evaluations"]:
        print(_line("  old _evaluate_detectors", r["evaluations"]["old"]))
        print(_line("  new _evaluate_detectors", r["evaluations"]["new"]))
    print(_line("saved per pair", [a - b for a, b in zip(t["old"], t["new"], strict=True)]))
    print(f"alerts identical: {r['same_alerts']}")
    return 0 if r["same_alerts"] else 1


if __name__ == "__main__":
    sys.exit(main())
