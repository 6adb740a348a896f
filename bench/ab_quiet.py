"""A/B of when a backlog counts as quiet under ``run``: ``python -m bench.ab_quiet --bootstrap H:P``.

The throughput workload (``bench/workload.py``, 4 partitions, written once), read by ``MonitorApp``
exactly-once with the default config as row (e) of ``bench.run`` runs it (``run_app``), with
``QuietWatch.observe_ends`` (the end offsets asked at assignment) on, then off (a partition's quiet
counts from the first fetch of it that is read, as before `5568214`), in alternating order. Prints
records/s, records per CPU-second and CPU per wall second of each run, the medians and the paired
ratios: the change takes idle time out of the end of the run, not CPU out of it.
"""

from __future__ import annotations

import argparse
import statistics
import uuid

from bench.run import create_topic, produce_all, run_app
from bench.workload import throughput_events
from stream_monitor.ops.logs import configure_logging
from stream_monitor.runtime.idle import QuietWatch


def one(bootstrap: str, topic: str, events: int, input_bytes: int, ends: bool) -> tuple[float, float, int]:
    """``run_app`` exactly-once with ``observe_ends`` on or off: (records/s, records per CPU-second, alerts)."""
    kept = QuietWatch.observe_ends
    if not ends:
        QuietWatch.observe_ends = lambda self, *a, **k: None  # type: ignore[method-assign]
    try:
        out = run_app(bootstrap, topic, 4, events, True, max(600.0, events / 100), input_bytes=input_bytes)
    finally:
        QuietWatch.observe_ends = kept  # type: ignore[method-assign]
    return events / out["seconds"], events / out["cpu_seconds"], out["alerts"]


def main(argv: list[str] | None = None) -> int:
    """Produce the workload once, then run with and without the ends in turn; print each run, the medians and the paired ratios."""
    ap = argparse.ArgumentParser(prog="python -m bench.ab_quiet", description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args(argv)
    configure_logging(level="WARNING", fmt="json")  # the runs' own info lines would bury the figures
    topic = create_topic(args.bootstrap, f"ab-quiet-{uuid.uuid4().hex[:8]}", 4)
    values = throughput_events(args.events)
    produce_all(args.bootstrap, topic, values, 4)
    input_bytes = sum(map(len, values))
    got: dict[bool, list[tuple[float, float, int]]] = {True: [], False: []}
    for rnd in range(args.rounds):
        for ends in ((True, False) if rnd % 2 == 0 else (False, True)):
            rate, per_cpu, alerts = one(args.bootstrap, topic, args.events, input_bytes, ends)
            got[ends].append((rate, per_cpu, alerts))
            print(f"round {rnd}: ends asked {'yes' if ends else 'no '}: {rate:,.0f} records/s, {per_cpu:,.0f} per CPU-second, "
                  f"CPU {rate / per_cpu * 100:.0f} % of the wall time, {alerts} alerts", flush=True)
    for ends, runs in got.items():
        print(f"ends asked {'yes' if ends else 'no '}: median {statistics.median(r[0] for r in runs):,.0f} records/s, "
              f"{statistics.median(r[1] for r in runs):,.0f} per CPU-second")
    ratios = [a[0] / b[0] for a, b in zip(got[True], got[False], strict=True)]
    print(f"paired ratio (yes/no): median {statistics.median(ratios):.3f}, ahead in {sum(r > 1 for r in ratios)} of {len(ratios)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
