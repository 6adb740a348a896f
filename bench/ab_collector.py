"""A/B of the collector's young-generation threshold under ``run``: ``python -m bench.ab_collector --bootstrap H:P``.

The throughput workload (``bench/workload.py``, 4 partitions, written once), read by ``MonitorApp``
exactly-once as row (e) of ``bench.run`` runs it (``run_app``), with ``tune_collector`` setting
each threshold in turn (ABBA order). Prints records/s, CPU per record (``time.process_time``, all
threads) and the collector's own CPU in the run (``gc.callbacks``, per generation: collections and
CPU of the thread that ran them), and the medians.
"""

from __future__ import annotations

import argparse
import collections
import gc
import statistics
import time
import uuid
from typing import Any

from bench.run import create_topic, produce_all, run_app
from bench.workload import throughput_events
from stream_monitor.ops import collector


class _Watch:
    """The collector's collections and their CPU per generation, while ``on``."""

    def __init__(self) -> None:
        self.on = False
        self.started = 0.0
        self.stats: dict[int, list[float]] = collections.defaultdict(lambda: [0, 0.0])

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if not self.on:
            return
        if phase == "start":
            self.started = time.thread_time()
        else:
            s = self.stats[info["generation"]]
            s[0] += 1
            s[1] += time.thread_time() - self.started


def one(bootstrap: str, topic: str, events: int, input_bytes: int, threshold: int) -> tuple[float, float, float, str]:
    """``run_app`` exactly-once with the collector tuned to ``threshold``: (records/s, CPU us per record, GC CPU share, note)."""
    watch = _Watch()
    tune, saved = collector.tune_collector, gc.get_threshold()

    def tuned(_: int = collector.DEFAULT_THRESHOLD) -> tuple[int, int, int]:
        got = tune(threshold)
        watch.on = True
        return got

    collector.tune_collector = tuned  # run_app imports it by this name when it is called
    gc.callbacks.append(watch)
    try:
        out = run_app(bootstrap, topic, 4, events, True, max(600.0, events / 100), input_bytes=input_bytes)
    finally:
        gc.callbacks.remove(watch)
        collector.tune_collector = tune
        gc.set_threshold(*saved)  # (the next run starts as this one did)
        gc.unfreeze()
    gc_cpu = sum(s[1] for s in watch.stats.values())
    by_gen = ", ".join(f"gen{g} {int(s[0])}x {s[1] * 1e3:.0f} ms" for g, s in sorted(watch.stats.items()))
    note = f"alerts {out['alerts']}, dead letters {out['dead_letters']}; collector: {by_gen or 'none'}"
    return events / out["seconds"], out["cpu_seconds"] / events * 1e6, gc_cpu / out["cpu_seconds"], note


def main(argv: list[str] | None = None) -> int:
    """Produce the workload once, then run with each threshold in turn; print each run and the medians."""
    ap = argparse.ArgumentParser(prog="python -m bench.ab_collector", description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--thresholds", default=f"{collector.DEFAULT_THRESHOLD},100000")
    args = ap.parse_args(argv)
    a, b = (int(x) for x in args.thresholds.split(","))
    topic = create_topic(args.bootstrap, f"ab-collector-{uuid.uuid4().hex[:8]}", 4)
    values = throughput_events(args.events)
    produce_all(args.bootstrap, topic, values, 4)
    input_bytes = sum(map(len, values))
    got: dict[int, list[tuple[float, float, float]]] = {a: [], b: []}
    for rnd in range(args.rounds):
        for t in ((a, b) if rnd % 2 == 0 else (b, a)):
            rate, cpu, share, note = one(args.bootstrap, topic, args.events, input_bytes, t)
            got[t].append((rate, cpu, share))
            print(f"round {rnd}: threshold {t:>7,}: {rate:,.0f} records/s, {cpu:.1f} us CPU per record, collector {share * 100:.1f} % of it; {note}", flush=True)
    for t, runs in got.items():
        print(f"threshold {t:>7,}: median {statistics.median(r[0] for r in runs):,.0f} records/s, "
              f"{statistics.median(r[1] for r in runs):.1f} us CPU per record, collector {statistics.median(r[2] for r in runs) * 100:.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
