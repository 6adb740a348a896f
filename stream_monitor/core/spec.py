"""What to monitor: models, their channels, owners and per-channel overrides.

Settings resolve in layers — global ``defaults``, then the model's ``detection``, then the
channel's ``detection`` — and every layer is validated when the spec is built, so a bad
threshold fails at start-up with the path of the field.

>>> spec = MonitorSpec.model_validate({"models": {"m": {"labels": {"team": "t"},
...     "channels": {"amount": {"type": "numeric", "range": [0, 100]}}}}})
>>> spec.channel_settings("m", "amount", "numeric").params("out_of_range_rate").range
(0.0, 100.0)
"""

from __future__ import annotations

import datetime
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from stream_monitor.core.formats import InputFormat
from stream_monitor.core.settings import ChannelType, DetectionSettings, describe_error, merge_settings

PREDICTION = "__prediction__"
LABEL = "__label__"
LATENCY = "__latency__"
ERROR = "__error__"
ERROR_RATE = "__error_rate__"  # classification: 1 when the predicted class is wrong, else 0
ABS_ERROR = "__abs_error__"  # regression: |prediction - label|
RECALL = "__recall__"  # classification, rows whose label is the positive class: 1 when predicted positive
PRECISION = "__precision__"  # classification, rows predicted positive: 1 when the label is positive
F1 = "__f1__"  # classification, rows that are a true positive, false positive or false negative: 1 for a true positive
LOG_LOSS = "__log_loss__"  # binary with a score: -log p(label), p clipped to [1e-6, 1]
CALIBRATION = "__calibration__"  # binary with a score: score - label (its window gives the calibration error)
ROC_AUC = "__roc_auc__"  # binary with a score: score + 2 x label (its window gives the ROC AUC)
SIGNED_ERROR = "__signed_error__"  # regression: prediction - label (its mean is the bias)
COST = "__cost__"  # the cost of each labelled prediction, by the model's cost model
SCORED_CHANNELS = (RECALL, PRECISION, F1, LOG_LOSS, CALIBRATION, ROC_AUC, SIGNED_ERROR, COST)
"""Performance channels added after ``__error_rate__`` / ``__abs_error__``, in channel order."""
ESTIMATED_ERROR_RATE = "__estimated_error_rate__"  # binary with a score, no label needed: the expected error of the decision
ESTIMATED_COST = "__estimated_cost__"  # the expected cost of the decision, by the model's cost model
# the calibrated probability that a decision of the positive class (binary) or, as ``.<class>``, of that class
# (multiclass) is right, fed on the rows so decided: its window mean is the expected precision
ESTIMATED_PRECISION = "__estimated_precision__"
ESTIMATED_CHANNELS = (ESTIMATED_ERROR_RATE, ESTIMATED_COST, ESTIMATED_PRECISION)
"""Label-free estimates, fed on every prediction with a probability (``estimate.enabled``)."""
PER_CLASS_CHANNELS = (RECALL, PRECISION, F1, ESTIMATED_PRECISION)
"""Channels a multiclass model also gets per class, one class against the rest: ``__recall__.<class>`` etc."""
RESERVED_CHANNELS = (PREDICTION, LABEL, LATENCY, ERROR, ERROR_RATE, ABS_ERROR, *SCORED_CHANNELS, *ESTIMATED_CHANNELS)
PERFORMANCE_CHANNELS = (LATENCY, LABEL, ERROR, ERROR_RATE, ABS_ERROR, *SCORED_CHANNELS, *ESTIMATED_CHANNELS)  # the label's distribution is the target's: performance, not data drift
"""Reserved channels whose alerts are ``performance`` alerts."""

Task = Literal["binary", "multiclass", "regression"]


def per_class_channel(metric: str, klass: str) -> str:
    """The name of a multiclass model's per-class channel: ``__recall__.<class>`` (the class as text).

    >>> per_class_channel(RECALL, "fraud")
    '__recall__.fraud'
    """
    return f"{metric}.{klass}"


def split_per_class(channel: str) -> tuple[str, str] | None:
    """(metric channel, class) of a per-class channel name, ``None`` for any other name.

    >>> split_per_class("__recall__.fraud"), split_per_class("__recall__"), split_per_class("__prediction__.x")
    (('__recall__', 'fraud'), None, None)
    """
    metric, dot, klass = channel.partition(".")
    if dot and klass and metric in PER_CLASS_CHANNELS:
        return metric, klass
    return None


