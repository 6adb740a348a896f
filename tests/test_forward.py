"""Progress markers and per-task idle clocks, without a broker.

runtime/forward.py: after a batch's rows, an input partition tells the by-model partitions that got
none of them how far it read (at most once per interval, held-back markers flushed later).
runtime/app.py: a judging task's event-time order moves on with a progress record, and an input
partition silent *for that task* goes idle there only.
"""

from __future__ import annotations

import secrets
import zlib
from types import SimpleNamespace
from typing import Any

import orjson
from kafka.future import Future

from stream_monitor.config import load_config
from stream_monitor.core import exchange
from stream_monitor.core.events import SourcePosition
from stream_monitor.core.intake import InputRecord, read_inference
from stream_monitor.core.monitor import PartitionMonitor
from stream_monitor.runtime.app import MonitorApp
from stream_monitor.runtime.forward import Forwarder
from stream_monitor.runtime.poison import PoisonGuard

N = 3
FRAUD, CHURN = "fraud-v3", "churn-v1"
SECRET = secrets.token_hex(32)



def _send(fw, source, intake) -> None:  # noqa: ANN001
    """What ``forward`` then ``release`` do with one source's reading (its intake given as it is)."""
    fw._hold(source, intake)
    fw.release()

def _cfg(**extra: Any):
    return load_config(None, env={}, overrides={"kafka.group_id": "g", "state.hmac_secret": SECRET, "metrics.enabled": False, **extra})


def _q(model: str) -> int:
    return zlib.crc32(model.encode()) % N


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[int, bytes]] = []
        self.ends: dict[int, int] = {}  # per partition: the next offset

    def send(self, topic: str, key: bytes | None = None, value: bytes = b"", partition: int = 0, **_: Any) -> Future:
        """As KafkaProducer.send: a future of the record's metadata (acknowledged at once here)."""
        self.sent.append((partition, value))
        offset = self.ends[partition] = self.ends.get(partition, -1) + 1
        return Future().success(SimpleNamespace(topic=topic, partition=partition, offset=offset))

    def take(self) -> list[tuple[int, Any]]:
        out = [(p, exchange.decode_record(v)) for p, v in self.sent]
        self.sent.clear()
        return out


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _intake(source: tuple[str, int], events: list[tuple[str, int]], first_offset: int = 0):
    raws = [orjson.dumps({"model": m, "ts": t, "features": {"x": 1.0}}) for m, t in events]
    recs = [InputRecord(raw, SourcePosition(source[0], source[1], first_offset + i, t)) for i, (raw, (_, t)) in enumerate(zip(raws, events))]
    return read_inference(_cfg().monitor_spec(), recs)


def _forwarder(interval_ms: int = 200) -> tuple[Forwarder, _Producer, _Clock]:
    cfg = _cfg(**{"kafka.progress_interval_ms": interval_ms})
    producer, clock = _Producer(), _Clock()
    checkpoint = SimpleNamespace(ensure_transaction=lambda: None, max_record_bytes=1_000_000)
    fw = Forwarder(cfg, cfg.monitor_spec(), PoisonGuard(), checkpoint, lambda dl: None, lambda: producer, clock)  # type: ignore[arg-type]
    fw.partitions = N
    return fw, producer, clock


def test_models_on_different_partitions() -> None:
    assert len({_q(FRAUD), _q(CHURN), 3 - _q(FRAUD) - _q(CHURN)}) == N  # the tests below rely on it


def test_progress_goes_after_the_rows_to_every_partition_that_got_none() -> None:
    fw, producer, _ = _forwarder()
    _send(fw, ("in", 0), _intake(("in", 0), [(FRAUD, 10), (FRAUD, 30), (FRAUD, 20)]))
    sent = producer.take()
    assert [p for p, r in sent if not isinstance(r, exchange.Progress)] == [_q(FRAUD)]
    assert not isinstance(sent[0][1], exchange.Progress)  # rows first
    progress = {p: r for p, r in sent if isinstance(r, exchange.Progress)}
    assert progress == {q: exchange.Progress(("in", 0), 30) for q in range(N) if q != _q(FRAUD)}


