"""The self-contained HTML report page (inline CSS and SVG, no network) and the report directory.

The page answers "what drifted, and when" first: a sentence per model, then per model a timeline
of firing episodes (one row per channel, its detectors named, shaded by severity), each alerting
channel's reference vs current distribution when it fired, a table of every
channel (type, reference, detectors, alerts fired/resolved, time firing), and for each detector
that alerted, its statistic over event time against the threshold with the firing spans shaded.
A model's version changes are listed in its section and drawn on its timeline and plots.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from stream_monitor.core import events as ev
from stream_monitor.core.lifecycle import SEVERITY_RANK
from stream_monitor.report.collect import ChannelRow, ModelReport, Panel, ReportData
from stream_monitor.report.dist import distribution_caption, distribution_svg
from stream_monitor.report.svg import duration, esc, fmt_num, panel_svg, short_time, timeline_svg

CHANGE_POINT_DETECTORS = frozenset({"adwin", "page_hinkley"})

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
.dgrid{display:grid;grid-template-columns:repeat(auto-fill,minmax(400px,1fr));gap:14px}
figure{margin:0;border:1px solid #e3e5e8;border-radius:6px;padding:6px;background:#fff}
figcaption{font-size:12.5px;color:#333;padding:2px 4px 0;line-height:1.45}
figure svg,.timeline svg{width:100%;height:auto;display:block}
td.nw,td.n{white-space:nowrap}
td.moved{min-width:220px}
.legend span{margin-right:14px;font-size:12px}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;margin-right:4px}
details summary{cursor:pointer;color:#444;margin:6px 0}
code{font-size:12.5px}
"""


def _badge(severity: str | None, text: str) -> str:
    return f'<span class="badge b-{esc(severity or "ok")}">{esc(text)}</span>'


def _glance(model: ModelReport, span: int) -> str:
    n_ch = len(model.channels)
    alerted = [c for c in model.channels if c.fired or c.first_ms is not None]
    if not alerted:
        return f"<li><b>{esc(model.name)}</b> {_badge(None, 'OK')} no alerts on {n_ch} channels.</li>"
    items = []
    for c in alerted:
        kinds = " / ".join(k.replace("_", " ") for k in c.kinds)
        when = f"from {short_time(c.first_ms, span)}" if c.first_ms is not None else ""
        state = "<b>still firing</b> at the end" if c.open_at_end else f"firing {esc(duration(c.firing_ms))} in total, resolved"
        items.append(
            f'<li><b>{esc(c.channel)}</b> {_badge(c.severity, c.severity or "")} {esc(kinds)} {esc(when)}, {state} '
            f'<span class="muted">({esc(", ".join(c.alerted_detectors))})</span></li>'
        )
    worst = max((c.severity for c in alerted if c.severity), key=lambda s: SEVERITY_RANK[s], default="warning")
    return (
        f"<li><b>{esc(model.name)}</b> {_badge(worst, f'{len(alerted)} of {n_ch} channels alerted')}"
        f"<ul>{''.join(items)}</ul></li>"
    )


