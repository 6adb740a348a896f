"""A/B of the judging side in one process: ``python -m bench.ab_judge [--base REV] [--events N] [--rounds K]``.

The package as of ``--base`` (default ``main``) is extracted to a temporary directory under another
name (``sm_base``) and imported beside the working tree's ``stream_monitor``; both judge the same
inputs, alternating, ``--rounds`` times, and the CPU time (``time.process_time``) per record is
reported for each, with the spread. Two measurements:

* stage 2: rows records made by each side's encoder (``--base-encoder``: the base's for both), as
  ``Forwarder.send`` makes them from ``bench.workload.throughput_events`` read in batches per input
  partition, judged by ``MonitorApp._judge_records`` of each side (decode, event-time order,
  judge), then a final release;
* core: ``PartitionMonitor.process`` over the same events in batches of 5000 (the in-process path).

The alerts of the two sides are compared (payload bytes); a difference is reported and fails.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def base_package(rev: str, into: Path) -> Any:
    """The package ``stream_monitor`` at ``rev``, importable as ``sm_base`` (``bench.ab_against_ref.extract``)."""
    from bench.ab_against_ref import extract

    extract(rev, into, name="sm_base")
    sys.path.insert(0, str(into))
    return importlib.import_module("sm_base")


PKGS = ("sm_base", "stream_monitor")  # the base's package, the working tree's


def prepare(rev: str, into: Path) -> None:
    """What every A/B here does first: quiet logs on both sides, ``rev``'s package importable as ``sm_base``."""
    from stream_monitor.ops.logs import configure_logging

    configure_logging(level="WARNING", fmt="json")
    base_package(rev, into)
    importlib.import_module("sm_base.ops.logs").configure_logging(level="WARNING", fmt="json")


def alternate(runs: dict[str, Any], rounds: int, n: int, collect: bool = False) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Each side's run, a warm-up round then ``rounds`` counted, which side goes first alternating: CPU µs per item
    (``n`` items a run) and each side's last output. ``collect``: a garbage collection before each run."""
    times: dict[str, list[float]] = {pkg: [] for pkg in PKGS}
    outs: dict[str, Any] = {}
    for k in range(rounds + 1):
        for pkg in PKGS if k % 2 == 0 else PKGS[::-1]:
            if collect:
                gc.collect()
            started = time.process_time()
            outs[pkg] = runs[pkg]()
            if k:  # the first round warms up
                times[pkg].append((time.process_time() - started) / n * 1e6)
    return times, outs


def saved_line(name: str, base: str, times: dict[str, list[float]], unit: str) -> str:
    """``name``: base and working tree, median (min, max) µs per ``unit``, and what the working tree saved per round."""
    b, w = times["sm_base"], times["stream_monitor"]
    saved = [x - y for x, y in zip(b, w)]
    return (f"{name}: base {base} {statistics.median(b):.2f} µs/{unit} (min {min(b):.2f}, max {max(b):.2f}); "
            f"worktree {statistics.median(w):.2f} (min {min(w):.2f}, max {max(w):.2f}); saved median {statistics.median(saved):.2f} "
            f"(min {min(saved):.2f}, max {max(saved):.2f}) µs/{unit} over {len(saved)} rounds")  # fmt: skip


def spec_of(pkg: str) -> Any:
    """The spec ``stream-monitor run`` gets in the benchmark (bench.run.app_config), of package ``pkg``."""
    config = importlib.import_module(f"{pkg}.config")
    cfg = config.load_config(None, env={}, overrides={
        "kafka.bootstrap_servers": "localhost:1", "kafka.input_topics": ["in"], "kafka.alerts_topic": "alerts",
        "kafka.dlq_topic": "dlq", "kafka.group_id": "g", "state.hmac_secret": "x" * 32, "metrics.enabled": False,
    })  # fmt: skip
    return cfg.monitor_spec(), cfg


def rows_records(values: list[bytes], partitions: int, batch: int, pkg: str = "sm_base") -> list[list[bytes]]:
    """Per judging poll, the rows records the reading side sends (encoded by package ``pkg``: the base's by default)."""
    intake = importlib.import_module(f"{pkg}.core.intake")
    events = importlib.import_module(f"{pkg}.core.events")
    records = importlib.import_module(f"{pkg}.runtime.records")
    spec, _ = spec_of(pkg)
    per_part: list[list[Any]] = [[] for _ in range(partitions)]
    for i, v in enumerate(values):
        p = i % partitions
        per_part[p].append(intake.InputRecord(v, events.SourcePosition("in", p, len(per_part[p]), 1_700_000_000_000 + i)))
    polls: list[list[bytes]] = []
    for start in range(0, max(map(len, per_part)), batch):
        poll: list[bytes] = []
        for p in range(partitions):
            got = intake.read_inference(spec, per_part[p][start : start + batch])
            for model, rows in got.rows.items():
                poll += records.rows_records(model, rows, 8 << 20)
        polls.append(poll)
    return polls


