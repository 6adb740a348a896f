"""Judging groups: one hot model's channels judged by several owners (``models.<m>.judging_groups``).

A model is judged by one task (the owner of its partition of the by-model topic). For a model with
most of the traffic that is one process doing most of the work, however many instances run. With
``judging_groups: N`` (> 1) the model's channels are split into N groups judged independently,
group g on partition ``(crc32(model) + g * max(1, n // N)) % n`` of the by-model topic's n
(:func:`group_partition`; group 0 on the model's usual partition, so N = 1 is exactly the single
judgement). The groups are spread ``n // N`` partitions apart, not side by side, because the
consumer group assigns each member a contiguous range of partitions (range assignment, which
keeps co-partitioned input and label topics together): adjacent partitions would mostly go to
the same instance, which would then judge every group.

- **group 0** keeps everything model-level: the prediction, latency and performance channels, the
  label join, estimates, task inference, model versions' references, the performance page and
  retraining, and the value-level dead letters of reading (counted once);
- **every group** (0 included) judges a share of the *feature* channels: feature ``f`` belongs to
  group ``crc32(f) % N`` (:func:`group_of`; a name starting ``__`` is always group 0). The
  assignment depends on the name alone — not on arrival order, batching or partitioning — so every
  reader, replay and restore agrees on it.

Every inference row goes to every group (with only that group's features; group 0 also the
prediction, label and latency), so a feature missing from an event counts as missing in its group
exactly as it does in a single judgement, and each group puts its rows in event-time order itself.
On the judging side group g > 0 of N of model ``m`` is judged as a model of its own named
``judge_name(m, g, N)`` (``m`` + U+001E + ``g/N``): its own monitor, channels and state items (keys
``m<US>m<RS>g/N``, ``c<US>m<RS>g/N<US>feature``), alerts under the real model name with the usual
fingerprints (the groups' channels are disjoint). The name carries N so that the items a group
wrote under another N (whose features and partition were others) are recognised as such on
restore and ignored; group 0 is the model's own name (its partition never changes with N).
What needs more than one group's channels cannot be seen across groups (see
docs/architecture.md, "Judging groups").

>>> group_of("x0", 1), [group_of(f, 2) for f in ("x0", "x4", "c0")], group_of("__prediction__", 3)
(0, [1, 0, 1], 0)
>>> judge_name("m", 0, 3), judge_name("m", 2, 3), layout_of(judge_name("m", 2, 3)), model_of(judge_name("m", 2, 3)), model_of("m")
('m', 'm\\x1e2/3', ('m', 2, 3), ('m', 2), ('m', 0))
"""

from __future__ import annotations

import zlib
from typing import Any

SEP = "\x1e"  # between a model's name and its group number, in a group's judge name
_GROUPS: dict[tuple[str, int], int] = {}  # (feature, N) -> group, memoised (few distinct names)


def group_of(feature: str, groups: int) -> int:
    """The group judging ``feature`` among ``groups``: crc32 of its name modulo ``groups`` (``__`` names: 0)."""
    if groups == 1:
        return 0
    g = _GROUPS.get((feature, groups))
    if g is None:
        g = 0 if feature.startswith("__") else zlib.crc32(feature.encode("utf-8", "surrogatepass")) % groups
        if len(_GROUPS) < 100_000:
            _GROUPS[(feature, groups)] = g
    return g


def group_partition(model_hash: int, group: int, groups: int, partitions: int) -> int:
    """The by-model partition of ``group`` of a model whose name's crc32 is ``model_hash``.

    >>> [group_partition(4, g, 2, 6) for g in range(2)], [group_partition(4, g, 3, 6) for g in range(3)], group_partition(4, 0, 1, 6)
    ([4, 1], [4, 0, 2], 4)
    >>> sorted(group_partition(7, g, 4, 3) for g in range(4))  # more groups than partitions: some share one
    [0, 1, 1, 2]
    """
    return (model_hash + group * max(1, partitions // groups)) % partitions


def judge_name(model: str, group: int, groups: int) -> str:
    """The name group ``group`` of ``groups`` of ``model`` is judged under (the model's own for group 0)."""
    return model if group == 0 else f"{model}{SEP}{group}/{groups}"


def layout_of(name: str) -> tuple[str, int, int]:
    """(model, group, groups) of a judge name (see :func:`judge_name`; group 0's groups: 0, not known)."""
    if SEP not in name:
        return name, 0, 0
    head, _, tail = name.rpartition(SEP)
    g, slash, n = tail.partition("/")
    return (head, int(g), int(n)) if head and slash and g.isdigit() and n.isdigit() else (name, 0, 0)


def model_of(name: str) -> tuple[str, int]:
    """(model, group) of a judge name (see :func:`judge_name`)."""
    if SEP not in name:
        return name, 0
    model, group, _ = layout_of(name)
    return model, group


def groups_of(spec: Any, model: str) -> int:
    """``models.<model>.judging_groups`` (1 for a model the config does not name)."""
    m = spec.models.get(model)
    return m.judging_groups if m is not None else 1


def grouped(spec: Any) -> bool:
    """Does any configured model split its judgement?"""
    return any(m.judging_groups > 1 for m in spec.models.values())


def in_group(channel: str, group: int, groups: int) -> bool:
    """Is ``channel`` judged by group ``group`` of ``groups``? (Reserved channels: group 0.)"""
    return group_of(channel, groups) == group if groups > 1 else group == 0


class GroupBaselines(dict):  # type: ignore[type-arg]
    """Baselines per model, also found under a group's judge name."""

    def get(self, name: Any, default: Any = None) -> Any:
        """The baselines of ``name``'s model."""
        found = super().get(name)
        if found is None and type(name) is str and SEP in name:
            found = super().get(model_of(name)[0])
        return default if found is None else found
