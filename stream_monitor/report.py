"""Replay reports: a self-contained HTML page (inline CSS and SVG, no network) and SVG/JSON files.

The page answers "what drifted, and when" first: a sentence per model, then per model a timeline
of firing episodes (one row per channel and detector, shaded by severity), a table of every
channel (type, reference, detectors, alerts fired/resolved, time firing), and for each detector
that alerted, its statistic over event time against the threshold with the firing spans shaded.

Plots are plain SVG written here (no plotting dependency, crisp at any zoom, a few kB each).
Evaluations are downsampled as they arrive: each series keeps the minimum and maximum of buckets
of consecutive evaluations, at most ``max_points`` buckets, so spikes survive and memory stays
bounded however long the replay. Nothing here reads the wall clock, so the same replay gives the
same report.

>>> from stream_monitor.core.channel import EvaluationRecord
>>> c = ReportCollector(max_points=4)
>>> c.add_evaluations(0, [EvaluationRecord("m", "x", "psi", t, t / 10, 0.5, t > 5) for t in range(10)])
>>> c.add_alert(0, {"alert_id": "a1", "status": "firing", "escalated": False, "severity": "warning", "kind": "data_drift",
...     "model": "m", "feature": "x", "detector": "psi", "statistic": 0.6, "threshold": 0.5,
...     "event_time": "1970-01-01T00:00:00.006Z", "starts_at": "1970-01-01T00:00:00.006Z", "ends_at": None,
...     "reference": {"kind": "warmup", "count": 100}, "source": {"offset": 6}})
>>> data = c.build({}, ReportMeta(source="doc"))
>>> [(p.model, p.channel, p.detector, len(p.episodes)) for m in data.models for p in m.panels]
[('m', 'x', 'psi', 1)]
>>> "<svg" in render_html(data)
True
"""

from __future__ import annotations

import heapq
import html
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import orjson

from stream_monitor.core import events as ev
from stream_monitor.core.channel import EvaluationRecord
from stream_monitor.core.monitor import PartitionMonitor

SEVERITY_COLORS = {"info": "#3b82c4", "warning": "#f0a020", "critical": "#d62728"}
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
SERIES_COLORS = ("#1f4e8c", "#2a9d8f", "#7b4fa8", "#8c564b", "#e76f51", "#5f6b7a")
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
MAX_ALERT_ROWS = 300
CHANGE_POINT_DETECTORS = frozenset({"adwin", "page_hinkley"})

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
    """One firing episode of one fingerprint: start, end (None while firing) and severity changes."""

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

    @property
    def severity(self) -> str:
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

    @property
    def slug(self) -> str:
        return _slug(f"{self.model}--{self.channel}--{self.detector}")


