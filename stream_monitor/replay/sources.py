"""What replay reads: source records, the export envelope codec, file and topic sources."""

from __future__ import annotations

import base64
import gzip
import io
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Iterator, Protocol, Sequence

import orjson
import structlog

from stream_monitor.config import KafkaSettings
from stream_monitor.core import events as ev
from stream_monitor.core.monitor import InputRecord
from stream_monitor.replay.errors import ReplayError, ReplayUsageError
from stream_monitor.replay.timerange import TimeRange

if TYPE_CHECKING:
    from kafka import KafkaConsumer

# kafka and the runtime's clients are imported where a topic is read: a file replay never loads them

log = structlog.get_logger("stream_monitor.replay")

DEFAULT_BATCH_SIZE = 5000
READ_BLOCK = 1 << 20  # bytes a file source reads at a time
MAX_PARTITION = 2**31  # Kafka's partition numbers are int32, offsets and timestamps int64
MAX_OFFSET = 2**63


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One record of a replay source: where it came from, its Kafka key and value bytes.

    ``defect`` says why a file line could not be read as a record (a malformed export envelope):
    the engine makes such a line a dead letter without giving it to a monitor.
    """

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    key: bytes | None
    value: bytes | None
    defect: str | None = None
    headers: tuple[tuple[str, bytes], ...] | None = None  # Kafka headers (model-server formats read them)

    def input_record(self) -> InputRecord:
        """The record as the core reads it (same mapping as ``run``: a null value is an empty record)."""
        position = ev.SourcePosition(self.topic, self.partition, self.offset, self.timestamp)
        return InputRecord(self.value or b"", position, self.headers)


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
    >>> with_headers = SourceRecord("t", 0, 1, None, None, b"{}", headers=(("mlserver-model", b"m"),))
    >>> decode_line(encode_envelope(with_headers), "f.jsonl", 1) == with_headers
    True
    """
    env: dict[str, Any] = {"topic": rec.topic, "partition": rec.partition, "offset": rec.offset, "timestamp": rec.timestamp}
    _put_bytes(env, "key", rec.key)
    _put_bytes(env, "value", rec.value)
    if rec.headers:
        env["headers"] = [[k, base64.b64encode(v).decode("ascii")] for k, v in rec.headers]
    return orjson.dumps(env)


def _get_headers(env: dict[str, Any]) -> tuple[tuple[str, bytes], ...] | None:
    """The ``headers`` of an envelope: ``[[name, base64 value], …]``, or None when absent."""
    raw = env.get("headers")
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(h, list) and len(h) == 2 and all(isinstance(x, str) for x in h) for h in raw):
        raise ValueError("headers must be a list of [name, base64 value] pairs")
    return tuple((k, base64.b64decode(v, validate=True)) for k, v in raw)


def decode_line(line: bytes, file_topic: str, line_number: int) -> SourceRecord:
    """A file line as a source record: an ``export`` envelope, or a plain event (partition 0).

    A plain line is passed on as is, even when it is not JSON, so the monitor makes it a dead
    letter whose offset is the line number. A malformed envelope keeps its line as the value and
    says what is wrong in ``defect``: the engine makes it a dead letter.

    >>> decode_line(b'{"model": "m", "ts": 1}', "events.jsonl", 3)
    SourceRecord(topic='events.jsonl', partition=0, offset=3, timestamp=None, key=None, value=b'{"model": "m", "ts": 1}', defect=None, headers=None)
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
                if not (0 <= partition < MAX_PARTITION and 0 <= offset < MAX_OFFSET and (ts is None or -1 <= ts < MAX_OFFSET)):
                    raise ValueError(f"partition {partition} or offset {offset} or timestamp {ts} out of Kafka's range")
                key, value, headers = _get_bytes(obj, "key"), _get_bytes(obj, "value"), _get_headers(obj)
                return SourceRecord(str(topic), partition, offset, ts, key, value, headers=headers)
            except (ValueError, TypeError) as exc:
                return SourceRecord(file_topic, 0, line_number, None, None, line, f"malformed export envelope: {exc}")
    return SourceRecord(file_topic, 0, line_number, None, None, line)


@dataclass(frozen=True, slots=True)
class LineChunk:
    """Lines of a file (without their line endings) and their 1-based line numbers: what a file source reads.

    The engine reads plain event lines straight from here (:meth:`ReplayEngine.feed_lines
    <stream_monitor.replay.engine.ReplayEngine.feed_lines>`); :meth:`records` gives every line
    as its source record (:func:`decode_line`).
    """

    topic: str
    numbers: list[int]
    lines: list[bytes]

    def records(self) -> list[SourceRecord]:
        """Every line as its source record."""
        topic = self.topic
        return [decode_line(line, topic, number) for number, line in zip(self.numbers, self.lines)]


# ----------------------------------------------------------------------------------- sources
class Source(Protocol):
    """Where replay reads from: chunks of records, each partition's records in their replay order."""

    description: str

    def chunks(self) -> Iterator[list[SourceRecord]]:
        """Lists of records; each partition's records in replay order."""
        ...

    def fraction_done(self) -> float | None:
        """How much of the source was read, when known."""
        ...

    def close(self) -> None:
        """Release the file or the consumer."""
        ...


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
        """Chunks of decoded lines (blank lines skipped): :meth:`line_chunks` as source records."""
        for chunk in self.line_chunks():
            yield chunk.records()

    def line_chunks(self) -> Iterator[LineChunk]:
        """The file's non-blank lines (without their line ending) and their 1-based numbers, about ``chunk_lines`` at a time.

        The file is read in blocks of :data:`READ_BLOCK` bytes and split at ``\\n``, as iterating
        over it would; a line's ``\\r`` before its ``\\n`` is dropped, and a line of whitespace only
        is skipped (its number too).
        """
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
        numbers: list[int] = []
        lines: list[bytes] = []
        number = 0
        pending: list[bytes] = []  # the start of a line a later block ends
        try:
            while True:
                block = stream.read(READ_BLOCK)
                if not block:
                    break
                if b"\n" not in block:
                    pending.append(block)
                    continue
                if pending:
                    pending.append(block)
                    block, pending = b"".join(pending), []
                parts = block.split(b"\n")
                if parts[-1]:
                    pending.append(parts[-1])
                del parts[-1]
                for line in parts:
                    number += 1
                    if line[:1] != b"{":  # the usual line starts with its object: no other test needed
                        line = line.rstrip(b"\r")
                        if not line.strip():
                            continue
                    elif line[-1:] == b"\r":
                        line = line.rstrip(b"\r")
                    numbers.append(number)
                    lines.append(line)
                if len(lines) >= self.chunk_lines:
                    yield LineChunk(topic, numbers, lines)
                    numbers, lines = [], []
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise ReplayError(f"--input {self.path}: cannot read: {exc}") from None
        if pending:  # a last line without a newline
            number += 1
            tail = b"".join(pending).rstrip(b"\r")
            if tail.strip():
                numbers.append(number)
                lines.append(tail)
        if lines:
            yield LineChunk(topic, numbers, lines)

    def fraction_done(self) -> float | None:
        """Bytes read over the file size."""
        if self._raw is None or self._raw.closed:
            return None
        return min(1.0, self._raw.tell() / self._size)

    def close(self) -> None:
        """Close the file."""
        if self._raw is not None:
            self._raw.close()


