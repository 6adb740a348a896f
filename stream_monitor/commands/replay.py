"""``stream-monitor replay``: the monitor over a topic or file for an event-time range, deterministically."""

from __future__ import annotations

import argparse
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Iterable

import orjson
import structlog

from stream_monitor.baseline import load_baselines
from stream_monitor.commands.common import EXIT_OK, config_dir, load_app_config, split_topics
from stream_monitor.config import AppConfig, ConfigError
from stream_monitor.core import events as ev
from stream_monitor.core.monitor import PartitionMonitor
from stream_monitor.core.signing import SigningKeys
from stream_monitor.core.spec import MonitorSpec
from stream_monitor.ops.collector import tune_collector
from stream_monitor.replay.engine import ReplayEngine, ReplayOutcome
from stream_monitor.replay.errors import ReplayUsageError
from stream_monitor.replay.files import atomic_write, lines, read_state_file, write_state_file
from stream_monitor.replay.progress import Progress, progress_mode
from stream_monitor.replay.sources import DEFAULT_BATCH_SIZE, FileSource, Source, TopicSource, topic_consumer
from stream_monitor.replay.timerange import TimeRange
from stream_monitor.report.collect import ReportCollector, ReportMeta
from stream_monitor.report.html import write_report, write_report_dir

log = structlog.get_logger("stream_monitor.replay")


def publish(cfg: AppConfig, topic: str, payloads: Iterable[bytes]) -> int:
    """Publish alert payloads to ``topic``, keyed by fingerprint; returns how many were sent."""
    from stream_monitor.runtime import clients  # only when publishing: a file replay never loads kafka

    producer = clients.producer(cfg.kafka, f"stream-monitor-replay-{cfg.instance}", None)
    sent = 0
    try:
        for payload in payloads:
            key = orjson.loads(payload)["fingerprint"].encode()
            producer.send(topic, key=key, value=payload)
            sent += 1
        producer.flush()
    finally:
        producer.close(timeout=10)
    return sent


