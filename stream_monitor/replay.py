"""``stream-monitor replay`` and ``export``: the monitor over a bounded stretch of history.

Replay runs the same processing step as ``run`` (:meth:`PartitionMonitor.process
<stream_monitor.core.monitor.PartitionMonitor.process>`), one monitor per source partition, over a
topic (a group-less consumer assigned every partition, between offsets looked up by time) or over
a JSONL(.gz) file. The output is deterministic: the same input and config give byte-identical
alert files, whatever the batch size or the order in which the broker hands out partitions,
because

* each partition's records reach its monitor in one defined order (offset order; with several
  topics, a merge of the partitions of the same number by (record timestamp, topic, offset));
* the core's alerts depend on event time and observation counts only, never on the wall clock;
* alerts are written sorted by (event time, partition, offset, emission order) and dead letters
  by (partition, topic, offset).

A file line is either a plain inference event (partition 0, offset = line number, topic = the
file's name) or an *envelope* written by ``export``::

    {"topic": "inference-events", "partition": 2, "offset": 1234, "timestamp": 1767225600000,
     "key": "fraud-v3", "value": "{\\"model\\": \\"fraud-v3\\", ...}"}

``value`` (and ``key``) hold the record's bytes as UTF-8 text, or ``value_base64`` when they are
not UTF-8, so ``replay --input export.jsonl.gz`` sees exactly the bytes ``replay --topic`` sees.

>>> from stream_monitor.core.spec import MonitorSpec
>>> engine = ReplayEngine(MonitorSpec(instance="doc"), time_range=TimeRange(10, None))
>>> engine.feed([SourceRecord("t", 0, i, None, None, b'{"model": "m", "ts": %d, "features": {"x": 1}}' % i)
...              for i in range(20)])
>>> outcome = engine.finish()
>>> outcome.records_read, outcome.records_skipped, outcome.records_processed
(20, 10, 10)
"""

from __future__ import annotations

import argparse
import base64
import gzip
import heapq
import io
import os
import pickle
import shutil
import sys
import tempfile
from collections.abc import Callable
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Iterable, Iterator, Literal, Protocol, Sequence, TextIO, cast

import orjson
import structlog

from stream_monitor.core import events as ev
from stream_monitor.core.monitor import InputRecord, PartitionMonitor, StateAuthError, sign_state, verify_state
from stream_monitor.core.reference import Reference
from stream_monitor.core.spec import MonitorSpec

if TYPE_CHECKING:
    from kafka import KafkaConsumer

    from stream_monitor.config import AppConfig
    from stream_monitor.report import ReportCollector

log = structlog.get_logger("stream_monitor.replay")

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2
DEFAULT_BATCH_SIZE = 5000
STATE_FILE_KIND = "stream-monitor-replay-state"
STATE_FILE_FORMAT = 1
_SPILL_AFTER = 200_000  # sorted outputs kept in memory before spilling sorted runs to disk


class ReplayError(RuntimeError):
    """Replay cannot complete (broker, file or state problem): exit code 1."""


class ReplayUsageError(ValueError):
    """A flag value is wrong (the message names the flag): exit code 2."""


# ---------------------------------------------------------------------------------- time range
@dataclass(frozen=True, slots=True)
class TimeRange:
    """An event-time range ``[start_ms, end_ms)``; ``None`` leaves that side open.

    >>> r = TimeRange.parse("2026-01-01T00:00:00Z", "1767225660000")
    >>> r.start_ms, r.end_ms, r.contains(1767225600000), r.contains(1767225660000)
    (1767225600000, 1767225660000, True, False)
    """

    start_ms: int | None = None
    end_ms: int | None = None

    @property
    def bounded(self) -> bool:
        return self.start_ms is not None or self.end_ms is not None

    def contains(self, t_ms: int) -> bool:
        return (self.start_ms is None or t_ms >= self.start_ms) and (self.end_ms is None or t_ms < self.end_ms)

    @classmethod
    def parse(cls, from_text: str | None, to_text: str | None) -> TimeRange:
        """Parse ``--from``/``--to`` (ISO-8601 or epoch ms); errors name the flag."""
        bounds: list[int | None] = []
        for flag, text in (("--from", from_text), ("--to", to_text)):
            if text is None or text == "":
                bounds.append(None)
                continue
            try:
                bounds.append(ev.parse_event_time(text))
            except ValueError as exc:
                raise ReplayUsageError(f"{flag} {text!r}: {exc} (use ISO-8601, e.g. 2026-01-01T00:00:00Z, or epoch milliseconds)") from None
        start, end = bounds
        if start is not None and end is not None and end <= start:
            raise ReplayUsageError(f"--to {to_text!r} must be after --from {from_text!r}")
        return cls(start, end)


