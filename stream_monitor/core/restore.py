"""Restoring a model and its channels from state items, brought in line with the current config.

Used by :meth:`PartitionMonitor.from_state_items`: a model item names its channels; each channel
item is decoded and reconciled with what the config now says (dropped when no longer monitored,
rebuilt — open alert episodes kept — when its settings, type or baseline changed).

A model judged in groups (``models.<m>.judging_groups``, :mod:`stream_monitor.core.groups`) has
items per group. When N changed since they were written, the items of a group g > 0 (its judge
name says the N it was written under) are ignored, and group 0 (the model's own items, always on
the model's partition) drops the channels another group now judges; they start again, as new
channels, in the group that now receives their values. Each says so in a ``state_group_changed``
log line naming the open alerts left behind. No group is ever fed values of features another
group's state describes, so no state is misread.
"""

from __future__ import annotations

from typing import Any

from stream_monitor.core import state
from stream_monitor.core.channel import ChannelMonitor
from stream_monitor.core.groups import groups_of, in_group, layout_of, model_of
from stream_monitor.core.model_monitor import ModelMonitor
from stream_monitor.core.state_window import ChannelParts


def restore_model(monitor: Any, name: str, blob: bytes, items: dict[str, bytes]) -> None:
    """Rebuild model ``name`` of ``monitor`` and its channels from their items (a bad one resets only what it held)."""
    try:
        record = state.decode_model(blob, name)
    except state.StateFormatError as exc:
        monitor._rejected(name, None, exc)
        return
    real, group, written_under = layout_of(name)
    n = groups_of(monitor.spec, real)
    if group and written_under != n:  # judging_groups changed: this group's features and partition were others
        _regrouped(monitor, real, name, n, list(record.channels), items)
        return
    model = monitor.model(name)
    if model is None:
        return
    model.known_features = [f for f in record.known_features if in_group(f, group, n)]
    gone = [c for c in record.channels if not in_group(c, group, n)]
    if gone:
        _regrouped(monitor, real, name, n, gone, items)
    if record.page is not None:
        model.page = record.page
    model.versions = list(record.versions)
    cal = record.calibration
    if model.calibration is not None:
        model.calibration = model.start_calibration()  # under the restored version: a baseline's is taken as configured
        if model.baseline.calibration_for(model.versions[-1] if model.versions else None) is None and cal is not None:
            if (cal.bins, cal.size) == (model.calibration.bins, model.calibration.size):
                model.calibration = cal  # a changed bins / calibration_size starts the learning again
    if model.realised is not None and record.realised is not None:
        model.realised = record.realised
    if record.classes is not None:  # the classes with per-class channels, as first seen (configured ones kept)
        tracked, model.untracked = record.classes
        cap = monitor.spec.limits.classes_per_model
        for k in tracked:
            if len(model.classes) >= cap:
                break
            model.classes[k] = None
        model.warned_classes = model.untracked > 0
    for ch_name in record.channels:
        blob_ch = items.get(f"c\x1f{name}\x1f{ch_name}")
        if blob_ch is None or ch_name in gone:
            continue
        try:
            snap = state.decode_channel(blob_ch, real, ch_name, monitor.partition, ChannelParts(items, name, real, ch_name))
            ch = reconciled(monitor, model, snap)
        except Exception as exc:  # noqa: BLE001 - whatever a stored item holds, it resets only its channel
            monitor._rejected(name, ch_name, exc)
            continue
        if ch is not None:
            model.channels[ch_name] = ch
    model.dirty = False


def _regrouped(monitor: Any, model: str, name: str, groups: int, channels: list[str], items: dict[str, bytes]) -> None:
    """Channels of judge ``name`` that another group of ``model`` now judges: not restored, said once in the log."""
    still_open = []
    for ch_name in channels:
        blob = items.get(f"c\x1f{name}\x1f{ch_name}")
        try:
            snap = state.decode_channel(blob, model, ch_name, parts=ChannelParts(items, name, model, ch_name)) if blob else None
            still_open += [e.fingerprint for e in snap.open_episodes()] if snap else []
        except Exception:  # noqa: BLE001 - only for the log line
            pass
    monitor.log.warning(
        "state_group_changed", model=model, group=model_of(name)[1], judging_groups=groups, channels=channels[:50],
        open_alerts=still_open, detail="state of another judging layout: ignored; these channels start again where they are judged now",
    )  # fmt: skip


def reconciled(monitor: Any, model: ModelMonitor, snap: state.ChannelSnapshot) -> ChannelMonitor | None:
    """A restored channel, brought in line with the current config.

    A channel the config no longer monitors (disabled, or undiscoverable) is dropped; one whose
    settings, type or baseline changed is rebuilt — keeping its open alert episodes, so an alert
    that was firing still resolves (or stays firing) instead of being forgotten.
    """
    name, log_ = snap.name, monitor.log.bind(model=model.model, channel=snap.name)
    cspec = monitor.spec.channel_spec(model.model, name)
    if name in model.disabled or (cspec is None and not model.discover):
        still_open = [e.fingerprint for e in snap.open_episodes()]
        log_.warning("state_channel_dropped", reason="no longer monitored by the config", open_alerts=still_open)
        return None
    ctype = (cspec.type if cspec is not None and cspec.type else None) or snap.channel_type
    wanted = monitor.spec.channel_settings(model.model, name, ctype)
    baseline = model.baseline_for(name, ctype)
    ref = snap.reference
    baseline_changed = baseline is not None and (ref is None or ref.kind != "baseline" or ref.to_profile() != baseline.to_profile())
    same_settings = state.settings_digest(wanted) == snap.settings_digest
    ordinal = len(model.channels)
    if same_settings and ctype == snap.channel_type and not baseline_changed:
        return state.restore_channel(snap, wanted, monitor.partition, ordinal)
    reference = baseline if baseline is not None else (ref if ctype == snap.channel_type else None)
    log_.warning(
        "state_settings_changed_reset",
        reason="settings changed" if not same_settings else ("type changed" if ctype != snap.channel_type else "baseline changed"),
        open_alerts=[e.fingerprint for e in snap.open_episodes()],
    )
    fresh = ChannelMonitor(model.model, name, ctype, wanted, monitor.partition, ordinal, reference)
    fresh.adopt_open_episodes(snap)
    return fresh
