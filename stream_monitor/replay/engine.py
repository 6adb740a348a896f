"""The replay engine: every record read as ``run`` reads it, then each model judged once, in event-time order.

Records are read (decoded, validated, dead-lettered) chunk by chunk; their rows are sorted by the
ordering key of :mod:`stream_monitor.core.exchange` (event time, then a digest of the record —
never partition or offset) and judged by one :class:`PartitionMonitor`, as ``run`` judges them
once they are in event-time order. A replay has every record, so none is late: it gives the alerts
``run`` gives when no record came later than ``max_lateness_seconds``.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from operator import attrgetter, eq
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import orjson
import structlog

from stream_monitor.core import events as ev
from stream_monitor.core.events import DeadLetter, DeadLetterReason, SourcePosition
from stream_monitor.core.exchange import INFERENCE, EventView, Row
from stream_monitor.core.split import split_for_judging
from stream_monitor.core.groups import grouped
from stream_monitor.core import kernels
from stream_monitor.core.intake import InputRecord, plain_values, read_inference, read_labels, tie_state
from stream_monitor.core.monitor import PartitionMonitor
from stream_monitor.core.reference import Reference
from stream_monitor.core.spec import MonitorSpec
from stream_monitor.replay.errors import ReplayUsageError
from stream_monitor.replay.sources import DEFAULT_BATCH_SIZE, LineChunk, SourceRecord, decode_line
from stream_monitor.replay.spool import SPILL_AFTER, RowRuns, SortedSpool
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
    retraining: int = 0  # retraining events (when ``retraining.enabled``)
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
    """Reads source records as ``run`` does and judges each model once, in event-time order; collects the output.

    Records outside ``time_range`` (by event time) are skipped before anything reads them. A
    record without a usable event time is passed on, so the core turns it into a dead letter,
    when its Kafka record timestamp is in the range or it has none (a plain file line): a topic
    replay, bounded by record timestamps, and a file replay of its export then agree.
    Records of ``label_topics`` are label events. Rows are judged ``batch_size`` at a time once
    every record was read (:meth:`finish`).

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
        label_topics: Iterable[str] = (),
    ) -> None:
        if batch_size < 1:
            raise ReplayUsageError(f"--batch-size must be at least 1, got {batch_size}")
        self.spec = spec
        self.time_range = time_range
        self.batch_size = batch_size
        self.collector = collector
        self.monitors: dict[int, PartitionMonitor] = dict(monitors or {})
        if not self.monitors:
            self.monitors[0] = PartitionMonitor(spec, 0, baselines)
        self.monitor = next(iter(self.monitors.values()))
        self.baselines = baselines
        self.keep_dead_letters = keep_dead_letters
        self.label_topics = set(label_topics)
        self._grouped = grouped(spec)  # some model's channels are judged in groups, as ``run`` judges them
        self.outcome = ReplayOutcome()
        self._rows = _RowSorter(spill_after)
        self._seen: set[int] = set()
        self._seq = 0
        self._alerts = SortedSpool(spill_after)
        self._dead = SortedSpool(spill_after)
        self._retraining: list[bytes] = []  # at most one per model per cooldown: kept in memory
        kernels.page_hinkley()  # compiled, or loaded from their caches, now: not in the first batch
        kernels.ks_steps_kernel()
        kernels.bin_codes_kernel()
        kernels.ks_window_kernel()
        kernels.bin_counts_kernel()
        self._started = time.perf_counter()

    # ---------------------------------------------------------------- feeding
    def feed(self, records: Iterable[SourceRecord], labels: bool = False) -> None:
        """Read records (those in the time range): dead letters kept, rows queued for :meth:`finish`.

        With ``labels`` every record is a label event (a label file); otherwise those of ``label_topics`` are.
        """
        inference: list[InputRecord] = []
        label_records: list[InputRecord] = []
        self._take(records, labels, inference, label_records)
        self._read(inference, label_records)

    def feed_lines(self, chunk: LineChunk, labels: bool = False) -> None:
        """:meth:`feed` of :meth:`chunk.records() <stream_monitor.replay.sources.LineChunk.records>`, for less.

        A plain event line of the usual shape (:func:`~stream_monitor.core.events.fast_values`,
        with its ``ts``) is parsed once and made its row here, as :func:`read_inference` makes it;
        any other line (an export envelope, a line not of the usual shape, any line of a label
        file or of a topic read in a model server's format) is read by :meth:`feed`'s steps, in
        file order. Counts, dead letters and rows are those of :meth:`feed` (the rows queued in
        another order, which :meth:`finish` sorts away; ``tests/test_replay_lines.py`` checks it).
        """
        topic = chunk.topic
        spec = self.spec
        fmt = spec.input_formats.get(topic)
        if labels or (fmt is not None and fmt.kind != "native") or topic in self.label_topics:
            self.feed(chunk.records(), labels)
            return
        o = self.outcome
        o.records_read += len(chunk.lines)
        rng = self.time_range
        filtering = rng.bounded
        start_ms, end_ms = rng.start_ms, rng.end_ms
        max_bytes = spec.max_record_bytes
        first = last = None  # of the lines read here
        seen = self._seen
        rows: list[Row] = []
        pending: list[SourceRecord] = []  # lines for feed's steps, not taken yet
        inference: list[InputRecord] = []
        label_records: list[InputRecord] = []
        loads, values_of, plain, position, new_tuple = orjson.loads, ev.fast_values, plain_values, ev.SourcePosition, tuple.__new__
        fresh, from_bytes = tie_state, int.from_bytes  # tie_of, inline
        tried = misses = 0
        for number, line in zip(chunk.numbers, chunk.lines):
            if b'"offset"' in line and b'"value' in line:  # perhaps an export envelope: decode_line decides
                pending.append(decode_line(line, topic, number))
                continue
            values = None
            if len(line) <= max_bytes and (misses < 16 or 2 * misses <= tried):  # (the plainest lines: as intake.read_inference_wire)
                tried += 1
                values = plain(line)
                misses += values is None
            if values is None and len(line) <= max_bytes:
                try:
                    obj = loads(line)
                    values = values_of(obj) if type(obj) is dict else None
                except Exception:  # noqa: BLE001 - not JSON (or anything else): feed's steps read the line, and word its dead letter
                    values = None
            t = None if values is None else values[3]
            if t is not None and 0 not in seen and pending:  # may the replay take partition 0? The lines before say
                self._take(pending, False, inference, label_records, counted=True)
                pending = []
            if t is None or 0 not in seen:  # not the usual shape, no ts (a dead letter), or the replay's first record of partition 0
                pending.append(SourceRecord(topic, 0, number, None, None, line))
                continue
            if filtering and ((start_ms is not None and t < start_ms) or (end_ms is not None and t >= end_ms)):
                o.records_skipped += 1
                continue
            if first is None or t < first:  # t is in 1970..3000 (parse_event_time): a date the outputs can show
                first = t
            if last is None or t > last:
                last = t
            tie = fresh()  # tie_of(line)
            tie.update(line)
            tie = from_bytes(tie.digest(), "big", signed=True)
            rows.append(Row(INFERENCE, (t, tie, 0), new_tuple(position, (topic, 0, number, None)), EventView(*values), (), None, line))  # type: ignore[misc]
        if pending:
            self._take(pending, False, inference, label_records, counted=True)
        if first is not None:
            o.first_event_ms = first if o.first_event_ms is None else min(first, o.first_event_ms)
            o.last_event_ms = last if o.last_event_ms is None else max(last, o.last_event_ms)  # type: ignore[type-var]
        if rows:
            o.records_processed += len(rows)
            self._rows.add(rows)
        self._read(inference, label_records)

    def _take(self, records: Iterable[SourceRecord], labels: bool, inference: list[InputRecord], label_records: list[InputRecord], counted: bool = False) -> None:
        """Count records, skip those outside the time range, dead-letter defective and refused ones; the rest to ``inference`` or ``label_records``."""
        o = self.outcome
        rng = self.time_range
        filtering = rng.bounded
        max_bytes = self.spec.max_record_bytes
        first, last = o.first_event_ms, o.last_event_ms
        label_topics = self.label_topics
        for r in records:
            if not counted:
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
            if r.partition not in self._seen and len(self._seen) >= self.spec.limits.replay_partitions:
                self._refused(r)
                continue
            self._seen.add(r.partition)
            (label_records if labels or r.topic in label_topics else inference).append(r.input_record())
        o.first_event_ms, o.last_event_ms = first, last

    def _read(self, inference: list[InputRecord], label_records: list[InputRecord]) -> None:
        """Read taken records into rows (queued for :meth:`finish`) and dead letters (kept), inference then labels."""
        o = self.outcome
        for intake in (read_inference(self.spec, inference) if inference else None, read_labels(label_records) if label_records else None):
            if intake is None:
                continue
            o.records_processed += intake.records
            for dl in intake.dead_letters:
                self._keep_dead_letter(dl)
            self._rows.add(intake.ordered)

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
        self.outcome.records_processed += 1
        self._keep_dead_letter(DeadLetter(reason, detail, r.value or b"", SourcePosition(r.topic, r.partition, r.offset, r.timestamp)))

    def _keep_dead_letter(self, dl: DeadLetter) -> None:
        o = self.outcome
        o.dead_letters += 1
        o.invalid_by_reason[str(dl.reason)] += 1
        if self.keep_dead_letters:
            pos = dl.position
            key = (pos.partition, pos.topic, pos.offset) if pos is not None else (-1, "", -1)
            self._dead.add(key, dl.to_json(self.spec.limits.dead_letter_original_bytes))

    def _judge(self, rows: list[Row]) -> None:
        if self._grouped:
            rows = split_for_judging(self.spec, rows)
        result = self.monitor.judge(rows, record_evaluations=self.collector is not None)
        o = self.outcome
        for dl in result.dead_letters:
            self._keep_dead_letter(dl)
        for alert in result.alerts:
            self._alerts.add((alert.event_time_ms, self._seq), alert.payload)
            self._seq += 1
            a = alert.event
            o.alerts_by_status["escalated" if a.escalated else a.status] += 1
            o.alerts_by_kind[a.kind] += 1
            o.alerts_by_severity[a.severity] += 1
            if self.collector is not None:
                self.collector.add_alert(0, a)
        if self.collector is not None and result.evaluations:
            self.collector.add_evaluations(0, result.evaluations)
        if self.collector is not None and result.version_switches:
            self.collector.add_version_switches(result.version_switches)
        self._retraining += [r.payload for r in result.retraining]
        o.retraining += len(result.retraining)

    def finish(self) -> ReplayOutcome:
        """Judge every queued row in event-time order; return the counts."""
        for batch in self._rows.batches(self.batch_size):
            self._judge(batch)
        o = self.outcome
        o.partitions = sorted(self._seen)
        o.seconds = time.perf_counter() - self._started
        if self.collector is not None:
            for t in (o.first_event_ms, o.last_event_ms):
                if t is not None:
                    self.collector.observe_time(t)
        return o

    # ---------------------------------------------------------------- output
    def alert_payloads(self) -> Iterator[bytes]:
        """Alert events in (event time, emission order)."""
        return iter(self._alerts)

    def retraining_payloads(self) -> Iterator[bytes]:
        """Retraining events in the order they were triggered."""
        return iter(self._retraining)

    def dead_letter_payloads(self) -> Iterator[bytes]:
        """Dead letters in (partition, topic, offset) order."""
        return iter(self._dead)

    def close(self) -> None:
        """Drop the spooled output (temporary files included)."""
        self._alerts.close()
        self._dead.close()
        self._rows.close()