def test_progress_waits_for_the_interval_and_for_time_to_advance() -> None:
    fw, producer, clock = _forwarder(interval_ms=200)
    _send(fw, ("in", 0), _intake(("in", 0), [(FRAUD, 10)]))
    producer.take()
    clock.now += 0.1
    _send(fw, ("in", 0), _intake(("in", 0), [(FRAUD, 40)], 1))
    assert [p for p, r in producer.take() if isinstance(r, exchange.Progress)] == []  # within the interval
    assert fw.pending
    fw.flush()
    assert producer.take() == []  # still within it
    clock.now += 0.15
    fw.flush()
    assert sorted(producer.take()) == sorted((q, exchange.Progress(("in", 0), 40)) for q in range(N) if q != _q(FRAUD))
    assert not fw.pending
    clock.now += 1.0
    _send(fw, ("in", 0), _intake(("in", 0), [(FRAUD, 35)], 2))  # read nothing later: nothing to tell
    assert [r for _, r in producer.take() if isinstance(r, exchange.Progress)] == []


def test_partitions_that_got_rows_get_no_progress_nor_those_that_know_the_time_already() -> None:
    fw, producer, clock = _forwarder(interval_ms=1)
    _send(fw, ("in", 0), _intake(("in", 0), [(FRAUD, 50), (CHURN, 10)]))
    assert {p: r.event_time_ms for p, r in producer.take() if isinstance(r, exchange.Progress)} == {3 - _q(FRAUD) - _q(CHURN): 50}
    clock.now += 1.0
    _send(fw, ("in", 0), _intake(("in", 0), [(CHURN, 20)], 2))  # fraud's partition knows 50 from its rows
    assert [r for _, r in producer.take() if isinstance(r, exchange.Progress)] == []


def test_reset_forgets_what_was_told() -> None:
    fw, producer, clock = _forwarder()
    _send(fw, ("in", 0), _intake(("in", 0), [(FRAUD, 50)]))
    producer.take()
    fw.reset()  # a rollback: read again from the committed offsets
    clock.now += 1.0
    _send(fw, ("in", 0), _intake(("in", 0), [(FRAUD, 30)]))
    assert {r.event_time_ms for _, r in producer.take() if isinstance(r, exchange.Progress)} == {30}


# ------------------------------------------------------------------ judging side
def _app(idle_timeout_ms: int = 1000) -> tuple[MonitorApp, _Clock]:
    app = MonitorApp(_cfg(**{"kafka.input_topics": ["in"], "kafka.idle_timeout_ms": idle_timeout_ms}))
    clock = _Clock()
    app.idle.clock = clock
    app._sources = [("in", 0), ("in", 1)]
    for p in range(2):
        app.tasks[p] = PartitionMonitor(app.spec, p)
    app._restart_idle_clocks([0, 1])
    return app, clock


def _judge(app: MonitorApp, task: int, offset: int, value: bytes):
    return _judge_batch(app, task, offset, [value])


def _judge_batch(app: MonitorApp, task: int, first: int, values: list[bytes]):
    """One poll batch of the internal partition ``task``: ``values`` at offsets from ``first`` on."""
    tp = SimpleNamespace(topic=app.repartition_topic, partition=task)
    recs = [InputRecord(v, SourcePosition(tp.topic, task, first + i, None)) for i, v in enumerate(values)]
    result = app._judge_records(app.tasks[task], tp, recs)  # type: ignore[arg-type]
    app.tasks[task].carriers.read((tp.topic, task), first + len(values))
    return result


def _rows(source: tuple[str, int], model: str, t: int, offset: int) -> bytes:
    return exchange.encode_rows(model, _intake(source, [(model, t)], offset).rows[model])


def test_a_progress_record_moves_the_order_on_and_is_committed_past() -> None:
    app, _ = _app()
    task = app.tasks[0]
    late = int(app.spec.max_lateness_seconds * 1000)
    _judge(app, 0, 0, _rows(("in", 0), FRAUD, 1_000, 0))
    assert task.queued() == 1  # waits for ("in", 1)
    rp = app.repartition_topic
    assert task.carriers.commit_offsets() == {(rp, 0): 0}
    result = _judge(app, 0, 1, exchange.encode_progress("in", 1, 1_000 + 2 * late))
    assert result.dead_letters == []
    assert task.order.latest[("in", 1)] == 1_000 + 2 * late
    assert task.carriers.commit_offsets() == {(rp, 0): 0}  # the row still waits: not committed past
    _judge(app, 0, 2, _rows(("in", 0), FRAUD, 1_000 + 3 * late, 1))
    assert task.queued() == 1  # the first row was judged, thanks to the marker
    assert task.carriers.commit_offsets() == {(rp, 0): 2}  # past the progress record, not past the waiting row


