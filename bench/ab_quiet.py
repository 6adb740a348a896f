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

from bench.ab_arms import alternate, switched
from stream_monitor.runtime.idle import QuietWatch


def _no_ends(self: QuietWatch, *args: object, **kwargs: object) -> None:
    """``observe_ends`` switched off: a partition's quiet counts from its first fetch read, as before `5568214`."""


def main(argv: list[str] | None = None) -> int:
    """Produce the workload once, then run with and without the ends in turn; print each run, the medians and the paired ratios."""
    ap = argparse.ArgumentParser(prog="python -m bench.ab_quiet", description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--here", action="store_true", help="A/B of QuietWatch.here instead (a marker's quiet as of now where its partition is read too)")
    args = ap.parse_args(argv)
    if args.here:
        arms = {"here yes": lambda: switched(QuietWatch, "local", True), "here no ": lambda: switched(QuietWatch, "local", False)}
    else:
        arms = {"ends asked yes": lambda: switched(QuietWatch, "observe_ends", QuietWatch.observe_ends),
                "ends asked no ": lambda: switched(QuietWatch, "observe_ends", _no_ends)}
    alternate(args.bootstrap, "ab-quiet", args.events, args.rounds, arms, "yes/no")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
