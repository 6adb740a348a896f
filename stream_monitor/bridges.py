"""``stream-monitor bridge alertmanager|pagerduty``: forward alert events to on-call tooling.

A bridge is a consumer group of its own on the alert topic (``read_committed``, manual commits).
It reads alert events in (partition, offset) order, maps them, POSTs them to the receiver and
commits the offsets only after the receiver accepted them (HTTP 2xx). Until then it retries with
exponential backoff and jitter (429, 408, 5xx, connection errors; a ``Retry-After`` header is
honoured up to the maximum delay); a 4xx other than 408/429 is a permanent rejection of that one
alert: it is logged, counted (``stream_monitor_bridge_deliveries_total{outcome="rejected"}``) and
skipped, so one malformed alert cannot block paging for all the others. Delivery is therefore
at-least-once; both receivers deduplicate (Alertmanager by label set, PagerDuty by ``dedup_key``).

Alertmanager (``POST {url}/api/v2/alerts``, several ``--url`` for an HA pair: accepted when one
accepts, as Prometheus does):

- ``alertname`` = ``StreamMonitor`` + the kind in CamelCase: ``StreamMonitorDataDrift``,
  ``StreamMonitorPredictionDrift``, ``StreamMonitorDataQuality``, ``StreamMonitorPerformance``.
- labels: the alert's ``labels`` (team, owner, env, ..., ``partition``), then ``--label K=V``, then
  ``alertname``, ``model``, ``feature``, ``detector``, ``severity``, ``kind``, ``partition`` (ours
  win). Label names are sanitised to ``[a-zA-Z_][a-zA-Z0-9_]*``; empty values are dropped.
- annotations: the alert's annotations (summary, description, runbook_url, ...) plus statistic,
  threshold, p_value, model_version, alert_id, fingerprint, event_time, window, reference,
  source and monitor instance, all as strings.
- ``startsAt`` = ``starts_at``; a firing alert gets ``endsAt`` = now + 4 x ``--resend-interval``
  (Prometheus' rule) and is re-sent every ``--resend-interval`` seconds while it fires; a resolved
  one gets ``endsAt`` = ``ends_at``. Both are clamped to the bridge's clock (event time may run
  ahead of or behind the wall clock), so a resolved alert is resolved *now* in Alertmanager.
- An escalation (same fingerprint, higher severity) changes the label set: the old label set is
  sent with ``endsAt`` = now, so Alertmanager does not keep a stale warning next to the critical.
- ``generatorURL`` = ``--generator-url``: a template with ``{model}``, ``{feature}``,
  ``{detector}``, ``{fingerprint}``, ``{partition}``, ``{alert_id}`` (URL-quoted), or a plain base
  to which ``?model=..&feature=..&detector=..&fingerprint=..`` is appended.
- On (re)assignment the bridge rebuilds the set of firing alerts of its partitions by reading
  them up to the committed offset (the alert topic is compacted by fingerprint) and re-sends them
  at once, so a restarted bridge keeps Alertmanager's alerts alive.

PagerDuty Events API v2 (``--url`` default ``https://events.pagerduty.com/v2/enqueue``):
``routing_key``; ``event_action`` ``trigger`` (firing) / ``resolve`` (resolved); ``dedup_key`` =
``fingerprint``; ``payload.summary`` (annotation ``summary``, <= 1024 chars), ``payload.source`` =
model, ``payload.severity`` = severity (info/warning/critical map to themselves),
``payload.timestamp`` = ``starts_at``, ``payload.component`` = feature, ``payload.group`` = kind,
``payload.class`` = detector, ``payload.custom_details`` = the alert's facts; ``links`` = the
runbook; ``client``/``client_url`` = stream-monitor and the generator URL. The routing key comes
from ``--routing-key``, ``--routing-key-file`` or ``STREAM_MONITOR_PAGERDUTY_ROUTING_KEY(_FILE)``
and is never logged.

HTTP uses the standard library's ``urllib``: one JSON POST at a time needs no connection pool,
and the sidecar image stays free of another dependency.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import re
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson
import structlog
from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from stream_monitor.config import AppConfig, KafkaSettings
from stream_monitor.core.events import AlertEvent, parse_event_time
from stream_monitor.metrics import BridgeMetrics, BrokerProbe, HealthServer
from stream_monitor.streaming import clients

log = structlog.get_logger("stream_monitor.bridge")

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SEVERITY = {"info": "info", "warning": "warning", "critical": "critical"}

# Environment variables of the bridge (flags win). Not config-file settings: a bridge is
# configured by its command line; the Kafka connection comes from the usual config/env.
BRIDGE_ENV: dict[str, str] = {
    "STREAM_MONITOR_BRIDGE_URL": "--url",
    "STREAM_MONITOR_BRIDGE_GROUP_ID": "--group-id",
    "STREAM_MONITOR_BRIDGE_RESEND_INTERVAL": "--resend-interval",
    "STREAM_MONITOR_BRIDGE_GENERATOR_URL": "--generator-url",
    "STREAM_MONITOR_BRIDGE_LABELS": "--label (comma-separated K=V)",
    "STREAM_MONITOR_BRIDGE_METRICS_PORT": "--metrics-port",
    "STREAM_MONITOR_PAGERDUTY_ROUTING_KEY": "--routing-key",
    "STREAM_MONITOR_PAGERDUTY_ROUTING_KEY_FILE": "--routing-key-file",
}

Outcome = Literal["accepted", "retry", "rejected"]
_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")


# ------------------------------------------------------------------------------------ options
@dataclass(frozen=True)
class BridgeOptions:
    target: Literal["alertmanager", "pagerduty"]
    urls: tuple[str, ...]
    group_id: str
    resend_interval_s: float = 60.0
    generator_url: str | None = None
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    routing_key: str | None = field(default=None, repr=False)
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    request_timeout_s: float = 10.0
    epoch_s: float = 60.0  # longest stretch of retries before going back to poll (group liveness)
    max_batch: int = 200
    metrics_port: int | None = None


class BridgeUsageError(ValueError):
    """A missing or bad bridge option (exit code 2)."""


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def parse_labels(values: Sequence[str]) -> dict[str, str]:
    """``["team=risk", "env=prod,tier=1"]`` -> labels (names sanitised).

    >>> parse_labels(["team=risk", "env=prod, tier=1"])
    {'team': 'risk', 'env': 'prod', 'tier': '1'}
    """
    out: dict[str, str] = {}
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, val = part.partition("=")
            if not sep or not key.strip():
                raise BridgeUsageError(f"--label must be K=V, got {part!r}")
            out[label_name(key.strip())] = val.strip()
    return out


def options_from_args(args: argparse.Namespace, cfg: AppConfig) -> BridgeOptions:
    target = args.target
    url_text = getattr(args, "url", None) or _env("STREAM_MONITOR_BRIDGE_URL")
    if target == "alertmanager":
        if not url_text:
            raise BridgeUsageError("bridge alertmanager needs --url (or STREAM_MONITOR_BRIDGE_URL), e.g. http://alertmanager:9093")
        urls = tuple(u.strip().rstrip("/") for u in url_text.split(",") if u.strip())
    else:
        urls = (url_text or PAGERDUTY_EVENTS_URL,)
    routing_key = None
    if target == "pagerduty":
        routing_key = getattr(args, "routing_key", None) or _env("STREAM_MONITOR_PAGERDUTY_ROUTING_KEY")
        key_file = getattr(args, "routing_key_file", None) or _env("STREAM_MONITOR_PAGERDUTY_ROUTING_KEY_FILE")
        if routing_key and key_file:
            raise BridgeUsageError("give the PagerDuty routing key once: --routing-key or --routing-key-file")
        if key_file:
            try:
                routing_key = Path(key_file).read_text().strip()
            except OSError as exc:
                raise BridgeUsageError(f"--routing-key-file: cannot read {key_file}: {exc.strerror or exc}") from None
        if not routing_key:
            raise BridgeUsageError(
                "bridge pagerduty needs a routing key: --routing-key-file, --routing-key or STREAM_MONITOR_PAGERDUTY_ROUTING_KEY(_FILE)"
            )
    resend = getattr(args, "resend_interval", None)
    if resend is None:
        resend = float(_env("STREAM_MONITOR_BRIDGE_RESEND_INTERVAL") or 60.0)
    if resend <= 0:
        raise BridgeUsageError(f"--resend-interval must be > 0, got {resend}")
    labels = parse_labels([_env("STREAM_MONITOR_BRIDGE_LABELS") or "", *(getattr(args, "label", None) or [])])
    group = getattr(args, "group_id", None) or _env("STREAM_MONITOR_BRIDGE_GROUP_ID") or f"{cfg.kafka.group_id}-bridge-{target}"
    metrics_port = getattr(args, "metrics_port", None)
    if metrics_port is None and _env("STREAM_MONITOR_BRIDGE_METRICS_PORT"):
        metrics_port = int(_env("STREAM_MONITOR_BRIDGE_METRICS_PORT") or 0)
    retry_initial = getattr(args, "retry_initial", None) or 0.5
    retry_max = getattr(args, "retry_max", None) or 30.0
    if retry_initial <= 0 or retry_max < retry_initial:
        raise BridgeUsageError("need 0 < --retry-initial <= --retry-max")
    return BridgeOptions(
        target=target,
        urls=urls,
        group_id=group,
        resend_interval_s=float(resend),
        generator_url=getattr(args, "generator_url", None) or _env("STREAM_MONITOR_BRIDGE_GENERATOR_URL"),
        extra_labels=labels,
        routing_key=routing_key,
        retry_initial_s=float(retry_initial),
        retry_max_s=float(retry_max),
        request_timeout_s=float(getattr(args, "timeout", None) or 10.0),
        metrics_port=metrics_port,
    )


# ------------------------------------------------------------------------------------ mapping
def label_name(name: str) -> str:
    """A valid Prometheus/Alertmanager label name.

    >>> label_name("runbook-url"), label_name("1x"), label_name("team")
    ('runbook_url', '_1x', 'team')
    """
    clean = _LABEL_NAME.sub("_", name) or "_"
    return "_" + clean if clean[0].isdigit() else clean


def alertname(kind: str) -> str:
    """``data_drift`` -> ``StreamMonitorDataDrift``.

    >>> [alertname(k) for k in ("data_drift", "prediction_drift", "data_quality", "performance")]
    ['StreamMonitorDataDrift', 'StreamMonitorPredictionDrift', 'StreamMonitorDataQuality', 'StreamMonitorPerformance']
    """
    return "StreamMonitor" + "".join(part.capitalize() for part in kind.split("_"))


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc)


def generator_link(template: str | None, alert: AlertEvent) -> str | None:
    """The ``generatorURL`` / PagerDuty ``client_url`` of an alert (see the module doc).

    >>> a = example_alert()
    >>> generator_link("https://grafana/d/drift?var-model={model}&var-feature={feature}", a)
    'https://grafana/d/drift?var-model=fraud-v3&var-feature=amount'
    >>> generator_link("https://mon", a)
    'https://mon?model=fraud-v3&feature=amount&detector=psi&fingerprint=d1ec213e1c33ae91'
    """
    if not template:
        return None
    values = {
        "model": alert.model,
        "feature": alert.feature,
        "detector": alert.detector,
        "fingerprint": alert.fingerprint,
        "partition": str(alert.source.partition),
        "alert_id": alert.alert_id,
    }
    if "{" in template:
        return template.format(**{k: urllib.parse.quote(v, safe="") for k, v in values.items()})
    query = urllib.parse.urlencode({k: values[k] for k in ("model", "feature", "detector", "fingerprint")})
    return f"{template}{'&' if '?' in template else '?'}{query}"


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


def alert_facts(alert: AlertEvent) -> dict[str, Any]:
    """The alert's facts for annotations / custom_details (no labels, no free text)."""
    return {
        "alert_id": alert.alert_id,
        "fingerprint": alert.fingerprint,
        "model_version": alert.model_version,
        "statistic": alert.statistic,
        "threshold": alert.threshold,
        "p_value": alert.p_value,
        "event_time": alert.event_time,
        "starts_at": alert.starts_at,
        "ends_at": alert.ends_at,
        "window": alert.window.model_dump(),
        "reference": alert.reference.model_dump(),
        "source": alert.source.model_dump(),
        "monitor_instance": alert.monitor.instance,
        "monitor_version": alert.monitor.version,
    }