def test_a_source_silent_for_one_task_is_idle_there_only() -> None:
    app, clock = _app()
    step = app.cfg.kafka.idle_timeout_ms / 1000.0 / 4
    offsets = [0, 0]
    t = 1_000
    for _ in range(8):  # ("in", 0) goes on sending to task 0 only; ("in", 1) to both
        t += 1_000
        clock.now += step
        for task, source in ((0, ("in", 0)), (0, ("in", 1)), (1, ("in", 1))):
            _judge(app, task, offsets[task], _rows(source, FRAUD, t, offsets[task]))
            offsets[task] += 1
        app._release_idle()
    assert ("in", 0) in app.tasks[1].order.idle_sources
    assert ("in", 0) not in app.tasks[0].order.idle_sources
    assert ("in", 1) not in app.tasks[1].order.idle_sources


# ------------------------------------------------------------------ caught up
def test_a_caught_up_source_is_announced_to_every_partition_then_again_only_after_the_repeat_interval() -> None:
    from stream_monitor.runtime.forward import CAUGHT_UP_REPEAT_S

    fw, producer, clock = _forwarder()
    tp = SimpleNamespace(topic="in", partition=0)
    _send(fw, ("in", 0), _intake(("in", 0), [(FRAUD, 70)]))
    producer.take()
    at_end = {("in", 0): False}
    assert fw.announce(lambda t: at_end[(t.topic, t.partition)], [tp]) == 0 and producer.take() == []  # still reading
    at_end[("in", 0)] = True
    assert fw.announce(lambda t: at_end[(t.topic, t.partition)], [tp]) == N
    assert sorted(producer.take()) == [(q, exchange.Progress(("in", 0), 70, caught_up=True)) for q in range(N)]
    clock.now += CAUGHT_UP_REPEAT_S / 2
    assert fw.announce(lambda t: True, [tp]) == 0  # said already
    clock.now += CAUGHT_UP_REPEAT_S
    assert fw.announce(lambda t: True, [tp]) == N  # again, for tasks restored since
    producer.take()
    assert fw.announce(lambda t: False, [tp]) == 0  # reads on: no announcement ...
    assert fw.announce(lambda t: True, [tp]) == N  # ... until it is at its end again, at once


def test_an_empty_source_is_announced_caught_up_without_an_event_time() -> None:
    fw, producer, _ = _forwarder()
    fw.announce(lambda t: True, [SimpleNamespace(topic="in", partition=2)])
    assert {r for _, r in producer.take()} == {exchange.Progress(("in", 2), None, caught_up=True)}


def test_a_caught_up_source_stops_holding_the_order_back_until_it_sends_again() -> None:
    app, clock = _app()
    task = app.tasks[0]
    _judge(app, 0, 0, _rows(("in", 0), FRAUD, 1_000, 0))
    assert task.queued() == 1  # waits for ("in", 1), which has sent nothing
    clock.now += app.cfg.kafka.idle_timeout_ms / 1000.0 / 2
    app._release_idle()
    assert task.queued() == 1  # silence alone, shorter than the timeout, is no reason to go on
    _judge(app, 0, 1, exchange.encode_progress("in", 1, None, caught_up=True))
    _judge(app, 0, 2, exchange.encode_progress("in", 0, 1_000, caught_up=True))
    assert task.queued() == 1  # both caught up: the order holds at ("in", 0)'s time for the grace (a burst may follow)
    clock.now += app.cfg.kafka.caught_up_grace_ms / 1000.0
    app._release_idle()
    assert task.queued() == 0  # the grace passed: both idle, everything judged
    _judge(app, 0, 3, _rows(("in", 1), FRAUD, 5_000, 0))  # ("in", 1) sends again: waited for again
    _judge(app, 0, 4, _rows(("in", 0), FRAUD, 6_000, 1))
    assert task.queued() == 2 and ("in", 1) not in task.order.idle_sources


