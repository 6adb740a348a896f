"""The ``stream-monitor`` command line: the parser, and ``main`` that runs one command module.

Exit codes (:mod:`stream_monitor.commands.common`): 0 ok, 2 usage or config error (the message
names the field), 1 runtime failure. This package is the only place that writes to stdout, and
nothing outside it imports it except ``stream_monitor.__main__``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from stream_monitor.commands.common import EXIT_USAGE, default_log_format, run_command
from stream_monitor.ops.logs import configure_logging

# each command's module and function, imported when that command runs: ``replay`` need not load
# kafka, the bridges or the runtime (what ``run``, ``bridge`` and ``demo`` import)
COMMANDS = {
    "run": "stream_monitor.commands.run:cmd_run",
    "check-config": "stream_monitor.commands.check_config:cmd_check_config",
    "demo": "stream_monitor.commands.demo:cmd_demo",
    "replay": "stream_monitor.commands.replay:cmd_replay",
    "export": "stream_monitor.commands.export:cmd_export",
    "baseline": "stream_monitor.commands.baseline:cmd_baseline",
    "bridge": "stream_monitor.commands.bridge:cmd_bridge",
    "topics": "stream_monitor.commands.topics:cmd_topics",
}


def command_function(name: str) -> Callable[[argparse.Namespace], int]:
    """The function of command ``name`` (its module imported now)."""
    module, function = COMMANDS[name].split(":")
    found: Any = getattr(importlib.import_module(module), function)
    return found  # type: ignore[no-any-return]
QUIET_COMMANDS = ("demo", "replay", "check-config", "topics")  # log WARNING and above unless told otherwise


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors exit 2 with the usage line."""

    def error(self, message: str) -> None:  # usage errors exit 2 (argparse's default too), with help hint
        """Print the usage line and exit 2."""
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _kafka_flags(p: argparse.ArgumentParser, topic_flag: bool = True) -> None:
    p.add_argument("--config", "-c", help="YAML config file (env: STREAM_MONITOR_CONFIG)")
    p.add_argument("--bootstrap-servers", help="host:port[,host:port] (env: STREAM_MONITOR_BOOTSTRAP_SERVERS)")
    if topic_flag:
        p.add_argument("--input-topic", action="append", help="input topic; repeat for several (env: STREAM_MONITOR_INPUT_TOPIC, comma-separated)")
    p.add_argument("--alerts-topic", help="alert output topic (env: STREAM_MONITOR_ALERTS_TOPIC)")


