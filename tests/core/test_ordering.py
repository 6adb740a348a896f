"""Event-time order across input partitions (core/ordering.py): the merger's watermark, late rows, idle
sources, the buffer bound, carrier offsets and what a restart reads again."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stream_monitor.core.events import SourcePosition
from stream_monitor.core.intake import InputRecord, read_inference, read_labels
from stream_monitor.core.monitor import PartitionMonitor
from stream_monitor.core.ordering import Carriers, EventTimeMerger
from stream_monitor.core.spec import MonitorSpec

_SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _row(source: object, t: int, tie: int = 0, carrier: tuple[str, int, int] | None = None) -> SimpleNamespace:
    return SimpleNamespace(key=(t, tie, 0), source=source, carrier=carrier)


@st.composite
def _sources(draw: st.DrawFn, lateness: int) -> list[list[tuple[int, int, int]]]:
    """1-6 sources; each source's times are out of order by at most ``lateness`` (keys unique)."""
    n = draw(st.integers(min_value=1, max_value=6))
    out, tie = [], 0
    for _ in range(n):
        clock = draw(st.integers(min_value=0, max_value=3 * lateness))
        rows = []
        for _ in range(draw(st.integers(min_value=1, max_value=25))):
            clock += draw(st.integers(min_value=0, max_value=2 * lateness))
            t = clock - draw(st.integers(min_value=0, max_value=lateness))  # never more than ``lateness`` behind
            tie += 1
            rows.append((t, draw(st.integers(min_value=0, max_value=3)), tie))
        out.append(rows)
    return out


@_SETTINGS
@given(lateness=st.integers(min_value=0, max_value=50), data=st.data())
def test_rows_within_the_lateness_come_out_sorted_whatever_the_interleaving(lateness: int, data: st.DataObject) -> None:
    sources = data.draw(_sources(lateness))
    rows = [[SimpleNamespace(key=(t, tie, idx), source=("in", s)) for t, idx, tie in src] for s, src in enumerate(sources)]
    merger = EventTimeMerger(lateness)
    # every source sends its first row before anything is released (a source never seen cannot hold the watermark)
    cursor = [1] * len(rows)
    assert merger.add([src[0] for src in rows]) == []
    released = merger.release()
    left = [i for i in range(len(rows)) for _ in range(len(rows[i]) - 1)]
    order = data.draw(st.permutations(left))
    while order:
        n = data.draw(st.integers(min_value=1, max_value=max(1, len(order))))
        batch = []
        for s in order[:n]:
            batch.append(rows[s][cursor[s]])
            cursor[s] += 1
        order = order[n:]
        assert merger.add(batch) == []
        if data.draw(st.booleans()):
            released += merger.release()
    released += merger.release(final=True)
    everything = [r for src in rows for r in src]
    assert [r.key for r in released] == sorted(r.key for r in everything)
    assert len(merger) == 0 and merger.forced == 0


@_SETTINGS
@given(lateness=st.integers(min_value=0, max_value=50), data=st.data())
def test_released_rows_are_always_behind_the_watermark(lateness: int, data: st.DataObject) -> None:
    sources = data.draw(_sources(lateness))
    merger = EventTimeMerger(lateness)
    flat = [SimpleNamespace(key=(t, tie, idx), source=s) for s, src in enumerate(sources) for t, idx, tie in src]
    merger.add(flat[:1])
    for row in flat[1:]:
        merger.add([row])
        wm = merger.watermark()
        out = merger.release()
        assert all(r.key[0] < wm for r in out)
        assert all(r.key[0] >= wm for r in merger.buffered())


def test_rows_beyond_the_lateness_come_back_late() -> None:
    merger = EventTimeMerger(lateness_ms=10)
    assert merger.add([_row("a", t, tie=t) for t in (0, 5, 100)]) == []
    assert [r.key[0] for r in merger.release()] == [0, 5]  # the watermark is 90
    late = [_row("a", 3, tie=1), _row("a", 5, tie=5), _row("b", 4, tie=2)]
    on_time = [_row("a", 6, tie=6), _row("b", 95, tie=95)]
    assert merger.add(late[:2] + on_time[:1] + late[2:] + on_time[1:]) == late  # in arrival order
    assert [r.key[0] for r in merger.release(final=True)] == [6, 95, 100]


