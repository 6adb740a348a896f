"""Topic checks and creation: at start-up (input partition counts, alert/DLQ/changelog topics) and
the full set-up of ``stream-monitor topics create`` (:func:`plan_topics`, :func:`apply_plan`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import structlog
from kafka import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from stream_monitor.config import AppConfig
from stream_monitor.runtime.clients import max_request_size

log = structlog.get_logger("stream_monitor.topics")

CHANGELOG_CONFIGS = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
ALERT_CONFIGS = {"cleanup.policy": "compact"}
REPARTITION_CONFIGS = {"cleanup.policy": "delete", "retention.ms": str(7 * 24 * 3600 * 1000)}
DLQ_CONFIGS = {"cleanup.policy": "delete", "retention.ms": str(14 * 24 * 3600 * 1000)}
# retraining events (keyed by model, every one kept): a month for the pipeline runner to catch up
RETRAINING_CONFIGS = {"cleanup.policy": "delete", "retention.ms": str(30 * 24 * 3600 * 1000)}
# inference and label events: a week of history for replays and late labels
INPUT_CONFIGS = {"cleanup.policy": "delete", "retention.ms": str(7 * 24 * 3600 * 1000)}


def sized(configs: dict[str, str], max_request_size: int) -> dict[str, str]:
    """Topic configs whose ``max.message.bytes`` admits anything our producer may send.

    >>> sized(ALERT_CONFIGS, 2048)
    {'cleanup.policy': 'compact', 'max.message.bytes': '2048'}
    """
    return {**configs, "max.message.bytes": str(max_request_size)}


class TopologyError(RuntimeError):
    """Topics that cannot work together (e.g. a changelog with the wrong partition count)."""


def partition_counts(admin: KafkaAdminClient, topics: list[str]) -> dict[str, int]:
    """Partition count of each of ``topics`` that exists (missing ones are left out)."""
    out: dict[str, int] = {}
    for meta in admin.describe_topics(topics):
        if meta.get("error_code", 0) == 0 and meta.get("partitions"):
            out[meta["name"]] = len(meta["partitions"])
    return out


def wait_for_topics(admin: KafkaAdminClient, topics: list[str], should_stop: Callable[[], bool], poll_s: float = 2.0) -> dict[str, int]:
    """Block until every topic exists (logging what is missing), or until asked to stop."""
    last_log = 0.0
    while True:
        counts = partition_counts(admin, topics)
        missing = [t for t in topics if t not in counts]
        if not missing:
            return counts
        if should_stop():
            raise TopologyError(f"stopped while waiting for input topics {missing}")
        now = time.monotonic()
        if now - last_log > 10:
            log.warning("waiting_for_input_topics", missing=missing)
            last_log = now
        time.sleep(poll_s)


def ensure_topic(admin: KafkaAdminClient, name: str, partitions: int, configs: dict[str, str]) -> int:
    """Create ``name`` if missing; return its partition count."""
    counts = partition_counts(admin, [name])
    if name in counts:
        return counts[name]
    try:
        admin.create_topics({name: {"num_partitions": partitions, "replication_factor": -1, "configs": configs}})
        log.info("topic_created", topic=name, partitions=partitions, configs=configs)
    except TopicAlreadyExistsError:
        pass
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        counts = partition_counts(admin, [name])
        if name in counts:
            return counts[name]
        time.sleep(0.2)
    raise TopologyError(f"topic {name} was created but has no partitions with a leader after 30 s")


def prepare_topology(admin: KafkaAdminClient, cfg: AppConfig, should_stop: Callable[[], bool]) -> int:
    """Check the inputs are co-partitioned and the changelog matches; create what is missing.

    Returns the number of state partitions (input partitions, or repartition-topic partitions).
    """
    k = cfg.kafka
    size = max_request_size(k)
    inputs = list(k.input_topics) + ([k.label_topic] if k.label_topic else [])
    counts = wait_for_topics(admin, inputs, should_stop)
    distinct = set(counts.values())
    if k.state_partitioning == "input" and len(distinct) != 1:
        raise TopologyError(
            f"input topics must have the same partition count (state is per partition number): {counts}. "
            "Repartition them, or run one monitor group per topic."
        )
    n = max(distinct)
    if k.state_partitioning == "model":
        # state lives on the repartition topic's partitions; the changelog must match those
        repartition = k.resolved_repartition_topic()
        have_r = partition_counts(admin, [repartition]).get(repartition)
        if have_r is None:
            if not k.create_topics:
                raise TopologyError(f"repartition topic {repartition} does not exist and kafka.create_topics is false")
            have_r = ensure_topic(admin, repartition, k.repartition_partitions or n, sized(REPARTITION_CONFIGS, size))
        elif k.repartition_partitions is not None and have_r != k.repartition_partitions:
            raise TopologyError(
                f"repartition topic {repartition} has {have_r} partitions, kafka.repartition_partitions says "
                f"{k.repartition_partitions}; state is per repartition partition: use a new repartition and changelog topic"
            )
        n = have_r
    if k.create_topics:
        ensure_topic(admin, k.alerts_topic, 1, sized(ALERT_CONFIGS, size))
        ensure_topic(admin, k.dlq_topic, 1, sized(DLQ_CONFIGS, size))
        if cfg.retraining.enabled:
            ensure_topic(admin, cfg.retraining.topic, 1, sized(RETRAINING_CONFIGS, size))
    if cfg.state.enabled:
        changelog = k.resolved_changelog_topic()
        have = partition_counts(admin, [changelog]).get(changelog)
        if have is None and k.create_topics:
            have = ensure_topic(admin, changelog, n, sized(CHANGELOG_CONFIGS, size))
        if have is None:
            raise TopologyError(f"changelog topic {changelog} does not exist; create it compacted with {n} partitions")
        if have != n:
            raise TopologyError(
                f"changelog topic {changelog} has {have} partitions but the input topics have {n}: state is "
                f"stored per input partition. Delete the changelog (state restarts with a warm-up) or set "
                f"kafka.changelog_topic to a new name."
            )
    return n


@dataclass(frozen=True, slots=True)
class PlannedTopic:
    """One topic of the monitor's set-up: what it is for, what it should look like, what exists."""

    role: str
    name: str
    partitions: int
    configs: dict[str, str]
    existing_partitions: int | None  # None: the topic does not exist
    problem: str | None = None  # an existing topic that cannot work as it is

    @property
    def action(self) -> str:
        """``create``, ``exists`` or ``problem``."""
        if self.problem is not None:
            return "problem"
        return "exists" if self.existing_partitions is not None else "create"


