"""``ddm``: River's DDM (drift detection method, Gama et al. 2004) on a 0/1 error stream.

DDM follows the running error rate p and its standard deviation s since its last trip and trips
when p + s exceeds the lowest p + s seen by ``drift_level`` standard deviations: it sees rises
of the error rate only. See :mod:`stream_monitor.core.detectors.error_stream` for the units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stream_monitor.core.detectors.error_stream import ErrorStreamDetector
from stream_monitor.core.detectors.river_adapter import river_ddm

if TYPE_CHECKING:
    from stream_monitor.core.reference import Reference
    from stream_monitor.core.settings import DdmParams


class DdmDetector(ErrorStreamDetector):
    """River ``DDM`` on the errors of a channel."""

    name = "ddm"

    def __init__(self, params: DdmParams, reference: Reference) -> None:
        super().__init__(params, reference, river_ddm(params))


def build_ddm(params: DdmParams, reference: Reference) -> DdmDetector:
    """Registry factory of ``ddm``."""
    return DdmDetector(params, reference)