def base_channel(channel: str) -> str:
    """The channel whose settings, words and kind a channel takes: a per-class channel's metric channel, else itself.

    >>> base_channel("__f1__.cat"), base_channel("amount")
    ('__f1__', 'amount')
    """
    split = split_per_class(channel)
    return split[0] if split is not None else channel


def is_performance_channel(channel: str) -> bool:
    """Whether a channel's alerts are ``performance`` alerts (:data:`PERFORMANCE_CHANNELS`, per-class ones included)."""
    return base_channel(channel) in PERFORMANCE_CHANNELS


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelSpec(_Spec):
    """One configured channel (a feature name, or a reserved channel like ``__prediction__``)."""

    enabled: bool = True
    type: ChannelType | None = None  # inferred from the first value when not set
    range: tuple[float, float] | None = None  # shortcut for detector_params.out_of_range_rate.range
    detectors: tuple[str, ...] | None = None  # replaces the default detector list for its type
    detection: dict[str, Any] = Field(default_factory=dict)  # partial DetectionSettings
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _range_ordered(self) -> ChannelSpec:
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"range must be [low, high] with low < high, got {list(self.range)}")
        return self


class AccuracySlo(_Spec):
    """Accuracy of the window must stay at or above ``min``."""

    min: float = Field(ge=0, le=1)


class ErrorRateSlo(_Spec):
    """Error rate of the window: at most ``max``, and/or at most ``(1 + max_relative_increase)`` x the reference's."""

    max: float | None = Field(default=None, ge=0, le=1)
    max_relative_increase: float | None = Field(default=None, ge=0)


class MaeSlo(_Spec):
    """Mean absolute error of the window must stay at or below ``max`` (the target's units)."""

    max: float = Field(ge=0)


class MinSlo(_Spec):
    """A share or score in [0, 1] (recall, precision, F1, ROC AUC) of the window must stay at or above ``min``."""

    min: float = Field(ge=0, le=1)


class MaxSlo(_Spec):
    """A mean (log loss) of the window must stay at or below ``max``."""

    max: float = Field(ge=0)


def class_text(x: Any) -> str:
    """A class as the text a cost matrix names it by: whole numbers (and booleans) as integers.

    >>> class_text(1), class_text(1.0), class_text(True), class_text("cat"), class_text(2.5)
    ('1', '1', '1', 'cat', '2.5')
    """
    if isinstance(x, bool):
        return str(int(x))
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


class CostSlo(_Spec):
    """The window's cost per 1,000 labelled predictions must stay at or below ``max_per_1k`` (the cost model's currency)."""

    max_per_1k: float = Field(ge=0)


class CostSpec(_Spec):
    """What a wrong prediction costs, in ``currency``: the ``__cost__`` channel's value per labelled prediction.

    One family per model: a classifier's ``false_positive`` / ``false_negative`` (binary, about
    the positive class), or ``matrix`` (``{label: {predicted class: cost}}``, classes as text,
    missing cells cost nothing); a regressor's ``per_unit`` of absolute error, or
    ``over_per_unit`` / ``under_per_unit`` (prediction above / below the label).

    >>> CostSpec(false_positive=5, false_negative=120).family
    'binary'
    >>> CostSpec(matrix={1: {0: 3}}).matrix
    {'1': {'0': 3.0}}
    """

    currency: str = Field(default="EUR", min_length=1, max_length=16)
    false_positive: float | None = Field(default=None, ge=0)
    false_negative: float | None = Field(default=None, ge=0)
    matrix: dict[str, dict[str, float]] | None = None
    per_unit: float | None = Field(default=None, ge=0)
    over_per_unit: float | None = Field(default=None, ge=0)
    under_per_unit: float | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _matrix_keys_as_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("matrix"), dict):
            data = {**data, "matrix": {
                class_text(k): ({class_text(p): v for p, v in row.items()} if isinstance(row, dict) else row)
                for k, row in data["matrix"].items()
            }}  # fmt: skip
        return data

    @model_validator(mode="after")
    def _one_family(self) -> CostSpec:
        families = [name for name, on in (
            ("binary", self.false_positive is not None or self.false_negative is not None),
            ("matrix", self.matrix is not None),
            ("per_unit", self.per_unit is not None),
            ("asymmetric", self.over_per_unit is not None or self.under_per_unit is not None),
        ) if on]  # fmt: skip
        if len(families) != 1:
            raise ValueError(
                "give exactly one of: false_positive/false_negative, matrix, per_unit, over_per_unit/under_per_unit"
                + (f" (got {', '.join(families)})" if families else "")
            )
        return self

    @property
    def family(self) -> str:
        """Which cost model: ``binary``, ``matrix``, ``per_unit`` or ``asymmetric``."""
        if self.false_positive is not None or self.false_negative is not None:
            return "binary"
        if self.matrix is not None:
            return "matrix"
        return "per_unit" if self.per_unit is not None else "asymmetric"


