"""The River adapter: every use of River's private attributes lives in this module.

The change-point detectors wrap River's ``ADWIN`` and ``PageHinkley``. Two things need River's
internals: the fast update loops (the same arithmetic as River's ``update``, without its per-call
overhead) and the detector state, which is read as plain numbers and lists and rebuilt from them
(never pickled). River does not promise these internals, so the range of River versions they were
verified against is pinned here and in ``pyproject.toml``; ``tests/core/test_river_adapter.py``
fails with a clear message when an installed River lacks an attribute or changes behaviour.

ADWIN's window lives in a compiled helper (``ADWIN._helper``) whose only state interface is a
binary snapshot (``__getstate__`` / ``__setstate__``, fixed-width little-endian fields); it is
decoded here into numbers and lists, validated, and encoded back only from validated values, so a
corrupt state can never reach the compiled code.

>>> from stream_monitor.core.settings import PageHinkleyParams
>>> d = PageHinkleyDetector(PageHinkleyParams())
>>> d.update_many([0.0] * 200 + [3.0] * 50)
[211]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from river import drift as river_drift
from river import stats as river_stats

from stream_monitor.core.detectors.base import PointDetector

if TYPE_CHECKING:
    from stream_monitor.core.reference import Reference
    from stream_monitor.core.settings import AdwinParams, PageHinkleyParams

RIVER_VERIFIED = ("0.26.1", "0.27")
"""River versions whose internals this module was verified against: ``[first, second)``."""


class RiverStateError(ValueError):
    """A stored detector state that does not fit the River detector it should rebuild."""


class AdwinDetector(PointDetector):
    """River ``ADWIN`` (adaptive windowing)."""

    name = "adwin"

    def __init__(self, params: AdwinParams) -> None:
        super().__init__(params)
        self.detector = river_drift.ADWIN(delta=params.delta)

    def update_many(self, z: list[float]) -> list[int]:
        """``ADWIN.update`` per value, calling its (compiled) window directly.

        The same steps as River's ``update``: reset first when the previous value tripped, then
        add the value; ``tests/core/test_optimisation_equivalence.py`` checks it against River.
        """
        d = self.detector
        if type(d) is not river_drift.ADWIN:
            return self._update_many_river(z)
        drift = d._drift_detected
        trips: list[int] = []
        i, size = 0, len(z)
        while i < size:
            if drift:
                d._reset()
            update = d._helper.update
            drift = False
            for value in z[i:] if i else z:
                i += 1
                if update(value):
                    drift = True
                    trips.append(i - 1)
                    break
        d._drift_detected = drift
        return trips


class PageHinkleyDetector(PointDetector):
    """River ``PageHinkley`` with ``alpha=1`` (the classic test; River's fading default drifts)."""

    name = "page_hinkley"

    def __init__(self, params: PageHinkleyParams) -> None:
        super().__init__(params)
        self.detector = river_drift.PageHinkley(
            min_instances=params.min_instances, delta=params.delta, threshold=params.ph_threshold, alpha=1.0
        )

    def update_many(self, z: list[float]) -> list[int]:
        """River's ``PageHinkley.update`` (mode "both") inlined over the values, on local variables.

        Every arithmetic step is River's, in River's order (running mean as ``stats.Mean``, then
        the two cumulative sums, their extremes and the two-sided test), so the state and the trip
        indices are identical; the state is written back to the River object at the end.
        ``tests/core/test_optimisation_equivalence.py`` checks it against River's own ``update``.
        """
        d = self.detector
        if type(d) is not river_drift.PageHinkley or d.mode != "both" or type(d._x_mean) is not river_stats.Mean:
            return self._update_many_river(z)
        mean = d._x_mean
        n, mu = mean.n, mean._mean
        s_inc, s_dec = d._sum_increase, d._sum_decrease
        min_inc, max_dec = d._min_increase, d._max_decrease
        alpha, delta, threshold, min_instances = d.alpha, d.delta, d.threshold, d.min_instances
        drift = d._drift_detected
        trips: list[int] = []
        unit = alpha == 1.0  # 1.0 * s == s exactly: skip the multiplications (alpha is 1 here)
        i, size = 0, len(z)
        while i < size:
            if drift:  # River resets at the start of the update after a trip
                n, mu = 0.0, 0.0
                s_inc = s_dec = 0.0
                min_inc, max_dec = float("inf"), -1
                drift = False
            if unit and n + 1.0 >= min_instances:
                # steady state: every value is tested, until the next trip (index from n)
                n0 = n
                for x in z[i:] if i else z:
                    n += 1.0
                    mu += (1.0 / n) * (x - mu)
                    dev = x - mu
                    s_inc = s_inc + dev - delta
                    s_dec = s_dec + dev + delta
                    if s_inc < min_inc:
                        min_inc = s_inc
                    if s_dec > max_dec:
                        max_dec = s_dec
                    if s_inc - min_inc > threshold or max_dec - s_dec > threshold:
                        drift = True
                        break
                i += int(n - n0)
                if drift:
                    trips.append(i - 1)
                continue
            x = z[i]
            n += 1.0
            mu += (1.0 / n) * (x - mu)
            dev = x - mu
            s_inc = alpha * s_inc + dev - delta
            s_dec = alpha * s_dec + dev + delta
            if s_inc < min_inc:
                min_inc = s_inc
            if s_dec > max_dec:
                max_dec = s_dec
            if n >= min_instances:
                drift = s_inc - min_inc > threshold or max_dec - s_dec > threshold
                if drift:
                    trips.append(i)
            i += 1
        mean.n, mean._mean = n, mu
        d._sum_increase, d._sum_decrease = s_inc, s_dec
        d._min_increase, d._max_decrease = min_inc, max_dec
        d._drift_detected = drift
        return trips


def build_adwin(params: AdwinParams, reference: Reference) -> AdwinDetector:
    """Registry factory of ``adwin``."""
    return AdwinDetector(params)


def build_page_hinkley(params: PageHinkleyParams, reference: Reference) -> PageHinkleyDetector:
    """Registry factory of ``page_hinkley``."""
    return PageHinkleyDetector(params)