def _channel_table(model: ModelReport, span: int) -> str:
    head = (
        "<tr><th>channel</th><th>type</th><th>reference</th><th>detectors</th><th class=n>observations</th>"
        "<th class=n>fired</th><th class=n>resolved</th><th class=n>time firing</th><th>first alert</th></tr>"
    )

    def row(c: ChannelRow) -> str:
        dets = ", ".join(f"<b>{esc(d)}</b>" if d in c.alerted_detectors else esc(d) for d in c.detectors) or "-"
        cls = f' class="alerting sev-{esc(c.severity)}"' if c.first_ms is not None else ""
        pct = f" ({100 * c.firing_ms / span:.0f} %)" if span > 0 and c.firing_ms else ""
        firing = (duration(c.firing_ms) + pct + (" ▸" if c.open_at_end else "")) if c.firing_ms else "-"
        first = esc(short_time(c.first_ms, span)) if c.first_ms is not None else "-"
        return (
            f"<tr{cls}><td><b>{esc(c.channel)}</b></td><td>{esc(c.channel_type)}</td><td class=nw>{esc(c.reference)}</td><td>{dets}</td>"
            f"<td class=n>{c.observations:,}</td><td class=n>{c.fired}</td><td class=n>{c.resolved}</td>"
            f"<td class=n>{esc(firing)}</td><td class=nw>{first}</td></tr>"
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
        until = short_time(e.end_ms, span) if e.end_ms is not None else "end"
        spans.append(f"{short_time(e.start_ms, span)} → {until}")
    more = f" (+{len(eps) - 4} more)" if len(eps) > 4 else ""
    thr = sorted({s.threshold for s in p.series if s.threshold is not None})
    thr_text = ", ".join(fmt_num(t) for t in thr) or "n/a"
    evals = sum(s.evaluations for s in p.series)
    parts = ", ".join(f"p{s.partition}" for s in p.series)
    worst = max((e.severity for e in eps), key=lambda s: SEVERITY_RANK[s], default="warning")
    return (
        f"<b>{esc(p.channel)} · {esc(p.detector)}</b> {_badge(worst, worst)} <span class=muted>{esc(p.kind.replace('_', ' '))}</span><br>"
        f"statistic vs threshold {esc(thr_text)} (dashed); reference: {esc(p.reference)}; "
        f"{p.fired} fired, {p.resolved} resolved; firing {esc('; '.join(spans) + more)}; "
        f"{evals:,} evaluations ({esc(parts)})"
        + ("<br><span class=muted>an estimate from probabilities (solid) with the realised metric from labels (dashed grey)</span>" if p.realised else "")
        + (
            "<br><span class=muted>a change-point detector: its statistic is the size of the shift (in reference sd), reported from the trip until the level is back</span>"
            if p.detector in CHANGE_POINT_DETECTORS
            else ""
        )
    )


MAX_VERSION_CHANGES_LISTED = 20


def _version_line(model: ModelReport, span: int) -> str:
    """The model's version changes (event time, old → new), as a line of its section; empty when there are none."""
    if not model.versions:
        return ""
    shown = model.versions[:MAX_VERSION_CHANGES_LISTED]
    items = "; ".join(f"{esc(short_time(v.event_time_ms, span))} <b>{esc(v.previous)} → {esc(v.version)}</b>" for v in shown)
    more = f" (+{len(model.versions) - len(shown)} more)" if len(model.versions) > len(shown) else ""
    return (
        f'<p class="versions">Model version changed: {items}{esc(more)} '
        '<span class=muted>(dashed purple lines on the plots; prediction and performance channels restart their reference there)</span></p>'
    )


def _alerts_table(data: ReportData) -> str:
    if not data.alerts:
        return ""
    rows = []
    for a in data.alerts:
        status = "escalated" if a.get("escalated") else a["status"]
        rows.append(
            f"<tr><td class=nw>{esc(a['event_time'])}</td><td>{esc(status)}</td><td>{_badge(a['severity'], a['severity'])}</td>"
            f"<td>{esc(a['kind'])}</td><td class=nw>{esc(a['model'])}</td><td class=nw>{esc(a['feature'])}</td><td>{esc(a['detector'])}</td>"
            f"<td class=n>{esc(fmt_num(a['statistic']))}</td><td class=n>{esc(fmt_num(a['threshold']))}</td><td class=n>{a['partition']}</td>"
            f"<td class=moved>{esc(a.get('moved', ''))}</td></tr>"
        )
    more = f" (first {len(data.alerts)} of {data.alerts_total})" if data.alerts_total > len(data.alerts) else ""
    return (
        f'<section class="card"><h2>Alert events{esc(more)}</h2><table><tr><th>event time</th><th>status</th><th>severity</th>'
        "<th>kind</th><th>model</th><th>channel</th><th>detector</th><th class=n>statistic</th><th class=n>threshold</th>"
        f"<th class=n>partition</th><th>what moved</th></tr>{''.join(rows)}</table></section>"
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
            f" · range {esc(ev.format_event_time(m.from_ms) if m.from_ms is not None else '…')} → "
            f"{esc(ev.format_event_time(m.to_ms) if m.to_ms is not None else '…')}"
        )
    sub = (
        f"{esc(m.source)} · event time {esc(ev.format_event_time(start))} → {esc(ev.format_event_time(end))} "
        f"({esc(duration(span))}){rng} · {m.records_read:,} records, {m.records_processed:,} monitored, {invalid:,} invalid · "
        f"{data.alerts_total:,} alert events · monitor {esc(m.instance)} {esc(m.version)}"
    )
    legend = (
        '<div class="legend"><span><i class="sw" style="background:#f0a020"></i>warning</span>'
        '<span><i class="sw" style="background:#d62728"></i>critical</span>'
        '<span class="muted">▸ = still firing when the replay ended · times are event time, UTC</span></div>'
    )
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>stream-monitor replay report · {esc(m.source)}</title><style>{_CSS}</style></head><body><main>",
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
        parts.append(f'<section class="card" id="model-{esc(model.slug)}"><h2>{esc(model.name)} {badge}</h2>')
        parts.append(_version_line(model, span))
        if model.episodes:
            parts.append('<h3>Firing episodes over event time</h3><div class="timeline">')
            parts.append(timeline_svg(model, start, end))
            parts.append("</div>")
        if model.distributions:
            parts.append("<h3>Reference vs current when each channel fired</h3><div class=dgrid>")
            for d in model.distributions:
                svg = distribution_svg(d)
                if svg:
                    parts.append(f"<figure>{svg}<figcaption>{distribution_caption(d, short_time(d.event_time_ms, span))}</figcaption></figure>")
            parts.append("</div>")
        parts.append(f"<h3>Channels ({len(model.channels)})</h3>")
        parts.append(_channel_table(model, span))
        if model.panels:
            parts.append("<h3>Detector statistics of alerting channels</h3><div class=grid>")
            for p in model.panels:
                parts.append(f'<figure id="{esc(p.slug)}">{panel_svg(p, start, end, versions=model.versions)}<figcaption>{_panel_caption(p, span)}</figcaption></figure>')
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
            p.write_text(panel_svg(panel, start, end, versions=model.versions) + "\n", encoding="utf-8")
            files.append(p)
    summary = d / "summary.json"
    summary.write_bytes(orjson.dumps(data.to_summary(), option=orjson.OPT_INDENT_2) + b"\n")
    files.append(summary)
    page = d / "report.html"
    write_report(data, page)
    files.append(page)
    return files
