"""A/B of the checkpoint share of ``run`` against a git ref, in one process: ``python -m bench.ab_checkpoint --bootstrap H:P --ref 4816b4e``.

Five helpers share a 2-core machine, so separate runs compare noise. This produces the throughput
workload (``bench/workload.py``) once to a fresh topic, loads ``stream_monitor`` at ``--ref`` and
at ``--new`` (default: the working tree) under other names (:func:`bench.ab_against_ref.extract`),
and runs ``MonitorApp`` exactly-once of each over it alternately (``bench.run.run_app``, each with
its own group), ``--pairs`` times, printing per run the wall time, the checkpoint share (the loop's
``CommitResult.waited`` over the run), CPU per record, and the time spent waiting for the broker
in ``finish_commit`` (all of it, the stop's commits included) with how many ends waited > 1 ms.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import bench.run as br
from bench.ab_against_ref import extract
from bench.workload import throughput_events


def _runner(pkg: str) -> tuple[Callable[..., dict[str, Any]], dict[str, float]]:
    """``run_app`` bound to package ``pkg``, and the counters of its ``finish_commit`` waits."""
    src = inspect.getsource(br.run_app) + "\n" + inspect.getsource(br.app_config)
    ns = dict(vars(br))
    exec(compile(src.replace("stream_monitor.", pkg + "."), f"<run_app {pkg}>", "exec"), ns)  # noqa: S102 - our own source
    kc = importlib.import_module(pkg + ".runtime.kafka_compat")
    waits = {"end_wait_s": 0.0, "ends_waited": 0}
    finish = kc.finish_commit

    def timed(*a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return finish(*a, **kw)
        finally:
            d = time.perf_counter() - t
            waits["end_wait_s"] += d
            waits["ends_waited"] += d > 0.001

    kc.finish_commit = timed  # checkpoint.py calls it through the module
    return ns["run_app"], waits


def main(argv: list[str] | None = None) -> int:
    """Run the pairs; print each run and the medians."""
    ap = argparse.ArgumentParser(prog="python -m bench.ab_checkpoint", description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--ref", required=True, help="the 'old' side: a git ref")
    ap.add_argument("--new", default=None, help="the 'new' side: a git ref (default: the working tree)")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--pairs", type=int, default=3)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp())
    extract(args.ref, tmp, "stream_monitor_old")
    if args.new:
        extract(args.new, tmp, "stream_monitor_new")
    sys.path.insert(0, str(tmp))
    sides = {"old": "stream_monitor_old", "new": "stream_monitor_new" if args.new else "stream_monitor"}
    for pkg in sides.values():
        importlib.import_module(pkg + ".ops.logs").configure_logging(level="WARNING", fmt="json")
    runners = {name: _runner(pkg) for name, pkg in sides.items()}
    topic = br.create_topic(args.bootstrap, f"ab-checkpoint-{uuid.uuid4().hex[:8]}", 4)
    values = throughput_events(args.events)
    br.produce_all(args.bootstrap, topic, values, 4)
    rows: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for i in range(args.pairs):
        for name in ("old", "new") if i % 2 == 0 else ("new", "old"):
            run, waits = runners[name]
            waits.update(end_wait_s=0.0, ends_waited=0)
            r = run(args.bootstrap, topic, 4, args.events, True, 600.0, input_bytes=sum(map(len, values)))
            row = {"seconds": r["seconds"], "share_pct": 100 * r["checkpoint_share"], "checkpoints": r["checkpoints"],
                   "cpu_us_per_record": 1e6 * r["cpu_seconds"] / args.events, **waits}
            rows[name].append(row)
            print(name, {k: round(v, 3) for k, v in row.items()}, flush=True)
    for name, rs in rows.items():
        share = [r["share_pct"] for r in rs]
        cpu = [r["cpu_us_per_record"] for r in rs]
        print(f"{name}: checkpoint share median {statistics.median(share):.2f} % ({min(share):.2f}-{max(share):.2f}); "
              f"CPU median {statistics.median(cpu):.1f} us/record ({min(cpu):.1f}-{max(cpu):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