def plan_topics(cfg: AppConfig, existing: dict[str, int], default_partitions: int) -> list[PlannedTopic]:
    """Every topic the config uses, with the partitions and configs recommended for it.

    Input and label topics get ``default_partitions`` unless one of them exists (then its count:
    they must be co-partitioned); the changelog gets the state partition count (inputs, or the
    repartition topic); alerts are compacted (keyed by fingerprint), dead letters kept 14 days,
    retraining events (when enabled) 30 days.
    ``existing`` maps existing topic names to their partition counts.
    """
    k = cfg.kafka
    inputs = [("input", t) for t in k.input_topics] + ([("labels", k.label_topic)] if k.label_topic else [])
    have_inputs = {existing[t] for _, t in inputs if t in existing}
    n = max(have_inputs) if have_inputs else default_partitions
    out: list[PlannedTopic] = []

    def add(role: str, name: str, partitions: int, configs: dict[str, str], must_match: bool = False, why: str = "") -> None:
        have = existing.get(name)
        problem = None
        if must_match and have is not None and have != partitions:
            problem = f"has {have} partitions, needs {partitions} ({why})"
        out.append(PlannedTopic(role, name, partitions, dict(configs), have, problem))

    co_partitioned = k.state_partitioning == "input"
    for role, name in inputs:
        add(role, name, n, INPUT_CONFIGS, co_partitioned and len(inputs) > 1, "input and label topics must be co-partitioned")
    state_n = n
    if k.state_partitioning == "model":
        repartition = k.resolved_repartition_topic()
        state_n = k.repartition_partitions or existing.get(repartition) or n
        add("repartition", repartition, state_n, REPARTITION_CONFIGS, k.repartition_partitions is not None, "kafka.repartition_partitions")
    add("alerts", k.alerts_topic, 1, ALERT_CONFIGS)
    add("dead letters", k.dlq_topic, 1, DLQ_CONFIGS)
    if cfg.retraining.enabled:
        add("retraining", cfg.retraining.topic, 1, RETRAINING_CONFIGS)
    if cfg.state.enabled:
        add("changelog", k.resolved_changelog_topic(), state_n, CHANGELOG_CONFIGS, True, "state is stored per state partition")
    return out


def apply_plan(admin: KafkaAdminClient, plan: list[PlannedTopic], replication_factor: int = -1) -> list[str]:
    """Create the planned topics that do not exist (idempotent); returns the names created."""
    created = []
    for t in plan:
        if t.action != "create":
            continue
        try:
            admin.create_topics({t.name: {"num_partitions": t.partitions, "replication_factor": replication_factor, "configs": t.configs}})
            created.append(t.name)
            log.info("topic_created", topic=t.name, partitions=t.partitions, configs=t.configs)
        except TopicAlreadyExistsError:  # created meanwhile by someone else: fine
            pass
    if created:
        admin.wait_for_topics(created, timeout_ms=30_000)  # every partition has a leader
    return created
