"""Plain SVG plots of a report: the per-model timeline of firing episodes and detector panels.

No plotting dependency: crisp at any zoom, a few kB each.
"""

from __future__ import annotations

import html
import math
from datetime import datetime, timezone
from typing import Any, Sequence

from stream_monitor.core import events as ev
from stream_monitor.report.collect import Episode, ModelReport, Panel, VersionMark

VERSION_COLOR = "#6a3d9a"
SEVERITY_COLORS = {"info": "#3b82c4", "warning": "#f0a020", "critical": "#d62728"}
SERIES_COLORS = ("#1f4e8c", "#2a9d8f", "#7b4fa8", "#8c564b", "#e76f51", "#5f6b7a")
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"

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
    """An axis tick label, precise enough for the span shown."""
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


def fmt_num(x: float | None) -> str:
    """A statistic for display: 4 significant digits, exponent form for very large or small values."""
    if x is None:
        return "n/a"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.2e}"
    return f"{x:.4g}"


def duration(ms: int) -> str:
    """Milliseconds as a short human duration (``1m 05s``)."""
    s = ms / 1000
    if s < 60:
        return f"{s:.0f}s" if s >= 10 or s == int(s) else f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    if s < 86400:
        return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"
    return f"{int(s // 86400)}d {int(s % 86400 // 3600):02d}h"


def short_time(ms: int, span_ms: int) -> str:
    """A UTC time, with the date only for spans over two days."""
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    if span_ms <= 2 * 86_400_000:
        return dt.strftime("%H:%M:%S")
    return dt.strftime("%Y-%m-%d %H:%M")


def esc(text: Any) -> str:
    """HTML-escape any value (quotes included)."""
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
        f'font-family="{FONT}" font-size="11" role="img" aria-label="{esc(label)}">'
    )


def _time_axis(xs: _XScale, y: float, top: float, lines: list[str], grid: bool = True) -> None:
    span = xs.end - xs.start
    lines.append(f'<line x1="{xs.x0:.1f}" y1="{y:.1f}" x2="{xs.x1:.1f}" y2="{y:.1f}" stroke="#888" />')
    for t in time_ticks(xs.start, xs.end):
        x = xs(t)
        if grid:
            lines.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="#eee" />')
        lines.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x:.1f}" y2="{y + 4:.1f}" stroke="#888" />')
        lines.append(f'<text x="{x:.1f}" y="{y + 15:.1f}" text-anchor="middle" fill="#555">{esc(format_tick(t, span))}</text>')


def _version_marks(out: list[str], xs: _XScale, marks: Sequence[VersionMark], top: float, bottom: float, model: str) -> None:
    """A dashed vertical line where the model's version changed, labelled with the new version (old → new on hover)."""
    for v in marks:
        if not xs.start <= v.event_time_ms <= xs.end:
            continue
        x = xs(v.event_time_ms)
        anchor, dx = ("end", -3) if x > (xs.x0 + xs.x1) / 2 else ("start", 3)
        out.append(
            f'<g class="version-change"><title>{esc(f"{model}: model version {v.previous} → {v.version} at {ev.format_event_time(v.event_time_ms)}")}</title>'
            f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="{VERSION_COLOR}" stroke-width="1.4" stroke-dasharray="2,3" />'
            f'<text x="{x + dx:.1f}" y="{top + 10:.1f}" text-anchor="{anchor}" font-size="10" fill="{VERSION_COLOR}">{esc(_clip(v.version, 24))}</text></g>'
        )


def timeline_svg(model: ModelReport, start: int, end: int, width: int = 1300) -> str:
    """One row per channel that fired (its detectors and partitions named); bars = firing episodes; model version changes marked."""
    rows: dict[str, list[Episode]] = {}
    for e in model.episodes:
        rows.setdefault(e.channel, []).append(e)
    row_h, top, label_w = 22, 8, 330
    height = top + row_h * max(1, len(rows)) + 30
    xs = _XScale(start, end, label_w, width - 16)
    out = [_svg_open(width, height, f"alert timeline of {model.name}")]
    out.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff" />')
    axis_y = top + row_h * max(1, len(rows)) + 4
    _time_axis(xs, axis_y, top, out)
    for i, (channel, episodes) in enumerate(rows.items()):
        y = top + i * row_h
        if i % 2 == 0:
            out.append(f'<rect x="0" y="{y}" width="{width}" height="{row_h}" fill="#f7f8fa" />')
        detectors = ", ".join(dict.fromkeys(d for e in episodes for d in e.detectors))
        partitions = sorted({e.partition for e in episodes})
        where = f" · p{partitions[0]}" if len(partitions) == 1 else f" · {len(partitions)} partitions"
        out.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" fill="#222"><tspan font-weight="bold">{esc(channel)}</tspan>'
            f'<tspan fill="#666"> {esc(_clip(detectors, 40))}{esc(where)}</tspan><title>{esc(detectors)}</title></text>'
        )
        # warning first, critical on top: the row shows the worst severity at each moment
        for e in sorted(episodes, key=lambda e: SEVERITY_ORDER.get(e.severity, 0)):
            _episode_bars(out, xs, e, y, row_h, end)
    _version_marks(out, xs, model.versions, top, axis_y, model.name)
    out.append("</svg>")
    return "".join(out)


