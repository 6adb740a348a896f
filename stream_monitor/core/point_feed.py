"""A channel's point detectors fed a whole slice's standardised values at once, their trips read back per step chunk.

The channel evaluates at every ``window.step`` observations, and between evaluations it keeps, per
detector, the sum and count of the standardised values since its first trip (``pending``: the
confirmation of a trip) and, for all of them, since the last evaluation (``level``). Evaluations
read only those sums and the lifecycles, never the detectors' state, so the detectors can take the
slice's values in one call each (what a call costs — building the list, River's call, the kernel's
— is paid once per slice instead of once per step chunk) and the sums be kept chunk by chunk as
before: the same values summed over the same ranges (``z[a:b].sum()`` of the slice's array is the
chunk array's sum: same values, same length, same pairwise order), the same first trip of a chunk.

>>> import numpy as np
>>> from stream_monitor.core.reference import NumericReference
>>> from stream_monitor.core.detectors import PageHinkleyDetector
>>> from stream_monitor.core.settings import PageHinkleyParams
>>> ref = NumericReference.from_values([-1.0, 1.0], 0, 0, "warmup")  # mean 0, sd 1
>>> feed = SliceFeed([(0, PageHinkleyDetector(PageHinkleyParams(ph_threshold=3.0, min_instances=5)))], np.array([1.0] * 20 + [9.0] * 20), ref, False)
>>> feed.trips  # Page-Hinkley tripped at the first 9.0
[[20]]
>>> level, pending = [0.0, 0], {}
>>> feed.chunk(0, 20, level, pending); level, pending
([20.0, 20], {})
>>> feed.chunk(20, 40, level, pending); level, pending
([200.0, 40], {'page_hinkley': [180.0, 20]})
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    from stream_monitor.core.detectors import PointDetector
    from stream_monitor.core.reference import NumericReference

__all__ = ["Z_MAX", "SliceFeed"]

# what point detectors see is clipped to this many reference sds: beyond ~1e154 a square overflows and
# River's ADWIN, its totals inf or NaN, would never trip again on that channel; every gate is a few sds, so
# nothing a detector decides on is changed
Z_MAX = 1e12


class SliceFeed:
    """The slice's present values standardised (clipped to :data:`Z_MAX`) and every point detector's trips over them.

    ``inside``: the caller knows the extreme z are within ``Z_MAX`` (no check needed).
    """

    __slots__ = ("detectors", "trips", "z")

    def __init__(self, detectors: Sequence[tuple[int, PointDetector]], vals: np.ndarray, ref: NumericReference, inside: bool) -> None:
        z = (vals - ref.mean) / ref.scale
        if not inside and z.size and not (z.min() >= -Z_MAX and z.max() <= Z_MAX):  # one absurd value must not blind ADWIN for good
            np.clip(z, -Z_MAX, Z_MAX, out=z)
        self.z = z
        self.detectors = detectors
        # a compiled kernel reads the float64 array as it is; Python loops get its list (made once)
        zl: list[float] | None = None
        self.trips: list[Any] = []
        for _ordinal, pdet in detectors:
            if pdet.takes_array:
                self.trips.append(pdet.update_many(z))
            else:
                if zl is None:
                    zl = z.tolist()
                self.trips.append(pdet.update_many(zl))

    def chunk(self, a: int, b: int, level: list[float], pending: dict[str, list[float]]) -> None:
        """Values ``a`` to ``b - 1`` of the slice were observed: add them to ``level`` and to each detector's ``pending``
        sums, or open its pending sums at its first trip among them (a trip opens a confirmation)."""
        z = self.z[a:b]
        total = float(z.sum())
        level[0] += total
        level[1] += z.size
        for (_ordinal, pdet), trips in zip(self.detectors, self.trips, strict=True):
            open_ = pending.get(pdet.name)
            if open_ is None:
                k = bisect_left(trips, a) if trips else 0
                if k < len(trips) and trips[k] < b:
                    first = trips[k] - a
                    pending[pdet.name] = [float(z[first:].sum()), z.size - first]
            else:
                open_[0] += total
                open_[1] += z.size
