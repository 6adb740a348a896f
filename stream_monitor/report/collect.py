"""Collecting a replay's evaluations and alerts into the data a report is drawn from.

Evaluations are downsampled as they arrive: each series keeps the minimum and maximum of buckets
of consecutive evaluations, at most ``max_points`` buckets, so spikes survive and memory stays
bounded however long the replay. Nothing here reads the wall clock.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from stream_monitor.core import events as ev
from stream_monitor.core import evidence as evi
from stream_monitor.core.alert import AlertEvent
from stream_monitor.core.estimate import realised_channel
from stream_monitor.core.lifecycle import SEVERITY_RANK
from stream_monitor.core.channel import EvaluationRecord
from stream_monitor.core.monitor import PartitionMonitor
from stream_monitor.core.versions import VersionSwitch

MAX_ALERT_ROWS = 300

SeriesKey = tuple[str, str, str, int]  # model, channel, detector, partition

# ------------------------------------------------------------------------------- collection
class Downsampler:
    """Min/max of buckets of ``k`` consecutive values; ``k`` doubles when buckets exceed ``cap``.

    >>> d = Downsampler(cap=4)
    >>> for t in range(100): d.add(t, float(t % 10))
    >>> len(d.points()) <= 2 * 4 + 2, d.count
    (True, 100)
    """

    __slots__ = ("cap", "k", "buckets", "current", "count", "valued", "breaches", "threshold")

    def __init__(self, cap: int = 300) -> None:
        self.cap = max(2, cap)
        self.k = 1
        self.buckets: list[list[Any]] = []  # [n, t_min, v_min, t_max, v_max]
        self.current: list[Any] | None = None
        self.count = 0
        self.valued = 0
        self.breaches = 0
        self.threshold: float | None = None

    def add(self, t: int, value: float | None, threshold: float | None = None, breached: bool = False) -> None:
        """Add one evaluation (time, statistic, threshold, breached)."""
        self.count += 1
        self.breaches += breached
        if threshold is not None and math.isfinite(threshold):
            self.threshold = threshold
        if value is None or not math.isfinite(value):
            return
        self.valued += 1
        cur = self.current
        if cur is None:
            self.current = [1, t, value, t, value]
        else:
            cur[0] += 1
            if value < cur[2]:
                cur[1], cur[2] = t, value
            if value > cur[4]:
                cur[3], cur[4] = t, value
        if self.current[0] >= self.k:  # type: ignore[index]
            self.buckets.append(self.current)  # type: ignore[arg-type]
            self.current = None
            if len(self.buckets) > self.cap:
                self._halve()

    def _halve(self) -> None:
        merged: list[list[Any]] = []
        for i in range(0, len(self.buckets), 2):
            pair = self.buckets[i : i + 2]
            lo = min(pair, key=lambda b: b[2])
            hi = max(pair, key=lambda b: b[4])
            merged.append([sum(b[0] for b in pair), lo[1], lo[2], hi[3], hi[4]])
        self.buckets = merged
        self.k *= 2

    def points(self) -> list[tuple[int, float]]:
        """The kept points in time order (per bucket its minimum and maximum)."""
        out: list[tuple[int, float]] = []
        buckets = self.buckets + ([self.current] if self.current is not None else [])
        for _, t_lo, v_lo, t_hi, v_hi in buckets:
            pair = sorted({(t_lo, v_lo), (t_hi, v_hi)})
            out.extend(pair)
        return out


@dataclass(slots=True)
class Episode:
    """One firing episode of one fingerprint: start, end (None while firing) and severity changes.

    ``detector`` is the page's lead; ``members`` every detector that agreed on a channel's page
    (from the evidence of its firing and escalated events).
    """

    model: str
    channel: str
    detector: str
    partition: int
    alert_id: str
    kind: str
    start_ms: int
    end_ms: int | None = None
    segments: list[tuple[int, str]] = field(default_factory=list)  # (from time, severity)
    peak: float | None = None
    threshold: float | None = None
    members: list[str] = field(default_factory=list)

    @property
    def detectors(self) -> list[str]:
        """The lead, then the other detectors that agreed."""
        return list(dict.fromkeys([self.detector, *self.members]))

    @property
    def severity(self) -> str:
        """The highest severity the episode reached."""
        return max((s for _, s in self.segments), key=lambda s: SEVERITY_RANK.get(s, 0), default="warning")


@dataclass(frozen=True, slots=True)
class ReportMeta:
    """Facts about the replay shown in the report header."""

    source: str
    instance: str = ""
    version: str = ""
    from_ms: int | None = None
    to_ms: int | None = None
    records_read: int = 0
    records_processed: int = 0
    invalid_by_reason: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Series:
    """One detector's downsampled statistic on one channel and partition."""

    partition: int
    points: list[tuple[int, float]]
    threshold: float | None
    evaluations: int
    breaches: int