SEVERITY_ORDER = {"info": 0, "warning": 1, "critical": 2}


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _segments(xs: _XScale, e: Episode, end: int) -> list[tuple[float, float, str]]:
    """(x from, x to, severity) of each stretch of an episode at one severity, up to its end (or ``end``)."""
    stop = e.end_ms if e.end_ms is not None else end
    segs = e.segments + [(stop, "")]
    return [(xs.clip(max(s0, e.start_ms)), xs.clip(s1), sev) for (s0, sev), (s1, _) in zip(segs, segs[1:])]


def _episode_bars(out: list[str], xs: _XScale, e: Episode, y: int, row_h: int, end: int) -> None:
    for x0, x1, sev in _segments(xs, e, end):
        out.append(
            f'<rect x="{x0:.1f}" y="{y + 4}" width="{max(2.0, x1 - x0):.1f}" height="{row_h - 8}" rx="2" '
            f'fill="{SEVERITY_COLORS.get(sev, "#999")}" fill-opacity="0.85"><title>{esc(_episode_title(e, end))}</title></rect>'
        )
    if e.end_ms is None:  # still firing at the end of the replay: an open arrow
        x = xs.clip(end)  # an open episode runs to the end
        out.append(f'<path d="M{x:.1f},{y + 4} l7,{(row_h - 8) / 2:.1f} l-7,{(row_h - 8) / 2:.1f} z" fill="{SEVERITY_COLORS.get(e.severity)}" />')


def _episode_title(e: Episode, end: int) -> str:
    span = end - e.start_ms
    until = f"until {ev.format_event_time(e.end_ms)}" if e.end_ms is not None else "still firing at the end"
    peak = f"; peak {fmt_num(e.peak)} (threshold {fmt_num(e.threshold)})" if e.peak is not None else ""
    return f"{e.model}/{e.channel} {e.detector} [{e.severity}] from {ev.format_event_time(e.start_ms)} {until}{peak}; p{e.partition}; {duration(span)}"


def panel_svg(panel: Panel, start: int, end: int, width: int = 640, height: int = 220, versions: Sequence[VersionMark] = ()) -> str:
    """The statistic over event time, the threshold (dashed), the firing spans (shaded) and the model's version changes."""
    left, right, top, bottom = 58, 14, 10, 30
    xs = _XScale(start, end, left, width - right)
    values = [v for s in (*panel.series, *panel.realised) for _, v in s.points]
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
        for x0, x1, sev in _segments(xs, e, end):
            out.append(
                f'<rect x="{x0:.1f}" y="{y1}" width="{max(1.5, x1 - x0):.1f}" height="{y0 - y1}" '
                f'fill="{SEVERITY_COLORS.get(sev, "#999")}" fill-opacity="0.2"><title>{esc(_episode_title(e, end))}</title></rect>'
            )
    for v in ticks:
        y = ys(v)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#eee" />')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{esc(fmt_num(v))}</text>')
    _time_axis(xs, y0, y1, out, grid=False)
    out.append(f'<line x1="{left}" y1="{y1}" x2="{left}" y2="{y0}" stroke="#888" />')
    for thr in sorted(set(thresholds)):
        y = ys(thr)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#333" stroke-width="1.2" stroke-dasharray="6,4" />')
        out.append(f'<text x="{width - right - 4}" y="{y - 4:.1f}" text-anchor="end" fill="#333">threshold {esc(fmt_num(thr))}</text>')
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
    for s in panel.realised:  # an estimate's panel: the realised metric, dashed grey, named at its end
        pts = [(xs(t), ys(v)) for t, v in s.points if start <= t <= end]
        if len(pts) >= 2:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="#555" stroke-width="1.4" stroke-dasharray="3,2" />')
        if pts:
            x, y = pts[-1]
            out.append(f'<text x="{min(x + 3, width - right - 40):.1f}" y="{y + 12:.1f}" fill="#555">realised</text>')
    _version_marks(out, xs, versions, y1, y0, panel.model)
    if not values:
        out.append(f'<text x="{(left + width - right) / 2}" y="{(y0 + y1) / 2}" text-anchor="middle" fill="#888">no statistic reported</text>')
    out.append("</svg>")
    return "".join(out)

