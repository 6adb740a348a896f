"""``stream-monitor demo``: a local broker, a drifting event stream, the monitor, alerts as they fire.

The demo is the real thing wired together: the project's Kafka broker (``deploy/kafka/broker.sh``),
a producer of two models' inference events (``fraud-v3``'s inputs drift at known points,
``churn-v1``'s do not but its labels stop agreeing with its predictions halfway),
:class:`~stream_monitor.runtime.app.MonitorApp` with exactly-once checkpoints, and a ``read_committed`` consumer of the alert topic that prints each alert once it is committed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient

from stream_monitor.commands.common import EXIT_OK, EXIT_RUNTIME
from stream_monitor.commands.console import format_alert
from stream_monitor.ops.collector import tune_collector
from stream_monitor.core.alert import AlertEvent
from stream_monitor.config import AppConfig, load_config
from stream_monitor.demo_stream import produce_round
from stream_monitor.runtime.app import MonitorApp
from stream_monitor.runtime.drain import Drain
from stream_monitor.runtime.kafka_compat import topic_partitions
from stream_monitor.synthetic import demo_streams

REPO_ROOT = Path(__file__).resolve().parents[2]
BROKER_SH = REPO_ROOT / "deploy" / "kafka" / "broker.sh"
EXAMPLE_STREAM = REPO_ROOT / "examples" / "demo-events.jsonl.gz"
STALL_S = 60.0  # no monitored record for this long after the producer finished: stop
SETTLE_S = 1.5  # after the checkpoint that judged the last event: its alerts are committed, read them


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _missing_tools() -> list[str]:
    return [tool for tool in ("java", "mvn") if shutil.which(tool) is None]


def _start_broker(port: int) -> str:
    env = {**os.environ, "KAFKA_PORT": str(port), "KAFKA_OWNER_PID": str(os.getpid())}
    _out(f"starting the local Kafka broker on 127.0.0.1:{port} (first run fetches ~44 MB of jars from Maven Central)...")
    proc = subprocess.run(["bash", str(BROKER_SH), "start"], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"broker did not start:\n{proc.stderr[-3000:]}")
    return proc.stdout.strip().splitlines()[-1]


def _stop_broker(port: int) -> None:
    subprocess.run(["bash", str(BROKER_SH), "stop"], env={**os.environ, "KAFKA_PORT": str(port)}, capture_output=True)


def _produce(bootstrap: str, topic: str, n_events: int, rate: float, seed: int, stop: threading.Event, done: threading.Event) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    try:
        produce_round(producer, topic, n_events, seed, rate, stop)
    finally:
        producer.close()
        done.set()


def _explain_missing_tools(missing: list[str]) -> None:
    _out(
        f"The demo needs a local Kafka broker, which needs {' and '.join(missing)} (not found).\n"
        "  Install them:   apt-get install openjdk-17-jre-headless maven\n"
        "  Or with Docker: docker compose up   (broker, monitor and demo producer)\n"
        "  Or without any broker, replay the shipped example stream:\n"
        f"    stream-monitor replay --input {EXAMPLE_STREAM.relative_to(REPO_ROOT)} --alerts-out alerts.jsonl --report report.html"
    )


def _create_topics(bootstrap: str, topic: str, alerts_topic: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}, alerts_topic: {"num_partitions": 1, "replication_factor": 1}})
    admin.close()


def demo_config(bootstrap: str, run_id: str, topic: str, alerts_topic: str) -> AppConfig:
    """The demo monitor's config: its own topics, group, labels and a fresh random state secret."""
    return load_config(
        None,
        env={},
        overrides={
            "kafka.bootstrap_servers": bootstrap,
            "kafka.input_topics": [topic],
            "kafka.alerts_topic": alerts_topic,
            "kafka.dlq_topic": f"demo-dlq-{run_id}",
            "kafka.group_id": f"demo-monitor-{run_id}",
            "instance": "demo",
            "state.hmac_secret": secrets.token_urlsafe(48),  # 64 characters; this run's monitor only
            "labels": {"env": "demo"},
            "models": {
                "fraud-v3": {"labels": {"team": "risk-ml", "owner": "fraud-oncall"}, "annotations": {"runbook_url": "https://runbooks.example/fraud-v3"}},
                "churn-v1": {"slo": {"roc_auc": {"min": 0.75}}},
            },
        },
    )


