"""A backlog's partitions count as quiet from their assignment, all of them at once (real broker).

kafka-python learns a partition's high watermark when it reads that partition's part of a fetch
response, one partition after another: with a backlog, the last partition's is read seconds after
the first's. Counted from then, the caught-up grace (``kafka.caught_up_grace_ms``) of a backlog read
faster than the grace held the end of the judgement back by that much more. The monitor asks the
broker for the end offsets when partitions are assigned (``QuietWatch.observe_ends``): every
partition of a backlog is seen at that one moment.
"""

from __future__ import annotations

import time
from typing import Callable

import orjson
import pytest
from kafka import KafkaProducer, TopicPartition

from stream_monitor.runtime.app import MonitorApp
from stream_monitor.runtime.drain import Drain
from stream_monitor.runtime.idle import QuietWatch
from stream_monitor.runtime.kafka_compat import caught_up
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


def test_a_marker_of_a_partition_read_here_counts_its_quiet_as_of_its_arrival(kafka_bootstrap, topic_factory, unique_name, monkeypatch):
    """A caught-up marker carries the quiet its reader saw when sending it; where the judge reads that partition too,
    its own watch gives the quiet as of the marker's arrival (``QuietWatch.here``): more, by the hop's time. With a
    clock that moves one step per reading, every marker of a source read here arrives with more quiet than it left with."""
    from stream_monitor.core import exchange

    topic = topic_factory(partitions=PARTITIONS, configs=KEEP)
    fraud, _ = demo_streams(1500, 7)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20, acks="all")
    for i, event in enumerate(generate_events(fraud)):
        producer.send(topic, value=orjson.dumps(event), partition=i % PARTITIONS)
    producer.flush(60)
    producer.close()
    group = unique_name("group")
    # markers go through the internal topic (one instance owning every partition judges where it reads, with none)
    cfg = app_config(kafka_bootstrap, [topic], unique_name("alerts"), group, **{"kafka.judge_locally": False})
    app = MonitorApp(cfg)
    app.quiet = QuietWatch(clock=Ticks())
    seen: list[tuple[str, object, float]] = []  # in order: each caught-up marker read, then what here() said of its source
    decode, here = exchange.decode_record, app.quiet.here

    def decode_spy(*args: object, **kwargs: object) -> object:
        got = decode(*args, **kwargs)
        if isinstance(got, exchange.Progress) and got.caught_up:
            seen.append(("marker", got.source, (got.quiet_ms or 0) / 1000.0))
        return got

    def here_spy(source: object) -> float:
        value = here(source)
        seen.append(("here", source, value))
        return value

    monkeypatch.setattr(exchange, "decode_record", decode_spy)
    monkeypatch.setattr(app.quiet, "here", here_spy)
    monitor = InProcessMonitor.start(cfg, app)
    try:
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=180, check=monitor.check_alive)
        deadline = time.monotonic() + 60  # (the markers are on the internal topic: read by now, as a rule)
        while len({source for kind, source, _ in seen if kind == "marker"}) < PARTITIONS and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        assert monitor.stop() == 0
    pairs = [(a, b) for a, b in zip(seen, seen[1:]) if a[0] == "marker" and b[0] == "here"]
    assert len(pairs) >= PARTITIONS, seen[:20]
    assert all(b[1] == a[1] and b[2] > a[2] > 0 for a, b in pairs), pairs[:10]


def _produce_stamped(bootstrap: str, topic: str, events: int, stamp_ms: Callable[[int], int | None]) -> dict[TopicPartition, int]:
    """The demo's fraud stream, round-robin over the partitions, partition p's records stamped ``stamp_ms(p)`` (None: now)."""
    fraud, _ = demo_streams(events, 7)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    ends = [0] * PARTITIONS
    for i, event in enumerate(generate_events(fraud)):
        p = i % PARTITIONS
        producer.send(topic, value=orjson.dumps(event), partition=p, timestamp_ms=stamp_ms(p))
        ends[p] += 1
    producer.flush(60)
    producer.close()
    return {TopicPartition(topic, p): end for p, end in enumerate(ends)}


