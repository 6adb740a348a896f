"""``hddm_a``: River's HDDM_A (Frias-Blanco et al. 2015) on a 0/1 error stream.

HDDM_A compares the mean error rate since a cut point with the mean before it, with a Hoeffding
bound at confidence ``drift_confidence``; configured here to see rises only. See
:mod:`stream_monitor.core.detectors.error_stream` for the units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stream_monitor.core.detectors.error_stream import ErrorStreamDetector
from stream_monitor.core.detectors.river_adapter import river_hddm_a

if TYPE_CHECKING:
    from stream_monitor.core.reference import Reference
    from stream_monitor.core.settings import HddmAParams


class HddmADetector(ErrorStreamDetector):
    """River ``HDDMA`` on the errors of a channel."""

    name = "hddm_a"

    def __init__(self, params: HddmAParams, reference: Reference) -> None:
        super().__init__(params, reference, river_hddm_a(params))


def build_hddm_a(params: HddmAParams, reference: Reference) -> HddmADetector:
    """Registry factory of ``hddm_a``."""
    return HddmADetector(params, reference)
