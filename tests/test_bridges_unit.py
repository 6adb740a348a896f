"""Bridge logic without a broker: mappings, options, backoff and the sinks' delivery rules."""

from __future__ import annotations

import argparse
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
import structlog
import structlog.testing
from kafka import TopicPartition

from stream_monitor.bridges.http import Backoff, HttpResult, classify_status, post_json
from stream_monitor.bridges.mapping import alertmanager_alert, example_alert, pagerduty_event
from stream_monitor.bridges.options import BridgeOptions, BridgeUsageError, options_from_args
from stream_monitor.bridges.runner import BridgeRunner
from stream_monitor.bridges.sinks import AlertmanagerSink, Item, PagerDutySink
from stream_monitor.commands import build_parser
from stream_monitor.config import load_config
from stream_monitor.ops.metrics import BridgeMetrics

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
TP0 = TopicPartition("alerts", 0)


class FakePost:
    """Stands in for post_json: answers from a script, records bodies."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, Any]] = []

    def __call__(self, url: str, body: bytes, timeout_s: float, user_agent: str, headers: Any = None) -> HttpResult:
        self.calls.append((url, orjson.loads(body)))
        outcome = self.script.pop(0) if self.script else "accepted"
        if isinstance(outcome, HttpResult):
            return outcome
        return HttpResult(outcome, {"accepted": 200, "retry": 503, "rejected": 400}[outcome], outcome)


def _opts(**kw: Any) -> BridgeOptions:
    base: dict[str, Any] = dict(target="alertmanager", urls=("http://am",), group_id="g", resend_interval_s=60, retry_initial_s=0.001, retry_max_s=0.002)
    base.update(kw)
    return BridgeOptions(**base)


def _am(post: FakePost, **kw: Any) -> AlertmanagerSink:
    return AlertmanagerSink(_opts(**kw), BridgeMetrics("alertmanager"), threading.Event(), post=post, clock=lambda: NOW)


def test_alertmanager_mapping_clamps_times_to_the_wall_clock():
    future = example_alert(starts_at="2027-01-01T00:00:00.000Z")
    am = alertmanager_alert(future, now=NOW, ttl_s=240)
    assert am["startsAt"] == "2026-11-25T12:00:00.000Z" and am["endsAt"] == "2026-11-25T12:04:00.000Z"
    resolved_future = example_alert(status="resolved", starts_at="2027-01-01T00:00:00.000Z", ends_at="2027-01-02T00:00:00.000Z")
    am = alertmanager_alert(resolved_future, now=NOW, ttl_s=240)
    assert am["startsAt"] == am["endsAt"] == "2026-11-25T12:00:00.000Z"  # resolved now, never "in the future"


def test_alertmanager_labels_ours_win_and_names_are_sanitised():
    alert = example_alert(labels={"alertname": "spoof", "severity": "info", "team-name": "risk", "empty": ""})
    labels = alertmanager_alert(alert, now=NOW, ttl_s=1, extra_labels={"env": "prod"})["labels"]
    assert labels["alertname"] == "StreamMonitorDataDrift" and labels["severity"] == "warning"
    assert labels["team_name"] == "risk" and labels["env"] == "prod" and "empty" not in labels


def test_pagerduty_severity_mapping_and_summary_bound():
    for sev in ("info", "warning", "critical"):
        assert pagerduty_event(example_alert(severity=sev), "k")["payload"]["severity"] == sev
    long = example_alert(annotations={"summary": "x" * 5000})
    assert len(pagerduty_event(long, "k")["payload"]["summary"]) == 1024


def test_backoff_grows_exponentially_with_jitter_and_honours_retry_after():
    b = Backoff(1.0, 8.0, random.Random(1))
    delays = [b.next_delay() for _ in range(6)]
    for d, base in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert base / 2 <= d <= base
    assert b.next_delay(retry_after_s=100) == 8.0  # capped at the maximum
    b.reset()
    assert b.next_delay() <= 1.0


def test_am_sink_retries_then_delivers_and_tracks_active():
    post = FakePost(["retry", "retry", "accepted"])
    sink = _am(post)
    items = [Item(TP0, 0, example_alert())]
    assert sink.deliver(items, time.monotonic() + 10) == 1
    assert len(post.calls) == 3 and post.calls[0][0] == "http://am/api/v2/alerts"
    assert list(sink.active) == [example_alert().fingerprint]


def test_am_sink_gives_up_at_deadline_without_accepting():
    sink = _am(FakePost(["retry"] * 1000))
    assert sink.deliver([Item(TP0, 0, example_alert())], time.monotonic() + 0.05) == 0
    assert not sink.active


def test_am_sink_isolates_a_rejected_alert_in_a_batch():
    good = example_alert(fingerprint="good")
    bad = example_alert(fingerprint="bad", feature="other")
    post = FakePost(["rejected", "accepted", "rejected"])
    sink = _am(post)
    assert sink.deliver([Item(TP0, 0, good), Item(TP0, 1, bad)], time.monotonic() + 10) == 2
    assert [len(body) for _, body in post.calls] == [2, 1, 1]


def test_am_sink_escalation_ends_the_old_label_set_and_resolve_clears():
    post = FakePost([])
    sink = _am(post)
    sink.deliver([Item(TP0, 0, example_alert())], time.monotonic() + 10)
    sink.deliver([Item(TP0, 1, example_alert(severity="critical"))], time.monotonic() + 10)
    body = post.calls[-1][1]
    assert [(a["labels"]["severity"], a["endsAt"] == "2026-11-25T12:00:00.000Z") for a in body] == [("warning", True), ("critical", False)]
    sink.deliver([Item(TP0, 2, example_alert(status="resolved", severity="critical", ends_at="2026-11-25T11:00:00.000Z"))], time.monotonic() + 10)
    assert not sink.active and post.calls[-1][1][0]["endsAt"] == "2026-11-25T11:00:00.000Z"


def test_am_sink_collapses_a_batch_to_the_last_state_per_fingerprint():
    post = FakePost([])
    sink = _am(post)
    sink.deliver([Item(TP0, 0, example_alert()), Item(TP0, 1, example_alert(status="resolved", ends_at="2026-11-25T11:00:00.000Z"))], time.monotonic() + 10)
    assert len(post.calls) == 1 and len(post.calls[0][1]) == 1 and not sink.active


def test_am_sink_resends_active_alerts_and_backs_off_on_failure():
    post = FakePost(["accepted", "retry", "accepted"])
    sink = _am(post, resend_interval_s=60)
    sink.deliver([Item(TP0, 0, example_alert())], time.monotonic() + 10)
    sink.tick()
    assert len(post.calls) == 1  # not due yet
    sink.next_resend = time.monotonic() - 1
    sink.tick()  # fails: retried soon, well before the next interval
    assert len(post.calls) == 2 and sink.next_resend - time.monotonic() < 1
    sink.next_resend = time.monotonic() - 1
    sink.tick()
    assert len(post.calls) == 3 and sink.next_resend - time.monotonic() > 50
    assert post.calls[2][1][0]["endsAt"] == (NOW + timedelta(seconds=240)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_am_sink_restore_and_forget_partitions():
    sink = _am(FakePost([]))
    tp1 = TopicPartition("alerts", 1)
    sink.restore(example_alert(fingerprint="a"), TP0)
    sink.restore(example_alert(fingerprint="b"), tp1)
    sink.restore(example_alert(fingerprint="c"), tp1)
    sink.restore(example_alert(fingerprint="c", status="resolved", ends_at="2026-11-25T11:00:00.000Z"), tp1)
    assert sorted(sink.active) == ["a", "b"]
    sink.forget({tp1})
    assert sorted(sink.active) == ["a"]


def test_invalid_records_are_skipped_and_count_as_done():
    post = FakePost([])
    sink = _am(post)
    assert sink.deliver([Item(TP0, 0, None)], time.monotonic() + 1) == 1 and not post.calls
    pd = PagerDutySink(_opts(target="pagerduty", routing_key="k"), BridgeMetrics("pagerduty"), threading.Event(), post=post)
    assert pd.deliver([Item(TP0, 0, None), Item(TP0, 1, example_alert())], time.monotonic() + 1) == 2


def test_pagerduty_sink_returns_the_accepted_prefix_when_stopping():
    stop = threading.Event()
    post = FakePost(["accepted"] + ["retry"] * 100_000)
    pd = PagerDutySink(_opts(target="pagerduty", routing_key="k", retry_initial_s=0.01, retry_max_s=0.01), BridgeMetrics("pagerduty"), stop, post=post)
    threading.Timer(0.05, stop.set).start()
    done = pd.deliver([Item(TP0, 0, example_alert()), Item(TP0, 1, example_alert(fingerprint="x"))], time.monotonic() + 30)
    assert done == 1


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["bridge", *argv])


def test_options_from_args_defaults_env_and_errors(monkeypatch: pytest.MonkeyPatch, tmp_path):
    cfg = load_config(None, env={}, overrides={"kafka.group_id": "mon"})
    for name in ("STREAM_MONITOR_BRIDGE_URL", "STREAM_MONITOR_PAGERDUTY_ROUTING_KEY", "STREAM_MONITOR_PAGERDUTY_ROUTING_KEY_FILE", "STREAM_MONITOR_BRIDGE_LABELS"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(BridgeUsageError, match="--url"):
        options_from_args(_args("alertmanager"), cfg)
    o = options_from_args(_args("alertmanager", "--url", "http://a:9093/,http://b:9093", "--label", "env=prod"), cfg)
    assert o.urls == ("http://a:9093", "http://b:9093") and o.group_id == "mon-bridge-alertmanager" and o.resend_interval_s == 60
    assert dict(o.extra_labels) == {"env": "prod"}
    with pytest.raises(BridgeUsageError, match="routing key"):
        options_from_args(_args("pagerduty"), cfg)
    key = tmp_path / "key"
    key.write_text("secret-key\n")
    monkeypatch.setenv("STREAM_MONITOR_PAGERDUTY_ROUTING_KEY_FILE", str(key))
    o = options_from_args(_args("pagerduty", "--group-id", "pd"), cfg)
    assert o.routing_key == "secret-key" and o.urls == ("https://events.pagerduty.com/v2/enqueue",) and o.group_id == "pd"
    assert "secret-key" not in repr(o)


def test_am_sink_never_keeps_re_sending_a_rejected_alert():
    good = example_alert(fingerprint="good")
    bad = example_alert(fingerprint="bad", feature="other")
    post = FakePost(["rejected", "accepted", "rejected"])
    sink = _am(post)
    sink.deliver([Item(TP0, 0, good), Item(TP0, 1, bad)], time.monotonic() + 10)
    assert list(sink.active) == ["good"]
    # a re-send the receiver refuses (e.g. a restored alert) is isolated and the refused one dropped
    sink.restore(bad, TP0)
    post.script = ["rejected", "accepted", "rejected"]
    sink.next_resend = time.monotonic() - 1
    sink.tick()
    assert list(sink.active) == ["good"]


# ----------------------------------------------------------------------------- never drop a page
class Receiver:
    """A local HTTP receiver whose answers a test scripts: a list of handler functions, one per request."""

    def __init__(self, script: list[Callable[[BaseHTTPRequestHandler, bytes], None]]) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, str, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append((self.command, self.path, body))
                answer = outer.script.pop(0) if outer.script else _reply(202)
                answer(self, body)

            do_GET = do_POST = _serve  # noqa: N815

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _reply(status: int, body: bytes = b"{}", headers: dict[str, str] | None = None) -> Callable[[BaseHTTPRequestHandler, bytes], None]:
    def answer(h: BaseHTTPRequestHandler, _request: bytes) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return answer


@pytest.fixture()
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(*script: Callable[[BaseHTTPRequestHandler, bytes], None]) -> Receiver:
        made.append(Receiver(list(script)))
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_only_a_malformed_request_rejects_one_alert_every_other_status_is_retried(receiver: Callable[..., Receiver]) -> None:
    """400/422: this alert is refused. 3xx, 401, 403, 404, 409, 413, 429 and 5xx: the receiver or our setup is wrong: retry."""
    for status in (301, 302, 307, 308, 401, 403, 404, 405, 409, 413, 429, 500, 503):
        r = receiver(_reply(status, headers={"Location": "/elsewhere"} if 300 <= status < 400 else {}))
        assert post_json(r.url + "/api/v2/alerts", b"[]", 5.0, "t").outcome == "retry", status
    for status in (400, 422):
        r = receiver(_reply(status))
        assert post_json(r.url + "/api/v2/alerts", b"[]", 5.0, "t").outcome == "rejected", status


def test_a_post_is_never_redirected(receiver: Callable[..., Receiver]) -> None:
    """A 301 is not followed (it would turn the POST into a body-less GET whose 200 looks like a delivery)."""
    r = receiver(_reply(301, headers={"Location": "/moved"}), _reply(200))
    result = post_json(r.url + "/api/v2/alerts", b'[{"labels": {}}]', 5.0, "t")
    assert (result.outcome, result.status) == ("retry", 301)
    assert [(m, p) for m, p, _ in r.requests] == [("POST", "/api/v2/alerts")]


def test_the_request_timeout_is_a_total_deadline_even_for_a_dripping_receiver(receiver: Callable[..., Receiver]) -> None:
    """A receiver that sends its answer one byte at a time cannot hold a request past the timeout."""
    release = threading.Event()

    def drip(h: BaseHTTPRequestHandler, _request: bytes) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.end_headers()
        for _ in range(1000):  # would take minutes: each byte well within a per-read timeout
            if release.wait(0.2):
                return
            try:
                h.wfile.write(b" ")
                h.wfile.flush()
            except OSError:
                return

    r = receiver(drip)
    started = time.monotonic()
    try:
        result = post_json(r.url + "/api/v2/alerts", b"[]", 1.0, "t")
    finally:
        release.set()
    assert result.outcome == "retry" and "deadline" in result.detail
    assert time.monotonic() - started < 30, "bounded by the 1 s deadline, not by the receiver"


def test_a_refusing_receiver_is_retried_fails_readiness_and_commits_nothing() -> None:
    """404 (wrong URL) or 401 (wrong key): nothing is done, /readyz fails, the retry metric grows; then delivery."""
    metrics = BridgeMetrics("pagerduty")
    post = FakePost([HttpResult(classify_status(404), 404, "not found"), HttpResult(classify_status(401), 401, "unauthorized")] * 1000)
    sink = PagerDutySink(_opts(target="pagerduty", routing_key="k"), metrics, threading.Event(), post=post)
    runner = BridgeRunner(load_config(None, env={}).kafka, sink.opts, sink, metrics, threading.Event(), "c")
    runner.started = True
    assert runner.readiness() == (True, "consuming")
    items = [Item(TP0, 0, example_alert())]
    assert sink.deliver(items, time.monotonic() + 0.05) == 0, "a refused request is not a delivered page"
    ready, reason = runner.readiness()
    assert not ready and ("404" in reason or "401" in reason)
    assert metrics.deliveries.labels("pagerduty", "retry")._value.get() >= 2
    post.script = []
    assert sink.deliver(items, time.monotonic() + 10) == 1
    assert runner.readiness()[0]


def test_a_pagerduty_routing_key_echoed_by_the_receiver_never_reaches_the_log(receiver: Callable[..., Receiver]) -> None:
    key = "R0UT1NGKEY" + secrets.token_hex(11)
    echo = [lambda h, req: _reply(500, b"bad gateway for " + req)(h, req), lambda h, req: _reply(400, req)(h, req)]
    r = receiver(*echo, _reply(202))
    opts = _opts(target="pagerduty", urls=(r.url + "/v2/enqueue",), routing_key=key)
    sink = PagerDutySink(opts, BridgeMetrics("pagerduty"), threading.Event())
    with structlog.testing.capture_logs() as logs:
        done = sink.deliver([Item(TP0, 0, example_alert()), Item(TP0, 1, example_alert(fingerprint="x"))], time.monotonic() + 30)
    assert done == 2 and len(r.requests) == 3
    assert key in r.requests[0][2].decode()
    assert logs and not [entry for entry in logs if key in repr(entry)]


def test_pagerduty_refusing_the_routing_key_is_retried_not_a_rejected_alert() -> None:
    """PagerDuty answers 400 "Invalid routing key" for a wrong key: every page would be dropped if that counted as one bad alert."""
    answer = HttpResult(classify_status(400), 400, '{"status":"invalid event","message":"Event object is invalid","errors":["Invalid routing key"]}')
    post = FakePost([answer] * 1000)
    sink = PagerDutySink(_opts(target="pagerduty", routing_key=secrets.token_hex(16)), BridgeMetrics("pagerduty"), threading.Event(), post=post)
    assert sink.deliver([Item(TP0, 0, example_alert())], time.monotonic() + 0.05) == 0
    assert sink.failing is not None and "routing key" in sink.failing
    post.script = [HttpResult(classify_status(400), 400, '{"errors":["Payload.summary is missing"]}')]
    assert sink.deliver([Item(TP0, 0, example_alert())], time.monotonic() + 10) == 1, "a malformed alert is still skipped"


def test_a_channel_page_keeps_one_identity_whatever_partition_its_events_came_from():
    """Firing, escalation and resolve of one page may be raised at records of different input
    partitions: Alertmanager's label set and PagerDuty's dedup key follow the page's fingerprint alone."""
    from stream_monitor.core.lifecycle import fingerprint

    fp = fingerprint("fraud-v3", "amount")
    firing = example_alert(fingerprint=fp, source={"topic": "inference-events", "partition": 0, "offset": 10})
    resolved = example_alert(
        fingerprint=fp, status="resolved", ends_at="2026-01-01T01:00:00.000Z", source={"topic": "inference-events", "partition": 5, "offset": 99}
    )
    am = [alertmanager_alert(a, now=NOW, ttl_s=240)["labels"] for a in (firing, resolved)]
    assert am[0] == am[1] and "partition" not in am[0]
    pd = [pagerduty_event(a, "R" * 32)["dedup_key"] for a in (firing, resolved)]
    assert pd == [fp, fp]


