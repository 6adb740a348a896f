"""The alert event: its contract (:class:`AlertEvent`), how it is built from a lifecycle transition, and its kind.

An alert is built once, here, as an :class:`AlertEvent`; :func:`alert_payload` gives the bytes the
monitor publishes (orjson, keys in contract order). Field names follow Alertmanager.

>>> kind_of("__prediction__.y_pred", quality=False), kind_of("amount", quality=True)
('prediction_drift', 'data_quality')
"""

from __future__ import annotations

import dataclasses

from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from stream_monitor.core import evidence as evi
from stream_monitor.core.events import SourcePosition, format_event_time
from stream_monitor.core.lifecycle import alert_id
from stream_monitor.core.spec import PREDICTION, is_performance_channel

if TYPE_CHECKING:
    from stream_monitor.core.series import ChannelTrigger

SCHEMA_VERSION = 1

AlertKind = Literal["data_drift", "prediction_drift", "data_quality", "performance"]
def kind_of(channel: str, quality: bool) -> AlertKind:
    """The alert kind of a detector on a channel: quality detectors first, then by channel name.

    Latency, labels and errors are the model's performance; predictions its prediction drift.

    >>> kind_of("__latency__", False), kind_of("__label__", False), kind_of("__recall__.cat", False), kind_of("x", False)
    ('performance', 'performance', 'performance', 'data_drift')
    """
    if quality:
        return "data_quality"
    if channel.startswith(PREDICTION):
        return "prediction_drift"
    if is_performance_channel(channel):
        return "performance"
    return "data_drift"


class AlertWindow(BaseModel):
    """The event-time span and size of the window an evaluation looked at."""

    start: str | None
    end: str | None
    count: int


class AlertReference(BaseModel):
    """What the window was compared with: a baseline profile, the warm-up, or an adaptive reference."""

    kind: Literal["baseline", "warmup", "adaptive"]
    count: int


class AlertSource(BaseModel):
    """The input record at which the alert was raised."""

    topic: str
    partition: int
    offset: int


class MonitorInfo(BaseModel):
    """Which monitor instance (and version) raised the alert."""

    instance: str
    version: str


class AlertEvent(BaseModel):
    """The alert contract: one transition of a page — a (model, channel)'s, or a (model, channel, detector)'s.

    ``detector`` names the page's lead detector; ``source`` is the input record at which the
    transition happened (the only place a partition appears).
    """

    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    alert_id: str
    fingerprint: str
    status: Literal["firing", "resolved"]
    escalated: bool = False
    severity: Literal["info", "warning", "critical"]
    kind: AlertKind
    model: str
    model_version: str | None = None
    feature: str
    detector: str
    statistic: float | None
    threshold: float | None
    p_value: float | None = None
    event_time: str
    starts_at: str
    ends_at: str | None = None
    window: AlertWindow
    reference: AlertReference
    source: AlertSource
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    monitor: MonitorInfo
    evidence: dict[str, Any] | None = None


def alert_payload(event: AlertEvent) -> bytes:
    """The published bytes of an alert: JSON with the keys in contract order."""
    return orjson.dumps(event.model_dump())


def clean_number(x: float | None) -> float | None:
    """A statistic as published: rounded to 6 decimals, ``None`` when missing or not finite.

    >>> clean_number(0.12345678), clean_number(float("nan"))
    (0.123457, None)
    """
    if x is None:
        return None
    x = float(x)
    if x != x or x in (float("inf"), float("-inf")):
        return None
    return round(x, 6)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _owners(labels: dict[str, str]) -> str:
    owners = ", ".join(f"{k}: {labels[k]}" for k in ("owner", "team") if labels.get(k))
    return f" ({owners})" if owners else ""


def _also(t: ChannelTrigger) -> str:
    """``; also: ks, psi agree`` for the agreeing detectors of a channel's page other than its lead."""
    others = [d["name"] for d in (t.evidence or {}).get("detectors", []) if d["name"] != t.detector]
    return f"; also: {', '.join(others)} agree{'s' if len(others) == 1 else ''}" if others else ""


def _page_words(t: ChannelTrigger) -> tuple[str, str]:
    """What a model's performance page adds: (to the summary, to the description); empty for other pages."""
    ev = t.evidence or {}
    money = ""
    if "money" in ev:  # what the decisions cost now, whichever metric leads
        m = ev["money"]
        words = evi.cost_headline({"cost": m, "reference": {"kind": m["reference_kind"]}}, "agreed_channels" not in ev)
        money = f"; {'estimated ' if m['channel'] == '__estimated_cost__' else ''}{'cost ' if 'agreed_channels' not in ev else ''}{words}"
    if "channels" in ev:
        others = [evi.channel_words(c["channel"]) for c in ev["channels"] if c["channel"] != t.channel]
        lines = [f"- {evi.channel_words(c['channel'])}: {c['detector']}, {c['severity']} since {c['since']}" for c in ev["channels"]]
        return (f"; also moving: {', '.join(others)}" if others else "") + money, "\nThe model's performance metrics on this page:\n" + "\n".join(lines)
    if "agreed_channels" in ev:
        return money, f"\nMetrics that moved during the episode: {', '.join(evi.channel_words(c) for c in ev['agreed_channels'])}."
    return "", ""


