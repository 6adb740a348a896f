"""CloudEvents around inference payloads, as KServe's payload logger and MLServer emit them.

Structured mode: the record value is a JSON envelope (``specversion``, ``id``, ``source``,
``type``, ``time``, extensions, and ``data`` or ``data_base64``). Binary mode: the attributes are
Kafka headers (``ce_id``, ``ce_type``, …; ``Ce-Id``-style names as HTTP uses are accepted too)
and the value is the data. The data is an OIP or KServe V1 payload
(:mod:`stream_monitor.core.formats.oip`).

The event id is the envelope's ``id`` (request and response events of one inference share it),
the event time its ``time``, the model its ``modelid`` (MLServer) or ``inferenceservicename``
(KServe) extension, else what the payload, the headers or the configuration say.

>>> from stream_monitor.core.formats import CloudEventsFormat
>>> headers = {"ce_specversion": "1.0", "ce_id": "abc", "ce_type": "org.kubeflow.serving.inference.request",
...            "ce_source": "http://localhost:9081/", "ce_inferenceservicename": "sklearn-iris"}
>>> decode(b'{"instances": [[6.8, 2.8]]}', headers, CloudEventsFormat(feature_names=("sepal_l", "sepal_w")))
[{'event_id': 'abc', 'model': 'sklearn-iris', 'features': {'sepal_l': 6.8, 'sepal_w': 2.8}}]
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from stream_monitor.core.formats import oip
from stream_monitor.core.formats.common import FormatError, FormatErrorReason, first_text, load_json, load_json_object

_BAD = FormatErrorReason.BAD_CLOUDEVENT


def binary_attributes(headers: dict[str, str]) -> dict[str, str]:
    """CloudEvents attributes carried as headers (``ce_x`` or ``ce-x``), by attribute name.

    >>> binary_attributes({"ce_id": "1", "ce-type": "t", "content-type": "application/json"})
    {'id': '1', 'type': 't'}
    """
    return {name[3:]: v for name, v in headers.items() if name.startswith(("ce_", "ce-"))}


def decode(value: bytes, headers: dict[str, str], fmt: Any) -> list[dict[str, Any]] | FormatError:
    """One CloudEvent (structured or binary mode) -> events of our contract."""
    attrs: dict[str, Any] = binary_attributes(headers)
    if "id" in attrs or "specversion" in attrs:
        data = load_json(value)
        if isinstance(data, FormatError):
            return data
    else:
        envelope = load_json_object(value)
        if isinstance(envelope, FormatError):
            return envelope
        if "specversion" not in envelope:
            return FormatError(_BAD, "not a CloudEvent: no specversion in the value, no ce_ headers")
        attrs = envelope
        data = _structured_data(envelope)
        if isinstance(data, FormatError):
            return data
    ce_id = first_text(attrs.get("id"))
    if ce_id is None:
        return FormatError(_BAD, "the CloudEvent has no id")
    ce_type = attrs.get("type")
    if fmt.types is not None and ce_type not in fmt.types:
        return FormatError(FormatErrorReason.UNEXPECTED_TYPE, f"type {ce_type!r} is not one of {list(fmt.types)}")
    if not isinstance(data, dict):
        return FormatError(FormatErrorReason.NOT_AN_OBJECT, f"the CloudEvent data is not a JSON object but {type(data).__name__}")
    # MLServer names the model in modelid and itself in inferenceservicename; KServe sends only the latter
    model = first_text(attrs.get("modelid"), attrs.get("inferenceservicename"))
    time = attrs.get("time")
    return oip.decode(data, headers, fmt, event_id=ce_id, model=model, ts=time if isinstance(time, str) and time else None)


def _structured_data(envelope: dict[str, Any]) -> Any:
    """The data of a structured-mode envelope: ``data`` (JSON, or JSON text) or ``data_base64``."""
    if "data" in envelope:
        data = envelope["data"]
        if isinstance(data, str):
            try:
                return orjson.loads(data)
            except orjson.JSONDecodeError:
                return FormatError(FormatErrorReason.INVALID_JSON, "data is text that is not JSON")
        return data
    if "data_base64" in envelope:
        encoded = envelope["data_base64"]
        if not isinstance(encoded, str):
            return FormatError(_BAD, "data_base64 must be text")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return FormatError(_BAD, "data_base64 is not valid base64")
        return load_json(raw)
    return FormatError(FormatErrorReason.NO_PAYLOAD, "the CloudEvent has no data")
