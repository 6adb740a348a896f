"""Fault injection on the real broker: the committed alert sequence survives kill -9, rebalances,
a broker restart and garbage input, and equals that of an uninterrupted run.

Workload: demo_streams(N, seed=7) for fraud-v3 (drifting) and churn-v1 (given a drift), keyed by request id
(event_id) over 6 partitions, so every input partition carries rows of both models and each model is
judged once, by the owner of its partition of the internal topic (``<group>-by-model``, 6 partitions
here, so that its partitions move when instances join or leave). Alerts are compared per alert
series (model, feature, detector): the order inside a series is the contract; across series it is not.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import random
import re
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

from stream_monitor.synthetic import Drift, demo_streams, generate_events
from tests.integration.harness import MonitorProcess, group_lag, produce, read_alerts, read_all, wait_for_lag_zero
from tests.integration.servers import free_ports, http
from tests.kafka_fixtures import BROKER_SH, _free_ports, create_topic

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

N = 12_000  # events per model
PARTITIONS = 6  # input partitions
STATE_PARTITIONS = 6  # partitions of the internal topic (kafka.repartition_partitions)
SEED = 7
MODELS = {"fraud-v3", "churn-v1"}
# the internal topic gets its own partition count, so the assertions on moving partitions hold
# whatever the input partition count is
STATE_ENV = {"STREAM_MONITOR_KAFKA__REPARTITION_PARTITIONS": str(STATE_PARTITIONS)}
NO_GRACE_FROM_STAMPS = {"STREAM_MONITOR_KAFKA__GRACE_FROM_RECORD_TIMESTAMPS": "false"}  # the grace from the assignment
JUDGE_HERE = {"STREAM_MONITOR_KAFKA__JUDGE_LOCALLY": "true"}  # one instance owning every partition judges where it reads (the default)
THROUGH = {"STREAM_MONITOR_KAFKA__JUDGE_LOCALLY": "false"}  # every row through the internal topic, as with several instances


def _monitor(
    bootstrap: str, topic: str, alerts: str, group: str, log: Path, instance: str = "test", config: Path | None = None, env: dict[str, str] | None = None,
) -> MonitorProcess:
    """``run`` in the one-judgement topology with the module's internal partition count."""
    extra = ["--config", str(config)] if config else None
    return MonitorProcess(bootstrap, [topic], alerts, group, log, extra_args=extra, env={**STATE_ENV, "STREAM_MONITOR_INSTANCE": instance, **(env or {})})


def _events() -> list[dict[str, Any]]:
    """Both demo models, interleaved; churn-v1 (stationary in the demo) gets a drift of its own, so
    both partitions of the internal topic that carry a model have alerts to lose or duplicate."""
    fraud, churn = demo_streams(N, SEED)
    churn = dataclasses.replace(churn, drifts=(Drift("mean_shift", "x1", int(0.5 * N), None, amount=1.5),))
    out: list[dict[str, Any]] = []
    for a, b in zip(generate_events(fraud), generate_events(churn), strict=True):
        out += [a, b]
    return out


def _produce_events(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    produce(bootstrap, topic, events, key_field="event_id")


def _series(alerts: list[dict[str, Any]], with_ids: bool = True) -> dict[tuple[str, str, str], list[tuple]]:
    """Alerts per series (model, feature, detector), in committed order: what must match between runs."""
    out: dict[tuple[str, str, str], list[tuple]] = defaultdict(list)
    for a in alerts:
        key: tuple = (a["status"], a["event_time"], a["severity"], a["statistic"])
        if with_ids:
            key = (a["alert_id"], *key)
        out[(a["model"], a["feature"], a["detector"])].append(key)
    return dict(out)


def _dead_letter_reasons(bootstrap: str, alerts_topic: str) -> dict[str, int]:
    """Dead letters per reason (what tells a row judged out of turn from one never judged)."""
    out: dict[str, int] = defaultdict(int)
    for _, v in read_all(bootstrap, f"{alerts_topic}-dlq"):
        out[orjson.loads(v)["reason"]] += 1
    return dict(out)


def _log_records(path: Path, event: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_text(errors="replace").splitlines() if f'"event": "{event}"' in line]


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
    ref_log = tmp_path_factory.mktemp("ref") / "monitor.log"
    proc = _monitor(kafka_bootstrap, topic, alerts_topic, group, ref_log, env=THROUGH)
    try:
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=240, check=proc.check_alive)
    finally:
        assert proc.terminate() == 0, proc.log_tail()
    reference = read_alerts(kafka_bootstrap, alerts_topic)
    assert _dead_letter_reasons(kafka_bootstrap, alerts_topic) == {}, "the uninterrupted run judges every event"
    assert {a["model"] for a in reference} == MODELS, "both models should alert"
    assert any(len(s) > 1 for s in _series(reference).values()), "some series should carry a sequence, not one alert"
    return {"topic": topic, "events": events, "total": len(events), "reference": reference, "suffix": suffix, "ref_log": ref_log}


