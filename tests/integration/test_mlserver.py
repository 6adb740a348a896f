"""A real MLServer over Kafka, watched by the monitor through the Open Inference Protocol format.

Requests (one FP64 tensor of 10 rows x 4 features) go to MLServer's Kafka input topic; MLServer
answers on its output topic; the monitor reads both topics with ``input_formats`` (requests give
feature events, responses prediction events, joined by ``<id>:<row>``). An unshifted phase raises
no alert; shifting one input feature by 1.5 standard deviations raises data drift on it.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from stream_monitor.core.events import SourcePosition
from stream_monitor.core.formats import CloudEventsFormat, OipFormat, to_native
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec
from tests.integration.harness import MonitorProcess
from tests.mlserver_fixtures import (  # noqa: F401  (fixtures)
    FEATURES,
    MODEL_HEADER,
    MODEL_NAME,
    MODEL_VERSION,
    MLServer,
    broker_or_skip,
    mlserver,
    mlserver_python,
    oip_request,
    sample_rows,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(3600)]  # a first run installs MLServer

ROWS = 10  # rows per request
UNSHIFTED_REQUESTS = 300
SHIFTED_REQUESTS = 200
SHIFTED = "debt_ratio"
SHIFT = (SHIFTED, 1.5 * FEATURES[SHIFTED][1])
HEADERS = [(MODEL_HEADER, MODEL_NAME.encode()), ("mlserver-version", MODEL_VERSION.encode())]
ANSWER_TIMEOUT_S = 600


def _consumer(server: MLServer, topic: str) -> KafkaConsumer:
    c = KafkaConsumer(bootstrap_servers=server.bootstrap, enable_auto_commit=False, consumer_timeout_ms=1000)
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    return c


def _poll(c: KafkaConsumer, into: list[Any]) -> None:
    for records in c.poll(timeout_ms=1000, max_records=5000).values():
        into.extend(records)


def _send(producer: KafkaProducer, server: MLServer, request_id: str, rows: list[list[float]]) -> None:
    producer.send(server.input_topic, key=request_id.encode(), value=oip_request(request_id, rows), headers=HEADERS)


def _wait_until_answering(server: MLServer, producer: KafkaProducer, out: KafkaConsumer, responses: list[Any]) -> None:
    """MLServer's consumer starts at the end of its topic: probe until a response comes back."""
    rng = np.random.default_rng(3)
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    k = 0
    while not responses:
        server.check_alive()
        assert time.monotonic() < deadline, f"MLServer never answered a probe:\n{server.log_tail()}"
        _send(producer, server, f"probe-{k}", sample_rows(rng, 1))
        producer.flush(30)
        k += 1
        _poll(out, responses)


def _record(r: Any) -> InputRecord:
    return InputRecord(r.value, SourcePosition(r.topic, r.partition, r.offset, r.timestamp), tuple(r.headers or ()))


def _request_id(r: Any) -> str:
    return orjson.loads(r.value)["id"]


