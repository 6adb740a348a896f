"""The live status page served at ``/`` on the metrics port, and the snapshot behind it.

The monitor's loop updates a :class:`StatusSnapshot` (under a lock) as it processes, commits and
rebalances; the HTTP thread only ever calls :meth:`StatusSnapshot.view` (a copy) and renders it
with :func:`render_status`. Nothing here talks to Kafka. The page is one self-contained HTML
document (inline CSS, no scripts, fonts or images) that reloads itself with a meta refresh, and
every string that comes from data (model, channel, topic names) is HTML-escaped.

>>> s = StatusSnapshot(clock=lambda: 100.0)
>>> s.observe_evaluation("m", "<x>", "psi", 0.3, 0.25, True, 5_000)
>>> s.checkpoint_committed()
>>> page = render_status(s.view())
>>> "&lt;x&gt;" in page and "<x>" not in page, "breached" in page
(True, True)
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from stream_monitor.core.alert import AlertEvent
    from stream_monitor.core.monitor import PartitionMonitor

REFRESH_SECONDS = 5


@dataclass(frozen=True, slots=True)
class DetectorStatus:
    """The latest evaluation of one detector on one channel (partitions merged: the most recent wins)."""

    statistic: float | None
    threshold: float | None
    breached: bool
    event_time_ms: int


@dataclass(frozen=True, slots=True)
class FiringAlert:
    """One firing alert: where, which detector, how severe and since when (event time, ms)."""

    model: str
    channel: str
    detector: str
    severity: str
    since_ms: int | None
    partition: int


@dataclass(frozen=True, slots=True)
class StatusView:
    """An immutable copy of the snapshot, taken under its lock, that the page is rendered from."""

    now: float
    started_at: float
    models: dict[str, dict[str, dict[str, DetectorStatus]]]
    firing: list[FiringAlert]
    lag: dict[tuple[str, int], int]
    last_commit_at: float | None
    checkpoints: int
    checkpoint_failures: int
    failing_since: float | None
    last_error: str | None
    dropped_channels: int = 0
    records: int = 0
    last_records_at: float | None = None
    judge_delay: float | None = None  # seconds judging ran behind the records at its latest sample ...
    judge_delay_at: float | None = None  # ... taken then (wall clock)


@dataclass(slots=True)
class _State:
    models: dict[str, dict[str, dict[str, DetectorStatus]]] = field(default_factory=dict)
    firing: dict[str, FiringAlert] = field(default_factory=dict)
    lag: dict[tuple[str, int], int] = field(default_factory=dict)
    channel_count: int = 0
    dropped_channels: int = 0
    last_commit_at: float | None = None
    checkpoints: int = 0
    checkpoint_failures: int = 0
    failing_since: float | None = None
    last_error: str | None = None
    records: int = 0
    last_records_at: float | None = None
    judge_delay: float | None = None
    judge_delay_at: float | None = None


def _parse_time_ms(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


class StatusSnapshot:
    """What the status page shows, updated by the monitor's loop and read by the HTTP thread.

    ``max_channels`` caps the (model, channel) pairs kept, like the metrics' series cap: past it,
    new channels are only counted. ``clock`` gives wall-clock seconds (for ages on the page).
    """

    def __init__(self, max_channels: int = 2000, clock: Callable[[], float] = time.time) -> None:
        self.max_channels = max_channels
        self.clock = clock
        self.started_at = clock()
        self._lock = threading.Lock()
        self._s = _State()

    # ----------------------------------------------------------- detectors
    def _channel(self, model: str, channel: str) -> dict[str, DetectorStatus] | None:
        channels = self._s.models.setdefault(model, {})
        detectors = channels.get(channel)
        if detectors is None:
            if self._s.channel_count >= self.max_channels:
                self._s.dropped_channels += 1
                return None
            detectors = channels[channel] = {}
            self._s.channel_count += 1
        return detectors

    def observe_evaluation(
        self, model: str, channel: str, detector: str, statistic: float | None, threshold: float | None, breached: bool, event_time_ms: int
    ) -> None:
        """One detector evaluation; the latest in event time is kept."""
        self.observe_evaluations([(model, channel, detector, event_time_ms, statistic, threshold, breached)])

    def observe_evaluations(self, evaluations: Iterable[tuple[str, str, str, int, float | None, float | None, bool]]) -> None:
        """Many evaluations as (model, channel, detector, event_time_ms, statistic, threshold, breached)
        (the field order of :class:`~stream_monitor.core.channel.EvaluationRecord`)."""
        with self._lock:
            for model, channel, detector, t_ms, statistic, threshold, breached in evaluations:
                detectors = self._channel(model, channel)
                if detectors is None:
                    continue
                old = detectors.get(detector)
                if old is None or t_ms >= old.event_time_ms:
                    detectors[detector] = DetectorStatus(statistic, threshold, bool(breached), int(t_ms))

    def observe_channels(self, tasks: Iterable[PartitionMonitor]) -> None:
        """Every channel the partitions' monitors know, also those still warming up."""
        with self._lock:
            for task in tasks:
                for model in task.models.values():
                    for name in model.channels:
                        self._channel(model.model, name)

    def observe_records(self, n: int) -> None:
        """``n`` more records consumed."""
        with self._lock:
            self._s.records += n
            self._s.last_records_at = self.clock()

    def observe_judge_delay(self, seconds: float) -> None:
        """The latest sample of ``stream_monitor_judge_delay_seconds``: how far judging ran behind the records just now."""
        with self._lock:
            self._s.judge_delay = seconds
            self._s.judge_delay_at = self.clock()

    # -------------------------------------------------------------- alerts
    def observe_alert(self, alert: AlertEvent, partition: int) -> None:
        """A committed alert event: a firing one is listed (or updated), a resolved one removed."""
        with self._lock:
            if alert.status != "firing":
                self._s.firing.pop(alert.fingerprint, None)
                return
            self._s.firing[alert.fingerprint] = FiringAlert(
                alert.model, alert.feature, alert.detector, alert.severity, _parse_time_ms(alert.starts_at), partition
            )

    def restore_partition(self, partition: int, task: PartitionMonitor) -> None:
        """A partition's state was restored: list its open episodes as firing alerts."""
        with self._lock:
            for model in task.models.values():
                for channel in model.channels.values():
                    for ep in channel.open_episodes():
                        self._s.firing[ep.fingerprint] = FiringAlert(
                            model.model, channel.name, ep.detector, ep.lifecycle.severity, ep.lifecycle.episode_start_ms, partition
                        )

    def forget_partitions(self, partitions: Iterable[int]) -> None:
        """Partitions revoked: their alerts and lag now belong to the member that owns them."""
        gone = set(partitions)
        with self._lock:
            self._s.firing = {fp: a for fp, a in self._s.firing.items() if a.partition not in gone}
            self._s.lag = {tp: v for tp, v in self._s.lag.items() if tp[1] not in gone}

    # ------------------------------------------------------- lag, checkpoint
    def observe_lag(self, topic: str, partition: int, lag: int) -> None:
        """Consumer lag of one assigned partition (high watermark minus position)."""
        with self._lock:
            self._s.lag[(topic, int(partition))] = int(lag)

    def checkpoint_committed(self) -> None:
        """A checkpoint committed: its age restarts, a failure streak ends."""
        with self._lock:
            self._s.last_commit_at = self.clock()
            self._s.checkpoints += 1
            self._s.failing_since = None

    def checkpoint_failed(self, error: str) -> None:
        """A checkpoint (or the work before it) failed and was rolled back."""
        with self._lock:
            self._s.checkpoint_failures += 1
            self._s.failing_since = self._s.failing_since or self.clock()
            self._s.last_error = error

    def view(self) -> StatusView:
        """A consistent copy to render (the loop keeps updating the snapshot meanwhile)."""
        with self._lock:
            s = self._s
            return StatusView(
                now=self.clock(),
                started_at=self.started_at,
                models={m: {c: dict(d) for c, d in chans.items()} for m, chans in s.models.items()},
                firing=sorted(s.firing.values(), key=lambda a: (a.model, a.channel, a.detector, a.partition)),
                lag=dict(s.lag),
                last_commit_at=s.last_commit_at,
                checkpoints=s.checkpoints,
                checkpoint_failures=s.checkpoint_failures,
                failing_since=s.failing_since,
                last_error=s.last_error,
                dropped_channels=s.dropped_channels,
                records=s.records,
                last_records_at=s.last_records_at,
                judge_delay=s.judge_delay,
                judge_delay_at=s.judge_delay_at,
            )


