"""Gathering a batch's feature values into one column per feature, per model (what keeps judging fast).

:class:`FeatureBlock` takes one model's records of a batch and, at the end, builds each feature's
column with one C-level pass (:func:`_whole_columns`), or takes the columns from
:func:`uniform_columns` when every record of the batch has exactly the same features, all of them
channels already (then no record can discover one and the per-record check is skipped). Rows read
from columnar rows records (:class:`~stream_monitor.core.exchange.ColumnsView`) sharing one list of
names are such a batch as they are: their values are the rows, no features object is made.

:func:`gather_batch` is the judging step's gathering (``PartitionMonitor._gather``): every row's
values per (model, channel), features through the model's :class:`FeatureBlock`.
"""

from __future__ import annotations

from itertools import repeat
from operator import attrgetter, itemgetter
from typing import Any, Sequence

import numpy as np

from stream_monitor.core.batch import Batch, extras
from stream_monitor.core.exchange import ColumnsView
from stream_monitor.core.model_monitor import AllMissing, ModelMonitor
from stream_monitor.core.packed import CodedColumn, PackedColumn, PackedRows

_MISSING: Any = object()
_LIMITED: Any = object()  # a model refused by the models limit (in a batch's block table)


def _whole_columns(feats: list[dict[str, Any]], names: list[str]) -> dict[str, list[Any]]:
    """The columns of ``names`` over ``feats`` when every record has every name (one C-level pass), else {}.

    >>> _whole_columns([{"a": 1, "b": 2}, {"a": 3, "b": 4, "c": 5}], ["a", "b"])
    {'a': [1, 3], 'b': [2, 4]}
    >>> _whole_columns([{"a": 1, "b": 2}, {"a": 3}], ["a", "b"])
    {}
    """
    if len(names) < 2:
        return {}
    try:
        tuples = list(map(itemgetter(*names), feats))
    except KeyError:  # some record lacks a name: value by value, with None for the missing ones
        return {}
    return {name: list(col) for name, col in zip(names, zip(*tuples))}


_MODEL_OF, _FEATURES_OF, _EVENT_OF = attrgetter("event.model"), attrgetter("event.features"), attrgetter("event")
_NAMES_OF, _VALUES_OF, _BLOCK_OF = attrgetter("names"), attrgetter("values"), attrgetter("block")


def uniform_columns(decoded: list[Any]) -> tuple[str, tuple[str, ...], list[Sequence[Any]]] | None:
    """(model, names, one tuple of values per row) when every row is of one model and its features object has
    exactly the same (at least two) names; else None. One C-level pass: what :class:`FeatureBlock` needs to
    skip its per-row check for new features, and the values of its whole columns. Rows read from columnar
    rows records (:class:`~stream_monitor.core.exchange.ColumnsView`, names shared) give their value lists
    as they are: no features object is made.

    >>> from types import SimpleNamespace as E
    >>> rows = [E(event=E(model="m", features={"a": i, "b": -i})) for i in range(3)]
    >>> uniform_columns(rows)
    ('m', ('a', 'b'), [(0, 0), (1, -1), (2, -2)])
    >>> rows[1].event.features = {"a": 1, "c": 2}; uniform_columns(rows) is None
    True
    """
    models = set(map(_MODEL_OF, decoded))
    if len(models) != 1:
        return None
    views = list(map(_EVENT_OF, decoded))
    if set(map(type, views)) == {ColumnsView}:  # read from columnar rows records: the names are shared, the values are rows already
        names_of = set(map(id, map(_NAMES_OF, views)))
        if len(names_of) == 1 and len(views[0].names) >= 2:
            blocks = list(map(_BLOCK_OF, views))
            if not any(blocks):  # (no packed columns)
                return models.pop(), views[0].names, list(map(_VALUES_OF, views))
            layouts = {b.layout if b is not None else None for b in blocks}
            if len(layouts) == 1:  # every row's record packed the same columns: the rows give whole columns (core/packed.py)
                return models.pop(), views[0].names, PackedRows(views, layouts.pop())
    feats = list(map(_FEATURES_OF, decoded))
    if type(feats[0]) is not dict or len(feats[0]) < 2:
        return None
    names = tuple(feats[0])
    try:
        if set(map(len, feats)) != {len(names)}:
            return None
        tuples = list(map(itemgetter(*names), feats))  # every row has every name, and no other
    except (KeyError, TypeError):  # a row without features, or lacking a name
        return None
    return models.pop(), names, tuples


