"""A/B of the consumer's record decoding: ``python -m bench.ab_fetch --bootstrap H:P [--app]``.

The throughput workload (``bench/workload.py``: records of ~500 B, 4 partitions, written once by
``bench.run.produce_all``) read with kafka-python's stock record decoding and with
``runtime/fetch_records.py`` (``kafka_compat.install_fast_records``), alternating in one process
(ABBA order). Without ``--app``: bare consumption with the monitor's fetch settings (read_committed,
group-less), timed from the first records. With ``--app``: ``MonitorApp`` exactly-once as row (e)
of ``bench.run`` runs it (``run_app``), every consumer it makes with or without the fast decoding;
alerts and dead letters are printed to show the runs judged alike. Prints records/s and CPU
(``time.process_time``, all threads) per record for each run, and the medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from typing import Any

from kafka import TopicPartition

from bench.run import _consumer, create_topic, produce_all, run_app
from bench.workload import throughput_events
from stream_monitor.runtime import clients, kafka_compat


def consume(bootstrap: str, tps: list[TopicPartition], events: int, fast: bool, max_poll_records: int) -> tuple[float, float, str]:
    """Read ``events`` records of ``tps`` from the beginning: (records/s, CPU us per record, note)."""
    c = _consumer(bootstrap, max_poll_records=max_poll_records)
    if fast:
        assert kafka_compat.install_fast_records(c)
    c.assign(tps)
    c.seek_to_beginning(*tps)
    n, first = 0, None
    while n < events:
        got = c.poll(timeout_ms=1000, max_records=max_poll_records)
        if got and first is None:  # timed from the first records: connection set-up left out
            first = (time.perf_counter(), time.process_time())
        for recs in got.values():
            n += len(recs)
    assert first is not None
    wall, cpu = time.perf_counter() - first[0], time.process_time() - first[1]
    c.close()
    return n / wall, cpu / n * 1e6, ""


def app(bootstrap: str, topic: str, events: int, fast: bool, input_bytes: int) -> tuple[float, float, str]:
    """``run_app`` exactly-once over the topic, the app's consumers decoding fast or stock: (records/s, CPU us per record, note)."""
    installed: list[bool] = []

    def install(consumer: Any) -> bool:
        installed.append(fast and kafka_compat.install_fast_records(consumer))
        return installed[-1]

    clients.install_fast_records = install  # clients.group_consumer / plain_consumer call it by this name
    try:
        out = run_app(bootstrap, topic, 4, events, True, max(600.0, events / 100), input_bytes=input_bytes)
    finally:
        clients.install_fast_records = kafka_compat.install_fast_records
    note = f", alerts {out['alerts']}, dead letters {out['dead_letters']}, fast decoding in {sum(installed)} of {len(installed)} consumers"
    return events / out["seconds"], out["cpu_seconds"] / events * 1e6, note


def main(argv: list[str] | None = None) -> int:
    """Produce the workload once, then read it stock and fast in turn; print each run and the medians."""
    ap = argparse.ArgumentParser(prog="python -m bench.ab_fetch", description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--max-poll-records", type=int, default=5000)
    ap.add_argument("--app", action="store_true", help="MonitorApp exactly-once instead of bare consumption")
    args = ap.parse_args(argv)
    topic = create_topic(args.bootstrap, f"ab-fetch-{uuid.uuid4().hex[:8]}", 4)
    values = throughput_events(args.events)
    produce_all(args.bootstrap, topic, values, 4)
    tps = [TopicPartition(topic, p) for p in range(4)]

    def one(fast: bool) -> tuple[float, float, str]:
        if args.app:
            return app(args.bootstrap, topic, args.events, fast, sum(map(len, values)))
        return consume(args.bootstrap, tps, args.events, fast, args.max_poll_records)

    if not args.app:
        one(False)  # warm-up: the broker's page cache, the imports
        one(True)
    res: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for r in range(args.rounds):
        for fast in (False, True) if r % 2 == 0 else (True, False):
            rate, us, note = one(fast)
            res[fast].append((rate, us))
            print(f"round {r} {'fast ' if fast else 'stock'}: {rate:,.0f} records/s, {us:.2f} us CPU/record{note}", flush=True)
    for fast in (False, True):
        rs, us = [x[0] for x in res[fast]], [x[1] for x in res[fast]]
        print(f"{'fast ' if fast else 'stock'}: records/s median {statistics.median(rs):,.0f} ({min(rs):,.0f}-{max(rs):,.0f}); "
              f"CPU us/record median {statistics.median(us):.2f} ({min(us):.2f}-{max(us):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