@dataclass(slots=True)
class Panel:
    """One alerting (model, channel, detector): its series per partition and its episodes."""

    model: str
    channel: str
    detector: str
    kind: str
    series: list[Series]
    episodes: list[Episode]
    reference: str
    fired: int
    resolved: int
    first_ms: int
    realised: list[Series] = field(default_factory=list)  # an estimate's panel: the realised metric's same detector

    @property
    def slug(self) -> str:
        """A file-name-safe name of the panel."""
        return "--".join(file_slug(part) for part in (self.model, self.channel, self.detector))


@dataclass(slots=True)
class ChannelRow:
    """One row of a model's channel table."""

    model: str
    channel: str
    channel_type: str
    detectors: list[str]
    alerted_detectors: list[str]
    reference: str
    observations: int
    partitions: list[int]
    fired: int = 0
    resolved: int = 0
    firing_ms: int = 0
    first_ms: int | None = None
    kinds: list[str] = field(default_factory=list)
    severity: str | None = None
    open_at_end: bool = False


@dataclass(slots=True)
class Distribution:
    """An alerting channel's reference vs current distribution when it first fired (the alert's evidence)."""

    model: str
    channel: str
    detector: str
    partition: int
    event_time_ms: int
    evidence: dict[str, Any]


@dataclass(frozen=True, slots=True)
class VersionMark:
    """Where a model's version changed: the event time of the new version's first row, the version before and the new one."""

    event_time_ms: int
    previous: str
    version: str


@dataclass(slots=True)
class ModelReport:
    """Everything the report shows for one model."""

    name: str
    channels: list[ChannelRow]
    panels: list[Panel]
    episodes: list[Episode]
    fired: int
    resolved: int
    distributions: list[Distribution] = field(default_factory=list)
    versions: list[VersionMark] = field(default_factory=list)  # version changes, in event-time order

    @property
    def slug(self) -> str:
        """A file-name-safe name of the model."""
        return file_slug(self.name)


@dataclass(slots=True)
class ReportData:
    """Everything the renderers need; ``to_summary`` is the JSON form (summary.json)."""

    meta: ReportMeta
    start_ms: int | None
    end_ms: int | None
    models: list[ModelReport]
    alerts: list[dict[str, Any]]
    alerts_total: int

    def to_summary(self) -> dict[str, Any]:
        """The report as plain data for ``summary.json``."""
        def t(ms: int | None) -> str | None:
            return None if ms is None else ev.format_event_time(ms)

        m = self.meta
        return {
            "source": m.source,
            "monitor": {"instance": m.instance, "version": m.version},
            "range": {"from": t(m.from_ms), "to": t(m.to_ms)},
            "event_time": {"first": t(self.start_ms), "last": t(self.end_ms)},
            "records": {"read": m.records_read, "monitored": m.records_processed, "invalid_by_reason": m.invalid_by_reason},
            "alert_events": self.alerts_total,
            "models": [
                {
                    "model": mr.name,
                    "alerts_fired": mr.fired,
                    "alerts_resolved": mr.resolved,
                    "channels": [
                        {
                            "channel": c.channel,
                            "type": c.channel_type,
                            "detectors": c.detectors,
                            "alerted_detectors": c.alerted_detectors,
                            "reference": c.reference,
                            "observations": c.observations,
                            "partitions": c.partitions,
                            "alerts_fired": c.fired,
                            "alerts_resolved": c.resolved,
                            "firing_seconds": round(c.firing_ms / 1000.0, 3),
                            "first_alert": t(c.first_ms),
                            "firing_at_end": c.open_at_end,
                        }
                        for c in mr.channels
                    ],
                    "episodes": [
                        {
                            "channel": e.channel,
                            "detector": e.detector,
                            "detectors": e.detectors,
                            "partition": e.partition,
                            "kind": e.kind,
                            "alert_id": e.alert_id,
                            "severity": e.severity,
                            "starts_at": t(e.start_ms),
                            "ends_at": t(e.end_ms),
                            "peak_statistic": e.peak,
                            "threshold": e.threshold,
                        }
                        for e in mr.episodes
                    ],
                    "plots": [f"{p.slug}.svg" for p in mr.panels],
                    "version_changes": [{"event_time": t(v.event_time_ms), "from": v.previous, "to": v.version} for v in mr.versions],
                }
                for mr in self.models
            ],
        }


