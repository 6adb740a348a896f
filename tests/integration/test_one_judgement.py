"""Each model is judged once, whatever the input topic's partitions and keys (real broker).

The same events — two drifting models, interleaved — are produced to topics of 1, 3 and 6
partitions, keyed by model, by request id (``event_id``) or not keyed at all. For every layout,
``replay --topic`` gives the same judgement as ``replay --input`` of the events as a file; for
three layouts ``run`` (one instance, default ``state_partitioning: model``) does too, and ``run`` with
``state_partitioning: input`` on input keyed by model. A judgement is
the multiset of (model, feature, detector, status, severity, event_time, statistic) of the alerts.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import orjson
import pytest
from kafka import KafkaProducer

from stream_monitor.commands import main
from stream_monitor.synthetic import demo_streams, generate_events
from tests.integration.harness import InProcessMonitor, MonitorProcess, app_config, group_lag, read_alerts, wait_for_lag_zero

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]

N = 4000  # events per model
KEEP = {"retention.ms": "-1"}  # the synthetic events are dated 2026-01-01: keep them whatever the clock says
KEYS: dict[str, Callable[[dict[str, Any]], bytes | None]] = {
    "model": lambda e: e["model"].encode(),
    "request": lambda e: str(e["event_id"]).encode(),
    "null": lambda e: None,
}


def _events() -> list[dict[str, Any]]:
    fraud, churn = demo_streams(N, 42)
    out: list[dict[str, Any]] = []
    for pair in zip(generate_events(fraud), generate_events(churn), strict=True):
        out.extend(pair)
    for i, e in enumerate(out):
        e.setdefault("event_id", f"e{i}")
    return out


def _produce(bootstrap: str, topic: str, events: list[dict[str, Any]], keying: str) -> None:
    key = KEYS[keying]
    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all", batch_size=256 * 1024)
    for e in events:
        p.send(topic, key=key(e), value=orjson.dumps(e), timestamp_ms=e["ts"])
    p.flush(60)
    p.close()


def judgement(alerts: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    """What must be equal: which alert said what, when (not where it was read)."""
    return Counter((a["model"], a["feature"], a["detector"], a["status"], a["severity"], a["event_time"], a["statistic"]) for a in alerts)


def _replay(tmp: Path, name: str, bootstrap: str, *source: str) -> list[dict[str, Any]]:
    out = tmp / f"{name}.jsonl"
    args = ["replay", "--alerts-out", str(out), "--progress", "none", "--bootstrap-servers", bootstrap, *source]
    assert main(args) == 0
    return [orjson.loads(line) for line in out.read_bytes().splitlines() if line]


@pytest.fixture(scope="module")
def file_judgement(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Counter[tuple[Any, ...]], int]:
    tmp = tmp_path_factory.mktemp("one-judgement")
    events = _events()
    path = tmp / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n")
    out = tmp / "file.jsonl"
    assert main(["replay", "--alerts-out", str(out), "--progress", "none", "--input", str(path)]) == 0
    alerts = [orjson.loads(line) for line in out.read_bytes().splitlines() if line]
    assert alerts and any(a["status"] == "firing" for a in alerts)
    return path, judgement(alerts), len(alerts)


@pytest.mark.parametrize("partitions", [1, 3, 6])
@pytest.mark.parametrize("keying", ["model", "request", "null"])
def test_topic_replay_judges_like_the_file_whatever_the_layout(kafka_bootstrap, topic_factory, tmp_path, file_judgement, partitions, keying):
    _, expected, _ = file_judgement
    topic = topic_factory(partitions=partitions, configs=KEEP)
    _produce(kafka_bootstrap, topic, _events(), keying)
    alerts = _replay(tmp_path, "topic", kafka_bootstrap, "--topic", topic)
    assert judgement(alerts) == expected


@pytest.mark.parametrize("here", [True, False], ids=["judged-where-read", "through-internal-topic"])
@pytest.mark.parametrize(("partitions", "keying"), [(1, "model"), (3, "request"), (6, "null")])
def test_run_judges_like_the_file_whatever_the_layout(kafka_bootstrap, topic_factory, unique_name, file_judgement, partitions, keying, here):
    _, expected, _ = file_judgement
    topic = topic_factory(partitions=partitions, configs=KEEP)
    _produce(kafka_bootstrap, topic, _events(), keying)
    alerts_topic, group = unique_name("alerts"), unique_name("group")
    # no wall-clock idleness: readers say when they are caught up; one instance judges where it reads by default
    cfg = app_config(kafka_bootstrap, [topic], alerts_topic, group, **{"kafka.judge_locally": here})
    monitor = InProcessMonitor.start(cfg)
    try:
        # lag 0 on the internal topic too: every row left its wait for event-time order and was judged
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=300, check=monitor.check_alive)
    finally:
        assert monitor.stop() == 0
    assert (monitor.app.stats.judged_here > 0) is here and (monitor.app.stats.internal_records > 0) is not here
    alerts = read_alerts(kafka_bootstrap, alerts_topic)
    assert judgement(alerts) == expected, (sorted(judgement(alerts) - expected)[:5], sorted(expected - judgement(alerts))[:5])


@pytest.mark.parametrize("partitions", [1, 3])
def test_run_by_input_partition_judges_like_the_file(kafka_bootstrap, topic_factory, unique_name, file_judgement, partitions):
    """``kafka.state_partitioning: input`` (no internal topic: each model's partition judges it where it is read), on
    input keyed by model, gives the file's judgement too; its committed input offsets follow the rows still waiting."""
    _, expected, _ = file_judgement
    topic = topic_factory(partitions=partitions, configs=KEEP)
    _produce(kafka_bootstrap, topic, _events(), "model")
    alerts_topic, group = unique_name("alerts"), unique_name("group")
    monitor = InProcessMonitor.start(app_config(kafka_bootstrap, [topic], alerts_topic, group, **{"kafka.state_partitioning": "input"}))
    try:
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=300, check=monitor.check_alive)
    finally:
        assert monitor.stop() == 0
    assert monitor.app.repartition_topic is None
    alerts = read_alerts(kafka_bootstrap, alerts_topic)
    assert judgement(alerts) == expected, (sorted(judgement(alerts) - expected)[:5], sorted(expected - judgement(alerts))[:5])


