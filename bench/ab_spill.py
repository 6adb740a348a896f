"""Replay beyond ``SPILL_AFTER`` rows, in one process: ``python -m bench.ab_spill --ref main --input FILE.jsonl``.

Runs the replay engine over ``--input`` as ``replay --input`` feeds it (``FileSource.line_chunks`` +
``feed_lines``), alternating ``--reps`` rounds of: the engine at ``--ref`` with its default
``spill_after`` ("old"), the working tree's engine with its default ("new"), and, with
``--in-memory``, the working tree's engine with ``spill_after`` large enough to keep every row in
memory ("mem": the reference for the alert bytes). Each variant also replays an empty file; its
CPU is subtracted. The collector is set as ``replay`` sets it (``tune_collector``). Reports ``time.process_time()`` per record (median and range), the saving per
pair, and whether every variant wrote the same alert bytes and the same counts.
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


def _one(pkg: str, src: Path, spill_after: int | None) -> tuple[float, int, str, tuple[Any, ...]]:
    """(CPU seconds, records read, sha256 of the alerts, counts) of one replay of ``src``."""
    engine_mod = importlib.import_module(f"{pkg}.replay.engine")
    sources = importlib.import_module(f"{pkg}.replay.sources")
    spec = importlib.import_module(f"{pkg}.core.spec").MonitorSpec(instance="replay", label_join_max_pending=0)
    kw = {} if spill_after is None else {"spill_after": spill_after}
    gc.collect()
    t0 = time.process_time()
    engine = engine_mod.ReplayEngine(spec, **kw)
    source = sources.FileSource(src)
    for lines in source.line_chunks():
        engine.feed_lines(lines)
    o = engine.finish()
    digest = hashlib.sha256()
    for payload in engine.alert_payloads():
        digest.update(payload)
    engine.close()
    source.close()
    cpu = time.process_time() - t0
    counts = (o.records_read, o.records_processed, o.dead_letters, dict(o.alerts_by_status), dict(o.alerts_by_kind), o.first_event_ms, o.last_event_ms)
    return cpu, o.records_read, digest.hexdigest(), counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default="main")
    ap.add_argument("--input", required=True)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--in-memory", action="store_true", help="also the working tree with every row kept in memory")
    ap.add_argument("--no-old", action="store_true", help="skip the ref's engine (slow when it spills)")
    args = ap.parse_args(argv)
    import structlog

    from stream_monitor.ops.collector import tune_collector

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    src = Path(args.input).resolve()
    with tempfile.TemporaryDirectory(prefix="ab-spill-") as tmp:
        extract(args.ref, Path(tmp))
        sys.path.insert(0, tmp)
        empty = Path(tmp) / "empty.jsonl"
        empty.write_bytes(b"")
        variants: dict[str, tuple[str, int | None]] = {}
        if not args.no_old:
            variants["old"] = (OLD, None)
        variants["new"] = ("stream_monitor", None)
        if args.in_memory:
            variants["mem"] = ("stream_monitor", 10**12)
        for pkg, spill in variants.values():  # warm-up: imports, numba caches
            _one(pkg, empty, spill)
        tune_collector()  # as the replay command sets the collector
        per: dict[str, list[float]] = {k: [] for k in variants}
        digests: dict[str, set[str]] = {k: set() for k in variants}
        counts: dict[str, set[str]] = {k: set() for k in variants}
        records = 0
        for rep in range(args.reps):
            names = list(variants) if rep % 2 == 0 else list(reversed(variants))
            for name in names:
                pkg, spill = variants[name]
                base, _, _, _ = _one(pkg, empty, spill)
                cpu, records, digest, c = _one(pkg, src, spill)
                per[name].append((cpu - base) / records * 1e6)
                digests[name].add(digest)
                counts[name].add(repr(c))
                print(f"round {rep} {name}: {per[name][-1]:.2f} µs CPU per record ({cpu:.1f} s, empty {base:.2f} s)", flush=True)
    for name, xs in per.items():
        print(f"{name}: median {statistics.median(xs):.2f} µs per record (range {min(xs):.2f}-{max(xs):.2f}) over {records:,} records")
    if "old" in per:
        saved = [o - n for o, n in zip(per["old"], per["new"])]
        print(f"saved per pair (old - new): median {statistics.median(saved):.2f} µs per record (range {min(saved):.2f}-{max(saved):.2f})")
    all_digests = set().union(*digests.values())
    all_counts = set().union(*counts.values())
    print(f"alerts identical across variants and rounds: {len(all_digests) == 1}; counts identical: {len(all_counts) == 1}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
