"""Kafka over SASL_SSL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) against a real broker.

The module starts its own broker with a SASL_SSL listener (``sasl_ssl_broker``: a self-signed CA,
one user for all three mechanisms) — the shared test broker stays PLAINTEXT. Every client is built
by :mod:`stream_monitor.runtime.clients` from :class:`KafkaSettings`, as the monitor and the
bridges build theirs. The password is read from a file and must never appear in any log: ours
(structlog) or kafka-python's (stdlib logging, captured at DEBUG).
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import orjson
import pytest
import structlog
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from stream_monitor.config import KafkaSettings, load_config
from stream_monitor.ops.logs import configure_logging
from stream_monitor.runtime import clients
from stream_monitor.synthetic import demo_streams, generate_events
from tests.integration.servers import monitor_command, stop_process, wait_for
from tests.kafka_fixtures import SaslSslBroker, create_topic

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def _settings(b: SaslSslBroker, mechanism: str, **kw) -> KafkaSettings:
    base = dict(
        bootstrap_servers=[b.sasl_ssl],
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_username=b.username,
        sasl_password_file=b.password_file,
        ssl_cafile=b.ca_file,
    )
    base.update(kw)
    return KafkaSettings.model_validate(base)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Everything logged meanwhile: structlog (ours) and stdlib logging at DEBUG (kafka-python)."""
    buf = io.StringIO()
    saved_structlog = structlog.get_config()
    handler = logging.StreamHandler(buf)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    configure_logging("DEBUG", "json", stream=buf)
    try:
        yield buf
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)
        structlog.configure(**saved_structlog)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_round_trip_over_sasl_ssl(sasl_ssl_broker: SaslSslBroker, mechanism: str, captured_logs: io.StringIO):
    s = _settings(sasl_ssl_broker, mechanism, group_id=f"g-{uuid.uuid4().hex[:8]}")
    topic = f"sasl-{mechanism.lower()}-{uuid.uuid4().hex[:8]}"
    admin = clients.admin(s, "t-admin")
    try:
        admin.create_topics([__import__("kafka.admin", fromlist=["NewTopic"]).NewTopic(topic, 2, 1)])
    finally:
        admin.close()
    s = s.model_copy(update={"input_topics": [topic]})
    producer = clients.producer(s, "t-producer", transactional_id=f"t-{uuid.uuid4().hex[:8]}")
    producer.init_transactions()
    producer.begin_transaction()
    for i in range(20):
        producer.send(topic, key=str(i).encode(), value=orjson.dumps({"i": i}))
    producer.commit_transaction()
    producer.close()

    consumer = clients.group_consumer(s, "t-consumer")  # read_committed, manual commits
    consumer.subscribe([topic])
    got: list[int] = []
    deadline = time.monotonic() + 60
    while len(got) < 20 and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            got += [orjson.loads(r.value)["i"] for r in records]
    consumer.commit()
    committed = {p: consumer.committed(TopicPartition(topic, p)) for p in (0, 1)}
    consumer.close()
    assert sorted(got) == list(range(20))
    assert sum(v or 0 for v in committed.values()) >= 20  # transaction markers take offsets too

    logs = captured_logs.getvalue()
    assert "SASL" in logs or "sasl" in logs or "Authenticated" in logs, "kafka-python DEBUG logs were not captured"
    password = sasl_ssl_broker.password_file.read_text().strip()
    assert password not in logs, "the SASL password appeared in a log"


FAST_FAIL = {"producer": {"bootstrap_timeout_ms": 8000}}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_wrong_password_is_refused_without_echoing_it(sasl_ssl_broker: SaslSslBroker, mechanism: str, tmp_path: Path, captured_logs: io.StringIO):
    wrong = tmp_path / "wrong-password"
    wrong.write_text("definitely-not-the-password-7f3a")
    s = _settings(sasl_ssl_broker, mechanism, sasl_password_file=wrong, client_options=FAST_FAIL)
    with pytest.raises(KafkaError) as info:
        producer = clients.producer(s, "t-wrong", None)
        producer.send("whatever", b"x").get(timeout=20)
    logs = captured_logs.getvalue()
    # the broker answers SaslAuthenticationFailed and closes the connection; kafka-python reads
    # the answer or, when the close wins the race, sees the socket disconnect
    assert "SaslAuthenticationFailedError" in logs or "socket disconnected" in logs, "the refusal should be logged"
    assert "definitely-not-the-password" not in str(info.value)
    assert "definitely-not-the-password" not in logs


