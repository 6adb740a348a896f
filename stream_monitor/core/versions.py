"""Model versions: where a batch of rows meets a version its model never showed before.

A model's first ``model_version`` is only recorded. A version the model never showed before
switches the model (:meth:`ModelMonitor.switch_version`: its prediction and performance channels
restart their reference, features keep theirs) from that version's first row on; a version seen
before (traffic split between two versions) changes nothing. The processing step cuts a batch at
the row :func:`version_cut` names, so the rows before it still feed the old references, whatever
the batch boundaries (``process`` as well as ``judge`` over exchanged rows).

>>> from types import SimpleNamespace as NS
>>> rows = [NS(event=NS(model="m", model_version=v)) for v in ("a", "a", "b")]
>>> version_cut({}, rows)  # "m" is created by this batch, and a second version follows: cut there
(2, {'m': 'a'})
>>> version_cut({}, rows[:2])
(0, {'m': 'a'})
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from stream_monitor.core.model_monitor import ModelMonitor


def version_cut(models: Mapping[str, ModelMonitor], decoded: Sequence[Any]) -> tuple[int, dict[str, str]]:
    """The first row (> 0) at which a model shows a version it never showed before (0 when none does), and new models' first versions.

    ``decoded`` are the batch's decoded events (``.event.model``, ``.event.model_version``) and
    ``models`` the monitors that exist before it. Walking the rows, a known model's first version
    is recorded, and a new version at row 0 switches that model at once; a new version further on
    ends the walk there (the caller feeds the rows before it, then calls again from it). Models
    the batch creates are returned with their first version, to record once they exist
    (:func:`record_first_versions`); a second version of such a model cuts the batch as well.
    """
    pending: dict[str, str] = {}  # the last version of each model in the rows so far
    first: dict[str, str] = {}  # models created by this batch: their first version
    for row, d in enumerate(decoded):
        version, name = d.event.model_version, d.event.model
        if type(version) is not str or pending.get(name) == version:
            continue
        m = models.get(name)
        if m is None:
            if name in first:
                return row, first  # a second version of a model this batch creates: create it first
            first[name] = pending[name] = version
            continue
        if not m.versions:
            m.versions.append(version)
            m.dirty = True
        elif version not in m.versions:
            if row:
                return row, first
            m.switch_version(version)
        pending[name] = version
    return 0, first


def record_first_versions(models: Mapping[str, ModelMonitor], first: Mapping[str, str]) -> None:
    """Record the first version of the models a batch created (see :func:`version_cut`)."""
    for name, version in first.items():
        m = models.get(name)
        if m is not None and not m.versions:
            m.versions.append(version)
            m.dirty = True
