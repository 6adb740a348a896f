"""File replay's fast reading (``FileSource.line_chunks`` + ``ReplayEngine.feed_lines``) against the general way.

The general way is what file replay did before the fast path: every line iterated out of the file,
made a :class:`SourceRecord` by :func:`decode_line`, and fed to :meth:`ReplayEngine.feed`. The
fast path must give the same lines with the same numbers, and the same counts, dead letters,
rows, alerts and retraining events, whatever mix of lines a file holds.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stream_monitor.core import events as ev
from stream_monitor.core.spec import LimitsSpec, MonitorSpec
from stream_monitor.replay import sources
from stream_monitor.replay.engine import ReplayEngine
from stream_monitor.replay.sources import FileSource, LineChunk, SourceRecord, decode_line, encode_envelope
from stream_monitor.replay.timerange import CALENDAR_MS, TimeRange
from stream_monitor.synthetic import demo_streams, generate_events

START_MS = 1_767_225_600_000
TOPIC = "events.jsonl"


def _iterated_lines(data: bytes) -> list[tuple[int, bytes]]:
    """(number, line) as the file source read them before: iterating the file, ``rstrip(b"\\r\\n")``, whitespace-only lines skipped."""
    out = []
    for number, line in enumerate(io.BytesIO(data), start=1):
        line = line.rstrip(b"\r\n")
        if line.strip():
            out.append((number, line))
    return out


def _read_lines(path: Path, chunk_lines: int = 2000) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    for chunk in FileSource(path, chunk_lines).line_chunks():
        assert len(chunk.numbers) == len(chunk.lines) > 0
        out += zip(chunk.numbers, chunk.lines)
    return out


LINE_BYTES = st.lists(
    st.one_of(
        st.sampled_from([b"", b" ", b"\t", b"\r", b"\r\r", b"\x0b", b"{}", b'{"model": "m", "ts": 1}', b"x" * 40, b"{\r", b"\xff\xfe"]),
        st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=LINE_BYTES, ending=st.sampled_from([b"\n", b"\r\n"]), last_newline=st.booleans(), block=st.sampled_from([1, 2, 3, 7, 64, 1 << 20]), gz=st.booleans())
def test_line_chunks_give_the_lines_and_numbers_of_iterating_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[bytes], ending: bytes, last_newline: bool, block: int, gz: bool
) -> None:
    data = ending.join(lines) + (ending if last_newline and lines else b"")
    assume(gz or not data.startswith(b"\x1f\x8b"))  # gzip is told by content: a plain file starting with its magic is read as one
    path = tmp_path / "f.jsonl"
    path.write_bytes(gzip.compress(data) if gz else data)
    monkeypatch.setattr(sources, "READ_BLOCK", block)
    assert _read_lines(path, chunk_lines=3) == _iterated_lines(data)
    assert [(r.offset, r.value) for chunk in FileSource(path, 3).chunks() for r in chunk] == _iterated_lines(data)


def _events(n: int = 1500, seed: int = 7) -> list[bytes]:
    fraud, churn = demo_streams(n, seed)
    out: list[bytes] = []
    for a, b in zip(generate_events(fraud), generate_events(churn), strict=True):
        out += [orjson.dumps(a), orjson.dumps(b)]
    return out


EVENTS = _events()
ODD_LINES = [
    b"{not json",
    b"[1, 2, 3]",
    b'"text"',
    b'{"model": "fraud-v3", "features": {"x0": 1.0}}',  # no ts, and a file line has no record timestamp
    b'{"model": "fraud-v3", "ts": "yesterday", "features": {"x0": 1.0}}',
    b'{"model": "fraud-v3", "ts": 1767225601000, "features": {"x0": NaN}}',  # the stdlib parser's way
    b'{"model": "fraud-v3", "ts": "2026-01-01T00:00:05Z", "features": {"x0": 0.5}}',  # ts as text: the usual shape
    b'{"model": "fraud-v3", "ts": 1767225602000.0, "features": {"x0": 0.5}}',
    b'{"model": "fraud-v3", "ts": "9999-12-31T23:59:59-01:00", "features": {"x0": 1}}',  # beyond the calendar
    b'{"model": "fraud-v3", "ts": "0001-01-01T00:00:00+01:00", "features": {"x0": 1}}',
    b'{"model": "", "ts": 1767225601000}',
    b'{"model": "fraud-v3", "ts": 1767225601000, "features": {"x0": {"nested": 1}}}',
    b'{"model": "fraud-v3", "ts": 1767225601000, "features": {"x0": 1}, "extra": [1]}',
    b'{"model": "fraud-v3", "ts": 1767225601000, "features": {"offset": 1.0, "value": 2.0}}',  # envelope-like words
    b'{"model": "fraud-v3", "ts": 1767225603000, "features": {"x0": "' + b"a" * 1100 + b'"}}',  # over max_record_bytes below
    b"\xff\xfe{}",
    b'{"topic": "inf", "partition": "one", "offset": 5, "value": "{}"}',  # a malformed envelope
    b'{"topic": "inf", "partition": 1, "offset": 6, "timestamp": 1, "value_base64": "not base64!"}',
    encode_envelope(SourceRecord("inf", 3, 9, START_MS + 10, None, EVENTS[0])),
    encode_envelope(SourceRecord("inf", 0, 9, None, None, EVENTS[1])),
    encode_envelope(SourceRecord(TOPIC, 0, 4, None, None, EVENTS[4])),  # the position of a plain line
    encode_envelope(SourceRecord("inf", 1, 2, START_MS, None, b"garbage")),
    b'{"partition": 2, "offset": 9, "value": {"model": "m", "ts": 1}}',  # a hand-written envelope holding an object
]


def _replay(lines: list[tuple[int, bytes]], chunk_sizes: list[int], fast: bool, spec: MonitorSpec, **kw: Any) -> tuple[Any, ...]:
    """Feed ``lines`` in chunks, the fast or the general way; everything a replay gives."""
    engine = ReplayEngine(spec, batch_size=300, **kw)
    rows_engine = ReplayEngine(spec, batch_size=300, **kw)
    i = 0
    sizes = iter(chunk_sizes)
    while i < len(lines):
        n = max(1, next(sizes, 500))
        part = lines[i : i + n]
        i += n
        chunk = LineChunk(TOPIC, [k for k, _ in part], [v for _, v in part])
        for e in (engine, rows_engine):
            if fast:
                e.feed_lines(chunk)
            else:
                e.feed(chunk.records())
    queued = [(r.kind, r.key, r.position, dict(r.event.__dict__), r.problems, r.carrier, r.original) for r in rows_engine._rows.sorted()]
    rows_engine.close()
    o = engine.finish()
    counts = (o.records_read, o.records_skipped, o.records_processed, dict(o.invalid_by_reason), o.dead_letters, o.partitions, o.first_event_ms, o.last_event_ms, o.retraining, dict(o.alerts_by_status))
    out = (counts, list(engine.alert_payloads()), list(engine.dead_letter_payloads()), list(engine.retraining_payloads()), queued)
    engine.close()
    return out


SPEC = MonitorSpec(instance="lines", max_record_bytes=1024)


def _mixed(picks: list[tuple[int, int]]) -> list[tuple[int, bytes]]:
    """Events with odd lines put in: (after how many events, which odd line)."""
    lines = list(EVENTS)
    for at, which in sorted(picks, reverse=True):
        lines.insert(min(at, len(lines)), ODD_LINES[which % len(ODD_LINES)])
    return list(enumerate(lines, start=1))


def test_a_mixed_file_reads_the_same_fast_as_the_general_way() -> None:
    lines = _mixed([(k * 97, k) for k in range(len(ODD_LINES))] + [(0, 18), (5, 16)])
    lines += [(len(lines) + 1, lines[10][1]), (len(lines) + 2, lines[10][1])]  # byte-identical records: their keys tie
    fast = _replay(lines, [700, 1, 13, 2000], True, SPEC)
    slow = _replay(lines, [700, 1, 13, 2000], False, SPEC)
    assert fast[1], "the demo streams drift: there are alerts to compare"
    assert fast[2], "and dead letters"
    assert fast == slow


def test_a_range_whose_ends_are_event_times_reads_the_same_fast_as_the_general_way() -> None:
    lines = _mixed([(k * 211, k) for k in range(len(ODD_LINES))])
    times = sorted({orjson.loads(e)["ts"] for e in EVENTS})
    rng = TimeRange(times[100], times[1200])  # [start, end): the event at start is in, the one at end is out
    fast = _replay(lines, [999], True, SPEC, time_range=rng)
    assert fast == _replay(lines, [999], False, SPEC, time_range=rng)
    assert (fast[0][6], fast[0][7]) == (times[100], times[1199])


def test_every_event_time_of_the_usual_shape_is_a_date_the_outputs_can_show() -> None:
    """``feed_lines`` widens the range seen by every usual-shape ``ts`` without the calendar test ``feed`` makes."""
    assert CALENDAR_MS[0] <= 0 and ev.MAX_EPOCH_MS <= CALENDAR_MS[1]
    for ts in (-1, ev.MAX_EPOCH_MS + 1, "0001-01-01T00:00:00+01:00", "3000-01-01T00:00:00.001Z", float("inf")):
        assert ev.fast_values({"model": "m", "ts": ts}) is None


@settings(max_examples=15, deadline=None)
@given(
    picks=st.lists(st.tuples(st.integers(0, len(EVENTS)), st.integers(0, len(ODD_LINES) - 1)), max_size=25),
    chunk_sizes=st.lists(st.integers(1, 1200), max_size=6),
    window=st.one_of(st.none(), st.tuples(st.integers(-2000, 30_000), st.integers(1, 30_000))),
    partitions=st.sampled_from([1, 2, 1024]),
)
def test_any_mix_of_lines_reads_the_same_fast_as_the_general_way(
    picks: list[tuple[int, int]], chunk_sizes: list[int], window: tuple[int, int] | None, partitions: int
) -> None:
    lines = _mixed(picks)
    rng = TimeRange() if window is None else TimeRange(START_MS + window[0], START_MS + window[0] + window[1])
    spec = SPEC.model_copy(update={"limits": LimitsSpec(replay_partitions=partitions)})
    assert _replay(lines, chunk_sizes, True, spec, time_range=rng) == _replay(lines, chunk_sizes, False, spec, time_range=rng)


def test_an_envelope_first_can_take_the_only_partition_from_the_plain_lines() -> None:
    """With ``limits.replay_partitions`` 1, an envelope of partition 3 first: every plain line is a limit_exceeded dead letter."""
    spec = SPEC.model_copy(update={"limits": LimitsSpec(replay_partitions=1)})
    lines = [(1, ODD_LINES[18])] + [(k + 2, e) for k, e in enumerate(EVENTS[:200])]
    fast = _replay(lines, [50], True, spec)
    assert fast == _replay(lines, [50], False, spec)
    assert fast[0][3] == {"limit_exceeded": 200} and fast[0][5] == [3]


def test_a_label_topic_file_is_read_the_general_way() -> None:
    lines = [(k + 1, e) for k, e in enumerate(EVENTS[:300])]
    fast = _replay(lines, [100], True, SPEC, label_topics=[TOPIC])
    assert fast == _replay(lines, [100], False, SPEC, label_topics=[TOPIC])


def test_decode_line_still_tells_plain_lines_from_envelopes() -> None:
    """The fast path hands every line with both envelope words to :func:`decode_line`; plain ones come back plain."""
    line = ODD_LINES[13]
    assert decode_line(line, TOPIC, 3) == SourceRecord(TOPIC, 0, 3, None, None, line)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(-2, 2), st.integers(0, 1), st.integers(0, 1), st.sampled_from(["a", "b"]), st.integers(0, 2), st.integers(0, 3)), max_size=30))
def test_queued_rows_come_back_in_key_then_source_position_order_and_ties_in_queue_order(items: list[tuple[int, ...]]) -> None:
    """The sorter orders by key alone when no two keys tie, else by (key, kind, topic, partition, offset); a full tie keeps queue order."""
    from stream_monitor.core.events import SourcePosition
    from stream_monitor.core.exchange import Row
    from stream_monitor.replay.engine import _RowSorter

    rows = [Row(kind, (t, tie, 0), SourcePosition(topic, p, off, None), None, original=b"%d" % i) for i, (t, tie, kind, p, topic, off, _) in enumerate(items)]
    sorter = _RowSorter(10**6)
    half = len(rows) // 2
    sorter.add(rows[:half])
    sorter.add(rows[half:])
    expected = sorted(rows, key=lambda r: (r.key, r.kind, r.position.topic, r.position.partition, r.position.offset))
    assert [r.original for r in sorter.sorted()] == [r.original for r in expected]