def alertmanager_labels(alert: AlertEvent, extra: Mapping[str, str]) -> dict[str, str]:
    """The Alertmanager label set (identity) of an alert: see the module doc for the order."""
    labels: dict[str, str] = {label_name(k): str(v) for k, v in alert.labels.items()}
    labels.update({label_name(k): str(v) for k, v in extra.items()})
    labels.update(
        {
            "alertname": alertname(alert.kind),
            "model": alert.model,
            "feature": alert.feature,
            "detector": alert.detector,
            "severity": alert.severity,
            "kind": alert.kind,
            "partition": str(alert.source.partition),
        }
    )
    return {k: v for k, v in labels.items() if v != ""}


def alertmanager_alert(
    alert: AlertEvent,
    *,
    now: datetime,
    ttl_s: float,
    extra_labels: Mapping[str, str] | None = None,
    generator_url: str | None = None,
) -> dict[str, Any]:
    """One element of the ``POST /api/v2/alerts`` body (Alertmanager's ``postableAlert``).

    >>> now = datetime(2026, 1, 2, tzinfo=timezone.utc)
    >>> am = alertmanager_alert(example_alert(), now=now, ttl_s=240, extra_labels={"cluster": "eu1"})
    >>> am["labels"]["alertname"], am["labels"]["severity"], am["labels"]["team"], am["labels"]["cluster"]
    ('StreamMonitorDataDrift', 'warning', 'risk-ml', 'eu1')
    >>> am["startsAt"], am["endsAt"], am["annotations"]["statistic"]
    ('2026-01-01T00:00:00.000Z', '2026-01-02T00:04:00.000Z', '0.31')
    >>> resolved = example_alert(status="resolved", ends_at="2026-01-01T01:00:00.000Z")
    >>> alertmanager_alert(resolved, now=now, ttl_s=240)["endsAt"]
    '2026-01-01T01:00:00.000Z'
    """
    starts = min(_ms_to_dt(parse_event_time(alert.starts_at)), now)
    if alert.status == "firing":
        ends = now + timedelta(seconds=ttl_s)
    else:
        ended = _ms_to_dt(parse_event_time(alert.ends_at)) if alert.ends_at else now
        ends = max(min(ended, now), starts)
    annotations: dict[str, str] = {label_name(k): str(v) for k, v in alert.annotations.items()}
    facts = alert_facts(alert)
    for key in ("statistic", "threshold", "p_value"):
        annotations[key] = _fmt(facts[key])
    for key in ("alert_id", "fingerprint", "model_version", "event_time", "monitor_instance"):
        if facts[key] is not None:
            annotations[key] = str(facts[key])
    annotations["window"] = json.dumps(facts["window"], sort_keys=True)
    annotations["reference"] = json.dumps(facts["reference"], sort_keys=True)
    annotations["source"] = f"{alert.source.topic}/{alert.source.partition}@{alert.source.offset}"
    out: dict[str, Any] = {
        "labels": alertmanager_labels(alert, extra_labels or {}),
        "annotations": {k: v for k, v in annotations.items() if v != ""},
        "startsAt": _iso(starts),
        "endsAt": _iso(ends),
    }
    link = generator_link(generator_url, alert)
    if link:
        out["generatorURL"] = link
    return out


