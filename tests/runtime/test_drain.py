"""Drain: the end condition of the demo and the benchmarks (every row of a finite input judged), on its own.

A stand-in for the app's consumer answers the internal topic's partitions and end offsets; the
live end-to-end property is tests/integration/test_demo_live.py's.
"""

from __future__ import annotations

from types import SimpleNamespace

from kafka import TopicPartition

from stream_monitor.runtime.checkpoint import CommitResult
from stream_monitor.runtime.drain import Drain

IN, INTERNAL = "in", "in-by-model"


class Consumer:
    def __init__(self, ends: dict[TopicPartition, int]) -> None:
        self.ends = ends

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {tp.partition for tp in self.ends if tp.topic == topic}

    def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp] for tp in tps}


def _app(internal_ends: dict[int, int], owned: set[int], queued: int = 0) -> SimpleNamespace:
    ends = {TopicPartition(INTERNAL, p): e for p, e in internal_ends.items()}
    return SimpleNamespace(
        repartition_topic=INTERNAL,
        consumer=Consumer(ends),
        owned={TopicPartition(INTERNAL, p) for p in owned} | {TopicPartition(IN, 0), TopicPartition(IN, 1)},
        tasks={0: SimpleNamespace(queued=lambda: queued)},
    )


def _commit(**offsets: int) -> CommitResult:
    """in0=5 -> TopicPartition('in', 0): 5; x1=7 -> the internal topic's partition 1."""
    tps = {TopicPartition(IN if k.startswith("in") else INTERNAL, int(k[-1])): v for k, v in offsets.items()}
    return CommitResult(offsets=tps, alerts=[], state_bytes=0, started=0.0, finished=1.0)


def test_done_only_when_the_input_is_read_and_every_internal_row_judged():
    app = _app({0: 10, 1: 4}, owned={0, 1})
    drain = Drain(app)
    drain(_commit(in0=5, in1=5, x0=9, x1=3))
    assert drain.done is None  # the input's ends are not known yet
    drain.expect({TopicPartition(IN, 0): 5, TopicPartition(IN, 1): 6})
    drain(_commit(x0=9, x1=3))
    assert drain.done is None  # in-1 is one short
    last = _commit(in1=6, x0=8)
    drain(last)
    assert drain.done is None  # internal 0 committed to 8 of 10: a row not judged yet
    drain(_commit(x0=9))  # (10 - 1: the transaction's marker may stand at 9)
    assert drain.done is not None and drain.done.offsets == {TopicPartition(INTERNAL, 0): 9}


def test_not_done_while_a_row_waits_or_an_internal_partition_is_not_owned_here():
    for app in (_app({0: 2}, owned={0}, queued=1), _app({0: 2, 1: 0}, owned={0})):
        drain = Drain(app, reached=lambda committed: True)
        drain(_commit(x0=2))
        assert drain.done is None
    drain = Drain(_app({0: 2, 1: 0}, owned={0, 1}), reached=lambda committed: True)
    drain(_commit(x0=2))
    assert drain.done is not None


def test_the_ends_are_asked_after_the_commit_not_taken_from_a_fetch():
    app = _app({0: 3}, owned={0})
    drain = Drain(app, reached=lambda committed: True)
    app.consumer.ends[TopicPartition(INTERNAL, 0)] = 7  # the readers' last rows, committed with this checkpoint
    drain(_commit(x0=3))
    assert drain.done is None
