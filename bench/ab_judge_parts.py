"""A/B of the judging side's own steps, in one process: ``python -m bench.ab_judge_parts [--base REV]``.

Beside :mod:`bench.ab_judge` (whole stage 2 and the core, where the channels' work and a busy
machine make the spread larger than these steps' gains), each step alone, on the rows records of
``bench.workload.throughput_events`` (4 input partitions, 1250 records each per poll), base vs
working tree, alternating, CPU time per row:

* decode: ``decode_record`` of every rows record, each row given its carrier;
* order: the event-time order and carrier counts of ``take``/``release`` (``EventTimeMerger.add`` /
  ``release``, ``Carriers.queue`` / ``release``), 20 s lateness, per poll then a final release;
* gather: ``PartitionMonitor._gather`` of each poll's rows as ``_judge_inference`` hands them over
  (the base builds a ``DecodedEvent`` per row first; the working tree hands the rows themselves).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from bench.ab_judge import alternate, prepare, rows_records, saved_line, spec_of


def decode(pkg: str, polls: list[list[bytes]]) -> Callable[[], int]:
    """Decode every poll's rows records, giving each row its carrier (as ``_judge_records`` does)."""
    exchange = importlib.import_module(f"{pkg}.core.exchange")
    takes_carrier = "carrier" in exchange.decode_record.__code__.co_varnames[: exchange.decode_record.__code__.co_argcount]

    def run() -> int:
        n = 0
        for i, poll in enumerate(polls):
            for j, blob in enumerate(poll):
                carrier = ("rp", 0, i * 1000 + j)
                if takes_carrier:
                    rows = exchange.decode_record(blob, carrier)[1]
                else:
                    rows = exchange.decode_record(blob)[1]
                    for row in rows:
                        row.carrier = carrier
                n += len(rows)
        return n

    return run


def order(pkg: str, rows_per_poll: list[list[Any]]) -> Callable[[], int]:
    """The event-time order and carrier counts over the polls' rows (as ``take`` then ``release``)."""
    ordering = importlib.import_module(f"{pkg}.core.ordering")

    def run() -> int:
        merger, carriers = ordering.EventTimeMerger(20_000, 500_000), ordering.Carriers()
        for p in range(4):
            merger.expect(("in", p))
        n = 0
        for rows in rows_per_poll:
            merger.add(rows)
            carriers.queue(rows)
            out = merger.release()
            carriers.release(out)
            n += len(out)
        out = merger.release(final=True)
        carriers.release(out)
        return n + len(out)

    return run


def gather(pkg: str, rows_per_poll: list[list[Any]]) -> Callable[[], int]:
    """``_gather`` of each poll's rows (one task, its channels discovered by a first call)."""
    monitor = importlib.import_module(f"{pkg}.core.monitor")
    events = importlib.import_module(f"{pkg}.core.events")
    spec, _ = spec_of(pkg)
    task = monitor.PartitionMonitor(spec, 0)
    base = pkg != "stream_monitor"
    task._gather([events.DecodedEvent(r.event, r.key[0], r.problems) for r in rows_per_poll[0]] if base else rows_per_poll[0],
                 [r.position for r in rows_per_poll[0]], None, [0] * len(rows_per_poll[0]))  # fmt: skip

    def run() -> int:
        n = 0
        for rows in rows_per_poll:
            decoded = [events.DecodedEvent(r.event, r.key[0], r.problems) for r in rows] if base else rows
            ids = [r.identity for r in rows] if base else [k[1] ^ k[2] for k in map(monitor._KEY, rows)]
            batch = task._gather(decoded, [r.position for r in rows], None, ids)
            n += len(batch.columns)
        return n

    return run


def main(argv: list[str] | None = None) -> int:
    """Time each step for base and working tree, alternating; print medians and spread."""
    ap = argparse.ArgumentParser(prog="python -m bench.ab_judge_parts", description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="main")
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        prepare(args.base, Path(tmp))
        from bench.workload import throughput_events

        polls = rows_records(throughput_events(args.events), 4, 1250)
        rows: dict[str, list[list[Any]]] = {}
        for pkg in ("sm_base", "stream_monitor"):
            exchange = importlib.import_module(f"{pkg}.core.exchange")
            rows[pkg] = [[r for j, blob in enumerate(poll) for r in _carried(exchange.decode_record(blob)[1], ("rp", 0, i * 1000 + j))]
                         for i, poll in enumerate(polls)]  # fmt: skip
        n = sum(map(len, rows["sm_base"]))
        from stream_monitor.ops.collector import tune_collector

        tune_collector()
        steps = {
            "decode": {pkg: decode(pkg, polls) for pkg in rows},
            "order": {pkg: order(pkg, rows[pkg]) for pkg in rows},
            "gather": {pkg: gather(pkg, rows[pkg]) for pkg in rows},
        }
        for name, runs in steps.items():
            print(saved_line(name, args.base, alternate(runs, args.rounds, n)[0], "row"))
            sys.stdout.flush()
    return 0


def _carried(rows: list[Any], carrier: tuple[str, int, int]) -> list[Any]:
    for row in rows:
        row.carrier = carrier
    return rows


if __name__ == "__main__":
    sys.exit(main())
