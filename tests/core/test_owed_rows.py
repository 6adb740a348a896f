"""Rows owed to a task of several input partitions after its waiting rows were dropped (``Carriers.owe``,
``PartitionMonitor.hold_owed``; ``kafka.judge_locally`` in runtime/judging.py).

A task judged where its rows are read commits each input's offset at its oldest record with a row still
waiting. After a restart each input is read again from there, each at its own pace: one input's new rows
can come before another's rows read again. Releasing then could pass rows still to come again, which
would be skipped as judged before (lost) or be ``late``. The task holds its releases until every input is
read past where it was, whether the rows come again straight from the inputs (judged where read again) or
through the internal topic (another carrier: recognised by their input record).
"""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.core.events import SourcePosition
from stream_monitor.core.intake import InputRecord, read_inference
from stream_monitor.core.monitor import PartitionMonitor
from stream_monitor.core.spec import MonitorSpec

_SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SPEC = MonitorSpec.model_validate({"max_lateness_seconds": 0.05})


def _records(times: list[int], partition: int) -> list[InputRecord]:
    return [
        InputRecord(orjson.dumps({"model": "m", "ts": t, "event_id": f"{partition}-{i}", "features": {"x": float(i)}}), SourcePosition("in", partition, i, None))
        for i, t in enumerate(times)
    ]


def _rows(records: list[InputRecord], through: int | None = None) -> list:
    """Rows of records, each carried by its own input record, or (``through``) by records of the internal topic from ``through`` on."""
    rows = read_inference(SPEC, records).ordered
    for i, row in enumerate(rows):
        p = row.position
        row.carrier = (p.topic, p.partition, p.offset) if through is None else ("rp", 0, through + i)
    return rows


@st.composite
def _inputs(draw: st.DrawFn) -> list[list[int]]:
    """2-3 input partitions, each within the lateness (50 ms) of its own order, at different paces."""
    out = []
    for _ in range(draw(st.integers(min_value=2, max_value=3))):
        clock, times = draw(st.integers(0, 300)), []
        for _ in range(draw(st.integers(min_value=2, max_value=30))):
            clock += draw(st.integers(0, 120))
            times.append(clock - draw(st.integers(0, 50)))
        out.append(times)
    return out


def _read_first_part(monitor: PartitionMonitor, records: list[list[InputRecord]], cuts: list[int], data: st.DataObject) -> list:
    """Read each input up to its cut, in batches interleaved as drawn; returns the keys judged."""
    judged: list = []
    at = [0] * len(records)
    for p in range(len(records)):
        monitor.order.expect(("in", p))
    while any(at[p] < cuts[p] for p in range(len(records))):
        p = data.draw(st.sampled_from([p for p in range(len(records)) if at[p] < cuts[p]]))
        hi = min(cuts[p], at[p] + data.draw(st.integers(1, 6)))
        assert monitor.take(_rows(records[p][at[p] : hi])) == []
        monitor.carriers.read(("in", p), hi)
        at[p] = hi
        judged += [r.key for r in monitor.release().judged]
    return judged


def _restart(monitor: PartitionMonitor, hold: bool) -> tuple[PartitionMonitor, dict]:
    commit = monitor.carriers.commit_offsets()
    restored = PartitionMonitor.from_state_items(SPEC, 0, monitor.state_items(only_dirty=False))
    restored.hold_owed = hold
    return restored, commit


@_SETTINGS
@given(times=_inputs(), data=st.data())
def test_inputs_read_again_at_their_own_pace_judge_every_row_once_in_order(times: list[list[int]], data: st.DataObject) -> None:
    """Judged where read, a restart reads each input again from its committed offset; the input read again last
    (its rows waited longest) comes after the others' new rows, yet every row is judged once, in key order."""
    records = [_records(t, p) for p, t in enumerate(times)]
    cuts = [data.draw(st.integers(1, len(r))) for r in records]
    monitor = PartitionMonitor(SPEC, 0)
    judged = _read_first_part(monitor, records, cuts, data)
    restored, commit = _restart(monitor, hold=True)
    restored.read_from(commit)  # the runtime does this for a rebuilt task judging here (JudgingSteps._owe_inputs)
    for p in sorted(range(len(records)), key=lambda p: -commit[("in", p)]):  # the input with the oldest waiting row last
        start = commit[("in", p)]
        for lo in range(start, len(records[p]), 4):
            hi = min(len(records[p]), lo + 4)
            assert restored.take(_rows(records[p][lo:hi])) == []
            restored.carriers.read(("in", p), hi)
            judged += [r.key for r in restored.release().judged]
    judged += [r.key for r in restored.release(final=True).judged]
    assert judged == sorted(r.key for rs in records for r in _rows(rs))


