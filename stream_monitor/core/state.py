"""Checkpointed state as data: an explicit, versioned encoding of every piece of monitoring state.

A partition's state is a set of items (one per model, one per channel, one for the pending
label-join entries), each a MessagePack map of numbers, strings, booleans, lists, maps and byte
strings (numpy arrays as their little-endian bytes; the dtype and length are fixed per field and
checked). No extension types and no objects: decoding builds nothing but those values, then
validates every field before anything is rebuilt from it. Each item carries ``format`` (this
module's :data:`FORMAT_VERSION`) and ``kind``.

Settings are not stored. A channel item records a digest of its settings' JSON; on restore the
channel is rebuilt from the *current* config, and a digest that differs means "settings changed"
(see ``stream_monitor.core.restore.reconciled``).

Items (all maps; ``f8``/``i8``/``i4``/``u1`` are byte strings of little-endian float64, int64,
int32, uint8 arrays):

- model ``{format, kind: "model", model, known_features: [str], channels: [str], versions: [str]}``
  (``versions``, the model versions seen, oldest first, only when some were: the last one also
  says which version's baseline profile applies, ``models.<m>.baselines``; ``calibration:
  {bins, size, n: [int], pos: [int], errors?: {class: {class: int}}}`` and ``realised: {labels, sums, counts, latest}``, the
  label-free estimates' calibration and the realised metrics shown next to them, only when the
  model has estimates on; ``classes: {tracked: [str], untracked: int}``, a multiclass model's classes
  with per-class channels and the labelled predictions of classes beyond the cap, only when some; ``page``, the
  performance page once it fired, ``core/model_pages.py``: ``{state, severity, lead, lead_detector, episode_start_ms,
  episode_offset, ended_ms, members: {channel: severity}, agreed: [str]}``; optional)
- channel ``{format, kind: "channel", model, name, type, settings: hex digest, observations,
  since_eval, warmup: {values: f8, categories: [str], counts: i8, missing, invalid}, reference: null | digest of
  its reference item, window: null | {chunk, stamps: [int], obs_filled, obs_pos, val_filled, val_pos},
  detectors: {name: River adapter state}, pending: {name: [sum, count]}, level: [sum, count],
  lifecycles: {name: lifecycle}, orphans: {name: lifecycle}, series}`` where a lifecycle is
  ``{settings: LifecycleSettings as a map, state, consecutive_breaches, consecutive_clear,
  clear_since_ms, cooldown_until_ms, episode_start_ms, episode_offset, severity, ended_ms,
  peak_statistic, last_statistic, last_threshold, last_p_value, paged}`` and the channel's page
  (``series``) is ``{state, severity, lead, episode_start_ms, episode_offset, ended_ms, shift_sd, agreed: [str]}``.
  Its reference and window ring buffer are items of their own, written only when they change
  (``core/state_window.py``): reference ``{format, kind: "reference", model, name, reference: numeric {kind, count,
  missing_rate, invalid_rate, sample: f8, mean, std, min, max} | categorical {kind, count, missing_rate,
  invalid_rate, categories: [str], counts: i8}}`` and one per ``chunk`` ring positions ``{format, kind: "window",
  model, name, chunk: index, stamp, flags: u1, times: i8, values: f8 | i4}``. A channel item of format 3 holds both
  inline (``reference`` that map, ``window`` ``{flags, times, values, obs_filled, obs_pos, val_filled, val_pos}``).
- labels ``{format, kind: "labels", ids: [str], model_names: [str], model_of: u2 | u4, floats: f8 | predictions:
  [JSON text], times: i8}`` (the predictions awaiting their label, in segments, format 5: ``core/state_labels.py``;
  the newest segment's item also lists the full ones, ``segments``, and the positions taken out of them, ``gone``;
  formats 3 and 4 had ``models: [str], predictions: [JSON text]``)
- order ``{format, kind: "order", inference: {frontier: null | [time, tie, index], sources: [[topic,
  partition, latest event time]]}, labels: (the same), seen: [[topic, partition, next offset]],
  prediction_time: null | int}`` (event-time order across input partitions, ``core/ordering.py``)
- waiting ``{format, kind: "waiting", rows: [rows record]}`` (labels waiting for their prediction,
  each a rows record of ``core/exchange.py``)
- retraining ``{format, kind: "retraining", models: {model: {now, cooldown_until, version, episodes:
  [[fingerprint, alert_id, kind, feature, detector, since, summary, slo, used]]}}}`` (only when
  ``retraining.enabled``: the open episodes a model's retraining trigger is timing, ``core/retraining.py``)
- sent ``{format, kind: "sent", keys: [[16-byte identity, count]], upto: [key or null, key or null]}`` (the alerts
  and retraining events committed ahead of the state, not sent again when judging is redone from it, and the largest
  inference and label row keys judged then, past which those not made again are dropped; ``upto`` absent in items
  written before it existed; only while some are: ``core/sent.py``)

Size: every item is bounded whatever the input. Category values are cut to ``categories.max_length`` characters (plus
a hash suffix) when classified, and a warm-up reference keeps at most ``categories.max_distinct`` categories plus one
overflow bucket, so a channel item (its warm-up) or a reference item holds at most about ``8 * reference.size + 16 KiB +
(max_distinct + 1) * (4 * max_length + 25)`` bytes plus a few KiB of detector state and lifecycles, a window chunk 2.3 KiB
— under 0.5 MiB with the default settings, below a producer's default 1 MiB request size. (A baseline reference is as
large as its baseline file.)

The encoding every item shares (MessagePack, format and kind, checked field access) is ``core/state_codec.py``.
Anything that does not decode, has another format version (items of format 3 still read) or fails a check raises
:class:`StateFormatError` (and nothing else); the caller then resets what the item held.

>>> blob = encode_model(["x", "y"], ["x"], ["v1"])
>>> decode_model(blob, "m")
ModelRecord(known_features=['x', 'y'], channels=['x'], versions=['v1'], calibration=None, realised=None, classes=None, page=None)
>>> decode_model(b"\\x80", "m")
Traceback (most recent call last):
...
stream_monitor.core.state_codec.StateFormatError: model item: format None is not 3 or 4
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import msgpack
import numpy as np

from stream_monitor.core import detectors as det
from stream_monitor.core.channel import ChannelMonitor, OpenEpisode, open_pages
from stream_monitor.core.estimate import Calibration, Realised
from stream_monitor.core.lifecycle import AlertLifecycle, fingerprint
from stream_monitor.core.model_pages import PerformancePage
from stream_monitor.core.performance import classes_from_state
from stream_monitor.core.reference import CategoricalReference, NumericReference, Reference
from stream_monitor.core.series import AlertSeries
from stream_monitor.core.settings import DetectionSettings, LifecycleSettings
# the shared encoding, also imported from here by the other items' modules
from stream_monitor.core.state_codec import FORMAT_VERSION, READABLE_FORMATS, StateFormatError, _Fields, _floats, _guarded, _pack, _unpack  # noqa: F401
from stream_monitor.core.state_labels import decode_labels_item

_SEVERITIES = ("info", "warning", "critical")
_LIFECYCLE_OPTIONAL_INTS = ("clear_since_ms", "cooldown_until_ms", "episode_start_ms", "ended_ms")


_DIGESTS: dict[int, tuple[DetectionSettings, str]] = {}
_DIGESTS_MAX = 4096


def settings_digest(settings: DetectionSettings) -> str:
    """A stable digest of detection settings (their JSON), to tell whether stored state fits them.

    >>> settings_digest(DetectionSettings()) == settings_digest(DetectionSettings())
    True
    """
    hit = _DIGESTS.get(id(settings))
    if hit is not None and hit[0] is settings:
        return hit[1]
    digest = hashlib.sha256(settings.model_dump_json().encode()).hexdigest()
    if len(_DIGESTS) >= _DIGESTS_MAX:
        _DIGESTS.clear()
    _DIGESTS[id(settings)] = (settings, digest)  # holding the settings keeps their id unique
    return digest


# ------------------------------------------------------------------ model item
class ModelRecord(NamedTuple):
    """A decoded model item: features seen on every record, and the model's channels in order."""

    known_features: list[str]
    channels: list[str]
    versions: list[str] = []  # the model versions seen, oldest first (the last is the current one)
    calibration: Calibration | None = None  # the label-free estimates' calibration, when estimates are on
    realised: Realised | None = None  # the realised metrics shown next to the estimates
    classes: tuple[list[str], int] | None = None  # (classes with per-class channels, untracked labelled predictions)
    page: PerformancePage | None = None  # the model's performance page (core/model_pages.py)


