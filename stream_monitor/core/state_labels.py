"""The predictions awaiting their label as state items, in segments: a checkpoint writes only the segments that changed.

``PartitionMonitor.pending_labels`` (oldest first) is stored in segments of at most
:data:`SEGMENT_ENTRIES` predictions, in the order they were remembered. The newest segment, still
filling, is the item ``labels``, which also lists the full ones (``segments``); a full one is
``labels\\x1f<n>`` (``n`` rises with the order). A checkpoint rewrites only the segments whose
predictions changed — new predictions go to ``labels``; a join, an expiry or an eviction takes one
out of its segment — and deletes a full segment once it is empty (a tombstone:
:meth:`PartitionMonitor.state_items` gives ``None`` for it). So what a checkpoint writes follows
what changed, not how many predictions wait: as one item rewritten whole, 30,000 waiting
predictions cost 1.7 MB and about 0.1 s at every checkpoint.

Each segment is a labels item of format 3 (``core/state.py``):
``{format, kind: "labels", ids: [str], models: [str], predictions: [JSON text], times: i8}``, and
``labels`` has ``segments: [n]`` (ascending) when there are full segments. ``labels`` says which
full segments hold predictions: when it does not read, every pending prediction starts again (as
when it was the only item), and a full segment it does not list is deleted. A ``labels`` item
without ``segments`` (as written before the segments) reads as the newest segment, of any size,
and is cut into full ones as new predictions come.

>>> from collections import OrderedDict
>>> pending, seg = OrderedDict(), LabelSegments(size=2)
>>> for i in range(5):
...     pending[f"e{i}"] = ("m", 0.5, i); seg.add(f"e{i}")
>>> sorted(seg.items(pending))
['labels', 'labels\\x1f1', 'labels\\x1f2']
>>> for i in (0, 1, 2):
...     del pending[f"e{i}"]; seg.remove(f"e{i}")
>>> items = seg.items(pending); sorted(items), items["labels\\x1f1"]  # labels: its list of full segments changed
(['labels', 'labels\\x1f1', 'labels\\x1f2'], None)
>>> (restored, segments), rejected = restore_labels(seg.items(pending, only_changed=False))
>>> list(restored), sorted(segments.members), segments.open, rejected
(['e3', 'e4'], [2, 3], 3, [])
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Mapping

import numpy as np

from stream_monitor.core.state import FORMAT_VERSION, StateFormatError, _pack, decode_labels_item

SEGMENT_ENTRIES = 1024  # predictions per segment: about 60 KiB written when one changes
LABELS = "labels"  # the newest segment's item
SEALED = "labels\x1f"  # ... and the prefix of the full ones'
Entry = tuple[str, Any, int]  # (model, prediction, event time in ms)
_INF = float("inf")


def is_labels_key(key: str) -> bool:
    """Is ``key`` the item of a segment of the pending predictions?"""
    return key == LABELS or key.startswith(SEALED)


class LabelSegments:
    """Which segment holds each pending prediction, and the segments changed since the last checkpoint.

    The caller keeps the predictions themselves (an ordered map) and reports every prediction it
    remembers (:meth:`add`, after :meth:`remove` of an earlier one with the same id) and every one it
    lets go (:meth:`remove`).
    """

    __slots__ = ("size", "of", "members", "open", "changed", "stale")

    def __init__(self, size: int = SEGMENT_ENTRIES, open_segment: int = 1) -> None:
        self.size = size
        self.of: dict[str, int] = {}  # event id -> its segment
        self.members: dict[int, dict[str, None]] = {open_segment: {}}  # segment -> its ids, oldest first
        self.open = open_segment  # the segment new predictions go to (item ``labels``)
        self.changed: set[int] = set()
        self.stale: set[str] = set()  # items found on restore that no segment list names: deleted at the next checkpoint

    def add(self, event_id: str) -> None:
        """A prediction remembered: the newest."""
        members = self.members[self.open]
        if len(members) >= self.size:  # full: it is written once more, under its own key
            self.changed.add(self.open)
            self.open += 1
            members = self.members[self.open] = {}
        members[event_id] = None
        self.of[event_id] = self.open
        self.changed.add(self.open)

    def remove(self, event_id: str) -> None:
        """A prediction let go (joined to its label, expired or evicted)."""
        n = self.of.pop(event_id, None)
        if n is None:
            return
        members = self.members[n]
        del members[event_id]
        self.changed.add(n)
        if not members and n != self.open:
            del self.members[n]
            self.changed.add(self.open)  # the list of full segments changed

    def key(self, n: int) -> str:
        """The item name of segment ``n``."""
        return LABELS if n == self.open else f"{SEALED}{n}"

    def items(self, pending: Mapping[str, Entry], only_changed: bool = True) -> dict[str, bytes | None]:
        """The items of the changed segments (None: a full segment now empty), or of every segment when there are predictions."""
        out: dict[str, bytes | None] = {}
        if only_changed:
            which = sorted(self.changed)
            self.changed.clear()
            out.update(dict.fromkeys(self.stale))
            self.stale.clear()
        else:
            which = sorted(self.members) if pending else []
        for n in which:
            members = self.members.get(n)
            if members is None:
                out[self.key(n)] = None
            else:
                sealed = [k for k in self.members if k != self.open] if n == self.open else None
                out[self.key(n)] = encode_labels([(i, pending[i]) for i in members], sealed)
        return out


def _json_text(value: Any) -> str:
    """``json.dumps(value)``, quicker for a finite float or an int (the same text)."""
    t = type(value)
    if t is float and -_INF < value < _INF:
        return float.__repr__(value)
    if t is int:
        return int.__repr__(value)
    return json.dumps(value)


def encode_labels(entries: list[tuple[str, Entry]], segments: list[int] | None = None) -> bytes:
    """A labels item: (event id, (model, prediction, event time)) pairs, oldest first; ``segments``: the full segments (item ``labels``)."""
    item: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "kind": "labels",
        "ids": [i for i, _ in entries],
        "models": [e[0] for _, e in entries],
        "predictions": [_json_text(e[1]) for _, e in entries],
        "times": np.asarray([e[2] for _, e in entries], dtype="<i8").tobytes(),
    }
    if segments:
        item["segments"] = sorted(segments)
    return _pack(item)


def restore_labels(blobs: dict[str, bytes]) -> tuple[tuple[OrderedDict[str, Entry], LabelSegments], list[StateFormatError]]:
    """The pending predictions and their segments from the segment items; the errors of those that did not read.

    The full segments are those item ``labels`` lists; one it lists that does not read (or is
    missing) starts again alone; one it does not list (or all, when it does not read) is deleted at
    the next checkpoint. A prediction found in two segments (not written so) is kept in the newer.
    """
    rejected: list[StateFormatError] = []
    newest: OrderedDict[str, Entry] = OrderedDict()
    listed: list[int] = []
    try:
        if LABELS in blobs:
            newest, listed = decode_labels_item(blobs[LABELS])
    except StateFormatError as exc:
        rejected.append(exc)
    segments = LabelSegments(open_segment=max(listed, default=0) + 1)
    decoded: dict[int, OrderedDict[str, Entry]] = {}
    for n in listed:
        blob = blobs.get(f"{SEALED}{n}")
        try:
            if blob is None:
                raise StateFormatError(f"labels item {n}: missing")
            decoded[n] = decode_labels_item(blob)[0]
        except StateFormatError as exc:
            rejected.append(exc)
            segments.changed.update((n, segments.open))  # gone: delete it, and list the others without it
    keys = {f"{SEALED}{n}" for n in listed}
    segments.stale.update(key for key in blobs if key.startswith(SEALED) and key not in keys)
    decoded[segments.open] = newest
    pending: OrderedDict[str, Entry] = OrderedDict()
    for n in sorted(decoded):
        for event_id, entry in decoded[n].items():
            if event_id in pending:
                segments.remove(event_id)
                del pending[event_id]
            pending[event_id] = entry
            segments.members.setdefault(n, {})[event_id] = None
            segments.of[event_id] = n
    return (pending, segments), rejected
