"""One concept drift, one page: a model's performance metrics page together (``core/model_pages.py``).

The stream: a binary classifier with a cost model, labels inline, whose error rate moves from
13 % to 30 % for 6,000 events and back for 16,000 (seeded). Per channel, that was 10 firing and 8
resolved alert events on 8 fingerprints; per model it is one fingerprint: fired, escalated when
the severity rose, resolved once every metric was back.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from stream_monitor.core.events import SourcePosition
from stream_monitor.core.model_pages import PerformancePage, is_member, page_fingerprint
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec
from tests.core.test_performance import BATCH, binary_events, payloads

MODEL = {"cost": {"false_positive": 5, "false_negative": 50}, "slo": {"error_rate": {"max_relative_increase": 0.25}}}


def _spec(**extra: Any) -> MonitorSpec:
    return MonitorSpec.model_validate({"models": {"clf": {**MODEL, **extra}}})


def _records(recovery: int = 16_000) -> list[InputRecord]:
    events = binary_events(1, [(6000, 0.13), (6000, 0.30), (recovery, 0.13)])
    return [InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, e["ts"])) for i, e in enumerate(events)]


@pytest.fixture(scope="module")
def records() -> list[InputRecord]:
    return _records()


@pytest.fixture(scope="module")
def by_model(records: list[InputRecord]) -> list[dict[str, Any]]:
    return [orjson.loads(a) for a in payloads(_spec(), records)]


def test_a_concept_drift_is_one_page_that_fires_escalates_and_resolves(by_model: list[dict[str, Any]]) -> None:
    assert {a["fingerprint"] for a in by_model} == {page_fingerprint("clf")}
    assert [(a["status"], a["escalated"]) for a in by_model] == [("firing", False), ("firing", True), ("resolved", False)]
    first, escalated, resolved = by_model
    assert all(a["kind"] == "performance" and a["starts_at"] == first["starts_at"] for a in by_model)
    assert first["source"]["offset"] >= 6000 and escalated["severity"] == "critical"
    # the resolve carries the label set of the last published event (the bridges key Alertmanager on it)
    assert (resolved["feature"], resolved["detector"], resolved["severity"]) == (escalated["feature"], escalated["detector"], "critical")
    assert resolved["alert_id"] == first["alert_id"] == escalated["alert_id"]
    moved = resolved["evidence"]["agreed_channels"]
    assert {"__error_rate__", "__precision__", "__recall__", "__cost__"} <= set(moved)
    assert all(is_member(c) for c in moved)
    assert "Metrics that moved during the episode: " in resolved["annotations"]["description"]


def test_the_page_says_what_the_decisions_cost_whichever_metric_leads(by_model: list[dict[str, Any]]) -> None:
    first, _, resolved = by_model
    assert first["feature"] != "__cost__"
    money = first["evidence"]["money"]
    assert money["channel"] == "__cost__" and money["currency"] == "EUR" and money["change_per_1k"] > 0
    assert f"; cost +{money['change_per_1k']:,.0f} EUR per 1k predictions vs warm-up reference" in first["annotations"]["summary"]
    assert "; cost back to " in resolved["annotations"]["summary"]


def test_the_page_names_the_metrics_moving_with_its_lead(by_model: list[dict[str, Any]]) -> None:
    escalated = by_model[1]
    members = escalated["evidence"]["channels"]
    assert [m["channel"] for m in members][-1] == escalated["feature"]  # the member that raised the severity
    assert all(set(m) == {"channel", "detector", "severity", "since"} for m in members)
    others = [m for m in members if m["channel"] != escalated["feature"]]
    assert others and "; also moving: " in escalated["annotations"]["summary"]
    assert "The model's performance metrics on this page:" in escalated["annotations"]["description"]


def test_per_channel_pages_remain_an_option_and_every_one_resolves(records: list[InputRecord]) -> None:
    alerts = [orjson.loads(a) for a in payloads(_spec(performance_pages="channel"), records)]
    fired = {a["feature"] for a in alerts if a["status"] == "firing"}
    resolved = {a["feature"] for a in alerts if a["status"] == "resolved"}
    assert len(fired) >= 6 and page_fingerprint("clf") not in {a["fingerprint"] for a in alerts}
    # 0/1 metric pages judged their level on one evaluation step (250 values) against a 0.05 sd gate, which
    # noise alone crossed half the time: error rate, precision, recall and F1 pages never resolved
    assert resolved == fired


def test_the_label_and_latency_channels_page_on_their_own() -> None:
    assert not is_member("__label__") and not is_member("__latency__") and not is_member("__prediction__")
    assert is_member("__estimated_cost__") and is_member("__f1__.cat") and is_member("__abs_error__")


@pytest.mark.parametrize("split", [7000, 12_500, 16_000])
def test_a_restore_mid_episode_gives_the_samepayloads(records: list[InputRecord], split: int) -> None:
    """Before any member fired in full, with the page open, and with members resolving: the page is model state."""
    assert payloads(_spec(), records, split) == payloads(_spec(), records)


def test_switching_to_channel_pages_closes_the_open_model_page(records: list[InputRecord]) -> None:
    """A page opened per model still resolves when the config says per channel by the time it ends."""
    monitor = PartitionMonitor(_spec(), partition=0)
    out: list[dict[str, Any]] = []
    for i in range(0, 12_500, BATCH):
        out.extend(orjson.loads(a.payload) for a in monitor.process(records[i : i + BATCH]).alerts)
    assert out and out[-1]["fingerprint"] == page_fingerprint("clf") and out[-1]["status"] == "firing"
    channel_spec = _spec(performance_pages="channel")
    monitor = PartitionMonitor.from_state_items(channel_spec, 0, monitor.state_items(only_dirty=False))
    for i in range(12_500, len(records), BATCH):
        out.extend(orjson.loads(a.payload) for a in monitor.process(records[i : i + BATCH]).alerts)
    page = [a for a in out if a["fingerprint"] == page_fingerprint("clf")]
    assert page[-1]["status"] == "resolved"


def test_a_malformed_page_in_state_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="performance page: bad members"):
        PerformancePage.from_state({**PerformancePage().to_state(), "members": {"__cost__": "loud"}})


def test_retraining_on_a_named_metric_asks_when_the_page_lists_it(records: list[InputRecord]) -> None:
    """``retraining.on_channels`` names a metric; the page that lists it among its members asks at once."""
    spec = MonitorSpec.model_validate(
        {"retraining": {"enabled": True, "on_kinds": [], "on_channels": ["__error_rate__"]}, "models": {"clf": MODEL}}
    )
    monitor = PartitionMonitor(spec, partition=0)
    events = []
    for i in range(0, len(records), BATCH):
        events.extend(monitor.process(records[i : i + BATCH]).retraining)
    assert len(events) == 1 and events[0].event.reason == "slo_breach"
    assert events[0].event.signals[0].fingerprint == page_fingerprint("clf")