def format_summary(outcome: ReplayOutcome, source: str, written: dict[str, str]) -> str:
    """The end-of-replay summary printed to stdout."""
    o = outcome
    when = (
        f"{ev.format_event_time(o.first_event_ms)} .. {ev.format_event_time(o.last_event_ms)}"
        if o.first_event_ms is not None and o.last_event_ms is not None
        else "-"
    )
    invalid = sum(o.invalid_by_reason.values())
    out = [
        f"replay of {source}: {o.records_read:,} records in {o.seconds:.1f} s ({o.rate:,.0f} records/s)",
        f"  partitions {','.join(map(str, o.partitions)) or '-'}; event time {when}",
    ]
    if o.records_skipped:
        out.append(f"  skipped outside --from/--to: {o.records_skipped:,}; monitored: {o.records_processed:,}")
    by_reason = ", ".join(f"{k} {v:,}" for k, v in sorted(o.invalid_by_reason.items()))
    out.append(f"  invalid records: {invalid:,}" + (f" ({by_reason})" if by_reason else ""))

    def counts(c: Counter[str]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "-"

    out.append(f"  alert events: {o.alerts}  status: {counts(o.alerts_by_status)}")
    if o.alerts:
        out.append(f"    by kind: {counts(o.alerts_by_kind)}")
        out.append(f"    by severity: {counts(o.alerts_by_severity)}")
    if o.retraining:
        out.append(f"  retraining events: {o.retraining}")
    for what, where in written.items():
        out.append(f"  {what}: {where}")
    return "\n".join(out) + "\n"


def _check_flags(args: argparse.Namespace) -> tuple[TimeRange, int, int]:
    """Validate the flags that need no config: (time range, batch size, lateness in ms)."""
    time_range = TimeRange.parse(getattr(args, "from_time", None), getattr(args, "to_time", None))
    batch_size = getattr(args, "batch_size", None)
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else int(batch_size)
    lateness_ms = int(float(getattr(args, "lateness", 0) or 0) * 1000)
    if batch_size < 1:
        raise ReplayUsageError(f"--batch-size must be at least 1, got {batch_size}")
    if args.input is not None and not Path(args.input).is_file():
        raise ReplayUsageError(f"--input {args.input}: no such file")
    for path in getattr(args, "labels", None) or []:
        if not Path(path).is_file():
            raise ReplayUsageError(f"--labels {path}: no such file")
    if args.state_from is not None and not Path(args.state_from).is_file():
        raise ReplayUsageError(f"--state-from {args.state_from}: no such file")
    return time_range, batch_size, lateness_ms


def _state_keys(args: argparse.Namespace, cfg: AppConfig) -> SigningKeys | None:
    """The keys that sign and verify state files (None without a state flag); a bad or missing secret is a config error."""
    flag = "--state-out" if args.state_out is not None else "--state-from" if args.state_from is not None else None
    if flag is None:
        return None
    try:
        return cfg.state.signing_keys()
    except ConfigError as exc:
        raise ReplayUsageError(f"{flag} needs a real state secret: {exc}") from None


def _open_source(args: argparse.Namespace, cfg: AppConfig, time_range: TimeRange, lateness_ms: int, batch_size: int) -> Source:
    """``--input`` file or ``--topic`` partitions (a group-less consumer)."""
    if args.input is not None:
        return FileSource(args.input)
    consumer = topic_consumer(cfg.kafka, f"stream-monitor-replay-{cfg.instance}-{uuid.uuid4().hex[:6]}")  # ReplayUsageError: exit 2
    topics = split_topics(args.topic)
    label_topic = cfg.kafka.label_topic
    if label_topic and label_topic not in topics:
        topics.append(label_topic)  # labels are backtested with their predictions
    return TopicSource(consumer, topics, time_range, lateness_ms, batch_size)


def _run_source(engine: ReplayEngine, source: Source, progress: Progress, label_files: list[Path] | None = None) -> ReplayOutcome:
    """Feed every chunk of ``source`` (then of the label files) to ``engine``; returns the outcome."""
    try:
        if isinstance(source, FileSource):  # lines read straight into rows where they are plain events
            for lines in source.line_chunks():
                engine.feed_lines(lines)
                progress.update(engine.outcome.records_read, engine.outcome.last_event_ms, source.fraction_done())
        else:
            for chunk in source.chunks():
                engine.feed(chunk)
                progress.update(engine.outcome.records_read, engine.outcome.last_event_ms, source.fraction_done())
        for path in label_files or []:
            labels = FileSource(path)
            try:
                for lines in labels.line_chunks():
                    engine.feed_lines(lines, labels=True)
            finally:
                labels.close()
        outcome = engine.finish()
        progress.update(outcome.records_read, outcome.last_event_ms, 1.0, force=progress.mode == "log")
        return outcome
    finally:
        progress.close()
        source.close()


def _write_report(args: argparse.Namespace, collector: ReportCollector, engine: ReplayEngine, meta: ReportMeta, written: dict[str, str]) -> None:
    """``--report`` and ``--report-dir``."""
    data = collector.build(engine.monitors, meta)
    if args.report is not None:
        write_report(data, args.report)
        written["report"] = str(args.report)
    if args.report_dir is not None:
        files = write_report_dir(data, args.report_dir)
        written["report dir"] = f"{args.report_dir} ({len(files)} files)"


def _write_outputs(
    args: argparse.Namespace, cfg: AppConfig, engine: ReplayEngine, outcome: ReplayOutcome, source: str, keys: SigningKeys | None
) -> dict[str, str]:
    """Alerts, published alerts, retraining events, dead letters and state, as asked; returns what was written where."""
    written: dict[str, str] = {}
    n = atomic_write(args.alerts_out, lines(engine.alert_payloads()))
    written["alerts"] = f"{args.alerts_out} ({n} lines)"
    if args.alerts_topic:  # only when asked, and only the topic named on the command line
        sent = publish(cfg, args.alerts_topic, engine.alert_payloads())
        written["published"] = f"{sent} alerts to topic {args.alerts_topic}"
    if getattr(args, "retraining_out", None) is not None:
        n = atomic_write(args.retraining_out, lines(engine.retraining_payloads()))
        written["retraining events"] = f"{args.retraining_out} ({n} lines)"
    if args.dead_letters_out is not None:
        n = atomic_write(args.dead_letters_out, lines(engine.dead_letter_payloads()))
        written["dead letters"] = f"{args.dead_letters_out} ({n} lines)"
    if args.state_out is not None and keys is not None:
        meta = {"source": source, "last_event_time": outcome.last_event_ms, "records": outcome.records_processed}
        size = write_state_file(args.state_out, engine.monitors, keys, meta)
        written["state"] = f"{args.state_out} ({size:,} bytes, {len(engine.monitors)} partitions)"
    return written


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay, write the outputs asked for and print a summary; exit 0 ok, 2 bad flag value, 1 runtime failure."""
    time_range, batch_size, lateness_ms = _check_flags(args)
    cfg = load_app_config(args, {"instance": getattr(args, "instance", None) or "replay"})
    spec: MonitorSpec = cfg.monitor_spec()
    if getattr(args, "labels", None):  # label files to join: remember predictions as with a label topic
        spec = spec.model_copy(update={"label_join_max_pending": cfg.label_join_max_pending})
    baselines = load_baselines(spec, config_dir(args))  # ConfigError: exit 2
    keys = _state_keys(args, cfg)  # ConfigError naming the field: exit 2
    monitors: dict[int, PartitionMonitor] = {}
    if args.state_from is not None and keys is not None:
        items, state_meta = read_state_file(args.state_from, keys)
        monitors = {p: PartitionMonitor.from_state_items(spec, p, part, baselines) for p, part in items.items()}
        log.info("replay_state_loaded", path=str(args.state_from), partitions=sorted(monitors), meta=state_meta)
    collector = ReportCollector() if args.report is not None or args.report_dir is not None else None
    engine = ReplayEngine(
        spec,
        time_range=time_range,
        batch_size=batch_size,
        collector=collector,
        monitors=monitors,
        baselines=baselines,
        keep_dead_letters=args.dead_letters_out is not None,
        label_topics=[cfg.kafka.label_topic] if cfg.kafka.label_topic and args.input is None else [],
    )
    source = _open_source(args, cfg, time_range, lateness_ms, batch_size)
    progress = Progress(progress_mode(getattr(args, "progress", None)), sys.stderr, "replay")
    tune_collector()
    try:
        outcome = _run_source(engine, source, progress, getattr(args, "labels", None))
        written = _write_outputs(args, cfg, engine, outcome, source.description, keys)
        if collector is not None:
            meta = ReportMeta(
                source=source.description,
                instance=spec.instance,
                version=spec.version,
                from_ms=time_range.start_ms,
                to_ms=time_range.end_ms,
                records_read=outcome.records_read,
                records_processed=outcome.records_processed,
                invalid_by_reason=dict(outcome.invalid_by_reason),
            )
            _write_report(args, collector, engine, meta, written)
    finally:
        engine.close()
    sys.stdout.write(format_summary(outcome, source.description, written))
    sys.stdout.flush()
    log.info("replay_done", records=outcome.records_read, alerts=outcome.alerts, seconds=round(outcome.seconds, 3))
    return EXIT_OK
