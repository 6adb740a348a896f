"""``stream-monitor bridge pagerduty`` against a local Events API v2 stand-in, on the real broker.

The stand-in (an ``http.server`` in this process) checks every payload and answers from a script:
429 (with ``Retry-After: 1``), then 500, then 202 for the first trigger — the bridge must retry with
growing delays and commit the alert's offset only after the 202. A resolve follows, and a 400
(permanent rejection) must be skipped, not block the stream. The routing key never reaches the log.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from stream_monitor.bridges.mapping import example_alert
from stream_monitor.core.alert import AlertEvent
from tests.integration.servers import committed_total, monitor_command, stop_process, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

ROUTING_KEY = "R0uting-Key-" + "x" * 20



class FakePagerDuty:
    """Records requests (with the group's committed offset at arrival) and answers by script.

    With ``auth``, a request whose ``Authorization`` header is not ``auth`` is answered 401 (the
    script is not consumed), as a pipeline runner's webhook answers a caller without credentials.
    """

    def __init__(self, bootstrap: str, group: str, topic: str, script: list[int], auth: str | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script = list(script)
        self.auth = auth
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                committed = committed_total(bootstrap, group, topic)
                auth = self.headers.get("Authorization")
                with outer.lock:
                    if outer.auth is not None and auth != outer.auth:
                        status = 401
                    else:
                        status = outer.script.pop(0) if outer.script else 202
                    outer.requests.append(
                        {"t": time.monotonic(), "path": self.path, "ctype": self.headers.get("Content-Type"), "body": json.loads(body), "committed": committed, "status": status, "auth": auth}
                    )
                reply = {"status": "success", "message": "Event processed"} if status == 202 else {"status": "error", "message": "scripted", "errors": ["scripted"], "authorization": auth}  # echoed, as careless receivers do
                data = json.dumps(reply).encode()
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v2/enqueue"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _produce(bootstrap: str, topic: str, alert: dict[str, Any]) -> None:
    AlertEvent.model_validate(alert)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", max_block_ms=20_000)
    producer.send(topic, key=alert["fingerprint"].encode(), value=json.dumps(alert).encode())
    producer.flush(timeout=30)
    producer.close()


def test_pagerduty_mapping_retries_and_commit_after_acceptance(kafka_bootstrap, topic_factory, unique_name, tmp_path: Path):
    topic = topic_factory(partitions=1, prefix="alerts", configs={"cleanup.policy": "compact"})
    group = unique_name("pd-bridge")
    pd = FakePagerDuty(kafka_bootstrap, group, topic, script=[429, 500, 202])
    key_file = tmp_path / "routing-key"
    key_file.write_text(ROUTING_KEY + "\n")
    log_path = tmp_path / "bridge.log"
    args = monitor_command(
        "--log-level", "DEBUG", "bridge", "pagerduty", "--bootstrap-servers", kafka_bootstrap, "--alerts-topic", topic,
        "--group-id", group, "--url", pd.url, "--routing-key-file", str(key_file), "--retry-initial", "0.2", "--retry-max", "2",
        "--generator-url", "https://grafana.example/d/drift",
    )  # fmt: skip
    firing = example_alert(
        model="fraud-v3", feature="amount", severity="critical", fingerprint="0123456789abcdef",
        labels={"team": "risk-ml", "partition": "0"},
        annotations={"summary": "data drift on fraud-v3/amount: psi 0.31 > 0.2", "description": "d", "runbook_url": "https://rb.example/drift"},
    ).model_dump(mode="json")  # fmt: skip
    _produce(kafka_bootstrap, topic, firing)
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=dict(os.environ))

    def alive() -> None:
        if proc.poll() is not None:
            raise RuntimeError(f"bridge exited {proc.returncode}:\n{log_path.read_text()[-3000:]}")

    try:
        wait_for("3 attempts", lambda: len(pd.requests) >= 3, 60, 0.1, alive)
        wait_for("commit after the 202", lambda: committed_total(kafka_bootstrap, group, topic) == 1, 30, 0.2, alive)
        first3 = pd.requests[:3]
        assert [r["status"] for r in first3] == [429, 500, 202]
        # nothing was committed before PagerDuty accepted
        assert [r["committed"] for r in first3] == [0, 0, 0]
        # backoff: Retry-After 1 s honoured after the 429, then a growing exponential delay
        assert first3[1]["t"] - first3[0]["t"] >= 0.95
        assert first3[2]["t"] - first3[1]["t"] >= 0.19
        for r in first3:
            assert r["path"] == "/v2/enqueue" and r["ctype"] == "application/json"
            assert r["body"] == first3[0]["body"], "a retry must resend the same event"
        ev = first3[0]["body"]
        assert ev["routing_key"] == ROUTING_KEY
        assert ev["event_action"] == "trigger"
        assert ev["dedup_key"] == firing["fingerprint"]
        p = ev["payload"]
        assert p["summary"] == firing["annotations"]["summary"]
        assert p["source"] == "fraud-v3" and p["component"] == "amount" and p["group"] == "data_drift" and p["class"] == "psi"
        assert p["severity"] == "critical" and p["timestamp"] == firing["starts_at"]
        cd = p["custom_details"]
        assert cd["alert_id"] == firing["alert_id"] and cd["statistic"] == 0.31 and cd["labels"]["team"] == "risk-ml"
        assert cd["runbook_url"] == "https://rb.example/drift"
        assert ev["links"] == [{"href": "https://rb.example/drift", "text": "Runbook"}]
        assert ev["client"] == "stream-monitor" and ev["client_url"].startswith("https://grafana.example/d/drift?model=fraud-v3")

        # resolve: accepted at once
        resolved = dict(firing, status="resolved", ends_at="2026-01-01T01:00:00.000Z")
        _produce(kafka_bootstrap, topic, resolved)
        wait_for("the resolve", lambda: len(pd.requests) >= 4, 30, 0.1, alive)
        wait_for("commit after the resolve", lambda: committed_total(kafka_bootstrap, group, topic) == 2, 30, 0.2, alive)
        assert pd.requests[3]["body"] == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": firing["fingerprint"]}
        assert pd.requests[3]["committed"] == 1

        # a permanent rejection (400) is logged and skipped; the next alert still goes through
        with pd.lock:
            pd.script = [400, 202]
        bad = dict(firing, fingerprint="badbadbadbadbad0", alert_id="b" * 32)
        good = dict(firing, fingerprint="good000000000000", alert_id="c" * 32, severity="info")
        _produce(kafka_bootstrap, topic, bad)
        _produce(kafka_bootstrap, topic, good)
        wait_for("both sent", lambda: len(pd.requests) >= 6, 30, 0.1, alive)
        wait_for("commit past both", lambda: committed_total(kafka_bootstrap, group, topic) == 4, 30, 0.2, alive)
        assert [r["body"]["dedup_key"] for r in pd.requests[4:6]] == ["badbadbadbadbad0", "good000000000000"]
        assert pd.requests[5]["body"]["payload"]["severity"] == "info"
    finally:
        code = stop_process(proc, 30)
        pd.stop()
    assert code == 0, log_path.read_text()[-3000:]
    log_text = log_path.read_text()
    assert ROUTING_KEY not in log_text, "the routing key leaked into the log"
    assert '"alert_rejected"' in log_text and '"delivery_retry"' in log_text