def test_a_row_equal_to_the_frontier_is_late_and_one_just_after_it_is_not() -> None:
    merger = EventTimeMerger(lateness_ms=0)
    merger.add([_row("a", 10, tie=7), _row("a", 20, tie=0)])
    assert [r.key for r in merger.release()] == [(10, 7, 0)]
    same, after = _row("a", 10, tie=7), _row("a", 10, tie=8)
    assert merger.add([same, after]) == [same]


def test_an_idle_source_does_not_stall_the_others_and_counts_again_when_it_sends() -> None:
    merger = EventTimeMerger(lateness_ms=10)
    merger.add([_row("slow", 0)])
    merger.add([_row("fast", t, tie=t) for t in range(0, 1000, 50)])
    assert merger.release() == []  # held back by "slow" (watermark -10)
    merger.idle("slow")
    first = merger.release()
    assert [r.key for r in first] == sorted([(0, 0, 0)] + [(t, t, 0) for t in range(0, 1000, 50) if t < 950 - 10])
    merger.add([_row("slow", 960, tie=1)])  # active again: the watermark is min(950, 960) - 10
    merger.add([_row("fast", 2000, tie=2000)])
    assert merger.watermark() == 950
    assert merger.release() == []  # 950 is not below the watermark: "slow" holds it back again
    merger.add([_row("slow", 1200, tie=3)])
    assert [r.key[0] for r in merger.release()] == [950, 960]


def test_every_source_idle_releases_everything() -> None:
    merger = EventTimeMerger(lateness_ms=1000)
    merger.add([_row("a", 5), _row("b", 3, tie=1)])
    assert merger.release() == []
    merger.idle("a")
    merger.idle("b")
    assert [r.key[0] for r in merger.release()] == [3, 5]


def test_idle_of_an_unknown_source_changes_nothing() -> None:
    merger = EventTimeMerger(lateness_ms=0)
    merger.idle("never")
    merger.add([_row("a", 5), _row("a", 9, tie=1)])
    assert [r.key[0] for r in merger.release()] == [5]


@_SETTINGS
@given(max_rows=st.integers(min_value=1, max_value=30), times=st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=80, unique=True))
def test_max_rows_forces_release_in_key_order_and_counts_it(max_rows: int, times: list[int]) -> None:
    times = sorted(times)  # in order: a forced release then makes no row late (see the next test)
    merger = EventTimeMerger(lateness_ms=10**6, max_rows=max_rows)  # the watermark never passes anything
    released = []
    for t in times:
        assert merger.add([_row("a", t, tie=t)]) == []
        released += merger.release()
        assert len(merger) <= max_rows
    assert merger.forced == len(released) == max(0, len(times) - max_rows)
    rest = merger.release(final=True)
    assert merger.forced == len(released)  # the final release is not forced
    keys = [r.key for r in released + rest]
    assert sorted(keys) == sorted((t, t, 0) for t in times)
    assert keys == sorted(keys)


def test_forced_release_moves_the_frontier_so_an_earlier_row_is_late() -> None:
    merger = EventTimeMerger(lateness_ms=10**6, max_rows=2)
    merger.add([_row("a", t, tie=t) for t in (10, 20, 30)])
    assert [r.key[0] for r in merger.release()] == [10]
    assert merger.forced == 1
    early = _row("a", 5, tie=5)
    assert merger.add([early]) == [early]


# ------------------------------------------------------------------ carriers
def test_commit_offsets_are_the_oldest_record_with_a_waiting_row_per_partition() -> None:
    c = Carriers()
    a = [_row("s", 0, carrier=("rp", 0, o)) for o in (3, 3, 4, 7)]
    b = [_row("s", 0, carrier=("rp", 1, o)) for o in (10, 11)]
    c.queue(a + b)
    c.read(("rp", 0), 9)  # records 8 carried no row
    assert c.commit_offsets() == {("rp", 0): 3, ("rp", 1): 10}
    c.release([a[0], b[1]])
    assert c.commit_offsets() == {("rp", 0): 3, ("rp", 1): 10}  # record 3 still has a waiting row
    c.release([a[1], b[0]])
    assert c.commit_offsets() == {("rp", 0): 4, ("rp", 1): 12}
    c.release(a[2:])
    assert c.commit_offsets() == {("rp", 0): 9, ("rp", 1): 12}