class SloSpec(_Spec):
    """A model's service levels, in the metric's own units, checked on the performance channels' window."""

    accuracy: AccuracySlo | None = None
    error_rate: ErrorRateSlo | None = None
    mae: MaeSlo | None = None
    recall: MinSlo | None = None
    precision: MinSlo | None = None
    f1: MinSlo | None = None
    roc_auc: MinSlo | None = None
    log_loss: MaxSlo | None = None
    cost: CostSlo | None = None


class EstimateSpec(_Spec):
    """Label-free estimates of a classifier with probability outputs (off unless ``enabled``).

    A binary model's probability of the positive class, or a multiclass model's per-class
    probabilities (``class_probabilities``: the decided class's, calibrated top-label).

    Every prediction feeds ``__estimated_error_rate__`` (its expected error, from the calibrated
    probability) and, with a ``cost`` model, ``__estimated_cost__``; a prediction decided positive
    (binary), or decided class ``c`` of the tracked classes (multiclass), feeds
    ``__estimated_precision__`` (``__estimated_precision__.<c>``) with the calibrated probability
    that it is right. The model's ``accuracy`` / ``error_rate``, ``precision`` and ``cost`` SLOs
    guard them like the realised metrics. The calibration is
    histogram binning over ``bins`` score bins: the model's baseline profile's when it carries one
    (built with a label column), else learned from the first ``calibration_size`` labelled
    predictions; until then the scores are taken as calibrated.
    """

    enabled: bool = False
    bins: int = Field(default=10, ge=2, le=100)
    calibration_size: int = Field(default=2000, ge=10)