@pytest.mark.parametrize("way", ["default", "through"])
def test_kill_9_at_random_points_loses_and_duplicates_nothing(kafka_bootstrap, workload, tmp_path, way):
    """Killed four times at random points, judged where read (the default: one instance) or through the internal topic."""
    rng = random.Random(2026)
    topic, total = workload["topic"], workload["total"]
    alerts_topic, group = f"fi-kill-{way}-alerts-{workload['suffix']}", f"fi-kill-{way}-{workload['suffix']}"
    env = THROUGH if way == "through" else None
    kills = 0
    log = tmp_path / "monitor.log"
    proc = _monitor(kafka_bootstrap, topic, alerts_topic, group, log, env=env)
    for target in sorted(rng.uniform(0.1, 0.9) for _ in range(4)):
        proc.wait_started()  # kill a running monitor, not an interpreter still importing
        progress = _wait_progress(kafka_bootstrap, group, topic, total, target, proc)
        if kills == 3:  # the last kill comes after state was committed, so the last restart must restore some
            _wait_changelog_state(kafka_bootstrap, group, proc)
        time.sleep(rng.uniform(0.0, 0.4))  # land anywhere inside a checkpoint interval
        proc.kill()
        kills += 1
        print(f"kill -9 #{kills} at committed progress {progress:.2f}")
        proc = _monitor(kafka_bootstrap, topic, alerts_topic, group, log, env=env)
    try:
        proc.wait_started()
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=240, check=proc.check_alive)
    finally:
        assert proc.terminate() == 0, proc.log_tail()
    assert kills == 4
    got = read_alerts(kafka_bootstrap, alerts_topic)
    assert _series(got) == _series(workload["reference"]), _dead_letter_reasons(kafka_bootstrap, alerts_topic)
    assert bool(_log_records(log, "judging_locally")) is (way == "default")
    restores = _log_records(log, "state_restored")
    # a partition that had not been judged before a kill legitimately restores nothing; the
    # changelog held committed state before the last kill, so some restore must find it
    assert any(r["items"] > 0 for r in restores), f"restarts must restore state from the changelog: {restores}"


def test_judged_where_read_or_through_the_internal_topic_the_alerts_are_the_same(kafka_bootstrap, workload, tmp_path):
    """One instance owns every partition: with ``kafka.judge_locally`` it judges the rows where it reads them, and
    nothing goes through the internal topic; the reference run sends them through it (``judge_locally: false``), and the
    committed alerts are the same, ids included."""
    topic, suffix = workload["topic"], workload["suffix"]
    assert not _log_records(workload["ref_log"], "judging_locally"), "the reference run went through the internal topic"
    assert read_all(kafka_bootstrap, f"fi-ref-{suffix}-by-model", timeout_s=10), "the reference's rows went through the internal topic"
    alerts_topic, group = f"fi-here-alerts-{suffix}", f"fi-here-{suffix}"
    log = tmp_path / "monitor.log"
    proc = _monitor(kafka_bootstrap, topic, alerts_topic, group, log, env=JUDGE_HERE)
    try:
        proc.wait_started()
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=240, check=proc.check_alive)
    finally:
        assert proc.terminate() == 0, proc.log_tail()
    assert _log_records(log, "judging_locally"), "judged where read"
    assert not read_all(kafka_bootstrap, f"{group}-by-model", timeout_s=5), "nothing went through the internal topic"
    got = read_alerts(kafka_bootstrap, alerts_topic)
    assert _series(got) == _series(workload["reference"]), _dead_letter_reasons(kafka_bootstrap, alerts_topic)
    assert _dead_letter_reasons(kafka_bootstrap, alerts_topic) == {}


