"""Bytes and CPU of the state a checkpoint writes, old (a git ref) against new, in one process: ``python -m bench.ab_state_bytes --ref main``.

Adapted from the lead's ``/work/briefs/statesize.py``. The latency workload (``bench.run.latency_stream``:
4 models x 26 channels) goes through :meth:`PartitionMonitor.process` of the code at ``--ref``
(``bench.ab_against_ref.extract``) and of the working tree, in the same batches (``--batch`` records,
one checkpoint per batch, as ``run`` at ~1.5k records/s and ~6 checkpoints/s); after ``--warm``
records (references and windows full) each batch's ``state_items()`` is measured: bytes of the items
written (tombstones count 0), their count, and the CPU time (``time.process_time``) of the call.
Sides alternate ``--reps`` times; both must produce the same alert bytes. ``--workload throughput``
takes the throughput workload (``bench/workload.py``) instead, e.g. with ``--batch 5000``: every
window chunk of a channel changes between two checkpoints. ``--labels N``: every N-th event has a label
(``bench.compare.label_events``, as the (e+labels) row), read once its event was checkpointed: after a
batch's events, the labels of the events before the previous checkpoint (their bytes count as input).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.ab_against_ref import OLD, extract


def measure(pkg: str, values: list[bytes], batch: int, warm: int, labels: list[tuple[int, bytes]] = ()) -> dict[str, Any]:
    """One run of package ``pkg`` over ``values``: per-checkpoint bytes, items and CPU after ``warm`` records."""
    monitor = importlib.import_module(f"{pkg}.core.monitor")
    spec = importlib.import_module(f"{pkg}.core.spec").MonitorSpec(max_lateness_seconds=0.5)
    position = importlib.import_module(f"{pkg}.core.events").SourcePosition
    records = [monitor.InputRecord(v, position("in", 0, i, None)) for i, v in enumerate(values)]
    label_records = [(i, monitor.InputRecord(v, position("labels", 0, k, None)), len(v)) for k, (i, v) in enumerate(labels)]
    fed = committed = 0
    mon = monitor.PartitionMonitor(spec, partition=0)
    digest = hashlib.sha256()
    written, counts, cpu, inputs = [], [], [], []
    gc.collect()
    for i in range(0, len(records), batch):
        for alert in mon.process(records[i : i + batch]).alerts:
            digest.update(alert.payload)
        ready = fed
        while ready < len(label_records) and label_records[ready][0] < committed:
            ready += 1
        if ready > fed:
            for alert in mon.process_labels([r for _, r, _ in label_records[fed:ready]]).alerts:
                digest.update(alert.payload)
        label_bytes = sum(n for _, _, n in label_records[fed:ready])
        fed, committed = ready, i + batch
        t = time.process_time()
        items = mon.state_items()
        dt = time.process_time() - t
        if i >= warm:
            written.append(sum(len(v or b"") for v in items.values()))
            counts.append(len(items))
            cpu.append(dt)
            inputs.append(sum(len(v) for v in values[i : i + batch]) + label_bytes)
    return {"bytes": written, "items": counts, "cpu": cpu, "input": inputs, "alerts": digest.hexdigest()}


def main(argv: list[str] | None = None) -> int:
    """Run the sides alternately; print per run and the medians."""
    ap = argparse.ArgumentParser(prog="python -m bench.ab_state_bytes", description=__doc__.split("\n")[0])
    ap.add_argument("--ref", required=True, help="the 'old' side: a git ref")
    ap.add_argument("--rate", type=float, default=1500.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--batch", type=int, default=250, help="records per checkpoint")
    ap.add_argument("--warm", type=int, default=12_000, help="records before measuring")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--workload", choices=("latency", "throughput"), default="latency")
    ap.add_argument("--records", type=int, default=200_000, help="throughput workload: records")
    ap.add_argument("--labels", type=int, default=0, help="every N-th event labelled, read after its event's checkpoint (0: none)")
    args = ap.parse_args(argv)
    import structlog

    from bench.run import latency_stream

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    if args.workload == "throughput":
        from bench.workload import throughput_events

        values = throughput_events(args.records)
    else:
        values, _, _ = latency_stream(args.rate, args.seconds, 4, start_ms=1_767_225_600_000)
    labels: list[tuple[int, bytes]] = []
    if args.labels:
        from bench.compare import label_events

        labels = label_events(values, args.labels)
    with tempfile.TemporaryDirectory() as tmp:
        extract(args.ref, Path(tmp))
        sys.path.insert(0, tmp)
        runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
        for rep in range(args.reps):
            for side in ("old", "new") if rep % 2 == 0 else ("new", "old"):
                r = measure(OLD if side == "old" else "stream_monitor", values, args.batch, args.warm, labels)
                runs[side].append(r)
                n = len(r["bytes"])
                print(
                    f"{side} rep {rep}: {n} checkpoints, bytes/checkpoint mean {statistics.mean(r['bytes']):,.0f} "
                    f"median {statistics.median(r['bytes']):,.0f} max {max(r['bytes']):,}, items/checkpoint {statistics.mean(r['items']):.1f}, "
                    f"state/input bytes {sum(r['bytes']) / sum(r['input']):.2f}, state_items CPU {statistics.mean(r['cpu']) * 1e3:.2f} ms/checkpoint "
                    f"= {sum(r['cpu']) / (n * args.batch) * 1e6:.1f} us/record",
                    flush=True,
                )
    same = {r["alerts"] for rs in runs.values() for r in rs}
    print(f"alert bytes identical across all runs: {len(same) == 1}")
    for side, rs in runs.items():
        per_rec = [sum(r["cpu"]) / (len(r["cpu"]) * args.batch) * 1e6 for r in rs]
        print(
            f"{side}: bytes/checkpoint {statistics.mean(rs[0]['bytes']):,.0f}, state/input {sum(rs[0]['bytes']) / sum(rs[0]['input']):.2f}, "
            f"state_items us/record median {statistics.median(per_rec):.1f} (runs {', '.join(f'{x:.1f}' for x in per_rec)})"
        )
    return 0 if len(same) == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
