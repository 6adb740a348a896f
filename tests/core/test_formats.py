"""Input formats: what model servers write, read into events of our contract.

Payloads follow what the servers emit: MLServer's Kafka server (OIP request bodies with the model
in the ``mlserver-model`` header; response bodies with ``model_name``/``model_version``/``id`` and
CloudEvents ``Ce-*`` headers), KServe's payload logger (CloudEvents with ``ce_*`` headers in
binary mode, or a structured envelope; OIP or V1 ``instances``/``predictions`` data), Triton
(nested tensor data) and custom JSON through a field mapping.
"""

from __future__ import annotations

import base64
import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from stream_monitor.core.events import DeadLetterReason, SourcePosition
from stream_monitor.core.formats import (
    CloudEventsFormat,
    FormatError,
    MappingFormat,
    NativeFormat,
    OipFormat,
    parse_format,
    to_native,
)
from stream_monitor.core.monitor import InputRecord, PartitionMonitor
from stream_monitor.core.spec import MonitorSpec

MODEL_HEADERS = [("mlserver-model", b"credit-risk"), ("mlserver-version", b"v1")]
FEATURES = ("age", "income", "debt_ratio")


def _request(rid: str = "q-1", rows: int = 2) -> bytes:
    data = [[30.0 + i, 5000.0 + 100 * i, 0.3 + 0.01 * i] for i in range(rows)]
    return orjson.dumps(
        {
            "id": rid,
            "parameters": {"content_type": "np"},
            "inputs": [{"name": "input-0", "shape": [rows, 3], "datatype": "FP64", "parameters": {"content_type": "np"}, "data": data}],
        }
    )


def _response(rid: str = "q-1", preds: tuple[int, ...] = (0, 1)) -> bytes:
    return orjson.dumps(
        {
            "model_name": "credit-risk",
            "model_version": "v1",
            "id": rid,
            "outputs": [{"name": "predict", "shape": [len(preds), 1], "datatype": "INT64", "parameters": {"content_type": "np"}, "data": list(preds)}],
        }
    )


# --------------------------------------------------------------------- OIP
def test_mlserver_request_gives_one_feature_event_per_row_named_by_feature_names() -> None:
    events = to_native(_request(), MODEL_HEADERS, OipFormat(feature_names=FEATURES))
    assert events == [
        {"event_id": "q-1:0", "model": "credit-risk", "model_version": "v1", "features": {"age": 30.0, "income": 5000.0, "debt_ratio": 0.3}},
        {"event_id": "q-1:1", "model": "credit-risk", "model_version": "v1", "features": {"age": 31.0, "income": 5100.0, "debt_ratio": 0.31}},
    ]


def test_mlserver_response_gives_prediction_events_with_the_request_event_ids() -> None:
    requests = to_native(_request(), MODEL_HEADERS, OipFormat(feature_names=FEATURES))
    responses = to_native(_response(), [("Ce-Id", b"q-1"), ("Ce-Modelid", b"credit-risk")], OipFormat())
    assert isinstance(requests, list) and isinstance(responses, list)
    assert [e["prediction"] for e in responses] == [0, 1]
    assert [e["event_id"] for e in responses] == [e["event_id"] for e in requests]
    assert all(e["model"] == "credit-risk" and e["model_version"] == "v1" for e in responses)


def test_a_single_row_keeps_the_payload_id_as_event_id() -> None:
    (event,) = to_native(_request("q-7", rows=1), MODEL_HEADERS, OipFormat(feature_names=FEATURES))  # type: ignore[misc]
    assert event["event_id"] == "q-7"


def test_the_record_key_is_the_request_id_when_the_body_has_none() -> None:
    body = orjson.loads(_request("q-3"))
    del body["id"]
    events = to_native(orjson.dumps(body), MODEL_HEADERS, OipFormat(feature_names=FEATURES), key=b"q-3")
    assert [e["event_id"] for e in events] == ["q-3:0", "q-3:1"]  # type: ignore[index]
    assert to_native(_request("q-4"), MODEL_HEADERS, OipFormat(feature_names=FEATURES), key=b"other")[0]["event_id"] == "q-4:0"  # type: ignore[index]


def test_columns_of_a_2d_tensor_without_names_are_numbered_after_the_tensor() -> None:
    (first, _) = to_native(_request(), MODEL_HEADERS, OipFormat())  # type: ignore[misc]
    assert first["features"] == {"input-0_0": 30.0, "input-0_1": 5000.0, "input-0_2": 0.3}


