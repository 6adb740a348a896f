"""A backlog's partitions count as quiet from their assignment, all of them at once (real broker).

kafka-python learns a partition's high watermark when it reads that partition's part of a fetch
response, one partition after another: with a backlog, the last partition's is read seconds after
the first's. Counted from then, the caught-up grace (``kafka.caught_up_grace_ms``) of a backlog read
faster than the grace held the end of the judgement back by that much more. The monitor asks the
broker for the end offsets when partitions are assigned (``QuietWatch.observe_ends``): every
partition of a backlog is seen at that one moment.
"""

from __future__ import annotations

import orjson
import pytest
from kafka import KafkaProducer, TopicPartition

from stream_monitor.runtime.app import MonitorApp
from stream_monitor.runtime.idle import QuietWatch
from stream_monitor.synthetic import demo_streams, generate_events
from tests.integration.harness import InProcessMonitor, app_config, wait_for_lag_zero

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

PARTITIONS = 3
KEEP = {"retention.ms": "-1"}  # the synthetic events are dated 2026-01-01: keep them whatever the clock says


class Ticks:
    """A clock that moves one step per reading: two partitions seen at the same step were seen by one look."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_every_partition_of_a_backlog_is_seen_at_its_assignment(kafka_bootstrap, topic_factory, unique_name):
    topic = topic_factory(partitions=PARTITIONS, configs=KEEP)
    fraud, _ = demo_streams(3000, 7)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20, acks="all")
    ends = [0] * PARTITIONS
    for i, event in enumerate(generate_events(fraud)):
        producer.send(topic, value=orjson.dumps(event), partition=i % PARTITIONS)
        ends[i % PARTITIONS] += 1
    producer.flush(60)
    producer.close()
    group = unique_name("group")
    # ten records a poll: the first polls read the first partition's part of the fetch response only
    cfg = app_config(kafka_bootstrap, [topic], unique_name("alerts"), group, **{"kafka.max_poll_records": 10})
    app = MonitorApp(cfg)
    app.quiet = QuietWatch(clock=Ticks())
    monitor = InProcessMonitor.start(cfg, app)
    try:
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=180, check=monitor.check_alive)
        noted = dict(app.quiet._seen)  # (taken while the partitions are assigned: a revocation forgets them)
    finally:
        assert monitor.stop() == 0
    seen = {tp: noted.get(tp) for tp in (TopicPartition(topic, p) for p in range(PARTITIONS))}
    assert all(s is not None for s in seen.values()), seen
    assert {tp.partition: s[0] for tp, s in seen.items()} == dict(enumerate(ends)), "the high watermarks seen are the ends"
    assert len({s[1] for s in seen.values()}) == 1, f"the partitions were first seen at different looks: {seen}"
