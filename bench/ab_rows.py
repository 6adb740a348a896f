"""A/B of the rows records' two ends, each side with its own encoder: ``python -m bench.ab_rows [--base REV]``.

:mod:`bench.ab_judge` and :mod:`bench.ab_judge_parts` judge rows records made by the base's encoder
(so a new record format is not seen there). Here each side encodes what it decodes, in one process,
alternating, ``--rounds`` times after a warm-up, CPU time (``time.process_time``) per row:

* encode: ``encode_row_lists`` of each poll's wire rows (``intake.read_inference_wire`` of
  ``bench.workload.throughput_events``, 4 input partitions, 1250 records each per poll, at most
  ``ROWS_PER_RECORD`` rows a record), the stage-1 step after reading;
* decode: ``decode_record`` of that side's records, each row given its carrier (stage 2);
* gather: ``PartitionMonitor._gather`` of each poll's rows as that side decoded them (one task,
  its channels discovered by a first call), the step after decoding that the format feeds;
* stage2: ``MonitorApp._judge_records`` over that side's records (decode, event-time order,
  judge), then a final release, as :func:`bench.ab_judge.stage2`; the alert payloads of the
  two sides are compared and a difference fails.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

from bench.ab_judge import PKGS, alternate, prepare, saved_line, spec_of, stage2


def wire_rows(pkg: str, values: list[bytes], partitions: int, batch: int) -> list[list[tuple[str, list[Any]]]]:
    """Per poll, (model, wire rows) chunks as the reading side makes them (``pkg``'s ``read_inference_wire``)."""
    intake = importlib.import_module(f"{pkg}.core.intake")
    records = importlib.import_module(f"{pkg}.runtime.records")
    spec, _ = spec_of(pkg)
    per_part: list[list[Any]] = [[] for _ in range(partitions)]
    for i, v in enumerate(values):
        p = i % partitions
        per_part[p].append(SimpleNamespace(value=v, offset=len(per_part[p]), timestamp=1_700_000_000_000 + i, headers=None))
    polls = []
    for start in range(0, max(map(len, per_part)), batch):
        poll = []
        for p in range(partitions):
            got = intake.read_inference_wire(spec, "in", p, per_part[p][start : start + batch])
            for model, rows in got.rows.items():
                poll += [(model, rows[i : i + records.ROWS_PER_RECORD]) for i in range(0, len(rows), records.ROWS_PER_RECORD)]
        polls.append(poll)
    return polls


def encoder(pkg: str, polls: list[list[tuple[str, list[Any]]]]) -> Callable[[], list[list[bytes]]]:
    exchange = importlib.import_module(f"{pkg}.core.exchange")

    def run() -> list[list[bytes]]:
        return [[exchange.encode_row_lists(model, rows) for model, rows in poll] for poll in polls]

    return run


def decoder(pkg: str, blobs: list[list[bytes]]) -> Callable[[], int]:
    exchange = importlib.import_module(f"{pkg}.core.exchange")

    def run() -> int:
        n = 0
        for i, poll in enumerate(blobs):
            for j, blob in enumerate(poll):
                n += len(exchange.decode_record(blob, ("rp", 0, i * 1000 + j))[1])
        return n

    return run


def gatherer(pkg: str, blobs: list[list[bytes]]) -> Callable[[], int]:
    exchange = importlib.import_module(f"{pkg}.core.exchange")
    monitor = importlib.import_module(f"{pkg}.core.monitor")
    spec, _ = spec_of(pkg)
    polls = [[r for blob in poll for r in exchange.decode_record(blob, ("rp", 0, 0))[1]] for poll in blobs]
    task = monitor.PartitionMonitor(spec, 0)
    task._gather(polls[0], [r.position for r in polls[0]], None, [r.identity for r in polls[0]])

    def run() -> int:
        n = 0
        for rows in polls:
            n += len(task._gather(rows, [r.position for r in rows], None, [r.identity for r in rows]).columns)
        return n

    return run


def main(argv: list[str] | None = None) -> int:
    """Time encode, decode and stage 2 for base and working tree, alternating; print medians and spread."""
    ap = argparse.ArgumentParser(prog="python -m bench.ab_rows", description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="main")
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--only", choices=("encode", "decode", "gather", "stage2"), action="append")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        prepare(args.base, Path(tmp))
        from bench.workload import throughput_events

        values = throughput_events(args.events)
        wire = {pkg: wire_rows(pkg, values, 4, 1250) for pkg in PKGS}
        blobs = {pkg: encoder(pkg, wire[pkg])() for pkg in PKGS}
        n = sum(len(rows) for poll in wire["sm_base"] for _, rows in poll)
        size = {pkg: sum(len(b) for poll in blobs[pkg] for b in poll) / n for pkg in PKGS}
        print(f"{n} rows; bytes per row: base {size['sm_base']:.1f}, worktree {size['stream_monitor']:.1f}")
        from stream_monitor.ops.collector import tune_collector

        tune_collector()
        steps: dict[str, dict[str, Callable[[], Any]]] = {
            "encode": {pkg: encoder(pkg, wire[pkg]) for pkg in PKGS},
            "decode": {pkg: decoder(pkg, blobs[pkg]) for pkg in PKGS},
            "gather": {pkg: gatherer(pkg, blobs[pkg]) for pkg in PKGS},
            "stage2": {pkg: (lambda pkg=pkg: stage2(pkg, blobs[pkg], 4)[1]) for pkg in PKGS},
        }
        ok = True
        for name, runs in steps.items():
            if args.only and name not in args.only:
                continue
            times, outs = alternate(runs, args.rounds, n)
            same = ""
            if name == "stage2":
                same = f"; alerts {len(outs['stream_monitor'])}, " + ("identical" if outs["sm_base"] == outs["stream_monitor"] else "DIFFERENT")
                ok &= outs["sm_base"] == outs["stream_monitor"]
            print(saved_line(name, args.base, times, "row") + same)
            sys.stdout.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
