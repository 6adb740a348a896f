"""The status page at ``/``: the snapshot the loop feeds, its rendering (escaping, content), serving, headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest

from stream_monitor.bridges.mapping import example_alert
from stream_monitor.core.events import SourcePosition
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec
from stream_monitor.ops.health import HealthServer
from stream_monitor.ops.metrics import MonitorMetrics
from stream_monitor.ops.status import REFRESH_SECONDS, StatusSnapshot, render_status
from stream_monitor.synthetic import Drift, StreamSpec, generate_events

HOSTILE = '<script>alert("x")</script>&\'"'


class _Collect(HTMLParser):
    """Tags, attributes and text of a page, to check what a browser would see."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Collect:
    c = _Collect()
    c.feed(page)
    c.close()
    return c


def _alert(fp: str, status: str, model: str = "credit", feature: str = "income", partition: int = 0, severity: str = "critical"):
    return example_alert(
        fingerprint=fp, status=status, severity=severity, kind="data_drift", model=model, feature=feature, detector="psi",
        statistic=0.9, source={"topic": "t", "partition": partition, "offset": 1}, labels={},
        starts_at="2026-01-02T03:04:05Z",
    )  # fmt: skip


def test_user_strings_are_escaped_and_the_page_is_self_contained():
    s = StatusSnapshot()
    s.observe_evaluation(HOSTILE, HOSTILE, "psi", 0.5, 0.25, True, 1)
    s.observe_alert(_alert("fp", "firing", model=HOSTILE, feature=HOSTILE), 0)
    s.observe_lag(HOSTILE, 3, 7)
    s.checkpoint_failed(HOSTILE)
    page = render_status(s.view())
    parsed = _parse(page)
    assert "<script" not in page
    assert not [t for t, _ in parsed.tags if t == "script"]
    # the hostile string survives as text (model, channel, alert, topic, error)
    assert sum(HOSTILE in t for t in parsed.text) >= 5
    # nothing is fetched: no src/href attributes, no url() or @import in the inline style
    assert not [a for _, attrs in parsed.tags for a in attrs if a in ("src", "href")]
    assert "url(" not in page and "@import" not in page
    refresh = [attrs for t, attrs in parsed.tags if t == "meta" and attrs.get("http-equiv") == "refresh"]
    assert refresh and refresh[0]["content"] == str(REFRESH_SECONDS)


def test_page_shows_statistics_against_thresholds_firing_alerts_lag_and_checkpoints():
    now = [1000.0]
    s = StatusSnapshot(clock=lambda: now[0])
    s.observe_evaluation("credit", "income", "psi", 0.41, 0.25, True, 2_000)
    s.observe_evaluation("credit", "income", "psi", 0.05, 0.25, False, 1_000)  # older: ignored
    s.observe_evaluation("credit", "age", "ks", 0.03, 0.1, False, 2_000)
    s.observe_alert(_alert("fp1", "firing"), 0)
    s.observe_alert(_alert("fp2", "firing", feature="age"), 1)
    s.observe_alert(_alert("fp2", "resolved", feature="age"), 1)
    s.observe_lag("inference", 0, 12)
    s.checkpoint_committed()
    now[0] += 30
    page = render_status(s.view())
    text = " ".join(" ".join(_parse(page).text).split())
    rows = dict(re.findall(r'<tr class="(?:breached|clear)"><td>([^<]*)</td><td>(.*?)</td></tr>', page))
    assert re.search(r'class="det breached"[^>]*><b>psi</b> 0\.41 / 0\.25', rows["income"]), rows
    assert re.search(r'class="det"[^>]*><b>ks</b> 0\.03 / 0\.1<', rows["age"]), rows
    assert page.index(">income<") < page.index(">age<")  # channels over threshold first
    assert "Firing alerts: 1" in text  # the resolved one is gone
    assert "credit income psi critical 2026-01-02 03:04:05 UTC 0" in text
    assert "inference 0 12" in text
    assert "Last commit 30 s ago" in text and "Health ok" in text


def test_checkpoint_failures_show_until_the_next_commit():
    now = [50.0]
    s = StatusSnapshot(clock=lambda: now[0])
    s.checkpoint_failed("KafkaTimeoutError()")
    now[0] += 12
    text = " ".join(" ".join(_parse(render_status(s.view())).text).split())
    assert "failing for 12 s" in text and "Failures (rolled back) 1" in text and "Last commit never" in text
    s.checkpoint_committed()
    text = " ".join(" ".join(_parse(render_status(s.view())).text).split())
    assert "failing" not in text and "Health ok" in text


