"""The predictions awaiting their label as state items, in segments: a checkpoint writes only what changed.

``PartitionMonitor.pending_labels`` (oldest first) is stored in segments of at most
:data:`SEGMENT_ENTRIES` predictions, in the order they were remembered. The newest segment, still
filling, is the item ``labels``, which also lists the full ones (``segments``); a full one is
``labels\\x1f<n>`` (``n`` rises with the order), written once, when it is full. New predictions go
to ``labels``. A prediction taken out of a full segment (joined to its label, expired or evicted)
does not rewrite that segment: ``labels`` marks its position in the segment's item (``gone``), until
at most a quarter (:data:`COMPACT`) of the predictions the item holds still wait, when the segment is
written again with those alone (its marks cleared), or none do, when it is deleted (a tombstone:
:meth:`PartitionMonitor.state_items` gives ``None`` for it). So what a checkpoint writes follows what
changed, not how many predictions wait: as one item rewritten whole, 30,000 waiting predictions cost
1.7 MB and about 0.1 s at every checkpoint; with a segment rewritten whenever a label took a
prediction out of it, labels arriving over hours rewrote every segment at every checkpoint.

Each segment is a labels item (``core/state.py``), of format 5 (:data:`LABELS_FORMAT`):
``{format, kind: "labels", ids: [str], model_names: [str], model_of: u2 | u4, times: i8}`` and either
``floats: f8`` (when every prediction is a float: no text to write or parse) or ``predictions: [JSON
text]``; ``model_of`` is, per prediction, the index of its model in ``model_names`` (u2, or u4 beyond
65,536 names, told apart by its length). ``labels`` has ``segments: [n]`` (ascending) when there are
full segments and, only when some prediction is marked, ``gone: [bytes]``, one per listed segment: the
positions of its item no longer waiting, bit ``i % 8`` of byte ``i // 8`` for position ``i``,
``(size + 7) // 8`` bytes (empty: none). Items of formats 3 and 4 (``models: [str]`` and ``predictions:
[JSON text]``, no marks) still read; a reader of format 4 rejects these (the predictions start again)
rather than bring marked ones back.

``labels`` says which full segments hold predictions: when it does not read, every pending
prediction starts again (as when it was the only item), and a full segment it does not list is
deleted; a listed one that does not read, is missing or does not fit its marks starts again alone.
A ``labels`` item without ``segments`` (as written before the segments) reads as the newest segment,
of any size, and is cut into full ones as new predictions come.

>>> from collections import OrderedDict
>>> pending, seg = OrderedDict(), LabelSegments(size=2)
>>> for i in range(5):
...     pending[f"e{i}"] = ("m", 0.5, i); seg.add(f"e{i}")
>>> sorted(seg.items(pending))
['labels', 'labels\\x1f1', 'labels\\x1f2']
>>> for i in (0, 1, 2):
...     del pending[f"e{i}"]; seg.remove(f"e{i}")
>>> items = seg.items(pending); sorted(items), items["labels\\x1f1"]  # 1 is empty; 2 stays, labels marks e2 in it
(['labels', 'labels\\x1f1'], None)
>>> decode_labels_head(items["labels"])[2]
{2: b'\\x01'}
>>> (restored, segments), rejected = restore_labels(seg.items(pending, only_changed=False))
>>> list(restored), sorted(segments.members), segments.open, rejected
(['e3', 'e4'], [2, 3], 3, [])
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Mapping

import numpy as np

from stream_monitor.core.state_codec import READABLE_FORMATS, StateFormatError, _Fields, _guarded, _pack, _unpack

SEGMENT_ENTRIES = 1024  # predictions per segment: about 60 KiB written when one is full
LABELS_FORMAT = 5  # the format of the labels items written (3 and 4 still read)
COMPACT = 4  # a full segment is written again once at most 1/COMPACT of the predictions its item holds still wait
LABELS = "labels"  # the newest segment's item
SEALED = "labels\x1f"  # ... and the prefix of the full ones'
Entry = tuple[str, Any, int]  # (model, prediction, event time in ms)
Entries = OrderedDict[str, Entry]
_INF = float("inf")


def is_labels_key(key: str) -> bool:
    """Is ``key`` the item of a segment of the pending predictions?"""
    return key == LABELS or key.startswith(SEALED)


class LabelSegments:
    """Which segment holds each pending prediction, where in its item, and the segments changed since the last checkpoint.

    The caller keeps the predictions themselves (an ordered map) and reports every prediction it
    remembers (:meth:`add`, after :meth:`remove` of an earlier one with the same id) and every one it
    lets go (:meth:`remove`).
    """

    __slots__ = ("size", "of", "members", "open", "changed", "stale", "stored", "gone")

    def __init__(self, size: int = SEGMENT_ENTRIES, open_segment: int = 1) -> None:
        self.size = size
        self.of: dict[str, int] = {}  # event id -> its segment
        # segment -> its ids, oldest first, each with its position in the full segment's item as written (-1: not written so)
        self.members: dict[int, dict[str, int]] = {open_segment: {}}
        self.open = open_segment  # the segment new predictions go to (item ``labels``)
        self.changed: set[int] = set()
        self.stale: set[str] = set()  # items found on restore that no segment list names: deleted at the next checkpoint
        self.stored: dict[int, int] = {}  # full segment -> predictions its item holds, as written
        self.gone: dict[int, bytearray] = {}  # full segment -> the positions of its item taken out since (a bitmap)

    def add(self, event_id: str) -> None:
        """A prediction remembered: the newest."""
        members = self.members[self.open]
        if len(members) >= self.size:  # full: it is written once more, under its own key
            self.changed.add(self.open)
            self.open += 1
            members = self.members[self.open] = {}
        members[event_id] = -1
        self.of[event_id] = self.open
        self.changed.add(self.open)

    def remove(self, event_id: str) -> None:
        """A prediction let go (joined to its label, expired or evicted)."""
        n = self.of.pop(event_id, None)
        if n is None:
            return
        members = self.members[n]
        pos = members.pop(event_id)
        if pos >= 0:  # in a full segment's item: marked in item labels, the segment's item stays
            bits = self.gone.get(n)
            if bits is None:
                bits = self.gone[n] = bytearray((self.stored[n] + 7) >> 3)
            bits[pos >> 3] |= 1 << (pos & 7)
            self.changed.add(self.open)
        else:
            self.changed.add(n)
        if not members and n != self.open:
            del self.members[n]
            self.stored.pop(n, None)
            self.gone.pop(n, None)
            self.changed.update((n, self.open))  # deleted, and the list of full segments changed

    def key(self, n: int) -> str:
        """The item name of segment ``n``."""
        return LABELS if n == self.open else f"{SEALED}{n}"

    def items(self, pending: Mapping[str, Entry], only_changed: bool = True) -> dict[str, bytes | None]:
        """The items of the changed segments (None: a full segment now empty), or of every segment when there are predictions.

        Every segment (``only_changed`` False) is written with the predictions still waiting and no
        marks, without changing what the next checkpoint writes (a state of its own, not the changelog's).
        """
        out: dict[str, bytes | None] = {}
        if not only_changed:
            if pending:
                for n, members in sorted(self.members.items()):
                    sealed = [k for k in self.members if k != self.open] if n == self.open else None
                    out[self.key(n)] = encode_labels([(i, pending[i]) for i in members], sealed)
            return out
        for n in self.gone:  # compact what little still waits
            if len(self.members[n]) * COMPACT <= self.stored[n]:
                self.changed.add(n)
        which = sorted(self.changed)
        self.changed.clear()
        out.update(dict.fromkeys(self.stale))
        self.stale.clear()
        head = False
        for n in which:
            members = self.members.get(n)
            if n == self.open:
                head = True
            elif members is None:
                out[self.key(n)] = None
            else:  # full since the last checkpoint, or compacted: its predictions in their new positions, no marks
                for pos, event_id in enumerate(members):
                    members[event_id] = pos
                self.stored[n] = len(members)
                head |= self.gone.pop(n, None) is not None
                out[self.key(n)] = encode_labels([(i, pending[i]) for i in members], None)
        if head:
            sealed = [k for k in self.members if k != self.open]
            gone = [bytes(self.gone.get(k, b"")) for k in sealed] if self.gone else None
            out[LABELS] = encode_labels([(i, pending[i]) for i in self.members[self.open]], sealed, gone)
        return out


def _json_text(value: Any) -> str:
    """``json.dumps(value)``, quicker for a finite float or an int (the same text)."""
    t = type(value)
    if t is float and -_INF < value < _INF:
        return float.__repr__(value)
    if t is int:
        return int.__repr__(value)
    return json.dumps(value)


def encode_labels(entries: list[tuple[str, Entry]], segments: list[int] | None = None, gone: list[bytes] | None = None) -> bytes:
    """A labels item (format 5): (event id, (model, prediction, event time)) pairs, oldest first; ``segments``: the full
    segments (item ``labels``), ``gone``: their marks, one per segment."""
    names: dict[str, int] = {}
    model_of = [names.setdefault(e[0], len(names)) for _, e in entries]
    predictions = [e[1] for _, e in entries]
    item: dict[str, Any] = {
        "format": LABELS_FORMAT,
        "kind": "labels",
        "ids": [i for i, _ in entries],
        "model_names": list(names),
        "model_of": np.asarray(model_of, dtype="<u2" if len(names) <= 1 << 16 else "<u4").tobytes(),
        "times": np.asarray([e[2] for _, e in entries], dtype="<i8").tobytes(),
    }
    if all(type(p) is float for p in predictions):  # the usual case: 8 bytes each, no text to write or parse
        item["floats"] = np.asarray(predictions, dtype="<f8").tobytes()
    else:
        item["predictions"] = [_json_text(p) for p in predictions]
    if segments:
        item["segments"] = sorted(segments)
        if gone is not None:
            item["gone"] = list(gone)
    return _pack(item)


def _prediction(text: str) -> Any:
    value = json.loads(text)
    scalar = (float, int, str, bool)
    if type(value) in scalar or (isinstance(value, dict) and all(type(v) in scalar or v is None for v in value.values())):
        return value
    raise StateFormatError("labels item: a prediction is not a scalar or a map of scalars")


def decode_labels_item(blob: bytes) -> tuple[Entries, list[int]]:
    """Decode and check a labels item: its predictions and the full segments it lists (``segments``, optional)."""
    return decode_labels_head(blob)[:2]


def decode_labels_head(blob: bytes) -> tuple[Entries, list[int], dict[int, bytes]]:
    """Decode and check a labels item: its predictions, the full segments it lists and their marks (``gone``, non-empty ones)."""
    f = _Fields(_unpack(blob, "labels", (*READABLE_FORMATS, LABELS_FORMAT)), "labels")
    ids = f.strings("ids")
    n = len(ids)
    times = f.array("times", "<i8", n)
    if f.obj["format"] == LABELS_FORMAT:
        names, model_of = f.strings("model_names"), f.get("model_of", bytes)
        index = f.array("model_of", "<u2" if len(model_of) == 2 * n else "<u4", n)
        if n and int(index.max()) >= len(names):
            raise f.fail("model_of", "a model beyond model_names")
        models = [names[i] for i in index.tolist()]
        floats = "floats" in f.obj
        predictions: list[Any] = f.array("floats", "<f8", n).tolist() if floats else f.strings("predictions")
    else:  # formats 3 and 4: a model name and a JSON text per prediction
        models, predictions, floats = f.strings("models"), f.strings("predictions"), False
    if not n == len(models) == len(predictions) or len(set(ids)) != n:
        raise f.fail("ids", "lengths differ or ids repeat")
    segments = f.get("segments", list) if "segments" in f.obj else []
    if not all(type(n) is int and 0 < n < 1 << 62 for n in segments) or any(a >= b for a, b in zip(segments, segments[1:])):
        raise f.fail("segments", "not ascending segment numbers")
    gone: dict[int, bytes] = {}
    if "gone" in f.obj:
        marks = f.get("gone", list)
        if f.obj["format"] != LABELS_FORMAT or len(marks) != len(segments) or not all(type(b) is bytes for b in marks):
            raise f.fail("gone", f"not one byte string per segment in an item of format {LABELS_FORMAT}")
        gone = {n: b for n, b in zip(segments, marks, strict=True) if b}
    values = predictions if floats else _guarded("labels item predictions", lambda: [_prediction(p) for p in predictions])
    return OrderedDict(zip(ids, zip(models, values, times.tolist(), strict=True), strict=True)), segments, gone


def _marked(entries: Entries, bits: bytes | None, n: int) -> list[bool] | None:
    """Which positions of segment ``n``'s item its marks take out (None: none); raise if they do not fit it."""
    if bits is None:
        return None
    size = len(entries)
    taken = np.unpackbits(np.frombuffer(bits, dtype=np.uint8), bitorder="little")
    if len(bits) != (size + 7) >> 3 or taken[size:].any():
        raise StateFormatError(f"labels item {n}: its marks ({len(bits)} bytes) do not fit its {size} predictions")
    return taken[:size].astype(bool).tolist()


def restore_labels(blobs: dict[str, bytes]) -> tuple[tuple[Entries, LabelSegments], list[StateFormatError]]:
    """The pending predictions and their segments from the segment items; the errors of those that did not read.

    The full segments are those item ``labels`` lists, less the predictions it marks; one it lists
    that does not read (or is missing, or its marks do not fit) starts again alone; one it does not
    list (or all, when it does not read) is deleted at the next checkpoint. A prediction found in two
    segments (not written so) is kept in the newer.
    """
    rejected: list[StateFormatError] = []
    newest: Entries = OrderedDict()
    listed: list[int] = []
    gone: dict[int, bytes] = {}
    try:
        if LABELS in blobs:
            newest, listed, gone = decode_labels_head(blobs[LABELS])
    except StateFormatError as exc:
        rejected.append(exc)
    segments = LabelSegments(open_segment=max(listed, default=0) + 1)
    decoded: dict[int, tuple[Entries, list[bool] | None]] = {}
    for n in listed:
        blob = blobs.get(f"{SEALED}{n}")
        try:
            if blob is None:
                raise StateFormatError(f"labels item {n}: missing")
            entries = decode_labels_item(blob)[0]
            decoded[n] = (entries, _marked(entries, gone.get(n), n))
        except StateFormatError as exc:
            rejected.append(exc)
            segments.changed.update((n, segments.open))  # gone: delete it, and list the others without it
    keys = {f"{SEALED}{n}" for n in listed}
    segments.stale.update(key for key in blobs if key.startswith(SEALED) and key not in keys)
    decoded[segments.open] = (newest, None)
    pending: Entries = OrderedDict()
    for n in sorted(decoded):
        entries, taken = decoded[n]
        full = n != segments.open
        if full:
            segments.stored[n] = len(entries)
            if taken is not None and any(taken):
                segments.gone[n] = bytearray(gone[n])
        members = segments.members.setdefault(n, {})
        for pos, (event_id, entry) in enumerate(entries.items()):
            if taken is not None and taken[pos]:
                continue
            if event_id in pending:
                segments.remove(event_id)
                del pending[event_id]
            pending[event_id] = entry
            members[event_id] = pos if full else -1
            segments.of[event_id] = n
        if full and not members:  # every prediction marked: delete it
            del segments.members[n]
            segments.stored.pop(n)
            segments.gone.pop(n, None)
            segments.changed.update((n, segments.open))
    return (pending, segments), rejected
