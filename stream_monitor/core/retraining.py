"""Retraining triggers: from the alerts a step produced, the models that should be retrained, and why.

Pure and driven by event time. Per model, :class:`RetrainingTrigger` keeps the open episodes that
may ask for retraining: pages of a kind in ``retraining.on_kinds`` (or on a channel in
``on_channels``), which are due at once (``slo_breach``), and data or prediction drift pages, due
``drift_persists_seconds`` after they started (``drift_persisted``). When episodes are due and the
model is not cooling down, one retraining event names them all; each episode triggers at most once,
and the model then cools down for ``cooldown_seconds``. An episode that fell due while the model
cooled down triggers when the cooldown ends, if it is still open by then.

An event's time is the time it fell due (the alert's, the drift start plus the persistence, or the
end of the cooldown), not the time a batch happened to end, and every alert is preceded by the
time passing up to it: the same alerts and row times give the same events whatever the batching.

>>> t = RetrainingTrigger(RetrainingSpec(enabled=True))
>>> t.feed([], {"m": 1_000})
[]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Protocol

import orjson
from pydantic import BaseModel

from stream_monitor.core.events import format_event_time, parse_event_time
from stream_monitor.core.groups import group_of, groups_of, judge_name, model_of
from stream_monitor.core.spec import MonitorSpec, RetrainingSpec
from stream_monitor.core.state import FORMAT_VERSION, StateFormatError, _Fields, _pack, _unpack

SCHEMA_VERSION = 1
DRIFT_KINDS = ("data_drift", "prediction_drift")


class _AlertLike(Protocol):
    event: Any  # an AlertEvent
    event_time_ms: int


class RetrainingSignal(BaseModel):
    """One page that asked for retraining: which alert, on what, since when."""

    alert_id: str
    fingerprint: str
    kind: str
    feature: str
    detector: str
    since: str
    summary: str


class RetrainingWindow(BaseModel):
    """The suggested span of event time to retrain on."""

    start: str
    end: str


class RetrainingEvent(BaseModel):
    """The retraining event contract (published on ``retraining.topic``, keyed by model)."""

    schema_version: int = SCHEMA_VERSION
    retraining_id: str
    model: str
    model_version: str | None
    reason: Literal["slo_breach", "drift_persisted"]
    signals: list[RetrainingSignal]
    since: str
    event_time: str
    suggested_window: RetrainingWindow
    labels: dict[str, str]
    monitor: dict[str, str]


@dataclass(slots=True)
class Episode:
    """An open page that may ask for retraining: ``slo`` pages at once, drift pages after persisting."""

    alert_id: str
    kind: str
    feature: str
    detector: str
    since_ms: int
    summary: str
    slo: bool
    used: bool = False


@dataclass(slots=True)
class ModelTrigger:
    """What one model's trigger remembers: its event time, cooldown, version and open episodes."""

    now_ms: int | None = None
    cooldown_until_ms: int | None = None
    version: str | None = None
    episodes: dict[str, Episode] = field(default_factory=dict)  # by fingerprint


@dataclass(slots=True)
class Retraining:
    """A retraining event ready to publish: Kafka key (the model), JSON bytes and the typed event."""

    model: str
    payload: bytes
    event: RetrainingEvent


def retraining_id(model: str, alert_ids: Iterable[str]) -> str:
    """Deterministic id of the event a model's episodes triggered.

    >>> retraining_id("m", ["b", "a"]) == retraining_id("m", ["a", "b"])
    True
    """
    return hashlib.sha256("|".join([model, *sorted(alert_ids)]).encode()).hexdigest()[:32]


