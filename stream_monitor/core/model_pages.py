"""A model's performance page: one alert series over all of the model's performance metrics.

A concept drift moves many metrics of one model at once: the error rate, precision, recall, F1,
log loss, ROC AUC, the cost and the label-free estimates each have a channel, and each channel
its own page (:mod:`stream_monitor.core.series`). One problem made eight pages, minutes apart.
With ``performance_pages: model`` (a model setting, the default) those channels' pages are not
published; the model's performance page is:

- it **fires** with the first member channel whose page fires (that channel and its lead detector
  lead it), **escalates** when a member's severity rises above the one it published (the lead
  moves to that member), and **resolves** when no member's page still fires;
- its fingerprint is (model, ``__performance__``); its alert's ``feature`` and ``detector`` are
  the lead's, so the resolve carries the label set of its last published event;
- its evidence lists the members firing at that moment (``channels``: channel, lead detector,
  severity, since when) and, when it resolves, every channel that joined during the episode
  (``agreed_channels``);
- with a cost model, it says what the decisions cost now (``money``: the ``__cost__`` window against its
  reference, per 1,000 predictions, else the estimated cost's), whichever metric leads.

Members are the metric channels (:data:`MEMBER_CHANNELS`, per-class ones included): ``__error__``,
``__error_rate__``, ``__abs_error__``, the scored channels and the estimates. ``__label__`` (the
target's distribution) and ``__latency__`` (serving) are other problems and page on their own.
Detector-level pages (``alerting.group_by: detector``) are left as they are. The page's state is
model state (:meth:`PerformancePage.to_state`), checkpointed with the model item.

>>> page, fired = PerformancePage(), []
>>> page.take("__error_rate__", "ddm", "firing", "warning", 10, 3, None), page.lead
('firing', '__error_rate__')
>>> page.take("__precision__", "hddm_a", "firing", "critical", 20, 5, None), page.lead, page.severity
('escalated', '__precision__', 'critical')
>>> page.take("__error_rate__", "ddm", "resolved", "warning", 10, 3, 30), page.take("__precision__", "hddm_a", "resolved", "critical", 20, 5, 40)
(None, 'resolved')
>>> page.episode_start_ms, page.ended_ms, page.agreed
(10, 40, ['__error_rate__', '__precision__'])
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from stream_monitor.core.events import format_event_time
from stream_monitor.core.evidence import performance_evidence
from stream_monitor.core.lifecycle import SEVERITY_RANK, Transition, fingerprint, more_severe
from stream_monitor.core.series import ChannelTrigger, standing_trigger
from stream_monitor.core.spec import ABS_ERROR, COST, ERROR, ERROR_RATE, ESTIMATED_CHANNELS, ESTIMATED_COST, SCORED_CHANNELS, base_channel

PAGE_CHANNEL = "__performance__"
"""The performance page's name in its fingerprint (no channel has this name)."""
MEMBER_CHANNELS = (ERROR, ERROR_RATE, ABS_ERROR, *SCORED_CHANNELS, *ESTIMATED_CHANNELS)
"""The channels whose pages the model's performance page stands for (per-class ones included)."""


def is_member(channel: str) -> bool:
    """Whether ``channel``'s page is part of its model's performance page.

    >>> is_member("__recall__.fraud"), is_member("__error_rate__"), is_member("__label__"), is_member("amount")
    (True, True, False, False)
    """
    return base_channel(channel) in MEMBER_CHANNELS


def page_fingerprint(model: str) -> str:
    """The fingerprint of ``model``'s performance page."""
    return fingerprint(model, PAGE_CHANNEL)


class PerformancePage:
    """The published state of a model's performance page, and its members' pages."""

    __slots__ = ("state", "severity", "lead", "lead_detector", "episode_start_ms", "episode_offset", "ended_ms", "members", "agreed")

    def __init__(self) -> None:
        self.state = "ok"
        self.severity = "warning"
        self.lead = ""  # the lead channel (the alert's feature)
        self.lead_detector = ""  # that channel's lead detector when the page last fired or escalated
        self.episode_start_ms: int | None = None
        self.episode_offset = -1
        self.ended_ms: int | None = None
        self.members: dict[str, str] = {}  # member channel -> its page's severity, for the members whose page fires
        self.agreed: list[str] = []  # every member that fired during the current (or last) episode, in order

    @property
    def firing(self) -> bool:
        """The page is open."""
        return self.state == "firing"

    def take(
        self, channel: str, detector: str, transition: Transition, severity: str, start_ms: int | None, offset: int, ended_ms: int | None
    ) -> Transition | None:
        """Bring the page in line with one transition of a member channel's page; return the page's own."""
        if transition == "resolved":
            self.members.pop(channel, None)
            if self.firing and not self.members:
                self.state, self.ended_ms = "ok", ended_ms
                return "resolved"
            return None
        self.members[channel] = severity
        if not self.firing:
            self.state, self.ended_ms, self.severity = "firing", None, severity
            self.lead, self.lead_detector = channel, detector
            self.episode_start_ms, self.episode_offset = start_ms, offset
            self.agreed = [channel]
            return "firing"
        if channel not in self.agreed:
            self.agreed.append(channel)
        if more_severe(severity, self.severity):
            self.severity, self.lead, self.lead_detector = severity, channel, detector
            return "escalated"
        return None

    def to_state(self) -> dict[str, Any]:
        """The page as plain data (for the model's state item)."""
        return {attr: getattr(self, attr) for attr in self.__slots__ if attr not in ("members", "agreed")} | {
            "members": dict(self.members),
            "agreed": list(self.agreed),
        }

    @classmethod
    def from_state(cls, obj: Any) -> PerformancePage:
        """The page of :meth:`to_state`'s data; ``ValueError`` naming what is wrong otherwise.

        >>> p = PerformancePage(); _ = p.take("__cost__", "cost_increase", "firing", "critical", 5, 1, None)
        >>> PerformancePage.from_state(p.to_state()).to_state() == p.to_state()
        True
        >>> PerformancePage.from_state({"state": "on"})
        Traceback (most recent call last):
        ...
        ValueError: performance page: bad state
        """
        if type(obj) is not dict:
            raise ValueError("performance page: not a map")
        page = cls()
        try:
            state, severity, lead, lead_detector = obj["state"], obj["severity"], obj["lead"], obj["lead_detector"]
            start, offset, ended = obj["episode_start_ms"], obj["episode_offset"], obj["ended_ms"]
            members, agreed = obj["members"], obj["agreed"]
        except KeyError:
            raise ValueError("performance page: bad state") from None
        if state not in ("ok", "firing") or severity not in SEVERITY_RANK or type(lead) is not str or type(lead_detector) is not str:
            raise ValueError("performance page: bad state")
        if type(offset) is not int or any(v is not None and type(v) is not int for v in (start, ended)):
            raise ValueError("performance page: bad episode")
        if type(members) is not dict or any(type(k) is not str or v not in SEVERITY_RANK for k, v in members.items()):
            raise ValueError("performance page: bad members")
        if type(agreed) is not list or any(type(c) is not str for c in agreed):
            raise ValueError("performance page: bad agreed")
        page.state, page.severity, page.lead, page.lead_detector = state, severity, lead, lead_detector
        page.episode_start_ms, page.episode_offset, page.ended_ms = start, offset, ended
        page.members, page.agreed = dict(members), list(agreed)
        return page