def encode_model(
    known_features: list[str],
    channels: list[str],
    versions: list[str] | None = None,
    calibration: Calibration | None = None,
    realised: Realised | None = None,
    classes: tuple[list[str], int] | None = None,
    page: PerformancePage | None = None,
) -> bytes:
    """The state item of one model (its channels have items of their own); ``versions`` only when some were seen,
    ``calibration`` (plain counts) only when the model has one, ``classes`` (tracked, untracked) only when a class was
    seen, ``page`` only once the performance page fired."""
    item: dict[str, Any] = {"format": FORMAT_VERSION, "kind": "model", "known_features": list(known_features), "channels": list(channels)}
    if versions:
        item["versions"] = list(versions)
    if calibration is not None:
        item["calibration"] = calibration.to_state()
    if realised is not None:
        item["realised"] = realised.to_state()
    if classes is not None and (classes[0] or classes[1]):
        item["classes"] = {"tracked": list(classes[0]), "untracked": classes[1]}
    if page is not None and page.agreed:
        item["page"] = page.to_state()
    return _pack(item)


def decode_model(blob: bytes, model: str) -> ModelRecord:
    """Decode and check a model item; raise :class:`StateFormatError` if it is not one."""
    f = _Fields(_unpack(blob, "model"), f"model {model!r}")
    known, channels = f.strings("known_features"), f.strings("channels")
    if len(set(channels)) != len(channels) or len(set(known)) != len(known):
        raise f.fail("channels", "duplicate names")
    versions = f.strings("versions") if "versions" in f.obj else []
    cal, realised = _optional(f, "calibration", Calibration.from_state), _optional(f, "realised", Realised.from_state)
    page = _optional(f, "page", PerformancePage.from_state)
    return ModelRecord(known, channels, versions, cal, realised, _optional(f, "classes", classes_from_state), page)


