"""Judging groups (``models.<m>.judging_groups``, core/groups.py): one model's channels judged by N owners.

The claims: the assignment of features to groups depends on the name alone; N = 1 is the single
judgement unchanged (same rows objects, same wire); with N = 2 or 3 a replay gives, channel by
channel, the alerts of N = 1 — the one documented difference being a prediction-drift page's
``coinciding`` evidence, which names only the drifting features of group 0; a group's state is
its own (keys carry the group) and a changed N never feeds a channel state another group wrote.
"""

from __future__ import annotations

import itertools
import re
import zlib
from typing import Any

import orjson
import pytest
import structlog
from pydantic import ValidationError

from stream_monitor.core import exchange, split
from stream_monitor.core.events import SourcePosition, decode_inference
from stream_monitor.core.groups import group_of, judge_name, layout_of, model_of
from stream_monitor.core.intake import InputRecord, read_inference
from stream_monitor.core.monitor import PartitionMonitor
from stream_monitor.core.spec import ModelSpec, MonitorSpec
from stream_monitor.replay.engine import ReplayEngine
from stream_monitor.replay.sources import SourceRecord
from stream_monitor.synthetic import demo_streams, generate_events

FRAUD, CHURN = "fraud-v3", "churn-v1"
N_EVENTS = 12_000


def _spec(groups: int) -> MonitorSpec:
    return MonitorSpec(instance="t", models={FRAUD: ModelSpec(judging_groups=groups), CHURN: ModelSpec(judging_groups=groups)})


def _events() -> list[dict[str, Any]]:
    fraud, churn = demo_streams(N_EVENTS, 42, labels=True)
    both = list(generate_events(fraud)) + list(generate_events(churn))
    return sorted(both, key=lambda e: (e["ts"], e["event_id"]))


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return _events()


