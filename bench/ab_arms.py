"""Two arms of one change under ``run``, in alternating rounds on one topic: what ``bench.ab_quiet`` and ``bench.ab_scan`` share.

The throughput workload (``bench/workload.py``, 4 partitions) is produced once; each round runs ``MonitorApp``
exactly-once with the default config, as row (e) of ``bench.run`` runs it (``run_app``), once per arm, the
first arm first in even rounds and last in odd ones. Prints each run's records/s, records per CPU-second, CPU
per wall second and alerts, then each arm's medians and the paired ratio (first arm / second arm).
"""

from __future__ import annotations

import statistics
import uuid
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Callable, Iterator

from bench.run import create_topic, produce_all, run_app
from bench.workload import throughput_events
from stream_monitor.ops.logs import configure_logging


@contextmanager
def switched(owner: Any, name: str, value: Any) -> Iterator[None]:
    """``owner.name`` set to ``value`` around a run (an arm's switch), then put back."""
    kept = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, kept)


def alternate(bootstrap: str, name: str, events: int, rounds: int, arms: dict[str, Callable[[], AbstractContextManager[object]]], ratio: str) -> None:
    """Run the two ``arms`` (label: a context manager setting the arm up around a run) in alternating rounds; print the runs,
    the medians and the paired ratio (named ``ratio``)."""
    configure_logging(level="WARNING", fmt="json")  # the runs' own info lines would bury the figures
    topic = create_topic(bootstrap, f"{name}-{uuid.uuid4().hex[:8]}", 4)
    values = throughput_events(events)
    produce_all(bootstrap, topic, values, 4)
    input_bytes = sum(map(len, values))
    labels = list(arms)
    got: dict[str, list[tuple[float, float, int]]] = {label: [] for label in labels}
    for rnd in range(rounds):
        for label in labels if rnd % 2 == 0 else labels[::-1]:
            with arms[label]():
                out = run_app(bootstrap, topic, 4, events, True, max(600.0, events / 100), input_bytes=input_bytes)
            rate, per_cpu, alerts = events / out["seconds"], events / out["cpu_seconds"], out["alerts"]
            got[label].append((rate, per_cpu, alerts))
            print(f"round {rnd}: {label}: {rate:,.0f} records/s, {per_cpu:,.0f} per CPU-second, "
                  f"CPU {rate / per_cpu * 100:.0f} % of the wall time, {out['dead_letters']} dead letters {dict(out['invalid_by_reason'])}, "
                  f"{alerts} alerts", flush=True)
    for label, runs in got.items():
        print(f"{label}: median {statistics.median(r[0] for r in runs):,.0f} records/s, {statistics.median(r[1] for r in runs):,.0f} per CPU-second")
    first, second = (got[label] for label in labels)
    ratios = [a[0] / b[0] for a, b in zip(first, second, strict=True)]
    print(f"paired ratio ({ratio}): median {statistics.median(ratios):.3f}, ahead in {sum(r > 1 for r in ratios)} of {len(ratios)}")
    per_cpu = [a[1] / b[1] for a, b in zip(first, second, strict=True)]
    print(f"paired ratio of records per CPU-second ({ratio}): median {statistics.median(per_cpu):.3f}")