@dataclass(slots=True)
class ChannelRow:
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
class ModelReport:
    name: str
    channels: list[ChannelRow]
    panels: list[Panel]
    episodes: list[Episode]
    fired: int
    resolved: int

    @property
    def slug(self) -> str:
        return _slug(self.name)


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

    def observe_time(self, t: int) -> None:
        if self.first_ms is None or t < self.first_ms:
            self.first_ms = t
        if self.last_ms is None or t > self.last_ms:
            self.last_ms = t

    def add_evaluations(self, partition: int, evaluations: Iterable[EvaluationRecord]) -> None:
        series = self.series
        for e in evaluations:
            key = (e.model, e.channel, e.detector, partition)
            d = series.get(key)
            if d is None:
                d = series[key] = Downsampler(self.max_points)
            d.add(e.event_time_ms, e.statistic, e.threshold, e.breached)

    def add_alert(self, partition: int, f: dict[str, Any]) -> None:
        key: SeriesKey = (f["model"], f["feature"], f["detector"], partition)
        t = ev.parse_event_time(f["event_time"])
        start = ev.parse_event_time(f["starts_at"])
        self.observe_time(t)
        ref = f.get("reference") or {}
        self.references[key[:3]].add((str(ref.get("kind", "?")), int(ref.get("count", 0) or 0)))
        self.alerts_total += 1
        seq = self._seq[partition]
        self._seq[partition] = seq + 1
        row = {k: f.get(k) for k in ("event_time", "status", "escalated", "severity", "kind", "model", "feature", "detector", "statistic", "threshold")}
        row["partition"] = partition
        sort_key = (t, partition, int((f.get("source") or {}).get("offset", 0)), seq)
        item = (tuple(-x for x in sort_key), row)  # max-heap of the earliest MAX_ALERT_ROWS alerts
        if len(self._alert_heap) < MAX_ALERT_ROWS:
            heapq.heappush(self._alert_heap, item)
        elif item[0] > self._alert_heap[0][0]:
            heapq.heapreplace(self._alert_heap, item)
        stat = f.get("statistic")
        open_ep = self._open.get(key)
        counts = self.counts[key[:3]]
        if f["status"] == "resolved":
            counts[1] += 1
            ends = f.get("ends_at")
            end = ev.parse_event_time(ends) if ends else t
            if open_ep is None:  # episode opened before this replay (--state-from)
                open_ep = self._new_episode(key, f, start)
            open_ep.end_ms = end
            self._open.pop(key, None)
            return
        if open_ep is not None and (f.get("escalated") or open_ep.alert_id == f["alert_id"]):
            open_ep.segments.append((t, f["severity"]))
        else:
            counts[0] += 1
            open_ep = self._open[key] = self._new_episode(key, f, start)
        if stat is not None and (open_ep.peak is None or stat > open_ep.peak):
            open_ep.peak = stat

    def _new_episode(self, key: SeriesKey, f: dict[str, Any], start: int) -> Episode:
        ep = Episode(
            key[0], key[1], key[2], key[3], f["alert_id"], f["kind"], start,
            segments=[(start, f["severity"])], peak=f.get("statistic"), threshold=f.get("threshold"),
        )  # fmt: skip
        self.episodes.append(ep)
        return ep

    # ----------------------------------------------------------------- build
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
            for model_name, mm in monitors[p].models.items():
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
            if e.detector not in row.alerted_detectors:
                row.alerted_detectors.append(e.detector)
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
        # panels: every alerting (model, channel, detector)
        panels_by_model: dict[str, list[Panel]] = defaultdict(list)
        panel_keys = sorted({(e.model, e.channel, e.detector) for e in self.episodes})
        for model_name, ch_name, detector in panel_keys:
            eps = [e for e in episodes_by_model[model_name] if e.channel == ch_name and e.detector == detector]
            series = [
                Series(k[3], d.points(), d.threshold, d.count, d.breaches)
                for k, d in sorted(self.series.items())
                if k[:3] == (model_name, ch_name, detector)
            ]
            fired, resolved = self.counts.get((model_name, ch_name, detector), [0, 0])
            ref_text = _reference_text(self.references.get((model_name, ch_name, detector), set()), None)
            panels_by_model[model_name].append(
                Panel(model_name, ch_name, detector, eps[0].kind, series, eps, ref_text, fired, resolved, min(e.start_ms for e in eps))
            )
        models: list[ModelReport] = []
        for name in sorted({m for m, _ in rows} | set(episodes_by_model)):
            chans = [r for (m, _), r in rows.items() if m == name]
            chans.sort(key=lambda r: (r.first_ms is None, r.first_ms or 0, r.channel))
            panels = sorted(panels_by_model.get(name, []), key=lambda p: (p.first_ms, p.channel, p.detector))
            eps = sorted(episodes_by_model.get(name, []), key=lambda e: (e.start_ms, e.channel, e.detector, e.partition))
            fired = sum(r.fired for r in chans)
            resolved = sum(r.resolved for r in chans)
            models.append(ModelReport(name, chans, panels, eps, fired, resolved))
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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:150] or "x"


# ---------------------------------------------------------------------------------- scales
_TIME_STEPS = [
    1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000,
    3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000, 172_800_000, 604_800_000, 1_209_600_000,
    2_592_000_000,
]  # fmt: skip


