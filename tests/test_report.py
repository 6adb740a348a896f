"""The replay report renders: headless Chromium opens it (no network) and the screenshot is not blank.

Chromium is the Debian package ``chromium``. Without it the browser test is skipped on a developer
machine, but fails in CI (``CI`` set): ``.ci/run`` installs it, so a missing browser there is a bug.
The PNG is decoded here with zlib and numpy (no imaging dependency).

``docs/report-screenshot.png`` (shown in the README) is made the same way::

    stream-monitor replay --input examples/demo-events.jsonl.gz --alerts-out /tmp/alerts.jsonl --report /tmp/report.html
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir=/tmp/chromium-profile \
        --screenshot=docs/report-screenshot.png --window-size=1400,1500 file:///tmp/report.html
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import orjson
import pytest

from stream_monitor.commands import main
from stream_monitor.core.channel import EvaluationRecord
from stream_monitor.report.collect import ReportCollector, ReportMeta
from stream_monitor.report.html import render_html, write_report_dir
from stream_monitor.synthetic import demo_streams, generate_events
from stream_monitor.bridges.mapping import example_alert

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def _chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(html: Path, png: Path, profile: Path, size: str = "1400,2000") -> None:
    """Headless Chromium screenshot of a local file (network features off)."""
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed, and CI is set: .ci/run must install the Debian package chromium")
        pytest.skip("chromium not installed (apt-get install chromium); CI installs it")
    args = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
        f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={size}", html.resolve().as_uri(),
    ]  # fmt: skip
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert png.exists() and png.stat().st_size > 0, f"chromium wrote no screenshot (exit {proc.returncode}):\n{proc.stderr[-2000:]}"


def png_pixels(path: Path) -> np.ndarray:
    """Decode an 8-bit, non-interlaced RGB/RGBA PNG into an (height, width, channels) array."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    width = height = depth = color = interlace = 0
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    assert depth == 8 and interlace == 0 and color in (2, 6), f"unsupported PNG: depth {depth} color {color}"
    bpp = 3 if color == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(b"".join(idat))
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int64)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=start + 1).astype(np.int64)
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: running sum along each channel
            cur = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:  # Up
            cur = (line + prev) % 256
        else:  # Average / Paeth depend on the reconstructed left neighbour: byte by byte
            f, b_row, c = line.tolist(), prev.tolist(), [0] * stride
            for i in range(stride):
                a = c[i - bpp] if i >= bpp else 0
                b = b_row[i]
                if kind == 3:
                    c[i] = (f[i] + ((a + b) >> 1)) & 255
                else:
                    cc = b_row[i - bpp] if i >= bpp else 0
                    pa, pb, pc = abs(b - cc), abs(a - cc), abs(a + b - 2 * cc)
                    c[i] = (f[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else cc)) & 255
            cur = np.array(c, dtype=np.int64)
        out[y] = cur
        prev = cur
    return out.reshape(height, width, bpp)[:, :, :3]