def test_rows_without_a_carrier_are_not_counted() -> None:
    c = Carriers()
    c.queue([_row("s", 0)])
    c.release([_row("s", 0)])
    assert c.commit_offsets() == {}


def _records(times: list[int], partition: int) -> list[InputRecord]:
    return [
        InputRecord(orjson.dumps({"model": "m", "ts": t, "event_id": f"{partition}-{i}", "features": {"x": float(i)}}), SourcePosition("in", partition, i, None))
        for i, t in enumerate(times)
    ]


def _carried(records: list[InputRecord], first_offset: int) -> list:
    """Rows of records as the judging side reads them: each carried by one record of a carrying partition."""
    rows = read_inference(MonitorSpec(), records).ordered
    for i, row in enumerate(rows):
        row.carrier = ("rp", 0, first_offset + i)
    return rows


@_SETTINGS
@given(data=st.data())
def test_a_restart_from_the_committed_offset_judges_every_row_once(data: st.DataObject) -> None:
    """Rows read before a restore and at or below the frontier are skipped, the rest are judged once."""
    spec = MonitorSpec.model_validate({"max_lateness_seconds": 0.05})
    p0 = _records(sorted(data.draw(st.lists(st.integers(0, 2000), min_size=1, max_size=30))), 0)
    p1 = _records(sorted(data.draw(st.lists(st.integers(0, 2000), min_size=1, max_size=30))), 1)
    # the carrying partition: p0 and p1 interleaved, each in its own order
    # (both partitions' first records come first: a partition never seen cannot hold the watermark back)
    picks = [0, 1] + data.draw(st.permutations([0] * (len(p0) - 1) + [1] * (len(p1) - 1)))
    it = {0: iter(p0), 1: iter(p1)}
    carried = [next(it[p]) for p in picks]
    rows = _carried(carried, 0)
    keys_all = sorted(r.key for r in rows)

    monitor = PartitionMonitor(spec, partition=0)
    cut = data.draw(st.integers(min_value=0, max_value=len(rows)))
    judged = []
    bounds = sorted({0, min(2, cut), cut, *range(2, cut, 7)})
    for lo, hi in zip(bounds, bounds[1:]):
        assert monitor.take(rows[lo:hi]) == []
        monitor.carriers.read(("rp", 0), hi)
        rel = monitor.order.release()
        monitor.carriers.release(rel)
        judged += [r.key for r in rel]
    commit = monitor.carriers.commit_offsets().get(("rp", 0), 0)
    assert commit <= cut
    restored = PartitionMonitor.from_state_items(spec, 0, monitor.state_items(only_dirty=False))
    again = _carried(carried, 0)[commit:]  # read again from the committed offset
    assert restored.take(again) == []
    rest = restored.order.release(final=True)
    judged += [r.key for r in rest]
    assert judged == keys_all  # no duplicate, no loss, in order


def _one_label_and_its_prediction() -> tuple[list, list]:
    spec = MonitorSpec()
    labels = read_labels([InputRecord(b'{"event_id": "a", "model": "m", "label": 1, "ts": 1000}', SourcePosition("labels", 0, 0, None))]).ordered
    record = orjson.dumps({"model": "m", "ts": 1000, "event_id": "a", "features": {"x": 1.0}, "prediction": 0.4})
    inference = read_inference(spec, [InputRecord(record, SourcePosition("in", 0, 0, None))]).ordered
    return labels, inference


def test_commit_offsets_do_not_pass_a_waiting_label_carried_before_an_inference_row() -> None:
    labels, inference = _one_label_and_its_prediction()
    labels[0].carrier, inference[0].carrier = ("rp", 0, 3), ("rp", 0, 4)
    monitor = PartitionMonitor(MonitorSpec(), partition=0)
    assert monitor.take(labels + inference) == []  # one batch: record 3 (a label), record 4 (a prediction)
    monitor.carriers.read(("rp", 0), 5)
    monitor.release()
    assert monitor.queued() == 2  # both wait (within the lateness)
    assert monitor.carriers.commit_offsets() == {("rp", 0): 3}


