"""The signal of a reached cap: an alert series per (model, limit) on the reserved channel ``__limits__``.

A hit (a new model, feature or prediction output refused, or pending predictions dropped from the
label join) fires a ``data_quality`` alert through the ordinary :class:`AlertLifecycle`; the
episode resolves once ``quiet_seconds`` of event time have passed without a further hit, and the
resolve alert says how many were ignored. Partition-wide limits (models) use the model name
``*``. Everything is driven by the records' event times, so it is the same on every replay.

>>> from stream_monitor.core.spec import LimitsSpec
>>> guard = LimitGuard(LimitsSpec(channels_per_model=2, quiet_seconds=10), partition=0)
>>> t = guard.hit("m", "channels_per_model", row=0, event_time_ms=1_000, offset=7)
>>> t.transition, limit_texts("m", 0, t, 10)[0]
('firing', 'm: new feature names over the limit of 2 channels per model; new names ignored')
>>> guard.hit("m", "channels_per_model", row=1, event_time_ms=2_000, offset=8) is None
True
>>> [r] = guard.quiet("m", 2, 5_000, 9) + guard.quiet("m", 3, 15_000, 10)
>>> r.transition, limit_texts("m", 0, r, 10)[0]
('resolved', 'resolved: m: 2 new feature names ignored in 1 s (limit: 2 channels per model)')
"""

from __future__ import annotations

from typing import Literal

from stream_monitor.core import detectors as det
from stream_monitor.core.channel import ChannelTrigger
from stream_monitor.core.lifecycle import AlertLifecycle, fingerprint
from stream_monitor.core.settings import LifecycleSettings
from stream_monitor.core.spec import LimitsSpec

LIMITS_CHANNEL = "__limits__"
ALL_MODELS = "*"  # the model name of partition-wide limits

LimitKind = Literal["models", "channels_per_model", "prediction_outputs", "label_join_bytes", "label_join_entries"]
KINDS: tuple[LimitKind, ...] = ("models", "channels_per_model", "prediction_outputs", "label_join_bytes", "label_join_entries")
_CHANNEL_ORDINAL = 1 << 30  # after every real channel of the record
# (what was refused, the cap's unit, what happens to it)
_WORDS: dict[str, tuple[str, str, str]] = {
    "models": ("new model names", "models per partition", "their records are dead letters"),
    "channels_per_model": ("new feature names", "channels per model", "new names ignored"),
    "prediction_outputs": ("new prediction outputs", "prediction outputs per model", "new outputs ignored"),
    "label_join_bytes": ("pending predictions dropped", "bytes of predictions awaiting labels", "their labels will not match"),
    "label_join_entries": ("pending predictions dropped", "predictions awaiting labels", "their labels will not match"),
}


def limit_model(kind: str, record_model: str) -> str:
    """The model an alert of limit ``kind`` is about: ``*`` for partition-wide limits."""
    return ALL_MODELS if kind == "models" else record_model


def limit_texts(model: str, partition: int, t: ChannelTrigger, quiet_seconds: float) -> tuple[str, str]:
    """The (summary, description) of a limit alert; ``window_*`` of the trigger span its hits."""
    kind, count, cap = t.detector, t.window_count, t.reference_count
    refused, unit, fate = _WORDS[kind]
    where = model if model != ALL_MODELS else f"partition {partition}"
    if t.transition == "resolved":
        seconds = ((t.window_end_ms or 0) - (t.window_start_ms or 0)) / 1000.0
        summary = f"resolved: {where}: {count:,} {refused} ignored in {seconds:,.0f} s (limit: {cap:,} {unit})"
        return summary, f"No further {refused} for {quiet_seconds:g} s of event time."
    summary = f"{where}: {refused} over the limit of {cap:,} {unit}; {fate}"
    setting = "label_join_max_pending" if kind == "label_join_entries" else f"limits.{kind}"
    description = f"{where} reached its limit of {cap:,} {unit} ({setting}); {fate}."
    if not kind.startswith("label_join"):
        description += " Each affected record is a dead letter with reason limit_exceeded."
    return summary, description


class LimitGuard:
    """The alert lifecycles of the caps of one partition, and their counts."""

    def __init__(self, limits: LimitsSpec, partition: int, max_pending: int = 100_000) -> None:
        self.limits = limits
        self.max_pending = max_pending  # label_join_max_pending, the cap of label_join_entries
        self.partition = partition
        self.settings = LifecycleSettings(
            min_consecutive=1, resolve_after=1, resolve_after_seconds=limits.quiet_seconds, cooldown_seconds=0, escalate=False
        )
        self.open: dict[str, set[str]] = {}  # model -> limits with a firing episode (checked per record)
        self._life: dict[tuple[str, str], AlertLifecycle] = {}
        self._hits: dict[tuple[str, str], list[int]] = {}  # [count, first hit ms, last hit ms] of the episode

    def cap(self, kind: str) -> int:
        """The configured cap of a limit."""
        return self.max_pending if kind == "label_join_entries" else getattr(self.limits, kind)

    def hit(self, model: str, kind: LimitKind, row: int, event_time_ms: int, offset: int, n: int = 1) -> ChannelTrigger | None:
        """Count ``n`` values refused by limit ``kind`` at a record; the firing transition, if this starts an episode."""
        key = (model, kind)
        life = self._life.get(key)
        if life is None:
            life = self._life[key] = AlertLifecycle(self.settings)
        hits = self._hits.get(key)
        if hits is None or not life.firing:
            hits = self._hits[key] = [0, event_time_ms, event_time_ms]
        hits[0] += n
        hits[2] = event_time_ms
        transition = life.observe(True, event_time_ms, "warning", offset, float(hits[0]))
        if transition is None:
            return None
        self.open.setdefault(model, set()).add(kind)
        return self._trigger(key, life, transition, row)

    def quiet(self, model: str, row: int, event_time_ms: int, offset: int, skip: set[str] | frozenset[str] = frozenset()) -> list[ChannelTrigger]:
        """A record of ``model`` without a hit of the open limits (but those in ``skip``): the resolve transitions it causes."""
        kinds = self.open.get(model)
        if not kinds:
            return []
        out: list[ChannelTrigger] = []
        for kind in sorted(kinds - skip, key=KINDS.index):  # type: ignore[arg-type]
            life = self._life[(model, kind)]
            if life.observe(False, event_time_ms, "warning", offset) == "resolved":
                out.append(self._trigger((model, kind), life, "resolved", row))
        for t in out:
            kinds.discard(t.detector)
        if not kinds:
            del self.open[model]
        return out

    def _trigger(self, key: tuple[str, str], life: AlertLifecycle, transition: str, row: int) -> ChannelTrigger:
        model, kind = key
        count, first_ms, last_ms = self._hits[key]
        cap = self.cap(kind)
        return ChannelTrigger(
            row=row,
            channel_ordinal=_CHANNEL_ORDINAL,
            detector_ordinal=KINDS.index(kind),  # type: ignore[arg-type]
            channel=LIMITS_CHANNEL,
            detector=kind,
            transition=transition,  # type: ignore[arg-type]
            evaluation=det.Evaluation(float(count), float(cap), None, transition != "resolved", "warning"),
            severity="warning",
            episode_start_ms=life.episode_start_ms,
            episode_offset=life.episode_offset,
            ended_ms=life.ended_ms,
            fingerprint=fingerprint(model, LIMITS_CHANNEL, kind),
            window_start_ms=first_ms,
            window_end_ms=last_ms,
            window_count=count,
            reference_kind="baseline",
            reference_count=cap,
            quality=True,
        )
