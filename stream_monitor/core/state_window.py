"""A channel's reference and window ring buffer as state items of their own: a checkpoint writes what changed.

A channel's state (``core/state.py``, format 4) is spread over items keyed by the model's item name
(``judge``: the model, or its judging group) and the channel:

- ``c\\x1f<judge>\\x1f<channel>``, the channel item: counters, warm-up, detectors, lifecycles, page, the
  window's positions and fill counts, the digest of its reference item and the stamp of each window chunk;
- ``r\\x1f<judge>\\x1f<channel>``, its reference: written when it is set (warm-up end, a baseline, a rebuilt
  channel), static otherwise;
- ``w\\x1f<judge>\\x1f<channel>\\x1f<i>``, chunk ``i`` of its window ring buffer (ring positions
  ``i * WINDOW_CHUNK`` to ``(i + 1) * WINDOW_CHUNK - 1`` of the flags, times and values): written when an
  observation was written into it since the last checkpoint (``ChannelMonitor.dirty_chunks``), stamped
  with the channel's observation count then.

So a checkpoint rewrites, per channel that saw rows, its channel item (a few KB) and the one or two chunks
the rows went to, not the whole 17 KB window and 8 KB reference. Restoring (:class:`ChannelParts`) reads
the reference item whose digest the channel item names and every chunk with the stamp it names; a chunk
or reference that is missing, unreadable, of another channel or another version rejects the channel
(``state_item_rejected``: it starts again) as a bad channel item does. A channel item of format 3 holds
both inline and still restores; that channel writes all its items at the next checkpoint.

Items a channel no longer has are deleted (``None``, :class:`StoredParts`): its reference and chunks
when it was rebuilt warming up, chunks beyond its window when rebuilt with a smaller one, and at the
first checkpoint after a restore, the reference and window items of channels that were not restored.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Mapping

import numpy as np

from stream_monitor.core.channel import WINDOW_CHUNK, ChannelMonitor
from stream_monitor.core.reference import NumericReference, Reference
from stream_monitor.core.state import FORMAT_VERSION, StateFormatError, _Fields, _floats, _pack, _unpack, encode_channel

REFERENCE = "r\x1f"  # prefix of a channel's reference item
WINDOW = "w\x1f"  # ... and of its window chunks
_MAX_WINDOW = 100_000  # a window holds at most 100,000 observations (WindowSettings.size): so many chunks at most
_POSITIONS = ("obs_filled", "obs_pos", "val_filled", "val_pos")


def reference_key(judge: str, channel: str) -> str:
    """The item name of a channel's reference."""
    return f"{REFERENCE}{judge}\x1f{channel}"


def chunk_key(judge: str, channel: str, index: int) -> str:
    """The item name of chunk ``index`` of a channel's window."""
    return f"{WINDOW}{judge}\x1f{channel}\x1f{index}"


def _digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()[:32]


def _encode_reference(ref: Reference) -> dict[str, Any]:
    head = {"kind": ref.kind, "count": ref.count, "missing_rate": ref.missing_rate, "invalid_rate": ref.invalid_rate}
    if isinstance(ref, NumericReference):
        return {**head, "sample": _floats(ref.sorted_sample), "mean": ref.mean, "std": ref.std, "min": ref.minimum, "max": ref.maximum}
    return {**head, "categories": list(ref.categories), "counts": np.asarray(ref.counts, dtype="<i8").tobytes()}


def encode_reference(ch: ChannelMonitor) -> bytes:
    """The reference item of ``ch`` (which has a reference)."""
    assert ch.reference is not None
    return _pack({"format": FORMAT_VERSION, "kind": "reference", "model": ch.model, "name": ch.name, "reference": _encode_reference(ch.reference)})


def encode_chunk(ch: ChannelMonitor, index: int) -> bytes:
    """Chunk ``index`` of the window of ``ch`` (which has a reference), with its current stamp."""
    a, b = index * WINDOW_CHUNK, min(ch.size, (index + 1) * WINDOW_CHUNK)
    dtype = "<f8" if ch.channel_type == "numeric" else "<i4"
    return _pack({
        "format": FORMAT_VERSION, "kind": "window", "model": ch.model, "name": ch.name, "chunk": index, "stamp": ch.chunk_stamps[index],
        "flags": ch.flags[a:b].tobytes(), "times": ch.times[a:b].astype("<i8", copy=False).tobytes(),
        "values": ch.values[a:b].astype(dtype, copy=False).tobytes(),
    })  # fmt: skip