def test_commit_offsets_do_not_pass_a_waiting_label_carried_after_an_inference_row() -> None:
    labels, inference = _one_label_and_its_prediction()
    inference[0].carrier, labels[0].carrier = ("rp", 0, 3), ("rp", 0, 4)
    monitor = PartitionMonitor(MonitorSpec(), partition=0)
    assert monitor.take(inference + labels) == []
    monitor.carriers.read(("rp", 0), 5)
    monitor.release()
    assert monitor.queued() == 2
    assert monitor.carriers.commit_offsets() == {("rp", 0): 3}


def test_forgotten_rows_are_not_committed_past() -> None:
    spec = MonitorSpec()
    rows = _carried(_records([1000, 2000, 3000], 0), 10)
    monitor = PartitionMonitor(spec, partition=0)
    assert monitor.take(rows) == []
    monitor.carriers.read(("rp", 0), 13)
    monitor.release()
    assert monitor.queued() == 3 and monitor.carriers.commit_offsets() == {("rp", 0): 10}
    monitor.forget_queued()  # their records will be read again from the committed offset
    assert monitor.carriers.commit_offsets() == {("rp", 0): 10}


def _kept_with_rows_judged_past_a_waiting_one() -> tuple[MonitorSpec, PartitionMonitor, list[InputRecord]]:
    """A task that read records 0-4 of the carrying partition: record 0's row waits (commit offset 0), 1-3's were judged."""
    spec = MonitorSpec.model_validate({"max_lateness_seconds": 1})
    carried = _records([9000], 0) + _records([1000, 2000, 3000, 8000], 1)
    monitor = PartitionMonitor(spec, partition=0)
    assert monitor.take(_carried(carried, 0)) == []
    monitor.carriers.read(("rp", 0), 5)
    monitor.carriers.release(monitor.order.release())
    assert monitor.order.frontier is not None and monitor.order.frontier[0] == 3000
    assert monitor.carriers.commit_offsets() == {("rp", 0): 0}
    return spec, monitor, carried


def test_a_kept_task_checkpointed_before_reading_its_records_again_still_knows_them_after_a_restore() -> None:
    """Issue 11: a task kept over a rebalance reads its records again from the commit offset; a checkpoint
    written before that reading passed what it had read must still say how far it had read, or the next
    restore takes rows judged before for new ones and dead-letters them as ``late``."""
    spec, monitor, carried = _kept_with_rows_judged_past_a_waiting_one()
    monitor.forget_queued()  # kept: records 0-4 are read again from offset 0
    again = _carried(carried, 0)
    assert monitor.take(again[:1]) == []  # one record read again, then a checkpoint, then a crash
    monitor.carriers.read(("rp", 0), 1)
    assert monitor.carriers.commit_offsets() == {("rp", 0): 0}
    restored = PartitionMonitor.from_state_items(spec, 0, monitor.state_items())
    restored.read_from({("rp", 0): 0})
    assert restored.take(_carried(carried, 0)) == []  # nothing late: 1-3 were judged, 0 and 4 queue again
    assert [r.key[0] for r in restored.order.release(final=True)] == [8000, 9000]


def test_a_task_kept_twice_before_reading_its_records_again_still_knows_them() -> None:
    spec, monitor, carried = _kept_with_rows_judged_past_a_waiting_one()
    monitor.forget_queued()
    monitor.forget_queued()  # a second rebalance before the first one's records were read again
    assert monitor.carriers.commit_offsets() == {("rp", 0): 0}
    assert monitor.take(_carried(carried, 0)) == []
    monitor.carriers.read(("rp", 0), 5)
    assert monitor.release(final=True).processed == 2  # 8000 and 9000: the rows that were waiting
    assert monitor.carriers.commit_offsets() == {("rp", 0): 5}


def test_partition_monitor_judges_past_an_idle_input_partition_and_returns_late_rows() -> None:
    spec = MonitorSpec.model_validate({"max_lateness_seconds": 1})
    monitor = PartitionMonitor(spec, partition=0)
    slow = _carried(_records([0], 0), 0)
    fast = _carried(_records(list(range(0, 10_000, 100)), 1), 1)
    assert monitor.take(slow + fast) == []
    assert monitor.release().processed == 0  # the slow partition holds the order back
    monitor.idle(("in", 0))
    judged = monitor.release().processed
    assert judged == 1 + len([t for t in range(0, 10_000, 100) if t < 9_900 - 1_000])
    late = _carried(_records([500], 0), 200)  # the slow partition again, far behind what was judged
    assert monitor.take(late) == late
    assert monitor.release(final=True).processed == len(fast) + 1 - judged


