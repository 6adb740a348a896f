"""Plain words about a configured input format, and a dry run of it on a sample record.

For ``check-config``: :func:`describe` says what a format reads; :func:`check_sample` reads one
sample record with it and says what events come out, with a warning for every mapped path that
finds nothing (a typo in a mapping is otherwise silent: absent optional fields are allowed).

>>> from stream_monitor.core.formats import MappingFormat
>>> fmt = MappingFormat(model_name="churn", features="payload.inputs", prediction="payload.scroe")
>>> ok, lines = check_sample(b'{"payload": {"inputs": {"tenure": 3}, "score": 0.2}}', None, fmt)
>>> ok, lines
(True, ['1 event: model churn, features tenure', 'WARNING: prediction: nothing at payload.scroe in the sample'])
"""

from __future__ import annotations

from typing import Any

import orjson

from stream_monitor.core import events as ev
from stream_monitor.core.formats import FormatError, to_native
from stream_monitor.core.formats.common import Headers, load_json_object
from stream_monitor.core.formats.mapping import ABSENT, lookup

_MAPPED = ("event_id", "model", "model_version", "ts", "features", "prediction", "label", "latency_ms")


def describe(fmt: Any) -> str:
    """One sentence on what a format reads.

    >>> from stream_monitor.core.formats import OipFormat
    >>> describe(OipFormat(feature_names=("a", "b")))
    'Open Inference Protocol (V2) or KServe V1 payloads: features a, b from the columns of the 2-D input, other inputs by tensor name; prediction from every output; model from model_name, header mlserver-model'
    """
    kind = fmt.kind
    if kind == "native":
        return "stream-monitor inference events"
    if kind == "mapping":
        paths = ", ".join(f"{k} <- {getattr(fmt, k)}" for k in _MAPPED if getattr(fmt, k) is not None)
        const = f"; model {fmt.model_name!r}" if fmt.model_name else ""
        each = f"each item of {fmt.records}: " if fmt.records else ""
        return f"custom JSON, {each}{paths}{const}"
    what = "Open Inference Protocol (V2) or KServe V1 payloads" if kind == "oip" else "CloudEvents (structured or binary) around OIP or KServe V1 data"
    if fmt.feature_names:
        where = f"the {fmt.feature_input!r} input" if fmt.feature_input else "the 2-D input"
        feats = f"features {', '.join(fmt.feature_names)} from the columns of {where}, other inputs by tensor name"
    else:
        feats = "one feature per input tensor (columns of a 2-D tensor as <tensor>_<j>)"
    outs = f"prediction from outputs {', '.join(fmt.outputs)}" if fmt.outputs else "prediction from every output"
    model_from = ["modelid/inferenceservicename attribute"] if kind == "cloudevents" else []
    model_from += ["model_name", *(f"header {h}" for h in fmt.model_headers)]
    if fmt.model:
        model_from.append(f"else {fmt.model!r}")
    return f"{what}: {feats}; {outs}; model from {', '.join(model_from)}"


def check_sample(value: bytes, headers: Headers | None, fmt: Any) -> tuple[bool, list[str]]:
    """Read one sample record with ``fmt``: (whether it gives usable events, lines to show)."""
    out = to_native(value, headers, fmt)
    if isinstance(out, FormatError):
        return False, [f"ERROR: the sample cannot be read: {out.reason}: {out.detail}"]
    lines = [_summary(out)]
    ok = bool(out)
    for i, event in enumerate(out):
        decoded = ev.decode_inference(orjson.dumps(event), 0)
        if isinstance(decoded, ev.DeadLetter):
            lines.append(f"ERROR: event {i} is not a valid inference event: {decoded.reason}: {decoded.detail}")
            ok = False
    if fmt.kind == "mapping":
        lines.extend(_unmatched_paths(value, fmt))
    return ok, lines


def _summary(events: list[dict[str, Any]]) -> str:
    """'N events: model M, features a, b, prediction' from what the first event holds."""
    if not events:
        return "0 events (an empty batch)"
    first = events[0]
    parts = [f"model {first['model']}"]
    if isinstance(first.get("features"), dict):
        parts.append("features " + ", ".join(map(str, first["features"])))
    for key in ("prediction", "label", "latency_ms", "ts", "event_id"):
        if key in first:
            parts.append(key)
    return f"{len(events)} event{'s' if len(events) != 1 else ''}: {', '.join(parts)}"


def _unmatched_paths(value: bytes, fmt: Any) -> list[str]:
    """A warning for each mapped path that finds nothing in the sample (first record item)."""
    obj = load_json_object(value)
    if isinstance(obj, FormatError):
        return []
    item: Any = obj
    if fmt.records is not None:
        items = lookup(obj, fmt.records)
        if not isinstance(items, list) or not items:
            return []
        item = items[0]
    return [
        f"WARNING: {key}: nothing at {getattr(fmt, key)} in the sample"
        for key in _MAPPED
        if getattr(fmt, key) is not None and lookup(item, getattr(fmt, key)) is ABSENT
    ]