class StoredParts:
    """Which reference and window items each channel of a partition has, so that those it no longer has are deleted."""

    __slots__ = ("of", "stale")

    def __init__(self) -> None:
        self.of: dict[str, tuple[bool, int]] = {}  # "judge\x1fchannel" -> (a reference item, chunk items 0 to n - 1)
        self.stale: list[str] = []  # items of channels not restored: deleted at the next checkpoint

    def channel_items(self, ch: ChannelMonitor, judge: str, only_dirty: bool = True) -> dict[str, bytes | None]:
        """The items of channel ``ch`` of ``judge`` to write: its channel item, its reference and the window chunks
        written since the last call (all of them when not ``only_dirty``), and ``None`` for those it no longer has."""
        base = f"{judge}\x1f{ch.name}"
        out: dict[str, bytes | None] = {}
        has_reference = ch.reference is not None
        n = len(ch.chunk_stamps) if has_reference else 0
        if has_reference:
            if ch.reference_dirty or not only_dirty:
                blob = encode_reference(ch)
                ch.reference_digest, ch.reference_dirty = _digest(blob), False
                out[REFERENCE + base] = blob
            dirty, stamps = ch.dirty_chunks, ch.chunk_stamps
            for i in dirty:
                stamps[i] = ch.observations
            for i in sorted(dirty) if only_dirty else range(n):
                out[chunk_key(judge, ch.name, i)] = encode_chunk(ch, i)
            dirty.clear()
        had_reference, had = self.of.get(base, (False, 0))
        if had_reference and not has_reference:
            out[REFERENCE + base] = None
        for i in range(n, had):
            out[chunk_key(judge, ch.name, i)] = None
        self.of[base] = (has_reference, n)
        out[f"c\x1f{base}"] = encode_channel(ch, WINDOW_CHUNK)
        return out

    def take_stale(self) -> dict[str, None]:
        """Deletions of the items of channels that were not restored (once)."""
        out = dict.fromkeys(self.stale)
        self.stale.clear()
        return out

    @classmethod
    def found(cls, items: Mapping[str, bytes], restored: set[str]) -> StoredParts:
        """The reference and window items among ``items``: those of ``restored`` channels (``judge\\x1fchannel``) are
        theirs, the others stale."""
        stored = cls()
        for key in items:
            if key.startswith(REFERENCE):
                base, index = key[2:], -1
            elif key.startswith(WINDOW):
                base, _, text = key[2:].rpartition("\x1f")
                index = int(text) if text.isascii() and text.isdigit() and len(text) < 7 else _MAX_WINDOW
            else:
                continue
            if base not in restored or index >= _MAX_WINDOW:
                stored.stale.append(key)
                continue
            reference, n = stored.of.get(base, (False, 0))
            stored.of[base] = (reference or index < 0, max(n, index + 1))
        return stored


class ChannelParts:
    """The reference and window items of one channel, read for ``state.decode_channel`` (a format 4 channel item)."""

    __slots__ = ("channel", "digest", "items", "judge", "model")

    def __init__(self, items: Mapping[str, bytes], judge: str, model: str, channel: str) -> None:
        self.items, self.judge, self.model, self.channel = items, judge, model, channel
        self.digest = ""

    def reference(self, digest: str, fail: Callable[[str, str], StateFormatError]) -> Any:
        """The stored reference (a map, checked by the caller), from the item of that ``digest``."""
        blob = self.items.get(reference_key(self.judge, self.channel))
        if blob is None:
            raise fail("reference", "its item is missing")
        if _digest(bytes(blob)) != digest:
            raise fail("reference", "its item is not the one the channel item names")
        f = _own(blob, "reference", f"reference of {self.judge!r}/{self.channel!r}")
        if f.get("model", str) != self.model or f.get("name", str) != self.channel:
            raise f.fail("name", "the reference of another channel")
        self.digest = digest
        return f.get("reference", dict)

    def window(self, w: _Fields, ch: ChannelMonitor) -> dict[str, Any]:
        """The window of channel ``ch`` (just activated) as a format 3 window map, from the chunks ``w`` names.

        Marks the reference and the chunks as stored (not to be written again until they change);
        chunks of another size than :data:`WINDOW_CHUNK` are all written again under the current size.
        """
        size = ch.size
        chunk = w.count("chunk", _MAX_WINDOW)
        stamps = w.get("stamps", list)
        if chunk < 1 or len(stamps) != -(-size // chunk) or not all(type(s) is int and s >= 0 for s in stamps):
            raise w.fail("stamps", f"not one stamp per chunk of {chunk} positions of a window of {size}")
        widths = {"flags": 1, "times": 8, "values": 8 if ch.channel_type == "numeric" else 4}
        data: dict[str, list[bytes]] = {name: [] for name in widths}
        for i, stamp in enumerate(stamps):
            blob = self.items.get(chunk_key(self.judge, self.channel, i))
            if blob is None:
                raise w.fail("chunks", f"chunk {i} is missing")
            c = _own(blob, "window", f"{w.where} chunk {i}")
            if c.get("model", str) != ch.model or c.get("name", str) != ch.name or c.get("chunk", int) != i:
                raise c.fail("chunk", "a chunk of another channel or position")
            if c.get("stamp", int) != stamp:
                raise c.fail("stamp", f"{c.obj['stamp']} is not the stamp the channel item names ({stamp})")
            k = min(chunk, size - i * chunk)
            for name, width in widths.items():
                raw = c.get(name, bytes)
                if len(raw) != k * width:
                    raise c.fail(name, f"{len(raw)} bytes for {k} positions")
                data[name].append(raw)
        ch.reference_dirty, ch.reference_digest = False, self.digest
        if chunk == WINDOW_CHUNK:
            ch.chunk_stamps, ch.dirty_chunks = list(stamps), set()
        return {**{name: b"".join(parts) for name, parts in data.items()}, **{k: w.obj[k] for k in _POSITIONS if k in w.obj}}


def _own(blob: bytes, kind: str, where: str) -> _Fields:
    """A reference or window item (format 4 only) as checked fields."""
    f = _Fields(_unpack(blob, kind), where)
    if f.obj["format"] != FORMAT_VERSION:
        raise f.fail("format", f"{f.obj['format']} is not {FORMAT_VERSION}")
    return f
