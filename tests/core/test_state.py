"""State items are data: a round trip continues byte-identically, and a bad item resets only what it held."""

from __future__ import annotations

import pickle
from typing import Any

import msgpack
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from stream_monitor.core import state
from stream_monitor.core.events import SourcePosition
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec

T0 = 1_767_225_600_000
SMALL = {"reference": {"size": 100}, "window": {"size": 100, "step": 25}}
SPEC1 = MonitorSpec.model_validate({"defaults": SMALL})
# x loses its change-point detectors: their firing episodes become orphans that resolve later
SPEC2 = MonitorSpec.model_validate({"defaults": SMALL, "models": {"m": {"channels": {"x": {"type": "numeric", "detectors": ["psi", "ks", "missing_rate"]}}}}})


def event(i: int) -> dict[str, Any]:
    rng = np.random.default_rng(i)
    shift = 3.0 if 600 <= i < 1400 else 0.0
    feats: dict[str, Any] = {"x": float(rng.normal(shift, 1.0)), "c": "abcd"[int(rng.integers(0, 4 if i < 900 else 2))]}
    if i >= 1150:
        feats["late"] = float(rng.normal())  # discovered shortly before the split: still warming up there
    return {"event_id": f"e{i}", "model": "m", "ts": T0 + 1000 * i, "features": feats, "prediction": {"p": float(rng.random()), "y": int(i % 3)}}


def records(start: int, stop: int) -> list[InputRecord]:
    return [InputRecord(orjson.dumps(event(i)), SourcePosition("t", 0, i, T0 + 1000 * i)) for i in range(start, stop)]


def labels(ids: range, offset: int) -> list[InputRecord]:
    return [
        InputRecord(orjson.dumps({"event_id": f"e{i}", "model": "m", "label": i % 2}), SourcePosition("l", 0, offset + k, None))
        for k, i in enumerate(ids)
    ]


def feed(monitor: PartitionMonitor, start: int, stop: int) -> list[bytes]:
    out: list[bytes] = []
    for i in range(start, stop, 50):
        out += [a.payload for a in monitor.process(records(i, min(stop, i + 50))).alerts]
        out += [a.payload for a in monitor.process_labels(labels(range(i - 40, min(stop, i + 50) - 40, 3), 10 * i)).alerts]
    return out


def build_mid_stream() -> PartitionMonitor:
    """A monitor at record 1200: orphaned episodes, firing alerts, a channel in warm-up, pending labels."""
    first = PartitionMonitor(SPEC1, partition=0)
    feed(first, 0, 1100)
    monitor = PartitionMonitor.from_state_items(SPEC2, 0, first.state_items(only_dirty=False))
    feed(monitor, 1100, 1200)
    return monitor


@pytest.fixture(scope="module")
def mid_stream() -> PartitionMonitor:
    """The mid-stream monitor, shared: tests only read it (they continue restored copies)."""
    return build_mid_stream()


def test_the_mid_stream_monitor_has_every_kind_of_state(mid_stream):
    channels = mid_stream.models["m"].channels
    x = channels["x"]
    assert [name for name, life in x._orphans.items() if life.firing], "no orphaned episode"
    assert any(life.firing for life in x.lifecycles.values()), "no firing window-detector episode"
    assert x.series.firing and [e.fingerprint for e in x.open_episodes()] == [x.series_fingerprint], "x's page is not open"
    assert channels["late"].reference is None and channels["late"].observations > 0, "no channel in warm-up"
    assert channels["__prediction__.p"].point_detectors, "no River detector state"
    assert mid_stream.pending_labels


def test_round_trip_continues_byte_identically(mid_stream):
    items = mid_stream.state_items(only_dirty=False)
    restored = PartitionMonitor.from_state_items(SPEC2, 0, items)
    assert restored.rejected_state_items == 0
    # the restored monitor writes the same items
    assert restored.state_items(only_dirty=False) == items
    uninterrupted = feed(build_mid_stream(), 1200, 2000)
    assert feed(restored, 1200, 2000) == uninterrupted
    statuses = {(a["feature"], a["status"]) for a in map(orjson.loads, uninterrupted)}
    assert ("x", "resolved") in statuses, "the orphaned episode (and so x's page) should resolve after the split"