def _optional(f: Any, key: str, build: Callable[[Any], Any]) -> Any:
    """``build`` of the optional field ``key`` (None when absent); a malformed one (``ValueError``) fails naming it."""
    if key not in f.obj:
        return None
    try:
        return build(f.obj[key])
    except ValueError as exc:
        raise f.fail(key, str(exc)) from None


# ------------------------------------------------------------------ label-join items
def decode_labels(blob: bytes) -> OrderedDict[str, tuple[str, Any, int]]:
    """The predictions of a labels item (``core/state_labels.py`` encodes and decodes them); raise :class:`StateFormatError` if it is not one."""
    return decode_labels_item(blob)[0]


# ------------------------------------------------------------------ references and lifecycles
def _decode_reference(obj: Any, numeric: bool) -> Reference:
    f = _Fields(obj, "reference")
    kind = f.get("kind", str)
    if kind not in ("warmup", "baseline"):
        raise f.fail("kind", repr(kind))
    count, missing, invalid = f.count("count"), f.rate("missing_rate"), f.rate("invalid_rate")
    if numeric:
        # values as computed (an overflowing stream can give an infinite or NaN spread)
        sample = f.array("sample", "<f8")
        mean, std, lo, hi = (f.get(k, float) for k in ("mean", "std", "min", "max"))
        if std < 0 or lo > hi:
            raise f.fail("std", "negative spread or min above max")
        return NumericReference(kind, count, missing, invalid, sample, mean, std, lo, hi)
    categories = f.strings("categories")
    counts = f.array("counts", "<i8", len(categories))
    if len(set(categories)) != len(categories) or (counts < 0).any():
        raise f.fail("categories", "repeated categories or negative counts")
    return CategoricalReference(kind, count, missing, invalid, categories, counts)


def _encode_lifecycle(life: AlertLifecycle) -> dict[str, Any]:
    out: dict[str, Any] = {"settings": life.settings.model_dump()}
    for attr in AlertLifecycle.__slots__:
        if attr != "settings":
            out[attr] = getattr(life, attr)
    return out


