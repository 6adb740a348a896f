"""Retraining events on the real broker: published in the monitor's transactions, exactly once across a restart.

Stream: one binary classifier with inline labels, 100 ms apart; from event 3000 its error rate rises
from 5 % to 35 % (above its SLO of 20 %) and feature x shifts by 3 sd. The performance pages ask for
retraining at once; the drift on x asks once it persisted 140 s of event time, which falls after the
restart, so that event needs the trigger's state as the first run checkpointed it. Then
``bridge retraining`` delivers both to a local webhook, committing only what the webhook accepted.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import orjson
import pytest

from stream_monitor.bridges.options import BridgeOptions
from stream_monitor.bridges.runner import BridgeRunner
from stream_monitor.bridges.sinks import build_sink
from stream_monitor.config import AppConfig
from stream_monitor.core.events import parse_event_time
from stream_monitor.ops.metrics import BridgeMetrics
from tests.integration.harness import InProcessMonitor, app_config, produce, read_all, wait_for_lag_zero
from tests.integration.servers import committed_total, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

T0 = 1_767_225_600_000
N, CHANGE, RESTART = 6000, 3000, 4000


def _events() -> list[dict]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(N):
        pred = int(rng.integers(0, 2))
        wrong = rng.random() < (0.05 if i < CHANGE else 0.35)
        x = float(rng.normal(3.0 if i >= CHANGE else 0.0))
        out.append({"event_id": f"e{i}", "model": "credit", "ts": T0 + 100 * i, "features": {"x": x}, "prediction": pred, "label": (1 - pred) if wrong else pred})
    return out


def test_a_breached_slo_and_a_persisting_drift_give_one_retraining_event_each_across_a_restart(kafka_bootstrap, topic_factory, unique_name):
    inputs = topic_factory(partitions=2)
    alerts_topic, group, retrain_topic = unique_name("alerts"), unique_name("group"), unique_name("retrain")
    extra = {
        "retraining.enabled": True, "retraining.topic": retrain_topic, "retraining.cooldown_seconds": 0,
        "retraining.drift_persists_seconds": 140, "models.credit.slo.error_rate.max": 0.2, "models.credit.labels.team": "risk",
    }  # fmt: skip
    cfg = app_config(kafka_bootstrap, [inputs], alerts_topic, group, **extra)
    events = _events()
    for run, part in enumerate((events[:RESTART], events[RESTART:])):
        produce(kafka_bootstrap, inputs, part, key_field="event_id")
        monitor = InProcessMonitor.start(cfg)
        try:
            wait_for_lag_zero(kafka_bootstrap, group, [inputs], timeout_s=120, check=monitor.check_alive)
        finally:
            assert monitor.stop() == 0
        if run == 0:  # the drift has not persisted long enough yet
            assert [orjson.loads(v)["reason"] for _, v in read_all(kafka_bootstrap, retrain_topic)] == ["slo_breach"]
    records = read_all(kafka_bootstrap, retrain_topic)
    got = [orjson.loads(v) for _, v in records]
    assert [e["reason"] for e in got] == ["slo_breach", "drift_persisted"], got
    assert {k for k, _ in records} == {b"credit"} and len({e["retraining_id"] for e in got}) == 2
    slo, drift = got
    assert {s["kind"] for s in slo["signals"]} == {"performance"} and slo["labels"] == {"team": "risk"}
    assert [s["feature"] for s in drift["signals"]] == ["x"]
    # the drift event is due exactly drift_persists_seconds after its page started
    assert parse_event_time(drift["event_time"]) == parse_event_time(drift["since"]) + 140_000
    alerts = [orjson.loads(v) for _, v in read_all(kafka_bootstrap, alerts_topic)]
    firing = {a["alert_id"] for a in alerts if a["status"] == "firing"}
    assert {s["alert_id"] for e in got for s in e["signals"]} <= firing
    _bridge_delivers(kafka_bootstrap, cfg, retrain_topic, unique_name("bridge"), [v for _, v in records])


def _bridge_delivers(bootstrap: str, cfg: AppConfig, topic: str, group: str, published: list[bytes]) -> None:
    """The retraining bridge POSTs each event as published; the first answer (503) is retried, offsets follow acceptance."""
    received: list[tuple[int, bytes, int]] = []  # (status answered, body, offsets committed on arrival)
    script = [503]

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = script.pop(0) if script else 202
            received.append((status, body, committed_total(bootstrap, group, topic)))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop = threading.Event()
    opts = BridgeOptions(target="retraining", urls=(f"http://127.0.0.1:{server.server_address[1]}/retrain",), group_id=group, retry_initial_s=0.2, retry_max_s=0.5)
    metrics = BridgeMetrics("retraining")
    runner = BridgeRunner(cfg.kafka, opts, build_sink(opts, metrics, stop), metrics, stop, "test-bridge-retraining", topic=topic)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        def delivered() -> bool | None:
            done = sum(1 for status, _, _ in received if status == 202) >= len(published)
            return (done and committed_total(bootstrap, group, topic) >= len(published)) or None  # markers take offsets too

        wait_for("both events accepted and committed", delivered, timeout_s=60)
    finally:
        stop.set()
        thread.join(timeout=30)
        server.shutdown()
        server.server_close()
    accepted = [body for status, body, _ in received if status == 202]
    assert [orjson.loads(b) for b in accepted] == [orjson.loads(p) for p in published]
    assert received[0][0] == 503 and received[0][2] == 0  # nothing committed before the webhook accepted
