"""Input formats: turn what model servers write into events of our own contract.

A topic's format is configured as one of

- ``native``: our inference events, decoded as they are (the default);
- ``oip``: Open Inference Protocol (V2) requests and responses, as MLServer's Kafka server,
  KServe, Seldon and Triton write them (:mod:`stream_monitor.core.formats.oip`);
- ``cloudevents``: CloudEvents in structured or binary mode wrapping an OIP or KServe V1 payload,
  as KServe's payload logger emits them (:mod:`stream_monitor.core.formats.cloudevents`);
- ``mapping``: custom JSON, with dotted paths saying where each field lives
  (:mod:`stream_monitor.core.formats.mapping`).

:func:`to_native` turns one record (value and headers) into a list of event objects (``event_id``,
``model``, ``model_version``, ``ts``, ``features``, ``prediction``, ``label``, ``latency_ms``;
absent fields are left out), or a :class:`FormatError`. It never raises.

>>> fmt = parse_format({"kind": "oip", "feature_names": ["age", "income"]})
>>> value = b'{"id": "r1", "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64",'
>>> value += b' "data": [31, 5200.0, 45, 7100.0]}]}'
>>> to_native(value, [("mlserver-model", b"credit")], fmt)
[{'event_id': 'r1:0', 'model': 'credit', 'features': {'age': 31.0, 'income': 5200.0}}, {'event_id': 'r1:1', 'model': 'credit', 'features': {'age': 45.0, 'income': 7100.0}}]
>>> to_native(b'{"id": "r1"}', None, fmt)
FormatError(reason='no_payload', detail='neither inputs/instances (features) nor outputs/predictions (prediction)')
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Sequence, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from stream_monitor.core.formats.common import FormatError, FormatErrorReason, Headers, header_map, load_json_object

__all__ = [
    "CloudEventsFormat",
    "FormatError",
    "FormatErrorReason",
    "InputFormat",
    "MappingFormat",
    "NativeFormat",
    "OipFormat",
    "parse_format",
    "to_native",
]


class _Format(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NativeFormat(_Format):
    """Records are our own inference events (see the README's event contract)."""

    kind: Literal["native"] = "native"


class _TensorFormat(_Format):
    """Settings shared by the formats that carry inference tensors (OIP, KServe V1)."""

    model: str | None = Field(default=None, min_length=1, max_length=256)  # when neither headers nor body name one
    model_version: str | None = None  # when neither headers nor body give one
    model_headers: tuple[str, ...] = ("mlserver-model",)  # Kafka headers that may name the model
    version_headers: tuple[str, ...] = ("mlserver-version",)
    feature_names: tuple[str, ...] | None = None  # names for the columns of one 2-D input tensor
    feature_input: str | None = None  # which input tensor those names are for (default: the only one)
    outputs: tuple[str, ...] | None = None  # outputs to keep as the prediction (default: all)

    @model_validator(mode="after")
    def _names_unique(self) -> _TensorFormat:
        if self.feature_names is not None and len(set(self.feature_names)) != len(self.feature_names):
            raise ValueError("feature_names must be unique")
        return self


class OipFormat(_TensorFormat):
    """Open Inference Protocol (V2) request/response JSON (KServe V1 ``instances`` accepted too)."""

    kind: Literal["oip"] = "oip"


class CloudEventsFormat(_TensorFormat):
    """CloudEvents (structured or binary mode) whose data is an OIP or KServe V1 payload."""

    kind: Literal["cloudevents"] = "cloudevents"
    types: tuple[str, ...] | None = None  # accepted event types (default: any)


class MappingFormat(_Format):
    """Custom JSON: a dotted path for each field of our event (``a.b.0`` indexes lists).

    >>> MappingFormat(model_name="m", features="payload.inputs").features
    'payload.inputs'
    """

    kind: Literal["mapping"] = "mapping"
    records: str | None = None  # path of a list of records, each mapped by the paths below
    event_id: str | None = None
    model: str | None = None  # path of the model name
    model_name: str | None = Field(default=None, min_length=1, max_length=256)  # a constant model name
    model_version: str | None = None  # path of the model version
    version: str | None = None  # a constant model version
    ts: str | None = None
    features: str | None = None  # path of an object (name -> value) or of a list (with feature_names)
    feature_names: tuple[str, ...] | None = None
    prediction: str | None = None
    label: str | None = None
    latency_ms: str | None = None

    @model_validator(mode="after")
    def _has_model(self) -> MappingFormat:
        if self.model is None and self.model_name is None:
            raise ValueError("a mapping needs `model` (a path) or `model_name` (a constant)")
        if self.features is None and self.prediction is None and self.label is None:
            raise ValueError("a mapping needs at least one of `features`, `prediction`, `label`")
        return self


InputFormat = Annotated[
    Union[NativeFormat, OipFormat, CloudEventsFormat, MappingFormat],
    Field(discriminator="kind"),
]

_ADAPTER: TypeAdapter[Any] = TypeAdapter(InputFormat)


def parse_format(value: Any) -> NativeFormat | OipFormat | CloudEventsFormat | MappingFormat:
    """Validate a format configuration (a mapping with ``kind``).

    >>> parse_format({"kind": "mapping", "model_name": "m", "features": "x"}).kind
    'mapping'
    """
    return _ADAPTER.validate_python(value)


def to_native(value: bytes, headers: Headers | None, fmt: Any, key: bytes | None = None) -> list[dict[str, Any]] | FormatError:
    """One record in format ``fmt`` -> events of our contract, or why it cannot be read. Never raises.

    ``key`` (the record key) is the request id of an OIP payload without an ``id``, as MLServer
    takes it.

    >>> to_native(b'{"model": "m", "features": {"x": 1}}', None, NativeFormat())
    [{'model': 'm', 'features': {'x': 1}}]
    >>> str(to_native(b'[1]', None, NativeFormat()).reason)
    'not_an_object'
    """
    try:
        return _to_native(value, headers, fmt, key)
    except RecursionError:
        return FormatError(FormatErrorReason.INVALID_JSON, "nesting too deep")
    except Exception as exc:  # noqa: BLE001 - the contract is a value, never an exception
        return FormatError(FormatErrorReason.INTERNAL, f"{type(exc).__name__}: {exc}"[:300])


def _to_native(value: bytes, headers: Headers | None, fmt: Any, key: bytes | None) -> list[dict[str, Any]] | FormatError:
    from stream_monitor.core.formats import cloudevents, mapping, oip

    kind = fmt.kind
    hdrs = header_map(headers)
    if kind == "cloudevents":
        return cloudevents.decode(value, hdrs, fmt)
    obj = load_json_object(value)
    if isinstance(obj, FormatError):
        return obj
    if kind == "oip":
        return oip.decode(obj, hdrs, fmt, key=key.decode("utf-8", errors="replace") if key else None)
    if kind == "mapping":
        return mapping.decode(obj, hdrs, fmt)
    if kind == "native":
        return [obj]
    return FormatError(FormatErrorReason.INTERNAL, f"unknown format kind {kind!r}")
