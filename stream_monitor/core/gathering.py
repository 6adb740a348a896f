"""Gathering a batch's feature values into one column per feature, per model (what keeps judging fast).

:class:`FeatureBlock` takes one model's records of a batch and, at the end, builds each feature's
column with one C-level pass (:func:`_whole_columns`), or takes the columns from
:func:`uniform_columns` when every record of the batch has exactly the same features, all of them
channels already (then no record can discover one and the per-record check is skipped).
"""

from __future__ import annotations

from itertools import repeat
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np

from stream_monitor.core.model_monitor import AllMissing, ModelMonitor


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


_MODEL_OF, _FEATURES_OF = attrgetter("event.model"), attrgetter("event.features")


def uniform_columns(decoded: list[Any]) -> tuple[str, tuple[str, ...], list[tuple[Any, ...]]] | None:
    """(model, names, one tuple of values per row) when every row is of one model and its features object has
    exactly the same (at least two) names; else None. One C-level pass: what :class:`FeatureBlock` needs to
    skip its per-row check for new features, and the values of its whole columns.

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


class FeatureBlock:
    """One model's records with a features object in a batch, gathered column-wise at the end.

    ``segments`` marks where the gathered feature set changed (a feature was discovered), so a
    feature's column starts at the first record that had it. When a feature name starts with
    "__" (it could share a column with a reserved channel) the block switches to value-by-value
    gathering (``direct``) for the rest of the batch.
    """

    __slots__ = ("model", "name", "rows", "feats", "segments", "gather", "direct", "keys", "stamp", "uniform")

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
        self.uniform: tuple[tuple[str, ...], list[tuple[Any, ...]]] | None = None  # see trust()

    def trust(self, names: tuple[str, ...], tuples: list[tuple[Any, ...]]) -> None:
        """Every record of the batch (all of this model's) has exactly the features ``names``, with values ``tuples``
        (:func:`uniform_columns`): when they are all channels already (none reserved-looking), no record can
        discover a feature (channels only grow), so :meth:`add` skips that check and :meth:`flush` takes
        the whole columns from ``tuples``. Called before the first :meth:`add`.
        """
        if self.keys >= set(names) and not any(name.startswith("__") for name in names):
            self.uniform = (names, tuples)

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

    def add(self, row: int, feats: dict[str, Any], columns: dict, first: dict) -> None:
        """Take one record's features object (discovering new features first)."""
        m = self.model
        keys = self.keys
        if self.uniform is None and not keys >= feats.keys():
            m.discover_features(feats)
        stamp = self.stamp
        if stamp[1] != len(keys) or stamp[0] != len(m.known_features):  # both only grow: unchanged lengths, same gather
            self.stamp = (len(m.known_features), len(keys))
            gather = m.gather()
            if gather is not self.gather:
                self.switch(gather, columns, first)
        if self.direct:
            self.add_direct(row, feats, columns, first)
        else:
            self.rows.append(row)
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
        # names no record of the block has (a model whose records name ever new features): their
        # columns are all missing, without looking up every name in every record
        present = set().union(*self.feats) if len(starts) > len(self.feats[0]) else None
        if present is None and self.uniform is not None and len(self.uniform[1]) == len(self.feats):  # every record of the batch
            by_name = dict(zip(self.uniform[0], zip(*self.uniform[1])))
            whole = {name: list(by_name[name]) for name, (start, _) in starts.items() if start == 0 and name in by_name}
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
        self.rows, self.feats, self.segments, self.uniform = [], [], [], None