def topic_consumer(settings: KafkaSettings, client_id: str) -> KafkaConsumer:
    """The group-less consumer of a topic replay or export; brokers that do not answer raise :class:`ReplayUsageError`.

    kafka-python bootstraps while constructing it, within its ``bootstrap_timeout_ms`` (30 s
    unless ``kafka.client_options`` sets it).
    """
    from kafka.errors import KafkaTimeoutError

    from stream_monitor.runtime import clients

    try:
        return clients.plain_consumer(settings, client_id)
    except KafkaTimeoutError as exc:
        raise ReplayUsageError(
            f"--bootstrap-servers {','.join(settings.bootstrap_servers)}: no Kafka broker answered ({exc}); check the address and that "
            "the brokers are up (the wait is bootstrap_timeout_ms in kafka.client_options, 30 s by default)"
        ) from None


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
        """Look up every partition's offset bounds (called by :meth:`chunks`; public for export/tests).

        The topics' metadata is waited for with a bound (the consumer's ``bootstrap_timeout_ms``):
        brokers that do not answer, or a topic that does not exist, raise :class:`ReplayUsageError`.
        """
        from kafka import TopicPartition
        from kafka.errors import KafkaTimeoutError

        from stream_monitor.runtime import kafka_compat

        c = self.consumer
        timeout_s = kafka_compat.metadata_timeout_s(c)
        try:
            found = kafka_compat.topic_partitions(c, self.topics, timeout_s)
        except KafkaTimeoutError:
            raise ReplayUsageError(
                f"--topic {self.description}: no metadata from the brokers within {timeout_s:g} s; check --bootstrap-servers and that "
                "the brokers are up (the wait is bootstrap_timeout_ms in kafka.client_options)"
            ) from None
        tps: list[TopicPartition] = []
        for topic in self.topics:
            if not found[topic]:
                raise ReplayUsageError(f"--topic {topic}: topic does not exist (or is not visible to this client)")
            tps.extend(TopicPartition(topic, p) for p in sorted(found[topic]))
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
        """Batches of up to ``batch_size`` records, each of one partition number, in replay order."""
        c = self.consumer
        bounds = self.resolve()
        active = [tp for tp, b in bounds.items() if b.start < b.stop]
        c.assign(active)
        for tp in active:
            c.seek(tp, bounds[tp].start)
        cut = None if self.time_range.end_ms is None else self.time_range.end_ms + self.lateness_ms
        reader = _PartitionReader(c, active, bounds, self.topics, self.batch_size, cut)
        last_change = time.monotonic()
        try:
            while True:
                for batch in reader.full_batches():
                    self.delivered += len(batch)
                    yield batch
                if reader.finished():
                    break
                polled = c.poll(timeout_ms=500, max_records=max(self.batch_size, 10_000))
                reader.take(polled)
                changed = reader.flow_control() or bool(polled)
                self.bounds.update(reader.bounds)
                now = time.monotonic()
                if changed:
                    last_change = now
                elif now - last_change > self.idle_timeout_s:
                    raise ReplayError(f"no progress for {self.idle_timeout_s:g} s; partitions [position, stop]: {reader.behind()}")
            for batch in reader.rest():
                self.delivered += len(batch)
                yield batch
        finally:
            c.assign([])

    def fraction_done(self) -> float | None:
        """Records delivered over the most there can be."""
        return min(1.0, self.delivered / self.total) if self.total else None

    def close(self) -> None:
        """Close the consumer."""
        self.consumer.close()