def test_channel_cap_counts_what_it_does_not_show():
    s = StatusSnapshot(max_channels=2)
    for i in range(5):
        s.observe_evaluation("m", f"c{i}", "psi", 0.1, 0.2, False, i)
    view = s.view()
    assert sum(len(c) for c in view.models.values()) == 2 and view.dropped_channels == 3
    assert "3 channel(s) not shown" in render_status(view)


def test_metrics_feed_the_status_alerts_restore_and_revocation():
    spec = MonitorSpec()
    events = generate_events(StreamSpec(model="m", n_events=6000, seed=3, n_numeric=2, n_categorical=0, drifts=(Drift("mean_shift", "x0", 2000, None, amount=3.0),)))
    task = PartitionMonitor(spec, 0)
    result = task.process([InputRecord(orjson.dumps(e), SourcePosition("t", 0, i, None)) for i, e in enumerate(events)], record_evaluations=True)
    firing = {a.fingerprint for a in result.alerts if a.event.status == "firing"} - {a.fingerprint for a in result.alerts if a.event.status == "resolved"}
    assert firing and result.evaluations
    m = MonitorMetrics()
    m.status.observe_evaluations(result.evaluations)
    m.status.observe_channels([task])
    m.restore_partition(0, task)
    view = m.status.view()
    expected = {(a.event.feature, a.event.detector) for a in result.alerts if a.fingerprint in firing}
    assert {(a.channel, a.detector) for a in view.firing} == expected and len(view.firing) == len(firing)
    assert set(view.models["m"]) >= {"x0", "x1"}
    assert any(d.breached for d in view.models["m"]["x0"].values())
    m.forget_partitions([0])
    assert m.status.view().firing == []


def test_health_server_serves_the_status_page():
    m = MonitorMetrics()
    m.status.observe_evaluation("credit", "income", "psi", 0.41, 0.25, True, 1)
    server = HealthServer(m, "127.0.0.1", 0, lambda: (True, "app")).start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=5) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
            assert r.headers["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'"
            assert "income" in r.read().decode()
    finally:
        server.stop()


def chromium() -> str | None:
    """The headless Chromium binary, when installed."""
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed")
def test_headless_chromium_renders_the_page(tmp_path: Path):
    s = StatusSnapshot()
    s.observe_evaluation("credit", "income", "psi", 0.41, 0.25, True, 1)
    s.observe_alert(_alert("fp1", "firing"), 0)
    page = tmp_path / "status.html"
    page.write_text(render_status(s.view()), encoding="utf-8")
    dom = dump_dom(page.as_uri())
    assert "Firing alerts: 1" in dom and "income" in dom
    shot = tmp_path / "status.png"
    screenshot(page.as_uri(), shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _chromium_args(*extra: str) -> list[str]:
    binary = chromium()
    assert binary is not None
    return [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", *extra]


def dump_dom(url: str) -> str:
    """The DOM headless Chromium built from ``url``."""
    return subprocess.run(_chromium_args("--dump-dom", url), capture_output=True, text=True, timeout=120, check=True).stdout


def screenshot(url: str, out: Path, size: str = "1280,900") -> None:
    """A PNG screenshot of ``url`` taken by headless Chromium."""
    subprocess.run(_chromium_args(f"--screenshot={out}", f"--window-size={size}", url), capture_output=True, timeout=120, check=True)


def test_an_idle_monitor_says_everything_is_committed():
    now = [10.0]
    s = StatusSnapshot(clock=lambda: now[0])
    s.observe_records(100)
    now[0] += 1
    text = " ".join(" ".join(_parse(render_status(s.view())).text).split())
    assert "Uncommitted work records processed since the last commit" in text
    s.checkpoint_committed()
    now[0] += 600  # idle: no commit needed, the last one ages
    text = " ".join(" ".join(_parse(render_status(s.view())).text).split())
    assert "Last commit 10 min ago" in text and "every record processed is committed" in text


def test_the_page_says_how_far_judging_runs_behind_the_records():
    now = [1000.0]
    m = MonitorMetrics()
    m.status.clock = lambda: now[0]
    m.status.observe_lag("inference", 0, 3)
    assert "behind the records" not in render_status(m.status.view())  # nothing judged yet: nothing said
    rows = [type("R", (), {"position": SourcePosition("inference", 0, i, 998_200 + i)})() for i in range(64)]
    m.observe_judged(rows, now[0])  # the first of them is sampled: 1.8 s behind
    now[0] += 12
    text = " ".join(" ".join(_parse(render_status(m.status.view())).text).split())
    assert "Judging ran 1.8 s behind the records' timestamps (latest sample, 12 s ago)" in text, text