def _texts(
    t: ChannelTrigger, kind: str, model: str, firing: bool, labels: dict[str, str], starts_ms: int, coinciding: str
) -> tuple[str, str]:
    """The default summary and description of a page's transition.

    With evidence, the summary says what moved, which way, how far, since when, who owns it and
    (for a channel's page) which other detectors agree; the description gives each detector's
    statistic, threshold and meaning, then reference vs current.
    """
    e = t.evaluation
    stat, thr = e.statistic, e.threshold
    where = f"{model} {evi.channel_words(t.channel)}"
    owners = _owners(labels)
    ev = t.evidence
    if ev is not None:
        main, detail = evi.headline(ev, firing, t.channel)
        detail = f"; {detail}" if detail else ""
        page_summary, page_description = _page_words(t)
        coinciding = page_description + coinciding
        if firing:
            summary = f"{where}: {main} since {format_event_time(starts_ms)}{detail}{owners}{_also(t) if t.grouped else ''}{page_summary}"
        else:
            back = f" at {format_event_time(t.ended_ms)}" if t.ended_ms is not None else ""
            summary = f"resolved: {where}: {main}{back}{detail}{owners}{page_summary}"
        window = "the window"
        if t.window_start_ms is not None and t.window_end_ms is not None:
            window = f"the last {t.window_count:,} observations, {format_event_time(t.window_start_ms)} → {format_event_time(t.window_end_ms)}"
        describe = evi.series_description if t.grouped else evi.description
        if "estimate" in ev:
            coinciding += f"\nEstimated without labels, {evi.estimate_words(ev['estimate'])}."
        description = describe(ev, firing, window, t.channel) + coinciding + f"\nKind: {kind.replace('_', ' ')}; model {model}, channel {t.channel}."
        return summary, description
    if not firing:
        summary = f"resolved: {model}/{t.channel} {t.detector} back within bounds"
        return summary, f"{t.detector} on {t.channel} has been within its threshold ({_fmt(thr)}) since the episode ended."
    summary = f"{kind.replace('_', ' ')} on {model}/{t.channel}: {t.detector} {_fmt(stat)} > {_fmt(thr)}"
    description = (
        f"{t.detector} compared the last {t.window_count} observations of {t.channel} with the "
        f"{t.reference_kind} reference ({t.reference_count} observations) and found "
        f"{_fmt(stat)} (threshold {_fmt(thr)}"
        + (f", p={e.p_value:.3g}" if e.p_value is not None else "")
        + ")."
        + coinciding
    )
    return summary, description


def build_alert(
    t: ChannelTrigger,
    *,
    model: str,
    model_version: str | None,
    event_time_ms: int,
    position: SourcePosition,
    labels: dict[str, str],
    annotations: dict[str, str],
    instance: str,
    version: str,
    texts: tuple[str, str] | None = None,
    coinciding: list[dict[str, Any]] | None = None,
    estimate: dict[str, Any] | None = None,
) -> AlertEvent:
    """The alert event of one page transition ``t``, raised at the record at ``position``.

    ``labels`` and ``annotations`` are the configured ones (the summary and description
    annotations are added here); ``texts`` replaces the default (summary, description).
    ``coinciding`` lists other channels drifting at the same time (``series.drift_entry``):
    a firing prediction-drift page names them in its evidence and description. ``estimate``
    (an estimate channel's: :func:`stream_monitor.core.estimate.estimate_evidence`) goes into the
    evidence as ``estimate``, and the texts say the figure is an estimate.
    """
    kind = kind_of(t.channel, t.quality)
    starts = t.episode_start_ms if t.episode_start_ms is not None else event_time_ms
    firing = t.transition != "resolved"
    evidence = t.evidence
    also = ""
    if coinciding and firing and kind == "prediction_drift":
        evidence = {**(evidence or {}), "coinciding": coinciding}
        also = f"\nCoincides with drift in: {evi.drift_words(coinciding)}."
    if estimate is not None and evidence is not None:
        evidence = {**evidence, "estimate": estimate}
        t = dataclasses.replace(t, evidence=evidence)
    summary, description = texts if texts is not None else _texts(t, kind, model, firing, labels, starts, also)
    e = t.evaluation
    return AlertEvent(
        alert_id=alert_id(t.fingerprint, starts, t.episode_offset),
        fingerprint=t.fingerprint,
        status="firing" if firing else "resolved",
        escalated=t.transition == "escalated",
        severity=t.severity,  # type: ignore[arg-type]
        kind=kind,
        model=model,
        model_version=model_version,
        feature=t.channel,
        detector=t.detector,
        statistic=clean_number(e.statistic),
        threshold=clean_number(e.threshold),
        p_value=clean_number(e.p_value),
        event_time=format_event_time(event_time_ms),
        starts_at=format_event_time(starts),
        ends_at=format_event_time(t.ended_ms) if not firing and t.ended_ms is not None else None,
        window=AlertWindow(
            start=None if t.window_start_ms is None else format_event_time(t.window_start_ms),
            end=None if t.window_end_ms is None else format_event_time(t.window_end_ms),
            count=t.window_count,
        ),
        reference=AlertReference(kind=t.reference_kind, count=t.reference_count),  # type: ignore[arg-type]
        source=AlertSource(topic=position.topic, partition=position.partition, offset=position.offset),
        labels=dict(labels),
        annotations={"summary": summary, "description": description, **annotations},
        monitor=MonitorInfo(instance=instance, version=version),
        evidence=evidence,
    )
