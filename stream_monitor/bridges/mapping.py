"""Mapping an alert event to an Alertmanager alert or a PagerDuty Events API v2 event."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from stream_monitor.core.alert import AlertEvent
from stream_monitor.core.events import parse_event_time

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SEVERITY = {"info": "info", "warning": "warning", "critical": "critical"}
_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")


def label_name(name: str) -> str:
    """A valid Prometheus/Alertmanager label name.

    >>> label_name("runbook-url"), label_name("1x"), label_name("team")
    ('runbook_url', '_1x', 'team')
    """
    clean = _LABEL_NAME.sub("_", name) or "_"
    return "_" + clean if clean[0].isdigit() else clean


def alertname(kind: str) -> str:
    """``data_drift`` -> ``StreamMonitorDataDrift``.

    >>> [alertname(k) for k in ("data_drift", "prediction_drift", "data_quality", "performance")]
    ['StreamMonitorDataDrift', 'StreamMonitorPredictionDrift', 'StreamMonitorDataQuality', 'StreamMonitorPerformance']
    """
    return "StreamMonitor" + "".join(part.capitalize() for part in kind.split("_"))


def iso_time(dt: datetime) -> str:
    """An aware datetime as ISO-8601 UTC with milliseconds."""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc)


def generator_link(template: str | None, alert: AlertEvent) -> str | None:
    """The ``generatorURL`` / PagerDuty ``client_url`` of an alert (see the module doc).

    >>> a = example_alert()
    >>> generator_link("https://grafana/d/drift?var-model={model}&var-feature={feature}", a)
    'https://grafana/d/drift?var-model=fraud-v3&var-feature=amount'
    >>> generator_link("https://mon", a)
    'https://mon?model=fraud-v3&feature=amount&detector=psi&fingerprint=3d8bec3b461c3d10'
    """
    if not template:
        return None
    values = {
        "model": alert.model,
        "feature": alert.feature,
        "detector": alert.detector,
        "fingerprint": alert.fingerprint,
        "partition": str(alert.source.partition),
        "alert_id": alert.alert_id,
    }
    if "{" in template:
        return template.format(**{k: urllib.parse.quote(v, safe="") for k, v in values.items()})
    query = urllib.parse.urlencode({k: values[k] for k in ("model", "feature", "detector", "fingerprint")})
    return f"{template}{'&' if '?' in template else '?'}{query}"


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


def alert_facts(alert: AlertEvent) -> dict[str, Any]:
    """The alert's facts for annotations / custom_details (no labels, no free text)."""
    return {
        "alert_id": alert.alert_id,
        "fingerprint": alert.fingerprint,
        "model_version": alert.model_version,
        "statistic": alert.statistic,
        "threshold": alert.threshold,
        "p_value": alert.p_value,
        "event_time": alert.event_time,
        "starts_at": alert.starts_at,
        "ends_at": alert.ends_at,
        "window": alert.window.model_dump(),
        "reference": alert.reference.model_dump(),
        "source": alert.source.model_dump(),
        "monitor_instance": alert.monitor.instance,
        "monitor_version": alert.monitor.version,
    }


def alertmanager_labels(alert: AlertEvent, extra: Mapping[str, str]) -> dict[str, str]:
    """The Alertmanager label set (identity) of an alert: see the module doc for the order."""
    labels: dict[str, str] = {label_name(k): str(v) for k, v in alert.labels.items()}
    labels.update({label_name(k): str(v) for k, v in extra.items()})
    labels.update(
        {
            "alertname": alertname(alert.kind),
            "model": alert.model,
            "feature": alert.feature,
            "detector": alert.detector,
            "severity": alert.severity,
            "kind": alert.kind,
        }
    )
    return {k: v for k, v in labels.items() if v != ""}


