"""Retraining triggers: which alerts ask for retraining, when, how often, and their state item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream_monitor.core import state
from stream_monitor.core.alert import AlertEvent
from stream_monitor.core.events import SourcePosition, format_event_time
from stream_monitor.core.lifecycle import alert_id
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.retraining import RetrainingTrigger, decode_trigger, encode_trigger
from stream_monitor.core.spec import MonitorSpec

T0 = 1_767_225_600_000
HOUR = 3_600_000


@dataclass
class FakeAlert:
    """What the trigger reads of an alert: the event and its event time."""

    event: AlertEvent
    event_time_ms: int


def alert(kind: str, feature: str, at: int, since: int | None = None, status: str = "firing", model: str = "m") -> FakeAlert:
    """An alert of ``kind`` on ``feature`` at event time ``at`` (its episode started at ``since``)."""
    start = at if since is None else since
    fp = f"{model}/{feature}"
    event = AlertEvent.model_validate(
        {
            "alert_id": alert_id(fp, start, 0), "fingerprint": fp, "status": status, "severity": "warning", "kind": kind,
            "model": model, "model_version": "v1", "feature": feature, "detector": "slo", "statistic": 0.3, "threshold": 0.2,
            "event_time": format_event_time(at), "starts_at": format_event_time(start),
            "window": {"start": None, "end": None, "count": 10}, "reference": {"kind": "warmup", "count": 10},
            "source": {"topic": "t", "partition": 0, "offset": 0}, "annotations": {"summary": f"{feature} moved"},
            "monitor": {"instance": "i", "version": "0"},
        }
    )  # fmt: skip
    return FakeAlert(event, at)


def spec(**retraining: Any) -> MonitorSpec:
    """A spec with retraining enabled and the given settings, the model owned by a team."""
    return MonitorSpec.model_validate(
        {"retraining": {"enabled": True, **retraining}, "labels": {"env": "prod"}, "models": {"m": {"labels": {"team": "risk"}}}}
    )


def test_slo_breach_gives_one_event_with_signals_window_and_labels() -> None:
    trig = RetrainingTrigger(spec(window_seconds=86_400))
    out = trig.feed([alert("performance", "__error_rate__", T0 + HOUR, since=T0)], {"m": T0 + HOUR})
    assert len(out) == 1
    e = out[0].event
    assert (e.model, e.model_version, e.reason) == ("m", "v1", "slo_breach")
    assert [s.feature for s in e.signals] == ["__error_rate__"] and e.signals[0].summary == "__error_rate__ moved"
    assert e.since == format_event_time(T0) and e.event_time == format_event_time(T0 + HOUR)
    assert e.suggested_window.end == e.event_time and e.suggested_window.start == format_event_time(T0 + HOUR - 86_400_000)
    assert e.labels == {"env": "prod", "team": "risk"}
    assert orjson.loads(out[0].payload)["retraining_id"] == e.retraining_id
    # the same episode escalating, or time passing, asks nothing more
    assert trig.feed([alert("performance", "__error_rate__", T0 + 2 * HOUR, since=T0)], {"m": T0 + 5 * HOUR}) == []


def test_kinds_not_watched_and_channels_named() -> None:
    quiet = RetrainingTrigger(spec(drift_persists_seconds=None))
    assert quiet.feed([alert("data_quality", "x", T0), alert("data_drift", "y", T0)], {"m": T0 + 100 * HOUR}) == []
    named = RetrainingTrigger(spec(on_kinds=[], on_channels=["__cost__"]))
    assert named.feed([alert("performance", "__error_rate__", T0)], {}) == []
    assert [e.event.signals[0].feature for e in named.feed([alert("performance", "__cost__", T0)], {})] == ["__cost__"]


def test_drift_persisted_exactly_at_the_configured_event_time() -> None:
    trig = RetrainingTrigger(spec(drift_persists_seconds=3600))
    assert trig.feed([alert("data_drift", "x", T0 + 60_000, since=T0)], {"m": T0 + 60_000}) == []
    assert trig.feed([], {"m": T0 + HOUR - 1}) == []
    assert trig.feed([], {"m": T0 + HOUR}) == []  # due now: alerts of this moment may still come and ask with it
    out = trig.feed([], {"m": T0 + HOUR + 5_000})
    assert len(out) == 1
    assert out[0].event.reason == "drift_persisted" and out[0].event.event_time == format_event_time(T0 + HOUR)
    assert trig.feed([], {"m": T0 + 10 * HOUR}) == []


def test_drift_that_resolves_in_time_never_triggers() -> None:
    trig = RetrainingTrigger(spec(drift_persists_seconds=3600))
    out = trig.feed([alert("data_drift", "x", T0), alert("data_drift", "x", T0 + HOUR - 1, since=T0, status="resolved")], {"m": T0 + 3 * HOUR})
    assert out == []


def test_cooldown_holds_a_new_episode_until_it_ends_then_it_triggers_once() -> None:
    trig = RetrainingTrigger(spec(cooldown_seconds=7200, drift_persists_seconds=None))
    first = trig.feed([alert("performance", "__error_rate__", T0)], {"m": T0})
    assert len(first) == 1
    assert trig.feed([alert("performance", "__cost__", T0 + HOUR)], {"m": T0 + 2 * HOUR - 1}) == []
    later = trig.feed([], {"m": T0 + 3 * HOUR})
    assert [e.event.event_time for e in later] == [format_event_time(T0 + 2 * HOUR)]
    assert [s.feature for s in later[0].event.signals] == ["__cost__"]
    assert later[0].event.retraining_id != first[0].event.retraining_id
    # an episode that resolved during the cooldown asks nothing
    trig2 = RetrainingTrigger(spec(cooldown_seconds=7200, drift_persists_seconds=None))
    trig2.feed([alert("performance", "__error_rate__", T0)], {})
    got = trig2.feed([alert("performance", "__cost__", T0 + HOUR), alert("performance", "__cost__", T0 + HOUR + 1, since=T0 + HOUR, status="resolved")], {"m": T0 + 5 * HOUR})
    assert got == []


def test_one_event_names_every_episode_due_together_and_ids_are_deterministic() -> None:
    alerts = [alert("performance", "__error_rate__", T0), alert("performance", "__cost__", T0)]
    a = RetrainingTrigger(spec()).feed(alerts[:1], {})
    assert len(a) == 1
    both = RetrainingTrigger(spec()).feed(alerts, {})
    assert [sorted(s.feature for s in e.event.signals) for e in both] == [["__cost__", "__error_rate__"]]  # one moment, one event
    again = RetrainingTrigger(spec(cooldown_seconds=0)).feed(alerts, {})
    assert [e.payload for e in again] == [e.payload for e in both]


STREAM = [
    alert("data_drift", "x", T0 + 10_000),
    alert("performance", "__error_rate__", T0 + HOUR // 2, since=T0 + 1_000),
    alert("data_drift", "y", T0 + HOUR),
    alert("data_drift", "x", T0 + 2 * HOUR, since=T0 + 10_000, status="resolved"),
    alert("performance", "__cost__", T0 + 3 * HOUR),
    alert("data_drift", "z", T0 + 30 * HOUR),
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=4))
def test_same_alerts_same_events_whatever_the_batching(cuts: list[int]) -> None:
    def run(bounds: list[int]) -> list[bytes]:
        trig = RetrainingTrigger(spec(cooldown_seconds=5400, drift_persists_seconds=1800))
        out: list[bytes] = []
        edges = [0, *sorted(bounds), len(STREAM)]
        for lo, hi in zip(edges, edges[1:]):
            chunk = STREAM[lo:hi]
            if chunk:
                out += [e.payload for e in trig.feed(chunk, {"m": chunk[-1].event_time_ms})]
        out += [e.payload for e in trig.feed([], {"m": T0 + 40 * HOUR})]
        return out

    whole = run([])
    assert len(whole) >= 3
    assert run(cuts) == whole


def test_state_round_trip_continues_identically() -> None:
    a = RetrainingTrigger(spec(cooldown_seconds=5400, drift_persists_seconds=1800))
    first = a.feed(STREAM[:3], {"m": T0 + HOUR})
    b = RetrainingTrigger(spec(cooldown_seconds=5400, drift_persists_seconds=1800))
    b.models = decode_trigger(encode_trigger(a))
    assert encode_trigger(b) == encode_trigger(a)
    rest_a = [e.payload for e in a.feed(STREAM[3:], {"m": T0 + 40 * HOUR})]
    rest_b = [e.payload for e in b.feed(STREAM[3:], {"m": T0 + 40 * HOUR})]
    assert first and rest_a and rest_a == rest_b


@pytest.mark.parametrize(
    "mutate",
    [
        lambda o: o.update(format=2),
        lambda o: o.update(kind="order"),
        lambda o: o.update(models=[]),
        lambda o: o["models"]["m"].update(now="soon"),
        lambda o: o["models"]["m"]["episodes"][0].__setitem__(5, "t"),
        lambda o: o["models"]["m"]["episodes"][0].pop(),
        lambda o: o["models"]["m"]["episodes"].append(list(o["models"]["m"]["episodes"][0])),
    ],
)
def test_a_bad_item_is_refused(mutate: Any) -> None:
    trig = RetrainingTrigger(spec())
    trig.feed([alert("data_drift", "x", T0)], {"m": T0})
    obj = msgpack.unpackb(encode_trigger(trig))
    mutate(obj)
    with pytest.raises(state.StateFormatError):
        decode_trigger(msgpack.packb(obj, use_bin_type=True))
    with pytest.raises(state.StateFormatError):
        decode_trigger(b"\xc1")


def _records(n: int, shift_from: int) -> list[InputRecord]:
    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        x = float(rng.normal(4.0 if i >= shift_from else 0.0, 1.0))
        ev = {"event_id": f"e{i}", "model": "m", "ts": T0 + 1000 * i, "features": {"x": x}}
        out.append(InputRecord(orjson.dumps(ev), SourcePosition("t", 0, i, None)))
    return out


def test_partition_monitor_emits_persisted_drift_and_checkpoints_the_trigger() -> None:
    sp = MonitorSpec.model_validate(
        {"defaults": {"reference": {"size": 100}, "window": {"size": 100, "step": 25}},
         "retraining": {"enabled": True, "drift_persists_seconds": 300}}
    )  # fmt: skip
    recs = _records(1200, 300)
    whole = PartitionMonitor(sp, 0)
    events = [r for i in range(0, 1200, 100) for r in whole.process(recs[i : i + 100]).retraining]
    assert [e.event.reason for e in events] == ["drift_persisted"]
    # restored half-way from its state items, it gives the same event
    first = PartitionMonitor(sp, 0)
    got = [r for i in range(0, 500, 100) for r in first.process(recs[i : i + 100]).retraining]
    assert "retraining" in first.state_items(only_dirty=False)
    again = PartitionMonitor.from_state_items(sp, 0, first.state_items(only_dirty=False))
    got += [r for i in range(500, 1200, 100) for r in again.process(recs[i : i + 100]).retraining]
    assert [e.payload for e in got] == [e.payload for e in events]
    # off by default: no trigger, no state item
    off = PartitionMonitor(MonitorSpec.model_validate({"defaults": {"reference": {"size": 100}, "window": {"size": 100, "step": 25}}}), 0)
    assert [r for i in range(0, 1200, 100) for r in off.process(recs[i : i + 100]).retraining] == []
    assert "retraining" not in off.state_items(only_dirty=False)


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"on_kinds": ["perf"]}, "on_kinds"),
        ({"drift_persists_seconds": 0}, "drift_persists_seconds"),
        ({"cooldown_seconds": -1}, "cooldown_seconds"),
        ({"window_seconds": 0}, "window_seconds"),
        ({"topic": ""}, "topic"),
        ({"on_channels": [""]}, "on_channels"),
        ({"typo": 1}, "typo"),
    ],
)
def test_bad_settings_fail_naming_the_field(section: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        MonitorSpec.model_validate({"retraining": section})
