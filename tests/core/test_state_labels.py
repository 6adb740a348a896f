"""The pending predictions in segments: a checkpoint writes what changed, and the changelog restores what was there."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import msgpack
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from stream_monitor.core import state_labels
from stream_monitor.core.events import SourcePosition
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec
from stream_monitor.core.state_labels import SEGMENT_ENTRIES, encode_labels

T0 = 1_767_225_600_000
SPEC = MonitorSpec.model_validate({"defaults": {"reference": {"size": 100}, "window": {"size": 100, "step": 25}}})
BATCH = 500


def inference(start: int, stop: int) -> list[InputRecord]:
    return [
        InputRecord(
            orjson.dumps({"event_id": f"e{i}", "model": "m", "ts": T0 + 1000 * i, "features": {"x": (i * 7919 % 1000) / 1000.0}, "prediction": (i % 97) / 97.0}),
            SourcePosition("in", 0, i, None),
        )
        for i in range(start, stop)
    ]


def labels(start: int, stop: int) -> list[InputRecord]:
    """Labels of every other event of [start, stop), and of a few much older ones (joins far back)."""
    back = start - 20 * BATCH
    ids = [*range(start, stop, 2), *(range(back + 1, back + 40, 2) if back >= 0 else ())]  # odd ids: not labelled before
    return [
        InputRecord(orjson.dumps({"event_id": f"e{i}", "model": "m", "label": i % 2}), SourcePosition("lab", 0, start + k, T0 + 1000 * i))
        for k, i in enumerate(ids)
    ]


def step(monitor: PartitionMonitor, b: int) -> list[bytes]:
    """One batch of predictions, then the labels of the batch before it: what was alerted and dead-lettered."""
    out = [a.payload for a in monitor.process(inference(b, b + BATCH)).alerts]
    result = monitor.process_labels(labels(b - BATCH, b)) if b else None
    if result is not None:
        assert result.dead_letters == [] and result.waiting == 0  # every label joins its prediction
        out += [a.payload for a in result.alerts]
    return out


def apply(changelog: dict[str, bytes], items: dict[str, bytes | None]) -> None:
    """What a compacted changelog keeps of one checkpoint's items (None: a tombstone)."""
    for key, value in items.items():
        if value is None:
            changelog.pop(key, None)
        else:
            changelog[key] = value


def labels_bytes(items: dict[str, bytes | None]) -> int:
    return sum(len(v) for k, v in items.items() if state_labels.is_labels_key(k) and v is not None)


def test_a_checkpoint_writes_only_the_segments_that_changed():
    monitor = PartitionMonitor(SPEC, 0)
    written = []
    for b in range(0, 30 * BATCH, BATCH):
        step(monitor, b)
        written.append(labels_bytes(monitor.state_items()))
    pending = monitor.pending_labels
    assert len(pending) > 6 * SEGMENT_ENTRIES  # half the predictions never get a label
    whole = len(encode_labels(list(pending.items())))
    assert len(monitor.label_segments.members) > 6
    # the last checkpoints wrote the newest segments and those the labels touched, not everything waiting
    assert max(written[-10:]) < whole / 2, (written[-10:], whole)
    # per checkpoint: the newest segment, the one sealed in between, the one or two the labels of the batch before touched,
    # and the one or two the labels of 20 batches back did: at most 6 segments, however many wait
    segment = len(encode_labels(list(pending.items())[:SEGMENT_ENTRIES]))
    assert max(written) <= 6 * segment, (written, segment)


@pytest.mark.parametrize("split", [7 * BATCH, 23 * BATCH])
def test_the_changelog_of_the_checkpoints_restores_the_same_predictions_and_the_run_goes_on_the_same(split):
    uninterrupted = PartitionMonitor(SPEC, 0)
    expected = [p for b in range(0, 30 * BATCH, BATCH) for p in step(uninterrupted, b)]
    first = PartitionMonitor(SPEC, 0)
    changelog: dict[str, bytes] = {}
    got = []
    for b in range(0, split, BATCH):
        got += step(first, b)
        apply(changelog, first.state_items())
    assert any(k.startswith(state_labels.SEALED) for k in changelog) and None not in changelog.values()
    restored = PartitionMonitor.from_state_items(SPEC, 0, changelog)
    assert restored.rejected_state_items == 0
    assert list(restored.pending_labels.items()) == list(first.pending_labels.items())
    segments = lambda m: {k: v for k, v in m.state_items(only_dirty=False).items() if state_labels.is_labels_key(k)}  # noqa: E731
    assert segments(restored) == segments(first)
    for b in range(split, 30 * BATCH, BATCH):
        got += step(restored, b)
    assert got == expected
    assert list(restored.pending_labels.items()) == list(uninterrupted.pending_labels.items())