def test_pandas_style_request_one_named_column_per_input_with_strings_and_bools() -> None:
    body = {
        "id": "pd-1",
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": "age", "shape": [2, 1], "datatype": "INT64", "data": [31, 45]},
            {"name": "plan", "shape": [2, 1], "datatype": "BYTES", "parameters": {"content_type": "str"}, "data": ["basic", "pro"]},
            {"name": "active", "shape": [2], "datatype": "BOOL", "data": [True, False]},
        ],
    }
    events = to_native(orjson.dumps(body), [("mlserver-model", b"churn")], OipFormat())
    assert [e["features"] for e in events] == [  # type: ignore[union-attr]
        {"age": 31, "plan": "basic", "active": True},
        {"age": 45, "plan": "pro", "active": False},
    ]


def test_triton_nested_data_is_read_row_major() -> None:
    body = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]}], "id": "t"}
    events = to_native(orjson.dumps(body), None, OipFormat(model="m", feature_names=("a", "b")))
    assert [e["features"] for e in events] == [{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}]  # type: ignore[union-attr]


def test_several_outputs_give_an_object_of_named_outputs() -> None:
    body = {
        "model_name": "credit-risk",
        "id": "r",
        "outputs": [
            {"name": "predict", "shape": [1], "datatype": "INT64", "data": [1]},
            {"name": "predict_proba", "shape": [1, 2], "datatype": "FP64", "data": [0.2, 0.8]},
        ],
    }
    (event,) = to_native(orjson.dumps(body), None, OipFormat())  # type: ignore[misc]
    assert event["prediction"] == {"predict": 1, "predict_proba_0": 0.2, "predict_proba_1": 0.8}
    (only,) = to_native(orjson.dumps(body), None, OipFormat(outputs=("predict",)))  # type: ignore[misc]
    assert only["prediction"] == 1


def test_feature_names_pick_the_configured_input_among_several() -> None:
    body = {
        "inputs": [
            {"name": "dense", "shape": [1, 2], "datatype": "FP64", "data": [0.5, 1.5]},
            {"name": "country", "shape": [1], "datatype": "BYTES", "data": ["FR"]},
        ]
    }
    fmt = OipFormat(model="m", feature_names=("a", "b"), feature_input="dense")
    (event,) = to_native(orjson.dumps(body), None, fmt)  # type: ignore[misc]
    assert event["features"] == {"a": 0.5, "b": 1.5, "country": "FR"}
    err = to_native(orjson.dumps(body), None, OipFormat(model="m", feature_names=("a", "b")))
    assert isinstance(err, FormatError) and err.reason == "bad_tensor"


def test_kserve_v1_instances_and_predictions() -> None:
    fmt = OipFormat(model="sklearn-iris", feature_names=("sl", "sw", "pl", "pw"))
    req = to_native(b'{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}', None, fmt)
    assert [e["features"]["pl"] for e in req] == [4.8, 4.5]  # type: ignore[union-attr, index]
    resp = to_native(b'{"predictions": [1, 1]}', None, fmt)
    assert [e["prediction"] for e in resp] == [1, 1]  # type: ignore[union-attr, index]
    objs = to_native(b'{"instances": [{"sl": 5.1, "species_hint": "x"}]}', None, fmt)
    assert objs == [{"model": "sklearn-iris", "features": {"sl": 5.1, "species_hint": "x"}}]


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        ({"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64", "data": [1, 2, 3]}]}, MODEL_HEADERS, "bad_tensor"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": ["a"]}]}, MODEL_HEADERS, "bad_tensor"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "COMPLEX", "data": [1]}]}, MODEL_HEADERS, "bad_tensor"),
        ({"inputs": [{"name": "x", "shape": [1, 2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}, MODEL_HEADERS, "bad_tensor"),
        ({"inputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]}, MODEL_HEADERS, "bad_tensor"),
        ({"inputs": []}, MODEL_HEADERS, "bad_tensor"),
        (
            {
                "inputs": [
                    {"name": "a", "shape": [2], "datatype": "FP64", "data": [1, 2]},
                    {"name": "b", "shape": [3], "datatype": "FP64", "data": [1, 2, 3]},
                ]
            },
            MODEL_HEADERS,
            "batch_mismatch",
        ),
        (
            {
                "inputs": [{"name": "a", "shape": [2], "datatype": "FP64", "data": [1, 2]}],
                "outputs": [{"name": "p", "shape": [1], "datatype": "FP64", "data": [1]}],
            },
            MODEL_HEADERS,
            "batch_mismatch",
        ),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}]}, None, "missing_model"),
        ({"id": "r", "parameters": {}}, MODEL_HEADERS, "no_payload"),
    ],
)
def test_oip_failures_are_format_errors_with_a_reason(body: dict, headers: list | None, reason: str) -> None:
    out = to_native(orjson.dumps(body), headers, OipFormat())
    assert isinstance(out, FormatError), out
    assert out.reason == reason and out.detail