def record_event_time(value: bytes, timestamp_ms: int | None, max_bytes: int) -> int | None:
    """The event time the core will give this record, or ``None`` when it has none (a dead letter).

    Mirrors :func:`stream_monitor.core.events.decode_inference`: the ``ts`` field, else the record
    timestamp.

    >>> record_event_time(b'{"model": "m", "ts": "2026-01-01T00:00:00Z"}', None, 1 << 20)
    1767225600000
    >>> record_event_time(b'{"model": "m"}', 5, 1 << 20), record_event_time(b'{"ts": "soon"}', 5, 1 << 20)
    (5, None)
    """
    obj = ev.decode_json_object(value, max_bytes)
    if isinstance(obj, tuple):
        return None
    ts = obj.get("ts")
    if ts is None:
        return timestamp_ms if timestamp_ms is not None and timestamp_ms >= 0 else None
    try:
        return ev.parse_event_time(ts)
    except ValueError:
        return None


# ----------------------------------------------------------------------------------- records
@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One record of a replay source: where it came from, its Kafka key and value bytes."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    key: bytes | None
    value: bytes | None

    def input_record(self) -> InputRecord:
        # same mapping as ``run``: a null value (tombstone) is an empty, undecodable record
        return InputRecord(self.value or b"", ev.SourcePosition(self.topic, self.partition, self.offset, self.timestamp))


def _put_bytes(env: dict[str, Any], name: str, data: bytes | None) -> None:
    if data is None:
        env[name] = None
        return
    try:
        env[name] = data.decode("utf-8")
    except UnicodeDecodeError:
        env[f"{name}_base64"] = base64.b64encode(data).decode("ascii")


def _get_bytes(env: dict[str, Any], name: str) -> bytes | None:
    if f"{name}_base64" in env:
        return base64.b64decode(env[f"{name}_base64"], validate=True)
    value = env.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    return orjson.dumps(value)  # a hand-written envelope holding the event as an object


def encode_envelope(rec: SourceRecord) -> bytes:
    """One export line (without the newline); round-trips the key and value bytes exactly.

    >>> line = encode_envelope(SourceRecord("t", 1, 7, 99, None, b'\\xff{"model": "m"}'))
    >>> line
    b'{"topic":"t","partition":1,"offset":7,"timestamp":99,"key":null,"value_base64":"/3sibW9kZWwiOiAibSJ9"}'
    >>> decode_line(line, "f.jsonl", 1) == SourceRecord("t", 1, 7, 99, None, b'\\xff{"model": "m"}')
    True
    """
    env: dict[str, Any] = {"topic": rec.topic, "partition": rec.partition, "offset": rec.offset, "timestamp": rec.timestamp}
    _put_bytes(env, "key", rec.key)
    _put_bytes(env, "value", rec.value)
    return orjson.dumps(env)


def decode_line(line: bytes, file_topic: str, line_number: int) -> SourceRecord:
    """A file line as a source record: an ``export`` envelope, or a plain event (partition 0).

    A plain line is passed on as is, even when it is not JSON, so the monitor makes it a dead
    letter whose offset is the line number.

    >>> decode_line(b'{"model": "m", "ts": 1}', "events.jsonl", 3)
    SourceRecord(topic='events.jsonl', partition=0, offset=3, timestamp=None, key=None, value=b'{"model": "m", "ts": 1}')
    """
    if b'"offset"' in line and b'"value' in line:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and "partition" in obj and "offset" in obj and "model" not in obj:
            try:
                topic, partition, offset, ts = obj.get("topic") or file_topic, obj["partition"], obj["offset"], obj.get("timestamp")
                if not (isinstance(partition, int) and isinstance(offset, int) and (ts is None or isinstance(ts, int))):
                    raise ValueError("partition, offset and timestamp must be integers")
                return SourceRecord(str(topic), partition, offset, ts, _get_bytes(obj, "key"), _get_bytes(obj, "value"))
            except (ValueError, TypeError) as exc:
                raise ReplayError(f"{file_topic}:{line_number}: malformed export envelope: {exc}") from None
    return SourceRecord(file_topic, 0, line_number, None, None, line)


