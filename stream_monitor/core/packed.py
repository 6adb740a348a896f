"""Float feature columns packed as float64 (``PACKED_FORMAT``), text ones coded (``CODED_FORMAT``), on their way from reading to judging.

A columnar rows record (:mod:`stream_monitor.core.exchange`) carries each row's feature values as
an array. When a feature's column in the record holds only finite floats and nulls (what a numeric
feature usually is), the reading side sends that column instead as 8-byte little-endian floats,
NaN for null: ``[PACKED_FORMAT, model, names, rows, packed, data]`` (``..., g, N]`` for a judging
group), where ``packed`` lists the positions in ``names`` of the packed features (ascending) and
``data`` holds their columns one after the other (column k's n values at ``8*k*n``); each row's
``features`` array holds the values of the other names only, in order.

Why: reading has just decoded those floats and finds them in the processor's cache; by the time
the judge gathered and classified them (after the hop, the event-time order and the rest of the
loop's work) they were not, and cost it ~110 ns a value. In a tight loop where everything stays
cached (``python -m bench.ab_hop --steps``, ``python -m bench.ab_judge --only stage2``) the move is
a wash: packing costs reading ~3 µs per record of the bench's workload, and saves the judge ~2.7;
in the running monitor (``python -m bench.run --only e0``, alternating with the commit before, 7
rounds) it gives ~11 % more records per CPU-second (BENCHMARKS.md). The judge's gathering takes a
batch's packed columns as slices of these arrays (:meth:`PackedRows.columns`), already classified
(:meth:`PackedColumn.classified`).

Nothing changes for judging: a packed column is exactly the floats and nulls it was (ints, bools,
text, non-finite numbers and anything else keep a column in the rows), a row's features map is
the same map in the same order (:meth:`PackedBlock.features`), and a packed column reaching a
categorical channel is unpacked to its Python values and classified as ever
(``tests/core/test_packed_columns.py``).

Text columns coded (``CODED_FORMAT``, what ``run``'s reading side sends, ``runtime/forward.py``): a column of only
texts and nulls travels as its distinct texts, in order of first appearance, and an int32 code per row (-1: null):
``[CODED_FORMAT, model, names, rows, packed, data, coded, categories, codes]`` (no packed column at all is allowed
beside a coded one). The judge classifies a gathered :class:`CodedColumn` by its distinct texts
(:meth:`CodedColumn.classified`: what :func:`~stream_monitor.core.classify.classify` gives its values) and a categorical
channel looks each distinct text up once, where before it read every value's text object three times (classify's type
and length passes, the reference-code lookup), objects the hop's decoding had made long before and no longer cached.
A coded column reaching a numeric channel is decoded to its texts and classified as ever (wrong types); judging is the
same, coded or not, and the golden stream through coded records gives the golden alerts
(``tests/core/test_coded_columns.py``).

>>> names = ("x", "c")
>>> packed, data, kept = pack_columns([[1.5, "a"], [None, "b"]], 2)
>>> packed, len(data), kept
([0], 16, [['a'], ['b']])
>>> block = PackedBlock(layout_of(names, (0,)), data, 2)
>>> block.features(1, ["b"])
{'x': None, 'c': 'b'}
"""

from __future__ import annotations

from operator import add, attrgetter, itemgetter
from typing import Any, Sequence

import numpy as np

from stream_monitor.core.detectors import FLAG_MISSING
from stream_monitor.core.reference import bounded_category

_FLOAT_OR_NONE = frozenset({float, type(None)})
_NONE = type(None)
_TEXT_OR_NONE = frozenset({str, type(None)})


def pack_columns(values: list[list[Any]], width: int) -> tuple[list[int], bytes, list[list[Any]]] | None:
    """(positions of the packed features, their columns as bytes, each row's other values) of rows of ``width``
    values each; None when no column is only finite floats and nulls (then the record stays ``COLUMNS_FORMAT``)."""
    got = pack_and_code(values, width, code=False)
    return None if got is None else got[:3]