class ReportCollector:
    """Collects what a report needs while a replay runs: downsampled evaluations and episodes.

    Feed it per partition in processing order (:meth:`add_evaluations`, :meth:`add_alert`);
    :meth:`build` turns it into :class:`ReportData` with the monitors' channel details.
    """

    def __init__(self, max_points: int = 300) -> None:
        self.max_points = max_points
        self.series: dict[SeriesKey, Downsampler] = {}
        self.episodes: list[Episode] = []
        self._open: dict[SeriesKey, Episode] = {}
        self.references: dict[tuple[str, str, str], set[tuple[str, int]]] = defaultdict(set)
        self.counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self._alert_heap: list[tuple[tuple[int, ...], dict[str, Any]]] = []
        self.alerts_total = 0
        self._seq: dict[int, int] = defaultdict(int)
        self.distributions: dict[tuple[str, str], Distribution] = {}
        self.versions: dict[str, list[VersionMark]] = defaultdict(list)

    def observe_time(self, t: int) -> None:
        """Widen the report's time span to include ``t``."""
        if self.first_ms is None or t < self.first_ms:
            self.first_ms = t
        if self.last_ms is None or t > self.last_ms:
            self.last_ms = t

    def add_evaluations(self, partition: int, evaluations: Iterable[EvaluationRecord]) -> None:
        """Add a batch of detector evaluations of one partition."""
        series = self.series
        for e in evaluations:
            key = (e.model, e.channel, e.detector, partition)
            d = series.get(key)
            if d is None:
                d = series[key] = Downsampler(self.max_points)
            d.add(e.event_time_ms, e.statistic, e.threshold, e.breached)

    def add_version_switches(self, switches: Iterable[VersionSwitch]) -> None:
        """Add model version switches (a model's first version, which changes nothing shown, is left out)."""
        for s in switches:
            mark = VersionMark(s.event_time_ms, s.previous, s.version) if s.previous is not None else None
            if mark is not None and mark not in self.versions[s.model]:  # each judging group of a model switches too
                self.versions[s.model].append(mark)
                self.observe_time(s.event_time_ms)

    def add_alert(self, partition: int, a: AlertEvent) -> None:
        """Add one alert event of one partition."""
        key: SeriesKey = (a.model, a.feature, a.detector, partition)
        t = ev.parse_event_time(a.event_time)
        start = ev.parse_event_time(a.starts_at)
        self.observe_time(t)
        self.references[key[:3]].add((a.reference.kind, a.reference.count))
        self.alerts_total += 1
        seq = self._seq[partition]
        self._seq[partition] = seq + 1
        row: dict[str, Any] = {k: getattr(a, k) for k in ("event_time", "status", "escalated", "severity", "kind", "model", "feature", "detector", "statistic", "threshold")}
        row["partition"] = partition
        row["moved"] = " — ".join(p for p in evi.headline(a.evidence, a.status == "firing", a.feature) if p) if a.evidence else ""
        sort_key = (t, partition, a.source.offset, seq)
        item = (tuple(-x for x in sort_key), row)  # max-heap of the earliest MAX_ALERT_ROWS alerts
        if len(self._alert_heap) < MAX_ALERT_ROWS:
            heapq.heappush(self._alert_heap, item)
        elif item[0] > self._alert_heap[0][0]:
            heapq.heapreplace(self._alert_heap, item)
        self._keep_distribution(partition, a, t)
        open_ep = self._open.get(key)
        counts = self.counts[key[:3]]
        if a.status == "resolved":
            counts[1] += 1
            end = ev.parse_event_time(a.ends_at) if a.ends_at else t
            if open_ep is None:  # episode opened before this replay (--state-from)
                open_ep = self._new_episode(key, a, start)
            open_ep.end_ms = end
            self._members(open_ep, a)
            self._open.pop(key, None)
            return
        if open_ep is not None and (a.escalated or open_ep.alert_id == a.alert_id):
            open_ep.segments.append((t, a.severity))
        else:
            counts[0] += 1
            open_ep = self._open[key] = self._new_episode(key, a, start)
        if a.statistic is not None and (open_ep.peak is None or a.statistic > open_ep.peak):
            open_ep.peak = a.statistic
        self._members(open_ep, a)

    @staticmethod
    def _members(open_ep: Episode, a: AlertEvent) -> None:
        """Add the detectors a channel's page names (agreeing now, or during the episode) to its episode."""
        e = a.evidence or {}
        for name in [d.get("name") for d in e.get("detectors") or []] + list(e.get("agreed") or []):
            if isinstance(name, str) and name not in open_ep.members:
                open_ep.members.append(name)

    def _keep_distribution(self, partition: int, a: AlertEvent, t: int) -> None:
        """Keep a channel's first firing evidence, preferring a whole window's over a change point's."""
        e = a.evidence
        if a.status != "firing" or not e:
            return
        kept = self.distributions.get((a.model, a.feature))
        if kept is None or (kept.evidence.get("basis") != "window" and e.get("basis") == "window"):
            self.distributions[(a.model, a.feature)] = Distribution(a.model, a.feature, a.detector, partition, t, e)

    def _new_episode(self, key: SeriesKey, a: AlertEvent, start: int) -> Episode:
        ep = Episode(
            key[0], key[1], key[2], key[3], a.alert_id, a.kind, start,
            segments=[(start, a.severity)], peak=a.statistic, threshold=a.threshold,
        )  # fmt: skip
        self.episodes.append(ep)
        return ep

    # ----------------------------------------------------------------- build
    def _series_of(self, model: str, channel: str, detector: str) -> list[Series]:
        """The downsampled series of one (model, channel, detector), by partition."""
        return [Series(k[3], d.points(), d.threshold, d.count, d.breaches) for k, d in sorted(self.series.items()) if k[:3] == (model, channel, detector)]

    def build(self, monitors: dict[int, PartitionMonitor], meta: ReportMeta) -> ReportData:
        """Assemble the report from the collected data and the monitors' channels."""
        start, end = self.first_ms, self.last_ms
        for d in self.series.values():
            for t, _ in d.points():
                start = t if start is None or t < start else start
                end = t if end is None or t > end else end
        rows: dict[tuple[str, str], ChannelRow] = {}
        refs: dict[tuple[str, str], set[tuple[str, int]]] = defaultdict(set)
        for p in sorted(monitors):
            for mm in monitors[p].models.values():
                model_name = mm.model  # a judging group's monitor judges channels of its model
                for ch_name, ch in mm.channels.items():
                    row = rows.get((model_name, ch_name))
                    if row is None:
                        row = rows[(model_name, ch_name)] = ChannelRow(
                            model_name, ch_name, ch.channel_type, list(ch.detector_names), [], "", 0, []
                        )
                    row.observations += ch.observations
                    row.partitions.append(p)
                    if ch.reference is not None:
                        refs[(model_name, ch_name)].add((ch.reference.kind, ch.reference.count))
        for (model_name, ch_name), row in rows.items():
            row.reference = _reference_text(refs.get((model_name, ch_name), set()), row.observations)
        # episodes → per channel
        episodes_by_model: dict[str, list[Episode]] = defaultdict(list)
        for e in self.episodes:
            episodes_by_model[e.model].append(e)
            row = rows.get((e.model, e.channel))
            if row is None:  # alert from a channel no monitor knows (e.g. state dropped): still show it
                row = rows[(e.model, e.channel)] = ChannelRow(e.model, e.channel, "?", [], [], "", 0, [])
            for d in e.detectors:
                if d not in row.alerted_detectors:
                    row.alerted_detectors.append(d)
            if e.kind not in row.kinds:
                row.kinds.append(e.kind)
            row.first_ms = e.start_ms if row.first_ms is None else min(row.first_ms, e.start_ms)
            if row.severity is None or SEVERITY_RANK[e.severity] > SEVERITY_RANK[row.severity]:
                row.severity = e.severity
            row.open_at_end = row.open_at_end or e.end_ms is None
        for (model_name, ch_name, detector), (fired, resolved) in self.counts.items():
            row = rows.get((model_name, ch_name))
            if row is not None:
                row.fired += fired
                row.resolved += resolved
        for (model_name, ch_name), row in rows.items():
            spans = [(max(e.start_ms, start or e.start_ms), e.end_ms if e.end_ms is not None else (end or e.start_ms))
                     for e in episodes_by_model.get(model_name, []) if e.channel == ch_name]  # fmt: skip
            row.firing_ms = _union_length(spans)
        # panels: every alerting (model, channel, detector), a page's lead or one that agreed with it
        panels_by_model: dict[str, list[Panel]] = defaultdict(list)
        panel_keys = sorted({(e.model, e.channel, d) for e in self.episodes for d in e.detectors})
        for model_name, ch_name, detector in panel_keys:
            eps = [e for e in episodes_by_model[model_name] if e.channel == ch_name and detector in e.detectors]
            series = self._series_of(model_name, ch_name, detector)
            fired, resolved = self.counts.get((model_name, ch_name, detector)) or [len(eps), sum(e.end_ms is not None for e in eps)]
            ref_text = _reference_text(self.references.get((model_name, ch_name, detector), set()), None)
            realised_name = realised_channel(ch_name)  # an estimate channel's panel draws the realised metric too
            realised = self._series_of(model_name, realised_name, detector) if realised_name is not None else []
            panels_by_model[model_name].append(
                Panel(model_name, ch_name, detector, eps[0].kind, series, eps, ref_text, fired, resolved, min(e.start_ms for e in eps), realised)
            )
        models: list[ModelReport] = []
        for name in sorted({m for m, _ in rows} | set(episodes_by_model) | {m for m, v in self.versions.items() if v}):
            chans = [r for (m, _), r in rows.items() if m == name]
            chans.sort(key=lambda r: (r.first_ms is None, r.first_ms or 0, r.channel))
            panels = sorted(panels_by_model.get(name, []), key=lambda p: (p.first_ms, p.channel, p.detector))
            eps = sorted(episodes_by_model.get(name, []), key=lambda e: (e.start_ms, e.channel, e.detector, e.partition))
            fired = sum(r.fired for r in chans)
            resolved = sum(r.resolved for r in chans)
            dists = sorted((d for (m, _), d in self.distributions.items() if m == name), key=lambda d: (d.event_time_ms, d.channel))
            marks = sorted(set(self.versions.get(name, ())), key=lambda v: (v.event_time_ms, v.previous, v.version))
            models.append(ModelReport(name, chans, panels, eps, fired, resolved, dists, marks))
        models.sort(key=lambda m: (not m.episodes, min((e.start_ms for e in m.episodes), default=0), m.name))
        alerts = [row for _, row in sorted(self._alert_heap, key=lambda kv: tuple(-x for x in kv[0]))]
        return ReportData(meta, start, end, models, alerts, self.alerts_total)


