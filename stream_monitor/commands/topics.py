"""``stream-monitor topics create``: create every topic the config uses, as recommended (idempotent).

Input and label topics (retention 7 days), alerts (compacted: the latest state of each alert by
fingerprint), dead letters (14 days), the state changelog (compacted, one partition per input
partition) and, with model partitioning, the repartition topic. Topics that exist are left as they
are; one whose partition count cannot work is reported and the command exits 1. ``--dry-run``
prints the plan and changes nothing.
"""

from __future__ import annotations

import argparse
import sys

from stream_monitor.commands.common import EXIT_OK, EXIT_RUNTIME, load_app_config
from stream_monitor.config import ConfigError
from stream_monitor.runtime import clients
from stream_monitor.runtime.topics import PlannedTopic, apply_plan, partition_counts, plan_topics

DEFAULT_PARTITIONS = 6


def _describe_configs(configs: dict[str, str]) -> str:
    parts = []
    for key, value in configs.items():
        if key.endswith(".ms") and value.isdigit() and int(value) >= 86_400_000 and int(value) % 86_400_000 == 0:
            parts.append(f"{key}={value} ({int(value) // 86_400_000} d)")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def _partitions(n: int) -> str:
    return f"{n} partition" + ("" if n == 1 else "s")


def format_plan(plan: list[PlannedTopic], dry_run: bool, created: set[str] | None = None) -> str:
    """One line per topic: what happens (or would happen) to it, its partitions and configs."""
    lines = []
    width = max(len(t.name) for t in plan)
    for t in plan:
        if t.problem is not None:
            verb, detail = "PROBLEM", f"{t.role}: {t.problem}"
        elif t.existing_partitions is not None:
            verb, detail = "exists", f"{t.role}, {_partitions(t.existing_partitions)} (left as it is)"
        else:
            verb = "would create" if dry_run else ("created" if created is None or t.name in created else "exists")
            detail = f"{t.role}, {_partitions(t.partitions)}, {_describe_configs(t.configs)}"
        what = f"{verb:<12} {t.name:<{width}}  {detail}"
        lines.append(what)
    return "\n".join(lines) + "\n"


def cmd_topics(args: argparse.Namespace) -> int:
    """Plan (and unless ``--dry-run`` create) the topics; exit 1 when an existing topic cannot work."""
    if args.partitions is not None and args.partitions < 1:
        raise ConfigError(f"--partitions must be at least 1, got {args.partitions}")
    cfg = load_app_config(args)
    k = cfg.kafka
    admin = clients.admin(k, f"stream-monitor-{cfg.instance}-topics")
    try:
        names = list(k.input_topics) + [k.label_topic or "", k.alerts_topic, k.dlq_topic, k.resolved_changelog_topic(), k.resolved_repartition_topic()]
        existing = partition_counts(admin, [n for n in names if n])
        plan = plan_topics(cfg, existing, args.partitions or DEFAULT_PARTITIONS)
        created = None if args.dry_run else set(apply_plan(admin, plan, args.replication_factor))
    finally:
        admin.close()
    sys.stdout.write(format_plan(plan, args.dry_run, created))
    problems = [t for t in plan if t.problem is not None]
    if problems:
        sys.stdout.write(f"{len(problems)} topic(s) cannot work as they are: see docs/deploying.md (Topics)\n")
        return EXIT_RUNTIME
    return EXIT_OK
