"""Open Inference Protocol (V2) requests and responses, and KServe V1 ``instances``/``predictions``.

A request's named input tensors become features, one per tensor name (a 2-D tensor of K columns
gives K features: ``feature_names`` when configured, else ``<tensor>_<j>``). A response's outputs
become the prediction: one column gives the value, several an object of named outputs. Tensors
with a batch dimension give one event per row; the event id is the payload's ``id`` for a single
row and ``<id>:<row>`` for several, on requests and responses alike, so the two meet by event id.

>>> from stream_monitor.core.formats import OipFormat
>>> response = {"model_name": "credit", "model_version": "v1", "id": "r1",
...             "outputs": [{"name": "predict", "shape": [2, 1], "datatype": "INT64", "data": [0, 1]}]}
>>> decode(response, {}, OipFormat())
[{'event_id': 'r1:0', 'model': 'credit', 'model_version': 'v1', 'prediction': 0}, {'event_id': 'r1:1', 'model': 'credit', 'model_version': 'v1', 'prediction': 1}]
>>> decode({"instances": [[1.0, "a"]], "id": 9}, {}, OipFormat(model="m", feature_names=("x", "c")))
[{'event_id': '9', 'model': 'm', 'features': {'x': 1.0, 'c': 'a'}}]
"""

from __future__ import annotations

import math
from typing import Any

from stream_monitor.core.formats.common import FormatError, FormatErrorReason, first_text, is_scalar, row_ids

_BAD = FormatErrorReason.BAD_TENSOR
_MAX_ELEMENTS = 1_000_000

Columns = list[tuple[str, list[Any]]]  # (column name, one value per row)


def decode(
    obj: dict[str, Any],
    headers: dict[str, str],
    fmt: Any,
    *,
    event_id: str | None = None,
    model: str | None = None,
    ts: Any = None,
    key: str | None = None,
) -> list[dict[str, Any]] | FormatError:
    """An OIP or KServe V1 payload -> events; ``event_id``/``model``/``ts`` from an envelope win.

    ``key`` (the Kafka record key) is the request id when the body has none.
    """
    features = _features(obj, fmt)
    if isinstance(features, FormatError):
        return features
    predictions = _predictions(obj, fmt)
    if isinstance(predictions, FormatError):
        return predictions
    if features is None and predictions is None:
        return FormatError(FormatErrorReason.NO_PAYLOAD, "neither inputs/instances (features) nor outputs/predictions (prediction)")
    if features is not None and predictions is not None and len(features) != len(predictions):
        return FormatError(FormatErrorReason.BATCH_MISMATCH, f"{len(features)} input rows but {len(predictions)} output rows")
    model_name = model or first_text(obj.get("model_name"), *(headers.get(h.lower()) for h in fmt.model_headers), fmt.model)
    if model_name is None:
        return FormatError(FormatErrorReason.MISSING_MODEL, "no model_name in the body, no model header, no `model` configured")
    version = first_text(obj.get("model_version"), *(headers.get(h.lower()) for h in fmt.version_headers), fmt.model_version)
    rows = len(features) if features is not None else len(predictions)  # type: ignore[arg-type]
    ids = row_ids(event_id or first_text(obj.get("id"), key), rows)
    events: list[dict[str, Any]] = []
    for i in range(rows):
        e: dict[str, Any] = {}
        if ids[i] is not None:
            e["event_id"] = ids[i]
        e["model"] = model_name
        if version is not None:
            e["model_version"] = version
        if ts is not None:
            e["ts"] = ts
        if features is not None:
            e["features"] = features[i]
        if predictions is not None:
            e["prediction"] = predictions[i]
        events.append(e)
    return events


# ------------------------------------------------------------------ features
def _features(obj: dict[str, Any], fmt: Any) -> list[dict[str, Any]] | None | FormatError:
    """One features object per row, from OIP ``inputs`` or V1 ``instances`` (None when neither)."""
    if "inputs" in obj:
        tensors = _tensors(obj["inputs"], "inputs")
        if isinstance(tensors, FormatError):
            return tensors
        names = fmt.feature_names
        if names is not None:
            target = fmt.feature_input
            if target is None:
                if len(tensors) != 1:
                    return FormatError(_BAD, f"feature_names given but {len(tensors)} inputs: set feature_input")
                target = tensors[0][0]
            if target not in {t[0] for t in tensors}:
                return FormatError(_BAD, f"no input tensor named {target!r}")
        cols = _columns(tensors, names, fmt.feature_input or (tensors[0][0] if names is not None else None))
        return cols if isinstance(cols, FormatError) else _rows_of(cols)
    if "instances" in obj:
        return _instances(obj["instances"], fmt.feature_names)
    return None


def _instances(instances: Any, names: tuple[str, ...] | None) -> list[dict[str, Any]] | FormatError:
    """KServe V1 rows: lists (named by ``names`` or ``x<j>``), objects, or single values."""
    if not isinstance(instances, list):
        return FormatError(_BAD, f"instances must be a list, got {type(instances).__name__}")
    rows: list[dict[str, Any]] = []
    for i, inst in enumerate(instances):
        if isinstance(inst, dict):
            rows.append(inst)
            continue
        values = inst if isinstance(inst, list) else [inst]
        if names is not None and len(names) != len(values):
            return FormatError(_BAD, f"instances[{i}] has {len(values)} values for {len(names)} feature_names")
        rows.append({(names[j] if names else f"x{j}"): v for j, v in enumerate(values)})
    return rows