def uniform_by_model(decoded: list[Any]) -> dict[str, tuple[tuple[str, ...], list[Sequence[Any]], list[int] | None]]:
    """:func:`uniform_columns` of each model's rows of a batch: model -> (names, one row of values per row of the
    model, in the batch's order, and ``positions``: a row of the batch -> its place among its model's rows, or
    None when the batch is the model's alone). Models whose rows are not uniform are left out. A judge's batch
    holds the rows of every model of its partition in event-time order, interleaved; each model's columns are
    still whole.

    >>> from types import SimpleNamespace as E
    >>> rows = [E(event=E(model=m, features={"a": i, "b": -i})) for i, m in enumerate("xyx")]
    >>> uniform_by_model(rows)
    {'x': (('a', 'b'), [(0, 0), (2, -2)], [0, 0, 1]), 'y': (('a', 'b'), [(1, -1)], [0, 0, 1])}
    """
    models = list(map(_MODEL_OF, decoded))
    if len(set(models)) < 2:  # one model: its rows whole, or value by value
        whole = uniform_columns(decoded)
        return {} if whole is None else {whole[0]: (whole[1], whole[2], None)}
    rows_of: dict[str, list[int]] = {}
    for row, model in enumerate(models):
        rows_of.setdefault(model, []).append(row)
    out: dict[str, tuple[tuple[str, ...], list[Sequence[Any]], list[int] | None]] = {}
    positions = [0] * len(decoded)  # (shared: each row is of one model)
    for model, rows in rows_of.items():
        u = uniform_columns([decoded[r] for r in rows])
        if u is None:
            continue
        for at, r in enumerate(rows):
            positions[r] = at
        out[model] = (u[1], u[2], positions)
    return out


def _features(uniform: tuple[tuple[str, ...], list[Sequence[Any]], list[int] | None], row: int) -> dict[str, Any]:
    """Row ``row``'s features object (``row`` of the batch), made from a trusted model's names and values (:meth:`FeatureBlock.trust`)."""
    positions = uniform[2]
    return dict(zip(uniform[0], uniform[1][row if positions is None else positions[row]]))


class _Made(Sequence[dict[str, Any]]):
    """The features objects of every row of a trusted batch, each made when looked at (:meth:`FeatureBlock.flush`
    looks only at the first, unless a column starts after the first row)."""

    def __init__(self, uniform: tuple[tuple[str, ...], list[Sequence[Any]], list[int] | None]) -> None:
        self.uniform = (uniform[0], uniform[1], None)  # (indexed by the place among the model's rows)

    def __len__(self) -> int:
        return len(self.uniform[1])

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [_features(self.uniform, r) for r in range(len(self))[i]]
        return _features(self.uniform, range(len(self))[i])