def test_a_batchs_rows_and_caught_up_markers_count_in_partition_order() -> None:
    """A marker after its source's last rows in one poll batch (the reader announced it after sending them) leaves
    the source caught up, its grace running; rows after a marker undo it. The old loop counted every marker first."""
    app, clock = _app(idle_timeout_ms=60_000)
    task = app.tasks[0]
    _judge_batch(app, 0, 0, [exchange.encode_progress("in", 1, None, caught_up=True)])  # ("in", 1): empty, left out
    _judge_batch(app, 0, 1, [_rows(("in", 0), FRAUD, 1_000, 0), exchange.encode_progress("in", 0, 1_000, caught_up=True)])
    assert task.queued() == 1 and ("in", 0) in task.order.caught_up_sources
    clock.now += app.cfg.kafka.caught_up_grace_ms / 1000.0
    app._release_idle()
    assert task.queued() == 0  # the grace ran from the marker: idle, judged
    _judge_batch(app, 0, 3, [exchange.encode_progress("in", 0, 1_000, caught_up=True), _rows(("in", 0), FRAUD, 2_000, 1)])
    assert task.queued() == 1 and ("in", 0) not in task.order.caught_up_sources  # it sent after announcing
    clock.now += app.cfg.kafka.caught_up_grace_ms / 1000.0
    app._release_idle()
    assert task.queued() == 1  # no grace to run out: its rows wait for it


def test_every_source_caught_up_does_not_let_rows_past_a_burst_another_reader_has_not_fetched_yet() -> None:
    """("in", 1) announced its end before a burst was produced to it; ("in", 0) then sends rows and its own
    announcement. Releasing everything then (the old rule) made the burst's rows ``late`` whatever the lateness
    (the rebalance fault test got 603 and 1,242 of them); now the order holds at ("in", 1)'s time for the grace."""
    app, clock = _app(idle_timeout_ms=60_000)
    task = app.tasks[0]
    _judge_batch(app, 0, 0, [_rows(("in", 1), FRAUD, 1_000, 0), exchange.encode_progress("in", 1, 1_000, caught_up=True)])
    _judge_batch(app, 0, 2, [_rows(("in", 0), FRAUD, 9_000, 0), exchange.encode_progress("in", 0, 9_000, caught_up=True)])
    assert task.queued() == 2  # both caught up; held at ("in", 1)'s 1,000 (+ lateness) for the grace
    result = _judge_batch(app, 0, 4, [_rows(("in", 1), FRAUD, 2_000, 1)])  # the burst, fetched late
    assert result.dead_letters == [] and task.queued() == 3
    clock.now += app.cfg.kafka.caught_up_grace_ms / 1000.0
    _judge_batch(app, 0, 5, [exchange.encode_progress("in", 1, 2_000, caught_up=True)])
    app._release_idle()
    clock.now += app.cfg.kafka.caught_up_grace_ms / 1000.0
    app._release_idle()
    assert task.queued() == 0 and int(app.metrics.late._value.get()) == 0