class RetrainingTrigger:
    """The retraining decision of one task's models (see the module docstring)."""

    def __init__(self, spec: MonitorSpec | RetrainingSpec) -> None:
        self.full = spec if isinstance(spec, MonitorSpec) else MonitorSpec(retraining=spec)
        self.spec = self.full.retraining
        self.models: dict[str, ModelTrigger] = {}
        self.dirty = False

    def feed(self, alerts: list[_AlertLike], times: dict[str, int]) -> list[Retraining]:
        """The retraining events of one step's ``alerts`` (in their order), then of time reaching ``times`` (per model)."""
        out: list[Retraining] = []
        for i, alert in enumerate(alerts):
            e, t = alert.event, alert.event_time_ms
            key = self._key(e)
            self._advance(key, t, out)
            self._observe(e, key)
            after = alerts[i + 1] if i + 1 < len(alerts) else None
            m = self.models.get(key)
            if m is not None and (after is None or after.event_time_ms != t or self._key(after.event) != key):
                self._fire(key, m, t, out)  # the alerts of one moment ask together
        for model in sorted(times):
            self._advance(model, times[model], out)
        return out

    def _key(self, e: Any) -> str:
        """Whose trigger an alert feeds: its model's, or for a model judged in groups its channel's group's
        (``judge_name``; fed with that group's times), so ``run`` (a trigger per partition) and
        ``replay`` (one for all) ask for retraining alike."""
        n = groups_of(self.full, e.model)
        return e.model if n == 1 else judge_name(e.model, group_of(e.feature, n), n)

    def _watched(self, e: Any) -> tuple[bool, bool]:
        """(asks at once, asks after persisting) for an alert's page."""
        on = self.spec.on_channels  # a model's performance page also asks for the members it names (core/model_pages.py)
        slo = e.kind in self.spec.on_kinds or e.feature in on or any(c["channel"] in on for c in (e.evidence or {}).get("channels", ()))
        drift = e.kind in DRIFT_KINDS and self.spec.drift_persists_seconds is not None
        return slo, drift

    def _observe(self, e: Any, key: str) -> None:
        slo, drift = self._watched(e)
        if not slo and not drift:
            return
        m = self.models.setdefault(key, ModelTrigger())
        self.dirty = True
        if e.model_version is not None:
            m.version = e.model_version
        if e.status == "resolved":
            m.episodes.pop(e.fingerprint, None)
            return
        known = m.episodes.get(e.fingerprint)
        if known is not None and known.alert_id == e.alert_id:
            return  # the same episode again (escalated): it asks once
        summary = str(e.annotations.get("summary", ""))
        since = parse_event_time(e.starts_at)
        m.episodes[e.fingerprint] = Episode(e.alert_id, e.kind, e.feature, e.detector, since, summary, slo)

    def _advance(self, model: str, t_ms: int, out: list[Retraining]) -> None:
        """Time of ``model`` reaches ``t_ms``: what fell due before it triggers, in order.

        What falls due exactly at ``t_ms`` waits: alerts of that moment may still come and ask with it.
        """
        m = self.models.get(model)
        if m is None or (m.now_ms is not None and t_ms <= m.now_ms):
            return
        while True:
            due = self._next_due(m)
            if due is None or due >= t_ms or not self._fire(model, m, due, out):
                break
        m.now_ms = t_ms
        self.dirty = True

    def _due_at(self, ep: Episode) -> int | None:
        if ep.used:
            return None
        if ep.slo:
            return ep.since_ms
        persist = self.spec.drift_persists_seconds
        return None if persist is None else ep.since_ms + int(persist * 1000)

    def _next_due(self, m: ModelTrigger) -> int | None:
        """When the model next triggers: its earliest due episode, not before the cooldown ends."""
        dues = [d for ep in m.episodes.values() if (d := self._due_at(ep)) is not None]
        if not dues:
            return None
        first = min(dues)
        if m.now_ms is not None:
            first = max(first, m.now_ms)
        if m.cooldown_until_ms is not None:
            first = max(first, m.cooldown_until_ms)
        return first

    def _fire(self, model: str, m: ModelTrigger, t_ms: int, out: list[Retraining]) -> bool:
        """Trigger at ``t_ms`` with every episode due by then, unless none is or the model cools down."""
        if m.cooldown_until_ms is not None and t_ms < m.cooldown_until_ms:
            return False
        due = {fp: ep for fp, ep in m.episodes.items() if (d := self._due_at(ep)) is not None and d <= t_ms}
        if not due:
            return False
        for ep in due.values():
            ep.used = True
        m.cooldown_until_ms = t_ms + int(self.spec.cooldown_seconds * 1000)
        self.dirty = True
        out.append(self._event(model, m, t_ms, due))
        return True

    def _event(self, key: str, m: ModelTrigger, t_ms: int, due: dict[str, Episode]) -> Retraining:
        model = model_of(key)[0]
        order = sorted(due.items(), key=lambda kv: (kv[1].since_ms, kv[0]))
        signals = [
            RetrainingSignal(alert_id=ep.alert_id, fingerprint=fp, kind=ep.kind, feature=ep.feature, detector=ep.detector,
                             since=format_event_time(ep.since_ms), summary=ep.summary)
            for fp, ep in order
        ]  # fmt: skip
        mspec = self.full.models.get(model)
        event = RetrainingEvent(
            retraining_id=retraining_id(model, (ep.alert_id for ep in due.values())),
            model=model,
            model_version=m.version,
            reason="slo_breach" if any(ep.slo for ep in due.values()) else "drift_persisted",
            signals=signals,
            since=format_event_time(min(ep.since_ms for ep in due.values())),
            event_time=format_event_time(t_ms),
            suggested_window=RetrainingWindow(start=format_event_time(t_ms - int(self.spec.window_seconds * 1000)), end=format_event_time(t_ms)),
            labels={**self.full.labels, **(mspec.labels if mspec else {})},
            monitor={"instance": self.full.instance, "version": self.full.version},
        )
        return Retraining(model, orjson.dumps(event.model_dump()), event)