class _PartitionReader:
    """The buffers of one :meth:`TopicSource.chunks`: per topic-partition records, merged per partition number."""

    def __init__(self, consumer: Any, active: list[Any], bounds: dict[Any, PartitionBounds], topics: list[str], batch_size: int, cut: int | None) -> None:
        self.consumer = consumer
        self.active = active
        self.bounds = dict(bounds)
        self.batch_size = batch_size
        self.cut = cut
        self.topic_order = {t: i for i, t in enumerate(topics)}
        self.buffers: dict[Any, deque[SourceRecord]] = {tp: deque() for tp in active}
        self.by_partition: dict[int, list[Any]] = {}
        for tp in sorted(active, key=lambda t: (t.partition, self.topic_order[t.topic])):
            self.by_partition.setdefault(tp.partition, []).append(tp)
        self.done: set[Any] = set()
        self.paused: set[Any] = set()
        self.out: dict[int, list[SourceRecord]] = {p: [] for p in self.by_partition}
        self.positions: dict[Any, int] = {tp: bounds[tp].start for tp in active}
        self.high, self.low = 4 * batch_size, batch_size

    def _merge(self, p: int) -> None:
        """Move records of partition number ``p`` to its output, as far as their order is known."""
        tps = self.by_partition[p]
        target = self.out[p]
        if len(tps) == 1:
            buf = self.buffers[tps[0]]
            target.extend(buf)
            buf.clear()
            return
        while True:
            best = None
            best_key: tuple[int, int, int] | None = None
            for tp in tps:
                buf = self.buffers[tp]
                if not buf:
                    if tp not in self.done:
                        return  # cannot know the next record of this partition yet
                    continue
                head = buf[0]
                key = (head.timestamp if head.timestamp is not None else -1, self.topic_order[tp.topic], head.offset)
                if best_key is None or key < best_key:
                    best, best_key = tp, key
            if best is None:
                return
            target.append(self.buffers[best].popleft())

    def full_batches(self) -> Iterator[list[SourceRecord]]:
        """Every complete batch that can be given out now."""
        for p in self.by_partition:
            self._merge(p)
            while len(self.out[p]) >= self.batch_size:
                batch, self.out[p] = self.out[p][: self.batch_size], self.out[p][self.batch_size :]
                yield batch

    def finished(self) -> bool:
        """Every partition read to its stop, and every buffer emptied."""
        return len(self.done) == len(self.active) and not any(self.buffers.values())

    def take(self, polled: dict[Any, list[Any]]) -> None:
        """Buffer polled records below each partition's stop; a record at or past the cut time stops it."""
        for tp, recs in polled.items():
            if tp in self.done:
                continue
            stop = self.bounds[tp].stop
            buf = self.buffers[tp]
            for r in recs:
                if r.offset >= stop:
                    break
                if self.cut is not None and r.timestamp is not None and r.timestamp >= self.cut:
                    self.bounds[tp] = PartitionBounds(tp.topic, tp.partition, self.bounds[tp].start, r.offset)
                    self.done.add(tp)
                    self.consumer.pause(tp)
                    break
                buf.append(SourceRecord(tp.topic, tp.partition, r.offset, r.timestamp, r.key, r.value, headers=tuple(r.headers) or None))

    def flow_control(self) -> bool:
        """Mark partitions done, pause full ones and resume drained ones; True when a position moved."""
        c = self.consumer
        changed = False
        for tp in self.active:
            if tp in self.done:
                continue
            pos = c.position(tp)
            if pos != self.positions[tp]:
                self.positions[tp] = pos
                changed = True
            if pos >= self.bounds[tp].stop:
                self.done.add(tp)
                c.pause(tp)
                self.paused.discard(tp)
            elif len(self.buffers[tp]) > self.high and tp not in self.paused:
                c.pause(tp)
                self.paused.add(tp)
            elif tp in self.paused and len(self.buffers[tp]) < self.low:
                c.resume(tp)
                self.paused.discard(tp)
        return changed

    def behind(self) -> dict[str, list[int]]:
        """Partitions not done: [position, stop]."""
        return {f"{tp.topic}-{tp.partition}": [self.positions[tp], self.bounds[tp].stop] for tp in self.active if tp not in self.done}

    def rest(self) -> Iterator[list[SourceRecord]]:
        """The last, partial batch of each partition number."""
        for p in self.by_partition:
            if self.out[p]:
                batch, self.out[p] = self.out[p], []
                yield batch
