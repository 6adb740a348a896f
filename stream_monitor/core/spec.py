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

from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stream_monitor.core.formats import InputFormat
from stream_monitor.core.settings import ChannelType, DetectionSettings, describe_error, merge_settings

PREDICTION = "__prediction__"
LABEL = "__label__"
LATENCY = "__latency__"
ERROR = "__error__"
RESERVED_CHANNELS = (PREDICTION, LABEL, LATENCY, ERROR)


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


class ModelSpec(_Spec):
    """One model: owners (labels), runbook (annotations), baseline and channel overrides."""

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    discover: bool = True  # monitor features no config names, with default detectors
    baseline: str | None = None  # path to a baseline profile (``stream-monitor baseline``)
    detection: dict[str, Any] = Field(default_factory=dict)  # partial DetectionSettings
    channels: dict[str, ChannelSpec] = Field(default_factory=dict)


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

    models: int = Field(default=1_000, ge=1)  # per partition
    # features, prediction outputs and reserved channels; every channel is fed on every record of its
    # model (an absent feature is a missing value), so the per-record cost grows with this cap
    channels_per_model: int = Field(default=128, ge=1)
    prediction_outputs: int = Field(default=32, ge=1)  # named outputs of an object prediction, per model
    label_join_bytes: int = Field(default=256 * 1024 * 1024, ge=0)  # predictions awaiting their label (estimated)
    replay_partitions: int = Field(default=1_024, ge=1)  # input partitions one replay may hold
    dead_letter_original_bytes: int = Field(default=65_536, ge=1_024)  # beyond: size, sha256 and a prefix
    quiet_seconds: float = Field(default=60.0, gt=0)


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
    input_formats: dict[str, InputFormat] = Field(default_factory=dict)  # topic -> format (default native)
    limits: LimitsSpec = LimitsSpec()

    @model_validator(mode="after")
    def _validate_layers(self) -> MonitorSpec:
        # Resolve every configured layer now so errors surface at start-up, naming the field.
        for model_name, model in self.models.items():
            try:
                base = merge_settings(self.defaults, model.detection)
            except ValidationError as exc:
                raise ValueError(describe_error(exc, f"models.{model_name}.detection")) from None
            for channel_name, channel in model.channels.items():
                for ctype in (channel.type,) if channel.type else ("numeric", "categorical"):
                    try:
                        _channel_settings(base, channel, ctype)
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
        spec = self.channel_spec(model, channel)
        return _channel_settings(base, spec, channel_type) if spec else base


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