# ------------------------------------------------------------------ state item
def encode_trigger(trigger: RetrainingTrigger) -> bytes:
    """The ``retraining`` state item: per model its event time, cooldown end, version and open episodes."""
    models = {
        name: {
            "now": m.now_ms, "cooldown_until": m.cooldown_until_ms, "version": m.version,
            "episodes": [[fp, ep.alert_id, ep.kind, ep.feature, ep.detector, ep.since_ms, ep.summary, ep.slo, ep.used]
                         for fp, ep in m.episodes.items()],
        }
        for name, m in trigger.models.items()
    }  # fmt: skip
    return _pack({"format": FORMAT_VERSION, "kind": "retraining", "models": models})


_EPISODE_TYPES = (str, str, str, str, str, int, str, bool, bool)


def decode_trigger(blob: bytes) -> dict[str, ModelTrigger]:
    """Decode and check a ``retraining`` item; raise :class:`StateFormatError` if it is not one."""
    models = _unpack(blob, "retraining").get("models")
    if type(models) is not dict:
        raise StateFormatError("retraining item: models is not a map")
    out: dict[str, ModelTrigger] = {}
    for name, obj in models.items():
        f = _Fields(obj, f"retraining item: model {name!r}")
        now, until, version = f.get("now", int, type(None)), f.get("cooldown_until", int, type(None)), f.get("version", str, type(None))
        episodes: dict[str, Episode] = {}
        for row in f.get("episodes", list):
            if type(row) is not list or len(row) != len(_EPISODE_TYPES) or any(type(v) is not t for v, t in zip(row, _EPISODE_TYPES)):
                raise f.fail("episodes", "an episode is not [fingerprint, alert_id, kind, feature, detector, since, summary, slo, used]")
            if row[0] in episodes:
                raise f.fail("episodes", "a fingerprint repeats")
            episodes[row[0]] = Episode(*row[1:])
        out[name] = ModelTrigger(now, until, version, episodes)
    return out
