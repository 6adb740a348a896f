"""Fault injection on the real broker: the committed alert sequence survives kill -9, rebalances,
a broker restart and garbage input, and equals that of an uninterrupted run.

Workload: demo_streams(N, seed=7) for fraud-v3 (drifting) and churn-v1, keyed by event_id over 3
partitions, so every partition carries its own detectors for both models. Alerts are compared per
input partition (the order inside a partition is the contract; across partitions it is not).
"""

from __future__ import annotations

import os
import pickle
import random
import subprocess
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer

from stream_monitor.synthetic import demo_streams, generate_events
from tests.integration.harness import MonitorProcess, group_lag, produce, read_alerts, read_all, wait_for_lag_zero
from tests.kafka_fixtures import BROKER_SH, _free_ports, create_topic

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

N = 12_000  # events per model
PARTITIONS = 3
SEED = 7


def _events() -> list[dict[str, Any]]:
    fraud, churn = demo_streams(N, SEED)
    out: list[dict[str, Any]] = []
    for a, b in zip(generate_events(fraud), generate_events(churn), strict=True):
        out += [a, b]
    return out


def _produce_events(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    produce(bootstrap, topic, events, key_field="event_id")


def _by_partition(alerts: list[dict[str, Any]], with_ids: bool = True) -> dict[int, list[tuple]]:
    out: dict[int, list[tuple]] = defaultdict(list)
    for a in alerts:
        key = (a["status"], a["model"], a["feature"], a["detector"], a["event_time"], a["severity"])
        if with_ids:
            key = (a["alert_id"], a["fingerprint"], a["source"]["offset"], *key)
        out[a["source"]["partition"]].append(key)
    return dict(out)


def _progress(bootstrap: str, group: str, topic: str, total: int) -> float:
    lag = group_lag(bootstrap, group, [topic])
    return 0.0 if lag is None else 1.0 - lag / total


def _wait_progress(bootstrap: str, group: str, topic: str, total: int, at_least: float, proc: MonitorProcess, timeout_s: float = 120) -> float:
    deadline = time.monotonic() + timeout_s
    p = 0.0
    while time.monotonic() < deadline:
        proc.check_alive()
        p = _progress(bootstrap, group, topic, total)
        if p >= at_least:
            return p
        time.sleep(0.1)
    raise TimeoutError(f"progress stayed below {at_least} for {timeout_s} s (last {p:.3f}); monitor log:\n{proc.log_tail()}")


@pytest.fixture(scope="module")
def workload(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The input topic and the reference alert sequence of one uninterrupted run."""
    suffix = os.urandom(4).hex()
    topic = create_topic(kafka_bootstrap, f"fi-input-{suffix}", PARTITIONS)
    events = _events()
    _produce_events(kafka_bootstrap, topic, events)
    alerts_topic, group = f"fi-ref-alerts-{suffix}", f"fi-ref-{suffix}"
    proc = MonitorProcess(kafka_bootstrap, [topic], alerts_topic, group, tmp_path_factory.mktemp("ref") / "monitor.log")
    try:
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=240, check=proc.check_alive)
    finally:
        assert proc.terminate() == 0, proc.log_tail()
    reference = read_alerts(kafka_bootstrap, alerts_topic)
    assert len({a["source"]["partition"] for a in reference}) == PARTITIONS, "every partition should alert"
    return {"topic": topic, "events": events, "total": len(events), "reference": reference, "suffix": suffix}


def test_kill_9_at_random_points_loses_and_duplicates_nothing(kafka_bootstrap, workload, tmp_path):
    rng = random.Random(2026)
    topic, total = workload["topic"], workload["total"]
    alerts_topic, group = f"fi-kill-alerts-{workload['suffix']}", f"fi-kill-{workload['suffix']}"
    kills = 0
    log = tmp_path / "monitor.log"
    proc = MonitorProcess(kafka_bootstrap, [topic], alerts_topic, group, log)
    for target in sorted(rng.uniform(0.1, 0.9) for _ in range(4)):
        proc.wait_started()  # kill a running monitor, not an interpreter still importing
        progress = _wait_progress(kafka_bootstrap, group, topic, total, target, proc)
        time.sleep(rng.uniform(0.0, 0.4))  # land anywhere inside a checkpoint interval
        proc.kill()
        kills += 1
        print(f"kill -9 #{kills} at committed progress {progress:.2f}")
        proc = MonitorProcess(kafka_bootstrap, [topic], alerts_topic, group, log)
    try:
        proc.wait_started()
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=240, check=proc.check_alive)
    finally:
        assert proc.terminate() == 0, proc.log_tail()
    assert kills == 4
    got = read_alerts(kafka_bootstrap, alerts_topic)
    assert _by_partition(got) == _by_partition(workload["reference"])
    restores = [orjson.loads(line) for line in log.read_text().splitlines() if '"event": "state_restored"' in line]
    # a partition that had not been processed before a kill legitimately restores nothing
    assert any(r["items"] > 0 for r in restores), f"restarts must restore state from the changelog: {restores}"


def _wait_log(path: Path, text: str, check: Callable[[], None], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        check()
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{text} not in {path}")


def test_rebalance_both_ways_gives_the_reference_alerts(kafka_bootstrap, workload, tmp_path):
    """A second instance joins mid-stream (partitions move to it), then leaves (they move back)."""
    suffix = workload["suffix"]
    topic = create_topic(kafka_bootstrap, f"fi-reb-input-{suffix}", PARTITIONS)
    events = workload["events"]
    cut1, cut2 = int(0.35 * len(events)), int(0.7 * len(events))
    alerts_topic, group = f"fi-reb-alerts-{suffix}", f"fi-reb-{suffix}"
    _produce_events(kafka_bootstrap, topic, events[:cut1])
    a = MonitorProcess(kafka_bootstrap, [topic], alerts_topic, group, tmp_path / "a.log", env={"STREAM_MONITOR_INSTANCE": "a"})
    wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=120, check=a.check_alive)
    b = MonitorProcess(kafka_bootstrap, [topic], alerts_topic, group, tmp_path / "b.log", env={"STREAM_MONITOR_INSTANCE": "b"})
    _wait_log(tmp_path / "b.log", '"event": "partitions_assigned"', b.check_alive)
    _produce_events(kafka_bootstrap, topic, events[cut1:cut2])
    wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=120, check=lambda: (a.check_alive(), b.check_alive()))
    assert b.terminate() == 0, b.log_tail()
    _produce_events(kafka_bootstrap, topic, events[cut2:])
    try:
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=240, check=a.check_alive)
    finally:
        assert a.terminate() == 0, a.log_tail()
    assert '"event": "state_restored"' in (tmp_path / "b.log").read_text(), "b never restored a partition"
    got = read_alerts(kafka_bootstrap, alerts_topic)
    assert {a_["monitor"]["instance"] for a_ in got} == {"a", "b"}, "both instances should have alerted"
    assert _by_partition(got) == _by_partition(workload["reference"])


def test_malformed_records_go_to_dlq_and_valid_alerts_are_unchanged(kafka_bootstrap, workload, tmp_path):
    suffix = workload["suffix"]
    topic = create_topic(kafka_bootstrap, f"fi-garbage-{suffix}", PARTITIONS)
    garbage: list[bytes] = []

    @settings(max_examples=1500, database=None, suppress_health_check=list(HealthCheck), deadline=None)
    @given(
        st.one_of(
            st.binary(max_size=200),
            st.text(max_size=100).map(str.encode),
            st.dictionaries(st.text(max_size=8), st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5), max_size=4).map(orjson.dumps),
            st.builds(lambda v: orjson.dumps({"model": "fraud-v3", "ts": v}), st.text(max_size=10)),
        )
    )
    def collect(value: bytes) -> None:
        garbage.append(value)

    collect()
    rng = random.Random(5)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20, acks="all")
    valid = workload["events"]
    slots = sorted(rng.sample(range(len(valid)), len(garbage)))
    g = iter(garbage)
    si = 0
    for i, e in enumerate(valid):
        while si < len(slots) and slots[si] == i:
            # garbage lands on a random partition, valid events keep their partition (same key)
            producer.send(topic, value=next(g), partition=rng.randrange(PARTITIONS))
            si += 1
        producer.send(topic, key=e["event_id"].encode(), value=orjson.dumps(e))
    producer.flush()
    producer.close()
    alerts_topic, group = f"fi-garbage-alerts-{suffix}", f"fi-garbage-{suffix}"
    proc = MonitorProcess(kafka_bootstrap, [topic], alerts_topic, group, tmp_path / "monitor.log")
    try:
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=240, check=proc.check_alive)
    finally:
        assert proc.terminate() == 0, proc.log_tail()
    dlq = [orjson.loads(v) for _, v in read_all(kafka_bootstrap, f"{alerts_topic}-dlq")]
    # some fuzzed values are valid events (e.g. {"model": "x"} would not be; an empty dict is not)
    rejected = [d for d in dlq if not d["processed"]]
    assert len(rejected) >= 0.95 * len(garbage), (len(rejected), len(garbage))
    assert all(d["reason"] and d["source"]["topic"] == topic for d in dlq)
    assert {base64 for base64 in (d["original_base64"] for d in rejected)}  # original bytes kept
    got = _by_partition(read_alerts(kafka_bootstrap, alerts_topic), with_ids=False)
    ref = _by_partition(workload["reference"], with_ids=False)
    for p in ref:
        got_p = [a for a in got.get(p, []) if a[1] in ("fraud-v3", "churn-v1")]
        assert got_p == ref[p], f"partition {p}: alerts from valid records changed"


class _Exploit:
    """Unpickling this would create a file: proof that forged state is never unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (Path(self.path).write_text, ("pwned",))


def test_forged_changelog_record_is_rejected_not_loaded(kafka_bootstrap, workload, tmp_path):
    suffix = workload["suffix"]
    topic, total = workload["topic"], workload["total"]
    alerts_topic, group = f"fi-forge-alerts-{suffix}", f"fi-forge-{suffix}"
    log = tmp_path / "monitor.log"
    proc = MonitorProcess(kafka_bootstrap, [topic], alerts_topic, group, log)
    _wait_progress(kafka_bootstrap, group, topic, total, 0.3, proc)
    assert proc.terminate() == 0
    marker = tmp_path / "pwned.txt"
    payload = pickle.dumps(_Exploit(str(marker)))
    forged = b"\x00" * 32 + b"\x01" + payload  # wrong MAC, right format byte
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    changelog = f"{group}-state-changelog"
    for p in range(PARTITIONS):
        producer.send(changelog, key="c\x1ffraud-v3\x1fx0".encode(), value=forged, partition=p)
    producer.flush()
    producer.close()
    proc = MonitorProcess(kafka_bootstrap, [topic], alerts_topic, group, log)
    try:
        proc.wait_events("state_restored", PARTITIONS)  # the first run may already have read everything
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=240, check=proc.check_alive)
    finally:
        assert proc.terminate() == 0, proc.log_tail()
    assert not marker.exists(), "forged state was unpickled"
    assert log.read_text().count('"event": "state_record_rejected"') >= PARTITIONS


@pytest.fixture()
def own_broker(tmp_path: Path):
    """A private broker this test may stop and restart on the same data."""
    port, cport = _free_ports(2)
    env = {**os.environ, "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(cport), "KAFKA_RUN_DIR": str(tmp_path / "broker"), "KAFKA_OWNER_PID": str(os.getpid())}

    def start(keep: bool) -> str:
        out = subprocess.run(["bash", str(BROKER_SH), "start"], env={**env, "KAFKA_KEEP_DATA": "1" if keep else "0"}, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.strip().splitlines()[-1]

    def stop() -> None:
        subprocess.run(["bash", str(BROKER_SH), "stop"], env=env, capture_output=True, timeout=120)

    bootstrap = start(keep=False)
    yield bootstrap, start, stop
    stop()


def test_broker_restart_mid_stream_is_ridden_out(own_broker, workload, tmp_path):
    bootstrap, start, stop = own_broker
    topic = create_topic(bootstrap, "fi-restart-input", PARTITIONS)
    _produce_events(bootstrap, topic, workload["events"])
    alerts_topic, group = "fi-restart-alerts", "fi-restart"
    proc = MonitorProcess(bootstrap, [topic], alerts_topic, group, tmp_path / "monitor.log")
    _wait_progress(bootstrap, group, topic, workload["total"], 0.3, proc)
    stop()
    time.sleep(3)
    start(keep=True)
    try:
        wait_for_lag_zero(bootstrap, group, [topic], timeout_s=300, check=proc.check_alive)
    finally:
        assert proc.terminate() == 0, proc.log_tail()
    got = read_alerts(bootstrap, alerts_topic)
    # same events, keys and production order as the reference topic: same partitions and offsets,
    # hence the same alert ids
    assert _by_partition(got) == _by_partition(workload["reference"])
