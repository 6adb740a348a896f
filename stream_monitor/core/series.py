"""A channel's pages: one alert series per (model, channel) over all of the channel's detectors.

Each detector keeps its own lifecycle (minimum evidence, resolution, cool-down); the series is
derived from those lifecycles after every evaluation of the channel. It fires when the first
detector fires, re-emits (``escalated``) when the highest severity of the agreeing detectors rises
above the one it published, and resolves when none of them still fires. Its lead detector (the
alert's ``detector``) is the most severe agreeing one, then the first to fire, then the first in
the configured order. A detector whose episode was published on its own fingerprint (the
``alerting.group_by: detector`` setting) is not part of the series.

:func:`page` turns one evaluation's lifecycle transitions into :class:`ChannelTrigger` s, the
input of the alert builder.

>>> from stream_monitor.core.settings import LifecycleSettings
>>> ks, psi = (AlertLifecycle(LifecycleSettings(min_consecutive=1)) for _ in range(2))
>>> series, order = AlertSeries(), {"ks": 0, "psi": 1}
>>> ks.observe(True, 10, "warning"), psi.observe(True, 10, "critical")
('firing', 'firing')
>>> series.update(agreeing([("ks", ks), ("psi", psi)]), 10, 5, order), series.lead, series.severity
('firing', 'psi', 'critical')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple, Protocol

import numpy as np

from stream_monitor.core import detectors as det
from stream_monitor.core.events import format_event_time
from stream_monitor.core.evidence import EvidenceSource, channel_evidence
from stream_monitor.core.lifecycle import SEVERITY_RANK, AlertLifecycle, Transition, more_severe
from stream_monitor.core.reference import Reference
from stream_monitor.core.settings import DetectionSettings, Severity


class Change(NamedTuple):
    """A detector's lifecycle transition at one evaluation, before it becomes a page (or not)."""

    detector: str
    ordinal: int
    transition: Transition
    evaluation: det.Evaluation
    basis: int  # values a change-point detector judged (0: the window)
    lifecycle: AlertLifecycle


class AlertSeries:
    """The published state of a channel's page: firing or not, severity, lead detector, episode.

    Duck-types the parts of :class:`AlertLifecycle` that readers of open episodes use
    (``firing``, ``severity``, ``episode_start_ms``).
    """

    __slots__ = ("state", "severity", "lead", "episode_start_ms", "episode_offset", "ended_ms", "shift_sd", "agreed")

    def __init__(self) -> None:
        self.state = "ok"
        self.severity: Severity = "warning"
        self.lead = ""
        self.episode_start_ms: int | None = None
        self.episode_offset = -1
        self.ended_ms: int | None = None
        # the lead's mean shift in reference sd when the series fired (numbers only), for other pages
        self.shift_sd: float | None = None
        # every detector that agreed during the current (or last) episode, in the order they joined
        self.agreed: list[str] = []

    @property
    def firing(self) -> bool:
        """The page is open."""
        return self.state == "firing"

    def copy(self) -> AlertSeries:
        """An independent copy."""
        out = AlertSeries()
        for attr in AlertSeries.__slots__:
            setattr(out, attr, getattr(self, attr))
        out.agreed = list(self.agreed)
        return out

    def update(self, members: list[tuple[str, AlertLifecycle]], event_time_ms: int, offset: int, order: dict[str, int]) -> Transition | None:
        """Bring the series in line with the detectors that fire now (``members``); return its transition.

        The lead changes only when the page fires or escalates, so a page's resolve carries the
        label set (detector, kind, severity) of its last published event.
        """
        if not self.firing:
            if not members:
                return None
            self.state, self.ended_ms = "firing", None
            self.episode_start_ms, self.episode_offset = event_time_ms, offset
            self.severity = top_severity(members)
            self.lead = lead_of(members, order)
            self.agreed = [name for name, _ in ranked(members, order)]
            return "firing"
        if not members:
            self.state, self.ended_ms = "ok", event_time_ms
            return "resolved"
        self.agreed.extend(name for name, _ in ranked(members, order) if name not in self.agreed)
        top = top_severity(members)
        if more_severe(top, self.severity):
            self.severity = top
            self.lead = lead_of(members, order)
            return "escalated"
        return None


def agreeing(lifecycles: Iterable[tuple[str, AlertLifecycle]]) -> list[tuple[str, AlertLifecycle]]:
    """The series' members: detectors whose episode is open and not published on its own fingerprint."""
    return [(name, life) for name, life in lifecycles if life.firing and not life.paged]


def _rank(member: tuple[str, AlertLifecycle], order: dict[str, int]) -> tuple[int, int, int, str]:
    name, life = member
    start = life.episode_start_ms if life.episode_start_ms is not None else 0
    return (-SEVERITY_RANK.get(life.severity, -1), start, order.get(name, len(order)), name)


def ranked(members: list[tuple[str, AlertLifecycle]], order: dict[str, int]) -> list[tuple[str, AlertLifecycle]]:
    """Members most severe first, then first to fire, then in configured order."""
    return sorted(members, key=lambda m: _rank(m, order))


