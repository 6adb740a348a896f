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

from stream_monitor.core.detectors.error_stream import ErrorStreamDetector
from stream_monitor.core.detectors.river_adapter import river_eddm, river_hddm_a, river_hddm_w

if TYPE_CHECKING:
    from stream_monitor.core.reference import Reference
    from stream_monitor.core.settings import EddmParams, HddmAParams, HddmWParams


class HddmADetector(ErrorStreamDetector):
    """River ``HDDMA`` on the errors of a channel."""

    name = "hddm_a"

    def __init__(self, params: HddmAParams, reference: Reference) -> None:
        super().__init__(params, reference, river_hddm_a(params))


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
