"""Delivery to a receiver: Alertmanager (with re-sends of firing alerts), PagerDuty, and a webhook (retraining events)."""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

import orjson
import structlog
from kafka import TopicPartition

from stream_monitor import __version__
from stream_monitor.bridges.headers import MIN_REDACTED
from stream_monitor.bridges.http import Backoff, HttpResult, post_json, redact, redact_url
from stream_monitor.bridges.mapping import alertmanager_alert, alertmanager_labels, iso_time, pagerduty_event
from stream_monitor.bridges.options import BridgeOptions
from stream_monitor.core.alert import AlertEvent
from stream_monitor.core.retraining import RetrainingEvent
from stream_monitor.ops.metrics import BridgeMetrics

log = structlog.get_logger("stream_monitor.bridge")


@dataclass(frozen=True)
class Item:
    """One record of the topic read: where it is, and its event (None: not a valid event).

    The event is an alert, or a retraining event for :class:`WebhookSink`.
    """

    tp: TopicPartition
    offset: int
    alert: Any


class Sink(Protocol):
    """A receiver the runner delivers alert events to."""

    target: str
    needs_history: bool
    failing: str | None

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
        self.opts = opts
        self.metrics = metrics
        self.stop = stop
        self.post = post
        self.backoff = Backoff(opts.retry_initial_s, opts.retry_max_s)
        self.user_agent = f"stream-monitor/{__version__}"
        self.log = log.bind(target=opts.target)
        # never in a log line, even when echoed back; the longest first, so a value goes before its parts
        found = {s for s in (*opts.secrets, *opts.headers.values()) if len(s) >= MIN_REDACTED} | ({opts.routing_key} if opts.routing_key else set())
        self.secrets = tuple(sorted(found, key=lambda s: (-len(s), s)))
        self.failing: str | None = None  # why the last delivery attempt has to be retried (readiness fails)

    def _classify(self, result: HttpResult) -> HttpResult:
        """A sink may know better than the status code what an answer means."""
        return result

    def _attempt(self, url: str, body: bytes) -> HttpResult:
        started = time.perf_counter()
        result = self.post(url, body, self.opts.request_timeout_s, self.user_agent, self.opts.headers)
        result = self._classify(result)
        result = dataclasses.replace(result, detail=redact(result.detail, self.secrets))
        self.metrics.delivery_seconds.labels(self.opts.target).observe(time.perf_counter() - started)
        self.metrics.deliveries.labels(self.opts.target, result.outcome).inc()
        if result.outcome == "accepted":
            self.metrics.last_success.labels(self.opts.target).set_to_current_time()
        return result

    def _note(self, result: HttpResult) -> None:
        """Remember whether the receiver takes our requests, for readiness."""
        self.failing = f"{result.status or 'no answer'}: {result.detail}"[:200] if result.outcome == "retry" else None

    def _until_settled(self, send: Callable[[], HttpResult], deadline: float, what: dict[str, Any]) -> HttpResult | None:
        """Call ``send`` until accepted or rejected; None when stopping or past ``deadline``."""
        while True:
            result = send()
            self._note(result)
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
        detail = "; ".join(f"{redact_url(u)}: {r.status or ''} {r.detail}".strip() for u, r in zip(self.opts.urls, results, strict=True))
        return HttpResult("retry", results[0].status, detail, max(retry_after) if retry_after else None)

    def _stale_label_sets(self, alert: AlertEvent, labels: dict[str, str], now: datetime) -> list[dict[str, Any]]:
        """An escalation changed the label set: end the old one now."""
        previous = self.sent_labels.get(alert.fingerprint)
        if previous is None or previous == labels:
            return []
        ended = self._payload(alert, now)
        ended["labels"] = previous
        ended["endsAt"] = iso_time(now)
        if ended["startsAt"] > ended["endsAt"]:
            ended["startsAt"] = ended["endsAt"]
        return [ended]

    def deliver(self, items: Sequence[Item], deadline: float) -> int:
        """Post the batch (the last state per fingerprint); return how many leading items are done."""
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
        """Re-send the firing alerts when due."""
        if time.monotonic() < self.next_resend:
            return
        if not self.active:
            self.next_resend = time.monotonic() + self.opts.resend_interval_s
            return
        now = self.clock()
        tagged = [(fp, self._payload(alert, now)) for fp, (_, alert) in self.active.items()]
        result = self._post_all([p for _, p in tagged])
        self._note(result)
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
        """Track an alert delivered before this start."""
        fp = alert.fingerprint
        if alert.status == "firing" and tp is not None:
            self.active[fp] = (tp, alert)
            self.sent_labels[fp] = alertmanager_labels(alert, self.opts.extra_labels)
        else:
            self.active.pop(fp, None)
            self.sent_labels.pop(fp, None)

    def after_restore(self) -> None:
        """Re-send the restored firing alerts at once."""
        self.metrics.active.labels(self.target).set(len(self.active))
        self.next_resend = time.monotonic()  # re-send the restored firing alerts at once

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Drop the alerts of partitions no longer ours."""
        for fp in [fp for fp, (tp, _) in self.active.items() if tp in partitions]:
            self.active.pop(fp, None)
            self.sent_labels.pop(fp, None)
        self.metrics.active.labels(self.target).set(len(self.active))


class PagerDutySink(_HttpSink):
    """Events API v2: one event per alert, in order; trigger on firing, resolve on resolved."""

    target = "pagerduty"
    needs_history = False
    noun = "alert"

    def _classify(self, result: HttpResult) -> HttpResult:
        """PagerDuty answers 400 to a wrong routing key: our setup is wrong, not this alert."""
        if result.outcome == "rejected" and "routing key" in result.detail.lower():
            return dataclasses.replace(result, outcome="retry")
        return result

    def _request(self, alert: Any) -> tuple[bytes, dict[str, Any]]:
        """The body of one event's request, and what to log about it."""
        assert self.opts.routing_key is not None
        body = orjson.dumps(pagerduty_event(alert, self.opts.routing_key, self.opts.generator_url))
        return body, {"fingerprint": alert.fingerprint, "status": alert.status}

    def _forwarded(self, alert: Any, what: dict[str, Any]) -> None:
        self.log.info("alert_forwarded", severity=alert.severity, model=alert.model, feature=alert.feature, detector=alert.detector, **what)

    def deliver(self, items: Sequence[Item], deadline: float) -> int:
        """Post one request per event, in order; return how many leading items are done."""
        done = 0
        for it in items:
            if it.alert is not None:
                body, what = self._request(it.alert)
                result = self._until_settled(functools.partial(self._attempt, self.opts.urls[0], body), deadline, what)
                if result is None:
                    return done
                if result.outcome == "rejected":
                    self.log.error(f"{self.noun}_rejected", http_status=result.status, detail=result.detail, **what)
                else:
                    self._forwarded(it.alert, what)
            done += 1
        return done

    def tick(self) -> None:
        """Nothing to re-send: PagerDuty keeps incidents open."""
        return

    def restore(self, alert: AlertEvent, tp: TopicPartition | None = None) -> None:
        """Nothing to track."""
        return

    def after_restore(self) -> None:
        """Nothing to do."""
        return

    def forget(self, partitions: set[TopicPartition]) -> None:
        """Nothing to drop."""
        return