def pagerduty_event(alert: AlertEvent, routing_key: str, generator_url: str | None = None) -> dict[str, Any]:
    """A PagerDuty Events API v2 event for an alert event.

    >>> ev = pagerduty_event(example_alert(annotations={"summary": "drift", "runbook_url": "https://rb"}), "R" * 32)
    >>> ev["event_action"], ev["dedup_key"], ev["payload"]["severity"], ev["payload"]["source"], ev["links"]
    ('trigger', 'd1ec213e1c33ae91', 'warning', 'fraud-v3', [{'href': 'https://rb', 'text': 'Runbook'}])
    >>> pagerduty_event(example_alert(status="resolved"), "R" * 32)
    {'routing_key': 'RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR', 'event_action': 'resolve', 'dedup_key': 'd1ec213e1c33ae91'}
    """
    if alert.status == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": alert.fingerprint}
    summary = alert.annotations.get("summary") or (
        f"{alert.kind.replace('_', ' ')} on {alert.model}/{alert.feature}: {alert.detector} {_fmt(alert.statistic)}"
    )
    details: dict[str, Any] = {**alert_facts(alert), "labels": dict(alert.labels), "kind": alert.kind}
    for key in ("description", "runbook_url"):
        if alert.annotations.get(key):
            details[key] = alert.annotations[key]
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.fingerprint,
        "payload": {
            "summary": summary[:1024],
            "source": alert.model,
            "severity": PAGERDUTY_SEVERITY[alert.severity],
            "timestamp": alert.starts_at,
            "component": alert.feature,
            "group": alert.kind,
            "class": alert.detector,
            "custom_details": details,
        },
        "client": "stream-monitor",
    }
    link = generator_link(generator_url, alert)
    if link:
        event["client_url"] = link
    runbook = alert.annotations.get("runbook_url")
    if runbook:
        event["links"] = [{"href": runbook, "text": "Runbook"}]
    return event


