"""Detection settings: which detectors watch a channel, their thresholds, windows and lifecycle.

These are the validated, immutable pydantic models the core consumes. The application config
(:mod:`stream_monitor.config`) embeds them; nothing here knows about Kafka.

Defaults are chosen for few false alarms (see README, "Why these defaults"): on standard-normal
noise the numeric detectors below raised no alert in 20 channels x 100k values (seeded
simulation in ``tests/core/test_false_alarms.py``).

>>> s = DetectionSettings()
>>> sorted(s.detectors_for("numeric"))
['adwin', 'ks', 'missing_rate', 'out_of_range_rate', 'page_hinkley', 'psi']
>>> s.params("psi").threshold
0.2
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, model_validator

ChannelType = Literal["numeric", "categorical"]
Severity = Literal["info", "warning", "critical"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LifecycleSettings(_Strict):
    """How evaluations become alerts: minimum evidence, resolution and cooldown (event time)."""

    min_consecutive: Annotated[int, Field(ge=1, le=1000)] = 2
    """Consecutive breaching evaluations before an alert fires (the minimum-evidence rule)."""
    resolve_after: Annotated[int, Field(ge=1, le=100000)] = 4
    """Consecutive clear evaluations before a firing alert resolves."""
    resolve_after_seconds: Annotated[float, Field(ge=0)] = 0.0
    """...and the statistic must have been clear for at least this much event time."""
    cooldown_seconds: Annotated[float, Field(ge=0)] = 300.0
    """After a resolve, the same fingerprint cannot fire again for this much event time."""
    escalate: bool = True
    """Re-emit a firing alert (same alert_id) when its severity rises while firing."""


class DetectorParams(_Strict):
    """Settings every detector shares. ``threshold`` breaches give ``severity``; ``critical`` escalates."""

    enabled: bool = True
    threshold: float | None = None
    critical: float | None = None
    severity: Severity = "warning"
    lifecycle: LifecycleSettings | None = None


class AdwinParams(DetectorParams):
    """River ADWIN on the reference-standardised value stream (change-point detector)."""

    delta: Annotated[float, Field(gt=0, lt=1)] = 1e-4
    threshold: float | None = 0.25  # minimum |mean shift| in reference standard deviations
    critical: float | None = 1.0
    lifecycle: LifecycleSettings | None = LifecycleSettings(min_consecutive=1, resolve_after=8)


class PageHinkleyParams(DetectorParams):
    """River PageHinkley (alpha=1, classic) on the standardised stream."""

    ph_threshold: Annotated[float, Field(gt=0)] = 30.0
    delta: Annotated[float, Field(ge=0)] = 0.25
    min_instances: Annotated[int, Field(ge=1)] = 100
    threshold: float | None = 0.25  # minimum |mean shift| in reference standard deviations
    critical: float | None = 1.0
    lifecycle: LifecycleSettings | None = LifecycleSettings(min_consecutive=1, resolve_after=8)


class PsiParams(DetectorParams):
    """Population Stability Index over ``bins`` reference-quantile bins (or the categories)."""

    bins: Annotated[int, Field(ge=2, le=100)] = 10
    threshold: float | None = 0.2
    critical: float | None = 0.5


class KsParams(DetectorParams):
    """Two-sample Kolmogorov-Smirnov: D above ``threshold`` and p at most ``max_p_value``."""

    threshold: float | None = 0.12  # KS distance D
    critical: float | None = 0.3
    max_p_value: Annotated[float, Field(gt=0, le=1)] = 1e-4


class WassersteinParams(DetectorParams):
    """Wasserstein-1 distance in reference standard deviations."""

    enabled: bool = True
    threshold: float | None = 0.3  # in reference standard deviations
    critical: float | None = 1.0


class JsParams(DetectorParams):
    """Jensen-Shannon distance (base 2) over the same bins as PSI."""

    bins: Annotated[int, Field(ge=2, le=100)] = 10
    threshold: float | None = 0.15  # Jensen-Shannon distance, base 2, in [0, 1]
    critical: float | None = 0.4


class Chi2Params(DetectorParams):
    """Chi-square homogeneity: p-value at most ``threshold`` and total variation at least ``min_effect``."""

    threshold: float | None = 1e-6  # p-value at or below which the window breaches
    critical: float | None = None
    min_effect: Annotated[float, Field(ge=0)] = 0.05  # total variation distance also required


class RateParams(DetectorParams):
    """Rate detectors: breach when window rate minus reference rate exceeds ``threshold``."""

    threshold: float | None = 0.05
    critical: float | None = 0.25


class OutOfRangeParams(RateParams):
    """Share of invalid or out-of-range values; the range is explicit or the reference's, widened."""

    range: tuple[float, float] | None = None  # explicit valid range; default: reference min/max
    margin: Annotated[float, Field(ge=0)] = 0.1  # widen the reference range by this fraction of it