@_SETTINGS
@given(times=_inputs(), data=st.data())
def test_rows_read_here_then_through_the_internal_topic_are_judged_once_in_order(times: list[list[int]], data: st.DataObject) -> None:
    """Judged where read, then an abrupt end and a restart through the internal topic: the inputs' readers read again
    from the committed offsets and send the rows there, in any order of inputs; rows judged before are recognised by
    their input record, the others wait until every input is read past where it was (its reader at its end says so)."""
    records = [_records(t, p) for p, t in enumerate(times)]
    cuts = [data.draw(st.integers(1, len(r))) for r in records]
    monitor = PartitionMonitor(SPEC, 0)
    judged = _read_first_part(monitor, records, cuts, data)
    restored, commit = _restart(monitor, hold=True)
    restored.carriers.owe([("in", p) for p in range(len(records))])  # JudgingSteps._owe_inputs, through the internal topic
    group = min(commit.values())  # the group's committed offset of every input: the oldest waiting row of any task
    offset = 0
    for p in sorted(range(len(records)), key=lambda p: -commit[("in", p)]):
        for lo in range(group if group < len(records[p]) else len(records[p]), len(records[p]), 4):
            hi = min(len(records[p]), lo + 4)
            rows = _rows(records[p][lo:hi], through=offset)
            offset += len(rows)
            assert restored.take(rows) == []
            judged += [r.key for r in restored.release().judged]
        restored.caught_up(("in", p))  # its reader, at its end, says so
        judged += [r.key for r in restored.release().judged]
    judged += [r.key for r in restored.release(final=True).judged]
    assert judged == sorted(r.key for rs in records for r in _rows(rs))


def test_without_holding_an_input_read_again_last_gets_its_rows_late() -> None:
    """The same restart without ``hold_owed``: the other input's new rows move the order past the waiting rows still
    to come again, which then come behind the frontier: ``late`` dead letters, never judged (the case the hold is
    for). They are not taken for rows judged before: those are at or below the frontier of the restore."""
    records = [_records([0, 10, 200, 210, 1000], 0), _records([100, 110, 300, 400, 500, 1100], 1)]
    monitor = PartitionMonitor(SPEC, 0)
    for p in (0, 1):
        monitor.order.expect(("in", p))
    judged = []
    for p, hi in ((0, 5), (1, 2)):  # input 0 to its end (200 and on wait for input 1), input 1 up to 110 (waiting too)
        assert monitor.take(_rows(records[p][:hi])) == []
        monitor.carriers.read(("in", p), hi)
        judged += [r.key for r in monitor.release().judged]
    assert [k[0] for k in judged] == [0, 10] and monitor.carriers.commit_offsets() == {("in", 0): 2, ("in", 1): 0}
    outcomes = {}
    for hold in (False, True):
        restored, commit = _restart(monitor, hold)
        restored.read_from(commit)
        got, late = list(judged), []
        for p in (1, 0):  # input 1's new rows first
            late += [r.key[0] for r in restored.take(_rows(records[p][commit[("in", p)] :]))]
            restored.carriers.read(("in", p), len(records[p]))
            got += [r.key for r in restored.release().judged]
        got += [r.key for r in restored.release(final=True).judged]
        outcomes[hold] = ([k[0] for k in got], late)
    assert outcomes[True] == ([0, 10, 100, 110, 200, 210, 300, 400, 500, 1000, 1100], [])
    assert outcomes[False] == ([0, 10, 100, 110, 300, 400, 500, 1000, 1100], [200, 210]), "without the hold, 200 and 210 are passed: late"