# ------------------------------------------------------------------ progress markers
def test_advance_moves_a_silent_source_on_without_adding_a_row() -> None:
    merger = EventTimeMerger(lateness_ms=10)
    merger.expect("quiet")
    merger.add([_row("busy", t, tie=t) for t in (0, 50, 100)])
    assert merger.release() == []  # "quiet" has sent nothing
    merger.advance("quiet", 80)
    assert [r.key[0] for r in merger.release()] == [0, 50]  # watermark min(100, 80) - 10
    assert len(merger) == 1


def test_advance_never_lowers_a_source_and_wakes_an_idle_one() -> None:
    merger = EventTimeMerger(lateness_ms=0)
    merger.add([_row("a", 40), _row("b", 90)])
    merger.advance("a", 70)
    merger.advance("a", 10)
    assert merger.latest["a"] == 70
    merger.idle("a")
    assert merger.watermark() == 90
    merger.advance("a", 60)  # still 70, but active again
    assert merger.latest["a"] == 70 and "a" not in merger.idle_sources and merger.watermark() == 70


@_SETTINGS
@given(lateness=st.integers(min_value=0, max_value=50), data=st.data())
def test_markers_release_rows_in_order_and_make_no_row_late_that_a_row_at_their_time_would_not(lateness: int, data: st.DataObject) -> None:
    # each source reads events in order (within the lateness); some go here, the others to another
    # task, which here only shows as a marker with the latest time the source read
    sources = data.draw(_sources(lateness))
    here = [[data.draw(st.booleans()) for _ in src] for src in sources]
    order = data.draw(st.permutations([i for i, src in enumerate(sources) for _ in src]))
    marked, twin = EventTimeMerger(lateness), EventTimeMerger(lateness)
    for s in range(len(sources)):
        marked.expect(s)
        twin.expect(s)
    cursor = [0] * len(sources)
    read_up_to: dict[int, int] = {}
    released: list = []
    late: list = []
    twin_late: list = []
    for s in order:
        t, idx, tie = sources[s][cursor[s]]
        read_up_to[s] = max(read_up_to.get(s, t), t)
        if here[s][cursor[s]]:
            row = SimpleNamespace(key=(t, tie, idx), source=s)
            late += marked.add([row])
            twin_late += twin.add([row])
        elif data.draw(st.booleans()):
            marked.advance(s, read_up_to[s])
            # the twin gets a row at that time instead, before every real row of that time
            twin_late += twin.add([SimpleNamespace(key=(read_up_to[s], -1, -1), source=s, phantom=True)])
        cursor[s] += 1
        if data.draw(st.booleans()):
            released += marked.release()
            twin.release()
    released += marked.release(final=True)
    rows = [SimpleNamespace(key=(t, tie, idx)) for s, src in enumerate(sources) for (t, idx, tie), h in zip(src, here[s]) if h]
    assert late == []  # every row within the lateness of its source: markers made none late
    assert [r.key for r in released] == sorted(r.key for r in rows)
    assert {r.key for r in late} <= {r.key for r in twin_late if not getattr(r, "phantom", False)}


class _HeapMerger(EventTimeMerger):
    """The merger as it was (a heap push per row, a pop per released row): the reference for the runs."""

    def __init__(self, lateness_ms: int, max_rows: int) -> None:
        super().__init__(lateness_ms, max_rows)
        self._heap: list = []
        self._seq = iter(range(10**9))

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, rows):  # type: ignore[no-untyped-def]
        import heapq

        late = []
        for row in rows:
            key, src = row.key, row.source
            if self.latest.get(src, key[0] - 1) < key[0]:
                self.latest[src] = key[0]
            self.idle_sources.discard(src)
            self.caught_up_sources.discard(src)
            if self.frontier is not None and key <= self.frontier:
                late.append(row)
                continue
            heapq.heappush(self._heap, (key, next(self._seq), row))
        return late

    def clear(self) -> None:
        self._heap.clear()

    def release(self, final: bool = False):  # type: ignore[no-untyped-def]
        import heapq

        heap = self._heap
        if not heap:
            return []
        wm = self.watermark()
        everything = final or self.latest.keys() <= self.idle_sources  # every source caught up is no exception (caught_up)
        out = []
        while heap and (everything or (wm is not None and heap[0][0][0] < wm)):
            out.append(heapq.heappop(heap)[2])
        while len(heap) > self.max_rows:
            out.append(heapq.heappop(heap)[2])
            self.forced += 1
        if out:
            self.frontier = out[-1].key
        return out


