"""Reading records of a shape already seen in one compiled pass: a batch of records straight to columns.

Most inference topics carry records written by one serializer: the same keys in the same order, the
same spacing, one model name; only the values change. :class:`Template` is such a shape, learnt
from a record that :func:`~stream_monitor.core.intake.plain_values` read (so one of the plainest
shape): its bytes with every value cut out, except the model's name, which belongs to the shape.
:func:`scan` matches a batch of records against a topic's templates in one compiled pass
(:func:`scan_python`, numba): each literal part compared byte for byte, each value read as a JSON
scalar — its kind, a float or integer value, and where its text lies — straight into per-record
arrays, with no Python object per value. What a record's values must be for the plain reading to
take it (``ts`` an integer in range, ``event_id`` text or an integer, ...) is checked on the
arrays; a record that does not match, or that needs more care (an escape or any byte beyond ASCII
in a text, an integer of 19 digits or more, ``ts`` as text), is left to the usual reading, which
is the reference: what a template reads is what that reading would have read, value for value
(``tests/core/test_scan.py`` checks the rows and the bytes sent against it).

Numbers: a float of at most 2**53 in its digits and a power of ten up to 22 is one exact IEEE
operation (what any correctly rounded parser gives); any other is parsed by Python's ``float``
(correctly rounded, as msgspec's parser). Non-finite results leave the record to the usual reading.

The rows come out in wire form (:class:`ScannedRows`, ``core/exchange.py``), their features still
as columns: the rows records encode them from the arrays (:meth:`ScannedRows.encode`, the same
bytes ``encode_row_lists`` writes of the same rows), and anything that needs the features as
objects gets them with :meth:`ScannedRows.materialize`.

>>> raws = [b'{"model":"m","ts":%d,"features":{"x":%d.5,"c":"a%d"},"prediction":null}' % (i, i, i % 2) for i in range(3)]
>>> t = Template.of(raws[0])
>>> t.model, t.names, len(t.slots)
('m', ('x', 'c'), 4)
"""

from __future__ import annotations

import hashlib
import math
from itertools import repeat
from operator import setitem
from typing import Any, Callable, Sequence

import numpy as np

from stream_monitor.core import events as ev
from stream_monitor.core.scan_kernel import FALSE, FLOAT, FLOATPY, INT, NULL, POW10, STR, TRUE, kernel, same_texts

EVENT_ID, VERSION, TS, FEATURE, PREDICTION, LABEL, LATENCY = range(7)  # what a slot of a template holds
_ROLES = {"event_id": EVENT_ID, "model_version": VERSION, "ts": TS, "prediction": PREDICTION, "label": LABEL, "latency_ms": LATENCY}
_WS = b" \t\n\r"
MIN_BATCH = 16  # fewer records than this are read the usual way (a compiled pass is not worth its set-up)
TEMPLATES_PER_TOPIC = 16  # shapes remembered per input topic (records of others are read the usual way)
_MAX_SAFE = 2**53


class Template:
    """One record shape: the literal bytes between values (``lit``, cut at ``bounds``), the role of each value
    (``slots``: (role, feature position)), the model's name and the features' names, in order."""

    __slots__ = ("model", "names", "slots", "lit", "bounds", "feature_slots", "role_slot", "key")

    def __init__(self, model: str, names: tuple[str, ...], slots: list[tuple[int, int]], literals: list[bytes]) -> None:
        self.model = model
        self.names = names
        self.slots = slots
        joined = b"".join(literals)
        self.key = (joined, tuple(map(len, literals)))
        self.lit = np.frombuffer(joined or b" ", dtype=np.uint8)  # (read-only, as the kernel's signature says)
        self.bounds = np.concatenate([[0], np.cumsum([len(p) for p in literals])]).astype(np.int64)
        self.feature_slots = np.array([s for s, (role, _) in enumerate(slots) if role == FEATURE], dtype=np.intp)
        self.role_slot = {role: s for s, (role, _) in enumerate(slots) if role != FEATURE}

    @classmethod
    def of(cls, raw: bytes) -> Template | None:
        """The shape of ``raw`` (a record :func:`~stream_monitor.core.intake.plain_values` took), or None when it is not
        one a template can hold (a nested prediction, no ``ts``, no features, an escape or a byte beyond ASCII in a key or
        the model's name, a key twice)."""
        try:
            return _Builder(raw).build()
        except (ValueError, IndexError):
            return None


