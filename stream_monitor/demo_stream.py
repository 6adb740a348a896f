"""The demo's stream of drifting inference events, produced to Kafka (compose stack, manual trials, demo).

``python -m stream_monitor.demo_stream --bootstrap-servers kafka:9092 --topic inference-events``

It produces the demo's two models (:func:`stream_monitor.synthetic.demo_streams` with labels:
``fraud-v3``'s inputs drift at known points, ``churn-v1``'s stay stationary while its inline labels
stop following its predictions halfway, a concept drift) at ``--rate`` events per second, with event
times that follow the wall clock, keyed by model. ``--loop`` starts a new round (next seed,
fresh timestamps) after each one, so a long-running stack keeps alerting and resolving. It waits
(bounded by ``--connect-timeout``) for the broker to come up, and stops cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import threading
import time
from typing import Any, Sequence

import orjson
import structlog
from kafka import KafkaProducer
from kafka.errors import KafkaError

from stream_monitor.ops.logs import configure_logging
from stream_monitor.synthetic import demo_streams, generate_events

log = structlog.get_logger("stream_monitor.demo_stream")


def build_parser() -> argparse.ArgumentParser:
    """The producer's own argument parser (it is not a ``stream-monitor`` sub-command)."""
    p = argparse.ArgumentParser(prog="python -m stream_monitor.demo_stream", description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap-servers", required=True, help="host:port[,host:port]")
    p.add_argument("--topic", default="inference-events")
    p.add_argument("--events", type=int, default=60_000, help="events per model per round (default 60000)")
    p.add_argument("--rate", type=float, default=500.0, help="events per second over both models; 0 = as fast as possible")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--loop", action="store_true", help="start a new round after each one, until stopped")
    p.add_argument("--connect-timeout", type=float, default=120.0, help="seconds to wait for the broker (default 120)")
    p.add_argument("--log-format", choices=["json", "console"], default="json")
    return p


def _connect(bootstrap: str, timeout_s: float, stop: threading.Event) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return KafkaProducer(
                bootstrap_servers=bootstrap.split(","), linger_ms=20, acks="all", bootstrap_timeout_ms=int(min(10.0, max(1.0, timeout_s)) * 1000)
            )
        except KafkaError as exc:
            if time.monotonic() > deadline or stop.is_set():
                raise
            log.info("waiting_for_broker", bootstrap=bootstrap, error=str(exc))
            stop.wait(2.0)


def produce_round(producer: Any, topic: str, n_events: int, seed: int, rate: float, stop: threading.Event) -> int:
    """One round of both demo streams, paced at ``rate``; returns how many events were sent."""
    per_model_rate = rate / 2 if rate > 0 else 0
    interval_ms = max(1, int(round(1000 / per_model_rate))) if per_model_rate else 10
    start_ms = int(time.time() * 1000)
    fraud, churn = (dataclasses.replace(s, start_ms=start_ms, interval_ms=interval_ms) for s in demo_streams(n_events, seed, labels=True))
    started = time.monotonic()
    sent = 0
    for a, b in zip(generate_events(fraud), generate_events(churn), strict=True):
        if stop.is_set():
            break
        for event in (a, b):
            producer.send(topic, key=event["model"].encode(), value=orjson.dumps(event))
        sent += 2
        if rate > 0 and sent % 100 == 0:
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0 and stop.wait(ahead):
                break
    producer.flush(timeout=60)
    return sent


def main(argv: Sequence[str] | None = None) -> int:
    """Produce rounds until done (or, with ``--loop``, until SIGTERM/SIGINT); exit 1 when the broker is unreachable."""
    args = build_parser().parse_args(argv)
    configure_logging("INFO", args.log_format)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        producer = _connect(args.bootstrap_servers, args.connect_timeout, stop)
    except Exception as exc:  # noqa: BLE001 - exit code 1 with the reason
        sys.stderr.write(f"demo_stream: cannot connect to {args.bootstrap_servers}: {exc}\n")
        return 1
    seed = args.seed
    total = 0
    try:
        while not stop.is_set():
            n = produce_round(producer, args.topic, args.events, seed, args.rate, stop)
            total += n
            log.info("round_done", seed=seed, events=n, total=total, topic=args.topic)
            if not args.loop:
                break
            seed += 1
    finally:
        producer.close(timeout=10)
    log.info("producer_stopped", total=total)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
