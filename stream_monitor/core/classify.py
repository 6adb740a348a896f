"""Classification of a channel's raw values: a flag per observation and the usable payload.

Numbers (not booleans) are a numeric channel's values, non-finite ones invalid; strings and
booleans (as ``"true"``/``"false"``) a categorical channel's, cut to a length bound (see
:func:`stream_monitor.core.reference.bounded_category`); ``None`` is missing; anything else is a
value of the wrong type.

>>> flags, payload, wrong, truncated = classify([1, None, "x", float("nan")], "numeric", 100)
>>> flags.tolist(), wrong, truncated
([0, 1, 2, 2], [2], 0)
>>> classify(["a" * 20, None], "categorical", 16)[1]
['aaaaaaaaaaaaaaaa…#42492da0', None]
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from stream_monitor.core.detectors import FLAG_INVALID, FLAG_MISSING
from stream_monitor.core.reference import bounded_category
from stream_monitor.core.settings import ChannelType

_NUMBER_OR_NONE = frozenset({float, int, type(None)})
_TEXT_OR_NONE = frozenset({str, type(None)})


def classify(values: Sequence[Any], channel_type: ChannelType, max_length: int) -> tuple[np.ndarray, list[Any] | np.ndarray, list[int], int]:
    """Flags, payloads (float or str, None when not usable), wrong-type indices, categories cut.

    A column of plain numbers (and None) comes back with the payloads as a float64 array (its
    entries at flagged positions are not used); one of plain strings (and None) as the list it
    is, unless a value is longer than ``max_length``. Anything else is classified value by value.
    """
    types = set(map(type, values))
    if channel_type == "numeric":
        if types <= _NUMBER_OR_NONE:
            try:
                payload = np.array(values, dtype=np.float64)  # None -> NaN; int -> float(int)
            except OverflowError:  # an integer beyond float range: value by value
                return _classify_values(values, True, max_length)
            flags = np.zeros(len(values), dtype=np.uint8)
            unusable = ~np.isfinite(payload)
            if np.count_nonzero(unusable):
                flags[unusable] = FLAG_INVALID
                if type(None) in types:
                    flags[[i for i, v in enumerate(values) if v is None]] = FLAG_MISSING
            return flags, payload, [], 0
    elif types <= _TEXT_OR_NONE:
        flags = np.zeros(len(values), dtype=np.uint8)
        if type(None) in types:
            flags[[i for i, v in enumerate(values) if v is None]] = FLAG_MISSING
        if max(map(len, filter(None, values)), default=0) > max_length:
            truncated = sum(1 for v in values if v is not None and len(v) > max_length)
            return flags, [None if v is None else bounded_category(v, max_length) for v in values], [], truncated
        return flags, values if isinstance(values, list) else list(values), [], 0
    return _classify_values(values, channel_type == "numeric", max_length)


def _classify_values(values: Sequence[Any], numeric: bool, max_length: int) -> tuple[np.ndarray, list[Any], list[int], int]:
    n = len(values)
    flags = np.zeros(n, dtype=np.uint8)
    payload: list[Any] = [None] * n
    wrong: list[int] = []
    truncated = 0
    isfinite = math.isfinite
    for i, v in enumerate(values):
        if v is None:
            flags[i] = FLAG_MISSING
            continue
        t = type(v)
        if numeric:
            if t is float or t is int:
                try:
                    finite = isfinite(v)
                except OverflowError:  # an integer beyond float range counts as non-finite
                    finite = False
                if finite:
                    payload[i] = float(v)
                else:
                    flags[i] = FLAG_INVALID
            else:
                flags[i] = FLAG_INVALID
                wrong.append(i)
        elif t is str:
            if len(v) > max_length:
                truncated += 1
                v = bounded_category(v, max_length)
            payload[i] = v
        elif t is bool:
            payload[i] = "true" if v else "false"
        else:
            flags[i] = FLAG_INVALID
            wrong.append(i)
    return flags, payload, wrong, truncated