def pack_and_code(values: list[list[Any]], width: int, code: bool = True) -> tuple[list[int], bytes, list[list[Any]], list[int], list[list[str]], bytes] | None:
    """:func:`pack_columns` and, with ``code``, the columns of text and nulls coded (``CODED_FORMAT``): (packed positions,
    their bytes, each row's other values, coded positions, each coded column's distinct texts in order of first
    appearance, the codes as int32 bytes, column after column, -1 for null); None when no column is packed or coded."""
    if not values or not width:
        return None
    cols = list(zip(*values))
    packed: list[int] = []
    arrays: list[np.ndarray] = []
    coded: list[int] = []
    categories: list[list[str]] = []
    codes: list[np.ndarray] = []
    kept: list[tuple[Any, ...]] = []
    for j, col in enumerate(cols):
        types = set(map(type, col))
        if float in types and types <= _FLOAT_OR_NONE:
            arr = np.array(col, dtype=np.float64)  # None -> NaN
            nulls = col.count(None) if _NONE in types else 0
            if np.count_nonzero(np.isfinite(arr)) == len(col) - nulls:  # no inf, no NaN of its own: NaN means null
                packed.append(j)
                arrays.append(arr)
                continue
        elif code and str in types and types <= _TEXT_OR_NONE:
            index = dict.fromkeys(col)  # the distinct texts in order of first appearance (C-level passes)
            index.pop(None, None)
            texts = list(index)
            index = dict(zip(texts, range(len(texts))))
            index[None] = -1
            coded.append(j)
            categories.append(texts)
            codes.append(np.fromiter(map(index.__getitem__, col), dtype=np.int32, count=len(col)))
            continue
        kept.append(col)
    if not packed and not coded:
        return None
    data = np.concatenate(arrays).astype("<f8", copy=False).tobytes() if arrays else b""
    rows = list(map(list, zip(*kept))) if kept else [[] for _ in values]
    return packed, data, rows, coded, categories, (np.concatenate(codes).astype("<i4", copy=False).tobytes() if codes else b"")


class Layout:
    """One record shape: all the feature names, which of them are packed, which coded, which travel in the rows (one
    object per distinct shape, so a batch's rows are told alike by identity)."""

    __slots__ = ("names", "packed", "coded", "packed_names", "coded_names", "kept_names", "order")

    def __init__(self, names: tuple[str, ...], packed: tuple[int, ...], coded: tuple[int, ...] = ()) -> None:
        self.names = names
        self.packed = packed
        self.coded = coded
        self.packed_names = tuple(names[j] for j in packed)
        self.coded_names = tuple(names[j] for j in coded)
        self.kept_names = tuple(n for j, n in enumerate(names) if j not in packed and j not in coded)
        # per name, in order: (PACKED, k) the k-th packed column, (CODED, k) the k-th coded one, (KEPT, k) the row's k-th value
        seen = {KEPT: 0, PACKED: 0, CODED: 0}
        order = []
        for j in range(len(names)):
            kind = PACKED if j in packed else CODED if j in coded else KEPT
            order.append((kind, seen[kind]))
            seen[kind] += 1
        self.order = tuple(order)


KEPT, PACKED, CODED = 0, 1, 2
_LAYOUTS: dict[tuple[tuple[str, ...], tuple[int, ...], tuple[int, ...]], Layout] = {}


def layout_of(names: tuple[str, ...], packed: tuple[int, ...], coded: tuple[int, ...] = ()) -> Layout:
    """The shared :class:`Layout` of these names with these packed and coded positions."""
    key = (names, packed, coded)
    got = _LAYOUTS.get(key)
    if got is None:
        if len(_LAYOUTS) >= 1024:  # (a bound: shapes that change all the time are only slower to gather)
            _LAYOUTS.clear()
        got = _LAYOUTS[key] = Layout(names, packed, coded)
    return got


def _positions(positions: Sequence[int], width: int) -> bool:
    return all(0 <= j < width for j in positions) and all(a < b for a, b in zip(positions, positions[1:]))


def valid_packing(names: Sequence[str], packed: Sequence[int], data: bytes, rows: int) -> bool:
    """Whether a record's ``packed`` positions and ``data`` fit its names and rows (ascending positions, at least one,
    8 bytes per packed value, no infinity: NaN is the only non-finite value packing writes)."""
    if not packed or not _positions(packed, len(names)):
        return False
    if len(data) != 8 * len(packed) * rows:
        return False
    return not np.isinf(np.frombuffer(data, dtype="<f8")).any()


