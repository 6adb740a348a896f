"""Detectors, and the registry that says which exist and how each is built.

``REGISTRY`` has one entry per detector name: its parameter model, its factory (params and the
channel's reference in, detector out), its family (``window``: compares the window with the
reference per evaluation step; ``point``: a change-point detector fed value by value; ``quality``:
a rate of missing / invalid / unseen observations, alerting as ``data_quality``), the channel
types it applies to and whether it still runs on a high-cardinality categorical channel.

The parameter models and the channel types each name applies to are part of the configuration
schema, so they live with the settings (:data:`stream_monitor.core.settings.DETECTOR_PARAMS`),
which validate a config without importing any detector; this registry adds the factory and
family to each of those names and checks at import that both name the same detectors. Adding a
detector is one module with the detector (and its factory), its params model with one line in
``DETECTOR_PARAMS``, and one line here.

>>> REGISTRY["ks"].family, REGISTRY["ks"].channel_types
('window', ('numeric',))
>>> sorted(n for n, k in REGISTRY.items() if k.family == "quality")
['missing_rate', 'out_of_range_rate', 'unseen_category_rate']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

from stream_monitor.core.detectors.base import (
    FLAG_INVALID,
    FLAG_MISSING,
    FLAG_OK,
    FLAG_OUTSIDE,
    Evaluation,
    PointDetector,
    WindowDetector,
    WindowView,
    severity_of,
)
from stream_monitor.core.detectors.auc import AucDropDetector, SloRocAucDetector, build_auc_drop
from stream_monitor.core.detectors.calibration import EceDetector, build_ece
from stream_monitor.core.detectors.cost import CostIncreaseDetector, SloCostDetector, build_cost_increase
from stream_monitor.core.detectors.ddm import DdmDetector, build_ddm
from stream_monitor.core.detectors.hddm import EddmDetector, HddmADetector, HddmWDetector, build_hddm_a
from stream_monitor.core.detectors.proportion import TwoProportionDetector, build_two_proportion
from stream_monitor.core.detectors.rates import (
    RateDetector,
    build_missing_rate,
    build_out_of_range,
    build_unseen_category,
    missing_rate_detector,
    out_of_range_detector,
    unseen_category_detector,
)
from stream_monitor.core.detectors.river_adapter import (
    AdwinDetector,
    PageHinkleyDetector,
    RiverStateError,
    build_adwin,
    build_page_hinkley,
)
from stream_monitor.core.detectors.slo import (
    SloAccuracyDetector,
    SloErrorRateDetector,
    SloF1Detector,
    SloLogLossDetector,
    SloMaeDetector,
    SloPrecisionDetector,
    SloRecallDetector,
)
from stream_monitor.core.detectors.window import Chi2Detector, JsDetector, KsDetector, PsiDetector, WassersteinDetector
from stream_monitor.core.reference import Reference
from stream_monitor.core.settings import (
    DETECTOR_PARAMS,
    AdwinParams,
    ChannelType,
    Chi2Params,
    DetectorParams,
    JsParams,
    KsParams,
    OutOfRangeParams,
    PageHinkleyParams,
    PsiParams,
    RateParams,
    WassersteinParams,
)

Family = Literal["window", "point", "quality"]
Detector = WindowDetector | PointDetector


@dataclass(frozen=True, slots=True)
class DetectorKind:
    """One registry entry: how detector ``name`` is configured, built and classified."""

    name: str
    params: type[DetectorParams]
    build: Callable[[Any, Reference], Detector]
    family: Family
    channel_types: tuple[ChannelType, ...]
    on_high_cardinality: bool = False  # still built when a categorical channel has too many categories

    @property
    def quality(self) -> bool:
        """Its alerts are ``data_quality`` alerts."""
        return self.family == "quality"


def _kind(name: str, build: Callable[[Any, Reference], Detector], family: Family, on_high_cardinality: bool = False) -> DetectorKind:
    params, channel_types = DETECTOR_PARAMS[name]
    return DetectorKind(name, params, build, family, channel_types, on_high_cardinality)


REGISTRY: dict[str, DetectorKind] = {
    k.name: k
    for k in (
        _kind("adwin", build_adwin, "point"),
        _kind("page_hinkley", build_page_hinkley, "point"),
        _kind("psi", PsiDetector, "window"),
        _kind("js", JsDetector, "window"),
        _kind("ks", KsDetector, "window"),
        _kind("wasserstein", WassersteinDetector, "window"),
        _kind("chi2", Chi2Detector, "window"),
        _kind("missing_rate", build_missing_rate, "quality", on_high_cardinality=True),
        _kind("out_of_range_rate", build_out_of_range, "quality", on_high_cardinality=True),
        _kind("unseen_category_rate", build_unseen_category, "quality"),
        _kind("ddm", build_ddm, "point"),
        _kind("hddm_a", build_hddm_a, "point"),
        _kind("eddm", EddmDetector, "point"),
        _kind("hddm_w", HddmWDetector, "point"),
        _kind("two_proportion", build_two_proportion, "window"),
        _kind("slo_accuracy", SloAccuracyDetector, "window"),
        _kind("slo_error_rate", SloErrorRateDetector, "window"),
        _kind("slo_mae", SloMaeDetector, "window"),
        _kind("slo_recall", SloRecallDetector, "window"),
        _kind("slo_precision", SloPrecisionDetector, "window"),
        _kind("slo_f1", SloF1Detector, "window"),
        _kind("slo_roc_auc", SloRocAucDetector, "window"),
        _kind("auc_drop", build_auc_drop, "window"),
        _kind("slo_log_loss", SloLogLossDetector, "window"),
        _kind("ece", build_ece, "window"),
        _kind("cost_increase", build_cost_increase, "window"),
        _kind("slo_cost", SloCostDetector, "window"),
    )
}
"""Every detector by name."""

if REGISTRY.keys() != DETECTOR_PARAMS.keys():  # pragma: no cover - a programming error, caught by any test
    raise ImportError(f"detector registry and settings disagree: {sorted(REGISTRY.keys() ^ DETECTOR_PARAMS.keys())}")


def is_quality(name: str) -> bool:
    """Whether detector ``name`` raises ``data_quality`` alerts.

    >>> is_quality("missing_rate"), is_quality("psi")
    (True, False)
    """
    kind = REGISTRY.get(name)
    return kind is not None and kind.quality


__all__ = [
    "FLAG_INVALID",
    "FLAG_MISSING",
    "FLAG_OK",
    "FLAG_OUTSIDE",
    "REGISTRY",
    "AdwinDetector",
    "AdwinParams",
    "Chi2Detector",
    "AucDropDetector",
    "Chi2Params",
    "CostIncreaseDetector",
    "DdmDetector",
    "EceDetector",
    "EddmDetector",
    "HddmWDetector",
    "HddmADetector",
    "SloAccuracyDetector",
    "SloErrorRateDetector",
    "SloMaeDetector",
    "TwoProportionDetector",
    "Detector",
    "DetectorKind",
    "Evaluation",
    "JsDetector",
    "JsParams",
    "KsDetector",
    "KsParams",
    "OutOfRangeParams",
    "PageHinkleyDetector",
    "PageHinkleyParams",
    "PointDetector",
    "PsiDetector",
    "PsiParams",
    "RateDetector",
    "RateParams",
    "RiverStateError",
    "WassersteinDetector",
    "WassersteinParams",
    "WindowDetector",
    "WindowView",
    "is_quality",
    "missing_rate_detector",
    "out_of_range_detector",
    "severity_of",
    "unseen_category_detector",
]
