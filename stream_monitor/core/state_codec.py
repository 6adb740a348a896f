"""The encoding every state item shares (``core/state.py`` describes the items): MessagePack maps with a format
version and a kind, no extension types, and typed, checked access to their fields.

>>> _unpack(_pack({"format": FORMAT_VERSION, "kind": "k", "x": 1}), "k")["x"]
1
>>> _unpack(b"\\x80", "model")
Traceback (most recent call last):
...
stream_monitor.core.state_codec.StateFormatError: model item: format None is not 3 or 4
"""

from __future__ import annotations

from typing import Any, Callable

import msgpack
import numpy as np

FORMAT_VERSION = 4
"""Format of the items this module writes; items of a format not in :data:`READABLE_FORMATS` are rejected.

3: lifecycles keep their latest figures and whether they paged on their own; channels keep their page (``series``);
items ``order`` and ``waiting`` (event-time order across input partitions); later optional fields need no new format.
4: a channel's reference and window chunks are items of their own (``core/state_window.py``); other items as in 3.
5: labels items only (``core/state_labels.py``, ``LABELS_FORMAT``): columns of model indexes and float predictions,
and marks of the predictions taken out of full segments; every other item is of format 4."""
READABLE_FORMATS = (3, FORMAT_VERSION)


class StateFormatError(ValueError):
    """A state item that is not a well-formed item of this format: its content is not used."""


def _pack(obj: dict[str, Any]) -> bytes:  # category values and names may hold lone surrogates (valid JSON escapes)
    return msgpack.packb(obj, use_bin_type=True, unicode_errors="surrogatepass")


def _no_ext(code: int, data: bytes) -> Any:
    raise StateFormatError(f"extension type {code} in a state item")


def _unpack(blob: bytes, kind: str, formats: tuple[int, ...] = READABLE_FORMATS) -> dict[str, Any]:
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise StateFormatError(f"{kind} item: not bytes")
    try:
        obj = msgpack.unpackb(blob, raw=False, strict_map_key=True, ext_hook=_no_ext, timestamp=0, unicode_errors="surrogatepass")
    except StateFormatError:
        raise
    except Exception as exc:  # the decoder's own errors: truncated, extra data, bad UTF-8, too deep
        raise StateFormatError(f"{kind} item does not decode: {type(exc).__name__}") from None
    fmt = obj.get("format") if isinstance(obj, dict) else None
    if fmt not in formats or type(fmt) is not int:
        raise StateFormatError(f"{kind} item: format {fmt!r} is not {' or '.join(map(str, formats))}")
    if obj.get("kind") != kind:
        raise StateFormatError(f"{kind} item: kind is {obj.get('kind')!r}")
    return obj


def _guarded(what: str, build: Callable[[], Any]) -> Any:  # build(), any error but StateFormatError reported as one
    try:
        return build()
    except StateFormatError:
        raise
    except Exception as exc:
        raise StateFormatError(f"{what}: {type(exc).__name__}: {exc}"[:300]) from None


class _Fields:
    """Typed, checked access to one decoded map; every failure is a StateFormatError naming the field."""

    def __init__(self, obj: Any, where: str) -> None:
        if not isinstance(obj, dict):
            raise StateFormatError(f"{where}: not a map")
        self.obj, self.where = obj, where

    def fail(self, key: str, problem: str) -> StateFormatError:
        """The error for field ``key``."""
        return StateFormatError(f"{self.where}.{key}: {problem}")

    def get(self, key: str, *types: type) -> Any:
        """Field ``key``, which must exist with exactly one of ``types``."""
        if key not in self.obj:
            raise self.fail(key, "missing")
        value = self.obj[key]
        if type(value) not in types:
            raise self.fail(key, f"{type(value).__name__} is not {'/'.join(t.__name__ for t in types)}")
        return value

    def count(self, key: str, high: int | None = None) -> int:
        """A non-negative integer field, at most ``high``."""
        value = self.get(key, int)
        if value < 0 or (high is not None and value > high):
            raise self.fail(key, f"{value} out of range")
        return value

    def rate(self, key: str) -> float:
        """A float field in [0, 1]."""
        value = self.get(key, float)
        if not 0.0 <= value <= 1.0:
            raise self.fail(key, f"{value} is not a rate")
        return value

    def strings(self, key: str) -> list[str]:
        """A list of strings."""
        value = self.get(key, list)
        if not all(type(v) is str for v in value):
            raise self.fail(key, "not a list of strings")
        return value

    def array(self, key: str, dtype: str, size: int | None = None) -> np.ndarray:
        """A byte-string field as a (writable) numpy array of ``dtype``, of ``size`` elements if given."""
        raw = self.get(key, bytes)
        itemsize = np.dtype(dtype).itemsize
        if len(raw) % itemsize or (size is not None and len(raw) != size * itemsize):
            raise self.fail(key, f"{len(raw)} bytes is not {size if size is not None else 'n'} x {dtype}")
        return np.frombuffer(raw, dtype=dtype).copy()


def _floats(arr: np.ndarray) -> bytes:
    return np.ascontiguousarray(arr, dtype="<f8").tobytes()