class ModelSpec(_Spec):
    """One model: owners (labels), runbook (annotations), baseline, channel overrides, and what its outputs mean.

    ``task`` says how a label is compared with the prediction (inferred from the first prediction
    and label when unset, see :func:`stream_monitor.core.model_monitor.infer_task`);
    ``score_output`` and ``class_output`` name the probability/score and the class of a dict
    prediction (inferred when unambiguous, see :func:`stream_monitor.core.model_monitor.resolve_outputs`);
    ``positive_class`` is the class recall and precision are about (1 / ``True`` when unset; a
    multiclass model gets them for this class, one against the rest, only when it is set, and
    per class, ``__recall__.<class>``, for its first ``limits.classes_per_model`` classes);
    ``class_probabilities`` is the prefix of a multiclass prediction's per-class probability
    outputs (``proba_`` for ``{"y_pred": "a", "proba_a": 0.7, "proba_b": 0.3}``: label-free
    estimates); ``cost`` prices each labelled prediction (``__cost__``); ``slo`` adds service-level checks to
    the performance channels; ``performance_pages`` makes their pages one per model (``model``, the
    default: :mod:`stream_monitor.core.model_pages`) or one per channel. ``baselines`` names a baseline profile per ``model_version``: when
    the model switches to such a version, the channels that profile covers take it as reference
    (see :mod:`stream_monitor.core.versions`). ``judging_groups`` (> 1) splits the feature channels
    of a hot model over that many judges (:mod:`stream_monitor.core.groups`).
    """

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    discover: bool = True  # monitor features no config names, with default detectors
    baseline: str | None = None  # path to a baseline profile (``stream-monitor baseline``)
    # model_version -> path to that version's baseline profile: a switch to the version takes it as reference
    baselines: dict[str, str] = Field(default_factory=dict)
    detection: dict[str, Any] = Field(default_factory=dict)  # partial DetectionSettings
    channels: dict[str, ChannelSpec] = Field(default_factory=dict)
    task: Task | None = None
    score_output: str | None = None
    class_output: str | None = None
    positive_class: bool | int | str | None = None  # recall / precision's positive class: 1 (or True) when unset
    # a multiclass model's per-class probabilities: the prediction outputs named <prefix><class>
    class_probabilities: str | None = Field(default=None, min_length=1)
    cost: CostSpec | None = None  # what wrong predictions cost: the __cost__ channel
    slo: SloSpec = SloSpec()
    estimate: EstimateSpec = EstimateSpec()  # label-free estimates from the probabilities
    # "model": the performance metrics' pages are one page per model (core/model_pages.py); "channel": one each
    performance_pages: Literal["model", "channel"] = "model"
    # split the feature channels over this many judges, each on its own by-model partition (core/groups.py)
    judging_groups: int = Field(default=1, ge=1, le=64)

    @field_validator("baselines", mode="before")
    @classmethod
    def _version_keys(cls, value: Any) -> Any:
        # YAML reads an unquoted 2026-11-01 as a date and 3 as an integer: both are the version's text
        if isinstance(value, dict):
            return {k.isoformat() if isinstance(k, datetime.date) else str(k) if type(k) is int else k: v for k, v in value.items()}
        return value

    @field_validator("baselines")
    @classmethod
    def _named_baselines(cls, value: dict[str, str]) -> dict[str, str]:
        for version, path in value.items():
            if not version or not path:
                raise ValueError("every entry needs a model_version and a profile path (neither empty)")
        return value

    def output_notes(self) -> list[str]:
        """What a reader of the config should know about this model's outputs (for ``check-config``).

        >>> ModelSpec().output_notes()
        ['score_output and class_output are not set: they are inferred from the first dict prediction (a warning is logged when ambiguous)']
        >>> ModelSpec(task="regression", score_output="value").output_notes()
        []
        """
        if self.score_output or self.class_output:
            return []
        return ["score_output and class_output are not set: they are inferred from the first dict prediction (a warning is logged when ambiguous)"]

    def estimate_notes(self) -> list[str]:
        """What makes this model's ``estimate`` settings do less than a reader might think (for ``check-config``).

        >>> ModelSpec(estimate=EstimateSpec(enabled=True), task="regression").estimate_notes()
        ['estimate.enabled has no effect: label-free estimates are made for classifiers only']
        >>> ModelSpec(estimate=EstimateSpec(enabled=True), task="multiclass", slo=SloSpec(accuracy=AccuracySlo(min=0.9))).estimate_notes()
        ['estimate.enabled has no effect on a multiclass model without class_probabilities (the prefix of its per-class probability outputs)']
        >>> ModelSpec(estimate=EstimateSpec(enabled=True)).estimate_notes()
        ['estimate.enabled: no accuracy, error_rate, precision or cost SLO, so the estimate channels are recorded but raise nothing']
        >>> ModelSpec(estimate=EstimateSpec(enabled=True), slo=SloSpec(accuracy=AccuracySlo(min=0.9))).estimate_notes()
        []
        """
        if not self.estimate.enabled:
            return []
        if self.task == "regression":
            return ["estimate.enabled has no effect: label-free estimates are made for classifiers only"]
        if self.task == "multiclass" and self.class_probabilities is None:
            return ["estimate.enabled has no effect on a multiclass model without class_probabilities (the prefix of its per-class probability outputs)"]
        if self.slo.accuracy is None and self.slo.error_rate is None and self.slo.precision is None and self.slo.cost is None:
            return ["estimate.enabled: no accuracy, error_rate, precision or cost SLO, so the estimate channels are recorded but raise nothing"]
        return []


_RATE_DETECTORS = ("ddm", "hddm_a", "adwin", "two_proportion")
PER_CLASS_GATE: dict[str, dict[str, float]] = {
    "ddm": {"threshold": 0.05, "critical": 0.15},
    "hddm_a": {"threshold": 0.05, "critical": 0.15},
    "two_proportion": {"threshold": 0.05, "critical": 0.15, "max_p_value": 1e-4},
}
"""A per-class channel's rate detectors need a fall of 5 points (critical from 15), its two-proportion test p <= 1e-4:
a model has three such channels per class, each on a share of the labels, so they are gated harder than the model's own."""
_DIRECTED = ("ddm", "hddm_a", "two_proportion")  # the rate detectors that watch one direction


