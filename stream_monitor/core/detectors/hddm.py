"""``hddm_a``: River's HDDM_A (Frias-Blanco et al. 2015) on a 0/1 error stream.

HDDM_A compares the mean error rate since a cut point with the mean before it, with a Hoeffding
bound at confidence ``drift_confidence``; configured here to see rises only. ``hddm_w`` is its
weighted variant (HDDM_W: exponentially weighted means, ``lambda_val``), ``eddm`` River's EDDM
(Baena-Garcia et al. 2006: the distance between errors shrinks when errors become more frequent).
Both are off by default (see README, "Performance and cost"). See
:mod:`stream_monitor.core.detectors.error_stream` for the units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from stream_monitor.core import kernels
from stream_monitor.core.detectors.error_stream import ErrorStreamDetector
from stream_monitor.core.detectors.river_adapter import hddm_a_logs, hddm_a_numbers, river_eddm, river_hddm_a, river_hddm_w, set_hddm_a_numbers

if TYPE_CHECKING:
    from stream_monitor.core.reference import Reference
    from stream_monitor.core.settings import EddmParams, HddmAParams, HddmWParams


class HddmADetector(ErrorStreamDetector):
    """River ``HDDMA`` on the errors of a channel (its update compiled: :func:`stream_monitor.core.kernels.hddm_a_python`)."""

    name = "hddm_a"

    def __init__(self, params: HddmAParams, reference: Reference) -> None:
        super().__init__(params, reference, river_hddm_a(params))
        self._kernel = kernels.hddm_a()  # None: numba missing or switched off (the kernel's Python source runs)
        self._trips = np.empty(256, dtype=np.int64)

    def _feed(self, errors: np.ndarray) -> list[int]:
        """River's ``HDDMA.update`` over the errors in the kernel, its state read and written back; River's own for the rest."""
        d = self.detector
        read = hddm_a_numbers(d)
        logs = hddm_a_logs(d) if read is not None else None
        if read is None or logs is None:  # a two-sided or unusual detector: River's update
            return self._feed_river(errors, 0)
        numbers, drift, warning = read
        args = (*logs, drift, warning)
        trips, done, numbers, (drift, warning) = self._run(self._kernel, kernels.hddm_a_python, errors, numbers, *args)
        set_hddm_a_numbers(d, numbers, bool(drift), bool(warning))
        return trips + self._feed_river(errors[done:], done) if done < errors.size else trips


def build_hddm_a(params: HddmAParams, reference: Reference) -> HddmADetector:
    """Registry factory of ``hddm_a``."""
    return HddmADetector(params, reference)


class HddmWDetector(ErrorStreamDetector):
    """River ``HDDMW`` on the errors of a channel."""

    name = "hddm_w"

    def __init__(self, params: HddmWParams, reference: Reference) -> None:
        super().__init__(params, reference, river_hddm_w(params))


class EddmDetector(ErrorStreamDetector):
    """River ``EDDM`` on the errors of a channel."""

    name = "eddm"

    def __init__(self, params: EddmParams, reference: Reference) -> None:
        super().__init__(params, reference, river_eddm(params))