def test_killed_while_judging_where_read_then_two_instances_through_the_internal_topic_lose_and_duplicate_nothing(kafka_bootstrap, workload, tmp_path):
    """A locally judging instance (``kafka.judge_locally``) commits each input's offset at its oldest record with a row
    still waiting; killed, its rows are read again by two instances that send them through the internal topic, each
    input at its own reader's pace. The rows judged before are recognised by their input records, the others wait
    until every input is read past where it was (``Carriers.owe``): the committed alerts are the reference's, no
    dead letter."""
    topic, total, suffix = workload["topic"], workload["total"], workload["suffix"]
    alerts_topic, group = f"fi-l2h-alerts-{suffix}", f"fi-l2h-{suffix}"
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b", "c")}
    proc = _monitor(kafka_bootstrap, topic, alerts_topic, group, logs["a"], instance="a", env=JUDGE_HERE)
    proc.wait_started()
    _wait_progress(kafka_bootstrap, group, topic, total, 0.4, proc)
    _wait_changelog_state(kafka_bootstrap, group, proc)
    proc.kill()
    assert _log_records(logs["a"], "judging_locally"), "the first instance judged where it read"
    procs = {name: _monitor(kafka_bootstrap, topic, alerts_topic, group, logs[name], instance=name, env=THROUGH) for name in ("b", "c")}
    try:
        for p in procs.values():
            p.wait_started()
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=240, check=lambda: [p.check_alive() for p in procs.values()])
    finally:
        codes = {name: p.terminate() for name, p in procs.items()}
    assert codes == {"b": 0, "c": 0}, codes
    got = read_alerts(kafka_bootstrap, alerts_topic)
    assert _series(got) == _series(workload["reference"]), _dead_letter_reasons(kafka_bootstrap, alerts_topic)
    assert _dead_letter_reasons(kafka_bootstrap, alerts_topic) == {}
    assert read_all(kafka_bootstrap, f"{group}-by-model", timeout_s=10), "the second run went through the internal topic"


# ``run``, exiting at once (as kill -9 would: no abort, no leaving the group) right after the first commit that
# carried alerts without the state: judging is redone from older state, which makes those alerts again
CRASH_AFTER_ALERTS_AHEAD = """
import os, sys
from stream_monitor.commands import main
from stream_monitor.runtime.checkpoint import Checkpoint
from stream_monitor.runtime.checkpointing import CheckpointSteps
begin, committed, last = Checkpoint.begin_commit, CheckpointSteps._committed, {}
def begin_commit(self, tasks, reads_only=False):
    last["reads_only"] = reads_only
    return begin(self, tasks, reads_only)
def _committed(self, result):
    committed(self, result)
    if result.alerts and last["reads_only"] and result.state_bytes:
        print(f"CRASH after {len(result.alerts)} alerts committed ahead of the state", flush=True)
        os._exit(9)
Checkpoint.begin_commit, CheckpointSteps._committed = begin_commit, _committed
raise SystemExit(main(sys.argv[1:]))
"""


def wait_crashed_after_alerts_ahead(proc: MonitorProcess, timeout_s: float = 240) -> None:
    """Wait for a monitor run with :data:`CRASH_AFTER_ALERTS_AHEAD` to exit as it does after such a commit (code 9)."""
    deadline = time.monotonic() + timeout_s
    while proc.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.proc.wait(30) == 9, f"no commit carried alerts without the state: {proc.log_tail()}"
    proc.log_file.close()


