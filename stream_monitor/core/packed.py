"""Float feature columns packed as float64 on their way from reading to judging (``PACKED_FORMAT``).

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

_FLOAT_OR_NONE = frozenset({float, type(None)})
_NONE = type(None)


def pack_columns(values: list[list[Any]], width: int) -> tuple[list[int], bytes, list[list[Any]]] | None:
    """(positions of the packed features, their columns as bytes, each row's other values) of rows of ``width``
    values each; None when no column is only finite floats and nulls (then the record stays ``COLUMNS_FORMAT``)."""
    if not values or not width:
        return None
    cols = list(zip(*values))
    packed: list[int] = []
    arrays: list[np.ndarray] = []
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
        kept.append(col)
    if not packed:
        return None
    data = np.concatenate(arrays).astype("<f8", copy=False).tobytes()
    rows = list(map(list, zip(*kept))) if kept else [[] for _ in values]
    return packed, data, rows


class Layout:
    """One record shape: all the feature names, which of them are packed, which travel in the rows (one object per
    distinct shape, so a batch's rows are told alike by identity)."""

    __slots__ = ("names", "packed", "packed_names", "kept_names", "order")

    def __init__(self, names: tuple[str, ...], packed: tuple[int, ...]) -> None:
        self.names = names
        self.packed = packed
        chosen = set(packed)
        self.packed_names = tuple(names[j] for j in packed)
        self.kept_names = tuple(n for j, n in enumerate(names) if j not in chosen)
        # per name, in order: (True, k) the k-th packed column, (False, k) the row's k-th value
        kp = kk = 0
        order = []
        for j in range(len(names)):
            if j in chosen:
                order.append((True, kp))
                kp += 1
            else:
                order.append((False, kk))
                kk += 1
        self.order = tuple(order)


_LAYOUTS: dict[tuple[tuple[str, ...], tuple[int, ...]], Layout] = {}


def layout_of(names: tuple[str, ...], packed: tuple[int, ...]) -> Layout:
    """The shared :class:`Layout` of these names with these packed positions."""
    key = (names, packed)
    got = _LAYOUTS.get(key)
    if got is None:
        if len(_LAYOUTS) >= 1024:  # (a bound: shapes that change all the time are only slower to gather)
            _LAYOUTS.clear()
        got = _LAYOUTS[key] = Layout(names, packed)
    return got


def valid_packing(names: Sequence[str], packed: Sequence[int], data: bytes, rows: int) -> bool:
    """Whether a record's ``packed`` positions and ``data`` fit its names and rows (ascending positions, at least one,
    8 bytes per packed value, no infinity: NaN is the only non-finite value packing writes)."""
    if not packed or any(not 0 <= j < len(names) for j in packed) or any(a >= b for a, b in zip(packed, packed[1:])):
        return False
    if len(data) != 8 * len(packed) * rows:
        return False
    return not np.isinf(np.frombuffer(data, dtype="<f8")).any()


class PackedBlock:
    """The packed columns of one record: ``arrays[k]`` the k-th packed feature's values (NaN: null), row by row."""

    __slots__ = ("layout", "arrays", "n")

    def __init__(self, layout: Layout, data: bytes, n: int) -> None:
        self.layout = layout
        self.n = n
        self.arrays = np.frombuffer(data, dtype="<f8").reshape(len(layout.packed), n) if n else np.zeros((len(layout.packed), 0))

    def values(self, at: int, kept: Sequence[Any]) -> tuple[Any, ...]:
        """Row ``at``'s values of every name, in order (``kept``: the row's own values)."""
        arrays = self.arrays
        out = []
        for is_packed, k in self.layout.order:
            if is_packed:
                v = float(arrays[k, at])
                out.append(None if v != v else v)
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
        records' arrays, in the batch's order), a tuple of values for the others."""
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
        if layout.kept_names:  # (a column at a time: zip(*rows) would make an iterator per row, for the collector to scan)
            kept = list(map(_KEPT, views))
            out.update((name, tuple(map(itemgetter(k), kept))) for k, name in enumerate(layout.kept_names))
        return {name: out[name] for name in layout.names}

