"""``stream-monitor topics create`` against the real broker: dry run, creation as recommended, idempotence, problems."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from stream_monitor.runtime.topics import ALERT_CONFIGS, CHANGELOG_CONFIGS, DLQ_CONFIGS, INPUT_CONFIGS, REPARTITION_CONFIGS
from tests.kafka_fixtures import create_topic

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]


def _cli(bootstrap: str, inputs: str, labels: str, alerts: str, group: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_MONITOR_")}
    env["STREAM_MONITOR_DLQ_TOPIC"] = f"{alerts}-dlq"
    args = [
        sys.executable, "-m", "stream_monitor", "topics", "create", "--bootstrap-servers", bootstrap,
        "--input-topic", inputs, "--label-topic", labels, "--alerts-topic", alerts, "--group-id", group, *extra,
    ]  # fmt: skip
    return subprocess.run(args, capture_output=True, text=True, timeout=180, env=env)


def _topics(bootstrap: str, names: list[str]) -> dict[str, tuple[int, dict[str, str]]]:
    """Partition count and (non-default) configs of each existing topic of ``names``."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        meta = {m["name"]: len(m["partitions"]) for m in admin.describe_topics(names) if m.get("error_code", 0) == 0 and m.get("partitions")}
        resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in meta]
        described = admin.describe_configs(resources) if resources else {}
        configs = {name: {k: str(v["value"]) if isinstance(v, dict) else str(v) for k, v in cfg.items()} for name, cfg in described.get("topic", {}).items()}
        return {n: (p, configs.get(n, {})) for n, p in meta.items()}
    finally:
        admin.close()


def test_topics_create_dry_run_creates_then_is_idempotent(kafka_bootstrap, unique_name):
    inputs, labels, alerts, group = unique_name("in"), unique_name("labels"), unique_name("alerts"), unique_name("group")
    changelog, dlq, by_model = f"{group}-state-changelog", f"{alerts}-dlq", f"{group}-by-model"
    names = [inputs, labels, alerts, dlq, changelog, by_model]

    dry = _cli(kafka_bootstrap, inputs, labels, alerts, group, "--partitions", "4", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert sum(line.startswith("would create") for line in dry.stdout.splitlines()) == len(names), dry.stdout
    assert _topics(kafka_bootstrap, names) == {}, "a dry run created topics"

    made = _cli(kafka_bootstrap, inputs, labels, alerts, group, "--partitions", "4")
    assert made.returncode == 0, made.stderr
    topics = _topics(kafka_bootstrap, names)
    assert {n: p for n, (p, _) in topics.items()} == {inputs: 4, labels: 4, alerts: 1, dlq: 1, changelog: 4, by_model: 4}
    for name, expected in [(inputs, INPUT_CONFIGS), (labels, INPUT_CONFIGS), (alerts, ALERT_CONFIGS), (dlq, DLQ_CONFIGS), (changelog, CHANGELOG_CONFIGS), (by_model, REPARTITION_CONFIGS)]:
        got = topics[name][1]
        assert {k: got.get(k) for k in expected} == expected, (name, got)

    again = _cli(kafka_bootstrap, inputs, labels, alerts, group, "--partitions", "8")
    assert again.returncode == 0, again.stderr
    assert [line.split()[0] for line in again.stdout.splitlines()] == ["exists"] * len(names), again.stdout
    assert _topics(kafka_bootstrap, [inputs])[inputs][0] == 4  # left as it is


def test_changelog_that_does_not_match_the_inputs_is_a_problem(kafka_bootstrap, unique_name):
    inputs, labels, alerts, group = unique_name("in"), unique_name("labels"), unique_name("alerts"), unique_name("group")
    create_topic(kafka_bootstrap, inputs, 3)
    create_topic(kafka_bootstrap, f"{group}-state-changelog", 2, configs={"cleanup.policy": "compact"})
    out = _cli(kafka_bootstrap, inputs, labels, alerts, group)
    assert out.returncode == 1, out.stdout + out.stderr
    problem = [line for line in out.stdout.splitlines() if line.startswith("PROBLEM")]
    assert len(problem) == 1 and f"{group}-state-changelog" in problem[0] and "has 2 partitions, needs 3" in problem[0], out.stdout
    # the labels topic follows the existing input's partition count
    assert _topics(kafka_bootstrap, [labels])[labels][0] == 3
