"""Judging groups on the real broker: one model's channels judged on several partitions of the internal topic.

fraud-v3 with ``judging_groups: 2`` and churn-v1 with 3 (core/groups.py), keyed by request id over 6
input partitions, judged by 2 ``run`` instances (6 partitions of ``<group>-by-model``), one of them
killed with SIGKILL once every group has state on the changelog, and started again: the committed alerts are the judgement of
``replay --input`` of the same events with the same config, each group's state items are on the
changelog under the group's judge name, and a group's state was restored by an instance that took
its partition over.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer

from stream_monitor.commands import main
from stream_monitor.core.groups import group_of, judge_name
from stream_monitor.synthetic import Drift, demo_streams, generate_events
from tests.integration.harness import MonitorProcess, group_lag, produce, read_alerts, read_all, wait_for_lag_zero
from tests.kafka_fixtures import create_topic

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]

N = 10_000  # events per model
PARTITIONS = 6
CONFIG = "models:\n  fraud-v3:\n    judging_groups: 2\n  churn-v1:\n    judging_groups: 3\n"
# state written every 250 ms, so that it is on the changelog well before the stream ends
STATE_ENV = {"STREAM_MONITOR_KAFKA__REPARTITION_PARTITIONS": str(PARTITIONS), "STREAM_MONITOR_KAFKA__STATE_INTERVAL_MS": "250"}
JUDGES = [judge_name(model, g, n) for model, n in (("fraud-v3", 2), ("churn-v1", 3)) for g in range(n)]
MODEL_KEYS = [f"m\x1f{j}" for j in JUDGES]  # each group's model item on the changelog


def _events() -> list[dict[str, Any]]:
    fraud, churn = demo_streams(N, 7)
    churn = dataclasses.replace(churn, drifts=(Drift("mean_shift", "x1", int(0.5 * N), None, amount=1.5),))
    out: list[dict[str, Any]] = []
    for a, b in zip(generate_events(fraud), generate_events(churn), strict=True):
        out += [a, b]
    return out


def judgement(alerts: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    return Counter((a["model"], a["feature"], a["detector"], a["status"], a["severity"], a["event_time"], a["statistic"]) for a in alerts)


def _log_records(path: Path, event: str, start: int = 0) -> list[dict[str, Any]]:
    """Log records ``event`` of ``path`` from byte ``start`` on."""
    with open(path, "rb") as f:
        f.seek(start)
        return [orjson.loads(line) for line in f.read().splitlines() if f'"event": "{event}"'.encode() in line]


def _changelog_keys(bootstrap: str, topic: str) -> set[str]:
    return {k.decode() for k, _ in read_all(bootstrap, topic) if k is not None}


def _has_keys(bootstrap: str, topic: str, wanted: set[str]) -> bool:
    """Whether the committed records of ``topic`` hold every key of ``wanted`` (asked once the monitor made the topic)."""
    try:
        return wanted <= _changelog_keys(bootstrap, topic)
    except Exception:  # noqa: BLE001 - not created yet: not there yet
        return False


def _restored(logs: dict[str, Path], a_from: int, b_from: int) -> bool:
    """Whether a, after byte ``a_from`` of its log, or the restarted b restored a state partition with items."""
    taken_over = _log_records(logs["a"], "state_restored", a_from) + _log_records(logs["b"], "state_restored", b_from)
    return any(r["items"] > 0 for r in taken_over)


def test_two_instances_judge_grouped_models_like_the_file_replay_across_a_kill(kafka_bootstrap, tmp_path):
    suffix = os.urandom(4).hex()
    config = tmp_path / "groups.yaml"
    config.write_text(CONFIG)
    events = _events()
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n")
    out = tmp_path / "file.jsonl"
    assert main(["replay", "--config", str(config), "--alerts-out", str(out), "--progress", "none", "--input", str(path)]) == 0
    expected_alerts = [orjson.loads(line) for line in out.read_bytes().splitlines() if line]
    expected = judgement(expected_alerts)
    firing = {(a["model"], a["feature"]) for a in expected_alerts if a["status"] == "firing"}
    assert ("fraud-v3", "x0") in firing and group_of("x0", 2) == 1, "a drift judged outside group 0"
    assert ("fraud-v3", "__prediction__") in firing and ("churn-v1", "x1") in firing

    topic = create_topic(kafka_bootstrap, f"jg-input-{suffix}", PARTITIONS)
    produce(kafka_bootstrap, topic, events, key_field="event_id")
    alerts_topic, group = f"jg-alerts-{suffix}", f"jg-{suffix}"
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b")}

    def start(name: str) -> MonitorProcess:
        return MonitorProcess(kafka_bootstrap, [topic], alerts_topic, group, logs[name], extra_args=["--config", str(config)],
                              env={**STATE_ENV, "STREAM_MONITOR_INSTANCE": name})  # fmt: skip

    procs = {name: start(name) for name in ("a", "b")}
    total = len(events)
    deadline = time.monotonic() + 240
    changelog = f"{group}-state-changelog"
    # kill b once every group's state is on the changelog (so that whichever partitions b held, their
    # new owner restores some; before, the kill could beat the first state checkpoint): the readers
    # are near the input's end then, the judges still have rows waiting (group_lag counts both)
    while True:
        for p in procs.values():
            p.check_alive()
        lag = group_lag(kafka_bootstrap, group, [topic])
        if lag is not None and lag < 0.7 * total and _has_keys(kafka_bootstrap, changelog, set(MODEL_KEYS)):
            break
        assert time.monotonic() < deadline, f"no progress: lag {lag}; {procs['a'].log_tail()}"
        time.sleep(0.1)
    a_from = logs["a"].stat().st_size
    procs["b"].kill()
    procs["b"] = start("b")  # same log: the restarted instance appends
    procs["b"].wait_started(timeout_s=120)  # stop a running monitor at the end, not an interpreter still importing
    try:
        deadline = time.monotonic() + 120  # the new owners restore after the assignment (the input may be judged to its end by then)
        while not _restored(logs, a_from, procs["b"].log_start) and time.monotonic() < deadline:
            for p in procs.values():
                p.check_alive()
            time.sleep(0.1)
        wait_for_lag_zero(kafka_bootstrap, group, [topic], timeout_s=300, check=lambda: [p.check_alive() for p in procs.values()])
    finally:
        codes = {name: p.terminate() for name, p in procs.items()}
    assert codes == {"a": 0, "b": 0}, codes
    got = read_alerts(kafka_bootstrap, alerts_topic)
    letters = [orjson.loads(v) for _, v in read_all(kafka_bootstrap, f"{alerts_topic}-dlq")]
    dead = Counter(d["reason"] for d in letters)
    assert judgement(got) == expected, (sorted(judgement(got) - expected)[:5], sorted(expected - judgement(got))[:5], dead)
    assert not dead, (dead, [str(d)[:400] for d in letters[:2]], Counter(d["detail"][:60] for d in letters).most_common(5))

    keys = _changelog_keys(kafka_bootstrap, changelog)
    for key in MODEL_KEYS:
        assert key in keys, key
    assert f"c\x1f{judge_name('fraud-v3', 1, 2)}\x1fx0" in keys and f"c\x1ffraud-v3\x1fx0" not in keys
    assert _restored(logs, a_from, procs["b"].log_start), "no instance restored a partition's state after the kill"