def test_run_by_input_partition_crashing_after_alerts_ahead_of_the_state_sends_none_twice(kafka_bootstrap, topic_factory, unique_name, file_judgement, tmp_path):
    """With ``state_partitioning: input`` too, alerts commit ahead of the state with their ``sent`` item (the input
    offsets, the judges' own, wait for the state): a crash right after such a commit, then a restart from the older
    state, gives the file's judgement, every alert once."""
    from tests.integration.test_fault_injection import CRASH_AFTER_ALERTS_AHEAD, NO_GRACE_FROM_STAMPS, wait_crashed_after_alerts_ahead

    _, expected, _ = file_judgement
    topic = topic_factory(partitions=2, configs=KEEP)
    _produce(kafka_bootstrap, topic, _events(), "model")
    alerts_topic, group = unique_name("alerts"), unique_name("group")
    log = tmp_path / "monitor.log"
    env = {"STREAM_MONITOR_KAFKA__STATE_PARTITIONING": "input"}
    # the state only when nothing is left to read or judge: the commits carrying alerts before that leave it out (the
    # last rows wait for the grace from the assignment: see the same test of test_fault_injection)
    crash_env = {**env, **NO_GRACE_FROM_STAMPS, "STREAM_MONITOR_KAFKA__STATE_INTERVAL_MS": "600000"}
    wait_crashed_after_alerts_ahead(MonitorProcess(kafka_bootstrap, [topic], alerts_topic, group, log, env=crash_env, entry=["-c", CRASH_AFTER_ALERTS_AHEAD]))
    assert read_alerts(kafka_bootstrap, alerts_topic), "the crash came after alerts were committed"
    _finish_like_the_file(kafka_bootstrap, topic, alerts_topic, group, log, env, expected)
    held = [orjson.loads(line) for line in log.read_text(errors="replace").splitlines() if '"event": "outputs_already_committed"' in line]
    assert sum(r["held_back"] for r in held) > 0, "the restart made the alerts committed ahead again and held them back"


def test_run_by_input_partition_killed_at_random_points_judges_like_the_file(kafka_bootstrap, topic_factory, unique_name, file_judgement, tmp_path):
    """``state_partitioning: input``, kill -9 three times at random points of the stream (the state written every 300 ms,
    alerts ahead of it between): the restarts give the file's judgement, every alert once."""
    _, expected, _ = file_judgement
    rng = random.Random(2026)
    topic = topic_factory(partitions=2, configs=KEEP)
    events = _events()
    _produce(kafka_bootstrap, topic, events, "model")
    alerts_topic, group = unique_name("alerts"), unique_name("group")
    log = tmp_path / "monitor.log"
    env = {"STREAM_MONITOR_KAFKA__STATE_PARTITIONING": "input", "STREAM_MONITOR_KAFKA__STATE_INTERVAL_MS": "300"}
    for target in sorted(rng.uniform(0.15, 0.85) for _ in range(3)):
        proc = MonitorProcess(kafka_bootstrap, [topic], alerts_topic, group, log, env=env)
        proc.wait_started()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            proc.check_alive()
            lag = group_lag(kafka_bootstrap, group, [topic])
            if lag is not None and 1 - lag / len(events) >= target:
                break
            time.sleep(0.05)
        else:
            raise TimeoutError(f"committed progress stayed below {target:.2f}: {proc.log_tail()}")
        time.sleep(rng.uniform(0.0, 0.3))  # anywhere inside a commit interval
        proc.kill()
    _finish_like_the_file(kafka_bootstrap, topic, alerts_topic, group, log, env, expected)


def _finish_like_the_file(bootstrap: str, topic: str, alerts_topic: str, group: str, log: Path, env: dict[str, str], expected: Counter[tuple[Any, ...]]) -> None:
    """A monitor (``env``) takes over from where the last one left and reads to the end: the committed alerts are the file's judgement."""
    proc = MonitorProcess(bootstrap, [topic], alerts_topic, group, log, env=env)
    try:
        proc.wait_started()
        wait_for_lag_zero(bootstrap, group, [topic], timeout_s=240, check=proc.check_alive)
    finally:
        assert proc.terminate() == 0, proc.log_tail()
    alerts = read_alerts(bootstrap, alerts_topic)
    assert judgement(alerts) == expected, (sorted(judgement(alerts) - expected)[:5], sorted(expected - judgement(alerts))[:5])