def _reference_text(refs: set[tuple[str, int]], observations: int | None) -> str:
    if not refs:
        return "warming up" if observations is not None else "-"
    kinds = sorted({k for k, _ in refs})
    counts = sorted({c for _, c in refs})
    count = f"{counts[0]:,}" if len(counts) == 1 else f"{counts[0]:,}–{counts[-1]:,}"
    return f"{'/'.join(kinds)}, {count} obs"


def _union_length(spans: Sequence[tuple[int, int]]) -> int:
    total = 0
    cur_start: int | None = None
    cur_end = 0
    for s, e in sorted(spans):
        if e <= s:
            continue
        if cur_start is None or s > cur_end:
            if cur_start is not None:
                total += cur_end - cur_start
            cur_start, cur_end = s, e
        else:
            cur_end = max(cur_end, e)
    if cur_start is not None:
        total += cur_end - cur_start
    return total


def file_slug(text: str) -> str:
    """``text`` as a file name part: itself when already safe, else a cleaned form plus a hash of ``text``.

    Safe means ASCII letters, digits, ``.``, ``_`` and single ``-`` between them, at most 100
    characters. A cleaned form never holds ``-`` except before the hash, so two different names
    never share a slug and ``--`` can join slugs without ambiguity.

    >>> file_slug("fraud-v3"), file_slug("team/a"), file_slug("team:a")
    ('fraud-v3', 'team_a-65f838a2', 'team_a-5752fdde')
    """
    if len(text) <= 100 and _SAFE_NAME.fullmatch(text):
        return text
    cleaned = re.sub(r"[^A-Za-z0-9._]+", "_", text).strip("_")[:100] or "x"
    return f"{cleaned}-{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


_SAFE_NAME = re.compile(r"[A-Za-z0-9._]+(?:-[A-Za-z0-9._]+)*")