def example_alert(**overrides: Any) -> AlertEvent:
    """A valid alert event for examples and tests."""
    data: dict[str, Any] = {
        "schema_version": 1,
        "alert_id": "a" * 32,
        "fingerprint": "d1ec213e1c33ae91",
        "status": "firing",
        "severity": "warning",
        "kind": "data_drift",
        "model": "fraud-v3",
        "model_version": "2026-11-01",
        "feature": "amount",
        "detector": "psi",
        "statistic": 0.31,
        "threshold": 0.2,
        "p_value": None,
        "event_time": "2026-01-01T00:00:05.000Z",
        "starts_at": "2026-01-01T00:00:00.000Z",
        "ends_at": None,
        "window": {"start": "2026-01-01T00:00:00.000Z", "end": "2026-01-01T00:00:05.000Z", "count": 1000},
        "reference": {"kind": "warmup", "count": 1000},
        "source": {"topic": "inference-events", "partition": 0, "offset": 1234},
        "labels": {"team": "risk-ml", "partition": "0"},
        "annotations": {"summary": "data drift on fraud-v3/amount", "runbook_url": "https://runbooks/drift"},
        "monitor": {"instance": "test", "version": "0"},
    }
    data.update(overrides)
    return AlertEvent.model_validate(data)


# ------------------------------------------------------------------------------------ HTTP
@dataclass(frozen=True)
class HttpResult:
    outcome: Outcome
    status: int | None
    detail: str
    retry_after_s: float | None = None


def classify_status(status: int) -> Outcome:
    """2xx accepted; 408, 429 and 5xx retried; any other status is a permanent rejection.

    >>> [classify_status(s) for s in (200, 202, 400, 404, 408, 429, 500, 503)]
    ['accepted', 'accepted', 'rejected', 'rejected', 'retry', 'retry', 'retry', 'retry']
    """
    if 200 <= status < 300:
        return "accepted"
    if status in (408, 429) or status >= 500:
        return "retry"
    return "rejected"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