def _decode_lifecycle(obj: Any, where: str, settings: LifecycleSettings | None = None) -> AlertLifecycle:
    f = _Fields(obj, where)
    if settings is None:
        settings = _guarded(f"{where}.settings", lambda: LifecycleSettings.model_validate(f.get("settings", dict)))
    life = AlertLifecycle(settings)
    state = f.get("state", str)
    severity = f.get("severity", str)
    if state not in ("ok", "firing") or severity not in _SEVERITIES:
        raise f.fail("state", f"{state!r}/{severity!r}")
    life.state, life.severity = state, severity  # type: ignore[assignment]
    life.consecutive_breaches = f.count("consecutive_breaches")
    life.consecutive_clear = f.count("consecutive_clear")
    life.episode_offset = f.get("episode_offset", int)
    for attr in _LIFECYCLE_OPTIONAL_INTS:
        setattr(life, attr, f.get(attr, int, type(None)))
    peak = f.get("peak_statistic", float, int, type(None))
    life.peak_statistic = peak
    for attr in ("last_statistic", "last_threshold", "last_p_value"):
        setattr(life, attr, f.get(attr, float, int, type(None)))
    life.paged = f.get("paged", bool)
    if life.paged and not life.firing:
        raise f.fail("paged", "a page that is not firing")
    return life


def _encode_series(series: AlertSeries) -> dict[str, Any]:
    out = {attr: getattr(series, attr) for attr in AlertSeries.__slots__}
    out["agreed"] = list(series.agreed)
    return out


def _decode_series(obj: Any, where: str, detectors: set[str]) -> AlertSeries:
    f = _Fields(obj, where)
    series = AlertSeries()
    state, severity, lead = f.get("state", str), f.get("severity", str), f.get("lead", str)
    if state not in ("ok", "firing") or severity not in _SEVERITIES:
        raise f.fail("state", f"{state!r}/{severity!r}")
    if state == "firing" and lead not in detectors:
        raise f.fail("lead", f"{lead!r} is none of the channel's detectors")
    series.state, series.severity, series.lead = state, severity, lead  # type: ignore[assignment]
    series.episode_offset = f.get("episode_offset", int)
    series.episode_start_ms = f.get("episode_start_ms", int, type(None))
    series.ended_ms = f.get("ended_ms", int, type(None))
    series.shift_sd = f.get("shift_sd", float, int, type(None))
    series.agreed = f.strings("agreed")
    if not set(series.agreed) <= detectors:
        raise f.fail("agreed", "unknown detector")
    return series


# ------------------------------------------------------------------ channel item
def encode_channel(ch: ChannelMonitor, chunk: int) -> bytes:
    """The state item of one channel: counters, warm-up, detectors, lifecycles; its reference and window chunks
    (of ``chunk`` positions) by the digest and stamps they were written with (``core/state_window.py``)."""
    window = None
    if ch.reference is not None:
        window = {"chunk": chunk, "stamps": ch.chunk_stamps, "obs_filled": ch.obs_filled, "obs_pos": ch.obs_pos,
                  "val_filled": ch.val_filled, "val_pos": ch.val_pos}  # fmt: skip
    item = {
        "format": FORMAT_VERSION,
        "kind": "channel",
        "model": ch.model,
        "name": ch.name,
        "type": ch.channel_type,
        "settings": settings_digest(ch.settings),
        "observations": ch.observations,
        "since_eval": ch.since_eval,
        "warmup": {
            "values": _floats(np.asarray(ch._warm_values, dtype=np.float64)),
            "categories": list(ch.warm_counts),
            "counts": np.asarray(list(ch.warm_counts.values()), dtype="<i8").tobytes(),
            "missing": ch._warm_missing,
            "invalid": ch._warm_invalid,
        },
        "reference": ch.reference_digest if ch.reference is not None else None,
        "window": window,
        "detectors": {pdet.name: pdet.get_state() for _, pdet in ch.point_detectors},
        "pending": {name: list(p) for name, p in ch._pending.items()},
        "level": list(ch._level),
        "lifecycles": {name: _encode_lifecycle(life) for name, life in ch.lifecycles.items()},
        "orphans": {name: _encode_lifecycle(life) for name, life in ch._orphans.items()},
        "series": _encode_series(ch.series),
    }
    return _pack(item)