def test_feature_names_that_do_not_fit_the_tensor_are_a_format_error() -> None:
    out = to_native(_request(), MODEL_HEADERS, OipFormat(feature_names=("a", "b")))
    assert isinstance(out, FormatError) and out.reason == "bad_tensor" and "feature_names" in out.detail


# -------------------------------------------------------------- CloudEvents
KSERVE_REQUEST_HEADERS = [
    ("ce_specversion", b"1.0"),
    ("ce_id", b"5f1c-77"),
    ("ce_type", b"org.kubeflow.serving.inference.request"),
    ("ce_source", b"http://localhost:9081/"),
    ("ce_time", b"2026-01-01T10:00:00.250Z"),
    ("ce_inferenceservicename", b"sklearn-iris"),
    ("ce_namespace", b"models"),
    ("ce_component", b"predictor"),
    ("ce_endpoint", b"sklearn-iris-predictor"),
    ("content-type", b"application/json"),
]


def test_kserve_logger_binary_mode_request_and_response_meet_by_ce_id() -> None:
    fmt = CloudEventsFormat(feature_names=("sl", "sw", "pl", "pw"))
    req = to_native(b'{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}', KSERVE_REQUEST_HEADERS, fmt)
    resp_headers = [(k, b"org.kubeflow.serving.inference.response" if k == "ce_type" else v) for k, v in KSERVE_REQUEST_HEADERS]
    resp = to_native(b'{"predictions": [1, 2]}', resp_headers, fmt)
    assert isinstance(req, list) and isinstance(resp, list)
    assert [e["event_id"] for e in req] == [e["event_id"] for e in resp] == ["5f1c-77:0", "5f1c-77:1"]
    assert {e["model"] for e in req + resp} == {"sklearn-iris"}
    assert req[0]["ts"] == "2026-01-01T10:00:00.250Z"
    assert req[0]["features"] == {"sl": 6.8, "sw": 2.8, "pl": 4.8, "pw": 1.4}
    assert [e["prediction"] for e in resp] == [1, 2]


def test_mlserver_output_read_as_cloudevents_takes_the_model_from_ce_modelid() -> None:
    headers = [
        ("Ce-Specversion", b"0.3"),
        ("Ce-Id", b"q-1"),
        ("Ce-Type", b"io.seldon.serving.inference.response"),
        ("Ce-Source", b"io.seldon.serving.deployment.mlserver"),
        ("Ce-Modelid", b"credit-risk"),
        ("Ce-Inferenceservicename", b"mlserver"),  # MLServer's own name, not the model's
        ("Ce-Endpoint", b"credit-risk"),
    ]
    events = to_native(_response(), headers, CloudEventsFormat())
    assert [(e["event_id"], e["model"], e["prediction"]) for e in events] == [("q-1:0", "credit-risk", 0), ("q-1:1", "credit-risk", 1)]  # type: ignore[index]


def test_structured_mode_with_json_data_and_with_base64_data() -> None:
    data = {"id": "inner", "inputs": [{"name": "amount", "shape": [1], "datatype": "FP32", "data": [12.5]}]}
    envelope = {
        "specversion": "1.0",
        "id": "ev-1",
        "source": "/kserve/fraud",
        "type": "org.kubeflow.serving.inference.request",
        "time": "2026-01-01T00:00:00Z",
        "inferenceservicename": "fraud",
        "datacontenttype": "application/json",
        "data": data,
    }
    expected = [{"event_id": "ev-1", "model": "fraud", "ts": "2026-01-01T00:00:00Z", "features": {"amount": 12.5}}]
    assert to_native(orjson.dumps(envelope), None, CloudEventsFormat()) == expected
    b64 = {k: v for k, v in envelope.items() if k != "data"} | {"data_base64": base64.b64encode(orjson.dumps(data)).decode()}
    assert to_native(orjson.dumps(b64), None, CloudEventsFormat()) == expected