Direction = Literal["up", "down"]
"""Which way of a 0/1 stream's rate is the change to watch: ``up`` (an error rate), ``down`` (a recall)."""


class BinaryRateParams(DetectorParams):
    """A change-point detector on a 0/1 error stream (River DDM, HDDM_A).

    ``threshold`` is the minimum rise of the error rate, in error-rate points (0.02 = 2 points),
    that confirms a trip; the statistic of its alerts is the rise since the trip, in the same units.
    With ``direction: down`` the stream is a share of successes (recall, precision) and the
    detector watches its falls instead (the statistic is then the fall, in points).
    """

    direction: Direction = "up"
    threshold: float | None = 0.02
    critical: float | None = 0.1
    lifecycle: LifecycleSettings | None = LifecycleSettings(min_consecutive=1, resolve_after=8)


class DdmParams(BinaryRateParams):
    """River DDM (drift detection method) on the 0/1 error stream."""

    warm_start: Annotated[int, Field(ge=1)] = 2000  # errors seen before it tests: early minima are noise
    drift_level: Annotated[float, Field(gt=0)] = 3.5  # DDM's drift threshold, in standard deviations (River: 3)


class HddmAParams(BinaryRateParams):
    """River HDDM_A (Hoeffding bound on moving averages) on the 0/1 error stream, rises only."""

    drift_confidence: Annotated[float, Field(gt=0, lt=1)] = 1e-4


class EddmParams(BinaryRateParams):
    """River EDDM (early drift detection: distances between errors) on the 0/1 error stream; off by default."""

    warm_start: Annotated[int, Field(ge=1)] = 2000  # errors seen before it tests
    beta: Annotated[float, Field(gt=0, lt=1)] = 0.9  # drift when (mean + 2 sd) of the error distance falls below beta x its maximum (River: beta)


class HddmWParams(BinaryRateParams):
    """River HDDM_W (Hoeffding bound on weighted moving averages) on the 0/1 error stream, rises only; off by default."""

    drift_confidence: Annotated[float, Field(gt=0, lt=1)] = 1e-4
    lambda_val: Annotated[float, Field(gt=0, lt=1)] = 0.05  # weight of the newest value


class TwoProportionParams(DetectorParams):
    """One-sided two-proportion z-test: window error rate above the reference's.

    Breach when the rise (window rate minus reference rate, in error-rate points) is at least
    ``threshold`` and the p-value at most ``max_p_value``.
    """

    direction: Direction = "up"
    threshold: float | None = 0.02
    critical: float | None = 0.1
    max_p_value: Annotated[float, Field(gt=0, le=1)] = 1e-3


class SloAccuracyParams(DetectorParams):
    """Service level: the window's accuracy (1 - error rate) must stay at or above ``min``."""

    min: Annotated[float | None, Field(ge=0, le=1)] = None
    expected: bool = False  # values are expected errors in [0, 1] (estimates): the error rate is their mean


class SloErrorRateParams(DetectorParams):
    """Service level on the window's error rate: at most ``max`` and/or at most
    ``(1 + max_relative_increase)`` times the reference error rate."""

    max: Annotated[float | None, Field(ge=0, le=1)] = None
    max_relative_increase: Annotated[float | None, Field(ge=0)] = None
    expected: bool = False  # values are expected errors in [0, 1] (estimates): the error rate is their mean


