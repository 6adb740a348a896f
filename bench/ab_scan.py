"""A/B of reading by shape under ``run``: ``python -m bench.ab_scan --bootstrap H:P``.

Row (e) of ``bench.run`` (``MonitorApp`` exactly-once, default config, the throughput workload on 4 partitions) with
``Forwarder.scan_shapes`` on (records of a shape seen before read in one compiled pass, ``core/scan.py``), then off
(every record read one by one, as before), in alternating rounds (``bench/ab_arms.py``). Both sides must find the
same alerts: reading by shape gives the same rows and bytes.
"""

from __future__ import annotations

import argparse

from bench.ab_arms import alternate, switched
from stream_monitor.runtime.forward import Forwarder


def main(argv: list[str] | None = None) -> int:
    """Produce the workload once, then run with and without reading by shape in turn; print each run, the medians and the paired ratios."""
    ap = argparse.ArgumentParser(prog="python -m bench.ab_scan", description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args(argv)
    arms = {"by shape yes": lambda: switched(Forwarder, "scan_shapes", True), "by shape no ": lambda: switched(Forwarder, "scan_shapes", False)}
    alternate(args.bootstrap, "ab-scan", args.events, args.rounds, arms, "yes/no")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