def test_a_backlog_stamped_longer_than_the_grace_ago_is_judged_to_its_end_at_once(kafka_bootstrap, topic_factory, unique_name):
    """Records all stamped an hour ago: the partitions had not grown for longer than the grace (10 min here) when they
    were assigned, so their last rows are judged once they are read. Counted from the assignment, the end of the
    judgement would wait the ten minutes, and this test's bound (4 min) would fail."""
    topic = topic_factory(partitions=PARTITIONS, configs=KEEP)
    hour_ago = int(time.time() * 1000) - 3_600_000
    ends = _produce_stamped(kafka_bootstrap, topic, 1500, lambda p: hour_ago)
    cfg = app_config(kafka_bootstrap, [topic], unique_name("alerts"), unique_name("group"), **{"kafka.caught_up_grace_ms": 600_000})
    app = MonitorApp(cfg)
    drain = app.on_checkpoint = Drain(app)
    drain.expect(ends)
    monitor = InProcessMonitor.start(cfg, app)
    try:
        deadline = time.monotonic() + 240
        while drain.done is None and time.monotonic() < deadline:
            monitor.check_alive()
            time.sleep(0.2)
    finally:
        assert monitor.stop() == 0
    assert drain.done is not None, "the backlog's last rows still wait for the grace"
    assert app.stats.alerts > 0  # (judged: the fraud stream drifts)


def _read(app: MonitorApp, drain: Drain, ends: dict[TopicPartition, int]) -> bool:
    """Has ``app`` read its input to ``ends``? Its committed offsets say so through the internal topic; judging where it
    reads (``kafka.judge_locally``) they follow the waiting rows, so its reader's positions tell."""
    if app.local:
        return all(caught_up(app.consumer, tp) for tp in ends)
    return bool(drain.reached(drain.committed))


def test_a_partition_stamped_recently_still_waits_the_grace(kafka_bootstrap, topic_factory, unique_name):
    """The same with one partition's records stamped now, and with the switch off: those partitions count as quiet
    from their assignment only (``QuietWatch``'s start is not moved back), so the last rows wait for the grace."""
    topic = topic_factory(partitions=PARTITIONS, configs=KEEP)
    hour_ago = int(time.time() * 1000) - 3_600_000
    ends = _produce_stamped(kafka_bootstrap, topic, 1500, lambda p: None if p == 0 else hour_ago)
    starts: dict[bool, dict[TopicPartition, tuple[int, float]]] = {}
    for switch in (True, False):
        cfg = app_config(
            kafka_bootstrap, [topic], unique_name("alerts"), unique_name("group"),
            **{"kafka.caught_up_grace_ms": 600_000, "kafka.grace_from_record_timestamps": switch},
        )
        app = MonitorApp(cfg)
        drain = app.on_checkpoint = Drain(app)
        drain.expect(ends)
        assigned_at = time.monotonic()
        monitor = InProcessMonitor.start(cfg, app)
        try:
            # the input read (through the internal topic, committed; judged where read, every partition at its end), a row waiting
            deadline = time.monotonic() + 180
            while not (_read(app, drain, ends) and any(task.queued() for task in list(app.tasks.values()))):
                assert time.monotonic() < deadline, f"not read, or no row waits (switch {switch}): {drain.committed}"
                monitor.check_alive()
                time.sleep(0.2)
            starts[switch] = {tp: app.quiet._seen[tp] for tp in ends}
            time.sleep(2.0)  # a few more checkpoints: the last rows still wait
        finally:
            assert monitor.stop() == 0
        assert drain.done is None, f"judged to the end without the grace (switch {switch})"
    recent = TopicPartition(topic, 0)
    for tp, (end, since) in starts[True].items():
        assert end == ends[tp]
        assert (since < assigned_at - 500) is (tp != recent), (tp, since, assigned_at)  # moved back by the grace: old stamps only
    assert all(since > assigned_at for _, since in starts[False].values()), "switched off: counted from the assignment"