def _introduce(args: argparse.Namespace, bootstrap: str, topic: str) -> None:
    fraud, churn = demo_streams(args.events, args.seed, labels=True)
    concept = churn.concept_drift
    _out(f"broker {bootstrap}; topic {topic}; {args.events} events per model at {args.rate:g} events/s")
    _out(
        "fraud-v3 drifts: x0 mean +1.5 sd at event {0} (reverts at {1}), c0 gains category 'XX' at {2}, "
        "x3 goes 30 % missing at {3}; churn-v1's inputs stay stationary, but from event {4} {5:.0f} % of its labels "
        "ignore its predictions (a concept drift: performance pages; SLO roc_auc min 0.75).".format(
            fraud.drifts[0].start, fraud.drifts[0].end, fraud.drifts[1].start, fraud.drifts[2].start,
            concept.start if concept else "-", 100 * concept.amount if concept else 0.0,
        )
    )
    _out("alerts appear below once committed (read_committed); Ctrl-C stops everything.\n")


def _follow(app: MonitorApp, drain: Drain, reader: KafkaConsumer, topic: str, monitor: threading.Thread, produced: threading.Event, counts: dict[str, int]) -> None:
    """Print committed alerts until every event is judged (or progress stalls), counting them by status.

    Every event *judged*, not read: the rows of the stream's last ``max_lateness`` of event time wait
    for event-time order until the input has been quiet for ``kafka.caught_up_grace_ms``, and its last
    alerts (fraud-v3's resolves) come from them (:class:`~stream_monitor.runtime.drain.Drain`).
    """
    color = sys.stdout.isatty()
    done_since: float | None = None
    last_progress = (app.stats.records, time.monotonic())
    while True:
        if app.stats.records != last_progress[0]:
            last_progress = (app.stats.records, time.monotonic())
        elif produced.is_set() and time.monotonic() - last_progress[1] > STALL_S and drain.done is None:
            _out(f"no progress for {STALL_S:g} s at {app.stats.records} records read; stopping (see the log above)")
            return
        if produced.is_set() and drain.reached is None:  # the stream is complete: its ends are what is to be judged
            drain.expect(reader.end_offsets([TopicPartition(topic, p) for p in sorted(topic_partitions(reader, [topic])[topic])]))
        for records in reader.poll(timeout_ms=300).values():
            for rec in records:
                alert = AlertEvent.model_validate_json(rec.value)
                counts[alert.status] += 1
                _out(format_alert(alert, color))
        if drain.done is not None:
            done_since = done_since or time.monotonic()
            if time.monotonic() - done_since > SETTLE_S:
                return
        if not monitor.is_alive():
            _out("the monitor stopped unexpectedly; see the log above")
            return


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo until every event is monitored or Ctrl-C; exit 1 when the broker's tools are missing."""
    bootstrap = args.bootstrap_servers
    started_broker = False
    if bootstrap is None:
        missing = _missing_tools()
        if missing:
            _explain_missing_tools(missing)
            return EXIT_RUNTIME
        bootstrap = _start_broker(args.port)
        started_broker = not args.keep_broker
    run_id = uuid.uuid4().hex[:6]
    topic, alerts_topic = f"demo-inference-{run_id}", f"demo-alerts-{run_id}"
    _create_topics(bootstrap, topic, alerts_topic)
    app = MonitorApp(demo_config(bootstrap, run_id, topic, alerts_topic))
    drain = app.on_checkpoint = Drain(app)
    stop, produced = threading.Event(), threading.Event()
    _introduce(args, bootstrap, topic)
    tune_collector()
    monitor_thread = threading.Thread(target=app.run, name="monitor", daemon=True)
    producer_thread = threading.Thread(
        target=_produce, args=(bootstrap, topic, args.events, args.rate, args.seed, stop, produced), name="producer", daemon=True
    )
    monitor_thread.start()
    producer_thread.start()
    reader = KafkaConsumer(alerts_topic, bootstrap_servers=bootstrap, isolation_level="read_committed", auto_offset_reset="earliest", group_id=None, enable_auto_commit=False)
    counts = {"firing": 0, "resolved": 0}
    try:
        _follow(app, drain, reader, topic, monitor_thread, produced, counts)
    except KeyboardInterrupt:
        _out("\nstopping...")
    finally:
        stop.set()
        app.request_stop()
        monitor_thread.join(timeout=30)
        producer_thread.join(timeout=10)
        reader.close()
        if started_broker:
            _stop_broker(args.port)
    committed = sum(offset for tp, offset in drain.committed.items() if tp.topic == topic)  # (the topic's offsets start at 0)
    _out(
        f"\n{committed} events {'monitored' if drain.done is not None else 'read and committed, the rest not judged'}, "
        f"{counts['firing']} firing and {counts['resolved']} resolved alert events; {app.stats.dead_letters} dead letters."
    )
    return EXIT_OK