# ----------------------------------------------------------------------------------- sources
class Source(Protocol):
    """Where replay reads from: chunks of records, each partition's records in their replay order."""

    description: str

    def chunks(self) -> Iterator[list[SourceRecord]]: ...

    def fraction_done(self) -> float | None: ...

    def close(self) -> None: ...


class FileSource:
    """A JSONL or gzipped JSONL file (detected by content, not by name).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "e.jsonl"
    >>> _ = p.write_bytes(b'{"model": "m", "ts": 1}\\n\\n{"model": "m", "ts": 2}\\n')
    >>> [(r.offset, r.value) for chunk in FileSource(p).chunks() for r in chunk]
    [(1, b'{"model": "m", "ts": 1}'), (3, b'{"model": "m", "ts": 2}')]
    """

    def __init__(self, path: Path, chunk_lines: int = 2000) -> None:
        self.path = Path(path)
        self.description = str(path)
        self.chunk_lines = chunk_lines
        self._raw: BinaryIO | None = None
        self._size = 0

    def chunks(self) -> Iterator[list[SourceRecord]]:
        try:
            raw = self._raw = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise ReplayError(f"--input {self.path}: {exc.strerror or exc}") from None
        self._size = max(1, os.fstat(raw.fileno()).st_size)
        stream: IO[bytes] = raw
        if raw.read(2) == b"\x1f\x8b":
            raw.seek(0)
            stream = io.BufferedReader(gzip.GzipFile(fileobj=raw, mode="rb"), buffer_size=1 << 20)  # type: ignore[arg-type]
        else:
            raw.seek(0)
        topic = self.path.name
        chunk: list[SourceRecord] = []
        try:
            for number, line in enumerate(stream, start=1):
                line = line.rstrip(b"\r\n")
                if not line.strip():
                    continue
                chunk.append(decode_line(line, topic, number))
                if len(chunk) >= self.chunk_lines:
                    yield chunk
                    chunk = []
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise ReplayError(f"--input {self.path}: cannot read: {exc}") from None
        if chunk:
            yield chunk

    def fraction_done(self) -> float | None:
        if self._raw is None or self._raw.closed:
            return None
        return min(1.0, self._raw.tell() / self._size)

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()


@dataclass(frozen=True, slots=True)
class PartitionBounds:
    """Offsets ``[start, stop)`` of one topic-partition to read."""

    topic: str
    partition: int
    start: int
    stop: int


