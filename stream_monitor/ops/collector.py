"""The cyclic garbage collector, set for a process that allocates many short-lived acyclic objects.

Every record becomes a handful of dicts, lists and row objects that die by reference counting a
few milliseconds later; almost none take part in a reference cycle. With CPython's defaults
(a young-generation collection every 700 net allocations) the collector scanned them again and
again, and its full collections walked every long-lived object of the process — the imported
modules, River, the config — each time: in ``python -m bench.run`` that was about a fifth of
``run``'s CPU (``bench/results``; BENCHMARKS.md, "The collector").

:func:`tune_collector`, called once by the commands that process records (``run``, ``replay``,
``demo``) after start-up:

1. ``gc.freeze()``: what exists after start-up (modules, classes, the config) moves to the
   permanent generation and is never scanned again (it is still freed by reference counting);
2. a young-generation threshold of ``threshold`` net allocations (default 20,000) and older
   generations collected every 20th collection of the one below: cycles are still found, a few
   thousand allocations later.

Rows waiting in a model's event-time order live longer than that, by the thousand: the core keeps
them out of the collector's sight (``core/exchange.py``, ``Row``), which took the collector from
~4.5 % of ``run``'s CPU to ~2 % (BENCHMARKS.md, "The run of 2026-12-03 16:49"); a higher threshold
only made each collection bigger there.

Nothing here changes what is judged; it is a process setting, so the core never calls it.

>>> import gc
>>> saved = gc.get_threshold()
>>> tune_collector(threshold=12_345)[0]
12345
>>> gc.set_threshold(*saved); gc.unfreeze()
"""

from __future__ import annotations

import gc

DEFAULT_THRESHOLD = 20_000
OLDER_EVERY = 20


def tune_collector(threshold: int = DEFAULT_THRESHOLD) -> tuple[int, int, int]:
    """Freeze what exists now and raise the collection thresholds; returns the thresholds set."""
    gc.collect()  # what start-up left as garbage goes now, not into the permanent generation
    gc.freeze()
    gc.set_threshold(threshold, OLDER_EVERY, OLDER_EVERY)
    return gc.get_threshold()