def _doubled(base: DetectionSettings) -> dict[str, Any]:
    """A window and a reference twice the model's (a rate needs more observations than a mean to show a shift)."""
    return {
        "window": {"size": min(2 * base.window.size, 100_000), "step": base.window.step},
        "reference": {"size": min(2 * base.reference.size, 100_000)},
    }


def _with_slo(detectors: tuple[str, ...], params: dict[str, Any], name: str, slo: _Spec | None) -> tuple[str, ...]:
    if slo is None:
        return detectors
    params[name] = slo.model_dump()
    return (*detectors, name)


def _estimate_checks(channel: str, slo: SloSpec, cost: CostSpec | None, params: dict[str, Any]) -> tuple[str, ...]:
    """An estimate channel's detectors (their parameters into ``params``): its realised metric's SLO checks, the error
    rate and precision read as the window's mean (``expected``)."""
    if channel == ESTIMATED_COST:
        if slo.cost is None:
            return ()
        params["slo_cost"] = {**slo.cost.model_dump(), "currency": cost.currency if cost is not None else "EUR"}
        return ("slo_cost",)
    levels = (("slo_accuracy", slo.accuracy), ("slo_error_rate", slo.error_rate)) if channel == ESTIMATED_ERROR_RATE else (("slo_precision", slo.precision),)
    for name, level in levels:
        if level is not None:
            params[name] = {**level.model_dump(), "expected": True}
    return tuple(name for name, level in levels if level is not None)


def performance_layer(channel: str, slo: SloSpec, base: DetectionSettings, cost: CostSpec | None = None) -> dict[str, Any] | None:
    """The settings a performance channel gets on top of its model's (``base``), before its own channel config.

    ``__error_rate__`` (0/1 errors) is watched by detectors that suit rates, on a window and a
    reference twice the model's (a rate needs more observations than a mean to show a shift of a
    few points); ``__recall__``, ``__precision__`` and ``__f1__`` (0/1 successes) by the same
    detectors watching falls, and their per-class channels (``__recall__.<class>``) too, gated by
    :data:`PER_CLASS_GATE`; ``__abs_error__`` by the numeric drift detectors without the quality rates;
    ``__signed_error__`` and ``__log_loss__`` by the change-point detectors, ``__calibration__``
    by the expected calibration error (``ece``), ``__roc_auc__`` by the fall of the window's ROC
    AUC (``auc_drop``; a window statistic only: its values are no stream a change-point detector can
    read), ``__cost__`` by a test of its mean's rise
    (``cost_increase``, in the cost model's currency); all get the model's SLO checks.
    ``__estimated_error_rate__``, ``__estimated_cost__`` and ``__estimated_precision__`` (and its
    per-class channels; expected errors, costs and hits, no labels) get only the SLO checks of the
    realised metric, the error rate and precision read as the window's mean (``expected``).
    ``None`` for any other channel.

    >>> layer = performance_layer("__error_rate__", SloSpec(), DetectionSettings())
    >>> layer["numeric_detectors"], layer["window"], layer["reference"]["size"]
    (('ddm', 'hddm_a', 'adwin', 'two_proportion'), {'size': 2000, 'step': 250}, 2000)
    >>> [performance_layer(c, SloSpec(), DetectionSettings())["detector_params"]["ddm"] for c in ("__recall__", "__recall__.a")]
    [{'direction': 'down'}, {'direction': 'down', 'threshold': 0.05, 'critical': 0.15}]
    >>> performance_layer("amount", SloSpec(), DetectionSettings()) is None
    True
    """
    params: dict[str, Any] = {}
    layer: dict[str, Any] = {}
    per_class, channel = split_per_class(channel) is not None, base_channel(channel)  # a per-class channel: its metric's, gated
    if channel == ERROR_RATE:
        detectors: tuple[str, ...] = _RATE_DETECTORS
        params["adwin"] = {"threshold": 0.05}  # reference standard deviations: about 2 points at a 13 % error rate
        detectors = _with_slo(detectors, params, "slo_accuracy", slo.accuracy)
        detectors = _with_slo(detectors, params, "slo_error_rate", slo.error_rate)
        layer = _doubled(base)
    elif channel in (RECALL, PRECISION, F1):
        params["adwin"] = {"threshold": 0.05}
        params.update((name, {"direction": "down", **(PER_CLASS_GATE.get(name, {}) if per_class else {})}) for name in _DIRECTED)
        which = {RECALL: "recall", PRECISION: "precision", F1: "f1"}[channel]
        detectors = _with_slo(_RATE_DETECTORS, params, f"slo_{which}", getattr(slo, which))
        layer = _doubled(base)
    elif channel == ABS_ERROR:
        detectors = _with_slo(("adwin", "page_hinkley", "psi", "ks"), params, "slo_mae", slo.mae)
    elif channel == SIGNED_ERROR:
        detectors = ("adwin", "page_hinkley")
    elif channel == CALIBRATION:
        detectors = ("ece",)
        layer = _doubled(base)
    elif channel == ROC_AUC:
        detectors = _with_slo(("auc_drop",), params, "slo_roc_auc", slo.roc_auc)
        layer = _doubled(base)
    elif channel == COST:
        currency = cost.currency if cost is not None else "EUR"
        params["cost_increase"] = {"currency": currency}
        detectors = ("cost_increase",)
        if slo.cost is not None:
            detectors += ("slo_cost",)
            params["slo_cost"] = {**slo.cost.model_dump(), "currency": currency}
        layer = _doubled(base)
    elif channel in ESTIMATED_CHANNELS:
        detectors = _estimate_checks(channel, slo, cost, params)
        layer = _doubled(base)
    elif channel == LOG_LOSS:
        detectors = _with_slo(("adwin", "page_hinkley"), params, "slo_log_loss", slo.log_loss)
        layer = _doubled(base)
    else:
        return None
    return {**layer, "numeric_detectors": detectors, "detector_params": params}