class SloMaeParams(DetectorParams):
    """Service level: the window's mean absolute error must stay at or below ``max`` (the target's units)."""

    max: Annotated[float | None, Field(ge=0)] = None


class SloShareParams(DetectorParams):
    """Service level on a metric in [0, 1] (recall, precision, F1, ROC AUC): the window's at or above ``min``."""

    min: Annotated[float | None, Field(ge=0, le=1)] = None
    expected: bool = False  # values are expected hits in [0, 1] (estimated precision): the share is their mean


class SloMeanParams(DetectorParams):
    """Service level: the window's mean (log loss) must stay at or below ``max``."""

    max: Annotated[float | None, Field(ge=0)] = None


class EceParams(DetectorParams):
    """Expected calibration error over ``bins`` score bins: breach when the window's exceeds the reference's by ``threshold``."""

    bins: Annotated[int, Field(ge=2, le=100)] = 10
    threshold: float | None = 0.05  # excess over the reference's ECE
    critical: float | None = 0.15


class AucDropParams(DetectorParams):
    """The window's ROC AUC below the reference's by at least ``threshold`` (AUC points) with a
    one-sided p-value of at most ``max_p_value``; ``critical`` is a fall in AUC points too."""

    threshold: float | None = 0.05
    critical: float | None = 0.15
    max_p_value: Annotated[float, Field(gt=0, le=1)] = 1e-3


class CostIncreaseParams(DetectorParams):
    """The window's mean cost above the reference's: p-value at most ``max_p_value`` and a rise of at
    least ``threshold`` x the reference's mean cost (and ``min_increase_per_1k`` money per 1,000
    predictions when set); ``critical`` is a relative rise too."""

    currency: str = "EUR"
    threshold: float | None = 0.1
    critical: float | None = 0.5
    max_p_value: Annotated[float, Field(gt=0, le=1)] = 1e-3
    min_increase_per_1k: Annotated[float | None, Field(ge=0)] = None


class SloCostParams(DetectorParams):
    """Service level: the window's cost per 1,000 predictions must stay at or below ``max_per_1k``."""

    currency: str = "EUR"
    max_per_1k: Annotated[float | None, Field(ge=0)] = None


class DetectorSchema(NamedTuple):
    """A detector name's parameter model and the channel types it applies to."""

    params: type[DetectorParams]
    channel_types: tuple[ChannelType, ...]


_NUM: tuple[ChannelType, ...] = ("numeric",)
_CAT: tuple[ChannelType, ...] = ("categorical",)
_BOTH: tuple[ChannelType, ...] = ("numeric", "categorical")

DETECTOR_PARAMS: dict[str, DetectorSchema] = {
    "adwin": DetectorSchema(AdwinParams, _NUM),
    "page_hinkley": DetectorSchema(PageHinkleyParams, _NUM),
    "psi": DetectorSchema(PsiParams, _BOTH),
    "ks": DetectorSchema(KsParams, _NUM),
    "wasserstein": DetectorSchema(WassersteinParams, _NUM),
    "js": DetectorSchema(JsParams, _BOTH),
    "chi2": DetectorSchema(Chi2Params, _CAT),
    "missing_rate": DetectorSchema(RateParams, _BOTH),
    "out_of_range_rate": DetectorSchema(OutOfRangeParams, _BOTH),
    "unseen_category_rate": DetectorSchema(RateParams, _CAT),
    "ddm": DetectorSchema(DdmParams, _NUM),
    "hddm_a": DetectorSchema(HddmAParams, _NUM),
    "eddm": DetectorSchema(EddmParams, _NUM),
    "hddm_w": DetectorSchema(HddmWParams, _NUM),
    "two_proportion": DetectorSchema(TwoProportionParams, _NUM),
    "slo_accuracy": DetectorSchema(SloAccuracyParams, _NUM),
    "slo_error_rate": DetectorSchema(SloErrorRateParams, _NUM),
    "slo_mae": DetectorSchema(SloMaeParams, _NUM),
    "slo_recall": DetectorSchema(SloShareParams, _NUM),
    "slo_precision": DetectorSchema(SloShareParams, _NUM),
    "slo_f1": DetectorSchema(SloShareParams, _NUM),
    "slo_roc_auc": DetectorSchema(SloShareParams, _NUM),
    "auc_drop": DetectorSchema(AucDropParams, _NUM),
    "slo_log_loss": DetectorSchema(SloMeanParams, _NUM),
    "ece": DetectorSchema(EceParams, _NUM),
    "cost_increase": DetectorSchema(CostIncreaseParams, _NUM),
    "slo_cost": DetectorSchema(SloCostParams, _NUM),
}
"""Every detector name the config accepts: its parameter model and the channel types it applies to
(the detector registry, :data:`stream_monitor.core.detectors.REGISTRY`, adds how each is built)."""