def block_of(
    names: tuple[str, ...], packed: Sequence[int], data: bytes, rows: int, coded: Sequence[int] = (), categories: Sequence[list[str]] = (), codes: bytes = b""
) -> PackedBlock | None:
    """The :class:`PackedBlock` of a ``PACKED_FORMAT`` (no ``coded``) or ``CODED_FORMAT`` record's columns; None when they do
    not fit its names and rows: packed as :func:`valid_packing` says (none at all allowed beside coded columns), coded
    positions ascending and apart from the packed ones, each coded column's texts distinct and its codes (int32) -1 or
    one of them."""
    if not coded:
        return PackedBlock(layout_of(names, tuple(packed)), data, rows) if valid_packing(names, packed, data, rows) else None
    if (packed or data) and not valid_packing(names, packed, data, rows):
        return None
    if not _positions(coded, len(names)) or set(coded) & set(packed) or len(categories) != len(coded) or len(codes) != 4 * len(coded) * rows:
        return None
    if any(type(texts) is not list or set(map(type, texts)) - {str} or len(set(texts)) != len(texts) for texts in categories):
        return None
    array = np.frombuffer(codes, dtype="<i4").reshape(len(coded), rows)
    if rows and ((array < -1).any() or (array >= np.array([len(t) for t in categories])[:, None]).any()):
        return None
    return PackedBlock(layout_of(names, tuple(packed), tuple(coded)), data, rows, array, list(categories))


class PackedBlock:
    """The packed and coded columns of one record: ``arrays[k]`` the k-th packed feature's values (NaN: null), ``codes[k]``
    the k-th coded one's codes into ``categories[k]`` (-1: null), row by row."""

    __slots__ = ("layout", "arrays", "n", "codes", "categories")

    def __init__(self, layout: Layout, data: bytes, n: int, codes: np.ndarray | None = None, categories: list[list[str]] | None = None) -> None:
        self.layout = layout
        self.n = n
        self.arrays = np.frombuffer(data, dtype="<f8").reshape(len(layout.packed), n) if data else np.zeros((len(layout.packed), n))
        self.codes = codes if codes is not None else np.zeros((0, n), dtype=np.int32)
        self.categories = categories or []

    def values(self, at: int, kept: Sequence[Any]) -> tuple[Any, ...]:
        """Row ``at``'s values of every name, in order (``kept``: the row's own values)."""
        arrays, codes = self.arrays, self.codes
        out = []
        for kind, k in self.layout.order:
            if kind == PACKED:
                v = float(arrays[k, at])
                out.append(None if v != v else v)
            elif kind == CODED:
                c = int(codes[k, at])
                out.append(None if c < 0 else self.categories[k][c])
            else:
                out.append(kept[k])
        return tuple(out)

    def features(self, at: int, kept: Sequence[Any]) -> dict[str, Any]:
        """Row ``at``'s features map: the same names in the same order, the same values, as the record was read."""
        return dict(zip(self.layout.names, self.values(at, kept)))


