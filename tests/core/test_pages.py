"""One problem, one page: a channel's detectors share one alert series (or page alone, when asked)."""

from __future__ import annotations

import random
from typing import Any

import msgpack
import orjson
import pytest
from structlog.testing import capture_logs

from stream_monitor.core import state
from stream_monitor.core.alert import AlertEvent
from stream_monitor.core.events import SourcePosition
from stream_monitor.core.lifecycle import fingerprint
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec

T0 = 1_767_225_600_000
SMALL = {"reference": {"size": 500}, "window": {"size": 500, "step": 100}}
# window tests on windows that do not overlap: a shift that starts with a window fills it at once,
# so all three breach at the same evaluations
THREE = ["psi", "ks", "wasserstein"]
TUMBLING = {"reference": {"size": 500}, "window": {"size": 500, "step": 500}}


def spec(group_by: str = "channel", **defaults: Any) -> MonitorSpec:
    return MonitorSpec.model_validate(
        {
            "defaults": {**TUMBLING, "alerting": {"group_by": group_by}, **defaults},
            "models": {"m": {"labels": {"owner": "risk-oncall"}, "channels": {"amount": {"type": "numeric", "detectors": THREE}}}},
        }
    )


def shifted(n: int, start: int, stop: int, amount: float, seed: int = 5) -> list[dict[str, Any]]:
    """Events of model m whose ``amount`` moves by ``amount`` sd between ``start`` and ``stop``."""
    rng = random.Random(seed)
    return [
        {"model": "m", "ts": T0 + 1000 * i, "features": {"amount": rng.gauss(100.0, 10.0) + (10.0 * amount if start <= i < stop else 0.0)}}
        for i in range(n)
    ]


def run(monitor_spec: MonitorSpec, events: list[dict[str, Any]], batch: int = 700) -> list[AlertEvent]:
    monitor = PartitionMonitor(monitor_spec, partition=0)
    recs = [InputRecord(orjson.dumps(e), SourcePosition("t", i % 3, i, e["ts"])) for i, e in enumerate(events)]
    out: list[AlertEvent] = []
    for i in range(0, len(recs), batch):
        out += [a.event for a in monitor.process(recs[i : i + batch]).alerts]
    return out


def test_a_drift_seen_by_three_detectors_is_one_firing_and_one_resolved_event() -> None:
    alerts = run(spec(), shifted(6000, 2000, 4000, 2.0))
    assert [(a.feature, a.status, a.escalated) for a in alerts] == [("amount", "firing", False), ("amount", "resolved", False)]
    firing, resolved = alerts
    assert firing.fingerprint == resolved.fingerprint == fingerprint("m", "amount")
    assert firing.alert_id == resolved.alert_id and firing.starts_at == resolved.starts_at
    detectors = firing.evidence["detectors"]
    assert sorted(d["name"] for d in detectors) == sorted(THREE)
    assert detectors[0]["name"] == firing.detector  # the lead first
    for d in detectors:
        assert d["statistic"] > d["threshold"] and d["since"] == firing.starts_at and d["severity"] in ("warning", "critical")
    assert firing.severity == max((d["severity"] for d in detectors), key=["info", "warning", "critical"].index)
    # the summary: what moved, which way, how far, since when, who owns it, who else agrees
    summary = firing.annotations["summary"]
    others = [d["name"] for d in detectors[1:]]
    assert summary.startswith("m amount: mean rose from ") and f"since {firing.starts_at}" in summary
    assert "owner: risk-oncall" in summary and summary.endswith(f"also: {', '.join(others)} agree")
    description = firing.annotations["description"]
    assert all(f"- {name} " in description for name in THREE)
    # the resolve says which detectors had agreed, and none agrees any more
    assert resolved.evidence["detectors"] == [] and sorted(resolved.evidence["agreed"]) == sorted(THREE)
    assert resolved.detector == firing.detector and resolved.annotations["summary"].startswith("resolved: m amount: mean back to ")


