"""A model's rows as the rows of its judging groups (:mod:`stream_monitor.core.groups`): what reading sends
each group (:func:`split_row_lists`, rows in wire form) and what a replay judges (:func:`split_rows`,
:func:`split_for_judging`, row objects); ``tests/core/test_judging_groups.py`` checks both give the same rows.
"""

from __future__ import annotations

from typing import Any

from stream_monitor.core.exchange import INFERENCE, EventView, Row
from stream_monitor.core.groups import group_of, groups_of, judge_name
from stream_monitor.core.scan import ScannedRows


def split_rows(spec: Any, model: str, rows: list[Row]) -> list[tuple[str, list[Row]]]:
    """(judge name, rows) per judging group of ``model`` (:mod:`stream_monitor.core.groups`); ``rows`` as they are for one group.

    Every inference row goes to every group with that group's features only; group 0 also keeps
    the prediction, label, latency and the row's value-level problems (dead-lettered once), and
    gets the label rows.

    >>> from stream_monitor.core.events import decode_inference, SourcePosition
    >>> from stream_monitor.core.exchange import inference_row
    >>> from stream_monitor.core.spec import MonitorSpec, ModelSpec
    >>> spec = MonitorSpec(models={"m": ModelSpec(judging_groups=2)})
    >>> d = decode_inference(b'{"model": "m", "ts": 5, "features": {"x0": 1, "x4": 2}, "prediction": 0.5}', None)
    >>> [(name, r[0].event.features, r[0].event.prediction) for name, r in split_rows(spec, "m", [inference_row(d, SourcePosition("in", 0, 0, None), 1, 0)])]
    [('m', {'x4': 2}, 0.5), ('m\\x1e1/2', {'x0': 1}, None)]
    """
    n = groups_of(spec, model)
    if n == 1:
        return [(model, rows)]
    out: list[list[Row]] = [[] for _ in range(n)]
    names = [judge_name(model, g, n) for g in range(n)]
    for r in rows:
        if r.kind != INFERENCE:
            out[0].append(r)
            continue
        e, feats = r.event, r.event.features
        parts: list[Any] = [None] * n if feats is None else [{} for _ in range(n)]
        if feats is not None:
            for k, v in feats.items():
                parts[group_of(k, n)][k] = v
        out[0].append(Row(INFERENCE, r.key, r.position, EventView(e.event_id, model, e.model_version, e.ts, parts[0], e.prediction, e.label, e.latency_ms),
                          r.problems, r.carrier, r.original))  # fmt: skip
        for g in range(1, n):
            out[g].append(Row(INFERENCE, r.key, r.position, EventView(e.event_id, names[g], e.model_version, e.ts, parts[g], None, None, None), (), r.carrier, r.original))
    return list(zip(names, out, strict=True))


def split_row_lists(spec: Any, model: str, rows: list[list[Any]]) -> list[list[list[Any]]]:
    """What :func:`split_rows` gives per group, from rows in wire form (:func:`row_list`) to rows in
    wire form (what reading sends: no objects in between)."""
    if type(rows) is ScannedRows:  # features still a scan's columns: as objects, to split them
        rows = rows.materialize()
    n = groups_of(spec, model)
    out: list[list[list[Any]]] = [[] for _ in range(n)]
    first, others = out[0], out[1:]
    groups: dict[str, int] = {}
    for r in rows:
        if r[0] != INFERENCE:
            first.append(r)
            continue
        feats = r[10]
        parts: list[Any] = [None] * n
        if feats is not None:
            parts = [{} for _ in range(n)]
            for k, v in feats.items():
                g = groups.get(k)
                if g is None:
                    g = groups[k] = group_of(k, n)
                parts[g][k] = v
        head = r[:10]  # kind, position, key, event_id, model_version
        first.append([*head, parts[0], *r[11:]])
        for g, lists in enumerate(others, 1):
            lists.append([*head, parts[g], None, None, None, []])
    return out


def split_for_judging(spec: Any, rows: list[Row]) -> list[Row]:
    """Rows of several models, each as its groups' rows (one after the other): a replay's judgement of grouped models."""
    out: list[Row] = []
    for r in rows:
        model = r.event.model
        if r.kind != INFERENCE or groups_of(spec, model) == 1:  # labels: group 0's
            out.append(r)
        else:
            out += [g[0] for _, g in split_rows(spec, model, [r])]
    return out