class TopicSource:
    """Every partition of the given topics over a stretch of record time, then it stops.

    The consumer must have no group (``clients.plain_consumer``): replay never joins or commits
    to a consumer group. A partition starts at ``offsets_for_times(from - lateness)`` (or its
    beginning) and stops at the first record whose Kafka timestamp is at or after
    ``to + lateness``, or at its end offset taken at start (under ``read_committed``, the last
    stable offset), so the replay is bounded even while producers keep writing. The stop is found
    while reading, not with ``offsets_for_times(to)``: that lookup also sees transaction markers,
    which carry the broker's wall-clock time, and would cut a replay of older data short at the
    first marker. Record timestamps only bound the reading; the event-time filter is the engine's.

    Partitions of the same number in several topics are merged by (record timestamp, topic order,
    offset) without reordering any one partition, so they reach one monitor in a defined order.
    """

    def __init__(
        self,
        consumer: KafkaConsumer,
        topics: Sequence[str],
        time_range: TimeRange = TimeRange(),
        lateness_ms: int = 0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        idle_timeout_s: float = 60.0,
    ) -> None:
        self.consumer = consumer
        self.topics = list(dict.fromkeys(topics))
        self.time_range = time_range
        self.lateness_ms = lateness_ms
        self.batch_size = batch_size
        self.idle_timeout_s = idle_timeout_s
        self.description = ", ".join(self.topics)
        self.bounds: dict[Any, PartitionBounds] = {}
        self.total = 0
        self.delivered = 0

    def resolve(self) -> dict[Any, PartitionBounds]:
        """Look up every partition's offset bounds (called by :meth:`chunks`; public for export/tests)."""
        from kafka import TopicPartition

        c = self.consumer
        tps: list[TopicPartition] = []
        for topic in self.topics:
            parts = c.partitions_for_topic(topic)
            if not parts:
                raise ReplayError(f"--topic {topic}: topic does not exist (or is not visible to this client)")
            tps.extend(TopicPartition(topic, p) for p in sorted(parts))
        begin = c.beginning_offsets(tps)
        end = c.end_offsets(tps)
        start = dict(begin)
        stop = dict(end)
        r = self.time_range
        if r.start_ms is not None:
            found = c.offsets_for_times({tp: max(0, r.start_ms - self.lateness_ms) for tp in tps})
            start = {tp: (found[tp].offset if found.get(tp) is not None else end[tp]) for tp in tps}
        self.bounds = {
            tp: PartitionBounds(tp.topic, tp.partition, max(begin[tp], start[tp]), stop[tp]) for tp in tps
        }
        self.total = sum(max(0, b.stop - b.start) for b in self.bounds.values())
        log.info(
            "replay_offsets",
            partitions={f"{b.topic}-{b.partition}": [b.start, b.stop] for b in self.bounds.values()},
            records_at_most=self.total,
        )
        return self.bounds

    def chunks(self) -> Iterator[list[SourceRecord]]:
        c = self.consumer
        bounds = self.resolve()
        active = [tp for tp, b in bounds.items() if b.start < b.stop]
        c.assign(active)
        for tp in active:
            c.seek(tp, bounds[tp].start)
        topic_order = {t: i for i, t in enumerate(self.topics)}
        buffers: dict[Any, deque[SourceRecord]] = {tp: deque() for tp in active}
        by_partition: dict[int, list[Any]] = {}
        for tp in sorted(active, key=lambda t: (t.partition, topic_order[t.topic])):
            by_partition.setdefault(tp.partition, []).append(tp)
        done: set[Any] = set()
        paused: set[Any] = set()
        out: dict[int, list[SourceRecord]] = {p: [] for p in by_partition}
        high, low = 4 * self.batch_size, self.batch_size
        last_change = time.monotonic()
        positions: dict[Any, int] = {tp: bounds[tp].start for tp in active}
        cut = None if self.time_range.end_ms is None else self.time_range.end_ms + self.lateness_ms

        def merge(p: int) -> None:
            tps = by_partition[p]
            target = out[p]
            if len(tps) == 1:
                buf = buffers[tps[0]]
                target.extend(buf)
                buf.clear()
                return
            while True:
                best = None
                best_key: tuple[int, int, int] | None = None
                for tp in tps:
                    buf = buffers[tp]
                    if not buf:
                        if tp not in done:
                            return  # cannot know the next record of this partition yet
                        continue
                    head = buf[0]
                    key = (head.timestamp if head.timestamp is not None else -1, topic_order[tp.topic], head.offset)
                    if best_key is None or key < best_key:
                        best, best_key = tp, key
                if best is None:
                    return
                target.append(buffers[best].popleft())

        try:
            while True:
                for p in by_partition:
                    merge(p)
                    while len(out[p]) >= self.batch_size:
                        batch, out[p] = out[p][: self.batch_size], out[p][self.batch_size :]
                        self.delivered += len(batch)
                        yield batch
                if len(done) == len(active) and not any(buffers.values()):
                    break
                polled = c.poll(timeout_ms=500, max_records=max(self.batch_size, 10_000))
                for tp, recs in polled.items():
                    if tp in done:
                        continue
                    stop = bounds[tp].stop
                    buf = buffers[tp]
                    for r in recs:
                        if r.offset >= stop:
                            break
                        if cut is not None and r.timestamp is not None and r.timestamp >= cut:
                            self.bounds[tp] = bounds[tp] = PartitionBounds(tp.topic, tp.partition, bounds[tp].start, r.offset)
                            done.add(tp)
                            c.pause(tp)
                            break
                        buf.append(SourceRecord(tp.topic, tp.partition, r.offset, r.timestamp, r.key, r.value))
                changed = bool(polled)
                for tp in active:
                    if tp in done:
                        continue
                    pos = c.position(tp)
                    if pos != positions[tp]:
                        positions[tp] = pos
                        changed = True
                    if pos >= bounds[tp].stop:
                        done.add(tp)
                        c.pause(tp)
                        paused.discard(tp)
                    elif len(buffers[tp]) > high and tp not in paused:
                        c.pause(tp)
                        paused.add(tp)
                    elif tp in paused and len(buffers[tp]) < low:
                        c.resume(tp)
                        paused.discard(tp)
                now = time.monotonic()
                if changed:
                    last_change = now
                elif now - last_change > self.idle_timeout_s:
                    behind = {f"{tp.topic}-{tp.partition}": [positions[tp], bounds[tp].stop] for tp in active if tp not in done}
                    raise ReplayError(f"no progress for {self.idle_timeout_s:g} s; partitions [position, stop]: {behind}")
            for p in by_partition:
                if out[p]:
                    self.delivered += len(out[p])
                    yield out[p]
                    out[p] = []
        finally:
            c.assign([])

    def fraction_done(self) -> float | None:
        return min(1.0, self.delivered / self.total) if self.total else None

    def close(self) -> None:
        self.consumer.close()


