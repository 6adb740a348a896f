"""Group-less consumers are built without auto-commit, so kafka-python never logs
``group_id is None: disabling auto-commit`` (once per consumer: hundreds of lines in a failing
test that polls with a fresh consumer). Checked on the source: every ``KafkaConsumer(...)`` call
without a group (``group_id`` absent or None) passes ``enable_auto_commit=False``; calls built
from ``**options`` are checked by constructing them."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from stream_monitor.config import KafkaSettings
from stream_monitor.runtime import clients

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    p
    for d in ("stream_monitor", "tests", "bench")
    for p in (REPO / d).rglob("*.py")
    if p.name != Path(__file__).name and not {".cache", ".venv"} & set(p.relative_to(REPO).parts)
)  # the project's own sources, not the test fixtures' cached virtualenvs


def _group_less_without_auto_commit_off(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "KafkaConsumer"):
            continue
        kw = {k.arg: k.value for k in node.keywords}
        if None in kw:  # **options: checked by construction below
            continue
        group = kw.get("group_id")
        group_less = group is None or (isinstance(group, ast.Constant) and group.value is None)
        auto_off = isinstance(kw.get("enable_auto_commit"), ast.Constant) and kw["enable_auto_commit"].value is False
        if group_less and not auto_off:
            lines.append(node.lineno)
    return lines


def test_every_group_less_consumer_call_turns_auto_commit_off():
    offenders = {
        str(p.relative_to(REPO)): lines
        for p in SOURCES
        if (lines := _group_less_without_auto_commit_off(ast.parse(p.read_text(encoding="utf-8"))))
    }
    assert offenders == {}


def test_the_check_finds_a_group_less_consumer_with_auto_commit_on():
    assert _group_less_without_auto_commit_off(ast.parse("KafkaConsumer(bootstrap_servers='b', group_id=None)")) == [1]
    assert _group_less_without_auto_commit_off(ast.parse("KafkaConsumer('t', bootstrap_servers='b')")) == [1]
    assert _group_less_without_auto_commit_off(ast.parse("KafkaConsumer(group_id=None, enable_auto_commit=False)")) == []


def test_plain_consumer_logs_no_auto_commit_warning(caplog: pytest.LogCaptureFixture):
    # api_version given: the client is built without contacting a broker
    settings = KafkaSettings(bootstrap_servers=["127.0.0.1:1"], client_options={"consumer": {"api_version": (3, 0)}})
    with caplog.at_level(logging.WARNING, logger="kafka"):
        consumer = clients.plain_consumer(settings, "t")
        consumer.close()
        KafkaConsumer(bootstrap_servers="127.0.0.1:1", group_id=None, api_version=(3, 0)).close()
    messages = [r.getMessage() for r in caplog.records]
    # the bare construction shows the check would see the warning
    assert messages.count("group_id is None: disabling auto-commit.") == 1, messages


def test_plain_consumer_takes_client_options_that_override_its_fetch_sizes():
    """A fetch-size override in client_options.consumer once made every plain consumer (state restore) raise."""
    options = {"api_version": (3, 0), "fetch_max_bytes": 1024 * 1024, "max_partition_fetch_bytes": 512 * 1024, "group_id": "ignored"}
    settings = KafkaSettings(bootstrap_servers=["127.0.0.1:1"], client_options={"consumer": options})
    consumer = clients.plain_consumer(settings, "t")
    try:
        assert consumer.config["fetch_max_bytes"] == 1024 * 1024 and consumer.config["max_partition_fetch_bytes"] == 512 * 1024
        assert consumer.config["group_id"] is None and consumer.config["enable_auto_commit"] is False
    finally:
        consumer.close()