def test_a_monitor_with_nothing_left_to_read_or_judge_writes_its_state_at_once() -> None:
    """Reads-only commits cannot commit the internal topic's offsets (they go with the state): once every
    partition is read to its end and no row waits, the judging done since the last state write is saved
    at the next loop (after ``min_commit_interval_ms``), not up to ``state_interval_ms`` later."""
    from kafka import TopicPartition

    app, clock = _app(idle_timeout_ms=60_000)
    now = [10.0]
    app.checkpoint.clock = lambda: now[0]
    app.checkpoint.last_commit_at = app.checkpoint.last_any_commit_at = 10.0
    rp = app.repartition_topic
    ends = {TopicPartition("in", 0): SimpleNamespace(position=5, highwater=5), TopicPartition(rp, 0): SimpleNamespace(position=2, highwater=3)}
    app.owned = set(ends)
    app.consumer = SimpleNamespace(_subscription=SimpleNamespace(assignment=ends))  # what kafka_compat.caught_up reads
    soon = app.cfg.kafka.min_commit_interval_ms / 1000.0
    now[0] += soon
    assert not app._state_waits(soon)  # nothing judged since the state was written
    _judge(app, 0, 0, _rows(("in", 0), FRAUD, 1_000, 0))
    _judge(app, 0, 1, exchange.encode_progress("in", 1, None, caught_up=True))
    assert app.tasks[0].queued() == 1 and not app._state_waits(soon)  # a row waits for its turn
    _judge(app, 0, 2, exchange.encode_progress("in", 0, 1_000, caught_up=True))
    clock.now += app.cfg.kafka.caught_up_grace_ms / 1000.0  # the grace of caught-up sources
    app._release_idle()
    assert app.tasks[0].queued() == 0
    assert not app._state_waits(soon)  # the internal partition has a record left to read
    ends[TopicPartition(rp, 0)].position = 3
    assert not app._state_waits(soon * 2)  # too soon after the last commit
    assert app._state_waits(soon)
    app._begin(reads_only=True)
    now[0] += soon
    assert app._state_waits(soon)  # a reads-only commit does not write it
    app._unsaved = False  # as a full checkpoint's _begin does
    assert not app._state_waits(soon)
    _judge(app, 0, 3, exchange.encode_progress("in", 0, 1_000, caught_up=True))  # a repeated announcement
    assert app._state_waits(soon)


def test_a_caught_up_source_that_sent_holds_the_order_for_the_grace_and_what_it_sends_then_is_not_late() -> None:
    """Issue 11: a caught-up announcement is true only for now. Records produced to that partition soon after
    (labels trickling in, rows a killed reader never committed) come with times near its latest; had the order
    gone on without it at once, the others' rows would be judged past them and they would be ``late``."""
    app, clock = _app(idle_timeout_ms=60_000)
    task = app.tasks[0]
    late = int(app.spec.max_lateness_seconds * 1000)
    _judge(app, 0, 0, _rows(("in", 1), FRAUD, 1_000, 0))
    _judge(app, 0, 1, exchange.encode_progress("in", 1, 1_000, caught_up=True))  # at its end, for now
    _judge(app, 0, 2, _rows(("in", 0), FRAUD, 1_000 + 3 * late, 0))
    assert task.queued() == 2 and task.order.latest[("in", 1)] == 1_000  # still holds at 1,000
    clock.now += app.cfg.kafka.caught_up_grace_ms / 1000.0 / 2
    _judge(app, 0, 3, exchange.encode_progress("in", 1, 1_000, caught_up=True))  # the repeat does not extend the grace
    app._release_idle()
    assert task.queued() == 2
    result = _judge(app, 0, 4, _rows(("in", 1), FRAUD, 1_500, 1))  # within the grace: in order
    assert result.dead_letters == [] and task.queued() == 3  # in order, waiting behind ("in", 1)'s 1,500
    _judge(app, 0, 5, exchange.encode_progress("in", 1, 1_500, caught_up=True))
    clock.now += app.cfg.kafka.caught_up_grace_ms / 1000.0 + 0.001
    app._release_idle()
    assert ("in", 1) in task.order.idle_sources  # the grace is over: on without it
    assert task.queued() == 1  # 1,000 and 1,500 judged; 1,000 + 3 x lateness waits for ("in", 0)'s next