def _near(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 40) -> int:
    return int((np.abs(pixels.astype(np.int16) - np.array(rgb, dtype=np.int16)).max(axis=2) <= tol).sum())


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A replay report of the demo streams (fraud-v3 drifts, churn-v1 does not)."""
    tmp = tmp_path_factory.mktemp("report")
    events = tmp / "events.jsonl"
    fraud, churn = demo_streams(12_000, 42)
    with open(events, "wb") as out:
        for a, b in zip(generate_events(fraud), generate_events(churn), strict=True):
            out.write(orjson.dumps(a) + b"\n" + orjson.dumps(b) + b"\n")
    report = tmp / "report.html"
    code = main(["replay", "--input", str(events), "--alerts-out", str(tmp / "alerts.jsonl"), "--report", str(report),
                 "--report-dir", str(tmp / "plots"), "--progress", "none"])  # fmt: skip
    assert code == 0
    return report


def test_report_is_self_contained_and_names_what_drifted(demo_report: Path) -> None:
    page = demo_report.read_text(encoding="utf-8")
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page, "no network references"
    assert "<script" not in page and "<img" not in page and "<link" not in page
    for text in ("What drifted, and when", "fraud-v3", "churn-v1", "x0 · psi", "threshold", "warmup, 1,000 obs", "no alerts on"):
        assert text in page, text
    assert page.count("<svg") >= 5
    plots = demo_report.parent / "plots"
    summary = orjson.loads((plots / "summary.json").read_bytes())
    fraud = next(m for m in summary["models"] if m["model"] == "fraud-v3")
    assert {c["channel"] for c in fraud["channels"] if c["alerts_fired"]} >= {"x0", "c0", "x3"}
    assert all((plots / name).is_file() for name in fraud["plots"])
    assert (plots / "timeline--fraud-v3.svg").read_text().startswith("<svg xmlns=")
    churn = next(m for m in summary["models"] if m["model"] == "churn-v1")
    assert churn["alerts_fired"] == 0 and not churn["episodes"]


def test_report_renders_in_headless_chromium(demo_report: Path, tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    screenshot(demo_report, png, tmp_path / "profile")
    pixels = png_pixels(png)
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    assert float(pixels.std()) > 20, "screenshot is (nearly) blank"
    background = _near(pixels, (243, 244, 246), tol=3) + _near(pixels, (255, 255, 255), tol=3)
    assert background < 0.97 * pixels.shape[0] * pixels.shape[1], "nothing but background"
    # the firing episodes are drawn: critical red and warning amber from the timeline and the plots
    assert _near(pixels, (214, 39, 40)) > 2000, "no critical (red) spans rendered"
    assert _near(pixels, (240, 160, 32)) > 200, "no warning (amber) spans rendered"
    # statistic lines in the plots (dark blue)
    assert _near(pixels, (31, 78, 140), tol=30) > 500, "no statistic lines rendered"


def test_same_replay_gives_the_same_report(demo_report: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.html"
    events = demo_report.parent / "events.jsonl"
    assert main(["replay", "--input", str(events), "--alerts-out", str(tmp_path / "a.jsonl"), "--report", str(again),
                 "--progress", "none", "--batch-size", "999"]) == 0  # fmt: skip
    assert again.read_bytes() == demo_report.read_bytes()


def test_hostile_names_are_escaped() -> None:
    c = ReportCollector()
    evil = "<script>alert(1)</script>"
    c.add_evaluations(0, [EvaluationRecord(evil, evil, "psi", t, 0.5, 0.2, True) for t in range(0, 10_000, 1000)])
    c.add_alert(0, example_alert(alert_id="a", severity="critical", model=evil, feature=evil, detector="psi", statistic=0.5,
                                 threshold=0.2, event_time="1970-01-01T00:00:02.000Z", starts_at="1970-01-01T00:00:02.000Z",
                                 reference={"kind": "warmup", "count": 10}, source={"topic": "t", "partition": 0, "offset": 2}))  # fmt: skip
    page = render_html(c.build({}, ReportMeta(source=evil)))
    assert "<script>" not in page and "&lt;script&gt;" in page


def _firing(c: ReportCollector, model: str, feature: str, detector: str = "psi") -> None:
    c.add_evaluations(0, [EvaluationRecord(model, feature, detector, t, 0.5, 0.2, True) for t in range(0, 10_000, 1000)])
    c.add_alert(0, example_alert(alert_id=f"{model}{feature}", severity="critical", model=model, feature=feature, detector=detector,
                                 statistic=0.5, threshold=0.2, event_time="1970-01-01T00:00:02.000Z", starts_at="1970-01-01T00:00:02.000Z",
                                 reference={"kind": "warmup", "count": 10}, source={"topic": "t", "partition": 0, "offset": 2}))  # fmt: skip


def test_report_dir_file_names_are_unique_for_names_that_look_alike(tmp_path: Path) -> None:
    """Models ``team/a`` and ``team:a`` (and channel names with ``--``) each get their own files."""
    c = ReportCollector()
    pairs = [("team/a", "x"), ("team:a", "x"), ("team_a", "x"), ("m--x", "y"), ("m", "x--y")]
    for model, feature in pairs:
        _firing(c, model, feature)
    data = c.build({}, ReportMeta(source="names"))
    files = write_report_dir(data, tmp_path / "dir")
    svgs = [p for p in files if p.suffix == ".svg"]
    models = {m for m, _ in pairs}
    assert len({p.name for p in svgs}) == len(svgs) == len(models) + len(pairs)  # a timeline per model, a panel per channel
    assert all(len(p.name) < 200 and "/" not in p.name and ":" not in p.name for p in svgs)
    assert len({p.slug for m in data.models for p in m.panels}) == len(pairs)


def test_downsampling_bounds_points_and_keeps_spikes() -> None:
    c = ReportCollector(max_points=50)
    evals = [EvaluationRecord("m", "x", "ks", t, 0.01 if t != 77_777 else 0.9, 0.1, t == 77_777) for t in range(200_000)]
    c.add_evaluations(0, evals)
    points = c.series[("m", "x", "ks", 0)].points()
    assert len(points) <= 2 * 51 + 2
    assert max(v for _, v in points) == 0.9, "a one-evaluation spike must survive downsampling"
    assert [t for t, _ in points] == sorted(t for t, _ in points)


def test_docs_screenshot_is_committed() -> None:
    """README shows docs/report-screenshot.png (made with the commands in this module's docstring)."""
    shot = REPO_ROOT / "docs" / "report-screenshot.png"
    assert shot.is_file() and shot.stat().st_size > 10_000
    assert float(png_pixels(shot).std()) > 20


def test_one_timeline_row_per_alerting_channel_naming_its_detectors(demo_report: Path) -> None:
    import re

    svg = (demo_report.parent / "plots" / "timeline--fraud-v3.svg").read_text()
    summary = orjson.loads((demo_report.parent / "plots" / "summary.json").read_bytes())
    fraud = next(m for m in summary["models"] if m["model"] == "fraud-v3")
    alerting = {e["channel"] for e in fraud["episodes"]}
    detectors_of = {ch: {d for e in fraud["episodes"] if e["channel"] == ch for d in e["detectors"]} for ch in alerting}
    assert any(len(d) > 1 for d in detectors_of.values()), "the demo has channels with several alerting detectors"
    labels = re.findall(r'<tspan font-weight="bold">([^<]*)</tspan><tspan fill="#666"> ([^<]*)</tspan>', svg)
    assert sorted(ch for ch, _ in labels) == sorted(alerting)  # one row each, no row per detector
    for ch, detail in labels:
        for d in detectors_of[ch]:
            assert d in detail or "…" in detail


def test_each_alerting_channel_shows_reference_vs_current_when_it_fired(demo_report: Path) -> None:
    page = demo_report.read_text(encoding="utf-8")
    summary = orjson.loads((demo_report.parent / "plots" / "summary.json").read_bytes())
    fraud = next(m for m in summary["models"] if m["model"] == "fraud-v3")
    assert "Reference vs current when each channel fired" in page
    for ch in {e["channel"] for e in fraud["episodes"]}:
        ctype = next(c["type"] for c in fraud["channels"] if c["channel"] == ch)
        what = "histogram" if ctype == "numeric" else "category shares"
        assert f'aria-label="fraud-v3 {ch}: reference vs current {what}"' in page, ch
    # the categorical drift of the demo is a new category: its bar is shown against the reference's 0 %
    assert "unseen" in page and "0 % → " in page


def test_distribution_plot_draws_the_evidence_shares() -> None:
    from stream_monitor.report.collect import Distribution
    from stream_monitor.report.dist import distribution_svg

    ev = {"type": "numeric", "basis": "window",
          "histogram": {"edges": [0.0, 1.0, 2.0], "reference": [0.5, 0.5], "current": [0.2, 0.3], "current_below": 0.0, "current_above": 0.5}}  # fmt: skip
    svg = distribution_svg(Distribution("m", "x", "ks", 0, 0, ev))
    assert "reference 50 %, when it fired 20 %" in svg and "above the reference range: 50 %" in svg


def test_alert_table_says_what_moved(demo_report: Path) -> None:
    page = demo_report.read_text(encoding="utf-8")
    table = page[page.index("<h2>Alert events") :]
    assert "<th>what moved</th>" in table
    assert "mean rose from" in table and "unseen categories" in table and "mean back to" in table


def test_an_estimate_panel_draws_the_realised_metric_next_to_it() -> None:
    c = ReportCollector()
    c.add_evaluations(0, [EvaluationRecord("clf", "__error_rate__", "slo_error_rate", t, 0.17, 0.2, False) for t in range(0, 10_000, 1000)])
    _firing(c, "clf", "__estimated_error_rate__", "slo_error_rate")
    _firing(c, "clf", "x")
    data = c.build({}, ReportMeta(source="estimates"))
    panels = {p.channel: p for m in data.models for p in m.panels}
    assert [s.points[0][1] for s in panels["__estimated_error_rate__"].realised] == [0.17]
    assert panels["x"].realised == []
    page = render_html(data)
    assert page.count(">realised</text>") == 1 and "the realised metric from labels" in page


def test_a_per_class_estimate_panel_draws_the_realised_precision_of_its_class() -> None:
    c = ReportCollector()
    for klass, value in (("refund", 0.66), ("other", 0.9)):
        c.add_evaluations(0, [EvaluationRecord("router", f"__precision__.{klass}", "slo_precision", t, value, 0.75, value < 0.75)
                              for t in range(0, 10_000, 1000)])  # fmt: skip
    _firing(c, "router", "__estimated_precision__.refund", "slo_precision")
    data = c.build({}, ReportMeta(source="estimates"))
    panel = next(p for m in data.models for p in m.panels if p.channel == "__estimated_precision__.refund")
    assert [s.points[0][1] for s in panel.realised] == [0.66]  # refund's realised precision, not another class's


def test_a_model_version_change_is_marked_on_the_models_plots_and_in_its_section(tmp_path: Path) -> None:
    """fraud-v3 switches version halfway through the replay: its section names the change, its plots draw it; churn-v1's do not."""
    import re

    events = tmp_path / "events.jsonl"
    fraud, churn = demo_streams(6_000, 7)
    switch_at = None
    with open(events, "wb") as out:
        for i, (a, b) in enumerate(zip(generate_events(fraud), generate_events(churn), strict=True)):
            if i >= 3_000:
                if switch_at is None:
                    switch_at = a["ts"]
                a["model_version"] = "2026-12-01"
            out.write(orjson.dumps(a) + b"\n" + orjson.dumps(b) + b"\n")
    report = tmp_path / "report.html"
    assert main(["replay", "--input", str(events), "--alerts-out", str(tmp_path / "alerts.jsonl"), "--report", str(report),
                 "--report-dir", str(tmp_path / "plots"), "--progress", "none"]) == 0  # fmt: skip
    page = report.read_text(encoding="utf-8")
    summary = orjson.loads((tmp_path / "plots" / "summary.json").read_bytes())
    changes = {m["model"]: m["version_changes"] for m in summary["models"]}
    from stream_monitor.core.events import format_event_time

    old = fraud.model_version
    assert changes == {"fraud-v3": [{"event_time": format_event_time(switch_at), "from": old, "to": "2026-12-01"}], "churn-v1": []}
    sections = dict(re.findall(r'<section class="card" id="model-([^"]+)">(.*?)</section>', page, re.S))
    fraud_html, churn_html = sections["fraud-v3"], sections["churn-v1"]
    assert "Model version changed: " in fraud_html and f"<b>{old} → 2026-12-01</b>" in fraud_html
    markers = re.findall(r'<g class="version-change"><title>([^<]*)</title><line [^>]*/><text [^>]*>([^<]*)</text></g>', fraud_html)
    n_plots = fraud_html.count('aria-label="alert timeline of fraud-v3"') + fraud_html.count(' statistic over event time"')
    assert n_plots >= 2 and len(markers) == n_plots, (len(markers), n_plots)  # the timeline and every detector panel
    assert all(label == "2026-12-01" and f"{old} → 2026-12-01" in title for title, label in markers)
    assert 'class="version-change"' not in churn_html and "Model version changed" not in churn_html
    panel = next(p for p in summary["models"] if p["model"] == "fraud-v3")["plots"][0]
    assert 'class="version-change"' in (tmp_path / "plots" / panel).read_text()


def test_a_replay_without_a_version_change_marks_none(demo_report: Path) -> None:
    page = demo_report.read_text(encoding="utf-8")
    assert 'class="version-change"' not in page and "Model version changed" not in page
    summary = orjson.loads((demo_report.parent / "plots" / "summary.json").read_bytes())
    assert all(m["version_changes"] == [] for m in summary["models"])