class LimitsSpec(_Spec):
    """Caps on what one partition's monitor keeps and writes, so no input can make it grow without bound.

    Reaching a cap is never silent: it raises a ``data_quality`` alert on the reserved channel
    ``__limits__`` (resolved after ``quiet_seconds`` of event time without a further hit), counts in
    ``BatchResult.limits_exceeded`` and makes the records whose values were ignored dead letters
    with reason ``limit_exceeded``. Configured models and channels are always monitored; they count
    towards the caps, and only names the config does not list are refused.

    >>> LimitsSpec(channels_per_model=50).channels_per_model
    50
    """

    models: int = Field(default=1_000, ge=1)  # per state partition (by-model topic partition, or input partition)
    # features, prediction outputs and reserved channels; every channel is fed on every record of its
    # model (an absent feature is a missing value), so the per-record cost grows with this cap
    channels_per_model: int = Field(default=128, ge=1)
    prediction_outputs: int = Field(default=32, ge=1)  # named outputs of an object prediction, per model
    # classes of a multiclass model with per-class channels (__recall__.<class> ...), in the order first
    # seen; further classes are counted (limits_exceeded["classes_per_model"]), not tracked
    classes_per_model: int = Field(default=20, ge=0)
    label_join_bytes: int = Field(default=256 * 1024 * 1024, ge=0)  # predictions awaiting their label (estimated)
    replay_partitions: int = Field(default=1_024, ge=1)  # input partitions one replay may hold
    dead_letter_original_bytes: int = Field(default=65_536, ge=1_024)  # beyond: size, sha256 and a prefix
    quiet_seconds: float = Field(default=60.0, gt=0)


class RetrainingSpec(_Spec):
    """``retraining``: when a model's alerts ask for retraining (``core/retraining.py``); off by default.

    A firing page of a kind in ``on_kinds`` or on a channel in ``on_channels`` triggers at once; a
    data or prediction drift page still firing ``drift_persists_seconds`` (event time) after it
    started triggers then (never when null). At most one event per model per ``cooldown_seconds``;
    the suggested data window is the ``window_seconds`` up to the trigger.
    """

    enabled: bool = False
    topic: str = Field(default="stream-monitor-retraining", min_length=1, max_length=249)
    on_kinds: tuple[Literal["data_drift", "prediction_drift", "data_quality", "performance"], ...] = ("performance",)
    on_channels: tuple[str, ...] = ()
    drift_persists_seconds: float | None = Field(default=3600.0, gt=0)
    cooldown_seconds: float = Field(default=86_400.0, ge=0)
    window_seconds: float = Field(default=7 * 86_400.0, gt=0)

    @model_validator(mode="after")
    def _channels_named(self) -> RetrainingSpec:
        if any(not c for c in self.on_channels):
            raise ValueError("on_channels: a channel name is empty")
        return self