@pytest.mark.parametrize(
    ("value", "headers", "fmt", "reason"),
    [
        (b'{"inputs": []}', None, CloudEventsFormat(), "bad_cloudevent"),  # no specversion, no ce_ headers
        (b'{"specversion": "1.0", "type": "t", "data": {"predictions": [1]}}', None, CloudEventsFormat(model="m"), "bad_cloudevent"),
        (b'{"specversion": "1.0", "id": "1", "data_base64": "%%%"}', None, CloudEventsFormat(model="m"), "bad_cloudevent"),
        (b'{"specversion": "1.0", "id": "1"}', None, CloudEventsFormat(model="m"), "no_payload"),
        (b'{"predictions": [1]}', [("ce_id", b"1"), ("ce_type", b"other")], CloudEventsFormat(model="m", types=("a.request",)), "unexpected_type"),
        (b"[1, 2]", [("ce_id", b"1")], CloudEventsFormat(model="m"), "not_an_object"),
        (b"\xff\xfe", [("ce_id", b"1")], CloudEventsFormat(model="m"), "undecodable"),
    ],
)
def test_cloudevents_failures_are_format_errors(value: bytes, headers: list | None, fmt: CloudEventsFormat, reason: str) -> None:
    out = to_native(value, headers, fmt)
    assert isinstance(out, FormatError), out
    assert out.reason == reason


# ------------------------------------------------------------------ mapping
def test_mapping_reads_nested_custom_json() -> None:
    fmt = MappingFormat(
        event_id="request.id", model="request.model.name", model_version="request.model.rev", ts="request.received_at",
        features="request.body.features", prediction="response.outputs.0.score", latency_ms="timing.ms",
    )  # fmt: skip
    record = {
        "request": {"id": 42, "model": {"name": "ltv", "rev": "7"}, "received_at": 1767225600000, "body": {"features": {"spend": 12.0}}},
        "response": {"outputs": [{"score": 0.4}]},
        "timing": {"ms": 8},
    }
    assert to_native(orjson.dumps(record), None, fmt) == [
        {"event_id": 42, "model": "ltv", "model_version": "7", "ts": 1767225600000, "features": {"spend": 12.0}, "prediction": 0.4, "latency_ms": 8}
    ]


def test_mapping_with_constant_model_records_list_and_named_feature_list() -> None:
    fmt = MappingFormat(records="batch", model_name="scorer", version="2024-06", features="x", feature_names=("a", "b"), label="y")
    out = to_native(b'{"batch": [{"x": [1, 2], "y": 0}, {"x": [3, 4], "y": 1}]}', None, fmt)
    assert out == [
        {"model": "scorer", "model_version": "2024-06", "features": {"a": 1, "b": 2}, "label": 0},
        {"model": "scorer", "model_version": "2024-06", "features": {"a": 3, "b": 4}, "label": 1},
    ]


@pytest.mark.parametrize(
    ("value", "fmt", "reason"),
    [
        (b'{"meta": {}}', MappingFormat(model="meta.model", features="f"), "missing_field"),
        (b'{"meta": {"model": 3.5}, "f": {}}', MappingFormat(model="meta.model", features="f"), "wrong_type"),
        (b'{"f": [1, 2]}', MappingFormat(model_name="m", features="f"), "wrong_type"),
        (b'{"other": 1}', MappingFormat(model_name="m", features="f"), "no_payload"),
        (b'{"batch": 1}', MappingFormat(records="batch", model_name="m", features="f"), "wrong_type"),
        (b'{"batch": [{"g": 1}]}', MappingFormat(records="batch", model_name="m", features="f"), "no_payload"),
        (b'{"f": {"x": 1', MappingFormat(model_name="m", features="f"), "invalid_json"),
    ],
)
def test_mapping_failures_are_format_errors(value: bytes, fmt: MappingFormat, reason: str) -> None:
    out = to_native(value, None, fmt)
    assert isinstance(out, FormatError), out
    assert out.reason == reason