def applicable_detectors(channel_type: ChannelType) -> tuple[str, ...]:
    """The detector names that apply to ``channel_type``, in ``DETECTOR_PARAMS`` order.

    >>> applicable_detectors("categorical")
    ('psi', 'js', 'chi2', 'missing_rate', 'out_of_range_rate', 'unseen_category_rate')
    """
    return tuple(name for name, schema in DETECTOR_PARAMS.items() if channel_type in schema.channel_types)


DEFAULT_NUMERIC = ("adwin", "page_hinkley", "psi", "ks", "missing_rate", "out_of_range_rate")
DEFAULT_CATEGORICAL = ("chi2", "js", "unseen_category_rate", "missing_rate", "out_of_range_rate")


class WindowSettings(_Strict):
    """Count-based sliding window, evaluated every ``step`` observations of the channel."""

    size: Annotated[int, Field(ge=50, le=100_000)] = 1000
    step: Annotated[int, Field(ge=10, le=100_000)] = 250

    @model_validator(mode="after")
    def _step_within_size(self) -> WindowSettings:
        if self.step > self.size:
            raise ValueError(f"step ({self.step}) must not exceed size ({self.size})")
        return self


class ReferenceSettings(_Strict):
    """Where a channel's reference comes from: its first ``size`` observations, or a baseline file."""

    kind: Literal["warmup", "baseline"] = "warmup"
    size: Annotated[int, Field(ge=50, le=100_000)] = 1000
    max_categories: Annotated[int, Field(ge=2, le=10_000)] = 200


class CategorySettings(_Strict):
    """Bounds on what a categorical channel keeps, so its state stays small whatever the input.

    A category longer than ``max_length`` characters is cut to its first ``max_length`` characters
    plus ``"…#"`` and 8 hex digits of the SHA-256 of the whole value (long values stay distinct);
    beyond ``max_distinct`` distinct categories in a reference, further ones count as one
    overflow category (:data:`OVERFLOW_CATEGORY`).
    """

    max_length: Annotated[int, Field(ge=16, le=10_000)] = 100
    max_distinct: Annotated[int, Field(ge=3, le=100_000)] = 1000


class AlertingSettings(_Strict):
    """How a channel's detectors become pages.

    ``group_by: channel`` (the default): one alert series per (model, channel) — it fires when the
    first of its detectors fires, lists every detector that agrees, escalates to the highest of
    their severities and resolves when none still fires. ``group_by: detector``: one series per
    (model, channel, detector), each detector paging on its own.
    """

    group_by: Literal["channel", "detector"] = "channel"


OVERFLOW_CATEGORY = "…other categories"
"""The category that stands for every category beyond ``categories.max_distinct``."""