def time_ticks(start: int, end: int, target: int = 7) -> list[int]:
    """Round event times between ``start`` and ``end`` for axis ticks (UTC-aligned).

    >>> [ev.format_event_time(t)[11:19] for t in time_ticks(1767225600000, 1767225800000)]
    ['00:00:00', '00:00:30', '00:01:00', '00:01:30', '00:02:00', '00:02:30', '00:03:00']
    """
    span = max(1, end - start)
    step = next((s for s in _TIME_STEPS if span / s <= target), _TIME_STEPS[-1])
    first = -(-start // step) * step
    return list(range(first, end + 1, step))


def format_tick(t: int, span_ms: int) -> str:
    dt = datetime.fromtimestamp(t / 1000, tz=timezone.utc)
    if span_ms <= 2 * 86_400_000:
        return dt.strftime("%H:%M:%S" if span_ms < 20 * 60_000 else "%H:%M")
    return dt.strftime("%m-%d %H:%M")


def value_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Nice round ticks covering ``[lo, hi]``.

    >>> value_ticks(0, 1.07)
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    span = hi - lo if hi > lo else 1.0
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    out: list[float] = []
    v = first
    while v <= hi + 1e-12 * max(1.0, abs(hi)):
        out.append(round(v, 12))
        v += step
    return out


def _num(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.2e}"
    return f"{x:.4g}"


def _duration(ms: int) -> str:
    s = ms / 1000
    if s < 60:
        return f"{s:.0f}s" if s >= 10 or s == int(s) else f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    if s < 86400:
        return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"
    return f"{int(s // 86400)}d {int(s % 86400 // 3600):02d}h"


def _short_time(ms: int, span_ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    if span_ms <= 2 * 86_400_000:
        return dt.strftime("%H:%M:%S")
    return dt.strftime("%Y-%m-%d %H:%M")


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


# ------------------------------------------------------------------------------------ SVG
class _XScale:
    def __init__(self, start: int, end: int, x0: float, x1: float) -> None:
        self.start, self.end = start, max(end, start + 1)
        self.x0, self.x1 = x0, x1

    def __call__(self, t: int) -> float:
        return self.x0 + (t - self.start) / (self.end - self.start) * (self.x1 - self.x0)

    def clip(self, t: int) -> float:
        return min(self.x1, max(self.x0, self(t)))


def _svg_open(width: int, height: int, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="{FONT}" font-size="11" role="img" aria-label="{_e(label)}">'
    )


def _time_axis(xs: _XScale, y: float, top: float, lines: list[str], grid: bool = True) -> None:
    span = xs.end - xs.start
    lines.append(f'<line x1="{xs.x0:.1f}" y1="{y:.1f}" x2="{xs.x1:.1f}" y2="{y:.1f}" stroke="#888" />')
    for t in time_ticks(xs.start, xs.end):
        x = xs(t)
        if grid:
            lines.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="#eee" />')
        lines.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x:.1f}" y2="{y + 4:.1f}" stroke="#888" />')
        lines.append(f'<text x="{x:.1f}" y="{y + 15:.1f}" text-anchor="middle" fill="#555">{_e(format_tick(t, span))}</text>')


def timeline_svg(model: ModelReport, start: int, end: int, width: int = 1300) -> str:
    """One row per (channel, detector[, partition]) that fired; bars = firing episodes."""
    rows: list[tuple[str, str, int]] = []
    for e in model.episodes:
        key = (e.channel, e.detector, e.partition)
        if key not in rows:
            rows.append(key)
    multi = len({e.partition for e in model.episodes}) > 1
    row_h, top, label_w = 20, 8, 250
    height = top + row_h * max(1, len(rows)) + 30
    xs = _XScale(start, end, label_w, width - 16)
    out = [_svg_open(width, height, f"alert timeline of {model.name}")]
    out.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff" />')
    axis_y = top + row_h * max(1, len(rows)) + 4
    _time_axis(xs, axis_y, top, out)
    for i, (channel, detector, partition) in enumerate(rows):
        y = top + i * row_h
        if i % 2 == 0:
            out.append(f'<rect x="0" y="{y}" width="{width}" height="{row_h}" fill="#f7f8fa" />')
        label = f"{channel} · {detector}" + (f" · p{partition}" if multi else "")
        out.append(f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end" fill="#222">{_e(label)}</text>')
        for e in model.episodes:
            if (e.channel, e.detector, e.partition) != (channel, detector, partition):
                continue
            stop = e.end_ms if e.end_ms is not None else end
            segs = e.segments + [(stop, "")]
            for (s0, sev), (s1, _) in zip(segs, segs[1:]):
                x0, x1 = xs.clip(max(s0, e.start_ms)), xs.clip(s1)
                w = max(2.0, x1 - x0)
                out.append(
                    f'<rect x="{x0:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" rx="2" '
                    f'fill="{SEVERITY_COLORS.get(sev, "#999")}"><title>{_e(_episode_title(e, end))}</title></rect>'
                )
            if e.end_ms is None:  # still firing at the end of the replay: an open arrow
                x = xs.clip(stop)
                out.append(f'<path d="M{x:.1f},{y + 3} l7,{(row_h - 6) / 2:.1f} l-7,{(row_h - 6) / 2:.1f} z" fill="{SEVERITY_COLORS.get(e.severity)}" />')
    out.append("</svg>")
    return "".join(out)


def _episode_title(e: Episode, end: int) -> str:
    span = end - e.start_ms
    until = f"until {ev.format_event_time(e.end_ms)}" if e.end_ms is not None else "still firing at the end"
    peak = f"; peak {_num(e.peak)} (threshold {_num(e.threshold)})" if e.peak is not None else ""
    return f"{e.model}/{e.channel} {e.detector} [{e.severity}] from {ev.format_event_time(e.start_ms)} {until}{peak}; p{e.partition}; {_duration(span)}"


def panel_svg(panel: Panel, start: int, end: int, width: int = 640, height: int = 220) -> str:
    """The statistic over event time, the threshold (dashed) and the firing spans (shaded)."""
    left, right, top, bottom = 58, 14, 10, 30
    xs = _XScale(start, end, left, width - right)
    values = [v for s in panel.series for _, v in s.points]
    thresholds = [s.threshold for s in panel.series if s.threshold is not None]
    lo = min(values + thresholds + [0.0])
    hi = max(values + thresholds + [1e-9])
    hi = hi + (hi - lo) * 0.08
    ticks = value_ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    y0, y1 = height - bottom, top

    def ys(v: float) -> float:
        return y0 - (v - lo) / (hi - lo) * (y0 - y1) if hi > lo else y0

    out = [_svg_open(width, height, f"{panel.model} {panel.channel} {panel.detector} statistic over event time")]
    out.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff" />')
    for e in panel.episodes:  # shaded firing spans, by severity
        stop = e.end_ms if e.end_ms is not None else end
        segs = e.segments + [(stop, "")]
        for (s0, sev), (s1, _) in zip(segs, segs[1:]):
            x0, x1 = xs.clip(max(s0, e.start_ms)), xs.clip(s1)
            out.append(
                f'<rect x="{x0:.1f}" y="{y1}" width="{max(1.5, x1 - x0):.1f}" height="{y0 - y1}" '
                f'fill="{SEVERITY_COLORS.get(sev, "#999")}" fill-opacity="0.2"><title>{_e(_episode_title(e, end))}</title></rect>'
            )
    for v in ticks:
        y = ys(v)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#eee" />')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{_e(_num(v))}</text>')
    _time_axis(xs, y0, y1, out, grid=False)
    out.append(f'<line x1="{left}" y1="{y1}" x2="{left}" y2="{y0}" stroke="#888" />')
    for thr in sorted(set(thresholds)):
        y = ys(thr)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#333" stroke-width="1.2" stroke-dasharray="6,4" />')
        out.append(f'<text x="{width - right - 4}" y="{y - 4:.1f}" text-anchor="end" fill="#333">threshold {_e(_num(thr))}</text>')
    for i, s in enumerate(panel.series):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        pts = [(xs(t), ys(v)) for t, v in s.points if start <= t <= end]
        if len(pts) >= 2:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.6" stroke-linejoin="round" />')
        if len(pts) <= 40:  # sparse (change-point detectors report a statistic only when they trip)
            out.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}" />' for x, y in pts)
        if len(panel.series) > 1 and pts:
            x, y = pts[-1]
            out.append(f'<text x="{min(x + 3, width - right - 14):.1f}" y="{y - 3:.1f}" fill="{color}">p{s.partition}</text>')
    if not values:
        out.append(f'<text x="{(left + width - right) / 2}" y="{(y0 + y1) / 2}" text-anchor="middle" fill="#888">no statistic reported</text>')
    out.append("</svg>")
    return "".join(out)


# ----------------------------------------------------------------------------------- HTML
_CSS = """
*{box-sizing:border-box}
body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:0;background:#f3f4f6;color:#1f2328;font-size:14px}
main{max-width:1360px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:18px;margin:0 0 8px;display:flex;align-items:baseline;gap:10px}
h3{font-size:14px;margin:16px 0 6px;color:#444}
.sub{color:#555;margin:0 0 16px}
.card{background:#fff;border:1px solid #d9dce1;border-radius:8px;padding:16px 18px;margin:0 0 18px}
.glance li{margin:4px 0;line-height:1.5}.glance ul ul{margin:2px 0 8px;padding-left:22px}
.badge{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:bold;color:#fff}
.b-critical{background:#d62728}.b-warning{background:#e0900a}.b-info{background:#3b82c4}.b-ok{background:#2e8540}
.muted{color:#666}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eceef1;vertical-align:top}
th{background:#f7f8fa;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr.alerting td:first-child{border-left:4px solid #d62728}
tr.alerting.sev-warning td:first-child{border-left-color:#f0a020}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px}
figure{margin:0;border:1px solid #e3e5e8;border-radius:6px;padding:6px;background:#fff}
figcaption{font-size:12.5px;color:#333;padding:2px 4px 0;line-height:1.45}
figure svg,.timeline svg{width:100%;height:auto;display:block}
td.nw,td.n{white-space:nowrap}
.legend span{margin-right:14px;font-size:12px}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;margin-right:4px}
details summary{cursor:pointer;color:#444;margin:6px 0}
code{font-size:12.5px}
"""


def _badge(severity: str | None, text: str) -> str:
    return f'<span class="badge b-{_e(severity or "ok")}">{_e(text)}</span>'


def _glance(model: ModelReport, span: int) -> str:
    n_ch = len(model.channels)
    alerted = [c for c in model.channels if c.fired or c.first_ms is not None]
    if not alerted:
        return f"<li><b>{_e(model.name)}</b> {_badge(None, 'OK')} no alerts on {n_ch} channels.</li>"
    items = []
    for c in alerted:
        kinds = " / ".join(k.replace("_", " ") for k in c.kinds)
        when = f"from {_short_time(c.first_ms, span)}" if c.first_ms is not None else ""
        state = "<b>still firing</b> at the end" if c.open_at_end else f"firing {_e(_duration(c.firing_ms))} in total, resolved"
        items.append(
            f'<li><b>{_e(c.channel)}</b> {_badge(c.severity, c.severity or "")} {_e(kinds)} {_e(when)}, {state} '
            f'<span class="muted">({_e(", ".join(c.alerted_detectors))})</span></li>'
        )
    worst = max((c.severity for c in alerted if c.severity), key=lambda s: SEVERITY_RANK[s], default="warning")
    return (
        f"<li><b>{_e(model.name)}</b> {_badge(worst, f'{len(alerted)} of {n_ch} channels alerted')}"
        f"<ul>{''.join(items)}</ul></li>"
    )


def _channel_table(model: ModelReport, span: int) -> str:
    head = (
        "<tr><th>channel</th><th>type</th><th>reference</th><th>detectors</th><th class=n>observations</th>"
        "<th class=n>fired</th><th class=n>resolved</th><th class=n>time firing</th><th>first alert</th></tr>"
    )

    def row(c: ChannelRow) -> str:
        dets = ", ".join(f"<b>{_e(d)}</b>" if d in c.alerted_detectors else _e(d) for d in c.detectors) or "-"
        cls = f' class="alerting sev-{_e(c.severity)}"' if c.first_ms is not None else ""
        pct = f" ({100 * c.firing_ms / span:.0f} %)" if span > 0 and c.firing_ms else ""
        firing = (_duration(c.firing_ms) + pct + (" ▸" if c.open_at_end else "")) if c.firing_ms else "-"
        first = _e(_short_time(c.first_ms, span)) if c.first_ms is not None else "-"
        return (
            f"<tr{cls}><td><b>{_e(c.channel)}</b></td><td>{_e(c.channel_type)}</td><td class=nw>{_e(c.reference)}</td><td>{dets}</td>"
            f"<td class=n>{c.observations:,}</td><td class=n>{c.fired}</td><td class=n>{c.resolved}</td>"
            f"<td class=n>{_e(firing)}</td><td class=nw>{first}</td></tr>"
        )

    loud = [c for c in model.channels if c.first_ms is not None]
    quiet = [c for c in model.channels if c.first_ms is None]
    out = [f"<table>{head}{''.join(row(c) for c in loud)}"]
    if quiet and loud:
        out.append("</table>")
        out.append(f"<details><summary>{len(quiet)} channels without alerts</summary><table>{head}{''.join(row(c) for c in quiet)}</table></details>")
    else:
        out.append("".join(row(c) for c in quiet) + "</table>")
    return "".join(out)


def _panel_caption(p: Panel, span: int) -> str:
    eps = sorted(p.episodes, key=lambda e: e.start_ms)
    spans = []
    for e in eps[:4]:
        until = _short_time(e.end_ms, span) if e.end_ms is not None else "end"
        spans.append(f"{_short_time(e.start_ms, span)} → {until}")
    more = f" (+{len(eps) - 4} more)" if len(eps) > 4 else ""
    thr = sorted({s.threshold for s in p.series if s.threshold is not None})
    thr_text = ", ".join(_num(t) for t in thr) or "n/a"
    evals = sum(s.evaluations for s in p.series)
    parts = ", ".join(f"p{s.partition}" for s in p.series)
    worst = max((e.severity for e in eps), key=lambda s: SEVERITY_RANK[s], default="warning")
    return (
        f"<b>{_e(p.channel)} · {_e(p.detector)}</b> {_badge(worst, worst)} <span class=muted>{_e(p.kind.replace('_', ' '))}</span><br>"
        f"statistic vs threshold {_e(thr_text)} (dashed); reference: {_e(p.reference)}; "
        f"{p.fired} fired, {p.resolved} resolved; firing {_e('; '.join(spans) + more)}; "
        f"{evals:,} evaluations ({_e(parts)})"
        + (
            "<br><span class=muted>a change-point detector: its statistic is the size of the shift (in reference sd), reported from the trip until the level is back</span>"
            if p.detector in CHANGE_POINT_DETECTORS
            else ""
        )
    )


def _alerts_table(data: ReportData) -> str:
    if not data.alerts:
        return ""
    rows = []
    for a in data.alerts:
        status = "escalated" if a.get("escalated") else a["status"]
        rows.append(
            f"<tr><td>{_e(a['event_time'])}</td><td>{_e(status)}</td><td>{_badge(a['severity'], a['severity'])}</td>"
            f"<td>{_e(a['kind'])}</td><td>{_e(a['model'])}</td><td>{_e(a['feature'])}</td><td>{_e(a['detector'])}</td>"
            f"<td class=n>{_e(_num(a['statistic']))}</td><td class=n>{_e(_num(a['threshold']))}</td><td class=n>{a['partition']}</td></tr>"
        )
    more = f" (first {len(data.alerts)} of {data.alerts_total})" if data.alerts_total > len(data.alerts) else ""
    return (
        f'<section class="card"><h2>Alert events{_e(more)}</h2><table><tr><th>event time</th><th>status</th><th>severity</th>'
        "<th>kind</th><th>model</th><th>channel</th><th>detector</th><th class=n>statistic</th><th class=n>threshold</th>"
        f"<th class=n>partition</th></tr>{''.join(rows)}</table></section>"
    )


def render_html(data: ReportData) -> str:
    """The self-contained report page."""
    m = data.meta
    start = data.start_ms if data.start_ms is not None else 0
    end = data.end_ms if data.end_ms is not None else start + 1
    if end <= start:
        end = start + 1000
    span = end - start
    invalid = sum(m.invalid_by_reason.values())
    rng = ""
    if m.from_ms is not None or m.to_ms is not None:
        rng = (
            f" · range {_e(ev.format_event_time(m.from_ms) if m.from_ms is not None else '…')} → "
            f"{_e(ev.format_event_time(m.to_ms) if m.to_ms is not None else '…')}"
        )
    sub = (
        f"{_e(m.source)} · event time {_e(ev.format_event_time(start))} → {_e(ev.format_event_time(end))} "
        f"({_e(_duration(span))}){rng} · {m.records_read:,} records, {m.records_processed:,} monitored, {invalid:,} invalid · "
        f"{data.alerts_total:,} alert events · monitor {_e(m.instance)} {_e(m.version)}"
    )
    legend = (
        '<div class="legend"><span><i class="sw" style="background:#f0a020"></i>warning</span>'
        '<span><i class="sw" style="background:#d62728"></i>critical</span>'
        '<span class="muted">▸ = still firing when the replay ended · times are event time, UTC</span></div>'
    )
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>stream-monitor replay report · {_e(m.source)}</title><style>{_CSS}</style></head><body><main>",
        "<h1>stream-monitor replay report</h1>",
        f'<p class="sub">{sub}</p>',
        '<section class="card glance"><h2>What drifted, and when</h2><ul>',
        "".join(_glance(model, span) for model in data.models) or "<li>no models seen</li>",
        "</ul>",
        legend,
        "</section>",
    ]
    for model in data.models:
        badge = (
            _badge(max((e.severity for e in model.episodes), key=lambda s: SEVERITY_RANK[s]), f"{model.fired} fired · {model.resolved} resolved")
            if model.episodes
            else _badge(None, "no alerts")
        )
        parts.append(f'<section class="card" id="model-{_e(model.slug)}"><h2>{_e(model.name)} {badge}</h2>')
        if model.episodes:
            parts.append('<h3>Firing episodes over event time</h3><div class="timeline">')
            parts.append(timeline_svg(model, start, end))
            parts.append("</div>")
        parts.append(f"<h3>Channels ({len(model.channels)})</h3>")
        parts.append(_channel_table(model, span))
        if model.panels:
            parts.append("<h3>Detector statistics of alerting channels</h3><div class=grid>")
            for p in model.panels:
                parts.append(f'<figure id="{_e(p.slug)}">{panel_svg(p, start, end)}<figcaption>{_panel_caption(p, span)}</figcaption></figure>')
            parts.append("</div>")
        parts.append("</section>")
    parts.append(_alerts_table(data))
    parts.append("</main></body></html>\n")
    return "".join(parts)


def write_report(data: ReportData, path: Path) -> None:
    """Write the self-contained HTML report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data), encoding="utf-8")


def write_report_dir(data: ReportData, directory: Path) -> list[Path]:
    """``summary.json``, one SVG per alerting detector and per model timeline, and ``report.html``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    start = data.start_ms if data.start_ms is not None else 0
    end = data.end_ms if data.end_ms is not None and data.end_ms > start else start + 1000
    files: list[Path] = []
    for model in data.models:
        if model.episodes:
            p = d / f"timeline--{model.slug}.svg"
            p.write_text(timeline_svg(model, start, end) + "\n", encoding="utf-8")
            files.append(p)
        for panel in model.panels:
            p = d / f"{panel.slug}.svg"
            p.write_text(panel_svg(panel, start, end) + "\n", encoding="utf-8")
            files.append(p)
    summary = d / "summary.json"
    summary.write_bytes(orjson.dumps(data.to_summary(), option=orjson.OPT_INDENT_2) + b"\n")
    files.append(summary)
    page = d / "report.html"
    write_report(data, page)
    files.append(page)
    return files