def test_a_crash_right_after_alerts_committed_without_the_state_sends_none_twice(kafka_bootstrap, workload, tmp_path):
    """Alerts commit with the consumer offsets and their ``sent`` item, the state every ``state_interval_ms``
    (``core/sent.py``): the restarted monitor judges again from the older state, makes those alerts again and
    holds them back; the committed sequence is the reference's, none twice, none lost."""
    topic = workload["topic"]
    alerts_topic, group = f"fi-ahead-alerts-{workload['suffix']}", f"fi-ahead-{workload['suffix']}"
    log = tmp_path / "monitor.log"
    # the state only when nothing is left to read or judge: every commit carrying alerts before that leaves the state out
    # (with the default 2 s one could carry the state on a slow machine: CI once wrote it with the first alerts);
    # the last rows wait for the caught-up grace, so alerts judged before them commit first: the workload was
    # produced long before, and counted from its records' stamps it would be judged to its end at once, the
    # alerts in the commit that writes the state (kafka.grace_from_record_timestamps)
    env = {**STATE_ENV, **NO_GRACE_FROM_STAMPS, "STREAM_MONITOR_KAFKA__STATE_INTERVAL_MS": "600000"}
    wait_crashed_after_alerts_ahead(MonitorProcess(kafka_bootstrap, [topic], alerts_topic, group, log, env=env, entry=["-c", CRASH_AFTER_ALERTS_AHEAD]))
    first = read_alerts(kafka_bootstrap, alerts_topic)
    assert first, "the crash came after alerts were committed"
    (port,) = free_ports(1)
    proc = MonitorProcess(kafka_bootstrap, [topic], alerts_topic, group, log, extra_args=["--metrics-port", str(port)], env=STATE_ENV)
    try:
        proc.wait_started()
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=240, check=proc.check_alive)
        status, body = http("GET", f"http://127.0.0.1:{port}/metrics", timeout=30)
    finally:
        assert proc.terminate() == 0, proc.log_tail()
    got = read_alerts(kafka_bootstrap, alerts_topic)
    assert _series(got) == _series(workload["reference"]), _dead_letter_reasons(kafka_bootstrap, alerts_topic)
    ahead = int(re.search(r"CRASH after (\d+) alerts", log.read_text(errors="replace")).group(1))  # type: ignore[union-attr]
    held = _log_records(log, "outputs_already_committed")
    assert sum(r["held_back"] for r in held) >= ahead > 0, f"the restart should have made the {ahead} alerts committed ahead again: {held}"
    assert not _log_records(log, "owed_outputs_dropped"), "same config, same code: everything committed ahead is made again, none dropped"
    counted = re.search(rb"^stream_monitor_outputs_held_back_total (\S+)$", body, re.M)
    assert status == 200 and counted is not None and float(counted.group(1)) == sum(r["held_back"] for r in held), body[-2000:]


