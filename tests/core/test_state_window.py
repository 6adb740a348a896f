"""A channel's reference and window chunks are state items of their own (``core/state_window.py``).

What a changelog holds is the accumulation of the items every checkpoint wrote (``None`` deletes):
restoring that must continue exactly as the uninterrupted run, and state written by the code before
the split (format 3, one item per channel: ``tests/data/state_format3.json``, written by
``python -m tests.core.test_state_window <git ref>`` with the code at that ref) must still restore.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import msgpack
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from stream_monitor.core.channel import WINDOW_CHUNK
from stream_monitor.core.events import SourcePosition
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec
from tests.core.test_state import SMALL, SPEC1, event, feed, records

SIZE = 2 * WINDOW_CHUNK + 44  # a window of three chunks, the last one short
SPEC = MonitorSpec.model_validate({"defaults": {**SMALL, "window": {"size": SIZE, "step": 25}}})
FORMAT3 = Path(__file__).resolve().parents[1] / "data" / "state_format3.json"
SPLIT3 = 1100  # the record the format 3 state was written at


def sparse_records(start: int, stop: int) -> list[InputRecord]:
    """As ``tests.core.test_state.records``, with x missing now and then: its values ring falls behind its flags ring."""
    out = []
    for i in range(start, stop):
        e = event(i)
        if i % 3 == 1 or 700 <= i < 790:
            e["features"]["x"] = None
        out.append(InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])))
    return out


def label_records(start: int, stop: int) -> list[InputRecord]:
    ids = range(max(0, start - 40), max(0, stop - 40), 3)
    return [InputRecord(orjson.dumps({"event_id": f"e{i}", "model": "m", "label": i % 2}), SourcePosition("l", 0, i, None)) for i in ids]


class Changelog(dict):
    """The latest value of each key, as compaction keeps it: ``None`` deletes."""

    def apply(self, items: dict[str, bytes | None]) -> None:
        for key, value in items.items():
            if value is None:
                self.pop(key, None)
            else:
                self[key] = value


def step(monitor: PartitionMonitor, start: int, stop: int) -> list[bytes]:
    out = [a.payload for a in monitor.process(sparse_records(start, stop)).alerts]
    return out + [a.payload for a in monitor.process_labels(label_records(start, stop)).alerts]


def assert_same_windows(a: PartitionMonitor, b: PartitionMonitor) -> None:
    for name, m in a.models.items():
        for c, ch in m.channels.items():
            other = b.models[name].channels[c]
            assert (ch.reference is None) == (other.reference is None), c
            if ch.reference is not None:
                assert (ch.obs_pos, ch.obs_filled, ch.val_pos, ch.val_filled) == (other.obs_pos, other.obs_filled, other.val_pos, other.val_filled)
                assert ch.flags.tobytes() == other.flags.tobytes() and ch.times.tobytes() == other.times.tobytes(), c
                assert ch.values.tobytes() == other.values.tobytes(), c


def channel_keys(items: dict[str, Any]) -> set[str]:
    return {k for k in items if k[:2] in ("c\x1f", "r\x1f", "w\x1f")}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(5, 170), min_size=1, max_size=6),
    checkpoints=st.lists(st.booleans(), min_size=1, max_size=5),
    split=st.integers(1, 40),
)
def test_restoring_the_accumulated_dirty_items_continues_as_the_uninterrupted_run(sizes, checkpoints, split):
    """Any batching, checkpoints after some batches only, a split at any checkpoint: restored from what the checkpoints
    wrote, the run goes on with the same alert bytes and the same state, and the changelog holds no item it should not."""
    bounds, i = [0], 0
    while bounds[-1] < 2000:
        bounds.append(min(2000, bounds[-1] + sizes[i % len(sizes)]))
        i += 1
    log = Changelog()
    uninterrupted = PartitionMonitor(SPEC, 0)
    restored: PartitionMonitor | None = None
    after: tuple[list[bytes], list[bytes]] = ([], [])
    cuts = 0
    for n, (a, b) in enumerate(zip(bounds, bounds[1:])):
        alerts = step(uninterrupted, a, b)
        if restored is not None:
            after[0].extend(alerts)
            after[1].extend(step(restored, a, b))
        if checkpoints[n % len(checkpoints)] or b == 2000:
            log.apply((restored or uninterrupted).state_items())
            if restored is not None:
                uninterrupted.state_items()
            cuts += 1
            if cuts == split or (restored is None and b >= 1900):
                restored = PartitionMonitor.from_state_items(SPEC, 0, dict(log))
                assert restored.rejected_state_items == 0
                assert_same_windows(uninterrupted, restored)
    assert restored is not None and after[0] == after[1]
    again = PartitionMonitor.from_state_items(SPEC, 0, dict(log))  # the changelog at the end
    assert_same_windows(restored, again)
    full = restored.state_items(only_dirty=False)
    assert again.rejected_state_items == 0 and again.state_items(only_dirty=False) == full
    assert uninterrupted.state_items(only_dirty=False) == full
    assert channel_keys(log) == channel_keys(full), "the changelog holds channel items no channel has"


def test_a_checkpoint_writes_the_touched_window_chunks_and_the_reference_once():
    """Channel c (present on every record: its flags and values rings move together) after its reference (100 records)."""
    monitor = PartitionMonitor(SPEC, 0)
    keys = [f"w\x1fm\x1fc\x1f{i}" for i in range(3)]
    at = 100 + WINDOW_CHUNK - 10
    step(monitor, 0, at)  # window positions 0 to WINDOW_CHUNK - 11
    first = monitor.state_items()
    assert {"r\x1fm\x1fc", *keys} <= first.keys()

    def written(n: int) -> set[str]:
        nonlocal at
        step(monitor, at, at + n)
        at += n
        items = monitor.state_items()
        assert not [k for k in items if k.startswith("r\x1f")], "a static reference is not written again"
        return {k for k in items if k.startswith("w\x1fm\x1fc\x1f")}

    assert written(5) == {keys[0]}
    assert written(10) == {keys[0], keys[1]}  # across the chunk boundary
    assert written(SIZE - 3 - (WINDOW_CHUNK + 5)) == {keys[1], keys[2]}  # up to position SIZE - 4
    assert written(6) == {keys[2], keys[0]}  # SIZE - 3 to SIZE - 1, then 0 to 2: the ring wraps
    assert msgpack.unpackb(monitor.state_items(only_dirty=False)["c\x1fm\x1fc"])["window"]["chunk"] == WINDOW_CHUNK


def test_state_of_the_previous_format_restores_and_continues_as_the_uninterrupted_run():
    stored = json.loads(FORMAT3.read_text())
    items = {k: base64.b64decode(v) for k, v in stored["items"].items()}
    assert {msgpack.unpackb(v)["format"] for v in items.values()} == {3} and "c\x1fm\x1fx" in items
    restored = PartitionMonitor.from_state_items(SPEC1, 0, items)
    assert restored.rejected_state_items == 0
    x = restored.models["m"].channels["x"]
    assert x.reference is not None and x.obs_filled == 100 and x.series.firing, "not the state the fixture describes"
    first = restored.state_items()  # every channel writes its items apart, in format 4
    assert {k for k in first if k.startswith("r\x1f")} == {f"r\x1fm\x1f{c}" for c, ch in restored.models["m"].channels.items() if ch.reference}
    assert {msgpack.unpackb(v)["format"] for v in first.values() if v is not None} == {4}
    uninterrupted = PartitionMonitor(SPEC1, 0)
    feed(uninterrupted, 0, SPLIT3)
    assert feed(restored, SPLIT3, 2000) == feed(uninterrupted, SPLIT3, 2000)
    log = Changelog(items)
    log.apply(first)
    again = PartitionMonitor.from_state_items(SPEC1, 0, dict(log))
    assert again.rejected_state_items == 0


def test_items_a_channel_no_longer_has_are_deleted():
    monitor = PartitionMonitor(SPEC, 0)
    step(monitor, 0, 500)
    log = Changelog(monitor.state_items())
    # another window size: the channel is rebuilt (reference kept) with one chunk; its chunks 1 and 2 are deleted
    smaller = MonitorSpec.model_validate({"defaults": {**SMALL, "window": {"size": 60, "step": 20}}})
    with capture_logs():
        resized = PartitionMonitor.from_state_items(smaller, 0, dict(log))
    items = resized.state_items()
    assert items["w\x1fm\x1fx\x1f1"] is None and items["w\x1fm\x1fx\x1f2"] is None
    assert items["w\x1fm\x1fx\x1f0"] is not None and "r\x1fm\x1fx" in items
    # rebuilt warming up again (no baseline): its reference and chunks are deleted
    monitor.models["m"].reset_channel("x")
    items = monitor.state_items()
    assert items["r\x1fm\x1fx"] is None and all(items[f"w\x1fm\x1fx\x1f{i}"] is None for i in range(3))
    log.apply(items)
    assert not [k for k in log if k.startswith(("r\x1fm\x1fx", "w\x1fm\x1fx\x1f"))]
    # a channel item that does not read: the channel starts again, its reference and chunks are deleted once
    log.apply(monitor.state_items(only_dirty=False))
    log["c\x1fm\x1fc"] = b"garbage"
    with capture_logs():
        reset = PartitionMonitor.from_state_items(SPEC, 0, dict(log))
    assert reset.rejected_state_items == 1
    items = reset.state_items()
    assert items["r\x1fm\x1fc"] is None and items["w\x1fm\x1fc\x1f0"] is None
    assert not [k for k, v in reset.state_items().items() if v is None and k.startswith(("r\x1f", "w\x1f"))]


def _write_format3(ref: str) -> None:
    """Write the fixture with ``stream_monitor`` at git ``ref`` (which must write format 3)."""
    import importlib
    import tempfile

    from bench.ab_against_ref import OLD, extract

    with tempfile.TemporaryDirectory() as tmp:
        extract(ref, Path(tmp))
        sys.path.insert(0, tmp)
        old = importlib.import_module(f"{OLD}.core.monitor")
        pos = importlib.import_module(f"{OLD}.core.events").SourcePosition
        spec = importlib.import_module(f"{OLD}.core.spec").MonitorSpec.model_validate({"defaults": SMALL})
        monitor = old.PartitionMonitor(spec, partition=0)
        for i in range(0, SPLIT3, 50):  # as tests.core.test_state.feed
            stop = min(SPLIT3, i + 50)
            monitor.process([old.InputRecord(orjson.dumps(event(j)), pos("t", 0, j, event(j)["ts"])) for j in range(i, stop)])
            ids = range(i - 40, stop - 40, 3)
            monitor.process_labels([
                old.InputRecord(orjson.dumps({"event_id": f"e{j}", "model": "m", "label": j % 2}), pos("l", 0, 10 * i + k, None))
                for k, j in enumerate(ids)
            ])  # fmt: skip
        items = monitor.state_items(only_dirty=False)
    FORMAT3.write_text(json.dumps({"ref": ref, "split": SPLIT3, "items": {k: base64.b64encode(v).decode() for k, v in sorted(items.items())}}, indent=0) + "\n")


if __name__ == "__main__":
    _write_format3(sys.argv[1])
