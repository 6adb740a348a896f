"""What the input formats share: the error value, header access, JSON and tensor helpers.

>>> header_map([("Ce-Id", b"abc"), ("mlserver-model", b"m")])
{'ce-id': 'abc', 'mlserver-model': 'm'}
>>> load_json_object(b"[]")
FormatError(reason='not_an_object', detail='expected a JSON object, got list')
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Sequence

import orjson

Headers = Sequence[tuple[str, bytes | str | None]]


class FormatErrorReason(StrEnum):
    """Machine-readable reasons a record cannot be read in its configured format."""

    UNDECODABLE = "undecodable"  # not UTF-8
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    NO_PAYLOAD = "no_payload"  # nothing that gives features or a prediction
    BAD_TENSOR = "bad_tensor"  # a tensor whose name, shape, datatype or data do not fit together
    BATCH_MISMATCH = "batch_mismatch"  # tensors of one record with different batch sizes
    MISSING_MODEL = "missing_model"  # no model name in headers, body or configuration
    BAD_CLOUDEVENT = "bad_cloudevent"  # an envelope without the required attributes
    UNEXPECTED_TYPE = "unexpected_type"  # a CloudEvent type the configuration does not accept
    MISSING_FIELD = "missing_field"  # a mapped path that leads nowhere where a value is required
    WRONG_TYPE = "wrong_type"  # a mapped value of a type that cannot be used there
    INTERNAL = "internal"  # a bug in a format reader, reported rather than raised


@dataclass(frozen=True, slots=True)
class FormatError:
    """Why a record cannot be read: a machine-readable ``reason`` and a short ``detail``."""

    reason: FormatErrorReason
    detail: str

    def __repr__(self) -> str:
        return f"FormatError(reason={str(self.reason)!r}, detail={self.detail!r})"


def header_map(headers: Headers | None) -> dict[str, str]:
    """Kafka headers as a dict: lower-case names, UTF-8 text values (the last one wins)."""
    out: dict[str, str] = {}
    for name, raw in headers or ():
        if raw is None:
            continue
        out[str(name).lower()] = raw if isinstance(raw, str) else bytes(raw).decode("utf-8", errors="replace")
    return out


def load_json(value: bytes) -> Any | FormatError:
    """Bytes -> any JSON value, or why not."""
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        if isinstance(exc.__cause__, UnicodeDecodeError) or "utf-8" in str(exc).lower():
            return FormatError(FormatErrorReason.UNDECODABLE, str(exc)[:300])
        return FormatError(FormatErrorReason.INVALID_JSON, str(exc)[:300])


def load_json_object(value: bytes) -> dict[str, Any] | FormatError:
    """Bytes -> JSON object, or why not."""
    obj = load_json(value)
    if isinstance(obj, FormatError) or isinstance(obj, dict):
        return obj
    return FormatError(FormatErrorReason.NOT_AN_OBJECT, f"expected a JSON object, got {type(obj).__name__}")


def first_text(*values: Any) -> str | None:
    """The first value that is non-empty text (integers made text), else None.

    >>> first_text(None, "", 7, "x")
    '7'
    """
    for v in values:
        if isinstance(v, str) and v:
            return v
        if type(v) is int:
            return str(v)
    return None


def row_ids(base: str | None, rows: int) -> list[str | None]:
    """Event ids of a batch: the id itself for one row, ``<id>:<row>`` for several.

    >>> row_ids("r", 1), row_ids("r", 2), row_ids(None, 2)
    (['r'], ['r:0', 'r:1'], [None, None])
    """
    if base is None:
        return [None] * rows
    if rows == 1:
        return [base]
    return [f"{base}:{i}" for i in range(rows)]


def is_scalar(value: Any) -> bool:
    """A JSON scalar our events accept as a feature, prediction or label value."""
    return value is None or type(value) in (str, int, float, bool)
