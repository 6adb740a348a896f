"""(g) and (h): the code people write by hand for this job, each run in its own process.

    python -m bench.peers loop --bootstrap H:P --topic T --records N --alerts-topic A --group G
    python -m bench.peers file --input FILE.jsonl --alerts-out FILE
    python -m bench.peers quix --bootstrap H:P --topic T --records N --alerts-topic A --group G
                               [--exactly-once]

Every variant does the same per record: ``orjson.loads``, then River's ``ADWIN`` and
``PageHinkley`` (River's defaults) updated with every numeric feature, one pair per
(model, feature), and an alert (a small JSON object) for every ``drift_detected``. No categorical
features, no windows, no state kept anywhere but in memory, no lifecycle: the twenty lines a user
writes before reaching for a monitor.

- ``loop``: kafka-python consumer in a consumer group (kafka-python's defaults otherwise),
  alerts produced with a ``KafkaProducer``; every 5,000 records the producer is flushed and the
  offsets committed (synchronously), and once more at the end.
- ``file``: the same detection over a JSONL file, alerts appended to a file (what
  ``stream-monitor replay --input`` is compared with).
- ``quix``: the same on Quix Streams (``Application`` + ``StreamingDataFrame.apply`` +
  ``to_topic``), at-least-once or exactly-once, committing every 5,000 records
  (``commit_every``; Quix's 5 s interval stays as well).

Each prints one JSON line: records, seconds, cpu_seconds (``time.process_time`` of this process:
every thread, the client's included; the broker is another process) and alerts. Timing starts when
the first record is in hand and ends when the last offset is committed (``loop``, ``quix``) or the
file is read to the end (``file``).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable

import orjson

COMMIT_EVERY = 5000


class RiverPerFeature:
    """River ADWIN + Page-Hinkley (defaults) per numeric feature of every model."""

    def __init__(self) -> None:
        from river import drift

        self._drift = drift
        self.detectors: dict[tuple[Any, str], tuple[Any, Any]] = {}
        self.alerts = 0

    def update(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Feed one decoded event; returns the alerts it raised."""
        out: list[dict[str, Any]] = []
        model = event.get("model")
        for name, x in (event.get("features") or {}).items():
            if type(x) is not float and type(x) is not int:
                continue
            pair = self.detectors.get((model, name))
            if pair is None:
                pair = self.detectors[(model, name)] = (self._drift.ADWIN(), self._drift.PageHinkley())
            for detector in pair:
                detector.update(x)
                if detector.drift_detected:
                    out.append({"model": model, "feature": name, "detector": type(detector).__name__, "ts": event.get("ts")})
        self.alerts += len(out)
        return out


def run_loop(bootstrap: str, topic: str, records: int, alerts_topic: str, group: str) -> dict[str, Any]:
    """(g): kafka-python consumer + orjson + River, commit every 5,000 records."""
    from kafka import KafkaConsumer, KafkaProducer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest")
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    detect = RiverPerFeature()
    loads, dumps, send = orjson.loads, orjson.dumps, producer.send
    seen = since_commit = 0
    t0 = cpu0 = None
    try:
        while seen < records:
            t_poll, cpu_poll = time.perf_counter(), time.process_time()
            batch = consumer.poll(timeout_ms=100)
            if not batch:
                continue
            if t0 is None:
                t0, cpu0 = t_poll, cpu_poll
            for part in batch.values():
                for r in part:
                    for alert in detect.update(loads(r.value)):
                        send(alerts_topic, dumps(alert))
                seen += len(part)
                since_commit += len(part)
            if since_commit >= COMMIT_EVERY:
                producer.flush()
                consumer.commit()
                since_commit = 0
        producer.flush()
        consumer.commit()
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        consumer.close()
        producer.close()
    return {"records": seen, "seconds": seconds, "cpu_seconds": cpu, "alerts": detect.alerts}


def run_file(path: str, alerts_out: str) -> dict[str, Any]:
    """(g) over a file: read JSONL, orjson + River, alerts appended to ``alerts_out``."""
    detect = RiverPerFeature()
    loads, dumps = orjson.loads, orjson.dumps
    t0, cpu0 = time.perf_counter(), time.process_time()
    n = 0
    with open(path, "rb") as f, open(alerts_out, "wb") as out:
        for line in f:
            for alert in detect.update(loads(line)):
                out.write(dumps(alert) + b"\n")
            n += 1
    return {"records": n, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - cpu0, "alerts": detect.alerts}


def run_quix(bootstrap: str, topic: str, records: int, alerts_topic: str, group: str, exactly_once: bool) -> dict[str, Any]:
    """(h): the same on Quix Streams, stopped once ``records`` records went through."""
    import logging

    from quixstreams import Application

    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once" if exactly_once else "at-least-once",
        commit_every=COMMIT_EVERY,
        loglevel=logging.WARNING,
    )
    detect = RiverPerFeature()
    seen: list[int] = [0]
    start: list[float] = []

    def apply(event: dict[str, Any]) -> list[dict[str, Any]]:
        if not start:
            start.extend((time.perf_counter(), time.process_time()))
        seen[0] += 1
        if seen[0] == records:
            app.stop()
        return detect.update(event)

    sdf = app.dataframe(app.topic(topic, value_deserializer="json"))
    sdf = sdf.apply(apply, expand=True)
    sdf.to_topic(app.topic(alerts_topic, value_serializer="json"))
    app.run()  # returns after the stop, once the last checkpoint is committed
    if not start:
        raise RuntimeError("quix: no record was consumed")
    return {"records": seen[0], "seconds": time.perf_counter() - start[0], "cpu_seconds": time.process_time() - start[1], "alerts": detect.alerts}


def main(argv: list[str] | None = None) -> int:
    """Run one variant; print its result as a JSON line."""
    ap = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.split("\n")[0])
    ap.add_argument("variant", choices=("loop", "file", "quix"))
    ap.add_argument("--bootstrap")
    ap.add_argument("--topic")
    ap.add_argument("--records", type=int)
    ap.add_argument("--alerts-topic")
    ap.add_argument("--group")
    ap.add_argument("--exactly-once", action="store_true")
    ap.add_argument("--input")
    ap.add_argument("--alerts-out")
    args = ap.parse_args(argv)
    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "loop": lambda: run_loop(args.bootstrap, args.topic, args.records, args.alerts_topic, args.group),
        "file": lambda: run_file(args.input, args.alerts_out),
        "quix": lambda: run_quix(args.bootstrap, args.topic, args.records, args.alerts_topic, args.group, args.exactly_once),
    }
    result = runs[args.variant]()
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