@dataclass(slots=True)
class ChannelSnapshot:
    """A decoded, checked channel item, before it is rebuilt against the current settings.

    ``lifecycles`` carry the settings they were stored with, so a channel whose settings changed
    can still hand its open episodes over (``ChannelMonitor.adopt_open_episodes`` reads
    :meth:`open_episodes`).
    """

    model: str
    name: str
    channel_type: str
    settings_digest: str
    reference: Reference | None
    lifecycles: dict[str, AlertLifecycle]
    orphans: dict[str, AlertLifecycle]
    fingerprints: dict[str, str]
    series: AlertSeries
    fields: _Fields = field(repr=False)
    parts: Any = field(default=None, repr=False)  # format 4: reads its reference and window items (state_window.ChannelParts)

    @property
    def firing(self) -> list[str]:
        """Names of the detectors whose lifecycle was firing."""
        return [name for name, life in self.lifecycles.items() if life.firing]

    def firing_lifecycles(self) -> list[tuple[str, str, AlertLifecycle]]:
        """(detector, detector-level fingerprint, lifecycle) of every stored firing detector, current or orphaned."""
        return [
            (name, self.fingerprints[name], life)
            for lifecycles in (self.lifecycles, self.orphans)
            for name, life in lifecycles.items()
            if life.firing
        ]

    def open_episodes(self) -> list[OpenEpisode]:
        """The stored open pages (as ``ChannelMonitor.open_episodes``)."""
        return open_pages(self.series, fingerprint(self.model, self.name), self.firing_lifecycles())


def decode_channel(blob: bytes, model: str, name: str, partition: int | None = None, parts: Any = None) -> ChannelSnapshot:
    """Decode and check a channel item of ``model``/``name``; raise :class:`StateFormatError` if it is not one.

    ``parts`` (``state_window.ChannelParts``) reads the reference and window items of a format 4 item; without it
    only one without a reference decodes. ``partition`` is not used: no alert identity depends on it.
    """
    return _guarded(f"channel {model!r}/{name!r}", lambda: _decode_channel(blob, model, name, parts))


def _decode_channel(blob: bytes, model: str, name: str, parts: Any) -> ChannelSnapshot:
    f = _Fields(_unpack(blob, "channel"), f"channel {model!r}/{name!r}")
    if f.get("model", str) != model or f.get("name", str) != name:
        raise f.fail("name", "item stored under another model or channel")
    ctype = f.get("type", str)
    if ctype not in ("numeric", "categorical"):
        raise f.fail("type", repr(ctype))
    inline = f.obj["format"] == 3  # the reference and window in the item itself
    if inline:
        ref_obj = f.get("reference", dict, type(None))
    elif (digest := f.get("reference", str, type(None))) is None:
        ref_obj = None
    elif parts is None:
        raise f.fail("reference", "its item was not given")
    else:
        ref_obj = parts.reference(digest, f.fail)
    reference = None if ref_obj is None else _decode_reference(ref_obj, ctype == "numeric")
    lifecycles, orphans = ({}, {})
    for key, target in (("lifecycles", lifecycles), ("orphans", orphans)):
        for det_name, obj in f.get(key, dict).items():
            if det_name not in det.REGISTRY:
                raise f.fail(key, f"unknown detector {det_name!r}")
            target[det_name] = _decode_lifecycle(obj, f"{f.where}.{key}.{det_name}")
    if lifecycles.keys() & orphans.keys():
        raise f.fail("orphans", "a detector is both current and orphaned")
    fingerprints = {d: fingerprint(model, name, d) for d in (*lifecycles, *orphans)}
    series = _decode_series(f.get("series", dict), f"{f.where}.series", set(det.REGISTRY))
    digest = f.get("settings", str)
    return ChannelSnapshot(model, name, ctype, digest, reference, lifecycles, orphans, fingerprints, series, f, None if inline else parts)


def restore_channel(snap: ChannelSnapshot, settings: DetectionSettings, partition: int, ordinal: int) -> ChannelMonitor:
    """Rebuild the channel of ``snap`` under ``settings`` (whose digest the snapshot must carry).

    Raises :class:`StateFormatError` when the stored state does not fit those settings.
    """
    if settings_digest(settings) != snap.settings_digest:
        raise StateFormatError(f"{snap.fields.where}: stored for other settings")
    return _guarded(f"{snap.fields.where}", lambda: _restore(snap, settings, partition, ordinal))