def test_a_partition_quiet_for_the_grace_before_its_reader_caught_up_stops_holding_the_order_at_once() -> None:
    """The grace is for records produced soon after a partition's last ones. A partition whose records were all
    there long before (a backlog, a topic produced before the monitor started) served it while its reader read:
    its announcement says so (``quiet_ms``), and the judge goes on without it at once, not a grace later."""
    app, clock = _app(idle_timeout_ms=60_000)
    task = app.tasks[0]
    grace_ms = app.cfg.kafka.caught_up_grace_ms
    late = int(app.spec.max_lateness_seconds * 1000)
    _judge(app, 0, 0, _rows(("in", 1), FRAUD, 1_000, 0))
    _judge(app, 0, 1, _rows(("in", 0), FRAUD, 1_000 + 3 * late, 0))
    _judge(app, 0, 2, exchange.encode_progress("in", 1, 1_000, caught_up=True, quiet_ms=grace_ms - 2_000))
    app._release_idle()
    assert task.queued() == 2 and ("in", 1) not in task.order.idle_sources  # quiet 2 s short of the grace: it holds
    clock.now += 1.0
    _judge(app, 0, 3, exchange.encode_progress("in", 1, 1_000, caught_up=True, quiet_ms=grace_ms - 1_000))  # a repeat: same start
    app._release_idle()
    assert task.queued() == 2
    clock.now += 1.0 + 0.001
    app._release_idle()
    assert ("in", 1) in task.order.idle_sources and task.queued() == 1  # quiet for the grace now: on without it
    # the same with a partition quiet for longer than the grace when its reader got to its end: idle at once
    app2, _ = _app(idle_timeout_ms=60_000)
    _judge(app2, 0, 0, _rows(("in", 1), FRAUD, 1_000, 0))
    _judge(app2, 0, 1, _rows(("in", 0), FRAUD, 1_000 + 3 * late, 0))
    _judge(app2, 0, 2, exchange.encode_progress("in", 1, 1_000, caught_up=True, quiet_ms=grace_ms + 7_000))
    app2._release_idle()
    assert ("in", 1) in app2.tasks[0].order.idle_sources and app2.tasks[0].queued() == 1


def test_a_later_announcement_of_a_longer_quiet_moves_the_grace_back_but_rows_restart_it() -> None:
    app, clock = _app(idle_timeout_ms=60_000)
    task = app.tasks[0]
    _judge(app, 0, 0, _rows(("in", 1), FRAUD, 1_000, 0))
    _judge(app, 0, 1, _rows(("in", 0), FRAUD, 900_000, 0))
    _judge(app, 0, 2, exchange.encode_progress("in", 1, 1_000, caught_up=True))  # an earlier version's marker: quiet not said
    clock.now += 1.0
    _judge(app, 0, 3, exchange.encode_progress("in", 1, 1_000, caught_up=True, quiet_ms=app.cfg.kafka.caught_up_grace_ms))
    app._release_idle()
    assert ("in", 1) in task.order.idle_sources  # another reader (after a rebalance) saw it quiet the whole grace
    _judge(app, 0, 4, _rows(("in", 1), FRAUD, 950_000, 1))  # it sends again: its announcement counts afresh
    assert ("in", 1) not in task.order.idle_sources
    _judge(app, 0, 5, exchange.encode_progress("in", 1, 950_000, caught_up=True, quiet_ms=0))
    clock.now += app.cfg.kafka.caught_up_grace_ms / 1000.0 - 0.5
    app._release_idle()
    assert ("in", 1) in task.order.caught_up_sources  # quiet since it sent: the whole grace again


def test_the_reader_announces_how_long_its_partition_has_not_grown() -> None:
    """The loop notes the high watermarks after every poll (``_watch_quiet``); the announcement carries how long the
    partition's has not moved, in whole milliseconds."""
    from kafka import TopicPartition

    from stream_monitor.runtime.idle import QuietWatch

    app, _ = _app()
    now = [50.0]
    app.quiet = QuietWatch(clock=lambda: now[0])
    producer = _Producer()
    app.forwarder.producer = lambda: producer
    app.forwarder.checkpoint = SimpleNamespace(ensure_transaction=lambda: None, max_record_bytes=1_000_000)
    app.forwarder.partitions = N
    tp0, tp1 = TopicPartition("in", 0), TopicPartition("in", 1)
    ends = {tp0: SimpleNamespace(position=3, highwater=8), tp1: SimpleNamespace(position=4, highwater=4)}
    app.owned = set(ends)
    app.consumer = SimpleNamespace(_subscription=SimpleNamespace(assignment=ends))  # what kafka_compat reads
    app._watch_quiet()
    now[0] += 6.25
    app._watch_quiet()
    app._flush_progress()
    assert {r for _, r in producer.take()} == {exchange.Progress(("in", 1), None, True, 6250)}  # ("in", 0) is still reading
    ends[tp0].position, ends[tp0].highwater = 9, 9  # it grew to 9 and was read to its end
    app._watch_quiet()
    now[0] += 0.5
    app._flush_progress()
    assert {r for _, r in producer.take()} == {exchange.Progress(("in", 0), None, True, 500)}


