"""Logs and human output apart: logs on stderr (JSON unless stderr is a terminal), human output on stdout.

The CLI runs as a subprocess; "a terminal" is a pseudo-terminal given as its stderr.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import secrets
import pty
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import structlog

from stream_monitor.ops.logs import configure_logging
from tests.integration.servers import free_ports

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "examples" / "demo-events.jsonl.gz"


def _small_input(tmp_path: Path, n: int = 3000) -> Path:
    out = tmp_path / "events.jsonl"
    with gzip.open(EVENTS, "rt") as src, open(out, "w") as dst:
        for i, line in enumerate(src):
            if i >= n:
                break
            dst.write(line)
    return out


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "stream_monitor", *args]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_MONITOR_")}
    return {**env, "STREAM_MONITOR_STATE_SECRET": secrets.token_hex(32), **extra}  # run refuses to start without one


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def _read_pty(master: int, proc: subprocess.Popen, until: str | None, timeout_s: float = 120.0) -> str:
    """What the child wrote to the pseudo-terminal: until it exits, or until ``until`` appears."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)
            if until is not None and until in b"".join(chunks).decode(errors="replace"):
                break
        elif proc.poll() is not None:
            break
    return b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


def test_replay_logs_json_on_stderr_and_the_summary_alone_on_stdout(tmp_path: Path):
    events = _small_input(tmp_path)
    out = subprocess.run(
        _cli("--log-level", "INFO", "replay", "--input", str(events), "--alerts-out", str(tmp_path / "a.jsonl"), "--progress", "none"),
        capture_output=True, text=True, timeout=300, env=_env(), cwd=REPO,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    stdout_lines = [line for line in out.stdout.splitlines() if line.strip()]
    stderr_lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert stdout_lines and stdout_lines[0].startswith("replay of "), out.stdout
    assert not [line for line in stdout_lines if _is_json_object(line)], "a log line on stdout"
    assert stderr_lines and all(_is_json_object(line) for line in stderr_lines), stderr_lines[:5]


def test_replay_logs_console_text_when_stderr_is_a_terminal(tmp_path: Path):
    events = _small_input(tmp_path)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        _cli("--log-level", "INFO", "replay", "--input", str(events), "--alerts-out", str(tmp_path / "a.jsonl"), "--progress", "none"),
        stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=_env(), cwd=REPO,
    )  # fmt: skip
    os.close(slave)
    try:
        terminal = _read_pty(master, proc, until=None)
        stdout = proc.communicate(timeout=300)[0].decode()
    finally:
        os.close(master)
    assert proc.returncode == 0, terminal[-2000:]
    logs = [line for line in terminal.splitlines() if line.strip()]
    assert logs and not [line for line in logs if _is_json_object(line)], logs[:5]
    assert any("channel_discovered" in line for line in logs), logs[:5]
    assert stdout.startswith("replay of ") and "channel_discovered" not in stdout


def _run_first_log_line(env: dict[str, str]) -> str:
    """``stream-monitor run`` with stderr on a terminal, against a port nobody listens on: its first log line."""
    (port,) = free_ports(1)
    with socket.socket() as probe:  # nothing must answer there
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        _cli("run", "--bootstrap-servers", f"127.0.0.1:{port}", "--input-topic", "t", "--metrics-port", "0"),
        stdout=subprocess.DEVNULL, stderr=slave, stdin=subprocess.DEVNULL, env=env, cwd=REPO,
    )  # fmt: skip
    os.close(slave)
    try:
        text = _read_pty(master, proc, until="\n")
    finally:
        if proc.poll() is None:  # only its first line matters here (stopping on SIGTERM is tested in test_run_e2e)
            proc.kill()
            proc.wait()
        os.close(master)
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "run logged nothing"
    return lines[0]


def test_run_logs_console_text_on_a_terminal_unless_a_format_is_set():
    line = _run_first_log_line(_env())
    assert not _is_json_object(line), line
    assert _is_json_object(_run_first_log_line(_env(STREAM_MONITOR_LOG_FORMAT="json")))


@pytest.mark.parametrize("flag", ["json", "console"])
def test_log_format_flag_wins_over_the_terminal_rule(tmp_path: Path, flag: str):
    events = _small_input(tmp_path, n=500)
    out = subprocess.run(
        _cli("--log-level", "INFO", "--log-format", flag, "replay", "--input", str(events), "--alerts-out", str(tmp_path / "a.jsonl"), "--progress", "none"),
        capture_output=True, text=True, timeout=300, env=_env(), cwd=REPO,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines and all(_is_json_object(line) == (flag == "json") for line in lines), lines[:3]


@pytest.fixture
def restore_logging():
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
    kafka_logger = logging.getLogger("kafka")
    for h in [h for h in kafka_logger.handlers if h.get_name() == "stream-monitor"]:
        kafka_logger.removeHandler(h)


def test_kafka_client_warnings_are_rendered_like_our_logs(restore_logging):
    out = io.StringIO()
    configure_logging("INFO", "json", out)
    configure_logging("INFO", "json", out)  # reconfiguring replaces, never duplicates
    logging.getLogger("kafka.coordinator.consumer").warning("heartbeat failed for group %s", "g")
    logging.getLogger("kafka.conn").info("connecting")  # client chatter below WARNING stays out
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and _is_json_object(lines[0]), lines
    record = orjson.loads(lines[0])
    assert record["event"] == "heartbeat failed for group g" and record["level"] == "warning"
    assert record["logger"] == "kafka.coordinator.consumer"
    console = io.StringIO()
    configure_logging("INFO", "console", console)
    logging.getLogger("kafka.client").warning("node down")
    text = console.getvalue()
    assert "node down" in text and not _is_json_object(text.strip()) and out.getvalue().count("\n") == 1


def test_the_kafka_io_loop_slow_task_warning_stays_out_but_its_errors_come_through(restore_logging):
    out = io.StringIO()
    configure_logging("INFO", "json", out)
    selector = logging.getLogger("kafka.net.selector")
    selector.warning("Task %s ran for 0.246s (>0.100s threshold). It is blocking the event loop", "t")
    selector.error("selector failed")
    logging.getLogger("kafka.conn").warning("connection lost")
    events = [orjson.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert events == ["selector failed", "connection lost"], events


def test_log_lines_go_to_the_current_stderr_even_after_the_old_one_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """configure_logging() without a stream writes to whatever sys.stderr is at each call: a stream
    replaced and closed since (a test's capture, a daemon's redirect) must not make every later log
    line raise (it once stopped in-process monitors: ``ValueError: I/O operation on closed file``)."""
    import structlog

    from stream_monitor.ops.logs import configure_logging

    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("INFO", "json")
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    structlog.get_logger("t").info("after_the_swap", n=1)
    assert '"event": "after_the_swap"' in second.getvalue()