def alertmanager_alert(
    alert: AlertEvent,
    *,
    now: datetime,
    ttl_s: float,
    extra_labels: Mapping[str, str] | None = None,
    generator_url: str | None = None,
) -> dict[str, Any]:
    """One element of the ``POST /api/v2/alerts`` body (Alertmanager's ``postableAlert``).

    >>> now = datetime(2026, 1, 2, tzinfo=timezone.utc)
    >>> am = alertmanager_alert(example_alert(), now=now, ttl_s=240, extra_labels={"cluster": "eu1"})
    >>> am["labels"]["alertname"], am["labels"]["severity"], am["labels"]["team"], am["labels"]["cluster"]
    ('StreamMonitorDataDrift', 'warning', 'risk-ml', 'eu1')
    >>> am["startsAt"], am["endsAt"], am["annotations"]["statistic"]
    ('2026-01-01T00:00:00.000Z', '2026-01-02T00:04:00.000Z', '0.31')
    >>> resolved = example_alert(status="resolved", ends_at="2026-01-01T01:00:00.000Z")
    >>> alertmanager_alert(resolved, now=now, ttl_s=240)["endsAt"]
    '2026-01-01T01:00:00.000Z'
    """
    starts = min(_ms_to_dt(parse_event_time(alert.starts_at)), now)
    if alert.status == "firing":
        ends = now + timedelta(seconds=ttl_s)
    else:
        ended = _ms_to_dt(parse_event_time(alert.ends_at)) if alert.ends_at else now
        ends = max(min(ended, now), starts)
    annotations: dict[str, str] = {label_name(k): str(v) for k, v in alert.annotations.items()}
    facts = alert_facts(alert)
    for key in ("statistic", "threshold", "p_value"):
        annotations[key] = _fmt(facts[key])
    for key in ("alert_id", "fingerprint", "model_version", "event_time", "monitor_instance"):
        if facts[key] is not None:
            annotations[key] = str(facts[key])
    annotations["window"] = json.dumps(facts["window"], sort_keys=True)
    annotations["reference"] = json.dumps(facts["reference"], sort_keys=True)
    annotations["source"] = f"{alert.source.topic}/{alert.source.partition}@{alert.source.offset}"
    out: dict[str, Any] = {
        "labels": alertmanager_labels(alert, extra_labels or {}),
        "annotations": {k: v for k, v in annotations.items() if v != ""},
        "startsAt": iso_time(starts),
        "endsAt": iso_time(ends),
    }
    link = generator_link(generator_url, alert)
    if link:
        out["generatorURL"] = link
    return out


def pagerduty_event(alert: AlertEvent, routing_key: str, generator_url: str | None = None) -> dict[str, Any]:
    """A PagerDuty Events API v2 event for an alert event.

    >>> ev = pagerduty_event(example_alert(annotations={"summary": "drift", "runbook_url": "https://rb"}), "R" * 32)
    >>> ev["event_action"], ev["dedup_key"], ev["payload"]["severity"], ev["payload"]["source"], ev["links"]
    ('trigger', '3d8bec3b461c3d10', 'warning', 'fraud-v3', [{'href': 'https://rb', 'text': 'Runbook'}])
    >>> pagerduty_event(example_alert(status="resolved"), "R" * 32)
    {'routing_key': 'RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR', 'event_action': 'resolve', 'dedup_key': '3d8bec3b461c3d10'}
    """
    if alert.status == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": alert.fingerprint}
    summary = alert.annotations.get("summary") or (
        f"{alert.kind.replace('_', ' ')} on {alert.model}/{alert.feature}: {alert.detector} {_fmt(alert.statistic)}"
    )
    details: dict[str, Any] = {**alert_facts(alert), "labels": dict(alert.labels), "kind": alert.kind}
    for key in ("description", "runbook_url"):
        if alert.annotations.get(key):
            details[key] = alert.annotations[key]
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.fingerprint,
        "payload": {
            "summary": summary[:1024],
            "source": alert.model,
            "severity": PAGERDUTY_SEVERITY[alert.severity],
            "timestamp": alert.starts_at,
            "component": alert.feature,
            "group": alert.kind,
            "class": alert.detector,
            "custom_details": details,
        },
        "client": "stream-monitor",
    }
    link = generator_link(generator_url, alert)
    if link:
        event["client_url"] = link
    runbook = alert.annotations.get("runbook_url")
    if runbook:
        event["links"] = [{"href": runbook, "text": "Runbook"}]
    return event


def example_alert(**overrides: Any) -> AlertEvent:
    """A valid alert event for examples and tests."""
    data: dict[str, Any] = {
        "schema_version": 1,
        "alert_id": "a" * 32,
        "fingerprint": "3d8bec3b461c3d10",
        "status": "firing",
        "severity": "warning",
        "kind": "data_drift",
        "model": "fraud-v3",
        "model_version": "2026-11-01",
        "feature": "amount",
        "detector": "psi",
        "statistic": 0.31,
        "threshold": 0.2,
        "p_value": None,
        "event_time": "2026-01-01T00:00:05.000Z",
        "starts_at": "2026-01-01T00:00:00.000Z",
        "ends_at": None,
        "window": {"start": "2026-01-01T00:00:00.000Z", "end": "2026-01-01T00:00:05.000Z", "count": 1000},
        "reference": {"kind": "warmup", "count": 1000},
        "source": {"topic": "inference-events", "partition": 0, "offset": 1234},
        "labels": {"team": "risk-ml"},
        "annotations": {"summary": "data drift on fraud-v3/amount", "runbook_url": "https://runbooks/drift"},
        "monitor": {"instance": "test", "version": "0"},
    }
    data.update(overrides)
    return AlertEvent.model_validate(data)

