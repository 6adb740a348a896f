"""Drain: the end condition of the demo and the benchmarks (every row of a finite input judged), on its own.

Stand-ins for the app's consumer (the internal topic's partitions) and forwarder (the offset of the
last rows record written to each internal partition); the live end-to-end property is
tests/integration/test_demo_live.py's.
"""

from __future__ import annotations

from types import SimpleNamespace

from kafka import TopicPartition

from stream_monitor.runtime.checkpoint import CommitResult
from stream_monitor.runtime.drain import Drain

IN, INTERNAL = "in", "in-by-model"


class Consumer:
    def __init__(self, partitions: int) -> None:
        self.partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.partitions)) if topic == INTERNAL else set()


def _app(rows_sent: dict[int, int], owned: set[int], partitions: int = 2, queued: int = 0) -> SimpleNamespace:
    return SimpleNamespace(
        repartition_topic=INTERNAL,
        consumer=Consumer(partitions),
        forwarder=SimpleNamespace(rows_sent=rows_sent),
        owned={TopicPartition(INTERNAL, p) for p in owned} | {TopicPartition(IN, 0), TopicPartition(IN, 1)},
        tasks={0: SimpleNamespace(queued=lambda: queued)},
    )


def _commit(**offsets: int) -> CommitResult:
    """in0=5 -> TopicPartition('in', 0): 5; x1=7 -> the internal topic's partition 1."""
    tps = {TopicPartition(IN if k.startswith("in") else INTERNAL, int(k[-1])): v for k, v in offsets.items()}
    return CommitResult(offsets=tps, alerts=[], state_bytes=0, started=0.0, finished=1.0)


def test_done_only_when_the_input_is_read_and_judged_past_the_last_rows_record():
    drain = Drain(_app({0: 9}, owned={0, 1}))  # the rows went to internal partition 0, its last rows record at 9
    drain(_commit(in0=5, in1=5, x0=10, x1=3))
    assert drain.done is None  # the input's ends are not known yet
    drain.expect({TopicPartition(IN, 0): 5, TopicPartition(IN, 1): 6})
    drain(_commit(x0=10))
    assert drain.done is None  # in-1 is one short
    drain(_commit(in1=6, x0=9))
    assert drain.done is None  # internal 0 committed to 9: the record at 9 not judged yet (what the broker's last stable offset can say)
    drain(_commit(x0=10))
    assert drain.done is not None and drain.done.offsets == {TopicPartition(INTERNAL, 0): 10}


def test_not_done_while_a_row_waits_or_an_internal_partition_is_not_owned_here():
    for app in (_app({0: 1}, owned={0, 1}, queued=1), _app({0: 1}, owned={0})):
        drain = Drain(app, reached=lambda committed: True)
        drain(_commit(x0=2))
        assert drain.done is None
    drain = Drain(_app({0: 1}, owned={0, 1}), reached=lambda committed: True)
    drain(_commit(x0=2))
    assert drain.done is not None


def test_rows_written_after_a_check_hold_the_next_one():
    app = _app({0: 1}, owned={0, 1})
    drain = Drain(app, reached=lambda committed: True)
    app.forwarder.rows_sent[1] = 4  # the readers' last rows, committed with this checkpoint, not read by the judge yet
    drain(_commit(x0=2, x1=4))
    assert drain.done is None
    drain(_commit(x1=5))
    assert drain.done is not None