# ------------------------------------------------------------------------------ sorted spool
class SortedSpool:
    """Collects (sort key, bytes) pairs and gives the bytes back in key order.

    Beyond ``max_in_memory`` items, sorted runs go to temporary files (our own, pickled) and are
    merged on reading, so a replay that produces millions of dead letters stays in bounded memory.

    >>> s = SortedSpool(max_in_memory=2)
    >>> for k in (3, 1, 2, 0): s.add((k,), b"%d" % k)
    >>> list(s), len(s)
    ([b'0', b'1', b'2', b'3'], 4)
    >>> s.close()
    """

    def __init__(self, max_in_memory: int = _SPILL_AFTER) -> None:
        self.max_in_memory = max_in_memory
        self._items: list[tuple[tuple[Any, ...], bytes]] = []
        self._runs: list[IO[bytes]] = []
        self._count = 0

    def add(self, key: tuple[Any, ...], payload: bytes) -> None:
        self._items.append((key, payload))
        self._count += 1
        if len(self._items) >= self.max_in_memory:
            self._spill()

    def __len__(self) -> int:
        return self._count

    def _spill(self) -> None:
        self._items.sort(key=lambda kv: kv[0])
        run = tempfile.TemporaryFile(prefix="stream-monitor-replay-")  # noqa: SIM115 - closed in close()
        dump = pickle.dump
        for item in self._items:
            dump(item, run, protocol=pickle.HIGHEST_PROTOCOL)
        self._runs.append(run)
        self._items = []

    @staticmethod
    def _read_run(run: IO[bytes]) -> Iterator[tuple[tuple[Any, ...], bytes]]:
        run.seek(0)
        while True:
            try:
                yield pickle.load(run)  # noqa: S301 - a temporary file this process wrote
            except EOFError:
                return

    def __iter__(self) -> Iterator[bytes]:
        self._items.sort(key=lambda kv: kv[0])
        if not self._runs:
            return (payload for _, payload in self._items)
        runs = [self._read_run(r) for r in self._runs]
        merged = heapq.merge(*runs, iter(self._items), key=lambda kv: kv[0])
        return (payload for _, payload in merged)

    def close(self) -> None:
        for run in self._runs:
            run.close()
        self._runs = []
        self._items = []


# ------------------------------------------------------------------------------------ engine
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
        return sum(self.alerts_by_status.values())

    @property
    def rate(self) -> float:
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
        spill_after: int = _SPILL_AFTER,
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
                if first is None or t < first:
                    first = t
                if last is None or t > last:
                    last = t
            p = r.partition
            buf = buffers.get(p)
            if buf is None:
                buf = buffers[p] = []
                self._seen.add(p)
            buf.append(r.input_record())
            if len(buf) >= self.batch_size:
                self._process(p)
        o.first_event_ms, o.last_event_ms = first, last

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
            f = alert.fields
            o.alerts_by_status["escalated" if f.get("escalated") else f["status"]] += 1
            o.alerts_by_kind[f["kind"]] += 1
            o.alerts_by_severity[f["severity"]] += 1
            if self.collector is not None:
                self.collector.add_alert(partition, f)
        if self.keep_dead_letters:
            for dl in result.dead_letters:
                pos = dl.position
                key = (partition, pos.topic, pos.offset) if pos is not None else (partition, "", -1)
                self._dead.add(key, dl.to_json())
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
        self._alerts.close()
        self._dead.close()


# ------------------------------------------------------------------------------- state files
def write_state_file(path: Path, monitors: dict[int, PartitionMonitor], secret: bytes, meta: dict[str, Any] | None = None) -> int:
    """Write every partition's state, signed (HMAC-SHA256). Returns the number of bytes."""
    partitions = {
        str(p): {k: base64.b64encode(v).decode("ascii") for k, v in sorted(m.state_items(only_dirty=False).items())}
        for p, m in sorted(monitors.items())
    }
    payload = orjson.dumps(
        {"kind": STATE_FILE_KIND, "format": STATE_FILE_FORMAT, "meta": meta or {}, "partitions": partitions},
        option=orjson.OPT_SORT_KEYS,
    )
    blob = sign_state(payload, secret)
    _atomic_write(path, [blob])
    return len(blob)