def post_json(url: str, body: bytes, timeout_s: float, user_agent: str) -> HttpResult:
    """POST a JSON body; never raises for HTTP or network errors (they become a result)."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": user_agent}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - URL is operator config
            response.read(65536)
            status = int(response.status)
            return HttpResult(classify_status(status), status, "ok")
    except urllib.error.HTTPError as exc:
        try:
            text = exc.read(2048).decode("utf-8", "replace").strip()
        except Exception:  # noqa: BLE001 - the body is only for the log
            text = ""
        return HttpResult(classify_status(exc.code), exc.code, text[:500] or str(exc.reason), _retry_after(exc.headers.get("Retry-After")))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return HttpResult("retry", None, f"{exc.__class__.__name__}: {reason}")


class Backoff:
    """Exponential backoff with equal jitter: delay d doubles from ``initial`` to ``maximum``."""

    def __init__(self, initial_s: float, maximum_s: float, rng: random.Random | None = None) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.rng = rng or random.Random()
        self.attempt = 0

    def next_delay(self, retry_after_s: float | None = None) -> float:
        base = min(self.maximum_s, self.initial_s * (2**self.attempt))
        self.attempt += 1
        delay = base / 2 + self.rng.uniform(0, base / 2)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.maximum_s))
        return delay

    def reset(self) -> None:
        self.attempt = 0


# ------------------------------------------------------------------------------------ sinks
@dataclass(frozen=True)
class Item:
    """One alert-topic record: where it is, and the alert event (None: not a valid alert)."""

    tp: TopicPartition
    offset: int
    alert: AlertEvent | None


class Sink(Protocol):
    target: str
    needs_history: bool

    def deliver(self, items: Sequence[Item], deadline: float) -> int:
        """Deliver in order; return how many leading items are done (accepted or skipped)."""
        ...

    def tick(self) -> None:
        """Periodic work (re-sends); never blocks for long."""
        ...

    def restore(self, alert: AlertEvent, tp: TopicPartition | None = None) -> None:
        """An alert already delivered before (history up to the committed offset)."""
        ...

    def after_restore(self) -> None:
        """History replayed: resume (e.g. re-send what fires)."""
        ...

    def forget(self, partitions: set[TopicPartition]) -> None:
        """These alert-topic partitions are no longer ours."""
        ...


class _HttpSink:
    """Retry/backoff shared by both sinks."""

    target = "http"

    def __init__(self, opts: BridgeOptions, metrics: BridgeMetrics, stop: threading.Event, post: Callable[..., HttpResult] = post_json) -> None:
        from stream_monitor import __version__

        self.opts = opts
        self.metrics = metrics
        self.stop = stop
        self.post = post
        self.backoff = Backoff(opts.retry_initial_s, opts.retry_max_s)
        self.user_agent = f"stream-monitor/{__version__}"
        self.log = log.bind(target=opts.target)

    def _attempt(self, url: str, body: bytes) -> HttpResult:
        started = time.perf_counter()
        result = self.post(url, body, self.opts.request_timeout_s, self.user_agent)
        self.metrics.delivery_seconds.labels(self.opts.target).observe(time.perf_counter() - started)
        self.metrics.deliveries.labels(self.opts.target, result.outcome).inc()
        if result.outcome == "accepted":
            self.metrics.last_success.labels(self.opts.target).set_to_current_time()
        return result

    def _until_settled(self, send: Callable[[], HttpResult], deadline: float, what: dict[str, Any]) -> HttpResult | None:
        """Call ``send`` until accepted or rejected; None when stopping or past ``deadline``."""
        while True:
            result = send()
            if result.outcome != "retry":
                self.backoff.reset()
                return result
            delay = self.backoff.next_delay(result.retry_after_s)
            self.log.warning(
                "delivery_retry", http_status=result.status, detail=result.detail, retry_in_s=round(delay, 3), attempt=self.backoff.attempt, **what
            )
            if self.stop.is_set() or time.monotonic() + delay > deadline:
                return None
            if self.stop.wait(delay):
                return None


class AlertmanagerSink(_HttpSink):
    """Posts to Alertmanager's ``/api/v2/alerts`` and keeps firing alerts alive by re-sending."""

    target = "alertmanager"
    needs_history = True

    def __init__(self, opts: BridgeOptions, metrics: BridgeMetrics, stop: threading.Event, post: Callable[..., HttpResult] = post_json, clock: Callable[[], datetime] | None = None) -> None:
        super().__init__(opts, metrics, stop, post)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.ttl_s = 4 * opts.resend_interval_s
        # fingerprint -> (alert-topic partition, last alert event, label set last sent)
        self.active: dict[str, tuple[TopicPartition, AlertEvent]] = {}
        self.sent_labels: dict[str, dict[str, str]] = {}
        self.next_resend = time.monotonic() + opts.resend_interval_s

    def _payload(self, alert: AlertEvent, now: datetime) -> dict[str, Any]:
        return alertmanager_alert(alert, now=now, ttl_s=self.ttl_s, extra_labels=self.opts.extra_labels, generator_url=self.opts.generator_url)

    def _post_all(self, payloads: list[dict[str, Any]]) -> HttpResult:
        body = orjson.dumps(payloads)
        results = [self._attempt(f"{url}/api/v2/alerts", body) for url in self.opts.urls]
        for r in results:
            if r.outcome == "accepted":
                return r
        if all(r.outcome == "rejected" for r in results):
            return results[0]
        retry_after = [r.retry_after_s for r in results if r.retry_after_s is not None]
        detail = "; ".join(f"{u}: {r.status or ''} {r.detail}".strip() for u, r in zip(self.opts.urls, results, strict=True))
        return HttpResult("retry", results[0].status, detail, max(retry_after) if retry_after else None)

    def _stale_label_sets(self, alert: AlertEvent, labels: dict[str, str], now: datetime) -> list[dict[str, Any]]:
        """An escalation changed the label set: end the old one now."""
        previous = self.sent_labels.get(alert.fingerprint)
        if previous is None or previous == labels:
            return []
        ended = self._payload(alert, now)
        ended["labels"] = previous
        ended["endsAt"] = _iso(now)
        if ended["startsAt"] > ended["endsAt"]:
            ended["startsAt"] = ended["endsAt"]
        return [ended]

    def deliver(self, items: Sequence[Item], deadline: float) -> int:
        alerts = [it for it in items if it.alert is not None]
        if not alerts:
            return len(items)
        now = self.clock()
        # the last event per fingerprint wins (a firing and its resolve in one batch)
        last: dict[str, Item] = {}
        for it in alerts:
            last[it.alert.fingerprint] = it  # type: ignore[union-attr]
        tagged: list[tuple[str, dict[str, Any]]] = []  # (fingerprint, payload)
        new_labels: dict[str, dict[str, str]] = {}
        for fp, it in last.items():
            alert = it.alert
            assert alert is not None
            payload = self._payload(alert, now)
            tagged.extend((fp, stale) for stale in self._stale_label_sets(alert, payload["labels"], now))
            tagged.append((fp, payload))
            new_labels[fp] = payload["labels"]
        payloads = [p for _, p in tagged]
        what = {"alerts": len(payloads), "fingerprints": sorted(last)[:20]}
        result = self._until_settled(lambda: self._post_all(payloads), deadline, what)
        if result is None:
            return 0
        rejected: set[str] = set()
        if result.outcome == "rejected":
            isolated = self._isolate(tagged, deadline)
            if isolated is None:
                return 0  # nothing committed; the accepted ones are re-sent later (idempotent)
            rejected = isolated
        for fp, it in last.items():
            alert = it.alert
            assert alert is not None
            if fp in rejected:  # never re-send what the receiver refuses: it would fail every re-send
                self.active.pop(fp, None)
                self.sent_labels.pop(fp, None)
            elif alert.status == "firing":
                self.active[fp] = (it.tp, alert)
                self.sent_labels[fp] = new_labels[fp]
            else:
                self.active.pop(fp, None)
                self.sent_labels.pop(fp, None)
            self.log.info("alert_forwarded", fingerprint=fp, status=alert.status, severity=alert.severity, model=alert.model, feature=alert.feature, detector=alert.detector)
        self.metrics.active.labels(self.target).set(len(self.active))
        return len(items)

    def _isolate(self, tagged: list[tuple[str, dict[str, Any]]], deadline: float) -> set[str] | None:
        """A batch was rejected: post one by one; return the fingerprints refused (None: gave up)."""
        self.log.warning("batch_rejected_isolating", alerts=len(tagged))
        rejected: set[str] = set()
        for fp, payload in tagged:
            single = self._until_settled(functools.partial(self._post_all, [payload]), deadline, {"labels": payload["labels"]})
            if single is None:
                return None
            if single.outcome == "rejected":
                rejected.add(fp)
                self.log.error("alert_rejected", fingerprint=fp, http_status=single.status, detail=single.detail, labels=payload["labels"])
        return rejected

    def tick(self) -> None:
        if time.monotonic() < self.next_resend:
            return
        if not self.active:
            self.next_resend = time.monotonic() + self.opts.resend_interval_s
            return
        now = self.clock()
        tagged = [(fp, self._payload(alert, now)) for fp, (_, alert) in self.active.items()]
        result = self._post_all([p for _, p in tagged])
        if result.outcome == "retry":
            delay = min(self.opts.resend_interval_s, self.backoff.next_delay(result.retry_after_s))
            self.log.warning("resend_failed", http_status=result.status, detail=result.detail, alerts=len(tagged), retry_in_s=round(delay, 3))
            self.next_resend = time.monotonic() + delay
            return
        self.backoff.reset()
        if result.outcome == "rejected":
            rejected = self._isolate(tagged, time.monotonic() + min(self.opts.epoch_s, self.opts.resend_interval_s)) or set()
            for fp in rejected:
                self.active.pop(fp, None)
                self.sent_labels.pop(fp, None)
            self.metrics.active.labels(self.target).set(len(self.active))
        else:
            self.log.debug("resent", alerts=len(tagged))
        self.next_resend = time.monotonic() + self.opts.resend_interval_s

    def restore(self, alert: AlertEvent, tp: TopicPartition | None = None) -> None:
        fp = alert.fingerprint
        if alert.status == "firing" and tp is not None:
            self.active[fp] = (tp, alert)
            self.sent_labels[fp] = alertmanager_labels(alert, self.opts.extra_labels)
        else:
            self.active.pop(fp, None)
            self.sent_labels.pop(fp, None)

    def after_restore(self) -> None:
        self.metrics.active.labels(self.target).set(len(self.active))
        self.next_resend = time.monotonic()  # re-send the restored firing alerts at once

    def forget(self, partitions: set[TopicPartition]) -> None:
        for fp in [fp for fp, (tp, _) in self.active.items() if tp in partitions]:
            self.active.pop(fp, None)
            self.sent_labels.pop(fp, None)
        self.metrics.active.labels(self.target).set(len(self.active))


