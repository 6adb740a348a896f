"""The topic plan of ``stream-monitor topics create`` (no broker): partitions, configs, problems, wording."""

from __future__ import annotations

from stream_monitor.commands.topics import format_plan
from stream_monitor.config import load_config
from stream_monitor.runtime.topics import ALERT_CONFIGS, CHANGELOG_CONFIGS, REPARTITION_CONFIGS, RETRAINING_CONFIGS, plan_topics


def _cfg(**overrides):
    base = {"kafka.input_topics": ["events"], "kafka.label_topic": "labels", "kafka.alerts_topic": "alerts", "kafka.group_id": "g"}
    return load_config(None, env={}, overrides={**base, **overrides})


def test_fresh_cluster_plan_creates_everything_as_recommended():
    plan = {t.name: t for t in plan_topics(_cfg(), {}, 6)}
    assert {n: (t.role, t.partitions, t.action) for n, t in plan.items()} == {
        "events": ("input", 6, "create"),
        "labels": ("labels", 6, "create"),
        "g-by-model": ("repartition", 6, "create"),  # the default topology: state partitioned by model
        "alerts": ("alerts", 1, "create"),
        _cfg().kafka.dlq_topic: ("dead letters", 1, "create"),
        "g-state-changelog": ("changelog", 6, "create"),
    }
    assert plan["alerts"].configs == ALERT_CONFIGS and plan["g-state-changelog"].configs == CHANGELOG_CONFIGS
    text = format_plan(list(plan.values()), dry_run=True)
    assert "would create events" in text and "retention.ms=604800000 (7 d)" in text and "cleanup.policy=compact" in text


def test_existing_inputs_decide_partitions_and_mismatches_are_problems():
    """State partitioned by input partition: inputs, labels and changelog must be co-partitioned."""
    by_input = {"kafka.state_partitioning": "input"}
    plan = {t.name: t for t in plan_topics(_cfg(**by_input), {"events": 3, "labels": 4, "g-state-changelog": 2}, 6)}
    assert plan["events"].problem is not None and "has 3 partitions, needs 4" in plan["events"].problem and plan["labels"].problem is None
    assert plan["g-state-changelog"].problem is not None and "needs 4" in plan["g-state-changelog"].problem
    ok = {t.name: t for t in plan_topics(_cfg(**by_input), {"events": 3}, 6)}
    assert ok["labels"].partitions == 3 and ok["g-state-changelog"].partitions == 3
    assert format_plan(list(ok.values()), dry_run=False).startswith("exists")


def test_model_partitioning_plans_the_repartition_topic_and_sizes_the_changelog_by_it():
    cfg = _cfg(**{"kafka.state_partitioning": "model", "kafka.repartition_partitions": 2})
    plan = {t.role: t for t in plan_topics(cfg, {"events": 5}, 6)}
    assert plan["repartition"].partitions == 2 and plan["repartition"].configs == REPARTITION_CONFIGS
    assert plan["changelog"].partitions == 2
    assert plan["labels"].problem is None  # inputs need not be co-partitioned here


def test_retraining_topic_is_planned_only_when_enabled():
    assert "retraining" not in {t.role for t in plan_topics(_cfg(), {}, 6)}
    plan = {t.role: t for t in plan_topics(_cfg(**{"retraining.enabled": True, "retraining.topic": "retrain-me"}), {}, 6)}
    assert (plan["retraining"].name, plan["retraining"].partitions, plan["retraining"].configs) == ("retrain-me", 1, RETRAINING_CONFIGS)


def test_bad_retraining_settings_fail_at_start_up_naming_the_field():
    import pytest

    from stream_monitor.config import ConfigError

    with pytest.raises(ConfigError, match="retraining.cooldown_seconds"):
        _cfg(**{"retraining.cooldown_seconds": -5})
    with pytest.raises(ConfigError, match="retraining.on_kinds"):
        _cfg(**{"retraining.on_kinds": ["slo"]})