# --------------------------------------------------------------- predictions
def _predictions(obj: dict[str, Any], fmt: Any) -> list[Any] | None | FormatError:
    """One prediction per row (a value, or an object for several columns), or None when absent."""
    if "outputs" in obj:
        tensors = _tensors(obj["outputs"], "outputs")
        if isinstance(tensors, FormatError):
            return tensors
        if fmt.outputs is not None:
            tensors = [t for t in tensors if t[0] in fmt.outputs]
            if not tensors:
                return FormatError(_BAD, f"none of the configured outputs {list(fmt.outputs)} in the response")
        cols = _columns(tensors, None, None)
        if isinstance(cols, FormatError):
            return cols
        if len(cols) == 1:
            return list(cols[0][1])
        return _rows_of(cols)
    if "predictions" in obj:
        preds = obj["predictions"]
        if not isinstance(preds, list):
            return FormatError(_BAD, f"predictions must be a list, got {type(preds).__name__}")
        return [({str(j): v for j, v in enumerate(p)} if isinstance(p, list) else p) for p in preds]
    return None


# ------------------------------------------------------------------- tensors
def _tensors(value: Any, where: str) -> list[tuple[str, list[int], list[Any]]] | FormatError:
    """Validated tensors as (name, shape, flat typed values)."""
    if not isinstance(value, list) or not value:
        return FormatError(_BAD, f"{where} must be a non-empty list of tensors")
    out: list[tuple[str, list[int], list[Any]]] = []
    for k, t in enumerate(value):
        if not isinstance(t, dict):
            return FormatError(_BAD, f"{where}[{k}] is not a tensor object")
        name, shape, dtype = t.get("name"), t.get("shape"), t.get("datatype")
        if not isinstance(name, str) or not name:
            return FormatError(_BAD, f"{where}[{k}] has no name")
        if not isinstance(shape, list) or not all(type(d) is int and 0 <= d <= _MAX_ELEMENTS for d in shape):
            return FormatError(_BAD, f"{name}: shape must be a list of non-negative integers")
        if not isinstance(dtype, str):
            return FormatError(_BAD, f"{name}: datatype missing")
        size = math.prod(shape)
        if size > _MAX_ELEMENTS:
            return FormatError(_BAD, f"{name}: {size} elements, limit is {_MAX_ELEMENTS}")
        flat = _flatten(t.get("data"))
        if flat is None:
            return FormatError(_BAD, f"{name}: data must be a list")
        if len(flat) != size:
            return FormatError(_BAD, f"{name}: shape {shape} needs {size} values, data has {len(flat)}")
        typed = _typed(flat, dtype.upper())
        if isinstance(typed, str):
            return FormatError(_BAD, f"{name}: {typed}")
        out.append((name, shape, typed))
    return out


def _flatten(data: Any) -> list[Any] | None:
    """Row-major flat values of a (possibly nested) list; None when ``data`` is not a list."""
    if not isinstance(data, list):
        return None
    if not any(isinstance(x, list) for x in data):
        return data
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for x in stack[-1]:
            if isinstance(x, list):
                stack.append(iter(x))
                break
            flat.append(x)
            if len(flat) > _MAX_ELEMENTS:
                return flat
        else:
            stack.pop()
    return flat


def _typed(values: list[Any], dtype: str) -> list[Any] | str:
    """Values checked (and converted) for an OIP datatype; a text saying what is wrong otherwise."""
    if dtype == "BOOL":
        if all(v is None or type(v) is bool or (type(v) is int and v in (0, 1)) for v in values):
            return [v if v is None else bool(v) for v in values]
        return "BOOL data must be true/false (or 0/1)"
    if dtype.startswith(("INT", "UINT")):
        if all(v is None or (type(v) is int) for v in values):
            return values
        return f"{dtype} data must be integers"
    if dtype in ("FP16", "FP32", "FP64", "BF16"):
        if all(v is None or type(v) in (int, float) for v in values):
            return [v if v is None else float(v) for v in values]
        return f"{dtype} data must be numbers"
    if dtype == "BYTES":
        if all(is_scalar(v) for v in values):
            return values
        return "BYTES data must be strings"
    return f"unknown datatype {dtype!r}"


def _columns(tensors: list[tuple[str, list[int], list[Any]]], names: tuple[str, ...] | None, named: str | None) -> Columns | FormatError:
    """Tensors -> columns of equal length (the batch), naming the columns of 2-D tensors."""
    cols: Columns = []
    batch: int | None = None
    for name, shape, flat in tensors:
        rows = shape[0] if shape else 1
        width = math.prod(shape[1:]) if len(shape) > 1 else 1
        if len(shape) > 2 and any(d != 1 for d in shape[2:]):
            return FormatError(_BAD, f"{name}: shape {shape} has more than two dimensions")
        if batch is None:
            batch = rows
        elif rows != batch:
            return FormatError(FormatErrorReason.BATCH_MISMATCH, f"{name}: batch of {rows}, another tensor has {batch}")
        if name == named and names is not None:
            if len(names) != width:
                return FormatError(_BAD, f"{name}: {width} columns for {len(names)} feature_names")
            col_names = list(names)
        elif width == 1:
            col_names = [name]
        else:
            col_names = [f"{name}_{j}" for j in range(width)]
        for j, col in enumerate(col_names):
            cols.append((col, flat[j::width] if width > 1 else flat))
    return cols


def _rows_of(cols: Columns) -> list[dict[str, Any]]:
    """Columns -> one object per row."""
    if not cols:
        return []
    n = len(cols[0][1])
    return [{name: values[i] for name, values in cols} for i in range(n)]