class WebhookSink(PagerDutySink):
    """A generic webhook for retraining events: each event's JSON, as published, POSTed in order.

    Delivery is PagerDuty's (one request per event, retried until accepted or rejected, offsets
    committed after); a receiver that gets an event twice (after a rebalance) tells it by its
    ``retraining_id``.
    """

    target = "retraining"
    noun = "retraining"

    def _classify(self, result: HttpResult) -> HttpResult:
        """A webhook's 4xx rejects the event (PagerDuty's routing-key rule does not apply)."""
        return result

    def _request(self, event: RetrainingEvent) -> tuple[bytes, dict[str, Any]]:
        """The event's JSON as published."""
        return orjson.dumps(event.model_dump()), {"retraining_id": event.retraining_id, "model": event.model}

    def _forwarded(self, event: RetrainingEvent, what: dict[str, Any]) -> None:
        self.log.info("retraining_forwarded", reason=event.reason, **what)


def build_sink(opts: BridgeOptions, metrics: BridgeMetrics, stop: threading.Event) -> AlertmanagerSink | PagerDutySink:
    """The sink of ``opts.target``."""
    if opts.target == "alertmanager":
        return AlertmanagerSink(opts, metrics, stop)
    if opts.target == "retraining":
        return WebhookSink(opts, metrics, stop)
    return PagerDutySink(opts, metrics, stop)