def lead_of(members: list[tuple[str, AlertLifecycle]], order: dict[str, int]) -> str:
    """The lead detector of a series: the first of :func:`ranked`."""
    return min(members, key=lambda m: _rank(m, order))[0]


def top_severity(members: list[tuple[str, AlertLifecycle]]) -> Severity:
    """The highest severity among ``members`` (which must not be empty)."""
    return max((life.severity for _, life in members), key=lambda s: SEVERITY_RANK.get(s, -1))


def _num(x: float | None) -> float | None:
    if x is None or x != x or x in (float("inf"), float("-inf")):
        return None
    return float(f"{float(x):.6g}")


def members_evidence(members: list[tuple[str, AlertLifecycle]], order: dict[str, int]) -> list[dict[str, Any]]:
    """Every agreeing detector as plain data: name, severity, latest statistic, threshold, p-value, since when."""
    return [
        {
            "name": name,
            "severity": life.severity,
            "statistic": _num(life.last_statistic),
            "threshold": _num(life.last_threshold),
            "p_value": _num(life.last_p_value),
            "since": None if life.episode_start_ms is None else format_event_time(life.episode_start_ms),
            "kind": "data_quality" if det.is_quality(name) else "drift",
        }
        for name, life in ranked(members, order)
    ]


def drift_entry(
    name: str, lifecycles: Iterable[tuple[str, AlertLifecycle]], series: AlertSeries, event_time_ms: int, horizon_ms: int
) -> dict[str, Any] | None:
    """How channel ``name`` drifted at ``event_time_ms`` (or since ``horizon_ms``), for another channel's page.

    A drift (not a data-quality) detector counts when its episode had started by ``event_time_ms``
    and is still open or ended at or after ``horizon_ms``. None when no detector counts. Read once
    a batch is ingested, so an episode that both ended and started again within that batch after
    ``event_time_ms`` is not seen (the cooldown makes that rare).

    >>> from stream_monitor.core.settings import LifecycleSettings
    >>> ks = AlertLifecycle(LifecycleSettings(min_consecutive=1))
    >>> _ = ks.observe(True, 10, "warning")
    >>> drift_entry("amount", [("ks", ks)], AlertSeries(), 20, 0)["detectors"]
    ['ks']
    >>> drift_entry("amount", [("ks", ks)], AlertSeries(), 5, 0) is None
    True
    """
    names = [
        d
        for d, life in lifecycles
        if not det.is_quality(d)
        and life.episode_start_ms is not None
        and life.episode_start_ms <= event_time_ms
        and (life.firing or (life.ended_ms is not None and life.ended_ms >= horizon_ms))
    ]
    if not names:
        return None
    shift = None
    if series.episode_start_ms is not None and series.episode_start_ms <= event_time_ms:
        shift = _num(series.shift_sd)
    return {"channel": name, "detectors": names, "mean_sd": shift}


class OpenEpisode(NamedTuple):
    """An open page of a channel: lead detector, fingerprint, its state, quality or not.

    ``lifecycle`` is the channel's :class:`AlertSeries` for the
    channel's page, or the detector's :class:`AlertLifecycle` for a detector-level page; both have
    ``firing``, ``severity`` and ``episode_start_ms``.
    """

    detector: str
    fingerprint: str
    lifecycle: AlertLifecycle | AlertSeries
    quality: bool


def open_pages(
    series: AlertSeries, series_fingerprint: str, lifecycles: list[tuple[str, str, AlertLifecycle]]
) -> list[OpenEpisode]:
    """The open pages of a channel: its series (when firing), then detector-level episodes."""
    out = [OpenEpisode(series.lead, series_fingerprint, series, det.is_quality(series.lead))] if series.firing else []
    out.extend(OpenEpisode(name, fp, life, det.is_quality(name)) for name, fp, life in lifecycles if life.paged)
    return out


@dataclass(slots=True)
class ChannelTrigger:
    """A transition of a page (a channel's series, or one detector's), with the evidence for the alert event.

    For a channel's series ``detector`` and ``evaluation`` are the lead detector's, ``grouped`` is
    True and the evidence lists every agreeing detector under ``detectors``.
    """

    row: int
    channel_ordinal: int
    detector_ordinal: int
    channel: str
    detector: str
    transition: Transition
    evaluation: det.Evaluation
    severity: str
    episode_start_ms: int | None
    episode_offset: int
    ended_ms: int | None
    fingerprint: str
    window_start_ms: int | None
    window_end_ms: int | None
    window_count: int
    reference_kind: str
    reference_count: int
    quality: bool
    evidence: dict[str, Any] | None = None  # what moved, in the channel's own terms (core/evidence.py)
    grouped: bool = False


class PageSource(EvidenceSource, Protocol):
    """What :func:`page` reads and updates of a channel (``ChannelMonitor`` provides it)."""

    name: str
    ordinal: int
    settings: DetectionSettings
    reference: Reference | None
    series: AlertSeries
    series_fingerprint: str
    fingerprints: dict[str, str]
    order: dict[str, int]
    lifecycles: dict[str, AlertLifecycle]
    _orphans: dict[str, AlertLifecycle]
    _round: dict[str, tuple[int, det.Evaluation, int]]
    size: int
    obs_filled: int
    obs_pos: int
    times: np.ndarray

    def all_lifecycles(self) -> list[tuple[str, AlertLifecycle]]:
        """(detector, lifecycle) of every detector, current then orphaned."""
        ...