_KEY = attrgetter("key")


def _row_order(r: Row) -> tuple[Any, ...]:
    """The order rows are judged in: key, then kind and source position (what ties in the key, byte-identical records)."""
    p = r.position
    return r.key, r.kind, p.topic, p.partition, p.offset


def _sort_rows(rows: list[Row]) -> None:
    """Sort ``rows`` in place into (key, kind, source position) order: by key alone unless two keys tie."""
    rows.sort(key=_KEY)
    keys = list(map(_KEY, rows))
    if any(map(eq, keys, islice(keys, 1, None))):  # byte-identical records at one event time: by position too
        rows.sort(key=_row_order)


class _RowSorter:
    """Rows back in (key, kind, source position) order: kept as objects while few; beyond
    ``spill_after``, what is queued goes to disk as a sorted run (:class:`RowRuns`, blocks of
    rows records) and the runs are merged back with the rows still queued."""

    def __init__(self, spill_after: int) -> None:
        self.spill_after = spill_after
        self._rows: list[Row] = []
        self._runs = RowRuns(_row_order)

    def add(self, rows: list[Row]) -> None:
        """Queue rows."""
        self._rows.extend(rows)
        if len(self._rows) > self.spill_after:
            _sort_rows(self._rows)
            self._runs.write(self._rows)
            self._rows = []

    def sorted(self) -> Iterator[Row]:
        """Every queued row, in (key, kind, source position) order."""
        _sort_rows(self._rows)
        if not len(self._runs):
            return iter(self._rows)
        return self._runs.merged(self._rows)

    def batches(self, size: int) -> Iterator[list[Row]]:
        """:meth:`sorted`, ``size`` rows at a time (the last batch may be smaller)."""
        if not len(self._runs):
            rows = list(self.sorted())
            for i in range(0, len(rows), size):
                yield rows[i : i + size]
            return
        rows_of = self.sorted()
        while batch := list(islice(rows_of, size)):
            yield batch

    def close(self) -> None:
        """Drop what is queued (temporary files included)."""
        self._rows = []
        self._runs.close()
