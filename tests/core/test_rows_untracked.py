"""Rows waiting for their turn hold nothing the cyclic collector scans again and again (core/exchange.py, ``Row``).

At full load thousands of rows wait in a model's event-time order; when each held a tracked row
object, a position, a problems list and a key, the collector took ~4.5 % of ``run``'s CPU scanning
them (BENCHMARKS.md, "The run of 2026-12-03 16:49"). These tests keep it that way: a row read from
the internal topic is untracked, so are its event view and (after one collection) its key and
values, and its position, made when asked for, is the one it was read at.
"""

from __future__ import annotations

import gc

from stream_monitor.core.events import DeadLetterReason, SourcePosition, decode_inference
from stream_monitor.core.exchange import PositionsOf, RawsOf, decode_rows, encode_rows, inference_row, tie_of


def _rows(n: int, problems: bool = False) -> list:
    out = []
    for i in range(n):
        raw = b'{"model": "m", "ts": %d, "features": {"x": %d.5, "c": "k%d"}}' % (i, i, i % 3)
        d = decode_inference(raw, None)
        if problems and i == 1:
            d.problems.append((DeadLetterReason.NON_FINITE_VALUE, "features.y: nan"))
        out.append(inference_row(d, SourcePosition("in", i % 2, 100 + i, 1_700_000_000_000 + i), tie_of(raw), 0))
    return out


def test_a_row_read_from_the_internal_topic_is_out_of_the_collectors_sight() -> None:
    sent = _rows(4)
    _, back = decode_rows(encode_rows("m", sent))  # a packed record (x is a float column)
    gc.collect()  # tuples of plain values are untracked by the first collection that sees them
    for row, was in zip(back, sent, strict=True):
        assert not gc.is_tracked(row)
        assert not gc.is_tracked(row.event)
        assert not gc.is_tracked(row.key) and not gc.is_tracked(row.event.values)
        assert row.problems == ()
        assert row.pos is None and row.position == was.position and type(row.position) is SourcePosition
        assert row.source == was.source == (was.position.topic, was.position.partition)
        assert row.event.features == was.event.features


def test_a_rows_problems_cross_as_they_were() -> None:
    sent = _rows(3, problems=True)
    assert sent[0].problems == () and not gc.is_tracked(sent[0].problems)  # none: the shared empty tuple, not a list
    _, back = decode_rows(encode_rows("m", sent))
    assert [list(r.problems) for r in back] == [[], [(DeadLetterReason.NON_FINITE_VALUE, "features.y: nan")], []]


def test_positions_and_raws_of_a_batch_are_made_when_asked_for() -> None:
    sent = _rows(5)
    _, back = decode_rows(encode_rows("m", sent))
    positions = PositionsOf(back)
    assert len(positions) == 5
    assert [positions[i] for i in range(5)] == [r.position for r in sent]
    tail = positions[2:]
    assert isinstance(tail, PositionsOf) and [tail[i] for i in range(len(tail))] == [r.position for r in sent[2:]]
    raws = RawsOf(back)[1:3]
    assert isinstance(raws, RawsOf) and len(raws) == 2 and raws[0] == back[1].raw()
