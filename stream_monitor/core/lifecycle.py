"""The alert lifecycle: ok → firing → resolved, in event time, deduplicated by fingerprint.

One :class:`AlertLifecycle` per (model, channel, detector). It turns a detector's
evaluations into at most one open episode: repeated breaches inside an episode emit nothing
(dedup), a breach must repeat ``min_consecutive`` times before firing (minimum evidence), an
episode resolves after ``resolve_after`` clear evaluations spanning ``resolve_after_seconds`` of
event time, and a resolved fingerprint stays quiet for ``cooldown_seconds``.

>>> from stream_monitor.core.settings import LifecycleSettings
>>> life = AlertLifecycle(LifecycleSettings(min_consecutive=2, resolve_after=2, cooldown_seconds=0))
>>> [life.observe(b, t, "warning") for b, t in [(True, 1), (True, 2), (True, 3), (False, 4), (False, 5)]]
[None, 'firing', None, None, 'resolved']
>>> life.episode_start_ms, life.ended_ms
(2, 5)
"""

from __future__ import annotations

import hashlib
from typing import Literal

from stream_monitor.core.settings import LifecycleSettings, Severity

Transition = Literal["firing", "escalated", "resolved"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}
"""Severities from least to most severe; unknown severities rank below ``info`` in :func:`more_severe`."""


def more_severe(a: str, b: str) -> bool:
    """Whether severity ``a`` ranks above severity ``b``.

    >>> more_severe("warning", "info"), more_severe("warning", "warning")
    (True, False)
    """
    return SEVERITY_RANK.get(a, -1) > SEVERITY_RANK.get(b, -1)


def fingerprint(model: str, channel: str, detector: str | None = None) -> str:
    """Stable identity of an alert series: same on every run and replay of the same input.

    A channel's series (every detector of the channel on one page) is (model, channel); a
    detector-level series (``alerting.group_by: detector``) is (model, channel, detector).

    >>> fingerprint("fraud-v3", "amount"), fingerprint("fraud-v3", "amount", "psi")
    ('3d8bec3b461c3d10', '8cb3ad2802c5078b')
    """
    parts = (model, channel) if detector is None else (model, channel, detector)
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def alert_id(fingerprint_: str, starts_at_ms: int, offset: int) -> str:
    """Deterministic id of one firing episode."""
    return hashlib.sha256(f"{fingerprint_}|{starts_at_ms}|{offset}".encode()).hexdigest()[:32]


class AlertLifecycle:
    """State machine for one fingerprint. Pure: driven by event times, never by the wall clock."""

    __slots__ = (
        "settings",
        "state",
        "consecutive_breaches",
        "consecutive_clear",
        "clear_since_ms",
        "cooldown_until_ms",
        "episode_start_ms",
        "episode_offset",
        "severity",
        "ended_ms",
        "peak_statistic",
        "last_statistic",
        "last_threshold",
        "last_p_value",
        "paged",
    )

    def __init__(self, settings: LifecycleSettings) -> None:
        self.settings = settings
        self.state: Literal["ok", "firing"] = "ok"
        self.consecutive_breaches = 0
        self.consecutive_clear = 0
        self.clear_since_ms: int | None = None
        self.cooldown_until_ms: int | None = None
        self.episode_start_ms: int | None = None
        self.episode_offset: int = -1
        self.severity: Severity = "warning"
        self.ended_ms: int | None = None
        self.peak_statistic: float | None = None
        # the latest evaluation's figures (a channel's page lists them for every agreeing detector)
        self.last_statistic: float | None = None
        self.last_threshold: float | None = None
        self.last_p_value: float | None = None
        # this episode was published on its own (detector-level) fingerprint, so its resolve is too
        self.paged = False

    @property
    def firing(self) -> bool:
        """An episode is open."""
        return self.state == "firing"

    def observe(
        self,
        breached: bool,
        event_time_ms: int,
        severity: Severity,
        offset: int = -1,
        statistic: float | None = None,
        threshold: float | None = None,
        p_value: float | None = None,
    ) -> Transition | None:
        """Feed one evaluation; return the transition it causes, if any."""
        s = self.settings
        self.last_statistic, self.last_threshold, self.last_p_value = statistic, threshold, p_value
        if self.state == "ok":
            if not breached:
                self.consecutive_breaches = 0
                return None
            self.consecutive_breaches += 1
            if self.consecutive_breaches < s.min_consecutive:
                return None
            if self.cooldown_until_ms is not None and event_time_ms < self.cooldown_until_ms:
                return None
            self.state = "firing"
            self.consecutive_breaches = 0
            self.consecutive_clear = 0
            self.clear_since_ms = None
            self.episode_start_ms = event_time_ms
            self.episode_offset = offset
            self.severity = severity
            self.ended_ms = None
            self.peak_statistic = statistic
            return "firing"
        # firing
        if breached:
            self.consecutive_clear = 0
            self.clear_since_ms = None
            if statistic is not None and (self.peak_statistic is None or statistic > self.peak_statistic):
                self.peak_statistic = statistic
            if s.escalate and more_severe(severity, self.severity):
                self.severity = severity
                return "escalated"
            return None
        self.consecutive_clear += 1
        if self.clear_since_ms is None:
            self.clear_since_ms = event_time_ms
        if self.consecutive_clear < s.resolve_after:
            return None
        if (event_time_ms - self.clear_since_ms) < s.resolve_after_seconds * 1000.0:
            return None
        self.state = "ok"
        self.consecutive_clear = 0
        self.clear_since_ms = None
        self.ended_ms = event_time_ms
        self.cooldown_until_ms = event_time_ms + int(s.cooldown_seconds * 1000)
        return "resolved"