class MonitorSpec(_Spec):
    """Everything the pure core needs to know to monitor a stream."""

    instance: str = "stream-monitor"
    version: str = "0"
    defaults: DetectionSettings = DetectionSettings()
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    models: dict[str, ModelSpec] = Field(default_factory=dict)
    discover_models: bool = True  # monitor models no config names
    max_record_bytes: int = Field(default=1_048_576, ge=1024)
    label_join_window_seconds: float = Field(default=86_400.0, gt=0)
    label_join_max_pending: int = Field(default=100_000, ge=0)
    # a label that comes before its prediction waits until predictions this much later were judged
    label_wait_seconds: float = Field(default=300.0, ge=0)
    # event-time order across input partitions: how late (behind the latest event time of its own
    # input partition) a record may come and still be put in order; later ones are ``late`` dead letters
    max_lateness_seconds: float = Field(default=20.0, ge=0, le=86_400)
    order_max_rows: int = Field(default=500_000, ge=1_000)  # rows waiting for their turn, per state partition
    input_formats: dict[str, InputFormat] = Field(default_factory=dict)  # topic -> format (default native)
    limits: LimitsSpec = LimitsSpec()
    retraining: RetrainingSpec = RetrainingSpec()

    @model_validator(mode="after")
    def _validate_layers(self) -> MonitorSpec:
        # Resolve every configured layer now so errors surface at start-up, naming the field.
        for model_name, model in self.models.items():
            try:
                base = merge_settings(self.defaults, model.detection)
            except ValidationError as exc:
                raise ValueError(describe_error(exc, f"models.{model_name}.detection")) from None
            for channel_name, channel in model.channels.items():
                layer = performance_layer(channel_name, model.slo, base, model.cost)
                for ctype in (channel.type,) if channel.type else ("numeric", "categorical"):
                    try:
                        _channel_settings(merge_settings(base, layer) if layer else base, channel, ctype)
                    except ValidationError as exc:
                        raise ValueError(describe_error(exc, f"models.{model_name}.channels.{channel_name}")) from None
        return self

    @cached_property
    def _model_settings(self) -> dict[str, DetectionSettings]:
        return {name: merge_settings(self.defaults, m.detection) for name, m in self.models.items()}

    def model_settings(self, model: str) -> DetectionSettings:
        """The defaults merged with the model's ``detection`` layer."""
        return self._model_settings.get(model, self.defaults)

    def channel_spec(self, model: str, channel: str) -> ChannelSpec | None:
        """The configured channel, or None when the config does not name it."""
        m = self.models.get(model)
        return m.channels.get(channel) if m else None

    def channel_settings(self, model: str, channel: str, channel_type: ChannelType) -> DetectionSettings:
        """The settings of one channel: defaults, then the model's layer, then the channel's."""
        base = self.model_settings(model)
        if base_channel(channel) in _LAYERED:
            m = self.models.get(model)
            base = merge_settings(base, performance_layer(channel, m.slo if m else SloSpec(), base, m.cost if m else None))
        spec = self.channel_spec(model, channel)
        return _channel_settings(base, spec, channel_type) if spec else base


_LAYERED = frozenset((ERROR_RATE, ABS_ERROR, *SCORED_CHANNELS, *ESTIMATED_CHANNELS))


def _channel_settings(base: DetectionSettings, spec: ChannelSpec, channel_type: ChannelType) -> DetectionSettings:
    override: dict[str, Any] = dict(spec.detection)
    if spec.detectors is not None:
        override["numeric_detectors" if channel_type == "numeric" else "categorical_detectors"] = spec.detectors
    if spec.range is not None:
        params = dict(override.get("detector_params") or {})
        oor = dict(params.get("out_of_range_rate") or {})
        oor["range"] = spec.range
        params["out_of_range_rate"] = oor
        override["detector_params"] = params
    return merge_settings(base, override)