def test_emptied_segments_are_deleted_and_the_list_of_segments_follows():
    monitor = PartitionMonitor(SPEC, 0)
    changelog: dict[str, bytes] = {}
    for b in range(0, 8 * BATCH, BATCH):
        monitor.process(inference(b, b + BATCH))
        apply(changelog, monitor.state_items())
    sealed = sorted(k for k in changelog if k.startswith(state_labels.SEALED))
    assert len(sealed) >= 2
    first_ids = [f"e{i}" for i in range(SEGMENT_ENTRIES)]  # the first segment: labelled now, all of them
    records = [InputRecord(orjson.dumps({"event_id": i, "model": "m", "label": 1}), SourcePosition("lab", 0, k, T0)) for k, i in enumerate(first_ids)]
    assert monitor.process_labels(records).dead_letters == []
    items = monitor.state_items()
    assert items[sealed[0]] is None and "labels" in items  # a tombstone, and labels lists one segment fewer
    apply(changelog, items)
    _, listed = state_labels.decode_labels_item(changelog["labels"])
    assert [f"{state_labels.SEALED}{n}" for n in listed] == sorted(k for k in changelog if k.startswith(state_labels.SEALED))
    restored = PartitionMonitor.from_state_items(SPEC, 0, changelog)
    assert list(restored.pending_labels) == list(monitor.pending_labels) and not set(first_ids) & set(restored.pending_labels)


def test_a_missing_segment_resets_only_its_predictions_and_an_unlisted_one_is_deleted():
    monitor = PartitionMonitor(SPEC, 0)
    monitor.process(inference(0, 4 * SEGMENT_ENTRIES))
    items = monitor.state_items(only_dirty=False)
    sealed = sorted((k for k in items if k.startswith(state_labels.SEALED)), key=lambda k: int(k[len(state_labels.SEALED):]))
    lost = sealed[1]
    held = state_labels.decode_labels_item(items[lost])[0]
    del items[lost]
    items[f"{state_labels.SEALED}999"] = items[sealed[0]]  # written by nothing this labels item knows of
    with capture_logs() as logs:
        restored = PartitionMonitor.from_state_items(SPEC, 0, items)
    assert restored.rejected_state_items == 1 and [e["event"] for e in logs].count("state_item_rejected") == 1
    assert list(restored.pending_labels) == [i for i in monitor.pending_labels if i not in held]
    after = restored.state_items()
    assert after[lost] is None and after[f"{state_labels.SEALED}999"] is None and "labels" in after
    listed = state_labels.decode_labels_item(after["labels"])[1]
    assert [f"{state_labels.SEALED}{n}" for n in listed] == [k for k in sealed if k != lost]


def test_a_labels_item_of_the_single_item_layout_reads_and_is_cut_into_segments():
    pending: OrderedDict[str, Any] = OrderedDict((f"old{i}", ("m", i / 10, T0 + i)) for i in range(3 * SEGMENT_ENTRIES))
    old = encode_labels(list(pending.items()))  # no segments: as written before them
    restored = PartitionMonitor.from_state_items(SPEC, 0, {"labels": old})
    assert restored.rejected_state_items == 0 and list(restored.pending_labels.items()) == list(pending.items())
    restored.process(inference(0, 10))
    items = restored.state_items()
    sealed = [k for k in items if k.startswith(state_labels.SEALED)]
    assert len(sealed) == 1 and len(state_labels.decode_labels_item(items[sealed[0]])[0]) == 3 * SEGMENT_ENTRIES
    newest, listed = state_labels.decode_labels_item(items["labels"])
    assert list(newest) == [f"e{i}" for i in range(10)] and [f"{state_labels.SEALED}{n}" for n in listed] == sealed


_scalars = st.floats() | st.integers(-(2**80), 2**80) | st.booleans() | st.text(max_size=5) | st.none()


@given(value=_scalars | st.dictionaries(st.text(max_size=3), _scalars, max_size=3))
def test_the_quick_prediction_text_is_json_dumps(value):
    assert state_labels._json_text(value) == json.dumps(value)