def build_parser() -> argparse.ArgumentParser:
    """The ``stream-monitor`` argument parser: one sub-command per module of this package."""
    parser = _Parser(prog="stream-monitor", description="Watch deployed ML models for drift; emit deduplicated alerts.")
    parser.add_argument("--log-level", help="DEBUG | INFO | WARNING | ERROR (env: STREAM_MONITOR_LOG_LEVEL)")
    parser.add_argument(
        "--log-format",
        choices=["json", "console"],
        help="logs (always on stderr): json, or console text; default console when stderr is a terminal, else json (env: STREAM_MONITOR_LOG_FORMAT)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run the monitor as a consumer-group member (the sidecar)")
    _kafka_flags(run)
    run.add_argument("--group-id", help="consumer group (env: STREAM_MONITOR_GROUP_ID)")
    run.add_argument("--metrics-port", type=int, help="HTTP port for the status page /, /metrics, /healthz, /readyz; 0 = any free port (env: STREAM_MONITOR_METRICS_PORT)")
    run.add_argument("--label-topic", help="label events topic (env: STREAM_MONITOR_LABEL_TOPIC)")
    run.add_argument("--at-least-once", action="store_true", help="disable transactions (faster, may duplicate alerts after a crash)")

    demo = sub.add_parser("demo", help="local broker + drifting event stream + monitor; prints alerts as they fire")
    demo.add_argument("--events", type=int, default=60_000, help="events per model (default 60000)")
    demo.add_argument("--rate", type=float, default=3000.0, help="events per second to produce, 0 = as fast as possible")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--bootstrap-servers", help="use this broker instead of starting the local one")
    demo.add_argument("--port", type=int, default=int(os.environ.get("KAFKA_PORT", "9092")), help="port of the local broker")
    demo.add_argument("--keep-broker", action="store_true", help="leave the local broker running at exit")

    replay = sub.add_parser("replay", help="replay a topic or file over an event-time range, deterministically")
    replay.add_argument("--config", "-c", help="YAML config file")
    replay.add_argument("--bootstrap-servers")
    src = replay.add_mutually_exclusive_group(required=True)
    src.add_argument("--topic", action="append", help="topic to replay (all partitions); repeat for several")
    src.add_argument("--input", type=Path, help="JSONL(.gz) file export of inference events")
    replay.add_argument(
        "--labels", type=Path, action="append",
        help="JSONL(.gz) file of label events, joined to the replayed predictions (with --topic, the config's kafka.label_topic is read too)",
    )  # fmt: skip
    replay.add_argument("--from", dest="from_time", help="event-time start (ISO-8601 or epoch ms), inclusive")
    replay.add_argument("--to", dest="to_time", help="event-time end (ISO-8601 or epoch ms), exclusive")
    replay.add_argument("--alerts-out", type=Path, required=True, help="write alert events here (JSONL)")
    replay.add_argument("--alerts-topic", help="also publish alerts to this topic (never the production one unless named)")
    replay.add_argument("--retraining-out", type=Path, help="write retraining events here (JSONL; retraining.enabled in the config)")
    replay.add_argument("--dead-letters-out", type=Path, help="write dead letters here (JSONL)")
    replay.add_argument("--report", type=Path, help="self-contained HTML report")
    replay.add_argument("--report-dir", type=Path, help="directory for SVG plots, summary.json and report.html")
    replay.add_argument("--state-from", type=Path, help="start from a state checkpoint file")
    replay.add_argument("--state-out", type=Path, help="write the final state to a checkpoint file")
    replay.add_argument("--instance", default="replay", help="monitor.instance written into alerts (default: replay)")
    replay.add_argument("--progress", choices=["auto", "bar", "log", "none"], default="auto")
    replay.add_argument("--batch-size", type=int, default=5000, help="records per processing step (output does not depend on it)")
    replay.add_argument("--lateness", type=float, default=0.0, help="--topic: also read records whose Kafka timestamp is up to this many seconds past --to (or before --from), for events that arrived late")

    export = sub.add_parser("export", help="export a topic to a JSONL(.gz) file that replay --input reads")
    export.add_argument("--bootstrap-servers", required=False)
    export.add_argument("--config", "-c")
    export.add_argument("--topic", action="append", required=True)
    export.add_argument("--from", dest="from_time")
    export.add_argument("--to", dest="to_time")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--progress", choices=["auto", "bar", "log", "none"], default="auto")

    baseline = sub.add_parser("baseline", help="build a reference profile from training data")
    baseline.add_argument("--input", type=Path, required=True, help="training data: .csv, .jsonl(.gz) or .parquet")
    baseline.add_argument("--model", required=True)
    baseline.add_argument("--out", type=Path, required=True)
    baseline.add_argument(
        "--prediction-column", action="append", metavar="COLUMN | OUTPUT=COLUMN",
        help="column holding the model's prediction (channel __prediction__); OUTPUT=COLUMN: the column holds output OUTPUT of an object "
        "prediction (channel __prediction__.OUTPUT, as run names it), repeat per output",
    )
    baseline.add_argument("--config", "-c", help="the monitor config: the model's score_output/class_output, task and positive class "
                          "(a COLUMN named after a configured output is that output) (env: STREAM_MONITOR_CONFIG)")
    baseline.add_argument("--label-column", help="column holding the label")

    check = sub.add_parser("check-config", help="validate a config and explain what it monitors")
    check.add_argument("config", type=Path)
    check.add_argument(
        "--sample",
        type=Path,
        help="JSONL(.gz) of inference events (or of the input format, when all input topics share one): "
        "configured channels that neither a baseline nor a sample record contains are warnings",
    )

    bridge = sub.add_parser(
        "bridge",
        help="forward alert events to on-call tooling (Alertmanager, PagerDuty), or retraining events to a webhook",
        description="Consume the alert topic (read_committed, its own group) and deliver each alert; offsets are "
        "committed only after the receiver accepted it. Mapping: see stream_monitor/bridges and docs/deploying.md.",
    )
    bridge.add_argument("target", choices=["alertmanager", "pagerduty", "retraining"])
    bridge.add_argument("--config", "-c", help="YAML config file: the kafka section is used (env: STREAM_MONITOR_CONFIG)")
    bridge.add_argument("--bootstrap-servers", help="host:port[,host:port] (env: STREAM_MONITOR_BOOTSTRAP_SERVERS)")
    bridge.add_argument("--alerts-topic", help="alert topic to read (env: STREAM_MONITOR_ALERTS_TOPIC)")
    bridge.add_argument("--group-id", help="the bridge's consumer group (env: STREAM_MONITOR_BRIDGE_GROUP_ID; default <kafka.group_id>-bridge-<target>)")
    bridge.add_argument(
        "--url",
        help="Alertmanager base URL(s), comma-separated for an HA pair; or the PagerDuty events endpoint "
        "(default https://events.pagerduty.com/v2/enqueue); or the webhook of retraining events (env: STREAM_MONITOR_BRIDGE_URL)",
    )
    bridge.add_argument("--routing-key", help="PagerDuty routing key; prefer --routing-key-file (env: STREAM_MONITOR_PAGERDUTY_ROUTING_KEY)")
    bridge.add_argument("--routing-key-file", help="file holding the PagerDuty routing key (env: STREAM_MONITOR_PAGERDUTY_ROUTING_KEY_FILE)")
    bridge.add_argument("--resend-interval", type=float, help="seconds between re-sends of firing alerts to Alertmanager (default 60; env: STREAM_MONITOR_BRIDGE_RESEND_INTERVAL)")
    bridge.add_argument("--generator-url", help="generatorURL/client_url: a base URL or a template with {model} {feature} {detector} {fingerprint} (env: STREAM_MONITOR_BRIDGE_GENERATOR_URL)")
    bridge.add_argument(
        "--header", action="append", metavar="'NAME: VALUE'",
        help="extra HTTP header on every POST, e.g. an auth header for a webhook; repeat. Take a secret from a file or a variable, "
        "never the command line: 'Authorization: Bearer ${file:/run/secrets/token}' or '${env:VAR}' (config: bridge.headers; values never logged)",
    )
    bridge.add_argument("--label", action="append", help="extra Alertmanager label K=V; repeat (env: STREAM_MONITOR_BRIDGE_LABELS, comma-separated)")
    bridge.add_argument("--retry-initial", type=float, help="first retry delay in seconds when a request is not accepted (default 0.5)")
    bridge.add_argument("--retry-max", type=float, help="longest retry delay in seconds (default 30)")
    bridge.add_argument("--timeout", type=float, help="deadline of one HTTP request in seconds, the whole answer included (default 10)")
    bridge.add_argument("--metrics-port", type=int, help="serve /metrics, /healthz, /readyz on this port (off by default; env: STREAM_MONITOR_BRIDGE_METRICS_PORT)")
    topics = sub.add_parser(
        "topics",
        help="create the topics the monitor uses (input, labels, alerts, dead letters, changelog), as recommended",
        description="Plan and create every topic the config uses; existing topics are left as they are (idempotent).",
    )
    topics.add_argument("action", choices=["create"])
    _kafka_flags(topics)
    topics.add_argument("--label-topic", help="label events topic (env: STREAM_MONITOR_LABEL_TOPIC)")
    topics.add_argument("--group-id", help="consumer group: names the changelog <group>-state-changelog (env: STREAM_MONITOR_GROUP_ID)")
    topics.add_argument("--partitions", type=int, help="partitions of new input and label topics (default 6; existing inputs decide otherwise)")
    topics.add_argument("--replication-factor", type=int, default=-1, help="replication factor of new topics (default: the broker's)")
    topics.add_argument("--dry-run", action="store_true", help="print what would be created; change nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, configure logging and run the command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(
        args.log_level or os.environ.get("STREAM_MONITOR_LOG_LEVEL") or ("WARNING" if args.command in QUIET_COMMANDS else "INFO"),
        args.log_format or os.environ.get("STREAM_MONITOR_LOG_FORMAT") or default_log_format(),
    )
    if args.command not in COMMANDS:
        parser.error(f"unknown command {args.command}")
        return EXIT_USAGE
    return run_command(args.command, command_function(args.command), args)
