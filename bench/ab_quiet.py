"""A/B of when a backlog counts as quiet under ``run``: ``python -m bench.ab_quiet --bootstrap H:P``.

The throughput workload (``bench/workload.py``, 4 partitions, written once), read by ``MonitorApp``
exactly-once with the default config as row (e) of ``bench.run`` runs it (``run_app``), with
``QuietWatch.observe_ends`` (the end offsets asked at assignment) on, then off (a partition's quiet
counts from the first fetch of it that is read, as before `5568214`), in alternating order
(``bench/ab_arms.py``); with ``--here``, ``QuietWatch.here`` on (a caught-up marker's quiet read as of now from
the judge's own watch, where it reads that partition too), then off (the marker's quiet only). Prints records/s, records per CPU-second and CPU per wall second of each run,
the medians and the paired ratios: the change takes idle time out of the end of the run, not CPU out of it.
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from typing import Iterator

from bench.ab_arms import alternate
from stream_monitor.runtime.idle import QuietWatch


@contextmanager
def _here(on: bool) -> Iterator[None]:
    kept = QuietWatch.local
    QuietWatch.local = on
    try:
        yield
    finally:
        QuietWatch.local = kept


@contextmanager
def _ends(asked: bool) -> Iterator[None]:
    kept = QuietWatch.observe_ends
    if not asked:
        QuietWatch.observe_ends = lambda self, *a, **k: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        QuietWatch.observe_ends = kept  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    """Produce the workload once, then run with and without the ends in turn; print each run, the medians and the paired ratios."""
    ap = argparse.ArgumentParser(prog="python -m bench.ab_quiet", description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--here", action="store_true", help="A/B of QuietWatch.here instead (a marker's quiet as of now where its partition is read too)")
    args = ap.parse_args(argv)
    switch = _here if args.here else _ends
    name = "here" if args.here else "ends asked"
    arms = {f"{name} yes": lambda: switch(True), f"{name} no ": lambda: switch(False)}
    alternate(args.bootstrap, "ab-quiet", args.events, args.rounds, arms, "yes/no")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