def read_state_file(path: Path, secret: bytes) -> tuple[dict[int, dict[str, bytes]], dict[str, Any]]:
    """Verify and decode a state file: (items per partition, meta). Nothing is unpickled here.

    Raises :class:`ReplayError` when the signature does not verify (wrong secret, or the file was
    changed) or the file is not a replay state file.
    """
    try:
        blob = Path(path).read_bytes()
    except OSError as exc:
        raise ReplayError(f"--state-from {path}: {exc.strerror or exc}") from None
    try:
        payload = verify_state(blob, secret)
    except StateAuthError as exc:
        raise ReplayError(
            f"--state-from {path}: {exc}; refusing to load it. The file must be written by replay --state-out "
            "with the same state secret (state.hmac_secret / STREAM_MONITOR_STATE_SECRET)."
        ) from None
    try:
        doc = orjson.loads(payload)
        if doc.get("kind") != STATE_FILE_KIND or doc.get("format") != STATE_FILE_FORMAT:
            raise ValueError(f"kind {doc.get('kind')!r} format {doc.get('format')!r}")
        items = {int(p): {k: base64.b64decode(v) for k, v in part.items()} for p, part in doc["partitions"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ReplayError(f"--state-from {path}: not a replay state file ({exc})") from None
    return items, doc.get("meta") or {}


# --------------------------------------------------------------------------------- progress
class Progress:
    """Progress of a long replay: a one-line bar on a terminal, periodic log lines otherwise.

    ``mode`` is ``bar`` (redrawn in place on ``stream``), ``log`` (a structlog event every
    ``interval_s``) or ``none``.

    >>> import io
    >>> out = io.StringIO()
    >>> p = Progress("bar", out, "replay", min_redraw_s=0)
    >>> p.update(1000, 1767225600000, 0.5)
    >>> "1,000 records" in out.getvalue() and "50%" in out.getvalue()
    True
    """

    def __init__(
        self,
        mode: Literal["bar", "log", "none"],
        stream: TextIO,
        label: str,
        interval_s: float = 10.0,
        min_redraw_s: float = 0.2,
    ) -> None:
        self.mode = mode
        self.stream = stream
        self.label = label
        self.interval_s = interval_s if mode == "log" else min_redraw_s
        self.started = time.monotonic()
        self._last = 0.0 if mode == "bar" else self.started
        self._drawn = False
        # progress lines are wanted even when the log level hides INFO: same processors, no level filter
        self._log = structlog.wrap_logger(
            structlog.PrintLogger(stream), processors=structlog.get_config()["processors"], wrapper_class=structlog.BoundLogger
        )

    def update(self, records: int, event_time_ms: int | None, fraction: float | None, force: bool = False) -> None:
        if self.mode == "none":
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        elapsed = max(1e-9, now - self.started)
        rate = records / elapsed
        eta = elapsed * (1 - fraction) / fraction if fraction and fraction > 0 else None
        when = ev.format_event_time(event_time_ms)[:19] + "Z" if event_time_ms is not None else "-"
        if self.mode == "log":
            self._log.info(
                f"{self.label}_progress",
                records=records,
                event_time=when,
                records_per_s=round(rate),
                percent=None if fraction is None else round(100 * fraction, 1),
                eta_s=None if eta is None else round(eta),
            )
            return
        width = 20
        bar = ""
        if fraction is not None:
            filled = int(round(width * fraction))
            bar = f" [{'#' * filled}{'.' * (width - filled)}] {100 * fraction:3.0f}%"
        tail = f"  ETA {_duration(eta)}" if eta is not None else ""
        line = f"{self.label}: {records:,} records  at {when}  {rate:,.0f} rec/s{bar}{tail}"
        cols = shutil.get_terminal_size((120, 20)).columns
        self.stream.write("\r" + line[: max(10, cols - 1)] + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self.mode == "bar" and self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def _progress_mode(requested: str | None) -> Literal["bar", "log", "none"]:
    if requested in ("bar", "log", "none"):
        return requested  # type: ignore[return-value]
    return "bar" if sys.stderr.isatty() else "log"


# ------------------------------------------------------------------------------------ output
def _atomic_write(path: Path, parts: Iterable[bytes], compress: bool = False) -> int:
    """Write to a temporary file next to ``path`` and rename it into place. Returns lines written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    n = 0
    try:
        with open(tmp, "wb") as raw:
            out: IO[bytes] = (
                cast(IO[bytes], gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)) if compress else raw
            )
            try:
                for part in parts:
                    out.write(part)
                    n += 1
            finally:
                if compress:
                    out.close()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n


def _lines(payloads: Iterable[bytes]) -> Iterator[bytes]:
    for payload in payloads:
        yield payload + b"\n"


def _publish(cfg: AppConfig, topic: str, payloads: Iterable[bytes]) -> int:
    from stream_monitor.streaming import clients

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
    lines = [
        f"replay of {source}: {o.records_read:,} records in {o.seconds:.1f} s ({o.rate:,.0f} records/s)",
        f"  partitions {','.join(map(str, o.partitions)) or '-'}; event time {when}",
    ]
    if o.records_skipped:
        lines.append(f"  skipped outside --from/--to: {o.records_skipped:,}; monitored: {o.records_processed:,}")
    by_reason = ", ".join(f"{k} {v:,}" for k, v in sorted(o.invalid_by_reason.items()))
    lines.append(f"  invalid records: {invalid:,}" + (f" ({by_reason})" if by_reason else ""))

    def counts(c: Counter[str]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "-"

    lines.append(f"  alert events: {o.alerts}  status: {counts(o.alerts_by_status)}")
    if o.alerts:
        lines.append(f"    by kind: {counts(o.alerts_by_kind)}")
        lines.append(f"    by severity: {counts(o.alerts_by_severity)}")
    for what, where in written.items():
        lines.append(f"  {what}: {where}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------- commands
def _replay_config(args: argparse.Namespace) -> AppConfig:
    from stream_monitor.cli import load_app_config

    return load_app_config(args, {"instance": getattr(args, "instance", None) or "replay"})


def _exit_code(command: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run ``replay``/``export``: exit 0 ok, 2 bad flag value, 1 runtime failure (never a traceback
    for a Kafka or file problem)."""
    try:
        return run(args)
    except ReplayUsageError as exc:
        sys.stderr.write(f"stream-monitor {command}: error: {exc}\n")
        return EXIT_USAGE
    except (ReplayError, OSError) as exc:
        sys.stderr.write(f"stream-monitor {command}: failed: {exc}\n")
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        sys.stderr.write(f"\nstream-monitor {command}: interrupted; no output written\n")
        return EXIT_RUNTIME
    except Exception as exc:  # KafkaError and friends: a runtime failure
        if type(exc).__module__.startswith("kafka"):
            sys.stderr.write(f"stream-monitor {command}: failed: Kafka: {exc!r}\n")
            return EXIT_RUNTIME
        raise


def cmd_replay(args: argparse.Namespace) -> int:
    """``stream-monitor replay``: exit 0 ok, 2 bad flag value, 1 runtime failure."""
    return _exit_code("replay", _cmd_replay, args)


def _cmd_replay(args: argparse.Namespace) -> int:
    from stream_monitor.baseline import load_baselines
    from stream_monitor.report import ReportCollector, ReportMeta, write_report, write_report_dir

    time_range = TimeRange.parse(getattr(args, "from_time", None), getattr(args, "to_time", None))
    batch_size = getattr(args, "batch_size", None)
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else int(batch_size)
    lateness_ms = int(float(getattr(args, "lateness", 0) or 0) * 1000)
    if batch_size < 1:
        raise ReplayUsageError(f"--batch-size must be at least 1, got {batch_size}")
    if args.input is not None and not Path(args.input).is_file():
        raise ReplayUsageError(f"--input {args.input}: no such file")
    if args.state_from is not None and not Path(args.state_from).is_file():
        raise ReplayUsageError(f"--state-from {args.state_from}: no such file")
    cfg = _replay_config(args)
    spec = cfg.monitor_spec()
    config_path = getattr(args, "config", None) or os.environ.get("STREAM_MONITOR_CONFIG")
    baselines = load_baselines(spec, Path(config_path).parent if config_path else None)  # ConfigError: exit 2
    secret, insecure = cfg.state.secret(cfg.kafka.group_id)
    if insecure and (args.state_from or args.state_out):
        log.warning("state_secret_default", detail="state file signed with the development key; set STREAM_MONITOR_STATE_SECRET")

    monitors: dict[int, PartitionMonitor] = {}
    if args.state_from is not None:
        items, state_meta = read_state_file(args.state_from, secret)
        monitors = {p: PartitionMonitor.from_state_items(spec, p, part, baselines) for p, part in items.items()}
        log.info("replay_state_loaded", path=str(args.state_from), partitions=sorted(monitors), meta=state_meta)

    want_report = args.report is not None or args.report_dir is not None
    collector = ReportCollector() if want_report else None
    engine = ReplayEngine(
        spec,
        time_range=time_range,
        batch_size=batch_size,
        collector=collector,
        monitors=monitors,
        baselines=baselines,
        keep_dead_letters=args.dead_letters_out is not None,
    )
    source: Source
    if args.input is not None:
        source = FileSource(args.input)
    else:
        from stream_monitor.streaming import clients

        consumer = clients.plain_consumer(cfg.kafka, f"stream-monitor-replay-{cfg.instance}-{uuid.uuid4().hex[:6]}")
        source = TopicSource(consumer, [t for v in args.topic for t in v.split(",") if t], time_range, lateness_ms, batch_size)
    progress = Progress(_progress_mode(getattr(args, "progress", None)), sys.stderr, "replay")
    written: dict[str, str] = {}
    try:
        try:
            for chunk in source.chunks():
                engine.feed(chunk)
                progress.update(engine.outcome.records_read, engine.outcome.last_event_ms, source.fraction_done())
            outcome = engine.finish()
            progress.update(outcome.records_read, outcome.last_event_ms, 1.0, force=progress.mode == "log")
        finally:
            progress.close()
            source.close()
        n = _atomic_write(args.alerts_out, _lines(engine.alert_payloads()))
        written["alerts"] = f"{args.alerts_out} ({n} lines)"
        if args.alerts_topic:  # only when asked, and only the topic named on the command line
            sent = _publish(cfg, args.alerts_topic, engine.alert_payloads())
            written["published"] = f"{sent} alerts to topic {args.alerts_topic}"
        if args.dead_letters_out is not None:
            n = _atomic_write(args.dead_letters_out, _lines(engine.dead_letter_payloads()))
            written["dead letters"] = f"{args.dead_letters_out} ({n} lines)"
        if args.state_out is not None:
            size = write_state_file(
                args.state_out,
                engine.monitors,
                secret,
                {"source": source.description, "last_event_time": outcome.last_event_ms, "records": outcome.records_processed},
            )
            written["state"] = f"{args.state_out} ({size:,} bytes, {len(engine.monitors)} partitions)"
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
            data = collector.build(engine.monitors, meta)
            if args.report is not None:
                write_report(data, args.report)
                written["report"] = str(args.report)
            if args.report_dir is not None:
                files = write_report_dir(data, args.report_dir)
                written["report dir"] = f"{args.report_dir} ({len(files)} files)"
    finally:
        engine.close()
    sys.stdout.write(format_summary(outcome, source.description, written))
    sys.stdout.flush()
    log.info("replay_done", records=outcome.records_read, alerts=outcome.alerts, seconds=round(outcome.seconds, 3))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """``stream-monitor export``: topic → JSONL(.gz) envelopes that ``replay --input`` reads."""
    return _exit_code("export", _cmd_export, args)


def _cmd_export(args: argparse.Namespace) -> int:
    from stream_monitor.cli import load_app_config
    from stream_monitor.streaming import clients

    time_range = TimeRange.parse(getattr(args, "from_time", None), getattr(args, "to_time", None))
    cfg = load_app_config(args)
    consumer = clients.plain_consumer(cfg.kafka, f"stream-monitor-export-{uuid.uuid4().hex[:6]}")
    source = TopicSource(consumer, [t for v in args.topic for t in v.split(",") if t], time_range)
    progress = Progress(_progress_mode(getattr(args, "progress", None)), sys.stderr, "export")
    started = time.perf_counter()
    count = 0
    partitions: set[tuple[str, int]] = set()

    def lines() -> Iterator[bytes]:
        nonlocal count
        for chunk in source.chunks():
            for rec in chunk:
                partitions.add((rec.topic, rec.partition))
                yield encode_envelope(rec) + b"\n"
            count += len(chunk)
            progress.update(count, chunk[-1].timestamp if chunk else None, source.fraction_done())

    out = Path(args.out)
    try:
        _atomic_write(out, lines(), compress=out.name.endswith(".gz"))
    finally:
        progress.close()
        source.close()
    seconds = time.perf_counter() - started
    sys.stdout.write(
        f"exported {count:,} records from {len(partitions)} partitions of {source.description} to {out} "
        f"({out.stat().st_size:,} bytes) in {seconds:.1f} s ({count / seconds if seconds > 0 else 0:,.0f} records/s)\n"
    )
    return EXIT_OK