def _retraining_event() -> Any:
    from stream_monitor.core.retraining import RetrainingEvent

    return RetrainingEvent.model_validate(
        {
            "retraining_id": "r1", "model": "fraud", "model_version": "v3", "reason": "slo_breach",
            "signals": [{"alert_id": "a1", "fingerprint": "f1", "kind": "performance", "feature": "__error_rate__",
                         "detector": "slo", "since": "2026-11-25T10:00:00.000Z", "summary": "error rate 0.17 > 0.13"}],
            "since": "2026-11-25T10:00:00.000Z", "event_time": "2026-11-25T11:00:00.000Z",
            "suggested_window": {"start": "2026-11-18T11:00:00.000Z", "end": "2026-11-25T11:00:00.000Z"},
            "labels": {"team": "risk"}, "monitor": {"instance": "i", "version": "0"},
        }
    )  # fmt: skip


def test_retraining_webhook_posts_each_event_as_published_retrying_until_accepted(receiver: Callable[..., Receiver]) -> None:
    """The retraining bridge's sink: one POST per event, its contract JSON as the body, over the shared delivery code."""
    from stream_monitor.bridges.sinks import WebhookSink, build_sink

    r = receiver(_reply(503), _reply(200), _reply(400))
    opts = _opts(target="retraining", urls=(r.url + "/hooks/retrain",))
    sink = build_sink(opts, BridgeMetrics("retraining"), threading.Event())
    assert isinstance(sink, WebhookSink)
    event = _retraining_event()
    items = [Item(TP0, 0, event), Item(TP0, 1, None), Item(TP0, 2, event)]
    assert sink.deliver(items, time.monotonic() + 30) == 3  # the rejected one (400) counts as done, like an alert
    assert [(m, p) for m, p, _ in r.requests] == [("POST", "/hooks/retrain")] * 3
    assert orjson.loads(r.requests[1][2]) == orjson.loads(orjson.dumps(event.model_dump()))
    stop = threading.Event()
    stop.set()
    stalled = receiver(_reply(503))
    halted = WebhookSink(_opts(target="retraining", urls=(stalled.url,)), BridgeMetrics("retraining"), stop)
    assert halted.deliver([Item(TP0, 5, event)], time.monotonic() + 30) == 0  # not accepted: not committed


def test_retraining_bridge_options_need_a_url_and_retraining_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAM_MONITOR_BRIDGE_URL", raising=False)
    off = load_config(None, env={}, overrides={"kafka.group_id": "mon"})
    on = load_config(None, env={}, overrides={"kafka.group_id": "mon", "retraining.enabled": True})
    with pytest.raises(BridgeUsageError, match="--url"):
        options_from_args(_args("retraining"), on)
    with pytest.raises(BridgeUsageError, match="retraining.enabled"):
        options_from_args(_args("retraining", "--url", "http://runner/hook"), off)
    o = options_from_args(_args("retraining", "--url", "http://runner/hook"), on)
    assert o.urls == ("http://runner/hook",) and o.group_id == "mon-bridge-retraining"