def test_no_pickle_is_ever_loaded(mid_stream):
    class Exploit:
        def __reduce__(self):
            return (_record_call, ("state item ran code",))

    items = mid_stream.state_items(only_dirty=False)
    items["c\x1fm\x1fx"] = pickle.dumps(Exploit())
    items["labels"] = pickle.dumps(Exploit())
    _CALLS.clear()
    restored = PartitionMonitor.from_state_items(SPEC2, 0, items)
    assert _CALLS == []
    assert restored.rejected_state_items == 2 and "x" not in restored.models["m"].channels


_CALLS: list[str] = []


def _record_call(text: str) -> None:
    _CALLS.append(text)


def _mutate(blob: bytes, how: str) -> bytes:
    obj = msgpack.unpackb(blob, raw=False)
    if how == "truncated":
        return blob[: len(blob) // 2]
    if how == "garbage":
        return b"\x00\xffnot state" + blob[:10]
    if how == "wrong-version":
        obj["format"] = 1
    elif how == "wrong-type":
        obj["observations"] = "many"
    elif how == "wrong-window":  # a window chunk
        obj["values"] = obj["values"][:-8]
    elif how == "bad-code":
        obj["values"] = np.full(len(obj["values"]) // 4, 10**6, dtype="<i4").tobytes()
    elif how == "stale":
        obj["stamp"] -= 1
    elif how == "forged-river":
        obj["detectors"] = {"adwin": {"drift": False, "window": {"buckets": []}}}
    elif how == "other-channel":
        obj["name"] = "x"
    return msgpack.packb(obj, use_bin_type=True)


BAD_CHANNEL = ["truncated", "garbage", "wrong-version", "wrong-type", "wrong-window", "bad-code", "forged-river", "other-channel"]
# the channel's reference and window chunks are items of their own (core/state_window.py)
BAD_PARTS = ["stale-chunk", "missing-chunk", "missing-reference", "another-reference", "truncated-chunk", "old-format-chunk"]


@pytest.mark.parametrize("how", BAD_CHANNEL + BAD_PARTS)
def test_a_bad_channel_item_resets_only_that_channel(mid_stream, how):
    items = mid_stream.state_items(only_dirty=False)
    key = "c\x1fm\x1fc"
    if how == "forged-river":
        key = "c\x1fm\x1f__prediction__.p"
    elif how in ("wrong-window", "bad-code", "stale-chunk", "missing-chunk", "truncated-chunk", "old-format-chunk"):
        key = "w\x1fm\x1fc\x1f0"
    elif how in ("missing-reference", "another-reference"):
        key = "r\x1fm\x1fc"
    if how.startswith("missing"):
        del items[key]
    elif how == "another-reference":  # x's reference under c's key: not the one c's item names
        items[key] = items["r\x1fm\x1fx"]
    else:
        items[key] = _mutate(items[key], how.replace("-chunk", "").replace("old-format", "wrong-version"))
    with capture_logs() as logs:
        restored = PartitionMonitor.from_state_items(SPEC2, 0, items)
    channel = key.split("\x1f")[2]
    rejected = [e for e in logs if e["event"] == "state_item_rejected"]
    assert [(e["model"], e["channel"]) for e in rejected] == [("m", channel)] and rejected[0]["reason"]
    assert restored.rejected_state_items == 1
    assert channel not in restored.models["m"].channels
    others = {k: v for k, v in mid_stream.state_items(only_dirty=False).items() if not k.endswith(f"\x1f{channel}") and k.startswith("c")}
    assert {k: v for k, v in restored.state_items(only_dirty=False).items() if k.startswith("c")} == others
    restored.process(records(1200, 1300))  # and it goes on, rediscovering the channel
    assert restored.models["m"].channels[channel].observations == 100


@pytest.mark.parametrize("key", ["m\x1fm", "labels"])
def test_a_bad_model_or_labels_item_resets_what_it_held(mid_stream, key):
    items = mid_stream.state_items(only_dirty=False)
    items[key] = _mutate(items[key], "wrong-version")
    restored = PartitionMonitor.from_state_items(SPEC2, 0, items)
    assert restored.rejected_state_items == 1
    if key == "labels":
        assert not restored.pending_labels and restored.models["m"].channels
    else:
        assert "m" not in restored.models and restored.pending_labels


_msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=8) | st.binary(max_size=16),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def _slots(obj: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) in a decoded item, depth first."""
    out: list[tuple[Any, Any]] = []
    keys = list(obj) if isinstance(obj, dict) else range(len(obj)) if isinstance(obj, list) else []
    for k in keys:
        out.append((obj, k))
        if isinstance(obj[k], dict | list):
            out += _slots(obj[k])[:200]
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_decoding_arbitrary_or_mutated_items_raises_only_state_format_error(mid_stream, data):
    items = mid_stream.state_items(only_dirty=False)
    key = data.draw(st.sampled_from(sorted(items)))
    choice = data.draw(st.integers(0, 2))
    if choice == 0:
        blob = data.draw(st.binary(max_size=200))
    elif choice == 1:  # a valid item with bytes flipped, cut or inserted
        blob = bytearray(items[key])
        for _ in range(data.draw(st.integers(1, 4))):
            pos = data.draw(st.integers(0, len(blob) - 1))
            blob[pos] = data.draw(st.integers(0, 255))
        blob = bytes(blob[: data.draw(st.integers(0, len(blob)))])
    else:  # a valid item with one field, at any depth, replaced by any MessagePack value
        obj = msgpack.unpackb(items[key], raw=False)
        container, slot = data.draw(st.sampled_from(_slots(obj)))
        container[slot] = data.draw(_msgpack_values)
        blob = msgpack.packb(obj, use_bin_type=True)
    for decode in (lambda b: state.decode_model(b, "m"), state.decode_labels, lambda b: state.decode_channel(b, "m", "c", 0)):
        try:
            decode(blob)
        except state.StateFormatError:
            pass
    restored = PartitionMonitor.from_state_items(SPEC2, 0, {**items, key: blob})  # never raises
    restored.process(records(1200, 1210))


def test_a_model_item_keeps_the_versions_seen_and_items_without_them_still_decode() -> None:
    blob = state.encode_model(["x"], ["x"], ["v1", "v2"])
    assert state.decode_model(blob, "m") == state.ModelRecord(["x"], ["x"], ["v1", "v2"])
    plain = state.encode_model(["x"], ["x"])  # a model that never showed a version: no field at all
    assert "versions" not in msgpack.unpackb(plain, raw=False) and state.decode_model(plain, "m").versions == []
    obj = msgpack.unpackb(blob, raw=False)
    obj["versions"] = ["v1", 2]
    with pytest.raises(state.StateFormatError, match="versions"):
        state.decode_model(msgpack.packb(obj, use_bin_type=True), "m")


# ------------------------------------------------------------------ bounded state
ONE_MIB = 1 << 20


def categorical_records(values: list[str], start: int = 0) -> list[InputRecord]:
    return [
        InputRecord(orjson.dumps({"model": "m", "ts": T0 + i, "features": {"c": v}}), SourcePosition("t", 0, start + i, T0 + i))
        for i, v in enumerate(values)
    ]


def test_a_channel_state_item_stays_below_one_mib_whatever_the_categories():
    """1 MB category strings and a million distinct categories (with the largest warm-up reference)."""
    spec = MonitorSpec.model_validate({"defaults": {"reference": {"size": 100_000}}})
    monitor = PartitionMonitor(spec, partition=0)
    huge = ["€" * 330_000 + str(i) for i in range(8)]  # 1 MB of UTF-8 each (within the record limit), distinct only in their tails
    result = monitor.process(categorical_records(huge * 4))
    assert not result.dead_letters
    largest = _largest_item_of_c(monitor)
    assert largest < 64 * 1024, largest
    channel = monitor.models["m"].channels["c"]
    distinct = [f"{'é' * 96}{i:07d}" for i in range(1_000_000)]  # near the length bound, 2-byte characters
    for i in range(0, len(distinct), 100_000):  # straight into the channel: the record path is tested above
        rows = list(range(100_000))
        channel.ingest(distinct[i : i + 100_000], rows, [T0 + i + r for r in rows], rows)
    assert channel.reference is not None and channel.high_cardinality
    assert len(channel.reference.categories) == spec.defaults.categories.max_distinct + 1  # the overflow bucket
    assert len({c for c in channel.reference.categories if c.startswith("€")}) == 8, "long values stay distinct"
    assert _largest_item_of_c(monitor) < ONE_MIB


def _largest_item_of_c(monitor: PartitionMonitor) -> int:
    """The size of channel c's largest state item: its channel item, its reference's, its window chunks'."""
    items = monitor.state_items(only_dirty=False)
    return max(len(v) for k, v in items.items() if k.split("\x1f")[1:3] == ["m", "c"] and v is not None)


def test_category_bounds_apply_at_classification_and_are_configurable():
    spec = MonitorSpec.model_validate({"defaults": {"reference": {"size": 50, "max_categories": 5}, "categories": {"max_length": 20, "max_distinct": 10}}})
    monitor = PartitionMonitor(spec, partition=0)
    monitor.process(categorical_records([f"{'a' * 30}{i}" for i in range(50)]))
    ref = monitor.models["m"].channels["c"].reference
    assert ref is not None and len(ref.categories) == 11 and ref.counts.sum() == 50
    assert all(len(c) <= 20 + 10 for c in ref.categories)


def test_category_bound_must_exceed_the_high_cardinality_limit():
    with pytest.raises(ValueError, match="categories.max_distinct"):
        MonitorSpec.model_validate({"defaults": {"reference": {"max_categories": 500}, "categories": {"max_distinct": 400}}})


def test_lone_surrogates_in_categories_survive_a_round_trip():
    raw = b'{"model": "m", "ts": 1, "features": {"c": "a\\ud800b"}}'
    monitor = PartitionMonitor(SPEC1, partition=0)
    monitor.process([InputRecord(raw, SourcePosition("t", 0, i, 1)) for i in range(10)])
    items = monitor.state_items(only_dirty=False)
    restored = PartitionMonitor.from_state_items(SPEC1, 0, items)
    assert restored.rejected_state_items == 0 and restored.state_items(only_dirty=False) == items


def test_reaching_a_category_bound_is_logged_and_counted():
    spec = MonitorSpec.model_validate({"defaults": {"reference": {"size": 50, "max_categories": 5}, "categories": {"max_length": 20, "max_distinct": 10}}})
    monitor = PartitionMonitor(spec, partition=0)
    with capture_logs() as logs:
        monitor.process(categorical_records([f"{'a' * 30}{i}" for i in range(50)]))
    channel = monitor.models["m"].channels["c"]
    assert (channel.truncated_categories, channel.folded_categories) == (50, 40)
    bounds = [(e["channel"], e["bound"]) for e in logs if e["event"] == "category_bound_reached"]
    assert bounds == [("c", "max_length"), ("c", "max_distinct")]


def test_an_orphaned_episode_survives_a_second_config_change(mid_stream):
    """x's orphaned adwin episode still resolves when x's settings change again before it does."""
    spec3 = MonitorSpec.model_validate(
        {"defaults": SMALL, "models": {"m": {"channels": {"x": {"type": "numeric", "detectors": ["psi", "ks"]}}}}}
    )
    items = mid_stream.state_items(only_dirty=False)
    restored = PartitionMonitor.from_state_items(spec3, 0, items)
    x = restored.models["m"].channels["x"]
    assert x._orphans["adwin"].firing and x.series.firing
    statuses = {(a["feature"], a["status"]) for a in map(orjson.loads, feed(restored, 1200, 2000))}
    assert ("x", "resolved") in statuses
    assert not x._orphans
