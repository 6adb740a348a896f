"""The bridges' extra HTTP headers without a broker: resolution, start-up validation, delivery and redaction."""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from kafka import TopicPartition

from stream_monitor.bridges.mapping import example_alert
from stream_monitor.bridges.options import BridgeUsageError, options_from_args
from stream_monitor.bridges.sinks import Item, build_sink
from stream_monitor.commands import build_parser
from stream_monitor.config import load_config
from stream_monitor.ops.metrics import BridgeMetrics

TP0 = TopicPartition("alerts", 0)


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["bridge", *argv])


def _cfg(**overrides: Any) -> Any:
    return load_config(None, env={}, overrides={"kafka.group_id": "mon", "retraining.enabled": True, **overrides})


def _token() -> str:
    return "tok-" + secrets.token_hex(16)


def test_headers_come_from_config_flags_files_and_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A flag replaces a configured header of the same name (any case); files lose their newline; a config's relative path is the config's."""
    file_token, env_token = _token(), _token()
    (tmp_path / "token").write_text(file_token + "\n")
    monkeypatch.setenv("RUNNER_KEY", env_token)
    cfg = _cfg(**{"bridge.headers": {"authorization": "Bearer stale", "X-Token-File": "${file:token}", "X-Team": "risk"}})
    args = _args("retraining", "--url", "http://runner/hook", "--header", "Authorization: Bearer ${env:RUNNER_KEY}", "--header", "X-Source:stream-monitor")
    o = options_from_args(args, cfg, base_dir=tmp_path)
    assert dict(o.headers) == {"Authorization": f"Bearer {env_token}", "X-Token-File": file_token, "X-Team": "risk", "X-Source": "stream-monitor"}
    assert {f"Bearer {env_token}", env_token, file_token} <= set(o.secrets)
    assert env_token not in repr(o) and file_token not in repr(o)
    assert "Bearer" not in repr(cfg), "configured values are SecretStr in the config too"


@pytest.mark.parametrize(
    ("header", "field", "problem"),
    [
        ("Authorization: Bearer ${env:UNSET_TOKEN_VAR}", "--header 'Authorization'", "UNSET_TOKEN_VAR is not set"),
        ("Authorization: ${file:/nonexistent/dir/token}", "--header 'Authorization'", "cannot read /nonexistent/dir/token"),
        ("Authorization: Bearer abc\r\nX-Admin: yes", "--header 'Authorization'", "line break"),
        ("X-Hook: abc\ndef", "--header 'X-Hook'", "line break"),
        ("X-Hook: a\x00b", "--header 'X-Hook'", "control character"),
        ("X-Hook: caf\u20ac", "--header 'X-Hook'", "Latin-1"),
        ("X Hook: 1", "--header 'X Hook'", "not a valid header name"),
        ("X-Hook\r\nX-Admin: 1", "--header 'X-Hook\\r\\nX-Admin'", "not a valid header name"),
        ("Content-Type: text/plain", "--header 'Content-Type'", "set by the bridge"),
        ("Authorization:", "--header 'Authorization'", "empty"),
        ("Authorization Bearer abc", "--header", "must be 'Name: value'"),
    ],
)
def test_a_bad_header_exits_2_naming_the_field_never_the_value(monkeypatch: pytest.MonkeyPatch, header: str, field: str, problem: str) -> None:
    monkeypatch.delenv("UNSET_TOKEN_VAR", raising=False)
    with pytest.raises(BridgeUsageError) as caught:
        options_from_args(_args("retraining", "--url", "http://runner/hook", "--header", header), _cfg())
    message = str(caught.value)
    assert message.startswith(field + ":") or message.startswith(field + " "), message
    assert problem in message
    assert "Bearer abc" not in message and "X-Admin: yes" not in message


def test_a_secret_file_with_a_second_line_is_refused_and_its_content_not_shown(tmp_path: Path) -> None:
    secret = _token()
    (tmp_path / "token").write_text(f"{secret}\nX-Admin: yes\n")
    cfg = _cfg(**{"bridge.headers": {"Authorization": "Bearer ${file:token}"}})
    with pytest.raises(BridgeUsageError, match=r"^bridge\.headers\.Authorization: the value contains a line break") as caught:
        options_from_args(_args("alertmanager", "--url", "http://am:9093"), cfg, base_dir=tmp_path)
    assert secret not in str(caught.value)


def test_the_cli_exits_2_on_a_bad_header_before_touching_kafka(tmp_path: Path) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text("retraining:\n  enabled: true\n")
    argv = ["bridge", "retraining", "-c", str(config), "--bootstrap-servers", "127.0.0.1:1", "--url", "http://runner/hook", "--header", "X-Hook: a\r\nX-Admin: 1"]
    done = subprocess.run([sys.executable, "-m", "stream_monitor", *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "--header 'X-Hook': the value contains a line break" in done.stderr and "X-Admin" not in done.stderr


class _Echo:
    """A receiver that records each request's headers and answers by script, echoing what it got."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.seen: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.seen.append(dict(self.headers.items()))
                status = outer.statuses.pop(0) if outer.statuses else 202
                reply = f"unauthorized: got {self.headers.get('Authorization')} for ".encode() + body  # a careless receiver
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture()
def echo() -> Iterator[type[_Echo]]:
    made: list[_Echo] = []

    def make(statuses: list[int]) -> _Echo:
        made.append(_Echo(statuses))
        return made[-1]

    yield make  # type: ignore[misc]
    for e in made:
        e.server.shutdown()
        e.server.server_close()


def test_headers_are_sent_and_their_values_never_reach_a_log_line(echo: Any, tmp_path: Path) -> None:
    """The receiver gets the header; a 401 echoing it (cut short too) is retried, not delivered, and redacted from the logs."""
    token = _token()
    (tmp_path / "token").write_text(token + "\n")
    trace = "trace-" + secrets.token_hex(8)
    receiver = echo([401, 401])
    cfg = _cfg(**{"bridge.headers": {"Authorization": "Bearer ${file:token}"}})
    argv = ["pagerduty", "--url", receiver.url, "--routing-key", "R" * 32, "--header", f"X-Trace: {trace}", "--retry-initial", "0.01", "--retry-max", "0.02"]
    opts = options_from_args(_args(*argv), cfg, base_dir=tmp_path)
    metrics = BridgeMetrics("pagerduty")
    sink = build_sink(opts, metrics, threading.Event())
    with structlog.testing.capture_logs() as logs:
        assert sink.deliver([Item(TP0, 0, example_alert())], time.monotonic()) == 0, "a 401 is not a delivery"
        assert sink.failing is not None and "401" in sink.failing and token[4:12] not in sink.failing
        assert sink.deliver([Item(TP0, 0, example_alert())], time.monotonic() + 30) == 1
    assert [h.get("Authorization") for h in receiver.seen] == [f"Bearer {token}"] * 3
    assert {h.get("X-Trace") for h in receiver.seen} == {trace}
    assert {h.get("Content-Type") for h in receiver.seen} == {"application/json"}
    assert metrics.deliveries.labels("pagerduty", "retry")._value.get() == 2
    assert metrics.deliveries.labels("pagerduty", "accepted")._value.get() == 1
    retries = [entry for entry in logs if entry["event"] == "delivery_retry"]
    assert retries and all("[redacted]" in entry["detail"] for entry in retries)
    assert not [entry for entry in logs if token[4:12] in repr(entry) or trace in repr(entry)]
