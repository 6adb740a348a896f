"""``stream-monitor bridge retraining`` with an auth header, against a webhook that wants it, on the real broker.

The webhook (the PagerDuty stand-in with ``auth``) answers 401 to a request without the right
``Authorization``. A bridge started without ``--header`` is refused: it retries, fails ``/readyz``
and commits nothing — a 401 is never a delivery. Restarted with
``--header 'Authorization: Bearer ${env:RUNNER_TOKEN}'``, the same event is delivered (after one
503 that echoes the header back) and committed; the token never appears in either run's log.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from stream_monitor.core.retraining import RetrainingEvent
from tests.integration.servers import committed_total, free_ports, http, monitor_command, stop_process, wait_for
from tests.integration.test_bridge_pagerduty import FakePagerDuty

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]


def _event() -> dict[str, Any]:
    event = {
        "retraining_id": "9f3c" + secrets.token_hex(12), "model": "credit", "model_version": "2026-11-01", "reason": "slo_breach",
        "signals": [{"alert_id": "a" * 32, "fingerprint": "0123456789abcdef", "kind": "performance", "feature": "__error_rate__",
                     "detector": "slo_error_rate", "since": "2026-11-25T09:12:00.000Z", "summary": "credit error rate 0.31 > 0.2"}],
        "since": "2026-11-25T09:12:00.000Z", "event_time": "2026-11-25T09:40:00.000Z",
        "suggested_window": {"start": "2026-11-18T09:40:00.000Z", "end": "2026-11-25T09:40:00.000Z"},
        "labels": {"team": "risk-ml"}, "monitor": {"instance": "test", "version": "0"},
    }  # fmt: skip
    return RetrainingEvent.model_validate(event).model_dump(mode="json")


def _bridge(args: list[str], log_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Any]:
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(monitor_command("--log-level", "DEBUG", *args), stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)

    def alive() -> None:
        if proc.poll() is not None:
            raise RuntimeError(f"bridge exited {proc.returncode}:\n{log_path.read_text()[-3000:]}")

    return proc, alive


def _deliveries(port: int, outcome: str) -> float:
    """``stream_monitor_bridge_deliveries_total`` of one outcome, from the bridge's /metrics."""
    status, body = http("GET", f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    return sum(
        sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == "stream_monitor_bridge_deliveries_total" and sample.labels.get("outcome") == outcome
    )


def test_a_webhook_wanting_auth_gets_the_header_and_a_401_is_never_a_delivery(kafka_bootstrap, topic_factory, unique_name, tmp_path: Path):
    topic = topic_factory(partitions=1, prefix="retraining")
    group = unique_name("retrain-bridge")
    token = "tok-" + secrets.token_hex(20)
    hook = FakePagerDuty(kafka_bootstrap, group, topic, script=[503], auth=f"Bearer {token}")
    config = tmp_path / "monitor.yaml"
    config.write_text(f"retraining:\n  enabled: true\n  topic: {json.dumps(topic)}\n")
    event = _event()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", max_block_ms=20_000)
    producer.send(topic, key=b"credit", value=json.dumps(event).encode())
    producer.flush(timeout=30)
    producer.close()
    port = free_ports(1)[0]
    base = [
        "bridge", "retraining", "-c", str(config), "--bootstrap-servers", kafka_bootstrap, "--group-id", group,
        "--url", hook.url, "--retry-initial", "0.2", "--retry-max", "1", "--metrics-port", str(port),
    ]  # fmt: skip
    env = {**os.environ, "RUNNER_TOKEN": token}
    logs = [tmp_path / "without.log", tmp_path / "with.log"]
    try:
        proc, alive = _bridge(base, logs[0], env)
        try:
            wait_for("three refused attempts", lambda: len(hook.requests) >= 3, 60, 0.1, alive)
            wait_for("/readyz failing on the 401", lambda: http("GET", f"http://127.0.0.1:{port}/readyz")[0] == 503, 30, 0.2, alive)
            assert _deliveries(port, "retry") >= 3 and _deliveries(port, "accepted") == 0
        finally:
            assert stop_process(proc, 30) == 0, logs[0].read_text()[-3000:]
        assert {r["status"] for r in hook.requests} == {401} and {r["auth"] for r in hook.requests} == {None}
        assert committed_total(kafka_bootstrap, group, topic) == 0, "a 401 must not count as delivered"
        refused_count = len(hook.requests)

        proc, alive = _bridge([*base, "--header", "Authorization: Bearer ${env:RUNNER_TOKEN}"], logs[1], env)
        try:
            wait_for("the event committed after acceptance", lambda: committed_total(kafka_bootstrap, group, topic) == 1, 60, 0.2, alive)
        finally:
            assert stop_process(proc, 30) == 0, logs[1].read_text()[-3000:]
    finally:
        hook.stop()
    authorised = hook.requests[refused_count:]
    assert [r["status"] for r in authorised] == [503, 202]
    assert {r["auth"] for r in authorised} == {f"Bearer {token}"} and {r["ctype"] for r in authorised} == {"application/json"}
    assert authorised[1]["body"] == event and authorised[0]["committed"] == 0
    for path in logs:
        text = path.read_text()
        assert token not in text and token[4:16] not in text, f"the token leaked into {path.name}"
    assert '"delivery_retry"' in logs[1].read_text() and "[redacted]" in logs[1].read_text()