class DetectionSettings(_Strict):
    """Defaults for all channels; per-model and per-channel settings override pieces of it."""

    window: WindowSettings = WindowSettings()
    reference: ReferenceSettings = ReferenceSettings()
    lifecycle: LifecycleSettings = LifecycleSettings()
    alerting: AlertingSettings = AlertingSettings()
    categories: CategorySettings = CategorySettings()
    numeric_detectors: tuple[str, ...] = DEFAULT_NUMERIC
    categorical_detectors: tuple[str, ...] = DEFAULT_CATEGORICAL
    detector_params: dict[str, SerializeAsAny[DetectorParams]] = Field(default_factory=dict)
    """Overrides of detector parameters by detector name, e.g. ``{"psi": {"threshold": 0.1}}``."""

    @model_validator(mode="before")
    @classmethod
    def _typed_params(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("detector_params"), dict):
            data = dict(data)
            data["detector_params"] = parse_detector_params(data["detector_params"])
        return data

    @model_validator(mode="after")
    def _known_detectors(self) -> DetectionSettings:
        for field_name, ctype in (("numeric_detectors", "numeric"), ("categorical_detectors", "categorical")):
            allowed = applicable_detectors(ctype)  # type: ignore[arg-type]
            for name in getattr(self, field_name):
                if name not in allowed:
                    raise ValueError(f"{field_name}: unknown detector {name!r}; choose from {', '.join(allowed)}")
        if self.categories.max_distinct <= self.reference.max_categories:
            # a reference must be able to hold more categories than the high-cardinality limit
            raise ValueError(
                f"categories.max_distinct: {self.categories.max_distinct} must exceed reference.max_categories "
                f"({self.reference.max_categories})"
            )
        return self

    def detectors_for(self, channel_type: ChannelType) -> tuple[str, ...]:
        """The enabled detectors of a channel of ``channel_type``, in configured order."""
        names = self.numeric_detectors if channel_type == "numeric" else self.categorical_detectors
        return tuple(n for n in names if self.params(n).enabled)

    def params(self, name: str) -> DetectorParams:
        """Detector ``name``'s parameters: the configured override, else its defaults."""
        return self.detector_params.get(name) or DETECTOR_PARAMS[name].params()

    def lifecycle_for(self, name: str) -> LifecycleSettings:
        """The lifecycle of detector ``name``'s alerts: its own, else the channel's."""
        return self.params(name).lifecycle or self.lifecycle


def parse_detector_params(raw: dict[str, Any]) -> dict[str, DetectorParams]:
    """Validate ``{detector name: params}`` into typed parameter models, naming unknown detectors.

    Errors read ``detector_params.<name>.<field>: <problem>`` so callers can prefix the path.
    """
    out: dict[str, DetectorParams] = {}
    for name, value in raw.items():
        if name not in DETECTOR_PARAMS:
            raise ValueError(f"detector_params.{name}: unknown detector {name!r}; choose from {', '.join(DETECTOR_PARAMS)}")
        if isinstance(value, DetectorParams):
            out[name] = value
            continue
        try:
            out[name] = DETECTOR_PARAMS[name].params.model_validate(value or {})
        except ValidationError as exc:
            raise ValueError(describe_error(exc, f"detector_params.{name}")) from None
    return out


def describe_error(exc: ValidationError, prefix: str = "") -> str:
    """One line naming the full path of the first problem: ``a.b.c: message (+N more)``.

    A message that itself starts with ``path: `` (raised by a validator) extends the location.

    >>> try:
    ...     WindowSettings(size=10)
    ... except ValidationError as e:
    ...     print(describe_error(e, "defaults.window"))
    defaults.window.size: Input should be greater than or equal to 50
    """
    errors = exc.errors(include_url=False)
    err = errors[0]
    parts = [prefix] if prefix else []
    parts += [str(p) for p in err["loc"] if not str(p).startswith("function-")]
    msg = str(err["msg"]).removeprefix("Value error, ")
    head, sep, rest = msg.partition(": ")
    if sep and head and " " not in head:
        parts.append(head)
        msg = rest
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    path = ".".join(p for p in parts if p)
    return f"{path}: {msg}{more}" if path else f"{msg}{more}"


def merge_settings(base: DetectionSettings, override: dict[str, Any] | None) -> DetectionSettings:
    """Overlay a partial settings dict on ``base`` (nested models merge field by field)."""
    if not override:
        return base
    data = base.model_dump(exclude_unset=False)
    for key, value in override.items():
        if key == "detector_params":
            merged = dict(data.get("detector_params") or {})
            for det, params in (value or {}).items():
                prev = merged.get(det) or {}
                merged[det] = {**prev, **(params or {})}
            data["detector_params"] = merged
        elif isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return DetectionSettings.model_validate(data)