class _Builder:
    """Cuts a record into literal parts and values (a small JSON reader of the plainest shape only)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.p = 0
        self.literals: list[bytes] = []
        self.slots: list[tuple[int, int]] = []
        self.lit_start = 0

    def ws(self) -> None:
        while self.p < len(self.raw) and self.raw[self.p] in _WS:
            self.p += 1

    def expect(self, c: int) -> None:
        self.ws()
        if self.raw[self.p] != c:
            raise ValueError("unexpected byte")
        self.p += 1

    def key(self) -> str:
        self.ws()
        raw, p = self.raw, self.p
        if raw[p] != 34:
            raise ValueError("not a key")
        q = raw.index(b'"', p + 1)
        text = raw[p + 1 : q]
        if b"\\" in text or any(b < 32 or b >= 128 for b in text):
            raise ValueError("a key that needs care")
        self.p = q + 1
        return text.decode("ascii")

    def slot(self, role: int, at: int) -> None:
        self.ws()
        self.literals.append(self.raw[self.lit_start : self.p])
        self.p = _scalar_end(self.raw, self.p)
        self.lit_start = self.p
        self.slots.append((role, at))

    def members(self) -> Any:
        """The keys of the object that starts here, one by one (the caller reads each one's value); ValueError on a key twice."""
        self.expect(123)
        seen: set[str] = set()
        while True:
            k = self.key()
            if k in seen:
                raise ValueError("a key twice")
            seen.add(k)
            self.expect(58)
            self.ws()
            yield k
            self.ws()
            if self.raw[self.p] == 44:
                self.p += 1
                continue
            self.expect(125)
            return

    def build(self) -> Template | None:
        raw = self.raw
        seen: set[str] = set()
        model, names = None, None
        for k in self.members():
            seen.add(k)
            if k == "model":
                q = _scalar_end(raw, self.p)
                if raw[self.p] != 34 or b"\\" in raw[self.p : q] or any(b < 32 or b >= 128 for b in raw[self.p + 1 : q - 1]):
                    return None
                model = raw[self.p + 1 : q - 1].decode("ascii")
                self.p = q
            elif k == "features":
                names = []
                for name in self.members():
                    names.append(name)
                    self.slot(FEATURE, len(names) - 1)
            elif k in _ROLES:
                self.slot(_ROLES[k], 0)
            else:
                return None
        self.ws()
        if self.p != len(raw) or model is None or not names or "ts" not in seen or not 0 < len(model) <= 256:
            return None
        self.literals.append(raw[self.lit_start :])
        return Template(model, tuple(names), self.slots, self.literals)


def _scalar_end(raw: bytes, p: int) -> int:
    """Where the JSON scalar starting at ``p`` ends (a text without escapes, a number, null, true or false); ValueError else."""
    c = raw[p]
    if c == 34:
        q = raw.index(b'"', p + 1)
        if b"\\" in raw[p:q]:
            raise ValueError("an escape")
        return q + 1
    for word in (b"null", b"true", b"false"):
        if raw.startswith(word, p):
            return p + len(word)
    q = p
    while q < len(raw) and raw[q] in b"+-.0123456789eE":
        q += 1
    if q == p:
        raise ValueError("not a scalar")
    return q



_TEMPLATES: dict[str, list[Template]] = {}


def templates_of(topic: str) -> list[Template]:
    """The shapes learnt on ``topic`` (at most :data:`TEMPLATES_PER_TOPIC`; 64 topics remembered)."""
    got = _TEMPLATES.get(topic)
    if got is None:
        if len(_TEMPLATES) >= 64:
            _TEMPLATES.clear()
        got = _TEMPLATES[topic] = []
    return got


class Scan:
    """One template's records of a batch: their positions in the batch (``at``) and their values' arrays (one row per record)."""

    __slots__ = ("template", "at", "kinds", "fvals", "ivals", "spa", "spb", "text", "data", "_strs")

    def __init__(
        self, template: Template, at: np.ndarray, kinds: np.ndarray, fvals: np.ndarray, ivals: np.ndarray, spa: np.ndarray, spb: np.ndarray, text: str, data: np.ndarray
    ) -> None:
        self.template = template
        self.at = at
        self.kinds = kinds
        self.fvals = fvals
        self.ivals = ivals
        self.spa = spa
        self.spb = spb
        self.text = text  # the batch's bytes as latin-1 text (a scanned text is ASCII: its slice is the value)
        self.data = data  # the same bytes, as the kernel read them
        self._strs: dict[int, tuple[list[str], np.ndarray]] = {}

    def values(self, s: int, idx: np.ndarray) -> list[Any]:
        """Value ``s`` of the records at ``idx`` as the usual reading gives it (Python objects)."""
        kinds = self.kinds[idx, s]
        first = int(kinds[0]) if len(kinds) else FLOAT
        if (kinds == first).all():
            if first == FLOAT:
                return self.fvals[idx, s].tolist()  # type: ignore[no-any-return]
            if first == NULL:
                return [None] * len(idx)
            if first == INT:
                return self.ivals[idx, s].tolist()  # type: ignore[no-any-return]
            if first == STR:
                if self.template.slots[s][0] == EVENT_ID:  # (distinct, as a rule: sliced, not coded)
                    text = self.text
                    return [text[a:b] for a, b in zip(self.spa[idx, s].tolist(), self.spb[idx, s].tolist())]
                texts, codes = self.texts(s)
                return list(map(texts.__getitem__, codes[idx].tolist()))
        text = self.text
        out: list[Any] = []
        for k, f, i, a, b in zip(kinds.tolist(), self.fvals[idx, s].tolist(), self.ivals[idx, s].tolist(), self.spa[idx, s].tolist(), self.spb[idx, s].tolist()):
            out.append(f if k == FLOAT else text[a:b] if k == STR else None if k == NULL else i if k == INT else k == TRUE)
        return out

    def texts(self, s: int) -> tuple[list[str], np.ndarray]:
        """Value ``s`` of every record of the scan as codes (int32, -1 for null) into its distinct texts, in order of first
        appearance (asked for a column of texts and nulls only)."""
        got = self._strs.get(s)
        if got is None:
            got = self._strs[s] = self._texts(s)
        return got

    def _texts(self, s: int) -> tuple[list[str], np.ndarray]:
        text = self.text
        is_text = self.kinds[:, s] == STR
        where = np.flatnonzero(is_text)
        spa, spb = self.spa[where, s], self.spb[where, s]
        hashes = self.ivals[where, s]
        if len(hashes) and (hashes == hashes[0]).all():  # one text (a model version, say): no sort
            first, inverse = np.zeros(1, dtype=np.int64), np.zeros(len(hashes), dtype=np.int64)
        else:
            first, inverse = np.unique(hashes, return_index=True, return_inverse=True)[1:]
        same = same_texts()
        if same is not None and same(self.data, spa, spb, first.astype(np.int64), inverse.astype(np.int64).ravel()):
            order = np.argsort(first, kind="stable")  # the distinct texts in order of first appearance
            rank = np.empty(len(order), dtype=np.int32)
            rank[order] = np.arange(len(order), dtype=np.int32)
            texts = [text[a:b] for a, b in zip(spa[first[order]].tolist(), spb[first[order]].tolist())]
            codes = np.full(len(is_text), -1, dtype=np.int32)
            codes[where] = rank[inverse.ravel()]
            return texts, codes
        index: dict[str, int] = {}  # two texts of one hash: told apart by their text
        add = index.setdefault
        out = [add(text[a:b], len(index)) if k == STR else -1 for k, a, b in zip(self.kinds[:, s].tolist(), self.spa[:, s].tolist(), self.spb[:, s].tolist())]
        return list(index), np.array(out, dtype=np.int32)


def scan(spec: Any, topic: str, values: Sequence[bytes], templates: list[Template], plain: Callable[[bytes], Any]) -> tuple[list[Scan], np.ndarray] | None:
    """The records of ``values`` (one input partition's batch) that match one of ``templates`` (in order, learning a new one
    from the first record left when there is room and ``plain`` reads it: ``intake.plain_values``), as one :class:`Scan`
    per template; and the positions of the records left to the usual reading. None when there is no kernel."""
    run = kernel()
    if run is None:
        return None
    buf = b"".join(values)
    lens = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    ends = np.cumsum(lens)
    starts = ends - lens
    data = np.frombuffer(buf or b" ", dtype=np.uint8)  # (read-only, as the kernel's signature says)
    text = buf.decode("latin-1")
    pending = np.flatnonzero(lens <= spec.max_record_bytes)
    left = [np.flatnonzero(lens > spec.max_record_bytes)]
    out: list[Scan] = []
    tried = 0
    learnt = 0
    while pending.size and tried <= len(templates):
        if tried == len(templates):  # no template left to try: learn one from the first record left (twice per batch at most)
            if learnt >= 2 or len(templates) >= TEMPLATES_PER_TOPIC:
                break
            learnt += 1
            raw = values[int(pending[0])]
            t = Template.of(raw) if plain(raw) is not None else None
            if t is None or any(t.key == u.key for u in templates):
                left.append(pending[:1])
                pending = pending[1:]
                continue
            templates.append(t)
        t = templates[tried]
        tried += 1
        n, width = len(pending), len(t.slots)
        # (not zeroed: a matched record's every value is written, with what its kind reads; the rest is never read)
        kinds = np.empty((n, width), dtype=np.int8)
        fvals = np.empty((n, width))
        ivals = np.empty((n, width), dtype=np.int64)
        spa = np.empty((n, width), dtype=np.int64)
        spb = np.empty((n, width), dtype=np.int64)
        ok = np.zeros(n, dtype=np.uint8)
        if not run(data, starts[pending], ends[pending], t.lit, t.bounds, kinds, fvals, ivals, spa, spb, ok, POW10):
            continue
        good = ok.astype(bool)
        _check(t, kinds, fvals, ivals, spa, spb, text, good)
        if good.all():  # (as a rule: the arrays as they are)
            out.append(Scan(t, pending, kinds, fvals, ivals, spa, spb, text, data))
            pending = pending[:0]
        elif good.any():
            keep = np.flatnonzero(good)
            out.append(Scan(t, pending[keep], kinds[keep], fvals[keep], ivals[keep], spa[keep], spb[keep], text, data))
            pending = pending[~good]
    left.append(pending)
    return out, np.sort(np.concatenate(left))


def _check(t: Template, kinds: np.ndarray, fvals: np.ndarray, ivals: np.ndarray, spa: np.ndarray, spb: np.ndarray, text: str, good: np.ndarray) -> None:
    """Leave to the usual reading (``good`` False) what it must decide: values of a kind the plain reading does not take as
    they are (``ts`` not an integer in range, ``event_id`` or ``model_version`` not text, integer or null, ``latency_ms``
    beyond 2**53 or not a number), and floats Python parses (``FLOATPY``) that are not finite."""
    role = t.role_slot
    s = role[TS]
    good &= (kinds[:, s] == INT) & (ivals[:, s] >= 0) & (ivals[:, s] <= ev.MAX_EPOCH_MS)
    for r in (EVENT_ID, VERSION):
        if r in role:
            k = kinds[:, role[r]]
            good &= (k == STR) | (k == INT) | (k == NULL)
    if LATENCY in role:
        s = role[LATENCY]
        k = kinds[:, s]
        good &= (k == FLOAT) | (k == FLOATPY) | (k == NULL) | ((k == INT) & (np.abs(ivals[:, s]) <= _MAX_SAFE))
    slow = np.argwhere((kinds == FLOATPY) & good[:, None])
    for r, s in slow.tolist():
        v = float(text[spa[r, s] : spb[r, s]])
        if math.isfinite(v):
            fvals[r, s] = v
            kinds[r, s] = FLOAT
        else:
            good[r] = False


_tie_state = hashlib.blake2b(digest_size=8).copy


def scanned_rows(sc: Scan, topic: str, partition: int, records: Sequence[Any], inference: int) -> ScannedRows:
    """The wire rows of a scan's records (``core/intake.py``'s, features left in the scan's columns)."""
    t = sc.template
    role = t.role_slot
    n = len(sc.at)
    idx = np.arange(n)
    recs = [records[i] for i in sc.at.tolist()]
    fresh, from_bytes = _tie_state, int.from_bytes
    ties = []
    for rec in recs:
        tie = fresh()
        tie.update(rec.value)
        ties.append(from_bytes(tie.digest(), "big", signed=True))
    def none() -> Any:
        return repeat(None, n)

    def ids(r: int) -> Any:
        if r not in role:
            return none()
        s = role[r]
        if (sc.kinds[:, s] == INT).any():
            return [str(v) if type(v) is int else v for v in sc.values(s, idx)]
        return sc.values(s, idx)

    latency = sc.values(role[LATENCY], idx) if LATENCY in role else none()
    if LATENCY in role and (sc.kinds[:, role[LATENCY]] == INT).any():
        latency = [float(v) if type(v) is int else v for v in latency]
    rows = list(
        map(
            list,
            zip(
                repeat(inference, n), repeat(topic, n), repeat(partition, n), [r.offset for r in recs], [r.timestamp for r in recs],
                sc.ivals[:, role[TS]].tolist(), ties, repeat(0, n), ids(EVENT_ID), ids(VERSION), none(),
                sc.values(role[PREDICTION], idx) if PREDICTION in role else none(), sc.values(role[LABEL], idx) if LABEL in role else none(),
                latency, map(list, repeat((), n)),
            ),
        )
    )  # fmt: skip
    return ScannedRows(rows, sc, idx)


class ScannedRows(list):  # type: ignore[type-arg]
    """A model's rows in wire form whose features are still the scan's columns (``row[10]`` None until
    :meth:`materialize`); a slice is one too. ``exchange.encode_row_lists`` encodes them from the columns."""

    def __init__(self, rows: list[list[Any]], sc: Scan, idx: np.ndarray) -> None:
        super().__init__(rows)
        self.scan = sc
        self.idx = idx

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return ScannedRows(list.__getitem__(self, i), self.scan, self.idx[i])
        return list.__getitem__(self, i)

    def materialize(self) -> list[list[Any]]:
        """The rows with their features objects (a plain list of the same row lists, ``row[10]`` set)."""
        sc, idx = self.scan, self.idx
        names = sc.template.names
        cols = [sc.values(s, idx) for s in sc.template.feature_slots.tolist()]
        list(map(setitem, self, repeat(10, len(self)), map(dict, map(zip, repeat(names), zip(*cols)))))
        return list(self)

    def columns(self, pack: bool, code: bool) -> tuple[list[str], tuple[list[int], bytes, list[list[Any]], list[int], list[list[str]], bytes] | None, list[list[Any]]]:
        """(names, what ``packed.pack_and_code`` gives of these rows' values, each row's values when it gives None)."""
        sc, idx = self.scan, self.idx
        slots = sc.template.feature_slots
        names = list(sc.template.names)
        kinds = sc.kinds[idx][:, slots].astype(np.int32)
        bits = np.bitwise_or.reduce(np.left_shift(1, kinds), axis=0).tolist() if len(idx) else [0] * len(slots)
        packed, coded, kept, categories, codes = [], [], [], [], []
        f_null, s_null = (1 << FLOAT) | (1 << NULL), (1 << STR) | (1 << NULL)
        for j, b in enumerate(bits):
            s = int(slots[j])
            if pack and b & (1 << FLOAT) and not b & ~f_null:
                packed.append(j)
            elif pack and code and b & (1 << STR) and not b & ~s_null:
                texts, all_codes = sc.texts(s)
                chunk = all_codes[idx]
                present = chunk[chunk >= 0]
                uniq, first = np.unique(present, return_index=True)
                order = uniq[np.argsort(first)]
                remap = np.full(len(texts) + 1, -1, dtype=np.int32)
                remap[order] = np.arange(len(order), dtype=np.int32)
                coded.append(j)
                categories.append([texts[c] for c in order.tolist()])
                codes.append(remap[chunk])  # (code -1 reads the last entry, -1)
            else:
                kept.append(j)
        kept_values = [sc.values(int(slots[j]), idx) for j in kept]
        rows = list(map(list, zip(*kept_values))) if kept_values else [[] for _ in idx]
        if not packed and not coded:
            return names, None, rows
        data = b""
        if packed:
            arr = sc.fvals[idx][:, slots[packed]]
            null = sc.kinds[idx][:, slots[packed]] == NULL
            if null.any():
                arr[null] = np.nan
            data = np.ascontiguousarray(arr.T).astype("<f8", copy=False).tobytes()
        code_bytes = np.concatenate(codes).astype("<i4", copy=False).tobytes() if codes else b""
        return names, (packed, data, rows, coded, categories, code_bytes), rows
