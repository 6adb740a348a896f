"""Whether a run has judged all of a finite input: the end condition of the demo and of the benchmarks.

A monitor never ends by itself; the demo (``stream-monitor demo``) and ``bench/`` run it over an
input of known size and stop it once everything in it is judged. *Read* is not enough: in the
by-model topology the readers forward rows to the internal topic, the judges read them there, and
the rows of the last ``max_lateness`` of event time wait for event-time order until the input
partitions count as quiet (``kafka.caught_up_grace_ms``). Counting records read (the demo once did)
stops the run seconds before the stream's end is judged, and its last alerts (the demo's resolves)
are never written.

:class:`Drain` is fed every checkpoint (``MonitorApp(on_checkpoint=drain)``, on the monitor's
thread) and sets :attr:`Drain.done` at the first checkpoint after which

- the committed input offsets hold the whole input (its partitions' ends, :meth:`Drain.expect`, or a
  count of records for a caller producing while it runs);
- no task holds a row waiting for its turn;
- every partition of the internal topic is owned here and committed past the last rows record the
  readers wrote there (neither a fetch's high watermark nor the end offset asked after the commit
  tells: the first can predate the rows just sent, the second stays before a committed
  transaction's records until the broker has written its markers).

One instance owning every partition, as the demo and the benchmarks run it.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from kafka import TopicPartition

from stream_monitor.runtime.checkpoint import CommitResult
from stream_monitor.runtime.kafka_compat import known_partitions


class Drain:
    """The ``on_checkpoint`` hook that tells when ``app`` (a :class:`~stream_monitor.runtime.app.MonitorApp`) has judged its input."""

    def __init__(self, app: Any, reached: Callable[[Mapping[TopicPartition, int]], bool] | None = None) -> None:
        self.app = app
        self.reached = reached  # given the committed input offsets: whether the whole input is among them (None: not known yet)
        self.committed: dict[TopicPartition, int] = {}  # input (and label) partitions: next offset committed
        self.internal: dict[TopicPartition, int] = {}  # the internal by-model topic's partitions
        self.done: CommitResult | None = None  # the checkpoint after which everything was judged

    def expect(self, ends: Mapping[TopicPartition, int]) -> None:
        """The input is complete and ends at ``ends`` (each partition's end offset): ``done`` waits for them."""
        ends = dict(ends)
        self.reached = lambda committed: all(committed.get(tp, 0) >= end for tp, end in ends.items())

    def __call__(self, result: CommitResult) -> None:
        """Note one checkpoint's committed offsets; set :attr:`done` when everything is judged."""
        internal_topic = self.app.repartition_topic
        for tp, offset in result.offsets.items():
            (self.internal if tp.topic == internal_topic else self.committed)[tp] = offset
        if self.done is None and self.reached is not None and self.reached(self.committed) and self.judged_all():
            self.done = result

    def judged_all(self) -> bool:
        """Every row forwarded to the internal topic was read and judged (none waits, offsets committed past the last rows record)."""
        app = self.app
        if any(task.queued() for task in app.tasks.values()):
            return False
        topic = app.repartition_topic
        if not topic:
            return True
        # Every internal partition, owned here: the internal topic can be assigned later than the input.
        tps = [TopicPartition(topic, p) for p in sorted(known_partitions(app.consumer, topic))]
        if not tps or not app.owned.issuperset(tps):
            return False
        # Past the last rows record the readers wrote there (its offset, as the broker acknowledged it). Not the end
        # offset the broker gives after the commit: a read_committed consumer is given the last stable offset, which
        # stays before a committed transaction's records until its markers are written, after the commit returns.
        internal = self.internal
        return all(internal.get(TopicPartition(topic, p), 0) > offset for p, offset in app.forwarder.rows_sent.items())