def test_monitor_reads_mlserver_topics_and_alerts_on_an_input_shift(mlserver: MLServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    producer = KafkaProducer(bootstrap_servers=mlserver.bootstrap, linger_ms=5, acks="all")
    out = _consumer(mlserver, mlserver.output_topic)
    responses: list[Any] = []
    try:
        _wait_until_answering(mlserver, producer, out, responses)
        rng = np.random.default_rng(11)
        sent = [f"unshifted-{i}" for i in range(UNSHIFTED_REQUESTS)] + [f"shifted-{i}" for i in range(SHIFTED_REQUESTS)]
        for rid in sent:
            _send(producer, mlserver, rid, sample_rows(rng, ROWS, SHIFT if rid.startswith("shifted") else None))
        producer.flush(60)

        # MLServer answers every request on its output topic
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        wanted = set(sent)
        while not wanted <= {_request_id(r) for r in responses}:
            mlserver.check_alive()
            assert time.monotonic() < deadline, f"MLServer answered {len(responses)} requests:\n{mlserver.log_tail()}"
            _poll(out, responses)
    finally:
        producer.close()
        out.close()
    body = orjson.loads(responses[-1].value)
    assert body["model_name"] == MODEL_NAME and body["outputs"][0]["name"] == "predict"
    assert body["outputs"][0]["shape"][0] == ROWS  # one prediction per row of the request
    # MLServer's responses carry CloudEvents headers too: read as CloudEvents they give the same events
    last = responses[-1]
    assert to_native(last.value, last.headers, CloudEventsFormat()) == to_native(last.value, last.headers, OipFormat())

    inp = _consumer(mlserver, mlserver.input_topic)
    requests: list[Any] = []
    while len(requests) < len(sent):
        _poll(inp, requests)
    inp.close()

    spec = MonitorSpec.model_validate(
        {
            "input_formats": {
                mlserver.input_topic: {"kind": "oip", "feature_names": list(FEATURES)},
                mlserver.output_topic: {"kind": "oip"},
            }
        }
    )
    monitor = PartitionMonitor(spec, partition=0)
    phases: dict[bool, list[Any]] = {False: [], True: []}
    for r in requests + responses:
        phases[_request_id(r).startswith("shifted")].append(r)
    for records in phases.values():
        records.sort(key=lambda r: (r.timestamp, r.topic == mlserver.output_topic, r.offset))

    calm = monitor.process([_record(r) for r in phases[False]])
    assert calm.dead_letters == []
    model = monitor.models[MODEL_NAME]
    assert set(FEATURES) | {"__prediction__"} <= set(model.channels)
    assert calm.alerts == [], [a.event.feature for a in calm.alerts]

    shifted = monitor.process([_record(r) for r in phases[True]])
    assert shifted.dead_letters == []
    firing = [a.event for a in shifted.alerts if a.event.status == "firing"]
    assert any(f.feature == SHIFTED and f.kind == "data_drift" for f in firing), firing
    assert {f.feature for f in firing} <= {SHIFTED, "__prediction__"}, firing

    _the_sidecar_reads_the_same_topics(mlserver, tmp_path_factory.mktemp("sidecar"))


def _the_sidecar_reads_the_same_topics(server: MLServer, tmp: Path) -> None:
    """``stream-monitor run`` (the CLI, as deployed) over MLServer's two topics: headers reach the format, the shift alerts."""
    config = tmp / "monitor.yaml"
    config.write_text(
        yaml.safe_dump(
            {"input_formats": {server.input_topic: {"kind": "oip", "feature_names": list(FEATURES)}, server.output_topic: {"kind": "oip"}}}
        )
    )
    alerts = f"mlserver-alerts-{uuid.uuid4().hex[:8]}"
    monitor = MonitorProcess(
        server.bootstrap, [server.input_topic, server.output_topic], alerts, f"mlserver-monitor-{uuid.uuid4().hex[:8]}",
        tmp / "monitor.log", extra_args=["--config", str(config)],
    )  # fmt: skip
    reader = KafkaConsumer(alerts, bootstrap_servers=server.bootstrap, enable_auto_commit=False, isolation_level="read_committed", auto_offset_reset="earliest")
    seen: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 300
        while not any(a["feature"] == SHIFTED and a["status"] == "firing" for a in seen):
            monitor.check_alive()
            assert time.monotonic() < deadline, f"no alert on {SHIFTED} from run; got {[(a['feature'], a['detector']) for a in seen]}\n{monitor.log_tail()}"
            for records in reader.poll(timeout_ms=1000).values():
                seen.extend(orjson.loads(r.value) for r in records)
    finally:
        reader.close()
        monitor.terminate()
    firing = [a for a in seen if a["status"] == "firing"]
    assert {a["feature"] for a in firing} <= {SHIFTED, "__prediction__"}, firing
    assert all(a["model"] == MODEL_NAME and a["kind"] in ("data_drift", "prediction_drift") for a in firing), firing