def test_group_by_detector_pages_each_detector_on_its_own() -> None:
    events = shifted(6000, 2000, 4000, 2.0)
    grouped = run(spec(), events)
    alone = run(spec("detector"), events)
    assert {(a.detector, a.status) for a in alone} == {(d, s) for d in THREE for s in ("firing", "resolved")}
    assert len(alone) > len(grouped) == 2
    assert {a.fingerprint for a in alone} == {fingerprint("m", "amount", d) for d in THREE}
    assert all("detectors" not in (a.evidence or {}) for a in alone)
    # the same detection: the page fires with the first detector and resolves with the last
    assert grouped[0].event_time == min(a.event_time for a in alone if a.status == "firing")
    assert grouped[1].event_time == max(a.event_time for a in alone if a.status == "resolved")


def test_a_page_escalates_once_when_a_detector_turns_critical() -> None:
    # a small shift (warning), then a large one (critical) within the same episode
    rng = random.Random(9)
    events = []
    for i in range(7000):
        amount = 0.0 if i < 2000 else 0.45 if i < 4000 else 2.0
        events.append({"model": "m", "ts": T0 + 1000 * i, "features": {"amount": rng.gauss(100.0, 10.0) + 10.0 * amount}})
    alerts = [a for a in run(spec(), events) if a.status == "firing"]
    assert [(a.escalated, a.severity) for a in alerts] == [(False, "warning"), (True, "critical")], [(a.detector, a.severity) for a in alerts]
    first, escalated = alerts
    assert escalated.alert_id == first.alert_id and escalated.fingerprint == first.fingerprint
    assert escalated.evidence["detectors"][0]["severity"] == "critical" and escalated.detector == escalated.evidence["detectors"][0]["name"]


def test_a_prediction_drift_page_names_the_features_drifting_with_it() -> None:
    rng = random.Random(3)
    events = []
    for i in range(6000):
        after = i >= 3000
        amount = rng.gauss(100.0, 10.0) + (25.0 if after else 0.0)
        country = rng.choice(["fr", "de", "it"] if not after else ["fr", "fr", "us"])
        steady = rng.gauss(0.0, 1.0)
        score = 1.0 / (1.0 + 2.718281828 ** (-(amount - 100.0) / 10.0))
        events.append({"model": "m", "ts": T0 + 1000 * i, "features": {"amount": amount, "country": country, "steady": steady}, "prediction": score})
    monitor_spec = MonitorSpec.model_validate({"defaults": SMALL})
    alerts = run(monitor_spec, events)
    prediction = next(a for a in alerts if a.feature == "__prediction__" and a.status == "firing")
    coinciding = {c["channel"]: c for c in prediction.evidence["coinciding"]}
    assert "amount" in coinciding and "steady" not in coinciding
    assert coinciding["amount"]["mean_sd"] > 1.0  # a numeric feature says how far it moved
    firing_features = {a.feature for a in alerts if a.status == "firing" and a.kind == "data_drift" and a.event_time <= prediction.event_time}
    assert set(coinciding) >= firing_features - {"steady"}
    assert "Coincides with drift in: amount (+" in prediction.annotations["description"]
    for c in coinciding.values():
        assert c["detectors"] and (c["mean_sd"] is not None or f"{c['channel']} ({', '.join(c['detectors'])})" in prediction.annotations["description"])
    # a feature's own page names nothing
    assert all("coinciding" not in (a.evidence or {}) for a in alerts if not a.feature.startswith("__prediction__"))


def test_an_open_page_survives_a_state_round_trip() -> None:
    events = shifted(6000, 2000, 4000, 2.0)
    recs = [InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(events)]
    monitor_spec = spec()
    uninterrupted = PartitionMonitor(monitor_spec, 0)
    expected = [a.payload for a in uninterrupted.process(recs).alerts]
    first = PartitionMonitor(monitor_spec, 0)
    got = [a.payload for a in first.process(recs[:3000]).alerts]
    channel = first.models["m"].channels["amount"]
    assert channel.series.firing and [e.fingerprint for e in channel.open_episodes()] == [fingerprint("m", "amount")]
    restored = PartitionMonitor.from_state_items(monitor_spec, 0, first.state_items(only_dirty=False))
    assert restored.rejected_state_items == 0
    back = restored.models["m"].channels["amount"]
    assert [(e.detector, e.fingerprint, e.lifecycle.severity) for e in back.open_episodes()] == [
        (e.detector, e.fingerprint, e.lifecycle.severity) for e in channel.open_episodes()
    ]
    got += [a.payload for a in restored.process(recs[3000:]).alerts]
    assert got == expected and len(expected) == 2


