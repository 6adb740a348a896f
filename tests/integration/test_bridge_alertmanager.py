"""``stream-monitor bridge alertmanager`` against a real Alertmanager and the real broker.

Alert events are crafted (validated against :class:`AlertEvent`) and produced to a compacted
alert topic; the bridge runs as a subprocess (the CLI, as deployed). We read Alertmanager's own
API (``GET /api/v2/alerts``) to see the alert become active, be re-sent, escalate, and resolve,
and the bridge group's committed offsets to see that a commit follows acceptance.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from stream_monitor.bridges.mapping import alertname, example_alert
from stream_monitor.core.alert import AlertEvent
from tests.integration.servers import committed_total, Server, alertmanager_server, free_ports, http, monitor_command, stop_process, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]


def _iso_ago(seconds: float) -> str:
    t = time.time() - seconds
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def _alert(model: str, **overrides: Any) -> dict[str, Any]:
    base = example_alert(
        model=model,
        fingerprint=f"fp-{model}"[-16:],
        starts_at=_iso_ago(300),
        event_time=_iso_ago(299),
        labels={"team": "risk-ml", "owner": "ana", "partition": "0", "runbook-id": "RB-7"},
        annotations={"summary": f"data drift on {model}/amount", "runbook_url": "https://runbooks.example/drift"},
    ).model_dump(mode="json")
    base.update(overrides)
    AlertEvent.model_validate(base)  # crafted events obey the contract
    return base


def _produce(bootstrap: str, topic: str, *alerts: dict[str, Any]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_block_ms=20_000)
    for a in alerts:
        producer.send(topic, key=a["fingerprint"].encode(), value=json.dumps(a).encode())
    producer.flush(timeout=30)
    producer.close()



def _end(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


def _am_alerts(am: Server, model: str) -> list[dict[str, Any]]:
    """Alerts Alertmanager holds as not-resolved for ``model`` (its API omits resolved ones)."""
    query = urllib.parse.urlencode({"filter": f'model="{model}"'})
    status, body = http("GET", f"{am.url}/api/v2/alerts?{query}")
    assert status == 200, body
    return list(json.loads(body))


class Bridge:
    def __init__(self, bootstrap: str, topic: str, group: str, url: str, log_path: Path, *extra: str) -> None:
        self.log_path = log_path
        args = monitor_command(
            "bridge", "alertmanager", "--bootstrap-servers", bootstrap, "--alerts-topic", topic, "--group-id", group,
            "--url", url, "--resend-interval", "1", "--retry-initial", "0.2", "--retry-max", "1",
            "--generator-url", "https://grafana.example/d/drift?var-model={model}&var-feature={feature}", "--label", "cluster=eu-1",
            *extra,
        )  # fmt: skip
        with open(log_path, "ab") as log_file:
            self.proc = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=dict(os.environ))

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"bridge exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> int:
        return stop_process(self.proc, 30)


@pytest.fixture
def alertmanager(tmp_path: Path):
    am = alertmanager_server(tmp_path / "alertmanager").start()
    yield am
    am.stop()


def test_fire_resend_escalate_resolve(kafka_bootstrap, topic_factory, unique_name, alertmanager: Server, tmp_path: Path):
    topic = topic_factory(partitions=1, prefix="alerts", configs={"cleanup.policy": "compact"})
    group = unique_name("bridge")
    model = unique_name("model")
    firing = _alert(model)
    _produce(kafka_bootstrap, topic, firing)
    bridge = Bridge(kafka_bootstrap, topic, group, alertmanager.url, tmp_path / "bridge.log")
    try:
        active = wait_for("the alert active in Alertmanager", lambda: _am_alerts(alertmanager, model), 60, 0.25, bridge.check_alive)
        assert len(active) == 1
        a = active[0]
        assert a["status"]["state"] == "active"
        labels = a["labels"]
        assert labels["alertname"] == alertname("data_drift") == "StreamMonitorDataDrift"
        assert {k: labels[k] for k in ("model", "feature", "detector", "severity", "kind", "partition")} == {
            "model": model, "feature": "amount", "detector": "psi", "severity": "warning", "kind": "data_drift", "partition": "0",
        }  # fmt: skip
        assert labels["team"] == "risk-ml" and labels["owner"] == "ana" and labels["cluster"] == "eu-1"
        assert labels["runbook_id"] == "RB-7"  # sanitised label name
        ann = a["annotations"]
        assert ann["summary"] == firing["annotations"]["summary"] and ann["runbook_url"] == "https://runbooks.example/drift"
        assert ann["fingerprint"] == firing["fingerprint"] and ann["statistic"] == "0.31" and ann["threshold"] == "0.2"
        assert a["generatorURL"] == f"https://grafana.example/d/drift?var-model={model}&var-feature=amount"
        assert a["startsAt"].startswith(firing["starts_at"][:19])
        # committed only after Alertmanager accepted: here the alert is in Alertmanager
        wait_for("bridge commit", lambda: committed_total(kafka_bootstrap, group, topic) == _end(kafka_bootstrap, topic), 30, 0.25)

        # re-sent every --resend-interval (1 s): Alertmanager's updatedAt and endsAt move on
        first_update, first_end = a["updatedAt"], a["endsAt"]
        wait_for(
            "a re-send",
            lambda: (x := _am_alerts(alertmanager, model)) and x[0]["updatedAt"] > first_update and x[0]["endsAt"] > first_end,
            15,
            0.25,
            bridge.check_alive,
        )

        # escalation: same fingerprint, critical; the warning label set is ended, one alert stays
        escalated = dict(firing, severity="critical", escalated=True, statistic=0.9)
        _produce(kafka_bootstrap, topic, escalated)
        wait_for(
            "only the critical alert active",
            lambda: [x["labels"]["severity"] for x in _am_alerts(alertmanager, model)] == ["critical"],
            30,
            0.25,
            bridge.check_alive,
        )

        # resolve: the alert leaves Alertmanager's active set
        resolved = dict(escalated, status="resolved", ends_at=_iso_ago(1))
        AlertEvent.model_validate(resolved)
        _produce(kafka_bootstrap, topic, resolved)
        wait_for("the alert resolved in Alertmanager", lambda: _am_alerts(alertmanager, model) == [], 30, 0.25, bridge.check_alive)
        wait_for("bridge commit", lambda: committed_total(kafka_bootstrap, group, topic) == _end(kafka_bootstrap, topic), 30, 0.25)
        time.sleep(2.5)  # resends must not bring it back
        assert _am_alerts(alertmanager, model) == []
    finally:
        code = bridge.stop()
    assert code == 0, bridge.log_path.read_text()[-3000:]
    log_text = bridge.log_path.read_text()
    assert '"alert_forwarded"' in log_text and '"bridge_stopped"' in log_text


def test_nothing_committed_until_alertmanager_accepts(kafka_bootstrap, topic_factory, unique_name, tmp_path: Path):
    topic = topic_factory(partitions=2, prefix="alerts", configs={"cleanup.policy": "compact"})
    group = unique_name("bridge")
    model = unique_name("model")
    _produce(kafka_bootstrap, topic, _alert(model), _alert(model + "-b", fingerprint="fp-second-alert", source={"topic": "t", "partition": 1, "offset": 5}))
    (port,) = free_ports(1)
    am = alertmanager_server(tmp_path / "alertmanager", port)
    bridge = Bridge(kafka_bootstrap, topic, group, am.url, tmp_path / "bridge.log")
    try:
        # Alertmanager is down: the bridge retries and commits nothing
        wait_for("delivery retries", lambda: "delivery_retry" in bridge.log_path.read_text(), 60, 0.25, bridge.check_alive)
        time.sleep(2.0)
        bridge.check_alive()
        assert committed_total(kafka_bootstrap, group, topic) == 0
        am.start()
        wait_for("the alerts in Alertmanager", lambda: _am_alerts(am, model) and _am_alerts(am, model + "-b"), 60, 0.25, bridge.check_alive)
        wait_for("bridge commit", lambda: committed_total(kafka_bootstrap, group, topic) == _end(kafka_bootstrap, topic) == 2, 30, 0.25)
    finally:
        code = bridge.stop()
        am.stop()
    assert code == 0


def test_restarted_bridge_keeps_firing_alerts_alive(kafka_bootstrap, topic_factory, unique_name, alertmanager: Server, tmp_path: Path):
    """A new bridge process rebuilds the firing set from the (compacted) topic and re-sends it."""
    topic = topic_factory(partitions=1, prefix="alerts", configs={"cleanup.policy": "compact"})
    group = unique_name("bridge")
    model = unique_name("model")
    _produce(kafka_bootstrap, topic, _alert(model))
    first = Bridge(kafka_bootstrap, topic, group, alertmanager.url, tmp_path / "bridge1.log")
    try:
        wait_for("the alert active", lambda: _am_alerts(alertmanager, model), 60, 0.25, first.check_alive)
        wait_for("bridge commit", lambda: committed_total(kafka_bootstrap, group, topic) == 1, 30, 0.25)
    finally:
        assert first.stop() == 0
    before = _am_alerts(alertmanager, model)[0]["updatedAt"]
    second = Bridge(kafka_bootstrap, topic, group, alertmanager.url, tmp_path / "bridge2.log")
    try:
        # no new record arrives: only the rebuilt state can make the second bridge re-send it
        wait_for(
            "a re-send from the restarted bridge",
            lambda: (x := _am_alerts(alertmanager, model)) and x[0]["updatedAt"] > before,
            30,
            0.25,
            second.check_alive,
        )
        assert '"state_restored"' in (tmp_path / "bridge2.log").read_text()
    finally:
        assert second.stop() == 0
