"""``ddm``: River's DDM (drift detection method, Gama et al. 2004) on a 0/1 error stream.

DDM follows the running error rate p and its standard deviation s since its last trip and trips
when p + s exceeds the lowest p + s seen by ``drift_level`` standard deviations: it sees rises
of the error rate only. See :mod:`stream_monitor.core.detectors.error_stream` for the units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from stream_monitor.core import kernels
from stream_monitor.core.detectors.error_stream import ErrorStreamDetector
from stream_monitor.core.detectors.river_adapter import ddm_numbers, ddm_parameters, river_ddm, set_ddm_numbers

if TYPE_CHECKING:
    from stream_monitor.core.reference import Reference
    from stream_monitor.core.settings import DdmParams


class DdmDetector(ErrorStreamDetector):
    """River ``DDM`` on the errors of a channel (its update compiled: :func:`stream_monitor.core.kernels.ddm_python`)."""

    name = "ddm"

    def __init__(self, params: DdmParams, reference: Reference) -> None:
        super().__init__(params, reference, river_ddm(params))
        self._kernel = kernels.ddm()  # None: numba missing or switched off (the kernel's Python source runs)
        self._trips = np.empty(256, dtype=np.int64)

    def _feed(self, errors: np.ndarray) -> list[int]:
        """River's ``DDM.update`` over the errors in the kernel, its state read and written back; River's own for the rest."""
        d = self.detector
        read = ddm_numbers(d)
        levels = ddm_parameters(d) if read is not None else None
        if read is None or levels is None:  # an unusual state, or a parameter no float holds exactly: River's update
            return self._feed_river(errors, 0)
        numbers, has_min, drift, warning = read
        args = (has_min, *levels, drift, warning)
        trips, done, numbers, (drift, warning, has_min) = self._run(self._kernel, kernels.ddm_python, errors, numbers, *args)
        set_ddm_numbers(d, numbers, bool(has_min), bool(drift), bool(warning))
        return trips + self._feed_river(errors[done:], done) if done < errors.size else trips


def build_ddm(params: DdmParams, reference: Reference) -> DdmDetector:
    """Registry factory of ``ddm``."""
    return DdmDetector(params, reference)