def _as_format_2(blob: bytes) -> bytes:
    """A channel item as format 2 wrote it: no page, lifecycles without their latest figures."""
    obj = msgpack.unpackb(blob, raw=False)
    obj["format"] = 2
    del obj["series"]
    for life in obj["lifecycles"].values():
        for key in ("last_statistic", "last_threshold", "last_p_value", "paged"):
            del life[key]
    return msgpack.packb(obj, use_bin_type=True)


def test_a_channel_item_of_the_previous_format_is_rejected_and_logged_never_misread() -> None:
    recs = [InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(shifted(3000, 2000, 4000, 2.0))]
    monitor_spec = spec()
    first = PartitionMonitor(monitor_spec, 0)
    first.process(recs)
    items = first.state_items(only_dirty=False)
    key = "c\x1fm\x1famount"
    old = _as_format_2(items[key])
    with pytest.raises(state.StateFormatError, match="format 2 is not 3"):
        state.decode_channel(old, "m", "amount")
    with capture_logs() as logs:
        restored = PartitionMonitor.from_state_items(monitor_spec, 0, {**items, key: old})
    rejected = [e for e in logs if e["event"] == "state_item_rejected"]
    assert [(e["model"], e["channel"]) for e in rejected] == [("m", "amount")] and "format 2 is not 3" in rejected[0]["reason"]
    assert restored.rejected_state_items == 1 and "amount" not in restored.models["m"].channels


def test_a_page_published_per_detector_still_resolves_after_switching_to_channel_pages() -> None:
    events = shifted(6000, 2000, 4000, 2.0)
    recs = [InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(events)]
    before = PartitionMonitor(spec("detector"), 0)
    alerts = [a.event for a in before.process(recs[:3000]).alerts]
    assert {a.fingerprint for a in alerts} == {fingerprint("m", "amount", d) for d in THREE}
    after = PartitionMonitor.from_state_items(spec("channel"), 0, before.state_items(only_dirty=False))
    alerts += [a.event for a in after.process(recs[3000:]).alerts]
    open_: dict[str, str] = {}
    for a in alerts:
        open_[a.fingerprint] = a.status
    assert set(open_.values()) == {"resolved"}, open_
    assert fingerprint("m", "amount") not in open_  # the detectors' open pages did not also open a channel page


def test_a_channel_page_still_resolves_after_switching_to_detector_pages() -> None:
    events = shifted(6000, 2000, 4000, 2.0)
    recs = [InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(events)]
    before = PartitionMonitor(spec("channel"), 0)
    alerts = [a.event for a in before.process(recs[:3000]).alerts]
    assert [a.fingerprint for a in alerts] == [fingerprint("m", "amount")]
    after = PartitionMonitor.from_state_items(spec("detector"), 0, before.state_items(only_dirty=False))
    later = [a.event for a in after.process(recs[3000:]).alerts]
    assert [(a.fingerprint, a.status) for a in later if a.fingerprint == fingerprint("m", "amount")] == [(fingerprint("m", "amount"), "resolved")]
    open_: dict[str, str] = {}
    for a in alerts + later:
        open_[a.fingerprint] = a.status
    assert set(open_.values()) == {"resolved"}, open_


def test_group_by_is_validated_and_can_be_set_per_model_and_channel(tmp_path) -> None:
    from stream_monitor.config import ConfigError, load_config

    path = tmp_path / "monitor.yaml"
    path.write_text("defaults:\n  alerting: {group_by: model}\n")
    with pytest.raises(ConfigError, match=r"defaults\.alerting\.group_by"):
        load_config(path, env={})
    path.write_text(
        "models:\n  m:\n    detection: {alerting: {group_by: detector}}\n    channels:\n      amount: {detection: {alerting: {group_by: channel}}}\n"
    )
    cfg = load_config(path, env={})
    assert cfg.defaults.alerting.group_by == "channel"
    assert cfg.channel_settings("m", "other", "numeric").alerting.group_by == "detector"
    assert cfg.channel_settings("m", "amount", "numeric").alerting.group_by == "channel"