class FeatureBlock:
    """One model's records with a features object in a batch, gathered column-wise at the end.

    ``segments`` marks where the gathered feature set changed (a feature was discovered), so a
    feature's column starts at the first record that had it. When a feature name starts with
    "__" (it could share a column with a reserved channel) the block switches to value-by-value
    gathering (``direct``) for the rest of the batch.
    """

    __slots__ = ("model", "name", "rows", "feats", "segments", "gather", "direct", "keys", "stamp", "uniform", "offered")

    def __init__(self, model: ModelMonitor, name: str | None = None) -> None:
        self.model = model
        self.name = name or model.model  # the columns' model key: a judging group's judge name (core/groups.py)
        self.rows: list[int] = []
        self.feats: list[dict[str, Any]] = []
        self.segments: list[tuple[int, tuple[tuple[int, str], ...]]] = []
        self.gather: tuple[tuple[int, str], ...] | None = None
        self.direct = False
        self.keys = model.channels.keys()  # (a live view: channels are only ever added)
        self.stamp = (-1, -1)  # (known features, channels) when ``gather`` was taken
        self.uniform: tuple[tuple[str, ...], list[tuple[Any, ...]], list[int] | None] | None = None  # see trust()
        self.offered: tuple[tuple[str, ...], list[tuple[Any, ...]], list[int] | None] | None = None  # trust() that waits for the first record's channels

    def trust(self, names: tuple[str, ...], tuples: list[tuple[Any, ...]], positions: list[int] | None = None) -> None:
        """Every record of the model in the batch has exactly the features ``names``, with values ``tuples``
        (:func:`uniform_by_model`; ``positions``: a row of the batch -> its place in ``tuples``, None when the
        batch is the model's alone): when they are all channels already (none reserved-looking), no record can
        discover a feature (channels only grow), so :meth:`add` skips that check and :meth:`flush` takes
        the whole columns from ``tuples``. Called before the first :meth:`add`.

        When some of ``names`` are no channels yet (a model's first batch, a new feature), the first
        :meth:`add` discovers them from the first record's features object as ever, and trusts the
        batch from then on if they are all channels by then (a null or refused one keeps the batch
        value by value).
        """
        if any(name.startswith("__") for name in names):
            return
        if self.keys >= set(names):
            self.uniform = (names, tuples, positions)
        else:
            self.offered = (names, tuples, positions)

    def switch(self, gather: tuple[tuple[int, str], ...], columns: dict, first: dict) -> None:
        """Start a new segment with the model's current feature set (or go value by value)."""
        self.gather = gather
        if self.direct:
            return
        if any(name.startswith("__") for _, name in gather):
            self.flush(columns, first, None)
            self.direct = True
            return
        self.segments.append((len(self.rows), gather))

    def add(self, row: int, feats: dict[str, Any] | None, columns: dict, first: dict) -> None:
        """Take one record's features object (discovering new features first); None when :meth:`trust` holds
        the batch's values (then no features object is kept: :meth:`flush` makes them only if it needs them)."""
        m = self.model
        uniform = self.uniform
        keys = self.keys
        if self.uniform is None and not keys >= feats.keys():
            m.discover_features(feats)
            offered, self.offered = self.offered, None
            if offered is not None and not self.rows and keys >= set(offered[0]):  # the first record made them all channels
                self.uniform = uniform = offered
                feats = None  # (as if trusted from the start: flush makes the features objects only if it needs them)
        stamp = self.stamp
        if stamp[1] != len(keys) or stamp[0] != len(m.known_features):  # both only grow: unchanged lengths, same gather
            self.stamp = (len(m.known_features), len(keys))
            gather = m.gather()
            if gather is not self.gather:
                self.switch(gather, columns, first)
        if self.direct:
            self.add_direct(row, feats if feats is not None else _features(uniform, row), columns, first)  # type: ignore[arg-type]
        else:
            self.rows.append(row)
            if feats is not None:
                self.feats.append(feats)

    def add_direct(self, row: int, feats: dict[str, Any], columns: dict, first: dict) -> None:
        """Append one record's gathered features to their columns, value by value."""
        model = self.name
        for kf_index, name in self.gather or ():
            key = (model, name)
            col = columns.get(key)
            if col is None:
                col = columns[key] = ([], [])
                first[key] = (row, 0, kf_index)
            col[0].append(feats.get(name))
            col[1].append(row)

    def flush(self, columns: dict, first: dict, rows_arrays: dict | None) -> None:
        """Add the gathered columns to ``columns`` (which holds none of this model's features yet)."""
        if not self.rows:
            return
        starts: dict[str, tuple[int, int]] = {}
        for start, gather in self.segments:
            for kf_index, name in gather:
                if name not in starts:
                    starts[name] = (start, kf_index)
        model = self.name
        all_rows = self.rows
        rows_array = np.array(all_rows, dtype=np.intp) if rows_arrays is not None else None
        uniform = self.uniform
        if uniform is not None and not self.feats:  # trusted: every record has exactly ``uniform[0]``, its values in ``uniform[1]``
            self.feats = [_features(uniform, r) for r in all_rows] if len(uniform[1]) != len(all_rows) else _Made(uniform)  # type: ignore[assignment]
        # names no record of the block has (a model whose records name ever new features): their
        # columns are all missing, without looking up every name in every record
        present = set().union(*self.feats) if len(starts) > len(self.feats[0]) else None
        if present is None and uniform is not None and len(uniform[1]) == len(self.feats):  # every record of the batch
            by_name = uniform[1].columns() if uniform[1].__class__ is PackedRows else dict(zip(uniform[0], zip(*uniform[1])))
            whole = {name: _column(by_name[name]) for name, (start, _) in starts.items() if start == 0 and name in by_name}
        else:
            whole = _whole_columns(self.feats, [name for name, (start, _) in starts.items() if start == 0]) if present is None else {}
        for name, (start, kf_index) in starts.items():
            feats = self.feats if start == 0 else self.feats[start:]
            key = (model, name)
            # (a copy of) the rows list: shared by the columns at the end, copied when they still grow
            rows = all_rows[start:] if start or rows_arrays is None else all_rows
            if present is not None and name not in present:
                columns[key] = (AllMissing(repeat(None, len(feats))), rows)
            else:
                column = whole.get(name)
                columns[key] = (column if column is not None else [f.get(name) for f in feats], rows)
            first[key] = (all_rows[start], 0, kf_index)
            if rows_array is not None:
                rows_arrays[key] = rows_array if start == 0 else rows_array[start:]
        self.rows, self.feats, self.segments, self.uniform, self.offered = [], [], [], None, None


