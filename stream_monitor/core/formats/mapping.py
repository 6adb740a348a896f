"""Custom JSON read through a declarative field mapping of dotted paths.

A path names keys separated by dots; a segment of digits indexes a list (``outputs.0.data``).
With ``records`` set, the value at that path is a list and every item is mapped by the other
paths. ``features`` may lead to an object (feature name -> value) or to a list of values named by
``feature_names``.

>>> from stream_monitor.core.formats import MappingFormat
>>> fmt = MappingFormat(model="meta.model_name", event_id="meta.request_id", ts="meta.at",
...                     features="payload.inputs", prediction="payload.score")
>>> record = {"meta": {"model_name": "churn", "request_id": "q7", "at": "2026-01-01T00:00:00Z"},
...           "payload": {"inputs": {"tenure": 14, "plan": "pro"}, "score": 0.82}}
>>> decode(record, {}, fmt)
[{'event_id': 'q7', 'model': 'churn', 'ts': '2026-01-01T00:00:00Z', 'features': {'tenure': 14, 'plan': 'pro'}, 'prediction': 0.82}]
>>> decode({"meta": {}}, {}, fmt)
FormatError(reason='missing_field', detail='model: nothing at meta.model_name')
"""

from __future__ import annotations

from typing import Any

from stream_monitor.core.formats.common import FormatError, FormatErrorReason, first_text

ABSENT: Any = object()  # what lookup returns when a path leads nowhere


def lookup(obj: Any, path: str) -> Any:
    """The value at a dotted path, or ``ABSENT`` when the path leads nowhere.

    >>> lookup({"a": [{"b": 1}]}, "a.0.b"), lookup({"a": 1}, "a.b") is ABSENT
    (1, True)
    """
    cur = obj
    for seg in path.split("."):
        if isinstance(cur, dict):
            if seg not in cur:
                return ABSENT
            cur = cur[seg]
        elif isinstance(cur, list) and seg.isdigit():
            i = int(seg)
            if i >= len(cur):
                return ABSENT
            cur = cur[i]
        else:
            return ABSENT
    return cur


def decode(obj: dict[str, Any], headers: dict[str, str], fmt: Any) -> list[dict[str, Any]] | FormatError:
    """One custom JSON record -> events of our contract (one per item of ``records`` when set)."""
    if fmt.records is None:
        one = _event(obj, fmt)
        return one if isinstance(one, FormatError) else [one]
    items = lookup(obj, fmt.records)
    if items is ABSENT:
        return FormatError(FormatErrorReason.MISSING_FIELD, f"records: nothing at {fmt.records}")
    if not isinstance(items, list):
        return FormatError(FormatErrorReason.WRONG_TYPE, f"records: {fmt.records} is a {type(items).__name__}, not a list")
    events: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        e = _event(item, fmt)
        if isinstance(e, FormatError):
            return FormatError(e.reason, f"records[{i}]: {e.detail}")
        events.append(e)
    return events


def _event(obj: Any, fmt: Any) -> dict[str, Any] | FormatError:
    """One mapped event."""
    if fmt.model is not None:
        found = lookup(obj, fmt.model)
        if found is ABSENT and fmt.model_name is None:
            return FormatError(FormatErrorReason.MISSING_FIELD, f"model: nothing at {fmt.model}")
        model = first_text(None if found is ABSENT else found, fmt.model_name)
        if model is None:
            return FormatError(FormatErrorReason.WRONG_TYPE, f"model: {fmt.model} is not text")
    else:
        model = fmt.model_name
    e: dict[str, Any] = {}
    if fmt.event_id is not None and (v := lookup(obj, fmt.event_id)) is not ABSENT:
        e["event_id"] = v
    e["model"] = model
    version = lookup(obj, fmt.model_version) if fmt.model_version is not None else ABSENT
    if version is not ABSENT or fmt.version is not None:
        e["model_version"] = fmt.version if version is ABSENT else version
    for key in ("ts", "features", "prediction", "label", "latency_ms"):
        path = getattr(fmt, key)
        if path is not None and (v := lookup(obj, path)) is not ABSENT:
            e[key] = v
    feats = e.get("features")
    if isinstance(feats, list):
        names = fmt.feature_names
        if names is None or len(names) != len(feats):
            want = "no feature_names" if names is None else f"{len(names)} feature_names"
            return FormatError(FormatErrorReason.WRONG_TYPE, f"features: {fmt.features} is a list of {len(feats)} values and there are {want}")
        e["features"] = dict(zip(names, feats))
    if not any(k in e for k in ("features", "prediction", "label")):
        return FormatError(FormatErrorReason.NO_PAYLOAD, "none of the mapped features, prediction or label is present")
    return e