class PackedColumn:
    """A gathered column of a packed feature (a batch's values, NaN for null): what the judge classifies in one step."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, i: int) -> float | None:
        v = float(self.array[i])
        return None if v != v else v

    def tolist(self) -> list[float | None]:
        """The Python values, null for NaN (what a categorical channel classifies)."""
        arr = self.array
        out: list[Any] = arr.tolist()
        nan = np.isnan(arr)
        if nan.any():
            for i in np.flatnonzero(nan).tolist():
                out[i] = None
        return out

    def classified(self) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """What :func:`~stream_monitor.core.classify.classify` gives a numeric channel for these values: flags
        (missing for null), the float64 payload, no wrong-type values."""
        arr = self.array
        flags = np.zeros(len(arr), dtype=np.uint8)
        nan = np.isnan(arr)
        if np.count_nonzero(nan):
            flags[nan] = FLAG_MISSING
        return flags, arr, []


class CodedColumn:
    """A gathered column of a coded feature: ``codes`` (int32, -1 for null) into ``categories`` (distinct texts). What
    the judge classifies by its distinct values (:meth:`classified`), and what a categorical channel then reads: its
    codes mapped once per distinct value (``ChannelMonitor._judge_values``), never a text per observation."""

    __slots__ = ("codes", "categories")

    def __init__(self, codes: np.ndarray, categories: list[str]) -> None:
        self.codes = codes
        self.categories = categories

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return CodedColumn(self.codes[i], self.categories)
        c = int(self.codes[i])
        return None if c < 0 else self.categories[c]

    def __iter__(self) -> Any:
        return iter(self.tolist())

    def tolist(self) -> list[str | None]:
        """The Python values, null for -1."""
        texts: list[Any] = [*self.categories, None]  # (code -1 reads the last)
        return list(map(texts.__getitem__, self.codes.tolist()))

    def classified(self, max_length: int) -> tuple[np.ndarray, CodedColumn, int]:
        """What :func:`~stream_monitor.core.classify.classify` gives a categorical channel for these values, by their
        distinct texts: flags (missing for null), the payload (this column, its texts cut to ``max_length`` as
        :func:`~stream_monitor.core.reference.bounded_category` cuts them) and how many values were cut."""
        codes = self.codes
        flags = np.zeros(len(codes), dtype=np.uint8)
        missing = codes < 0
        if np.count_nonzero(missing):
            flags[missing] = FLAG_MISSING
        texts = self.categories
        if max(map(len, texts), default=0) <= max_length:
            return flags, self, 0
        long = np.fromiter((len(t) > max_length for t in texts), dtype=bool, count=len(texts))
        cut = int(np.count_nonzero(long[codes[~missing]]))
        return flags, CodedColumn(codes, [bounded_category(t, max_length) for t in texts]), cut


_BLOCK, _AT, _KEPT = attrgetter("block"), attrgetter("at"), attrgetter("values")


class PackedRows(Sequence[tuple[Any, ...]]):
    """The rows of a uniform batch of packed views (one :class:`Layout`): each row's full values when asked for one,
    and whole columns (:meth:`columns`) the way :class:`~stream_monitor.core.gathering.FeatureBlock` takes them."""

    def __init__(self, views: list[Any], layout: Layout) -> None:
        self.views = views
        self.layout = layout

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [v.block.values(v.at, v.values) for v in self.views[i]]
        v = self.views[i]
        return v.block.values(v.at, v.values)

    def columns(self) -> dict[str, Any]:
        """Every name's column over the batch's rows: a :class:`PackedColumn` for a packed feature (slices of the
        records' arrays, in the batch's order), a :class:`CodedColumn` for a coded one, a tuple of values for the others."""
        views = self.views
        layout = self.layout
        blocks = list(map(_BLOCK, views))
        ats = list(map(_AT, views))
        uniq = list(dict.fromkeys(blocks))
        if len(uniq) == 1:
            whole = uniq[0].arrays
            index = np.array(ats, dtype=np.intp)
        else:
            base: dict[Any, int] = {}
            offset = 0
            for b in uniq:
                base[b] = offset
                offset += b.n
            whole = np.concatenate([b.arrays for b in uniq], axis=1)
            index = np.fromiter(map(add, map(base.__getitem__, blocks), ats), dtype=np.intp, count=len(ats))
        taken = whole[:, index]  # (a copy: each column's row contiguous)
        out: dict[str, Any] = dict(zip(layout.packed_names, map(PackedColumn, taken)))
        for k, name in enumerate(layout.coded_names):
            out[name] = _coded(uniq, k, index)
        if layout.kept_names:  # (a column at a time: zip(*rows) would make an iterator per row, for the collector to scan)
            kept = list(map(_KEPT, views))
            out.update((name, tuple(map(itemgetter(k), kept))) for k, name in enumerate(layout.kept_names))
        return {name: out[name] for name in layout.names}


def _coded(blocks: list[PackedBlock], k: int, index: np.ndarray) -> CodedColumn:
    """The k-th coded column of ``blocks`` (one after the other) at rows ``index``, their texts merged (codes renumbered)."""
    if len(blocks) == 1:
        return CodedColumn(blocks[0].codes[k][index], blocks[0].categories[k])
    merged: dict[str, int] = {}
    parts = []
    for b in blocks:
        renumber = np.fromiter((merged.setdefault(t, len(merged)) for t in b.categories[k]), dtype=np.int32, count=len(b.categories[k]))
        parts.append(np.append(renumber, np.int32(-1))[b.codes[k]])  # (code -1 reads the appended -1)
    return CodedColumn(np.concatenate(parts)[index], list(merged))
