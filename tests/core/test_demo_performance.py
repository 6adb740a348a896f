"""The demo's stream makes a performance page: churn-v1's concept drift, replayed through the core.

``stream-monitor demo`` produces :func:`stream_monitor.synthetic.demo_streams` with labels and
monitors it with :func:`stream_monitor.commands.demo.demo_config`; here the same events and spec
go through :class:`PartitionMonitor` directly (no broker).
"""

from __future__ import annotations

from itertools import islice
from typing import Any

import orjson

from stream_monitor.commands.demo import demo_config
from stream_monitor.core.events import SourcePosition
from stream_monitor.core.model_pages import page_fingerprint
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec
from stream_monitor.synthetic import demo_streams, generate_events

N = 60_000  # the demo's default events per model


def test_labels_leave_the_demo_inputs_and_predictions_as_they_were() -> None:
    plain, labelled = demo_streams(N, 42), demo_streams(N, 42, labels=True)
    assert labelled[0] == plain[0]  # fraud-v3 (the README's example alert) is the same stream
    with_labels = list(islice(generate_events(labelled[1]), 12_000))
    assert all("label" in e for e in with_labels)
    assert [{k: v for k, v in e.items() if k != "label"} for e in with_labels] == list(islice(generate_events(plain[1]), 12_000))


def _churn_alerts(pages: str = "model") -> tuple[Any, list[dict[str, Any]]]:
    _, churn = demo_streams(N, 42, labels=True)
    assert churn.concept_drift is not None
    spec = demo_config("127.0.0.1:9092", "test", "in", "alerts").monitor_spec()
    if pages != "model":
        data = spec.model_dump(exclude_unset=True)
        data["models"]["churn-v1"] = {**data["models"].get("churn-v1", {}), "performance_pages": pages}
        spec = MonitorSpec.model_validate(data)
    records = [InputRecord(orjson.dumps(e), SourcePosition("in", 0, i, 0)) for i, e in enumerate(generate_events(churn))]
    monitor = PartitionMonitor(spec, partition=0)
    alerts = []
    for i in range(0, len(records), 2000):
        alerts.extend(orjson.loads(a.payload) for a in monitor.process(records[i : i + 2000]).alerts)
    return churn, alerts


def test_the_demo_stream_pages_once_on_churn_v1_performance_after_its_concept_drift() -> None:
    """The demo's concept drift moves log loss, error rate, precision, F1 and ROC AUC: one page, escalated once."""
    churn, alerts = _churn_alerts()
    assert {a["fingerprint"] for a in alerts} == {page_fingerprint("churn-v1")}
    assert min(a["source"]["offset"] for a in alerts) >= churn.concept_drift.start
    assert [a["escalated"] for a in alerts if a["status"] == "firing"][0] is False
    members = {c["channel"] for a in alerts for c in a["evidence"].get("channels", [])}
    assert {"__roc_auc__", "__error_rate__"} <= members, members
    assert all(a["kind"] == "performance" for a in alerts)


def test_with_per_channel_pages_the_demo_stream_pages_on_churn_v1_performance_after_its_concept_drift_and_not_before() -> None:
    churn, alerts = _churn_alerts("channel")
    pages = {a["feature"]: a for a in alerts if a["status"] == "firing" and not a["escalated"]}
    assert pages and all(a["kind"] == "performance" for a in pages.values()), sorted(pages)
    assert min(a["source"]["offset"] for a in alerts) >= churn.concept_drift.start
    auc = pages["__roc_auc__"]
    assert auc["evidence"]["roc_auc"]["current"] < auc["evidence"]["roc_auc"]["reference"]
    assert "churn-v1 ROC AUC: ROC AUC fell from" in auc["annotations"]["summary"]
    # the demo's SLO (roc_auc min 0.75) joins the page once the window's AUC is below it
    members = {d["name"] for a in alerts if a["feature"] == "__roc_auc__" for d in a["evidence"]["detectors"]}
    assert "slo_roc_auc" in members, members


def test_without_labels_the_demo_churn_stream_raises_nothing() -> None:
    _, churn = demo_streams(N, 42)
    spec = demo_config("127.0.0.1:9092", "test", "in", "alerts").monitor_spec()
    records = [InputRecord(orjson.dumps(e), SourcePosition("in", 0, i, 0)) for i, e in enumerate(generate_events(churn))]
    monitor = PartitionMonitor(spec, partition=0)
    assert not any(monitor.process(records[i : i + 5000]).alerts for i in range(0, len(records), 5000))