def test_a_caught_up_grace_of_zero_goes_on_without_the_source_at_once() -> None:
    app = MonitorApp(_cfg(**{"kafka.input_topics": ["in"], "kafka.caught_up_grace_ms": 0}))
    app._sources = [("in", 0), ("in", 1)]
    app.tasks[0] = task = PartitionMonitor(app.spec, 0)
    app._restart_idle_clocks([0])
    late = int(app.spec.max_lateness_seconds * 1000)
    _judge(app, 0, 0, _rows(("in", 1), FRAUD, 1_000, 0))
    _judge(app, 0, 1, exchange.encode_progress("in", 1, 1_000, caught_up=True))
    _judge(app, 0, 2, _rows(("in", 0), FRAUD, 1_000 + 3 * late, 0))
    app._release_idle()
    assert task.queued() == 1 and ("in", 1) in task.order.idle_sources


# ------------------------------------------------------------ judging groups
def test_a_grouped_model_sends_each_group_its_features_on_its_own_partition() -> None:
    """models.<m>.judging_groups: 2 → group g's rows on (crc32(model) + g * (n // 2)) % n, progress to the partition that got none."""
    from stream_monitor.core.groups import group_of, judge_name

    cfg = _cfg(**{"kafka.progress_interval_ms": 1, f"models.{FRAUD}.judging_groups": 2})
    producer, clock = _Producer(), _Clock()
    checkpoint = SimpleNamespace(ensure_transaction=lambda: None, max_record_bytes=1_000_000)
    fw = Forwarder(cfg, cfg.monitor_spec(), PoisonGuard(), checkpoint, lambda dl: None, lambda: producer, clock)  # type: ignore[arg-type]
    fw.partitions = N
    assert (group_of("x0", 2), group_of("x4", 2)) == (1, 0)
    raws = [orjson.dumps({"model": FRAUD, "ts": t, "features": {"x0": 1.0, "x4": 2.0}, "prediction": 0.5}) for t in (10, 20)]
    recs = [InputRecord(raw, SourcePosition("in", 0, i, None)) for i, raw in enumerate(raws)]
    _send(fw, ("in", 0), read_inference(cfg.monitor_spec(), recs))
    sent = producer.take()
    rows = {p: r for p, r in sent if not isinstance(r, exchange.Progress)}
    g0, g1 = _q(FRAUD), (zlib.crc32(FRAUD.encode()) + N // 2) % N
    assert sorted(rows) == sorted([g0, g1])
    assert rows[g0][0] == FRAUD and [r.event.features for r in rows[g0][1]] == [{"x4": 2.0}] * 2
    assert [r.event.prediction for r in rows[g0][1]] == [0.5, 0.5]
    assert rows[g1][0] == judge_name(FRAUD, 1, 2) and [r.event.features for r in rows[g1][1]] == [{"x0": 1.0}] * 2
    assert [r.event.prediction for r in rows[g1][1]] == [None, None]
    assert {p: r for p, r in sent if isinstance(r, exchange.Progress)} == {3 - g0 - g1: exchange.Progress(("in", 0), 20)}


def test_late_rows_are_logged_with_the_records_that_carried_them() -> None:
    app, _ = _app()
    logged: list[tuple[str, dict]] = []
    app.log = SimpleNamespace(warning=lambda event, **kw: logged.append((event, kw)), info=lambda *a, **k: None, error=lambda *a, **k: None)
    late = int(app.spec.max_lateness_seconds * 1000)
    _judge(app, 0, 0, _rows(("in", 0), FRAUD, 1_000, 0))
    _judge(app, 0, 1, exchange.encode_progress("in", 1, 1_000 + 3 * late))
    _judge(app, 0, 2, _rows(("in", 0), FRAUD, 1_000 + 3 * late, 1))
    assert logged == []  # nothing late so far
    result = _judge(app, 0, 3, _rows(("in", 1), FRAUD, 500, 7))  # behind what task 0 judged
    assert [str(dl.reason) for dl in result.dead_letters] == ["late"]
    rp = app.repartition_topic
    assert logged == [("rows_late", {
        "partition": 0, "rows": 1, "sources": {"in-1": 1}, "carriers": {f"{rp}-0": {"offsets": [3, 3], "restored": None, "seen": 3}},
        "event_times": ["1970-01-01T00:00:00.500Z"] * 2, "frontier": "1970-01-01T00:00:01.000Z",
    })]  # fmt: skip


# ------------------------------------------------------------------ rollback
def test_a_task_rolled_back_before_its_first_checkpoint_still_waits_for_every_input_partition() -> None:
    """A rollback rebuilds each task from its committed state; before the task's first checkpoint that holds no
    order item, and the rebuilt order knew no source: the rows of the input partition read first were judged at
    once, and the earlier rows of another, read next, came back ``late`` (test_commit_outcome, lose1: rollbacks
    in a row from start-up)."""
    from stream_monitor.core.ordering import NOT_SENT

    app, _ = _app()
    app.checkpoint.consumer = SimpleNamespace(seek=lambda tp, offset: None)
    late = int(app.spec.max_lateness_seconds * 1000)
    _judge(app, 0, 0, _rows(("in", 0), FRAUD, 1_000 + 3 * late, 0))  # read, then the transaction fails
    assert app.checkpoint.committed_items.get(0, {}) == {}  # nothing of task 0 committed yet
    app._rollback()
    task = app.tasks[0]
    assert task.order.latest == {("in", 0): NOT_SENT, ("in", 1): NOT_SENT}
    _judge(app, 0, 0, _rows(("in", 0), FRAUD, 1_000 + 3 * late, 0))  # read again
    assert task.queued() == 1  # waits for ("in", 1)
    result = _judge(app, 0, 1, _rows(("in", 1), FRAUD, 1_000, 0))  # its earlier row: in order, not late
    assert result.dead_letters == [] and task.queued() == 2
    assert [r.key[0] for r in task.order.release(final=True)] == [1_000, 1_000 + 3 * late]


def test_forward_holds_what_it_read_until_release_then_rows_progress_and_offsets_in_that_order() -> None:
    """``run`` sends a batch's reading at its end: nothing goes (nor counts as processed) before ``release``."""
    from kafka import TopicPartition

    fw, producer, _ = _forwarder(interval_ms=1)
    processed: list[tuple[TopicPartition, int]] = []
    fw.checkpoint.processed = lambda tp, off: processed.append((tp, off))  # type: ignore[attr-defined]

    def records(events: list[tuple[str, int]], first: int) -> list[SimpleNamespace]:
        return [SimpleNamespace(value=orjson.dumps({"model": m, "ts": t, "features": {"x": 1.0}}), offset=first + i, timestamp=t, headers=None)
                for i, (m, t) in enumerate(events)]

    tp0, tp1 = TopicPartition("in", 0), TopicPartition("in", 1)
    fw.forward(tp0, records([(FRAUD, 10), (CHURN, 40)], 0))
    fw.forward(tp1, records([(FRAUD, 20)], 5))
    assert producer.sent == [] and processed == [] and fw.held  # held: no checkpoint may begin now
    fw.release()
    sent = producer.take()
    rows = [p for p, r in sent if not isinstance(r, exchange.Progress)]
    assert sorted(rows) == sorted([_q(FRAUD), _q(CHURN), _q(FRAUD)])
    first_progress = next(i for i, (_, r) in enumerate(sent) if isinstance(r, exchange.Progress))
    assert first_progress == len(rows)  # every rows record before any progress record
    assert fw.rows_sent == {p: rows.count(p) - 1 for p in rows}  # the offset of each partition's last rows record (runtime/drain.py)
    progress = {(r.source, p): r.event_time_ms for p, r in sent if isinstance(r, exchange.Progress)}
    other = 3 - _q(FRAUD) - _q(CHURN)
    assert progress == {(("in", 0), other): 40, (("in", 1), other): 20, (("in", 1), _q(CHURN)): 20}
    assert processed == [(tp0, 2), (tp1, 6)] and not fw.held
    fw.forward(tp0, records([(FRAUD, 50)], 2))
    fw.reset()  # a rollback: what was held goes, unsent and not processed
    fw.release()
    assert producer.sent == [] and processed == [(tp0, 2), (tp1, 6)]
