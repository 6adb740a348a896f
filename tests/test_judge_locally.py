"""Judging where the rows are read (``kafka.judge_locally``, runtime/judging.py), without a broker.

When one instance owns every partition of the inputs and of the internal topic, the rows its reader
would send through the internal topic go to their judge in the same process: the same rows records,
decoded the same way, each row carried by its own input record so that the inputs' committed offsets
follow the rows still waiting. The broker tests (tests/integration/test_fault_injection.py, "judged where read")
show the alerts are the same either way and across a crash; these pin the pieces.
"""

from __future__ import annotations

import zlib
from types import SimpleNamespace

from kafka import TopicPartition

from stream_monitor.core import exchange
from stream_monitor.core.monitor import PartitionMonitor
from stream_monitor.runtime.checkpoint import Checkpoint
from tests.test_checkpoint import FakeConsumer, FakeProducer, FakeStore, FakeTask
from stream_monitor.core.events import SourcePosition
from stream_monitor.core.intake import InputRecord
from tests.test_forward import CHURN, FRAUD, _app, _forwarder, _intake, _q, _send
from tests.test_forward import _rows as _rows_of


def _record(topic: str, offset: int, value: bytes) -> InputRecord:
    return InputRecord(value, SourcePosition(topic, 0, offset, None))


def _keys(rows: list) -> list:
    return [r.key for r in rows]


def test_rows_judged_here_are_the_rows_the_judge_would_decode_carried_by_their_input_records() -> None:
    events = [(FRAUD, 10), (CHURN, 40), (FRAUD, 30), (FRAUD, 20), (CHURN, 5)]
    fw, producer, _ = _forwarder()
    _send(fw, ("in", 0), _intake(("in", 0), events, first_offset=100))
    sent: dict[int, list] = {}
    for p, got in producer.take():
        if not isinstance(got, exchange.Progress):
            sent.setdefault(p, []).extend(got[1])
    here, dead, raised = _forwarder()[0].judge_here(("in", 0), _intake(("in", 0), events, first_offset=100))
    assert dead == [] and raised == 40  # the latest event time read: what a progress record would say
    assert sorted(here) == sorted(sent) == sorted({_q(FRAUD), _q(CHURN)})
    for p, rows in here.items():
        assert _keys(rows) == _keys(sent[p])
        assert [r.event.features for r in rows] == [r.event.features for r in sent[p]]
        assert [r.carrier for r in rows] == [("in", 0, r.position.offset) for r in rows]
        assert {r.position.offset for r in rows} <= set(range(100, 105))


def test_a_batch_that_reads_nothing_later_raises_no_progress() -> None:
    fw = _forwarder()[0]
    assert fw.judge_here(("in", 0), _intake(("in", 0), [(FRAUD, 50)]))[2] == 50
    assert fw.judge_here(("in", 0), _intake(("in", 0), [(FRAUD, 30)], first_offset=1))[2] is None  # nothing later than 50
    assert fw.judge_here(("in", 0), _intake(("in", 0), [(FRAUD, 60)], first_offset=2))[2] == 60


def _q2(model: str) -> int:  # the partition of the internal topic of 2 partitions
    return zlib.crc32(model.encode()) % 2


def _local_app():  # noqa: ANN202
    app, clock = _app()
    app.state_partitions = 2
    app.forwarder.partitions = 2
    app.local = True
    app.checkpoint.held_topics = {"in"}
    for task in app.tasks.values():
        task.hold_owed = True
    return app, clock


def test_judged_here_the_tasks_take_the_rows_and_the_others_hear_how_far_the_input_read() -> None:
    app, _ = _local_app()
    late = int(app.spec.max_lateness_seconds * 1000)
    q = _q2(FRAUD)
    other = 1 - q
    read = lambda inputs: _intake(("in", 0), inputs)  # noqa: E731
    results = app._judged_here(("in", 0), read, [(FRAUD, 1_000)])
    assert app.tasks[q].queued() == 1 and app.tasks[other].queued() == 0
    assert app.tasks[other].order.latest[("in", 0)] == 1_000  # a progress record's word
    assert len(results) == 2 and all(r.dead_letters == [] for r in results)
    # the row waits for ("in", 1); its input record holds the input's commit offset back
    assert app.tasks[q].carriers.commit_offsets() == {("in", 0): 0}
    read1 = lambda inputs: _intake(("in", 1), inputs, first_offset=7)  # noqa: E731
    results = app._judged_here(("in", 1), read1, [(CHURN, 1_000 + 2 * late)])
    assert [r for res in results for r in res.judged] == []  # in-0 has read up to 1 000 only
    results = app._judged_here(("in", 0), lambda inputs: _intake(("in", 0), inputs, first_offset=1), [(FRAUD, 1_000 + 2 * late)])
    judged = [r for res in results for r in res.judged]
    assert [r.key[0] for r in judged] == [1_000]  # the first FRAUD row's turn came (both inputs past it by the lateness)
    assert app.tasks[q].carriers.commit_offsets() == ({("in", 0): 1, ("in", 1): 8} if q == _q2(CHURN) else {("in", 0): 1})


