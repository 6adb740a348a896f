"""A/B of the consumer's record decoding: ``python -m bench.ab_fetch BOOTSTRAP [events] [rounds] [max_poll_records]``.

Bare consumption of the throughput workload (``bench/workload.py``: 200k records of ~500 B, 4
partitions, written by ``bench.run.produce_all``) with the monitor's fetch settings (read_committed,
group-less), once with kafka-python's stock record decoding and once with
``runtime/fetch_records.py`` (``kafka_compat.install_fast_records``), alternating in one process;
records/s and CPU (``time.process_time``, all threads) per record, timed from the first records.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid

from kafka import TopicPartition

from bench.run import _consumer, create_topic, produce_all
from bench.workload import throughput_events
from stream_monitor.runtime.kafka_compat import install_fast_records


def main(argv: list[str]) -> int:
    """Produce the workload once, then consume it stock and fast in turn; print each round and the medians."""
    if len(argv) < 2:
        sys.exit(__doc__)
    bootstrap = argv[1]
    events = int(argv[2]) if len(argv) > 2 else 200_000
    rounds = int(argv[3]) if len(argv) > 3 else 4
    mpr = int(argv[4]) if len(argv) > 4 else 5000
    topic = create_topic(bootstrap, f"ab-fetch-{uuid.uuid4().hex[:8]}", 4)
    values = throughput_events(events)
    produce_all(bootstrap, topic, values, 4)
    tps = [TopicPartition(topic, p) for p in range(4)]

    def consume(fast):
        c = _consumer(bootstrap, max_poll_records=mpr)
        if fast:
            assert install_fast_records(c)
        c.assign(tps)
        c.seek_to_beginning(*tps)
        n = 0
        first = None
        while n < events:
            got = c.poll(timeout_ms=1000, max_records=mpr)
            if got and first is None:  # time from the first records: connection set-up excluded
                first = (time.perf_counter(), time.process_time())
            for recs in got.values():
                n += len(recs)
        wall, cpu = time.perf_counter() - first[0], time.process_time() - first[1]
        c.close()
        return n, wall, cpu

    consume(False)  # warm-up
    consume(True)
    res = {False: [], True: []}
    for r in range(rounds):
        for fast in ((False, True) if r % 2 == 0 else (True, False)):
            n, wall, cpu = consume(fast)
            res[fast].append((n / wall, cpu / n * 1e6))
            print(f"round {r} {'fast ' if fast else 'stock'}: {n / wall:,.0f} records/s, {cpu / n * 1e6:.2f} us CPU/record", flush=True)
    for fast in (False, True):
        rs = [x[0] for x in res[fast]]
        us = [x[1] for x in res[fast]]
        print(f"{'fast ' if fast else 'stock'}: records/s median {statistics.median(rs):,.0f} (min {min(rs):,.0f} max {max(rs):,.0f}); "
              f"CPU us/record median {statistics.median(us):.2f} (min {min(us):.2f} max {max(us):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
