"""``stream-monitor export``: a topic over a record-time range to a JSONL(.gz) file that ``replay --input`` reads."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

from stream_monitor.commands.common import EXIT_OK, load_app_config, split_topics
from stream_monitor.replay.files import atomic_write
from stream_monitor.replay.progress import Progress, progress_mode
from stream_monitor.replay.sources import TopicSource, encode_envelope, topic_consumer
from stream_monitor.replay.timerange import TimeRange


def cmd_export(args: argparse.Namespace) -> int:
    """Write every record of the topics' partitions as an envelope line; print what was written."""
    time_range = TimeRange.parse(getattr(args, "from_time", None), getattr(args, "to_time", None))
    cfg = load_app_config(args)
    consumer = topic_consumer(cfg.kafka, f"stream-monitor-export-{uuid.uuid4().hex[:6]}")  # ReplayUsageError: exit 2
    source = TopicSource(consumer, split_topics(args.topic), time_range)
    progress = Progress(progress_mode(getattr(args, "progress", None)), sys.stderr, "export")
    started = time.perf_counter()
    count = 0
    partitions: set[tuple[str, int]] = set()

    def envelopes() -> Iterator[bytes]:
        nonlocal count
        for chunk in source.chunks():
            for rec in chunk:
                partitions.add((rec.topic, rec.partition))
                yield encode_envelope(rec) + b"\n"
            count += len(chunk)
            progress.update(count, chunk[-1].timestamp if chunk else None, source.fraction_done())

    out = Path(args.out)
    try:
        atomic_write(out, envelopes(), compress=out.name.endswith(".gz"))
    finally:
        progress.close()
        source.close()
    seconds = time.perf_counter() - started
    sys.stdout.write(
        f"exported {count:,} records from {len(partitions)} partitions of {source.description} to {out} "
        f"({out.stat().st_size:,} bytes) in {seconds:.1f} s ({count / seconds if seconds > 0 else 0:,.0f} records/s)\n"
    )
    return EXIT_OK
