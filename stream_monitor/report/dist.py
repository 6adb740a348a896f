"""Reference vs current distributions of alerting channels, as plain SVG, from alert evidence.

Numbers: a histogram on equal-width bins over the reference's range (reference as grey bars,
current as outlined coloured bars, current values outside the range in two end bars).
Categories: paired horizontal bars per category (the top ones) and for unseen categories.

>>> from stream_monitor.report.collect import Distribution
>>> ev = {"type": "categorical", "categories": [{"category": "a", "reference_share": 0.6, "current_share": 0.4}],
...       "unseen": {"reference_share": 0.0, "current_share": 0.3, "count": 3}}
>>> "<svg" in distribution_svg(Distribution("m", "c", "chi2", 0, 0, ev))
True
"""

from __future__ import annotations

from typing import Any

from stream_monitor.core import evidence as evi
from stream_monitor.report.collect import Distribution
from stream_monitor.report.svg import FONT, esc

REFERENCE_COLOR = "#aab4c3"
CURRENT_COLOR = "#d62728"


def _open(width: int, height: int, label: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="{FONT}" font-size="11" role="img" aria-label="{esc(label)}">',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff" />',
    ]


def _legend(x: float, y: float) -> str:
    return (
        f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{REFERENCE_COLOR}" /><text x="{x + 14}" y="{y}" fill="#333">reference</text>'
        f'<rect x="{x + 84}" y="{y - 9}" width="10" height="10" fill="{CURRENT_COLOR}" fill-opacity="0.35" stroke="{CURRENT_COLOR}" />'
        f'<text x="{x + 98}" y="{y}" fill="#333">when it fired</text>'
    )


def _numeric_svg(d: Distribution, width: int, height: int) -> str:
    h: dict[str, Any] = d.evidence["histogram"]
    ref, cur, edges = h["reference"], h["current"], h["edges"]
    below, above = h.get("current_below") or 0.0, h.get("current_above") or 0.0
    left, right, top, bottom, gap = 44, 10, 22, 34, 22
    out = _open(width, height, f"{d.model} {d.channel}: reference vs current histogram")
    n = len(ref)
    slot = (width - left - right - 2 * gap) / (n + 2)  # a slot each side for values outside the range
    peak = max([*(x or 0.0 for x in ref), *(x or 0.0 for x in cur), below, above, 1e-9])
    y0, y1 = height - bottom, top

    def ys(v: float) -> float:
        return y0 - v / peak * (y0 - y1)

    for frac in (0.5, 1.0):
        y = ys(peak * frac)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#eee" />')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{evi.pct(peak * frac)}</text>')
    out.append(f'<line x1="{left}" y1="{y0}" x2="{width - right}" y2="{y0}" stroke="#888" />')
    x_first = left + slot + gap
    for i in range(n):
        x = x_first + i * slot
        r, c = ref[i] or 0.0, cur[i] or 0.0
        out.append(f'<rect x="{x + 0.5:.1f}" y="{ys(r):.1f}" width="{slot - 1:.1f}" height="{y0 - ys(r):.1f}" fill="{REFERENCE_COLOR}" />')
        out.append(
            f'<rect x="{x + 0.5:.1f}" y="{ys(c):.1f}" width="{slot - 1:.1f}" height="{y0 - ys(c):.1f}" fill="{CURRENT_COLOR}" '
            f'fill-opacity="0.3" stroke="{CURRENT_COLOR}" stroke-width="1"><title>{esc(evi.fmt(edges[i]))} – {esc(evi.fmt(edges[i + 1]))}: '
            f"reference {esc(evi.pct(r))}, when it fired {esc(evi.pct(c))}</title></rect>"
        )
    for x, share, label in ((left, below, "below"), (x_first + n * slot + gap, above, "above")):
        out.append(
            f'<rect x="{x + 0.5:.1f}" y="{ys(share):.1f}" width="{slot - 1:.1f}" height="{y0 - ys(share):.1f}" fill="{CURRENT_COLOR}" '
            f'fill-opacity="0.3" stroke="{CURRENT_COLOR}"><title>{label} the reference range: {esc(evi.pct(share))}</title></rect>'
        )
        out.append(f'<text x="{x + slot / 2:.1f}" y="{y0 + 13}" text-anchor="middle" fill="#555">{"&lt;" if label == "below" else "&gt;"}</text>')
    for i in (0, n // 2, n):
        x = x_first + i * slot
        out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + 4}" stroke="#888" />')
        out.append(f'<text x="{x:.1f}" y="{y0 + 15}" text-anchor="middle" fill="#555">{esc(evi.fmt(edges[i]))}</text>')
    out.append(f'<text x="{(left + width - right) / 2:.1f}" y="{height - 4}" text-anchor="middle" fill="#555">{esc(d.channel)} (reference range; &lt; / &gt; = outside it)</text>')
    out.append(_legend(left + 4, 13))
    out.append("</svg>")
    return "".join(out)


def _categorical_svg(d: Distribution, width: int) -> str:
    e = d.evidence
    rows = [(repr(c["category"]), c["reference_share"] or 0.0, c["current_share"] or 0.0) for c in e["categories"]]
    rows.append(("unseen", 0.0, e["unseen"]["current_share"] or 0.0))
    label_w, top, row_h, right = 110, 22, 26, 120
    height = top + row_h * len(rows) + 8
    out = _open(width, height, f"{d.model} {d.channel}: reference vs current category shares")
    peak = max([1e-9, *(max(r, c) for _, r, c in rows)])
    span = width - label_w - right
    for i, (name, r, c) in enumerate(rows):
        y = top + i * row_h
        shown = name if len(name) <= 16 else name[:15] + "…"
        out.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" fill="#222">{esc(shown)}<title>{esc(name)}</title></text>')
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{max(0.5, r / peak * span):.1f}" height="9" fill="{REFERENCE_COLOR}" />')
        out.append(
            f'<rect x="{label_w}" y="{y + 13}" width="{max(0.5, c / peak * span):.1f}" height="9" fill="{CURRENT_COLOR}" '
            f'fill-opacity="0.35" stroke="{CURRENT_COLOR}" />'
        )
        out.append(f'<text x="{label_w + max(r, c) / peak * span + 4:.1f}" y="{y + 16}" fill="#333">{esc(evi.pct(r))} → {esc(evi.pct(c))}</text>')
    out.append(_legend(label_w, 13))
    out.append("</svg>")
    return "".join(out)


def distribution_svg(d: Distribution, width: int = 440, height: int = 190) -> str:
    """The reference vs current distribution of one alerting channel when it fired."""
    if d.evidence.get("type") == "numeric" and d.evidence.get("histogram"):
        return _numeric_svg(d, width, height)
    if d.evidence.get("type") == "categorical":
        return _categorical_svg(d, width)
    return ""


def distribution_caption(d: Distribution, when: str) -> str:
    """What moved (the alert headline, without owners), which detector fired and when."""
    main, detail = evi.headline(d.evidence, True, d.channel)
    basis = "values since the change" if d.evidence.get("basis") == "since_change" else "the window"
    return (
        f"<b>{esc(d.channel)}</b>: {esc(main)}" + (f"; {esc(detail)}" if detail else "")
        + f'<br><span class=muted>{esc(d.detector)} fired at {esc(when)} (p{d.partition}); current = {esc(basis)}</span>'
    )