def _wait_changelog_state(bootstrap: str, group: str, proc: MonitorProcess, timeout_s: float = 180) -> None:
    """Wait until the group's changelog holds committed state (judging lags reading by the watermark)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        proc.check_alive()
        if read_all(bootstrap, f"{group}-state-changelog", timeout_s=10):
            return
        time.sleep(0.5)
    raise TimeoutError(f"no committed state in {group}-state-changelog after {timeout_s} s; monitor log:\n{proc.log_tail()}")


def _wait_log(path: Path, text: str, check: Callable[[], None], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        check()
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{text} not in {path}")


def _internal_owners(logs: dict[str, Path], internal: str) -> dict[int, set[str]]:
    """Per partition of the internal topic, the instances that were ever assigned it (from their logs)."""
    owners: dict[int, set[str]] = defaultdict(set)
    for name, path in logs.items():
        for rec in _log_records(path, "partitions_assigned"):
            for tp in rec.get("partitions", []):
                if tp.startswith(f"{internal}-"):
                    owners[int(tp.rsplit("-", 1)[1])].add(name)
    return dict(owners)


def test_rebalance_both_ways_gives_the_reference_alerts(kafka_bootstrap, workload, tmp_path):
    """Two instances, a third joins mid-stream, then one leaves: partitions of the internal topic move
    (a model's judging moves with its state), and the committed alerts are the reference's."""
    suffix = workload["suffix"]
    topic = create_topic(kafka_bootstrap, f"fi-reb-input-{suffix}", PARTITIONS)
    events = workload["events"]
    cut1, cut2 = int(0.35 * len(events)), int(0.7 * len(events))
    alerts_topic, group = f"fi-reb-alerts-{suffix}", f"fi-reb-{suffix}"
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b", "c")}
    # Phases are produced while the instances run, and the workload's event time runs far faster
    # than the clock (120 s of it in a few seconds of producing). An input partition whose reader
    # said "at my end" counts again from its next row: if another partition's new rows reach the
    # judge first by more than max_lateness_seconds of event time — under a second of wall clock
    # here, on a busy machine — the first rows of the quiet one come late: dead letters, by
    # contract (tests/core/test_ordering.py, tests/test_forward.py). The rebalance is under test
    # here, not that race: a lateness longer than the workload makes the outcome independent of
    # which reader is first.
    config = tmp_path / "lateness.yaml"
    config.write_text("max_lateness_seconds: 3600\n")
    _produce_events(kafka_bootstrap, topic, events[:cut1])
    procs = {name: _monitor(kafka_bootstrap, topic, alerts_topic, group, logs[name], instance=name, config=config) for name in ("a", "b")}

    def alive() -> None:
        for proc in procs.values():
            proc.check_alive()

    wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=180, check=alive)
    procs["c"] = _monitor(kafka_bootstrap, topic, alerts_topic, group, logs["c"], instance="c", config=config)
    procs["c"].wait_started(timeout_s=120)
    _produce_events(kafka_bootstrap, topic, events[cut1:cut2])
    wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=180, check=alive)
    assert procs.pop("b").terminate() == 0, procs["a"].log_tail()
    _produce_events(kafka_bootstrap, topic, events[cut2:])
    try:
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=240, check=alive)
    finally:
        codes = {name: proc.terminate() for name, proc in procs.items()}
    assert codes == {"a": 0, "c": 0}, codes
    internal = f"{group}-by-model"
    owners = _internal_owners(logs, internal)
    assert set(owners) == set(range(STATE_PARTITIONS)), owners
    got = read_alerts(kafka_bootstrap, alerts_topic)
    judges = {a_["model"]: a_["monitor"]["instance"] for a_ in got}
    assert any(len(owners[p]) > 1 for p in range(STATE_PARTITIONS)), f"no partition of {internal} moved: {owners}"
    assert len({a_["monitor"]["instance"] for a_ in got}) > 1, f"one instance judged everything: {judges}"
    restored = [r for name in ("b", "c") for r in _log_records(logs[name], "state_restored") if r["items"] > 0]
    assert restored, "an instance that took over a partition of the internal topic restored no state"
    assert _series(got) == _series(workload["reference"]), _dead_letter_reasons(kafka_bootstrap, alerts_topic)


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
    proc = _monitor(kafka_bootstrap, topic, alerts_topic, group, tmp_path / "monitor.log")
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
    # garbage shifts offsets (and so alert ids); what fired, when, how strongly must not change
    got = {k: v for k, v in _series(read_alerts(kafka_bootstrap, alerts_topic), with_ids=False).items() if k[0] in MODELS}
    assert got == _series(workload["reference"], with_ids=False), "alerts from valid records changed"


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
    proc = _monitor(kafka_bootstrap, topic, alerts_topic, group, log)
    _wait_progress(kafka_bootstrap, group, topic, total, 0.3, proc)
    assert proc.terminate() == 0
    marker = tmp_path / "pwned.txt"
    payload = pickle.dumps(_Exploit(str(marker)))
    forged = b"\x00" * 32 + b"\x01" + payload  # wrong MAC, right format byte
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    changelog = f"{group}-state-changelog"
    for p in range(STATE_PARTITIONS):
        producer.send(changelog, key="c\x1ffraud-v3\x1fx0".encode(), value=forged, partition=p)
    producer.flush()
    producer.close()
    proc = _monitor(kafka_bootstrap, topic, alerts_topic, group, log)
    try:
        proc.wait_events("state_restored", STATE_PARTITIONS)  # the first run may already have read everything
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=240, check=proc.check_alive)
    finally:
        assert proc.terminate() == 0, proc.log_tail()
    assert not marker.exists(), "forged state was unpickled"
    assert log.read_text().count('"event": "state_record_rejected"') >= STATE_PARTITIONS


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
    proc = _monitor(bootstrap, topic, alerts_topic, group, tmp_path / "monitor.log")
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
    assert _series(got) == _series(workload["reference"]), _dead_letter_reasons(bootstrap, alerts_topic)
