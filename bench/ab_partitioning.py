"""What the internal topic costs: ``kafka.state_partitioning`` model against input, ``python -m bench.ab_partitioning --bootstrap H:P``.

Input keyed by model (the latency stream of ``bench.run``: 4 models, model m on partition m, 26 channels) is the
one layout both modes judge alike; ``input`` judges each partition where it is read, ``model`` (the default)
sends the rows through ``<group>-by-model`` first (``kafka.judge_locally: false`` here: on one instance the default
would judge them where read, without the topic). As a backlog (``--events`` records produced once, read by
``run_app`` exactly-once as row (e) of ``bench.run``) and, with ``--rate``, live (``run_latency`` at that many
events/s with 0.5 s of lateness, as the latency rows with their ``max_lateness_seconds 0.5``), in alternating
rounds (model first in even rounds). Prints each run, then each mode's medians.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import uuid
from pathlib import Path

from bench.run import create_topic, latency_stream, run_app, run_latency
from stream_monitor.ops.logs import configure_logging

MODES = ("model", "input")


def _produce(bootstrap: str, topic: str, events: int) -> int:
    """The latency stream's records (``events`` of them), model m's on partition m; their bytes."""
    from kafka import KafkaProducer

    values, model_of, _ = latency_stream(events / 10.0, 10.0, 4)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20, batch_size=1 << 20, max_request_size=8 << 20)
    for value, model in zip(values, model_of, strict=True):
        producer.send(topic, value=value, partition=model % 4)
    producer.flush(300)
    producer.close()
    return sum(map(len, values))


def main(argv: list[str] | None = None) -> int:
    """Run both modes in alternating rounds, as a backlog and (``--rate``) live; print the runs and the medians."""
    ap = argparse.ArgumentParser(prog="python -m bench.ab_partitioning", description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--events", type=int, default=200_000, help="records of the backlog (0: no backlog runs)")
    ap.add_argument("--rate", type=float, default=0.0, help="events/s of the live runs (0: none); half of row (e) is the targets' load")
    ap.add_argument("--seconds", type=float, default=40.0, help="length of each live run")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    configure_logging(level="WARNING", fmt="json")
    backlog: dict[str, list[float]] = {m: [] for m in MODES}
    live: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
    topic, size = "", 0
    if args.events:
        topic = create_topic(args.bootstrap, f"ab-partitioning-{uuid.uuid4().hex[:8]}", 4)
        size = _produce(args.bootstrap, topic, args.events)
    work = Path(tempfile.mkdtemp(prefix="ab-partitioning-"))
    for rnd in range(args.rounds):
        for mode in MODES if rnd % 2 == 0 else MODES[::-1]:
            if args.events:
                out = run_app(args.bootstrap, topic, 4, args.events, True, 600.0, input_bytes=size, overrides={"kafka.state_partitioning": mode, "kafka.judge_locally": False})
                backlog[mode].append(args.events / out["cpu_seconds"])
                print(f"round {rnd}: {mode}: backlog {args.events / out['seconds']:,.0f} records/s, {backlog[mode][-1]:,.0f} per CPU-second, "
                      f"{out['alerts']} alerts, {out['checkpoints']} checkpoints", flush=True)
            if args.rate:
                lat = run_latency(args.bootstrap, 4, args.rate, args.seconds, 4, work, lateness_s=0.5, config=f"kafka:\n  state_partitioning: {mode}\n  judge_locally: false\n")
                live[mode].append((lat["p50_ms"] or 0.0, lat["p99_ms"] or 0.0))
                judged = lat.get("judge_delay") or {}
                print(f"round {rnd}: {mode}: live at {lat['achieved_rate']:,.0f}/s: p50 / p99 {live[mode][-1][0]:,.0f} / {live[mode][-1][1]:,.0f} ms "
                      f"({lat['samples']} alerts), judged p50 / p99 {judged.get('p50_ms') or 0:,.0f} / {judged.get('p99_ms') or 0:,.0f} ms, "
                      f"monitor CPU {lat['monitor_cpu_share_while_producing']:.0%}", flush=True)
    for mode in MODES:
        if backlog[mode]:
            print(f"{mode}: backlog median {statistics.median(backlog[mode]):,.0f} records per CPU-second")
        if live[mode]:
            print(f"{mode}: live median p50 {statistics.median(p for p, _ in live[mode]):,.0f} ms, p99 {statistics.median(q for _, q in live[mode]):,.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