def _column(values: Any) -> Any:
    """A whole column as a channel classifies it: a packed or coded one as it is, any other as a list."""
    return values if values.__class__ is PackedColumn or values.__class__ is CodedColumn else list(values)


def gather_batch(self: Any, decoded: list[Any], joined: list[Any] | None, ids: list[int]) -> Batch:
    """Group the batch's values per (model, channel), remembering where each column started (``self``: the
    :class:`~stream_monitor.core.monitor.PartitionMonitor` judging them).

    Features are gathered column-wise per model (:class:`FeatureBlock`: one list
    comprehension per feature over the model's rows) unless a feature name could collide with
    a reserved channel name; then, as for the other channels, value by value. Values a limit
    refuses are listed (:meth:`Batch.refusals`); records of a refused model are set aside whole.
    """
    batch = Batch(decoded, ids)
    columns, first = batch.columns, batch.first
    blocks: dict[str, FeatureBlock | None] = {}
    remember = self.spec.label_join_max_pending
    limits_open = self.limits.open
    uniform = uniform_by_model(decoded) if decoded else {}  # per model: the same features on each of its records
    for row, d in enumerate(decoded):
        try:
            e = d.event
            blk = blocks.get(e.model, _MISSING)
            if blk is _MISSING:
                blk = blocks[e.model] = self._block(e.model)
                trusted = uniform.get(e.model)
                if trusted is not None and blk.__class__ is FeatureBlock:
                    blk.trust(*trusted)
            if blk.__class__ is not FeatureBlock:
                if blk is _LIMITED:
                    batch.refused_model(self.limits, row, d)
                continue
            m = blk.model
            if blk.uniform is not None:  # every row has the batch's features: add needs no features object
                blk.add(row, None, columns, first)
            elif e.features is not None:
                blk.add(row, e.features, columns, first)
            pred = e.prediction
            if e.label is None and remember and e.event_id and pred is not None:
                dropped = self._remember_prediction(e.event_id, e.model, pred, d.event_time_ms)
                if dropped is not None:
                    self._dropped_predictions(batch, row, d, dropped)
            m.row = row
            for j, (name, value) in enumerate(extras(e, joined[row] if joined is not None else pred, m)):
                if name not in m.channels:
                    if value is None or m.channel(name, value) is None:
                        continue
                key = (e.model, name)
                col = columns.get(key)
                if col is None:
                    col = columns[key] = ([], [])
                    first[key] = (row, 1, j)
                col[0].append(value)
                col[1].append(row)
            if m.recalibrated:
                batch.restart_estimates(m)
            if m.class_overflow:  # labelled predictions of classes beyond limits.classes_per_model: counted only
                batch.hits["classes_per_model"] += m.class_overflow
                m.class_overflow = 0
            if m.refused:
                batch.refusals(self.limits, row, d, m)
            if limits_open:
                batch.quiet(self.limits, row, d)
        except Exception as exc:
            batch.failed[row] = exc
    for blk in blocks.values():
        if blk.__class__ is FeatureBlock:
            blk.flush(columns, first, batch.rows_arrays)
    if batch.failed:
        batch.drop_failed()
    return batch