class PagerDutySink(_HttpSink):
    """Events API v2: one event per alert, in order; trigger on firing, resolve on resolved."""

    target = "pagerduty"
    needs_history = False

    def deliver(self, items: Sequence[Item], deadline: float) -> int:
        assert self.opts.routing_key is not None
        done = 0
        for it in items:
            alert = it.alert
            if alert is not None:
                body = orjson.dumps(pagerduty_event(alert, self.opts.routing_key, self.opts.generator_url))
                what = {"fingerprint": alert.fingerprint, "status": alert.status}
                result = self._until_settled(functools.partial(self._attempt, self.opts.urls[0], body), deadline, what)
                if result is None:
                    return done
                if result.outcome == "rejected":
                    self.log.error("alert_rejected", http_status=result.status, detail=result.detail, **what)
                else:
                    self.log.info("alert_forwarded", severity=alert.severity, model=alert.model, feature=alert.feature, detector=alert.detector, **what)
            done += 1
        return done

    def tick(self) -> None:
        return

    def restore(self, alert: AlertEvent, tp: TopicPartition | None = None) -> None:
        return

    def after_restore(self) -> None:
        return

    def forget(self, partitions: set[TopicPartition]) -> None:
        return


# ------------------------------------------------------------------------------------ runner
class _Listener(ConsumerRebalanceListener):
    """Runs on kafka-python's IO thread: only records what changed."""

    def __init__(self, runner: BridgeRunner) -> None:
        self.runner = runner

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.runner._rebalanced = True

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.runner._rebalanced = True
        self.runner.metrics.assigned_partitions.set(len(assigned))

    def on_partitions_lost(self, lost: list[TopicPartition]) -> None:
        self.runner._rebalanced = True


