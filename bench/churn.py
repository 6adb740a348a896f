"""Feature-name churn: per-record cost must not grow with the number of names a model has ever sent.

Runs :class:`PartitionMonitor` (no broker) over N records of the normal throughput workload, then
over the same N records with one new feature name added to every record, and prints records/s of
both, their ratio, the peak RSS of each run (each in a fresh child process) and how much the RSS
grew while the monitor ran (the records are built before). The target: the churn run within 2x of
the normal one, and a flat RSS (the growth does not depend on N). Per-record cost is bounded by
``limits.channels_per_model``: every channel a model has is fed on every record (an absent
feature is a missing value), so the ratio depends on that cap; try ``--channels-per-model``.

    python -m bench.churn                 # N = 100,000
    python -m bench.churn --records 20000 --batch 500
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import resource
import subprocess
import sys
import time

import orjson
import structlog

from bench.memory import rss_bytes
from bench.workload import kept, throughput_events


def _records(n: int, churn: bool) -> list[bytes]:
    """The workload's events, each with one extra, never repeated feature name when ``churn``."""
    raws = throughput_events(n)
    if not churn:
        return raws
    out = []
    for i, raw in enumerate(raws):
        event = orjson.loads(raw)
        event["features"][f"churn_{i}"] = float(i % 13)
        out.append(kept(orjson.dumps(event)))
    return out


def run_one(n: int, churn: bool, batch: int, cap: int | None = None) -> dict[str, float]:
    """Process the workload in batches; return records/s, peak RSS and the monitor's final size."""
    from stream_monitor.core.events import SourcePosition
    from stream_monitor.core.monitor import InputRecord, PartitionMonitor
    from stream_monitor.core.spec import MonitorSpec

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    records = [InputRecord(raw, SourcePosition("churn", 0, i, None)) for i, raw in enumerate(_records(n, churn))]
    gc.collect()
    rss_before = rss_bytes()
    spec = MonitorSpec() if cap is None else MonitorSpec.model_validate({"limits": {"channels_per_model": cap}})
    monitor = PartitionMonitor(spec, 0)
    limited = 0
    start = time.perf_counter()
    for i in range(0, len(records), batch):
        result = monitor.process(records[i : i + batch])
        limited += sum(result.limits_exceeded.values())
    seconds = time.perf_counter() - start
    channels = sum(len(m.channels) for m in monitor.models.values())
    gc.collect()
    return {
        "records_per_s": n / seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "growth_mib": (rss_bytes() - rss_before) / 2**20,
        "channels": channels,
        "limit_hits": limited,
    }


def main(argv: list[str] | None = None) -> int:
    """Run both workloads in child processes and print the comparison."""
    parser = argparse.ArgumentParser(prog="python -m bench.churn", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--channels-per-model", type=int, help="limits.channels_per_model (default: the spec's)")
    parser.add_argument("--child", choices=["normal", "churn"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(args.records, args.child == "churn", args.batch, args.channels_per_model)))
        return 0
    rows = {}
    for kind in ("normal", "churn"):
        cmd = [sys.executable, "-m", "bench.churn", "--child", kind, "--records", str(args.records), "--batch", str(args.batch)]
        if args.channels_per_model is not None:
            cmd += ["--channels-per-model", str(args.channels_per_model)]
        rows[kind] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    for kind, r in rows.items():
        print(
            f"{kind:>6}: {r['records_per_s']:>10,.0f} records/s  peak RSS {r['peak_rss_mib']:>5,.0f} MiB "
            f"(monitor: +{r['growth_mib']:,.0f} MiB)  channels {r['channels']:>5,}  limit hits {r['limit_hits']:>8,}"
        )
    ratio = rows["normal"]["records_per_s"] / rows["churn"]["records_per_s"]
    print(f" ratio: churn is {ratio:.2f}x slower than normal (target: within 2x); N = {args.records:,}, batch = {args.batch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