# ------------------------------------------------------------------ rendering
_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f4f6f9}
header{background:#1d2330;color:#fff;padding:12px 24px;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:18px;margin:0}header span{color:#c5cbd6}
main{padding:8px 24px 24px;display:grid;gap:16px;grid-template-columns:repeat(auto-fit,minmax(min(100%,420px),1fr))}
section{background:#fff;border:1px solid #dde2ea;border-radius:6px;padding:10px 14px;min-width:0}
section.wide{grid-column:1/-1}
h2{font-size:15px;margin:4px 0 8px}h3{font-size:14px;margin:12px 0 4px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eef0f4;vertical-align:top;overflow-wrap:anywhere}
th{font-weight:600;color:#5a6475;font-size:12px;text-transform:uppercase;letter-spacing:.03em;overflow-wrap:normal;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.breached td{background:#fdf0f0}
.det{display:inline-block;margin:1px 4px 1px 0;padding:0 6px;border:1px solid #dde2ea;border-radius:3px;white-space:nowrap;font-size:13px;font-variant-numeric:tabular-nums}
.det.breached{background:#b3261e;border-color:#b3261e;color:#fff;font-weight:600}
.det b{font-weight:600}
.sev{display:inline-block;padding:0 6px;border-radius:3px;color:#fff;font-size:12px}
.sev-critical{background:#b3261e}.sev-warning{background:#c77700}.sev-info{background:#3a6ea5}
.ok{color:#1e7d32;font-weight:600}.bad{color:#b3261e;font-weight:600}.muted{color:#7a8394}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _seconds(seconds: float) -> str:
    """A duration as a person reads it: 0.8 s, 12 s, 4 min, 2.5 h (:func:`_age`'s units, a tenth below 10 s)."""
    return f"{max(seconds, 0.0):.1f} s" if seconds < 10 else _age(seconds).removesuffix(" ago")


def _event_time(ms: int | None) -> str:
    if ms is None:
        return "–"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _firing_section(v: StatusView) -> str:
    if not v.firing:
        return '<section class="wide"><h2>Firing alerts: none</h2></section>'
    rows = "".join(
        f'<tr><td>{_e(a.model)}</td><td>{_e(a.channel)}</td><td>{_e(a.detector)}</td>'
        f'<td><span class="sev sev-{_e(a.severity)}">{_e(a.severity)}</span></td>'
        f'<td>{_e(_event_time(a.since_ms))}</td><td class="num">{a.partition}</td></tr>'
        for a in v.firing
    )
    return (
        f'<section class="wide" id="firing"><h2>Firing alerts: {len(v.firing)}</h2><table>'
        "<tr><th>Model</th><th>Channel</th><th>Detector</th><th>Severity</th><th>Since (event time)</th>"
        f'<th class="num">Partition</th></tr>{rows}</table></section>'
    )


def _detector_chip(name: str, d: DetectorStatus) -> str:
    cls = "det breached" if d.breached else "det"
    mark = " over" if d.breached else ""
    return f'<span class="{cls}" title="statistic / threshold"><b>{_e(name)}</b> {_num(d.statistic)} / {_num(d.threshold)}{mark}</span>'


def _models_section(v: StatusView) -> str:
    if not v.models:
        return '<section class="wide"><h2>Models</h2><p class="muted">No events seen yet.</p></section>'
    parts = ['<section class="wide" id="models"><h2>Models and detectors <span class="muted">(statistic / threshold)</span></h2>']

    def breached(detectors: dict[str, DetectorStatus]) -> int:
        return sum(d.breached for d in detectors.values())

    # models and channels with detectors over threshold first
    order = sorted(v.models, key=lambda m: (-sum(breached(d) for d in v.models[m].values()), m))
    for model in order:
        channels = v.models[model]
        parts.append(f'<h3>{_e(model)} <span class="muted">({len(channels)} channels)</span></h3><table>')
        parts.append("<tr><th>Channel</th><th>Detectors</th></tr>")
        for channel in sorted(channels, key=lambda c: (-breached(channels[c]), c)):
            detectors = channels[channel]
            if not detectors:
                parts.append(f'<tr><td>{_e(channel)}</td><td class="muted">warming up / not evaluated yet</td></tr>')
                continue
            chips = "".join(_detector_chip(name, detectors[name]) for name in sorted(detectors))
            row_class = "breached" if breached(detectors) else "clear"
            parts.append(f'<tr class="{row_class}"><td>{_e(channel)}</td><td>{chips}</td></tr>')
        parts.append("</table>")
    if v.dropped_channels:
        parts.append(f'<p class="muted">{v.dropped_channels} channel(s) not shown (channel cap reached).</p>')
    parts.append("</section>")
    return "".join(parts)


def _lag_section(v: StatusView) -> str:
    if not v.lag:
        body = '<p class="muted">No partitions with records yet.</p>'
    else:
        rows = "".join(
            f'<tr><td>{_e(topic)}</td><td class="num">{p}</td><td class="num">{lag}</td></tr>' for (topic, p), lag in sorted(v.lag.items())
        )
        body = f'<table><tr><th>Topic</th><th class="num">Partition</th><th class="num">Lag (records)</th></tr>{rows}</table>'
    if v.judge_delay is not None and v.judge_delay_at is not None:  # in seconds: how late an alert can be, which records do not say
        body += (
            f'<p>Judging ran <b>{_e(_seconds(v.judge_delay))}</b> behind the records\' timestamps '
            f'<span class="muted">(latest sample, {_e(_age(v.now - v.judge_delay_at))})</span></p>'
        )
    return f'<section id="lag"><h2>Consumer lag</h2>{body}</section>'


def _checkpoint_section(v: StatusView) -> str:
    age = None if v.last_commit_at is None else v.now - v.last_commit_at
    if v.failing_since is not None:
        health = f'<span class="bad">failing for {v.now - v.failing_since:.0f} s</span>'
    else:
        health = '<span class="ok">ok</span>'
    if v.last_records_at is None:
        pending = "no records yet"
    elif v.last_commit_at is not None and v.last_records_at <= v.last_commit_at:
        pending = "none: every record processed is committed (idle since the last commit)"
    else:
        pending = f"records processed since the last commit (latest {_age(v.now - v.last_records_at)})"
    rows = [
        ("Health", health),
        ("Last commit", _e(_age(age))),
        ("Uncommitted work", _e(pending)),
        ("Checkpoints committed", str(v.checkpoints)),
        ("Failures (rolled back)", str(v.checkpoint_failures)),
    ]
    if v.last_error:
        rows.append(("Last error", f'<span class="muted">{_e(v.last_error)}</span>'))
    body = "".join(f"<tr><th>{k}</th><td>{val}</td></tr>" for k, val in rows)
    return f'<section id="checkpoint"><h2>Checkpoints</h2><table>{body}</table></section>'


def render_status(view: StatusView, title: str = "stream-monitor") -> str:
    """The status page as one self-contained HTML document (escaped, no external resources)."""
    breached = sum(d.breached for chans in view.models.values() for dets in chans.values() for d in dets.values())
    started = datetime.fromtimestamp(view.started_at, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{_e(title)} status</title>'
        f"<style>{_CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><span>{len(view.models)} models</span><span>{len(view.firing)} firing</span>"
        f"<span>{breached} detectors over threshold</span><span>{view.records} records</span>"
        f"<span>up since {_e(started)}</span><span>refreshes every {REFRESH_SECONDS} s</span></header>"
        f"<main>{_firing_section(view)}{_lag_section(view)}{_checkpoint_section(view)}{_models_section(view)}</main>"
        "</body></html>\n"
    )