class BridgeRunner:
    """The consumer loop: poll, deliver, commit what was accepted, re-send, repeat."""

    def __init__(self, kafka: KafkaSettings, opts: BridgeOptions, sink: AlertmanagerSink | PagerDutySink, metrics: BridgeMetrics, stop: threading.Event, client_id: str) -> None:
        self.kafka = kafka.model_copy(update={"group_id": opts.group_id, "max_poll_records": opts.max_batch})
        self.opts = opts
        self.sink = sink
        self.metrics = metrics
        self.stop = stop
        self.client_id = client_id
        self.topic = kafka.alerts_topic
        self.log = log.bind(target=opts.target, group=opts.group_id, topic=self.topic)
        self.owned: dict[TopicPartition, int | None] = {}  # partition -> offset we last committed
        self._rebalanced = False
        self.started = False

    def readiness(self) -> tuple[bool, str]:
        return (True, "consuming") if self.started else (False, "starting")

    def run(self) -> int:
        self.consumer = clients.group_consumer(self.kafka, self.client_id)
        try:
            self.consumer.subscribe(topics=[self.topic], listener=_Listener(self))
            self.started = True
            self.log.info("bridge_started", urls=list(self.opts.urls) if self.opts.target == "alertmanager" else None, **clients.describe_security(self.kafka))
            while not self.stop.is_set():
                batch = self.consumer.poll(timeout_ms=self._poll_timeout_ms())
                if self._rebalanced:
                    self._rebalanced = False
                    self._sync_assignment()
                if batch:
                    self._handle(batch)
                self.sink.tick()
        finally:
            self.started = False
            try:
                self.consumer.close(autocommit=False)
            except Exception as exc:  # noqa: BLE001 - closing must not mask the exit
                self.log.warning("consumer_close_failed", error=str(exc))
        self.log.info("bridge_stopped")
        return 0

    def _poll_timeout_ms(self) -> int:
        wait = 1.0
        if isinstance(self.sink, AlertmanagerSink):
            wait = max(0.0, min(wait, self.sink.next_resend - time.monotonic()))
        return int(wait * 1000)

    # ------------------------------------------------------------- assignment
    def _sync_assignment(self) -> None:
        """After a rebalance: forget lost partitions; rebuild new or changed ones from history."""
        assignment = set(self.consumer.assignment())
        gone = set(self.owned) - assignment
        if gone:
            self.sink.forget(gone)
            for tp in gone:
                self.owned.pop(tp, None)
        changed: dict[TopicPartition, int] = {}
        for tp in sorted(assignment, key=lambda t: t.partition):
            committed = self.consumer.committed(tp)
            committed = committed if committed is not None else 0
            if tp not in self.owned or self.owned[tp] != committed:
                changed[tp] = committed
            self.owned[tp] = committed
        if changed:
            self.sink.forget(set(changed))
            if self.sink.needs_history:
                self._restore(changed)
            self.sink.after_restore()
        self.log.info("partitions_assigned", partitions=sorted(tp.partition for tp in assignment), rebuilt=sorted(tp.partition for tp in changed))

    def _restore(self, upto: dict[TopicPartition, int], timeout_s: float = 120.0) -> None:
        """Replay each partition's alert events below the committed offset into the sink's state."""
        todo = {tp: end for tp, end in upto.items() if end > 0}
        if not todo:
            return
        reader = clients.plain_consumer(self.kafka, self.client_id + "-restore")
        restored = 0
        try:
            reader.assign(list(todo))
            reader.seek_to_beginning(*todo)
            deadline = time.monotonic() + timeout_s
            while any(reader.position(tp) < end for tp, end in todo.items()):
                if time.monotonic() > deadline or self.stop.is_set():
                    self.log.warning("restore_incomplete", partitions=sorted(tp.partition for tp in todo))
                    break
                for tp, records in reader.poll(timeout_ms=500).items():
                    for rec in records:
                        if rec.offset >= todo[tp]:
                            continue
                        alert = self._parse(rec.value, tp, rec.offset, count=False)
                        if alert is not None:
                            self.sink.restore(alert, tp)
                            restored += 1
        finally:
            reader.close()
        self.log.info("state_restored", alert_events=restored, partitions=sorted(tp.partition for tp in todo))

    # ------------------------------------------------------------- processing
    def _parse(self, value: bytes | None, tp: TopicPartition, offset: int, count: bool = True) -> AlertEvent | None:
        try:
            alert = AlertEvent.model_validate_json(value or b"")
        except ValidationError as exc:
            if count:
                self.metrics.invalid.labels(self.opts.target).inc()
                self.log.warning("invalid_alert_event_skipped", partition=tp.partition, offset=offset, error=str(exc).splitlines()[0])
            return None
        if count:
            self.metrics.received.labels(self.opts.target, alert.status).inc()
        return alert

    def _handle(self, batch: dict[TopicPartition, list[Any]]) -> None:
        items: list[Item] = []
        for tp in sorted(batch, key=lambda t: t.partition):
            for rec in batch[tp]:
                items.append(Item(tp, rec.offset, self._parse(rec.value, tp, rec.offset)))
        if not items:
            return
        deadline = time.monotonic() + self.opts.epoch_s
        done = self.sink.deliver(items, deadline)
        accepted = items[:done]
        rest = items[done:]
        offsets: dict[TopicPartition, int] = {}
        for it in accepted:
            offsets[it.tp] = it.offset + 1
        if offsets:
            self._commit(offsets)
        if rest:
            # not delivered (stopping, or retrying too long): back to the first undelivered
            # record of each partition, so the next poll returns them again
            first: dict[TopicPartition, int] = {}
            for it in rest:
                first.setdefault(it.tp, it.offset)
            for tp, off in first.items():
                try:
                    self.consumer.seek(tp, off)
                except (KafkaError, AssertionError, ValueError) as exc:  # partition no longer assigned
                    self.log.warning("seek_back_failed", partition=tp.partition, error=str(exc))
            self.log.warning("delivery_pending", undelivered=len(rest), stopping=self.stop.is_set())

    def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            self.consumer.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()})
        except CommitFailedError as exc:
            # the group rebalanced while we delivered: the new owner re-delivers (idempotent)
            self.log.warning("commit_failed_rebalanced", error=str(exc))
            return
        except KafkaError as exc:
            self.log.warning("commit_failed", error=repr(exc))
            return
        for tp, off in offsets.items():
            self.owned[tp] = off
        self.metrics.committed.labels(self.opts.target).inc()
        self.log.debug("offsets_committed", offsets={f"{tp.topic}-{tp.partition}": off for tp, off in offsets.items()})