# ------------------------------------------------------------ configuration
def test_formats_are_validated_when_the_spec_is_built() -> None:
    spec = MonitorSpec.model_validate(
        {"input_formats": {"mlserver-input": {"kind": "oip", "feature_names": ["a", "b"]}, "logs": {"kind": "mapping", "model_name": "m", "features": "f"}}}
    )
    assert isinstance(spec.input_formats["mlserver-input"], OipFormat)
    assert MonitorSpec().input_formats == {}
    for bad in (
        {"kind": "mapping", "features": "f"},  # no model
        {"kind": "mapping", "model_name": "m"},  # nothing to read
        {"kind": "oip", "feature_names": ["a", "a"]},
        {"kind": "oip", "feature_nmes": ["a"]},  # typo
        {"kind": "avro"},
    ):
        with pytest.raises(ValidationError):
            parse_format(bad)
        with pytest.raises(ValidationError):
            MonitorSpec.model_validate({"input_formats": {"t": bad}})


# ------------------------------------------------------ never an exception
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["id", "inputs", "outputs", "instances", "predictions", "name", "shape", "datatype", "data", "model_name", "specversion", "data_base64", "x", "f"]) | st.text(max_size=4), inner, max_size=5),
    max_leaves=25,
)
_TENSOR = st.fixed_dictionaries(
    {"name": st.text(max_size=3), "shape": st.lists(st.integers(-1, 4), max_size=3), "datatype": st.sampled_from(["FP32", "INT8", "BOOL", "BYTES", "X"]), "data": _JSON}
)
_PAYLOAD = st.dictionaries(
    st.sampled_from(["id", "inputs", "outputs", "instances", "predictions", "model_name", "specversion", "data", "data_base64", "f", "x"]),
    _JSON | st.lists(_TENSOR | _JSON, max_size=3),
    max_size=5,
)
_FORMATS = [
    NativeFormat(),
    OipFormat(),
    OipFormat(model="m", feature_names=("a", "b")),
    CloudEventsFormat(),
    CloudEventsFormat(model="m", types=("t",)),
    MappingFormat(model="x", features="f", prediction="outputs.0"),
    MappingFormat(records="inputs", model_name="m", features="f", feature_names=("a",)),
]
_HEADERS = st.none() | st.lists(st.tuples(st.sampled_from(["ce_id", "Ce-Id", "ce_specversion", "mlserver-model", "ce_time", "x"]), st.binary(max_size=6)), max_size=4)


@settings(max_examples=300, deadline=None)
@given(value=st.binary(max_size=64) | (_JSON | _PAYLOAD).map(lambda v: json.dumps(v).encode()), headers=_HEADERS, which=st.integers(0, len(_FORMATS) - 1))
def test_to_native_never_raises_and_returns_events_or_a_format_error(value: bytes, headers: list | None, which: int) -> None:
    out = to_native(value, headers, _FORMATS[which])
    if isinstance(out, FormatError):
        assert out.reason != "internal", out
        assert out.detail
    else:
        assert isinstance(out, list) and all(isinstance(e, dict) for e in out)


@settings(max_examples=200, deadline=None)
@given(tensor=_TENSOR | _JSON)
def test_arbitrary_tensors_give_events_or_a_format_error(tensor: object) -> None:
    out = to_native(json.dumps({"inputs": [tensor], "outputs": [tensor]}).encode(), MODEL_HEADERS, OipFormat())
    assert isinstance(out, list) or (isinstance(out, FormatError) and out.reason != "internal"), out


# ----------------------------------------------------- the monitor's hook
def test_partition_monitor_reads_formatted_topics_and_dead_letters_what_it_cannot() -> None:
    spec = MonitorSpec.model_validate({"input_formats": {"req": {"kind": "oip", "feature_names": list(FEATURES)}, "resp": {"kind": "oip"}}})
    monitor = PartitionMonitor(spec, partition=0)
    bad = b'{"id": "q-9", "inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64", "data": [1]}]}'
    records = [
        InputRecord(_request("q-1"), SourcePosition("req", 0, 0, 1_000), tuple(MODEL_HEADERS)),
        InputRecord(_response("q-1"), SourcePosition("resp", 0, 0, 1_001)),
        InputRecord(bad, SourcePosition("req", 0, 1, 1_002), tuple(MODEL_HEADERS)),
        InputRecord(b'{"model": "native-m", "features": {"z": 1.0}}', SourcePosition("native", 0, 0, 1_003)),
    ]
    result = monitor.process(records)
    assert set(monitor.models) == {"credit-risk", "native-m"}
    assert set(monitor.models["credit-risk"].channels) == {*FEATURES, "__prediction__"}
    assert list(monitor.pending_labels) == ["q-1:0", "q-1:1"]  # predictions remembered for the label join
    (dead,) = result.dead_letters
    assert dead.reason == DeadLetterReason.FORMAT_ERROR and dead.detail.startswith("bad_tensor: ")
    assert dead.raw == bad and dead.position == records[2].position