def _full_segments(monitor: PartitionMonitor, changelog: dict[str, bytes], segments: int) -> list[str]:
    """Predictions e0... until ``segments`` full segments are written; their keys, oldest first."""
    monitor.process(inference(0, segments * SEGMENT_ENTRIES + 10))
    apply(changelog, monitor.state_items())
    return sorted((k for k in changelog if k.startswith(state_labels.SEALED)), key=lambda k: int(k[len(state_labels.SEALED):]))


def _labelled(ids: list[int]) -> list[InputRecord]:
    return [InputRecord(orjson.dumps({"event_id": f"e{i}", "model": "m", "label": 1}), SourcePosition("lab", 0, k, T0)) for k, i in enumerate(ids)]


def test_a_label_of_a_full_segment_marks_it_in_the_labels_item_and_the_segment_is_not_written_again():
    monitor, changelog = PartitionMonitor(SPEC, 0), {}
    sealed = _full_segments(monitor, changelog, 3)
    assert len(sealed) == 3
    taken = list(range(0, SEGMENT_ENTRIES, 2)) + [SEGMENT_ENTRIES + 5]  # half the first segment, one of the second
    assert monitor.process_labels(_labelled(taken)).dead_letters == []
    items = monitor.state_items()
    assert {k for k in items if state_labels.is_labels_key(k)} == {"labels"}  # no segment written again
    assert len(items["labels"]) < 1000  # the newest ten predictions and the marks
    head = msgpack.unpackb(items["labels"])
    assert head["format"] == state_labels.LABELS_FORMAT and [len(b) for b in head["gone"]] == [SEGMENT_ENTRIES // 8] * 2 + [0]
    _, listed, gone = state_labels.decode_labels_head(items["labels"])
    assert sorted(gone) == listed[:2] and bin(int.from_bytes(gone[listed[0]], "little")).count("1") == SEGMENT_ENTRIES // 2
    apply(changelog, items)
    restored = PartitionMonitor.from_state_items(SPEC, 0, changelog)
    assert restored.rejected_state_items == 0
    assert list(restored.pending_labels.items()) == list(monitor.pending_labels.items())
    assert not {f"e{i}" for i in taken} & set(restored.pending_labels)
    # both go on the same: the next labels mark the same positions, in the same items
    more = list(range(1, SEGMENT_ENTRIES // 2, 2))  # the first segment down to a quarter: written again, with those alone
    a, b = monitor.process_labels(_labelled(more)), restored.process_labels(_labelled(more))
    assert a.dead_letters == b.dead_letters == []
    items, again = monitor.state_items(), restored.state_items()
    assert {k: v for k, v in items.items() if state_labels.is_labels_key(k)} == {k: v for k, v in again.items() if state_labels.is_labels_key(k)}
    assert sealed[0] in items and sealed[1] not in items and sealed[2] not in items  # compacted; the others keep their items
    kept = state_labels.decode_labels_item(items[sealed[0]])[0]
    assert len(kept) == SEGMENT_ENTRIES // 4 and list(kept) == [i for i in monitor.pending_labels if i in kept]
    assert list(state_labels.decode_labels_head(items["labels"])[2]) == [listed[1]]
    apply(changelog, items)
    assert list(PartitionMonitor.from_state_items(SPEC, 0, changelog).pending_labels.items()) == list(monitor.pending_labels.items())


def test_marks_that_do_not_fit_their_segment_reset_only_its_predictions_and_a_format_4_reader_rejects_marks():
    monitor, changelog = PartitionMonitor(SPEC, 0), {}
    sealed = _full_segments(monitor, changelog, 2)
    monitor.process_labels(_labelled([3]))
    apply(changelog, monitor.state_items())
    cut = state_labels.decode_labels_item(changelog[sealed[0]])[0]
    changelog[sealed[0]] = state_labels.encode_labels(list(cut.items())[:-9])  # an item its marks do not fit (one byte short)
    with capture_logs() as logs:
        restored = PartitionMonitor.from_state_items(SPEC, 0, changelog)
    assert restored.rejected_state_items == 1 and [e["event"] for e in logs].count("state_item_rejected") == 1
    assert list(restored.pending_labels) == [i for i in monitor.pending_labels if i not in cut]
    assert restored.state_items()[sealed[0]] is None
    head = msgpack.unpackb(changelog["labels"])
    for bad in ({**head, "format": 4}, {**head, "gone": head["gone"][:1]}, {**head, "gone": [1, 2]}):
        with pytest.raises(state_labels.StateFormatError):
            state_labels.decode_labels_head(msgpack.packb(bad, use_bin_type=True))


@given(ops=st.lists(st.tuples(st.booleans(), st.integers(0, 60)), max_size=120), size=st.integers(1, 6))
def test_segments_written_as_they_change_restore_what_waits(ops, size):
    """Any adds and removals, checkpointed now and then: the changelog restores the predictions waiting, in order."""
    pending: OrderedDict[str, Any] = OrderedDict()
    seg, changelog, t = state_labels.LabelSegments(size=size), {}, 0
    for k, (add, i) in enumerate(ops):
        key = f"e{i}"
        if add:
            if key in pending:
                del pending[key]
                seg.remove(key)
            pending[key] = ("m", i / 7, T0 + k)
            seg.add(key)
        elif key in pending:
            del pending[key]
            seg.remove(key)
        if k % 5 == 4:
            apply(changelog, seg.items(pending))
            (restored, again), rejected = state_labels.restore_labels(changelog)
            assert rejected == [] and list(restored.items()) == list(pending.items())
            assert again.items(restored, only_changed=False) == seg.items(pending, only_changed=False)
            assert {k for k in changelog if k.startswith(state_labels.SEALED)} == {seg.key(n) for n in seg.members if n != seg.open}


def _format4(entries: list[tuple[str, Any]], segments: list[int] | None = None) -> bytes:
    """A labels item as the code before format 5 wrote it: a model name and a JSON text per prediction."""
    item = {"format": 4, "kind": "labels", "ids": [i for i, _ in entries], "models": [e[0] for _, e in entries],
            "predictions": [json.dumps(e[1]) for _, e in entries], "times": b"".join(e[2].to_bytes(8, "little", signed=True) for _, e in entries)}  # fmt: skip
    if segments:
        item["segments"] = segments
    return msgpack.packb(item, use_bin_type=True)


def test_segments_of_format_4_restore_and_are_written_again_only_as_they_change():
    monitor, changelog = PartitionMonitor(SPEC, 0), {}
    sealed = _full_segments(monitor, changelog, 2)
    listed = state_labels.decode_labels_item(changelog["labels"])[1]
    old = {k: _format4(list(state_labels.decode_labels_item(v)[0].items()), listed if k == "labels" else None) for k, v in changelog.items() if state_labels.is_labels_key(k)}
    assert {msgpack.unpackb(v)["format"] for v in old.values()} == {4}
    restored = PartitionMonitor.from_state_items(SPEC, 0, {**changelog, **old})
    assert restored.rejected_state_items == 0 and list(restored.pending_labels.items()) == list(monitor.pending_labels.items())
    for m in (monitor, restored):
        assert m.process_labels(_labelled([1, 2, SEGMENT_ENTRIES + 1])).dead_letters == []
    items = {k: v for k, v in restored.state_items().items() if state_labels.is_labels_key(k)}
    assert set(items) == {"labels"} and sealed[0] not in items  # the format 4 segments stay, marked
    assert items == {k: v for k, v in monitor.state_items().items() if state_labels.is_labels_key(k)}


_prediction_values = st.floats() | st.integers(-(2**63), 2**63) | st.booleans() | st.text(max_size=4) | st.dictionaries(st.text(max_size=2), st.floats() | st.none(), max_size=2)


@given(entries=st.lists(st.tuples(st.sampled_from(["a", "b", "ç"]), _prediction_values, st.integers(-(2**62), 2**62)), max_size=20),
       floats=st.booleans())  # fmt: skip
def test_a_labels_item_gives_back_the_models_predictions_and_times_it_was_given(entries, floats):
    if floats:
        entries = [(m, float(i) / 3, t) for i, (m, _, t) in enumerate(entries)]
    pairs = [(f"e{i}", e) for i, e in enumerate(entries)]
    got = list(state_labels.decode_labels_item(encode_labels(pairs))[0].items())
    assert json.dumps(got) == json.dumps(pairs) and [type(e[1]) for _, e in got] == [type(e[1]) for _, e in pairs]
    assert ("floats" in msgpack.unpackb(encode_labels(pairs))) == all(type(e[1]) is float for e in entries)