def _restore(snap: ChannelSnapshot, settings: DetectionSettings, partition: int, ordinal: int) -> ChannelMonitor:
    f = snap.fields
    ch = ChannelMonitor(snap.model, snap.name, snap.channel_type, settings, partition, ordinal)  # type: ignore[arg-type]
    ch.observations = f.count("observations")
    ch.since_eval = f.count("since_eval", ch.step - 1)
    _restore_warmup(ch, _Fields(f.get("warmup", dict), f"{f.where}.warmup"), snap.reference is None)
    if snap.reference is not None:
        ch._activate(snap.reference)
        window = _Fields(f.get("window", dict), f"{f.where}.window")
        _restore_window(ch, window if snap.parts is None else _Fields(snap.parts.window(window, ch), window.where))
        _restore_detectors(ch, f)
    elif f.get("window", type(None)) is not None or f.get("detectors", dict):
        raise f.fail("window", "a channel without reference has no window")
    if snap.lifecycles.keys() != ch.lifecycles.keys():
        raise f.fail("lifecycles", "detectors differ from the settings'")
    for det_name, life in snap.lifecycles.items():
        life.settings = ch.lifecycles[det_name].settings
        ch.lifecycles[det_name] = life
    ch._orphans = dict(snap.orphans)
    for det_name in snap.orphans:
        ch.fingerprints.setdefault(det_name, snap.fingerprints[det_name])
    ch.series = snap.series
    return ch


def _restore_warmup(ch: ChannelMonitor, w: _Fields, warming: bool) -> None:
    values: list[float] = w.array("values", "<f8").tolist()
    categories = w.strings("categories")
    counts = w.array("counts", "<i8", len(categories))
    if len(set(categories)) != len(categories) or len(categories) > ch.settings.categories.max_distinct + 1 or (counts < 1).any():
        raise w.fail("categories", "repeated, too many or empty categories")
    if (values and ch.channel_type != "numeric") or (categories and ch.channel_type == "numeric"):
        raise w.fail("values", f"warm-up values of the wrong type for a {ch.channel_type} channel")
    ch._warm_missing, ch._warm_invalid = w.count("missing"), w.count("invalid")
    present = len(values) + int(counts.sum())
    if warming and not (ch.observations < ch.settings.reference.size and present + ch._warm_missing + ch._warm_invalid == ch.observations):
        raise w.fail("values", "warm-up counts do not add up")
    if not warming and present:
        raise w.fail("values", "warm-up values after the reference was built")
    ch._warm_values = values
    ch.warm_counts = dict(zip(categories, counts.tolist(), strict=True))


def _restore_window(ch: ChannelMonitor, w: _Fields) -> None:
    n = ch.size
    flags = w.array("flags", "u1", n)
    if (flags > det.FLAG_OUTSIDE).any():
        raise w.fail("flags", "unknown flag")
    if ch.channel_type == "numeric":
        values = w.array("values", "<f8", n).astype(np.float64)
        if not np.isfinite(values).all():
            raise w.fail("values", "non-finite value")
    else:
        values = w.array("values", "<i4", n).astype(np.int32)
        if ((values < 0) | (values > ch.unseen_code)).any():
            raise w.fail("values", "category code out of range")
    ch.flags, ch.times, ch.values = flags, w.array("times", "<i8", n).astype(np.int64), values
    ch.obs_filled, ch.val_filled = w.count("obs_filled", n), w.count("val_filled", n)
    ch.obs_pos, ch.val_pos = w.count("obs_pos", n - 1), w.count("val_pos", n - 1)


def _restore_detectors(ch: ChannelMonitor, f: _Fields) -> None:
    states = f.get("detectors", dict)
    points = {pdet.name: pdet for _, pdet in ch.point_detectors}
    if states.keys() != points.keys():
        raise f.fail("detectors", "detectors differ from the settings'")
    for det_name, pdet in points.items():
        try:
            pdet.set_state(states[det_name])
        except det.RiverStateError as exc:
            raise f.fail(f"detectors.{det_name}", str(exc)) from None
    pending: dict[str, list[float]] = {}
    for det_name, value in f.get("pending", dict).items():
        if det_name not in points:
            raise f.fail("pending", f"unknown detector {det_name!r}")
        pending[det_name] = _sum_count(_Fields({"v": value}, f"{f.where}.pending.{det_name}"))
    ch._pending = pending
    ch._level = _sum_count(_Fields({"v": f.get("level", list)}, f"{f.where}.level"))


def _sum_count(f: _Fields) -> list[Any]:
    value = f.get("v", list)
    if len(value) != 2 or type(value[0]) not in (float, int) or type(value[1]) is not int or value[1] < 0:
        raise f.fail("v", "not [sum, count]")
    return list(value)
