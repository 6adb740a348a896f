"""Model versions: where a batch of rows meets a version its model never showed before.

A model's first ``model_version`` is only recorded, unless the config names a baseline for it
(``models.<m>.baselines``). A version the model never showed before switches the model
(:func:`switch_version`: its prediction and performance channels restart their reference, and
every channel the version's baseline covers takes that baseline as reference) from that version's
first row on; a version seen before (traffic split between two versions) changes nothing. The
processing step cuts a batch at the row :func:`version_cut` names, so the rows before it still
feed the old references, whatever the batch boundaries (``process`` as well as ``judge`` over
exchanged rows).

>>> from types import SimpleNamespace as NS
>>> rows = [NS(event=NS(model="m", model_version=v)) for v in ("a", "a", "b")]
>>> version_cut({}, rows)  # "m" is created by this batch, and a second version follows: cut there
(2, {'m': 'a'})
>>> version_cut({}, rows[:2])
(0, {'m': 'a'})
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import structlog

from stream_monitor.core.channel import ChannelMonitor
from stream_monitor.core.estimate import Realised
from stream_monitor.core.model_monitor import ModelMonitor
from stream_monitor.core.reference import Baseline
from stream_monitor.core.spec import ABS_ERROR, ERROR, ERROR_RATE, ESTIMATED_CHANNELS, PREDICTION, SCORED_CHANNELS, base_channel

log = structlog.get_logger("stream_monitor.core")

MAX_VERSIONS = 16
"""Model versions remembered per model (a version seen before changes nothing)."""
_VERSIONED = frozenset((ERROR, ERROR_RATE, ABS_ERROR, *SCORED_CHANNELS, *ESTIMATED_CHANNELS))
_OUTPUT_PREFIX = PREDICTION + "."


@dataclass(frozen=True, slots=True)
class VersionSwitch:
    """A model switched to a version it never showed before, at the event time of that version's first row.

    ``previous`` is the newest version the model showed before (None: the model's first version,
    switched to because the config names a baseline for it).
    """

    model: str
    previous: str | None
    version: str
    event_time_ms: int


def versioned(name: str) -> bool:
    """Whether a channel depends on the model version (it restarts its reference at every version switch).

    >>> versioned("__prediction__.proba"), versioned("__error_rate__"), versioned("amount"), versioned("__latency__")
    (True, True, False, False)
    >>> versioned("__recall__.refund")  # a per-class channel restarts with its metric
    True
    """
    return name == PREDICTION or name.startswith(_OUTPUT_PREFIX) or base_channel(name) in _VERSIONED


def rebased(model: ModelMonitor, name: str, ch: ChannelMonitor) -> bool:
    """Whether a channel's configured baseline (under the model's current version) is not the reference it holds."""
    ref = model.baseline_for(name, ch.channel_type)
    held = ch.reference
    return ref is not None and (held is None or held.kind != "baseline" or held.to_profile() != ref.to_profile())


def switch_version(model: ModelMonitor, version: str) -> list[str]:
    """Start model version ``version`` of ``model``; returns the names of the channels that restarted.

    The prediction and performance channels are replaced by fresh ones
    (:meth:`ModelMonitor.reset_channel`: the channel's configured baseline — the version's own
    (``models.<m>.baselines``), else the model's — or a warm-up), keeping their open alert
    episodes; the switch raises no alert. Features, ``__label__`` (the target) and
    ``__latency__`` (a new version's latency is worth comparing with the old one's) keep theirs,
    unless their configured baseline is now another one (the version's baseline covers them, or
    the previous version's did and the model's now applies): then they restart on it. The
    label-free estimates' calibration is the baseline's (the version's, else the model's) when it
    carries one, else learned again from labels.
    """
    model.versions = [*model.versions[-(MAX_VERSIONS - 1) :], version]
    reset = [name for name, ch in model.channels.items() if versioned(name) or rebased(model, name, ch)]
    for name in reset:
        model.reset_channel(name)
    if model.calibration is not None:  # a new version's probabilities are calibrated anew
        model.calibration = model.start_calibration()
        model.realised = Realised()
    model.dirty = True
    log.info("model_version_switched", model=model.model, version=version, partition=model.partition, channels=len(reset))
    return reset


def version_cut(
    models: Mapping[str, ModelMonitor],
    decoded: Sequence[Any],
    baselines: Mapping[str, Baseline] | None = None,
    create: Callable[[str], ModelMonitor | None] | None = None,
    switched: list[VersionSwitch] | None = None,
) -> tuple[int, dict[str, str]]:
    """The first row (> 0) at which a model shows a version it never showed before (0 when none does), and new models' first versions.

    ``decoded`` are the batch's decoded events (``.event.model``, ``.event.model_version``) and
    ``models`` the monitors that exist before it. Walking the rows, a known model's first version
    is recorded, and a new version at row 0 switches that model at once; a new version further on
    ends the walk there (the caller feeds the rows before it, then calls again from it). Models
    the batch creates are returned with their first version, to record once they exist
    (:func:`record_first_versions`); a second version of such a model cuts the batch as well.

    A first version with a baseline of its own (in ``baselines``, the models' baselines) is a
    switch like any new version: it cuts the batch, and at row 0 switches the model — created
    first by ``create`` when it does not exist yet — so that its channels start on that baseline.
    Each switch is appended to ``switched`` (when given), for reports.
    """
    pending: dict[str, str] = {}  # the last version of each model in the rows so far
    first: dict[str, str] = {}  # models created by this batch: their first version
    for row, d in enumerate(decoded):
        version, name = d.event.model_version, d.event.model
        if type(version) is not str or pending.get(name) == version:
            continue
        m = models.get(name)
        named = getattr(baselines.get(name), "versions", None) if baselines else None
        own = bool(named) and version in named  # the config names a baseline for this version
        if m is None and own and name not in first:
            if row:
                return row, first
            m = create(name) if create is not None else None
            if m is not None:
                _switch(m, version, d.event_time_ms, switched)
                pending[name] = version
                continue
        if m is None:
            if name in first:
                return row, first  # a second version of a model this batch creates: create it first
            first[name] = pending[name] = version
            continue
        if not m.versions and not own:
            m.versions.append(version)
            m.dirty = True
        elif version not in m.versions:
            if row:
                return row, first
            _switch(m, version, d.event_time_ms, switched)
        pending[name] = version
    return 0, first


def _switch(m: ModelMonitor, version: str, event_time_ms: int, switched: list[VersionSwitch] | None) -> None:
    previous = m.versions[-1] if m.versions else None
    switch_version(m, version)
    if switched is not None:
        switched.append(VersionSwitch(m.model, previous, version, event_time_ms))


def record_first_versions(models: Mapping[str, ModelMonitor], first: Mapping[str, str]) -> None:
    """Record the first version of the models a batch created (see :func:`version_cut`)."""
    for name, version in first.items():
        m = models.get(name)
        if m is not None and not m.versions:
            m.versions.append(version)
            m.dirty = True