def page(ch: PageSource, row: int, time_ms: int, offset: int, changes: list[Change], triggers: list[ChannelTrigger]) -> None:
    """The pages one evaluation of ``ch`` at ``row`` makes from its detectors' transitions (``changes``).

    A detector pages on its own when ``alerting.group_by`` is ``detector`` (and an episode it
    published that way also escalates and resolves that way, whatever the setting now); otherwise
    the channel's series pages for all of its detectors.
    """
    by_detector = ch.settings.alerting.group_by == "detector"
    for c in changes:
        life = c.lifecycle
        if (by_detector and c.transition == "firing") or (c.transition != "firing" and life.paged):
            life.paged = c.transition != "resolved"
            ch.point_basis = c.basis
            evidence = channel_evidence(ch, c.detector, c.evaluation)
            triggers.append(_trigger(ch, row, c.detector, c.ordinal, c.transition, c.evaluation, life, ch.fingerprints[c.detector], evidence))
    series = ch.series
    if by_detector and not series.firing:
        return
    members = agreeing(ch.all_lifecycles())
    transition = series.update(members, time_ms, offset, ch.order)
    if transition is None:
        return
    lead = series.lead
    known = ch._round.get(lead)
    if known is not None:
        ordinal, evaluation, ch.point_basis = known
    else:  # the lead was not evaluated now: its latest figures, over the window
        ordinal, evaluation = latest_evaluation(ch, lead, series.severity)
    evidence = channel_evidence(ch, lead, evaluation)
    if evidence is not None:
        evidence["detectors"] = members_evidence(members, ch.order)
        if transition == "resolved":
            evidence["agreed"] = list(series.agreed)
        if transition == "firing":
            change = evidence.get("change")
            series.shift_sd = None if change is None or evidence.get("binary") else change.get("mean_sd")
    triggers.append(_trigger(ch, row, lead, ordinal, transition, evaluation, series, ch.series_fingerprint, evidence, grouped=True))


def standing_trigger(ch: PageSource, row: int, detector: str, transition: Transition, state: Any, fingerprint_: str) -> ChannelTrigger:
    """A page transition that ``ch``'s ``detector`` leads without being evaluated now: its latest figures, over the window.

    ``state`` gives the page's severity and episode (a model's performance page, ``core/model_pages.py``).
    """
    ordinal, evaluation = latest_evaluation(ch, detector, state.severity)
    evidence = channel_evidence(ch, detector, evaluation)
    if evidence is not None:
        evidence["detectors"] = members_evidence(agreeing(ch.all_lifecycles()), ch.order)
        evidence["agreed"] = list(ch.series.agreed)
    return _trigger(ch, row, detector, ordinal, transition, evaluation, state, fingerprint_, evidence, grouped=True)


def latest_evaluation(ch: PageSource, detector: str, severity: Severity) -> tuple[int, det.Evaluation]:
    """(ordinal, evaluation) of ``detector`` not evaluated now: its lifecycle's latest figures, the evidence over the
    window (``ch.point_basis`` 0); without a lifecycle, no figures at ``severity``."""
    life = ch.lifecycles.get(detector) or ch._orphans.get(detector)
    ch.point_basis = 0
    evaluation = (
        det.Evaluation(life.last_statistic, life.last_threshold, life.last_p_value, life.firing, life.severity)
        if life is not None
        else det.Evaluation(None, None, None, False, severity)
    )
    return ch.order.get(detector, len(ch.order)), evaluation


def _trigger(
    ch: PageSource,
    row: int,
    detector: str,
    ordinal: int,
    transition: Transition,
    evaluation: det.Evaluation,
    state: AlertLifecycle | AlertSeries,
    fingerprint_: str,
    evidence: dict[str, Any] | None,
    grouped: bool = False,
) -> ChannelTrigger:
    ref = ch.reference
    assert ref is not None
    count = min(ch.obs_filled, ch.size)
    if count:
        oldest = (ch.obs_pos - count) % ch.size
        newest = (ch.obs_pos - 1) % ch.size
        start, end = int(ch.times[oldest]), int(ch.times[newest])
    else:
        start = end = None
    return ChannelTrigger(
        row=row,
        channel_ordinal=ch.ordinal,
        detector_ordinal=ordinal,
        channel=ch.name,
        detector=detector,
        transition=transition,
        evaluation=evaluation,
        severity=state.severity,
        episode_start_ms=state.episode_start_ms,
        episode_offset=state.episode_offset,
        ended_ms=state.ended_ms,
        fingerprint=fingerprint_,
        window_start_ms=start,
        window_end_ms=end,
        window_count=count,
        reference_kind=ref.kind,
        reference_count=ref.count,
        quality=det.is_quality(detector),
        evidence=evidence,
        grouped=grouped,
    )
