"""Replay beyond ``spill_after`` rows: the spilled path (sorted runs on disk, in blocks) judges the rows
the in-memory path judges, in the same order (ties included), with the same output bytes and report."""

from __future__ import annotations

import pickle
import random
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_monitor.core import kernels
from stream_monitor.core.events import SourcePosition
from stream_monitor.core.exchange import INFERENCE, LABEL, EventView, Row
from stream_monitor.core.events import LabelEvent
from stream_monitor.core.spec import MonitorSpec
from stream_monitor.replay.engine import ReplayEngine, _RowSorter
from stream_monitor.report.collect import ReportCollector, ReportMeta
from stream_monitor.report.html import render_html
from stream_monitor.replay.sources import LineChunk, SourceRecord
from stream_monitor.synthetic import demo_streams, generate_events


def _no_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    # numba (which subclasses pickle.Pickler, and loads cached kernels with pickle) loaded first, every kernel:
    # the test alone (no other test of its worker loaded them) must not see numba's own use
    for load in (kernels.page_hinkley, kernels.ks_walk, kernels.hddm_a, kernels.ddm):
        load()

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("pickle used by the replay's spill")

    for name in ("dump", "dumps", "load", "loads", "Pickler", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)


def _lines() -> list[bytes]:
    """Both demo models interleaved, with byte-identical lines (key ties), lines the core dead-letters, and garbage."""
    fraud, churn = demo_streams(2000, 42, labels=True)
    lines = [orjson.dumps(e) for pair in zip(generate_events(fraud), generate_events(churn)) for e in pair]
    rng = random.Random(3)
    for _ in range(200):  # the same record again, somewhere later: same key, another position
        i = rng.randrange(len(lines))
        lines.insert(rng.randrange(i, len(lines)), lines[i])
    lines[100:100] = [b"garbage", b'{"model": "fraud-v3", "ts": "?"}', b'{"model": "fraud-v3", "ts": 1767225600000, "features": {"x0": "text"}}']
    return lines


def _replay(lines: list[bytes], spill_after: int, by_lines: bool, labels: list[bytes]) -> tuple[Any, ...]:
    collector = ReportCollector()
    engine = ReplayEngine(MonitorSpec(instance="t"), batch_size=333, spill_after=spill_after, collector=collector)
    try:
        if by_lines:
            for i in range(0, len(lines), 500):
                engine.feed_lines(LineChunk("events.jsonl", list(range(i + 1, i + 1 + len(lines[i : i + 500]))), lines[i : i + 500]))
        else:
            engine.feed([SourceRecord("events", i % 3, i, None, None, line) for i, line in enumerate(lines)])
        engine.feed([SourceRecord("labels", 0, i, None, None, line) for i, line in enumerate(labels)], labels=True)
        spilled = len(engine._rows._runs)
        o = engine.finish()
        counts = (o.records_read, o.records_processed, o.dead_letters, dict(o.invalid_by_reason), dict(o.alerts_by_status), dict(o.alerts_by_kind), o.retraining, o.first_event_ms, o.last_event_ms)
        report = render_html(collector.build(engine.monitors, ReportMeta(source="t")))
        return spilled, counts, list(engine.alert_payloads()), list(engine.dead_letter_payloads()), list(engine.retraining_payloads()), report
    finally:
        engine.close()


@pytest.mark.parametrize("by_lines", [True, False], ids=["feed_lines", "feed"])
def test_spilled_replay_gives_the_in_memory_output(by_lines: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _lines()
    labels = [orjson.dumps({"event_id": orjson.loads(line).get("event_id"), "model": "churn-v1", "label": 1}) for line in lines[200:260]]
    _no_pickle(monkeypatch)
    in_memory = _replay(lines, 10**9, by_lines, labels)
    assert in_memory[0] == 0 and in_memory[2] and in_memory[3], "the reference spills nothing and has alerts and dead letters"
    for spill_after in (1, 97, 2500):
        spilled = _replay(lines, spill_after, by_lines, labels)
        assert spilled[0] > 0, f"spill_after={spill_after} spilled nothing"
        assert spilled[1:] == in_memory[1:], f"spill_after={spill_after}"


def _row(t: int, tie: int, kind: int, topic: str, partition: int, offset: int, model: str, original: bytes | None) -> Row:
    pos = SourcePosition(topic, partition, offset, None)
    if kind == LABEL:
        return Row(LABEL, (t, tie, 0), pos, LabelEvent(event_id=f"e{offset}", model=model, label=offset % 2), original=original)
    event = EventView(f"e{offset}", model, "v1", t, {"x": float(offset), "c": "a"}, 0.5, None, None)
    return Row(INFERENCE, (t, tie, offset % 2), pos, event, original=original)


def _shape(r: Row) -> tuple[Any, ...]:
    e = r.event
    return (r.kind, r.key, tuple(r.position), r.original, e.event_id, e.model, getattr(e, "features", None), e.label)


ROWS = st.lists(
    st.tuples(
        st.integers(0, 5),  # event time: few, so keys tie
        st.integers(-2, 2),  # tie
        st.sampled_from([INFERENCE, LABEL]),
        st.sampled_from(["a", "b"]),
        st.integers(0, 2),
        st.sampled_from(["m1", "m2", "m3"]),
        st.sampled_from([None, b"", b"{}"]),
    ),
    max_size=120,
)


@settings(max_examples=100, deadline=None)
@given(ROWS, st.integers(1, 40), st.integers(1, 50), st.integers(1, 30), st.randoms(use_true_random=False))
def test_row_sorter_spilled_order_is_the_in_memory_order(spec: list[Any], spill_after: int, add_size: int, batch: int, rnd: random.Random) -> None:
    rows = [_row(t, tie, kind, topic, part, offset, model, orig) for offset, (t, tie, kind, topic, part, model, orig) in enumerate(spec)]
    if rnd.random() < 0.5:  # else queued in event-time order, as a file usually is: runs that do not overlap
        rnd.shuffle(rows)
    else:
        rows.sort(key=lambda r: r.key[0])
    outs = []
    for limit in (spill_after, 10**9):
        sorter = _RowSorter(limit)
        for i in range(0, len(rows), add_size):
            sorter.add(rows[i : i + add_size])
            assert len(sorter._rows) <= limit, "rows in memory stay bounded by spill_after"
        batches = list(sorter.batches(batch))
        assert all(len(b) == batch for b in batches[:-1]) and all(batches)
        outs.append([_shape(r) for b in batches for r in b])
        sorter.close()
    assert outs[0] == outs[1]
    keys = [(s[1], s[0], s[2]) for s in outs[0]]
    assert keys == sorted(keys), "key, then kind and source position"