def _replay(spec: MonitorSpec, events: list[dict[str, Any]], batch_size: int = 997) -> tuple[list[dict[str, Any]], ReplayEngine]:
    engine = ReplayEngine(spec, batch_size=batch_size)
    engine.feed(SourceRecord("in", i % 3, i // 3, None, None, orjson.dumps(e)) for i, e in enumerate(events))
    engine.finish()
    return [orjson.loads(p) for p in engine.alert_payloads()], engine


def _without_cross_group_evidence(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert minus what names other channels drifting at the same time (a prediction-drift page's)."""
    a = dict(alert)
    if a["kind"] == "prediction_drift":
        a["evidence"] = {k: v for k, v in (a["evidence"] or {}).items() if k != "coinciding"}
        a["annotations"] = {**a["annotations"], "description": re.sub(r"\nCoincides with drift in: [^\n]*", "", a["annotations"]["description"])}
    return a


def _by_channel(alerts: list[dict[str, Any]]) -> dict[tuple[str, str], list[bytes]]:
    out: dict[tuple[str, str], list[bytes]] = {}
    for a in alerts:
        out.setdefault((a["model"], a["feature"]), []).append(orjson.dumps(_without_cross_group_evidence(a), option=orjson.OPT_SORT_KEYS))
    return {k: sorted(v) for k, v in out.items()}


# ----------------------------------------------------------------- assignment
def test_the_assignment_depends_on_the_feature_name_alone() -> None:
    names = [f"x{i}" for i in range(20)] + [f"c{i}" for i in range(5)] + ["__odd", "ünï"]
    for n in (1, 2, 3, 5):
        first = {f: group_of(f, n) for f in names}
        again = {f: group_of(f, n) for f in reversed(names)}
        assert first == again
        assert all(g == (0 if n == 1 or f.startswith("__") else zlib.crc32(f.encode()) % n) for f, g in first.items())
    assert layout_of(judge_name("a\x1eb", 3, 4)) == ("a\x1eb", 3, 4)


def test_the_assignment_spreads_the_benchmark_features_over_every_group() -> None:
    """20 numeric + 5 categorical (bench.run) and the demo's 8 + 3: every group gets a share (crc32 is not perfect)."""
    for names in ([f"x{i}" for i in range(20)] + [f"c{i}" for i in range(5)], [f"x{i}" for i in range(8)] + [f"c{i}" for i in range(3)]):
        for n in (2, 3):
            counts = [sum(group_of(f, n) == g for f in names) for g in range(n)]
            assert min(counts) >= len(names) // (2 * n), counts


def test_split_rows_is_the_identity_for_one_group_and_disjoint_for_more() -> None:
    recs = [InputRecord(orjson.dumps(e), SourcePosition("in", 0, i, None)) for i, e in enumerate(_events()[:200])]
    rows = read_inference(MonitorSpec(), recs).rows[FRAUD]
    ((name, same),) = split.split_rows(_spec(1), FRAUD, rows)
    assert name == FRAUD and same is rows  # N = 1: today's rows, today's wire
    parts = split.split_rows(_spec(3), FRAUD, rows)
    assert [n for n, _ in parts] == [FRAUD, judge_name(FRAUD, 1, 3), judge_name(FRAUD, 2, 3)]
    for i, r in enumerate(rows):
        pieces = [p[i].event for _, p in parts]
        merged: dict[str, Any] = {}
        for g, e in enumerate(pieces):
            assert all(group_of(f, 3) == g for f in e.features)
            assert not merged.keys() & e.features.keys()
            merged.update(e.features)
            assert (e.prediction, e.latency_ms) == ((r.event.prediction, r.event.latency_ms) if g == 0 else (None, None))
            assert p_key(parts, g, i) == r.key
        assert merged == r.event.features


def test_what_reading_sends_is_what_replay_judges() -> None:
    """The reader's wire form of each group (split_row_lists) encodes exactly the rows replay judges (split_rows)."""
    raws = [orjson.dumps(e) for e in _events()[:300]]
    raws[::7] = [r.replace(b'"x0":', b'"x0":NaN,"was":') for r in raws[::7]]  # value-level problems (dead-lettered by group 0)
    recs = [InputRecord(r, SourcePosition("in", 0, i, None)) for i, r in enumerate(raws)]
    spec = _spec(3)
    for model, rows in read_inference(spec, recs).rows.items():
        wire = split.split_row_lists(spec, model, [exchange.row_list(r) for r in rows])
        objects = split.split_rows(spec, model, rows)
        assert len(wire) == len(objects) == 3
        assert any(r.problems for r in objects[0][1]) and not any(r.problems for _, part in objects[1:] for r in part)
        for g, (lists, (name, part)) in enumerate(zip(wire, objects, strict=True)):
            blob = exchange.encode_row_lists(model, lists, g, 3)
            assert blob == exchange.encode_rows(model, part, g, 3)
            back_name, back = exchange.decode_rows(blob)
            assert back_name == name and [r.key for r in back] == [r.key for r in part]


def p_key(parts: list[tuple[str, list[exchange.Row]]], g: int, i: int) -> tuple[int, int, int]:
    return parts[g][1][i].key


def test_a_groups_rows_record_says_its_group_and_reads_back_under_its_judge_name() -> None:
    d = decode_inference(b'{"model": "m", "ts": 5, "features": {"x0": 1.5}}', None)
    row = exchange.inference_row(d, SourcePosition("in", 0, 7, None), 3, 0)
    blob = exchange.encode_rows("m", [row], group=2, groups=3)
    assert exchange.encode_rows("m", [row]) != blob
    model, back = exchange.decode_rows(blob)
    assert model == judge_name("m", 2, 3) and back[0].event.model == judge_name("m", 2, 3)
    assert orjson.loads(back[0].raw())["model"] == "m"  # a dead letter names the real model
    import msgpack

    body = msgpack.unpackb(blob)
    for g, n in ((0, 3), (3, 3), ("1", 3)):
        body[3:] = [g, n]
        with pytest.raises(exchange.RowsFormatError):
            exchange.decode_rows(msgpack.packb(body))


def test_judging_groups_is_validated() -> None:
    with pytest.raises(ValidationError, match="judging_groups"):
        ModelSpec(judging_groups=0)
    with pytest.raises(ValidationError, match="judging_groups"):
        ModelSpec(judging_groups="many")


# ------------------------------------------------------------------- replay
def test_grouped_replay_gives_the_single_judgements_alerts_channel_by_channel(events: list[dict[str, Any]]) -> None:
    one, _ = _replay(_spec(1), events)
    assert {(a["model"], a["feature"]) for a in one if a["status"] == "firing"} >= {(FRAUD, "x0"), (FRAUD, "c0"), (FRAUD, "x3")}
    assert any(a["kind"] == "prediction_drift" for a in one)
    reference = _by_channel(one)
    for n in (2, 3):
        grouped, engine = _replay(_spec(n), events)
        assert _by_channel(grouped) == reference, n
        monitors = engine.monitor.models
        assert {model_of(k)[1] for k in monitors if model_of(k)[0] == FRAUD} == set(range(n))
        for name, m in monitors.items():  # each group judges its own features; the model-level channels stay in group 0
            g = model_of(name)[1]
            assert all(group_of(c, n) == g for c in m.channels), (name, list(m.channels))


def test_a_prediction_drift_page_names_only_the_coinciding_drifts_of_group_0(events: list[dict[str, Any]]) -> None:
    """The documented difference: x0 (group 1 of 2) drives the prediction drift; its group-0 page cannot name it."""
    assert group_of("x0", 2) == 1

    def named(alerts: list[dict[str, Any]]) -> set[str]:
        return {c["channel"] for a in alerts if a["kind"] == "prediction_drift" and a["status"] == "firing" for c in a["evidence"].get("coinciding", [])}

    one, two = _replay(_spec(1), events)[0], _replay(_spec(2), events)[0]
    assert "x0" in named(one)
    assert "x0" not in named(two) and all(group_of(c, 2) == 0 for c in named(two))


def test_grouped_replay_does_not_depend_on_batch_boundaries(events: list[dict[str, Any]]) -> None:
    a = _replay(_spec(2), events, batch_size=997)[0]
    b = _replay(_spec(2), events, batch_size=4_096)[0]
    assert a == b


# -------------------------------------------------------------------- state
def _judge(monitor: PartitionMonitor, spec: MonitorSpec, events: list[dict[str, Any]], first: int = 0) -> list[dict[str, Any]]:
    recs = [InputRecord(orjson.dumps(e), SourcePosition("in", 0, first + i, None)) for i, e in enumerate(events)]
    rows = split.split_for_judging(spec, read_inference(spec, recs).ordered)
    return [orjson.loads(a.payload) for a in monitor.judge(rows).alerts]


def test_a_groups_state_items_carry_its_group_and_restore_as_if_uninterrupted(events: list[dict[str, Any]]) -> None:
    spec = _spec(2)
    whole = PartitionMonitor(spec, 0)
    straight = _judge(whole, spec, events)
    first = PartitionMonitor(spec, 0)
    half = len(events) // 2
    before = _judge(first, spec, events[:half])
    items = first.state_items(only_dirty=False)
    assert f"m\x1f{judge_name(FRAUD, 1, 2)}" in items and f"m\x1f{FRAUD}" in items
    assert any(k.startswith(f"c\x1f{judge_name(FRAUD, 1, 2)}\x1fx0") for k in items)
    assert not any(k.startswith(f"c\x1f{FRAUD}\x1fx0") for k in items)
    restored = PartitionMonitor.from_state_items(spec, 0, items)
    assert restored.rejected_state_items == 0
    after = _judge(restored, spec, events[half:], half)
    assert before + after == straight


@pytest.mark.parametrize(("was", "now"), [(2, 1), (2, 3), (1, 2), (3, 2)])
def test_changing_judging_groups_never_feeds_another_groups_channel_state(events: list[dict[str, Any]], was: int, now: int) -> None:
    old = PartitionMonitor(_spec(was), 0)
    half = len(events) // 2
    _judge(old, _spec(was), events[:half])
    items = old.state_items(only_dirty=False)
    with structlog.testing.capture_logs() as logs:
        restored = PartitionMonitor.from_state_items(_spec(now), 0, items)
    assert restored.rejected_state_items == 0
    for name, m in restored.models.items():
        _, g, written_under = layout_of(name)
        assert g < now and written_under in (0, now), name  # a group's items of another N are not restored
        assert all(group_of(f, now) == g for f in m.known_features), (name, m.known_features)
        assert all(group_of(c, now) == g for c in m.channels), (name, list(m.channels))
    moved = [f for f in itertools.chain.from_iterable(m.channels for m in old.models.values()) if not f.startswith("__")]
    if any(group_of(f, was) != group_of(f, now) for f in moved):
        assert any(e["event"] == "state_group_changed" for e in logs)
    _judge(restored, _spec(now), events[half:], half)  # and it judges on
    for name, m in restored.models.items():
        assert all(group_of(c, now) == model_of(name)[1] for c in m.channels)


def test_value_level_dead_letters_of_reading_go_out_once_and_wrong_types_per_group() -> None:
    """NaN (found by reading) is dead-lettered by group 0 alone; a wrong-typed value by the group judging its channel."""
    assert (group_of("x0", 2), group_of("x4", 2)) == (1, 0)
    base = [orjson.dumps({"model": FRAUD, "ts": 1_000 + i, "features": {"x0": 1.0 + i % 3, "x4": 2.0 + i % 5}}) for i in range(50)]
    nan = b'{"model": "fraud-v3", "ts": 2000, "features": {"x0": 1.0, "x4": NaN}}'
    both = b'{"model": "fraud-v3", "ts": 2001, "features": {"x0": "high", "x4": NaN}}'

    def letters(n: int) -> list[dict[str, Any]]:
        engine = ReplayEngine(_spec(n))
        engine.feed(SourceRecord("in", 0, i, None, None, v) for i, v in enumerate([*base, nan, both]))
        engine.finish()
        return [orjson.loads(d) for d in engine.dead_letter_payloads()]

    one, two = letters(1), letters(2)
    assert [(d["source"]["offset"], d["reason"]) for d in one] == [(50, "non_finite_value"), (51, "non_finite_value")]
    assert "+1 more" in one[1]["detail"]
    assert sorted((d["source"]["offset"], d["reason"]) for d in two) == [(50, "non_finite_value"), (51, "non_finite_value"), (51, "wrong_type")]


def test_label_events_join_in_group_0_and_judge_as_in_one_judgement(events: list[dict[str, Any]]) -> None:
    """Label events (a label file) go to group 0 only, where the predictions are remembered."""
    fraud = [e for e in events if e["model"] == FRAUD][:6_000]
    labels = [{"event_id": e["event_id"], "model": FRAUD, "label": int(e["prediction"] > 0.5) if i < 3_000 else int(e["prediction"] <= 0.5)}
              for i, e in enumerate(fraud)]  # fmt: skip

    def replay(n: int) -> list[dict[str, Any]]:
        engine = ReplayEngine(_spec(n))
        engine.feed(SourceRecord("in", 0, i, None, None, orjson.dumps(e)) for i, e in enumerate(fraud))
        engine.feed((SourceRecord("labels", 0, i, e["ts"] + 1_000, None, orjson.dumps(lab)) for i, (e, lab) in enumerate(zip(fraud, labels))), labels=True)
        engine.finish()
        assert engine.outcome.invalid_by_reason.get("label_unmatched", 0) == 0
        return [orjson.loads(p) for p in engine.alert_payloads()]

    one = replay(1)
    assert any(a["kind"] == "performance" for a in one)
    assert _by_channel(replay(2)) == _by_channel(one)


def test_judging_groups_without_the_by_model_topic_fail_at_start_up_naming_the_field() -> None:
    from stream_monitor.config import ConfigError, load_config

    base = {"kafka.group_id": "g", "state.hmac_secret": "a" * 64, f"models.{FRAUD}.judging_groups": 2}
    assert load_config(None, env={}, overrides=base).models[FRAUD].judging_groups == 2
    with pytest.raises(ConfigError, match=f"models.{FRAUD}.judging_groups: 2 needs kafka.state_partitioning: model"):
        load_config(None, env={}, overrides={**base, "kafka.state_partitioning": "input"})
    with pytest.raises(ConfigError, match=f"models.{FRAUD}.judging_groups"):
        load_config(None, env={}, overrides={**base, f"models.{FRAUD}.judging_groups": 0})


def test_retraining_asks_per_group_alike_in_one_monitor_and_on_separate_partitions(events: list[dict[str, Any]]) -> None:
    """Replay judges every group in one monitor; run judges each group on its own partition. A
    group's drift asks for retraining from its group's trigger in both, so both emit the same events."""
    from stream_monitor.core.spec import RetrainingSpec

    spec = MonitorSpec(instance="t", retraining=RetrainingSpec(enabled=True, drift_persists_seconds=5),
                       models={FRAUD: ModelSpec(judging_groups=2), CHURN: ModelSpec(judging_groups=2)})  # fmt: skip
    recs = [InputRecord(orjson.dumps(e), SourcePosition("in", 0, i, None)) for i, e in enumerate(events)]
    rows = split.split_for_judging(spec, read_inference(spec, recs).ordered)
    together: list[bytes] = []
    one = PartitionMonitor(spec, 0)
    apart: list[bytes] = []
    monitors = {g: PartitionMonitor(spec, g) for g in range(2)}
    for start in range(0, len(rows), 1_000):
        chunk = rows[start : start + 1_000]
        together += [r.payload for r in one.judge(chunk).retraining]
        for g, m in monitors.items():
            apart += [r.payload for r in m.judge([r for r in chunk if model_of(r.event.model)[1] == g]).retraining]
    signals = lambda payloads: sorted((orjson.loads(p)["model"], tuple(s["feature"] for s in orjson.loads(p)["signals"])) for p in payloads)  # noqa: E731
    assert signals(together) == signals(apart)
    assert (FRAUD, ("x0",)) in signals(together) and (FRAUD, ("__prediction__",)) in signals(together)  # x0 is group 1's
    assert sorted(together) == sorted(apart)
