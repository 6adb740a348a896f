"""A/B of the reading side and the by-model hop, whole: ``python -m bench.ab_hop [--base REV]``.

What ``run`` does to an input record before the judge gathers it (issue 13), each side with its own
code, in one process, alternating, ``--rounds`` times after a warm-up, CPU time
(``time.process_time``) per record:

* read: ``intake.read_inference_wire`` of each input partition's poll (``ConsumerRecord`` tuples of
  ``bench.workload.throughput_events``, 4 input partitions, ``--batch`` records each per poll);
* encode: ``runtime.records.rows_records`` of each model's wire rows (``encode_row_lists``), as
  ``Forwarder._prepare`` does;
* decode: ``exchange.decode_record`` of those records, each row given its carrier (the judging side);
* columns: what the judge reads of the rows before judging (``gathering.uniform_columns``, each
  row's ``identity`` and ``key``).

``hop`` is all four in a row; ``fetch`` (before them) is ``runtime.fetch_records.decode_v2`` of each
poll's records as v2 record batches (one per input partition and poll, no compression, the key
``bench-v1``): what the consumer does per record before reading. ``--steps`` also times each
hop step alone. Both
sides' decoded rows are compared (keys, positions, carriers, events' fields, features) and a
difference fails.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from bench.ab_judge import PKGS, alternate, prepare, saved_line, spec_of


def consumer_polls(values: list[bytes], partitions: int, batch: int) -> list[list[tuple[int, list[Any]]]]:
    """Per poll, (partition, ConsumerRecord tuples) as the consumer hands them out."""
    from kafka.consumer.fetcher import ConsumerRecord

    per_part: list[list[Any]] = [[] for _ in range(partitions)]
    for i, v in enumerate(values):
        p = i % partitions
        o = len(per_part[p])
        per_part[p].append(ConsumerRecord("in", p, 0, o, 1_700_000_000_000 + i, 0, b"bench-v1", v, [], None, 8, len(v), -1))
    return [[(p, per_part[p][s : s + batch]) for p in range(partitions)] for s in range(0, max(map(len, per_part)), batch)]


class Side:
    """One package's steps over the polls."""

    def __init__(self, pkg: str, polls: list[list[tuple[int, list[Any]]]]) -> None:
        self.intake = importlib.import_module(f"{pkg}.core.intake")
        self.exchange = importlib.import_module(f"{pkg}.core.exchange")
        self.records = importlib.import_module(f"{pkg}.runtime.records")
        self.gathering = importlib.import_module(f"{pkg}.core.gathering")
        self.spec, _ = spec_of(pkg)
        self.polls = polls

    def batches(self, pkg: str) -> None:
        """Each poll's records of each input partition as one v2 record batch (kafka-python's builder)."""
        from kafka.record import MemoryRecordsBuilder
        from kafka.record.default_records import DefaultRecordBatch

        self.fetch_records = importlib.import_module(f"{pkg}.runtime.fetch_records")
        self.blobs = []
        for poll in self.polls:
            for p, recs in poll:
                b = MemoryRecordsBuilder(2, 0, 1 << 30, offset=recs[0].offset)
                for r in recs:
                    b.append(r.timestamp, r.key, r.value, [])
                b.close()
                self.blobs.append((p, bytes(b.buffer())))
        self.batch_of = DefaultRecordBatch

    def fetch(self) -> int:
        decode, batch_of = self.fetch_records.decode_v2, self.batch_of
        return sum(len(decode(batch_of(blob), "in", p)[0]) for p, blob in self.blobs)

    def read(self) -> list[list[Any]]:
        read = self.intake.read_inference_wire
        return [[read(self.spec, "in", p, recs) for p, recs in poll] for poll in self.polls]

    def encode(self, read: list[list[Any]]) -> list[list[bytes]]:
        rows_records, encode = self.records.rows_records, self.exchange.encode_row_lists
        out = []
        for poll in read:
            blobs: list[bytes] = []
            for intake in poll:
                for model, rows in intake.rows.items():
                    blobs += rows_records(model, rows, 8 << 20, encode)
            out.append(blobs)
        return out

    def decode(self, blobs: list[list[bytes]]) -> list[list[Any]]:
        decode = self.exchange.decode_record
        out = []
        offset = 0
        for poll in blobs:
            rows: list[Any] = []
            for blob in poll:
                rows += decode(blob, ("rp", 0, offset))[1]
                offset += 1
            out.append(rows)
        return out

    def columns(self, decoded: list[list[Any]]) -> int:
        n = 0
        for rows in decoded:
            got = self.gathering.uniform_columns(rows)
            ids = [r.identity for r in rows]
            keys = [r.key for r in rows]
            n += len(got[2]) + len(ids) + len(keys)
        return n

    def hop(self) -> list[list[Any]]:
        decoded = self.decode(self.encode(self.read()))
        self.columns(decoded)
        return decoded


def fingerprint(decoded: list[list[Any]]) -> list[Any]:
    """What the judge reads of each decoded row (to compare the two sides)."""
    out = []
    for rows in decoded:
        for r in rows:
            e = r.event
            out.append((r.kind, r.key, tuple(r.position), r.carrier, list(r.problems), e.event_id, e.model, e.model_version, e.ts,
                        dict(e.features), e.prediction, e.label, e.latency_ms))  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    """Time the hop for base and working tree, alternating; print medians and spread."""
    ap = argparse.ArgumentParser(prog="python -m bench.ab_hop", description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="main")
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=1250)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", action="store_true", help="also time each step alone")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        prepare(args.base, Path(tmp))
        from bench.workload import throughput_events

        values = throughput_events(args.events)
        polls = consumer_polls(values, 4, args.batch)
        sides = {pkg: Side(pkg, polls) for pkg in PKGS}
        n = len(values)
        same = fingerprint(sides["sm_base"].hop()) == fingerprint(sides["stream_monitor"].hop())
        blobs = {pkg: s.encode(s.read()) for pkg, s in sides.items()}
        size = {pkg: sum(map(len, (b for poll in blobs[pkg] for b in poll))) / n for pkg in PKGS}
        print(f"{n} records, polls of 4 x {args.batch}; bytes per row on the hop: base {size['sm_base']:.1f}, worktree {size['stream_monitor']:.1f}; "
              f"decoded rows {'identical' if same else 'DIFFERENT'}")  # fmt: skip
        from stream_monitor.ops.collector import tune_collector

        tune_collector()
        for pkg, side in sides.items():
            side.batches(pkg)
        steps: dict[str, dict[str, Callable[[], Any]]] = {"fetch": {pkg: s.fetch for pkg, s in sides.items()}, "hop": {pkg: s.hop for pkg, s in sides.items()}}
        if args.steps:
            read = {pkg: s.read() for pkg, s in sides.items()}
            decoded = {pkg: s.decode(blobs[pkg]) for pkg, s in sides.items()}
            steps["read"] = {pkg: s.read for pkg, s in sides.items()}
            steps["encode"] = {pkg: (lambda s=s, pkg=pkg: s.encode(read[pkg])) for pkg, s in sides.items()}
            steps["decode"] = {pkg: (lambda s=s, pkg=pkg: s.decode(blobs[pkg])) for pkg, s in sides.items()}
            steps["columns"] = {pkg: (lambda s=s, pkg=pkg: s.columns(decoded[pkg])) for pkg, s in sides.items()}
        for name, runs in steps.items():
            print(saved_line(name, args.base, alternate(runs, args.rounds, n, collect=True)[0], "record"))
            sys.stdout.flush()
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