# ------------------------------------------------------------------------------------ command
def build_sink(opts: BridgeOptions, metrics: BridgeMetrics, stop: threading.Event) -> AlertmanagerSink | PagerDutySink:
    if opts.target == "alertmanager":
        return AlertmanagerSink(opts, metrics, stop)
    return PagerDutySink(opts, metrics, stop)


def cmd_bridge(args: argparse.Namespace) -> int:
    """``stream-monitor bridge alertmanager|pagerduty``. Exit 0 on SIGTERM/SIGINT, 2 on usage errors."""
    import sys

    from stream_monitor.cli import EXIT_USAGE, load_app_config
    from stream_monitor.logs import configure_logging

    stop = threading.Event()

    def _handler(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    # --group-id names the bridge's group, not the monitor's: keep kafka.group_id as configured
    cfg = load_app_config(args, {"kafka.group_id": None})
    configure_logging(cfg.log.level, cfg.log.format)
    try:
        opts = options_from_args(args, cfg)
    except BridgeUsageError as exc:
        sys.stderr.write(f"stream-monitor bridge: {exc}\n")
        return EXIT_USAGE
    metrics = BridgeMetrics(opts.target)
    sink = build_sink(opts, metrics, stop)
    runner = BridgeRunner(cfg.kafka, opts, sink, metrics, stop, client_id=f"stream-monitor-bridge-{opts.target}-{cfg.instance}")
    server = None
    if opts.metrics_port is not None:
        checks = [BrokerProbe(cfg.kafka.bootstrap_servers)] if cfg.metrics.readiness_checks_broker else []
        server = HealthServer(metrics, cfg.metrics.host, opts.metrics_port, runner.readiness, checks).start()
        log.info("http_listening", host=cfg.metrics.host, port=server.port)
    try:
        return runner.run()
    finally:
        if server is not None:
            server.stop()


__all__ = [
    "BRIDGE_ENV",
    "AlertmanagerSink",
    "BridgeOptions",
    "BridgeRunner",
    "PagerDutySink",
    "alertmanager_alert",
    "alertname",
    "cmd_bridge",
    "pagerduty_event",
]