def test_the_inputs_commit_at_the_oldest_waiting_row_of_any_task_and_never_in_a_reads_only_commit() -> None:
    app, _ = _local_app()
    tasks = {0: PartitionMonitor(app.spec, 0), 1: PartitionMonitor(app.spec, 1)}
    for p, task in tasks.items():
        task.carriers.read(("in", 0), 20)
        task.carriers.read(("in", 1), 9)
    tasks[0].carriers._waiting[("in", 0)] = {12: 1}  # a row of record 12 of in-0 waits in task 0, one of record 5 in task 1
    tasks[1].carriers._waiting[("in", 0)] = {5: 1}
    app.tasks = tasks
    app.owned = {TopicPartition("in", 0), TopicPartition("in", 1), TopicPartition(app.repartition_topic, 0), TopicPartition(app.repartition_topic, 1)}
    seen: dict = {}
    app.checkpoint = SimpleNamespace(
        processed=lambda tp, off: seen.__setitem__(tp, off), state_topics={app.repartition_topic}, held_topics={"in"},
        begin_commit=lambda tasks, reads_only: None, owned=set(), committed_offsets={TopicPartition("in", 1): 11},
    )  # fmt: skip
    app._begin()
    # (in-1: a task's seen below what was committed, from a state written before: never committed backwards)
    assert seen == {TopicPartition("in", 0): 5, TopicPartition("in", 1): 11}
    seen.clear()
    app.local, app.checkpoint.held_topics = False, set()  # through the internal topic: the readers commit the inputs
    app._begin()
    assert seen == {}


def test_a_reads_only_commit_leaves_the_held_inputs_offsets_for_the_state() -> None:
    calls: list[tuple] = []
    cp = Checkpoint(FakeProducer(calls), FakeConsumer(calls), FakeStore(), True, "cl", 1000, {"rp"}, held_topics={"in"})  # type: ignore[arg-type]
    tp = TopicPartition("in", 0)
    cp.ensure_transaction()
    cp.processed(tp, 12)
    result = cp.commit({0: FakeTask({"x": b"state"})}, reads_only=True)
    assert result is not None and tp not in result.offsets and cp.pending_offsets == {tp: 12}
    cp.ensure_transaction()
    result = cp.commit({0: FakeTask({"x": b"state"})})
    assert result is not None and result.offsets == {tp: 12}


def test_leaving_local_judging_drops_the_waiting_rows_and_reads_the_inputs_again_from_their_committed_offsets() -> None:
    app, _ = _local_app()
    app._judged_here(("in", 0), lambda inputs: _intake(("in", 0), inputs, first_offset=3), [(FRAUD, 1_000)])
    q = _q2(FRAUD)
    assert app.tasks[q].queued() == 1
    seeks: list = []
    app.consumer = SimpleNamespace(seek=lambda tp, off: seeks.append((tp, off)))
    tp = TopicPartition("in", 0)
    app.owned = {tp}
    app.checkpoint.committed_offsets = {tp: 3}
    app._leave_local()
    assert not app.local and app._left_local and app.checkpoint.held_topics == set()
    assert app.tasks[q].queued() == 0 and seeks == [(tp, 3)]
    assert app.tasks[q].carriers.owed == {("in", 0): 4}  # its rows come again: the order waits until in-0 is read past 4


def test_the_wait_for_rows_read_again_gives_up_after_the_idle_timeout_like_a_silent_input() -> None:
    """An input owed (read here before, now through the internal topic) that keeps sending progress but neither a row
    from past where it was nor word of its end is waited for ``idle_timeout_ms``, then judged on without."""
    app, clock = _app(idle_timeout_ms=1000)
    task = app.tasks[0]
    task.hold_owed = True
    late = int(app.spec.max_lateness_seconds * 1000)
    task.carriers.read(("in", 1), 50)
    task.carriers.owe([("in", 1)])  # as JudgingSteps._owe_inputs does for a task rebuilt through the internal topic
    rp = app.repartition_topic
    _judge = lambda first, values: app._judge_records(  # noqa: E731
        task, SimpleNamespace(topic=rp, partition=0), [_record(rp, first + i, v) for i, v in enumerate(values)]
    )
    _judge(0, [_rows_of(("in", 0), FRAUD, 1_000, 0), exchange.encode_progress("in", 1, 1_000 + 3 * late), _rows_of(("in", 0), FRAUD, 1_000 + 3 * late, 1)])
    assert task.queued() == 2 and task.carriers.owed  # the first row's turn came, but in-1 may still send it rows read again
    for step in range(4):  # the wait starts at the first look (0.5 s), gives up past 1 s after it
        clock.now += 0.5
        _judge(3 + step, [exchange.encode_progress("in", 1, 1_000 + 3 * late)])  # progress keeps in-1 from going idle
        app._release_idle()
        assert bool(task.carriers.owed) is (step < 3) and task.queued() == (2 if step < 3 else 1), step
    # given up: the first row judged


def test_dead_letters_of_records_read_before_the_restore_are_not_sent_again() -> None:
    """Judged here, an input's offset commits at its oldest record with a row still waiting: a restart reads again records
    whose dead letters were committed with the state that says they were read (``seen``); they are not sent again."""
    from stream_monitor.core.intake import read_inference

    app, _ = _local_app()
    for task in app.tasks.values():
        task.carriers = type(task.carriers)({("in", 0): 5})  # restored: in-0 was read up to 5
    bad = [InputRecord(b"not json", SourcePosition("in", 0, o, None)) for o in (3, 7)]
    results = app._judged_here(("in", 0), lambda inputs: read_inference(app.spec, inputs), bad)
    sent = [dl.position.offset for r in results for dl in r.dead_letters]
    assert sent == [7]
