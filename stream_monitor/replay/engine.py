"""The replay engine: one :class:`PartitionMonitor` per source partition, output in a defined order."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Iterator

import orjson
import structlog

from stream_monitor.core.events import DeadLetter, DeadLetterReason, SourcePosition
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.reference import Reference
from stream_monitor.core.spec import MonitorSpec
from stream_monitor.replay.errors import ReplayUsageError
from stream_monitor.replay.sources import DEFAULT_BATCH_SIZE, SourceRecord
from stream_monitor.replay.spool import SPILL_AFTER, SortedSpool
from stream_monitor.replay.timerange import CALENDAR_MS, TimeRange, record_event_time

if TYPE_CHECKING:
    from stream_monitor.report.collect import ReportCollector

log = structlog.get_logger("stream_monitor.replay")


@dataclass(slots=True)
class ReplayOutcome:
    """What a replay did: counts for the summary, and the time range it saw."""

    records_read: int = 0
    records_skipped: int = 0  # outside --from/--to
    records_processed: int = 0
    invalid_by_reason: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    alerts_by_status: Counter[str] = field(default_factory=Counter)
    alerts_by_kind: Counter[str] = field(default_factory=Counter)
    alerts_by_severity: Counter[str] = field(default_factory=Counter)
    partitions: list[int] = field(default_factory=list)
    first_event_ms: int | None = None
    last_event_ms: int | None = None
    seconds: float = 0.0

    @property
    def alerts(self) -> int:
        """Alert events of every status."""
        return sum(self.alerts_by_status.values())

    @property
    def rate(self) -> float:
        """Records read per second."""
        return self.records_read / self.seconds if self.seconds > 0 else 0.0


class ReplayEngine:
    """Feeds source records to one :class:`PartitionMonitor` per partition and collects the output.

    Records outside ``time_range`` (by event time) are skipped before any monitor sees them. A
    record without a usable event time is passed on, so the core turns it into a dead letter,
    when its Kafka record timestamp is in the range or it has none (a plain file line): a topic
    replay, bounded by record timestamps, and a file replay of its export then agree.
    Each partition's records are buffered and processed ``batch_size`` at a time.

    >>> from stream_monitor.core.spec import MonitorSpec
    >>> engine = ReplayEngine(MonitorSpec(instance="doc"))
    >>> engine.feed([SourceRecord("t", 1, 0, None, None, b"not json")])
    >>> outcome = engine.finish()
    >>> outcome.partitions, dict(outcome.invalid_by_reason), [orjson.loads(d)["source"] for d in engine.dead_letter_payloads()]
    ([1], {'invalid_json': 1}, [{'offset': 0, 'partition': 1, 'timestamp_ms': None, 'topic': 't'}])
    """

    def __init__(
        self,
        spec: MonitorSpec,
        *,
        time_range: TimeRange = TimeRange(),
        batch_size: int = DEFAULT_BATCH_SIZE,
        collector: ReportCollector | None = None,
        monitors: dict[int, PartitionMonitor] | None = None,
        baselines: dict[str, dict[str, Reference]] | None = None,
        keep_dead_letters: bool = True,
        spill_after: int = SPILL_AFTER,
    ) -> None:
        if batch_size < 1:
            raise ReplayUsageError(f"--batch-size must be at least 1, got {batch_size}")
        self.spec = spec
        self.time_range = time_range
        self.batch_size = batch_size
        self.collector = collector
        self.monitors: dict[int, PartitionMonitor] = dict(monitors or {})
        self.baselines = baselines
        self.keep_dead_letters = keep_dead_letters
        self.outcome = ReplayOutcome()
        self._buffers: dict[int, list[InputRecord]] = {}
        self._seen: set[int] = set()
        self._seq: Counter[int] = Counter()
        self._alerts = SortedSpool(spill_after)
        self._dead = SortedSpool(spill_after)
        self._started = time.perf_counter()

    # ---------------------------------------------------------------- feeding
    def feed(self, records: Iterable[SourceRecord]) -> None:
        """Route records to their partitions' buffers; process every full batch."""
        o = self.outcome
        rng = self.time_range
        filtering = rng.bounded
        max_bytes = self.spec.max_record_bytes
        buffers = self._buffers
        first, last = o.first_event_ms, o.last_event_ms
        for r in records:
            o.records_read += 1
            if r.defect is not None:
                self._defective(r)
                continue
            # every record's event time: for the filter, and for an exact event-time range
            # (a sample would depend on batch boundaries); about 5 % of the processing cost
            t = record_event_time(r.value or b"", r.timestamp, max_bytes)
            if t is None:  # no usable event time: a dead letter of the range its record time is in
                if filtering and r.timestamp is not None and r.timestamp >= 0 and not rng.contains(r.timestamp):
                    o.records_skipped += 1
                    continue
            else:
                if filtering and not rng.contains(t):
                    o.records_skipped += 1
                    continue
                if CALENDAR_MS[0] <= t <= CALENDAR_MS[1]:  # only a date the outputs can show widens the range seen
                    if first is None or t < first:
                        first = t
                    if last is None or t > last:
                        last = t
            p = r.partition
            buf = buffers.get(p)
            if buf is None:
                if p not in self.monitors and len(self.monitors.keys() | buffers.keys()) >= self.spec.limits.replay_partitions:
                    self._refused(r)
                    continue
                buf = buffers[p] = []
                self._seen.add(p)
            buf.append(r.input_record())
            if len(buf) >= self.batch_size:
                self._process(p)
        o.first_event_ms, o.last_event_ms = first, last

    def _defective(self, r: SourceRecord) -> None:
        """A line that is no record: a dead letter of its partition, never seen by a monitor."""
        self._seen.add(r.partition)
        self._dead_letter(r, DeadLetterReason.SCHEMA_VIOLATION, r.defect or "")

    def _refused(self, r: SourceRecord) -> None:
        """A record of one partition more than ``limits.replay_partitions``: a dead letter, and said once."""
        limit = self.spec.limits.replay_partitions
        if not self.outcome.invalid_by_reason[str(DeadLetterReason.LIMIT_EXCEEDED)]:
            log.warning("replay_partition_limit", limit=limit, partition=r.partition, topic=r.topic)
        self._dead_letter(r, DeadLetterReason.LIMIT_EXCEEDED, f"partition {r.partition}: this replay already holds {limit} partitions (limits.replay_partitions)")

    def _dead_letter(self, r: SourceRecord, reason: DeadLetterReason, detail: str) -> None:
        o = self.outcome
        o.records_processed += 1
        o.dead_letters += 1
        o.invalid_by_reason[str(reason)] += 1
        if self.keep_dead_letters:
            position = SourcePosition(r.topic, r.partition, r.offset, r.timestamp)
            dead = DeadLetter(reason, detail, r.value or b"", position)
            self._dead.add((r.partition, r.topic, r.offset), dead.to_json(self.spec.limits.dead_letter_original_bytes))

    def _process(self, partition: int) -> None:
        batch = self._buffers.get(partition)
        if not batch:
            return
        self._buffers[partition] = []
        monitor = self.monitors.get(partition)
        if monitor is None:
            monitor = self.monitors[partition] = PartitionMonitor(self.spec, partition, self.baselines)
        result = monitor.process(batch, record_evaluations=self.collector is not None)
        o = self.outcome
        o.records_processed += result.records
        o.invalid_by_reason.update(result.invalid_by_reason)
        o.dead_letters += len(result.dead_letters)
        for alert in result.alerts:
            seq = self._seq[partition]
            self._seq[partition] = seq + 1
            self._alerts.add((alert.event_time_ms, partition, alert.position.offset, seq), alert.payload)
            a = alert.event
            o.alerts_by_status["escalated" if a.escalated else a.status] += 1
            o.alerts_by_kind[a.kind] += 1
            o.alerts_by_severity[a.severity] += 1
            if self.collector is not None:
                self.collector.add_alert(partition, a)
        if self.keep_dead_letters:
            for dl in result.dead_letters:
                pos = dl.position
                key = (partition, pos.topic, pos.offset) if pos is not None else (partition, "", -1)
                self._dead.add(key, dl.to_json(self.spec.limits.dead_letter_original_bytes))
        if self.collector is not None and result.evaluations:
            self.collector.add_evaluations(partition, result.evaluations)

    def finish(self) -> ReplayOutcome:
        """Process what is left in every buffer; return the counts."""
        for p in sorted(self._buffers):
            self._process(p)
        o = self.outcome
        o.partitions = sorted(self._seen | set(self.monitors))
        o.seconds = time.perf_counter() - self._started
        if self.collector is not None:
            for t in (o.first_event_ms, o.last_event_ms):
                if t is not None:
                    self.collector.observe_time(t)
        return o

    # ---------------------------------------------------------------- output
    def alert_payloads(self) -> Iterator[bytes]:
        """Alert events in (event time, partition, offset, emission order)."""
        return iter(self._alerts)

    def dead_letter_payloads(self) -> Iterator[bytes]:
        """Dead letters in (partition, topic, offset) order."""
        return iter(self._dead)

    def close(self) -> None:
        """Drop the spooled output (temporary files included)."""
        self._alerts.close()
        self._dead.close()

