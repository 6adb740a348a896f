"""``stream-monitor run`` on the real broker: the status page at ``/`` shows the alert the drifting model fires.

The monitor runs as a subprocess (the CLI, as deployed) over two models, one drifting and one
stationary. The page must list a firing alert of the drifting model, with its detector rows over
threshold, lag and checkpoints, and none of the stationary model's; headless Chromium must render
the live page (skipped only when Chromium is absent).
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from stream_monitor.synthetic import demo_streams, generate_events
from tests.integration.harness import STATE_SECRET
from tests.integration.servers import free_ports, http, start_monitor_cli, stop_process, wait_for
from tests.test_status_page import chromium, dump_dom

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

N = 8_000  # events per model: fraud-v3 drifts, churn-v1 stays stationary


def _produce(bootstrap: str, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all", max_block_ms=20_000)
    fraud, churn = demo_streams(N, 42)
    for a, b in zip(generate_events(fraud), generate_events(churn), strict=True):
        for event in (a, b):
            producer.send(topic, key=event["model"].encode(), value=orjson.dumps(event))
    producer.flush(timeout=60)
    producer.close()


def _firing_rows(page: str) -> list[tuple[str, str, str, str]]:
    """(model, channel, detector, severity) of the firing-alerts table."""
    section = re.search(r'<section class="wide" id="firing">(.*?)</section>', page, re.S)
    if section is None:
        return []
    row = r'<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td><td><span class="sev sev-[a-z]+">([^<]*)</span></td>'
    return re.findall(row, section.group(1))


def test_status_page_shows_the_firing_alert(kafka_bootstrap, topic_factory, unique_name, tmp_path: Path):
    topic = topic_factory(partitions=2)
    alerts, group = unique_name("alerts"), unique_name("group")
    _produce(kafka_bootstrap, topic)
    (port,) = free_ports(1)
    log_path = tmp_path / "monitor.log"
    proc, alive = start_monitor_cli(kafka_bootstrap, topic, alerts, group, port, log_path, STATE_SECRET)

    url = f"http://127.0.0.1:{port}/"
    try:
        def page_with_alert() -> str | None:
            status, body = http("GET", url, timeout=2)
            page = body.decode()
            firing = status == 200 and any(r[0] == "fraud-v3" for r in _firing_rows(page))
            # lag is sampled on its own schedule: the alert can be on the page before the first sample
            return page if firing and f"<td>{topic}</td>" in page else None

        page = wait_for("a firing fraud-v3 alert and the lag of an assigned partition on /", page_with_alert, 240, 0.5, alive)
        rows = _firing_rows(page)
        assert all(severity in ("info", "warning", "critical") for *_, severity in rows), rows
        assert not [r for r in rows if r[0] == "churn-v1"], rows
        assert re.search(r'<tr class="breached"><td>[^<]+</td><td>.*?class="det breached"', page), "no detector row over threshold"
        assert "churn-v1" in page  # the stationary model is listed with its channels
        assert f"<td>{topic}</td>" in page  # lag of an assigned partition
        assert "Checkpoints committed" in page and "Last commit never" not in page
        if chromium() is not None:
            dom = dump_dom(url)
            assert "Firing alerts:" in dom and "fraud-v3" in dom
    finally:
        code = stop_process(proc, 30.0)
    assert code == 0, f"exit {code}:\n{log_path.read_text()[-3000:]}"
