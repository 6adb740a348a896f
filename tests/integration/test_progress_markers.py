"""Alerts come while input keeps flowing when the input is keyed by model (real broker).

Each model's events sit on one input partition (keyed by model), so an input partition sends rows
to one judging task only, yet every task expects every input partition. The other tasks learn how
far that partition has read from its progress markers: their event-time order moves on while the
input keeps flowing, instead of waiting for the end of input or a full buffer.
"""

from __future__ import annotations

import threading
import time
import zlib
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from stream_monitor.synthetic import demo_streams, generate_events
from tests.integration.harness import InProcessMonitor, app_config, read_alerts

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

N = 4000  # events per model
PARTITIONS = 3
KEEP = {"retention.ms": "-1"}  # the synthetic events are dated 2026-01-01: keep them whatever the clock says


def _streams() -> dict[str, list[dict[str, Any]]]:
    fraud, churn = demo_streams(N, 42)
    return {fraud.model: list(generate_events(fraud)), churn.model: list(generate_events(churn))}


class KeepFlowing(threading.Thread):
    """Goes on producing each model's last event again, later in event time, until stopped."""

    def __init__(self, producer: KafkaProducer, topic: str, last: dict[str, tuple[int, dict[str, Any]]]) -> None:
        super().__init__(daemon=True)
        self.producer, self.topic, self.last = producer, topic, last
        self.done = threading.Event()
        self.sent = 0

    def run(self) -> None:
        k = 0
        while not self.done.is_set():
            k += 1
            for model, (partition, event) in self.last.items():
                e = dict(event, ts=event["ts"] + 1000 * k, event_id=f"keep-{model}-{k}")
                self.producer.send(self.topic, key=model.encode(), value=orjson.dumps(e), partition=partition, timestamp_ms=e["ts"])
            self.producer.flush(30)
            self.sent += 1
            self.done.wait(0.2)


def test_alerts_come_while_input_keyed_by_model_keeps_flowing(kafka_bootstrap, topic_factory, unique_name):
    streams = _streams()
    models = sorted(streams)
    tasks = {zlib.crc32(m.encode()) % PARTITIONS for m in models}
    assert len(tasks) == len(models), "the test needs the models judged by different tasks"
    topic = topic_factory(partitions=PARTITIONS, configs=KEEP)
    placement = {m: i for i, m in enumerate(models)}  # each model on its own input partition; the last one stays silent
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20, acks="all", batch_size=256 * 1024)
    for m in models:
        for e in streams[m]:
            producer.send(topic, key=m.encode(), value=orjson.dumps(e), partition=placement[m], timestamp_ms=e["ts"])
    producer.flush(60)
    alerts_topic, group = unique_name("alerts"), unique_name("group")
    # the empty input partition says it is caught up; through the internal topic, where progress markers go
    cfg = app_config(kafka_bootstrap, [topic], alerts_topic, group, **{"kafka.judge_locally": False})
    flowing = KeepFlowing(producer, topic, {m: (placement[m], streams[m][-1]) for m in models})
    monitor = InProcessMonitor.start(cfg)
    flowing.start()
    alerts: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 240
        while not alerts and time.monotonic() < deadline:
            monitor.check_alive()
            assert flowing.is_alive(), "the producer thread stopped"
            alerts = [a for a in read_alerts(kafka_bootstrap, alerts_topic) if a["status"] == "firing"]
            time.sleep(1.0)
        still_flowing = flowing.is_alive() and not flowing.done.is_set()
    finally:
        flowing.done.set()
        flowing.join(60)
        producer.close()
        assert monitor.stop() == 0
    assert still_flowing
    assert alerts, f"no alert while the input kept flowing ({flowing.sent} rounds of later events produced)"
    assert {a["model"] for a in alerts} == {"fraud-v3"}