def test_broker_certificate_is_verified(sasl_ssl_broker: SaslSslBroker, captured_logs: io.StringIO):
    """Without our CA the TLS handshake must fail: the client does verify the broker."""
    s = _settings(sasl_ssl_broker, "PLAIN", ssl_cafile=None, client_options=FAST_FAIL)
    with pytest.raises(KafkaError):
        producer = clients.producer(s, "t-untrusted", None)
        producer.send("whatever", b"x").get(timeout=20)
    assert "CERTIFICATE_VERIFY_FAILED" in captured_logs.getvalue()


def test_monitor_runs_over_sasl_ssl_with_secrets_from_env_and_file(sasl_ssl_broker: SaslSslBroker, tmp_path: Path):
    """`stream-monitor run` configured only by environment variables, SCRAM over TLS, at DEBUG."""
    b = sasl_ssl_broker
    topic = create_topic(b.plaintext, f"events-{uuid.uuid4().hex[:8]}", 1)
    alerts = f"alerts-{uuid.uuid4().hex[:8]}"
    group = f"mon-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=b.plaintext, linger_ms=20)
    fraud, _ = demo_streams(6000, 42)
    for e in generate_events(fraud):
        producer.send(topic, key=b"fraud-v3", value=orjson.dumps(e))
    producer.flush(30)
    producer.close()

    password = b.password_file.read_text().strip()
    state_secret = "state-secret-" + uuid.uuid4().hex
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STREAM_MONITOR_")},
        "STREAM_MONITOR_BOOTSTRAP_SERVERS": b.sasl_ssl,
        "STREAM_MONITOR_INPUT_TOPIC": topic,
        "STREAM_MONITOR_ALERTS_TOPIC": alerts,
        "STREAM_MONITOR_GROUP_ID": group,
        "STREAM_MONITOR_STATE_SECRET": state_secret,
        "STREAM_MONITOR_METRICS_PORT": "0",
        "STREAM_MONITOR_LOG_LEVEL": "DEBUG",
        "STREAM_MONITOR_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "STREAM_MONITOR_KAFKA__SASL_MECHANISM": "SCRAM-SHA-256",
        "STREAM_MONITOR_KAFKA__SASL_USERNAME": b.username,
        "STREAM_MONITOR_KAFKA__SASL_PASSWORD_FILE": str(b.password_file),
        "STREAM_MONITOR_KAFKA__SSL_CAFILE": str(b.ca_file),
        "STREAM_MONITOR_KAFKA__SESSION_TIMEOUT_MS": "6000",
    }
    log_path = tmp_path / "monitor.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(monitor_command("run"), stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)

    def alive() -> None:
        if proc.poll() is not None:
            raise RuntimeError(f"monitor exited {proc.returncode}:\n{log_path.read_text()[-3000:]}")

    def alerts_written() -> int:
        c = KafkaConsumer(bootstrap_servers=b.plaintext, isolation_level="read_committed", enable_auto_commit=False)
        try:
            tps = [TopicPartition(alerts, p) for p in c.partitions_for_topic(alerts) or []]
            return sum(c.end_offsets(tps).values()) if tps else 0
        finally:
            c.close()

    try:
        wait_for("alerts from the monitor over SASL_SSL", alerts_written, 300, 1.0, alive)  # TLS + DEBUG logs on a busy machine
    finally:
        code = stop_process(proc, 30)
    text = log_path.read_text()
    assert code == 0, text[-3000:]
    assert '"monitor_started"' in text
    assert password not in text, "the SASL password appeared in the monitor's log"
    assert state_secret not in text

    # check-config explains the security settings without printing the secret given by env
    cfg_env = {**env, "STREAM_MONITOR_KAFKA__SASL_PASSWORD_FILE": "", "STREAM_MONITOR_KAFKA__SASL_PASSWORD": password}
    cfg_env.pop("STREAM_MONITOR_KAFKA__SASL_PASSWORD_FILE")
    cfg = load_config(None, env=cfg_env)
    assert cfg.kafka.password() == password and password not in repr(cfg) and password not in str(cfg.model_dump())