def stage2(pkg: str, polls: list[list[bytes]], partitions: int) -> tuple[float, list[bytes]]:
    """CPU seconds of judging the rows records with ``pkg``'s ``_judge_records``, and the alert payloads."""
    app = importlib.import_module(f"{pkg}.runtime.app")
    monitor = importlib.import_module(f"{pkg}.core.monitor")
    intake = importlib.import_module(f"{pkg}.core.intake")
    events = importlib.import_module(f"{pkg}.core.events")
    spec, cfg = spec_of(pkg)
    noop = lambda *a, **k: None  # noqa: E731
    fake = SimpleNamespace(
        repartition_topic="rp", cfg=cfg, spec=spec, idle=SimpleNamespace(arrived=noop), log=SimpleNamespace(warning=noop),
        metrics=SimpleNamespace(late=SimpleNamespace(inc=noop)),
    )  # fmt: skip
    if hasattr(app.MonitorApp, "_released"):  # (since 2026-12-05 _judge_records releases through it)
        fake._released = types.MethodType(app.MonitorApp._released, fake)
    task = monitor.PartitionMonitor(spec, 0)
    for p in range(partitions):
        task.order.expect(("in", p))
    tp = SimpleNamespace(topic="rp", partition=0)
    alerts: list[bytes] = []
    offset = 0
    started = time.process_time()
    for poll in polls:
        inputs = []
        for blob in poll:
            inputs.append(intake.InputRecord(blob, events.SourcePosition("rp", 0, offset, None)))
            offset += 1
        result = app.MonitorApp._judge_records(fake, task, tp, inputs)
        task.carriers.read(("rp", 0), offset)
        alerts += [a.payload for a in result.alerts]
    alerts += [a.payload for a in task.release(final=True).alerts]
    return time.process_time() - started, alerts


def core(pkg: str, values: list[bytes], batch: int = 5000) -> tuple[float, list[bytes]]:
    """CPU seconds of ``PartitionMonitor.process`` over the events in batches, and the alert payloads."""
    monitor = importlib.import_module(f"{pkg}.core.monitor")
    intake = importlib.import_module(f"{pkg}.core.intake")
    events = importlib.import_module(f"{pkg}.core.events")
    spec, _ = spec_of(pkg)
    task = monitor.PartitionMonitor(spec, 0)
    records = [intake.InputRecord(v, events.SourcePosition("in", 0, i, 1_700_000_000_000 + i)) for i, v in enumerate(values)]
    alerts: list[bytes] = []
    started = time.process_time()
    for i in range(0, len(records), batch):
        alerts += [a.payload for a in task.process(records[i : i + batch]).alerts]
    return time.process_time() - started, alerts


def main(argv: list[str] | None = None) -> int:
    """Run the A/B; print µs per record of each side per round, medians and spread."""
    ap = argparse.ArgumentParser(prog="python -m bench.ab_judge", description=__doc__.split("\n")[0])
    ap.add_argument("--base", default="main")
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--batch", type=int, default=1250, help="records per input partition per poll (reading side)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", choices=("stage2", "core"), default=None)
    ap.add_argument("--base-encoder", action="store_true", help="stage 2: both sides judge the records the base encodes (else each its own)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        prepare(args.base, Path(tmp))
        from bench.workload import throughput_events

        values = throughput_events(args.events)
        polls = {pkg: rows_records(values, args.partitions, args.batch, "sm_base" if args.base_encoder else pkg) for pkg in PKGS}
        n = len(values)
        ok = True
        from stream_monitor.ops.collector import tune_collector

        tune_collector()  # as `stream-monitor run` and `replay` do before processing
        for name, run in (("stage2", lambda pkg: stage2(pkg, polls[pkg], args.partitions)), ("core", lambda pkg: core(pkg, values))):
            if args.only and name != args.only:
                continue
            times: dict[str, list[float]] = {"sm_base": [], "stream_monitor": []}
            payloads: dict[str, list[bytes]] = {}
            for pkg in ("sm_base", "stream_monitor"):  # a warm-up round, not counted
                payloads[pkg] = run(pkg)[1]
            for k in range(args.rounds):
                for pkg in (("sm_base", "stream_monitor") if k % 2 == 0 else ("stream_monitor", "sm_base")):
                    seconds, alerts = run(pkg)
                    times[pkg].append(seconds / n * 1e6)
                    if alerts != payloads[pkg]:
                        print(f"{name}: {pkg} gave other alerts in round {k}")
                        ok = False
            same = payloads["sm_base"] == payloads["stream_monitor"]
            ok &= same
            b, w = times["sm_base"], times["stream_monitor"]
            saved = [x - y for x, y in zip(b, w)]
            print(f"{name}: base {args.base} {statistics.median(b):.1f} µs/record (min {min(b):.1f}, max {max(b):.1f}); "
                  f"worktree {statistics.median(w):.1f} (min {min(w):.1f}, max {max(w):.1f}); saved per round "
                  f"{', '.join(f'{s:.1f}' for s in saved)} (median {statistics.median(saved):.1f}); "
                  f"alerts {len(payloads['stream_monitor'])}, {'identical' if same else 'DIFFERENT'}")  # fmt: skip
            sys.stdout.flush()
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
