"""A/B of judging small batches in one process: ``python -m bench.ab_small [--base REV] [--events N] [--rounds K] [--batches 100,500,5000]``.

``PartitionMonitor.process`` of the base (``sm_base``, see :mod:`bench.ab_judge`) and of the working
tree over the same events (``bench.workload.throughput_events``) in batches of B records, after
a warm-up of 5,000 records in batches of 5,000 (the references are built), alternating which side goes first; CPU µs per
judged record (``time.process_time``), median and spread per batch size. At B = 100 a channel
reaches an evaluation step (250 observations) every 2.5 calls, at 500 two per call, at 5000
twenty: the live latency row's polls are of the first two kinds. The alerts of both sides are
compared (payload bytes); a difference is reported and fails. The collector is tuned as ``stream-monitor run``
tunes it, and a collection runs before each timed run.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.ab_judge import PKGS, prepare, saved_line, spec_of

WARM = 5_000


def judge(pkg: str, values: list[bytes], batch: int) -> Any:
    """A run of side ``pkg``: a fresh monitor warmed up on the first records (not timed), then a function judging the rest in batches."""
    monitor = importlib.import_module(f"{pkg}.core.monitor")
    intake = importlib.import_module(f"{pkg}.core.intake")
    events = importlib.import_module(f"{pkg}.core.events")
    spec, _ = spec_of(pkg)
    records = [intake.InputRecord(v, events.SourcePosition("in", 0, i, 1_700_000_000_000 + i)) for i, v in enumerate(values)]
    state: dict[str, Any] = {}

    def setup() -> None:
        state["task"] = task = monitor.PartitionMonitor(spec, 0)
        state["warm"] = [a.payload for a in task.process(records[:WARM]).alerts]

    def run() -> list[bytes]:
        task, alerts = state.pop("task"), state.pop("warm")
        for i in range(WARM, len(records), batch):
            alerts += [a.payload for a in task.process(records[i : i + batch]).alerts]
        return alerts

    return setup, run


def main(argv: list[str] | None = None) -> int:
    """Run the A/B per batch size; print one line each (medians and spread)."""
    ap = argparse.ArgumentParser(prog="python -m bench.ab_small", description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="main")
    ap.add_argument("--events", type=int, default=40_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batches", default="100,500,5000")
    args = ap.parse_args(argv)
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        prepare(args.base, Path(tmp))
        from bench.workload import throughput_events

        values = throughput_events(args.events)
        from stream_monitor.ops.collector import tune_collector

        tune_collector()  # as `stream-monitor run` and `replay` do before processing
        n = len(values) - WARM
        for batch in [int(b) for b in args.batches.split(",")]:
            sides = {pkg: judge(pkg, values, batch) for pkg in PKGS}
            times: dict[str, list[float]] = {pkg: [] for pkg in PKGS}
            outs: dict[str, list[bytes]] = {}
            for k in range(args.rounds + 1):  # as bench.ab_judge.alternate, the warm-up records off the clock
                for pkg in PKGS if k % 2 == 0 else PKGS[::-1]:
                    setup, run = sides[pkg]
                    setup()
                    gc.collect()  # no collection of the other side's garbage on this side's clock
                    started = time.process_time()
                    outs[pkg] = run()
                    if k:  # the first round warms up
                        times[pkg].append((time.process_time() - started) / n * 1e6)
            same = outs["sm_base"] == outs["stream_monitor"]
            ok &= same
            print(saved_line(f"batch {batch}", args.base, times, "record") + f"; alerts {len(outs['stream_monitor'])}, {'identical' if same else 'DIFFERENT'}")
            sys.stdout.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