@_SETTINGS
@given(
    lateness=st.integers(min_value=0, max_value=30),
    max_rows=st.integers(min_value=1, max_value=60),
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.lists(st.tuples(st.integers(0, 3), st.integers(0, 120), st.integers(0, 2)), max_size=30)),
            st.tuples(st.sampled_from(["release", "final", "idle", "caught_up", "clear"]), st.integers(0, 3)),
        ),
        max_size=40,
    ),
)
@example(lateness=0, max_rows=1, ops=[("add", [(1, 0, 0)]), ("caught_up", 1), ("release", 0)])  # every source caught up: still held
def test_the_runs_release_and_refuse_exactly_what_a_heap_per_row_did(lateness: int, max_rows: int, ops: list) -> None:
    """Same rows (equal keys included: arrival order decides), same calls: same released rows in the same order, same late rows, same forced count."""
    new, ref = EventTimeMerger(lateness, max_rows), _HeapMerger(lateness, max_rows)
    made = 0
    for op, arg in ops:
        if op == "add":
            rows = []
            for src, t, tie in arg:
                made += 1
                rows.append(SimpleNamespace(key=(t, tie, 0), source=("in", src), n=made))
            assert [r.n for r in new.add(rows)] == [r.n for r in ref.add(rows)]
        elif op in ("release", "final"):
            assert [r.n for r in new.release(op == "final")] == [r.n for r in ref.release(op == "final")]
        elif op == "clear":
            new.clear(), ref.clear()
        else:
            getattr(new, op)(("in", arg)), getattr(ref, op)(("in", arg))
        assert (len(new), new.frontier, new.forced, new.latest) == (len(ref), ref.frontier, ref.forced, ref.latest)
        assert sorted(r.n for r in new.buffered()) == sorted(e[2].n for e in ref._heap)


def test_many_small_adds_behind_a_silent_source_merge_into_few_runs() -> None:
    """Rows waiting behind a source that sends nothing, added a few at a time out of order, stay bounded in runs and come out sorted."""
    m = EventTimeMerger(lateness_ms=0)
    m.expect(("in", 9))
    for k in range(500):
        m.add([_row(("in", 0), (k * 7919) % 1000, k)])
    assert len(m._runs) <= 64 and len(m) == 500
    m.idle(("in", 9)), m.idle(("in", 0))
    out = m.release()
    assert [r.key for r in out] == sorted(r.key for r in out) and len(out) == 500


def test_a_label_behind_the_label_orders_frontier_is_joined_not_late() -> None:
    """Labels trail their predictions, and label partitions fill at their own pace: one that comes
    after another label partition moved the label order on is joined at once, not a dead letter."""
    labels, inference = _one_label_and_its_prediction()  # label "a" (labels-0) and its prediction, ts 1000
    monitor = PartitionMonitor(MonitorSpec(), partition=0)
    assert monitor.take(inference) == []
    monitor.release(final=True)
    assert "a" in monitor.pending_labels  # the prediction waits for its label
    ahead = read_labels([InputRecord(b'{"event_id": "b", "model": "m", "label": 0, "ts": 900000}', SourcePosition("labels", 1, 0, None))]).ordered
    assert monitor.take(ahead) == []
    monitor.release(final=True)  # labels-1 moved the label order to 900 s
    assert monitor.label_order.frontier is not None and monitor.label_order.frontier[0] == 900_000
    assert monitor.take(labels) == []  # behind the frontier: not late
    monitor.release()
    assert "a" not in monitor.pending_labels and monitor.queued() == 0  # joined