def performance_pages(triggers: list[ChannelTrigger], model_of: Callable[[int], Any]) -> list[ChannelTrigger]:
    """``triggers`` (in order) with their member channels' page transitions turned into their models' performance pages'.

    ``model_of(row)`` is the :class:`~stream_monitor.core.model_monitor.ModelMonitor` of the batch's
    row ``row`` (or None). A member's page transition goes to the model's page when the model pages
    per model, or when the channel is a member of the page still open (so a page opened before the
    setting changed still closes); otherwise, and for every other trigger, it stays as it is (an
    episode published on the channel's own fingerprint before closes there).
    """
    out: list[ChannelTrigger] = []
    for t in triggers:
        m = model_of(t.row) if t.grouped and is_member(t.channel) else None
        if m is None:
            out.append(t)
            continue
        page: PerformancePage = m.page
        if not (t.channel in page.members or (m.performance_pages == "model" and t.transition == "firing")):
            out.append(t)
            continue
        transition = page.take(t.channel, t.detector, t.transition, t.severity, t.episode_start_ms, t.episode_offset, t.ended_ms)
        m.dirty = True
        if transition is not None:
            out.append(_page_trigger(page, t, transition, m))
    return out


def _page_trigger(page: PerformancePage, t: ChannelTrigger, transition: Transition, m: Any) -> ChannelTrigger:
    """The page's transition, from the member trigger ``t`` that caused it (its lead's figures when it resolves)."""
    fp = page_fingerprint(m.model)
    lead = m.channels.get(page.lead)
    if transition == "resolved" and (t.channel, t.detector) != (page.lead, page.lead_detector) and lead is not None:
        base = standing_trigger(lead, t.row, page.lead_detector, "resolved", page, fp)  # the label set it last published
    else:
        ended = page.ended_ms if transition == "resolved" else None
        base = dataclasses.replace(
            t, transition=transition, fingerprint=fp, severity=page.severity, episode_start_ms=page.episode_start_ms,
            episode_offset=page.episode_offset, ended_ms=ended,
        )  # fmt: skip
    if base.evidence is None:
        return base
    evidence = dict(base.evidence)
    if transition == "resolved":
        evidence["agreed_channels"] = list(page.agreed)
    else:
        evidence["channels"] = [_member(c, severity, m.channels.get(c)) for c, severity in page.members.items()]
    money = _money(m, base.channel)
    if money is not None:
        evidence["money"] = money
    return dataclasses.replace(base, evidence=evidence)


def _money(m: Any, lead: str) -> dict[str, Any] | None:
    """What the model's decisions cost now against the reference, per 1,000 predictions, when it has a cost model.

    From ``__cost__`` (realised), else ``__estimated_cost__``, over that channel's window; None when neither
    has a reference and values yet, or when the lead is that channel (its own headline says it in money).
    """
    for name in (COST, ESTIMATED_COST):
        ch = m.channels.get(name)
        if ch is None or ch.reference is None or name == lead:
            continue
        values = ch.window_values()
        if not values.size:
            continue
        block = performance_evidence(name, ch.reference, values, ch.settings).get("cost")
        if block is not None:
            return {"channel": name, "reference_kind": ch.reference.kind, **block}
    return None


def _member(channel: str, severity: str, ch: Any) -> dict[str, Any]:
    """A member of an open page as plain data: channel, its page's lead detector, severity, since when."""
    series = getattr(ch, "series", None)
    start = series.episode_start_ms if series is not None else None
    return {
        "channel": channel,
        "detector": series.lead if series is not None else None,
        "severity": severity,
        "since": None if start is None else format_event_time(start),
    }