def test_an_oip_record_on_a_native_topic_is_a_schema_violation() -> None:
    result = PartitionMonitor(MonitorSpec(), partition=0).process([InputRecord(_request(), SourcePosition("req", 0, 0, 1), tuple(MODEL_HEADERS))])
    assert [str(d.reason) for d in result.dead_letters] == ["schema_violation"]


def test_a_topic_configured_native_is_decoded_as_before() -> None:
    spec = MonitorSpec.model_validate({"input_formats": {"events": {"kind": "native"}}})
    value = b'{"model": "m", "ts": 5, "features": {"x": 1.0}}'
    native = PartitionMonitor(spec, 0).process([InputRecord(value, SourcePosition("events", 0, 0, 1))])
    plain = PartitionMonitor(MonitorSpec(), 0).process([InputRecord(value, SourcePosition("events", 0, 0, 1))])
    assert (native.records, native.dead_letters, native.channel_values) == (plain.records, plain.dead_letters, plain.channel_values) == (1, [], 1)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(st.binary(max_size=48) | _PAYLOAD.map(lambda v: json.dumps(v).encode()), max_size=6), headers=_HEADERS)
def test_the_monitor_never_raises_on_formatted_topics(values: list[bytes], headers: list | None) -> None:
    spec = MonitorSpec.model_validate({"input_formats": {"o": {"kind": "oip", "model": "m"}, "c": {"kind": "cloudevents", "model": "m"}}})
    monitor = PartitionMonitor(spec, 0)
    records = [InputRecord(v, SourcePosition("oc"[i % 2], 0, i, 1_000 + i), tuple(headers or ())) for i, v in enumerate(values)]
    result = monitor.process(records)
    assert all(d.raw in values for d in result.dead_letters)


# ------------------------------------------------------ check-config help
def test_check_sample_names_the_events_and_every_mapped_path_that_finds_nothing() -> None:
    from stream_monitor.core.formats.explain import check_sample, describe

    fmt = MappingFormat(model="meta.model", features="payload.inputs", label="feedback.outcom")
    sample = b'{"meta": {"model": "churn"}, "payload": {"inputs": {"tenure": 3, "plan": "pro"}}, "feedback": {"outcome": 1}}'
    ok, lines = check_sample(sample, None, fmt)
    assert ok and lines == ["1 event: model churn, features tenure, plan", "WARNING: label: nothing at feedback.outcom in the sample"]
    assert "label <- feedback.outcom" in describe(fmt)
    ok, lines = check_sample(b'{"meta": {"model": "churn"}, "payload": {"inputs": "tenure=3"}}', None, fmt)
    assert not ok and lines[1].startswith("ERROR: event 0 is not a valid inference event: schema_violation")
    ok, lines = check_sample(_request(), None, OipFormat(feature_names=FEATURES))
    assert not ok and lines == ["ERROR: the sample cannot be read: missing_model: no model_name in the body, no model header, no `model` configured"]
    ok, lines = check_sample(_request(), MODEL_HEADERS, OipFormat(feature_names=FEATURES))
    assert ok and lines == ["2 events: model credit-risk, features age, income, debt_ratio, event_id"]


def test_labels_join_the_rows_of_a_batched_response_by_row_event_id() -> None:
    spec = MonitorSpec.model_validate({"input_formats": {"resp": {"kind": "oip"}}})
    monitor = PartitionMonitor(spec, partition=0)
    monitor.process([InputRecord(_response("q-1", (0, 1)), SourcePosition("resp", 0, 0, 1_000))])
    labels = [orjson.dumps({"event_id": f"q-1:{i}", "model": "credit-risk", "label": 1}) for i in range(2)]
    result = monitor.process_labels([InputRecord(v, SourcePosition("labels", 0, i, 2_000)) for i, v in enumerate(labels)])
    assert result.dead_letters == [] and not monitor.pending_labels
    assert {"__label__", "__error__"} <= set(monitor.models["credit-risk"].channels)
