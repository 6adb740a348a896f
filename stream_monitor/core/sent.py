"""Outputs committed ahead of the state that made them: the ``sent`` state item.

Under exactly-once an alert (or a retraining event) commits in a transaction with the consumer
offsets. Writing the whole changed state with it — every channel that saw rows since the state was
last written, 1–2 MB in the latency bench — put 100–250 ms of encoding and broker work between
every page and its reader. So alerts commit without the state (a reads-only commit, see
``docs/architecture.md``, "The checkpoint"), and that commit writes this small item instead: the
identities of the outputs committed since the state was last written. Judging redone from that
state (after a crash, a rollback, on the partition's next owner) makes them again, in the same
order, with the same ids; :meth:`SentLedger.settle` holds back those already committed, so each is
sent once. A full checkpoint writes the state past them and empties the item.

An output's identity is what names it in the contract — fingerprint, alert id, status, escalation,
event time and source record (a retraining event: its id and event time) — not its bytes, which
also name the instance that sent it.

The item also says how far judging had gone when it was written (``upto``: the largest key of the
inference rows and of the label rows judged, :meth:`SentLedger.judged`). Judging redone past that
point has judged again every row that made an output named in the item: what it has not made again
by then it never will (the config changed between the commit and the restart, or the code), so
those identities are dropped (by :meth:`SentLedger.judged`, logged as ``owed_outputs_dropped``)
instead of being written with every state for ever. An item without ``upto`` (written before it
existed) keeps what it owes as before.

>>> ledger = SentLedger()
>>> ledger.track = True  # as the runtime does where alerts commit ahead of the state
>>> ledger.settle(["a1", "a2"], [], key=_digest)
(['a1', 'a2'], [])
>>> restored = SentLedger(decode_sent(ledger.ahead_item()))  # committed with them; the state is older
>>> restored.track = True
>>> restored.settle(["a1", "a2", "a3"], [], key=_digest)  # judged again: only the new one goes out
(['a3'], [])
>>> restored.held_back, decode_sent(restored.ahead_item()) == Counter(map(_digest, ["a1", "a2", "a3"]))
(2, True)
>>> restored.state_item()  # the state written past all three: nothing is owed any more
(True, None)
>>> first = SentLedger(); first.track = True
>>> first.settle(["a1", "a2"], [], key=_digest)
(['a1', 'a2'], [])
>>> first.judged((50, 1, 0), None)  # the largest key of the rows judged (no label rows)
0
>>> changed = SentLedger(*decode_item(first.ahead_item()))  # restored from an item written then; the config changed since
>>> changed.settle(["b1"], [], key=_digest), changed.judged((40, 0, 0), None), changed.judged((50, 1, 0), None)
((['b1'], []), 0, 2)
>>> changed.state_item()  # judging redone past the rows that made a1 and a2 did not make them: forgotten
(True, None)
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any, Callable

from stream_monitor.core.state_codec import FORMAT_VERSION, StateFormatError, _pack, _unpack

ITEM = "sent"  # the item's name in a partition's state
KEY_BYTES = 16
LARGE = 4096  # distinct outputs ahead of the state beyond which the caller writes the state instead


def _digest(*parts: Any) -> bytes:
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8", "surrogatepass"), digest_size=KEY_BYTES).digest()


def alert_key(alert: Any) -> bytes:
    """The identity of a published alert (an ``Alert`` of ``core/monitor.py``)."""
    e = alert.event
    s = e.source
    return _digest("alert", alert.fingerprint, e.alert_id, e.status, e.escalated, e.event_time, s.topic, s.partition, s.offset)


def retraining_key(event: Any) -> bytes:
    """The identity of a published retraining event (a ``Retraining`` of ``core/retraining.py``)."""
    return _digest("retraining", event.model, event.event.retraining_id, event.event.event_time)


Key = tuple[int, int, int]  # a row's order key: (event time ms, tie, index)
Upto = tuple[Key | None, Key | None]  # the largest key judged: of the inference rows, of the label rows


def encode_sent(keys: Counter[bytes], upto: Upto | None = None) -> bytes:
    """The ``sent`` item: each output identity with how many times it was committed (and how far judging had gone)."""
    body: dict[str, Any] = {"format": FORMAT_VERSION, "kind": ITEM, "keys": [[k, n] for k, n in sorted(keys.items()) if n > 0]}
    if upto is not None:  # (a reader that predates it ignores the field)
        body["upto"] = [None if key is None else list(key) for key in upto]
    return _pack(body)


def decode_item(blob: bytes) -> tuple[Counter[bytes], Upto | None]:
    """Decode and check a ``sent`` item: (identities, ``upto`` or None); raise :class:`StateFormatError` if it is not one."""
    obj = _unpack(blob, ITEM)
    keys = obj.get("keys")
    if type(keys) is not list or not all(
        type(x) is list and len(x) == 2 and type(x[0]) is bytes and len(x[0]) == KEY_BYTES and type(x[1]) is int and x[1] > 0 for x in keys
    ):
        raise StateFormatError(f"{ITEM} item: keys is not a list of [{KEY_BYTES}-byte identity, positive count]")
    upto = obj.get("upto")
    if upto is not None:
        if type(upto) is not list or len(upto) != 2 or not all(
            k is None or (type(k) is list and len(k) == 3 and all(type(v) is int for v in k)) for k in upto
        ):
            raise StateFormatError(f"{ITEM} item: upto is not [key or null, key or null] (a key: 3 integers)")
        upto = (None if upto[0] is None else tuple(upto[0]), None if upto[1] is None else tuple(upto[1]))
    return Counter({k: n for k, n in keys}), upto


def decode_sent(blob: bytes) -> Counter[bytes]:
    """The identities of a ``sent`` item (:func:`decode_item`)."""
    return decode_item(blob)[0]


def _later(a: Key | None, b: Key | None) -> Key | None:
    return b if a is None else a if b is None else max(a, b)


class SentLedger:
    """A partition's outputs committed ahead of its written state (see the module docstring).

    ``owed``: committed outputs that judging redone from the written state has not made again yet
    (restored from the item); ``unsaved``: outputs made since the state was written (sent, or held
    back as owed). The item to write with a commit that carries outputs but not the state is their
    sum; a full checkpoint writes only what is still owed.
    """

    __slots__ = ("owed", "unsaved", "stored", "dirty", "held_back", "track", "upto", "dropped", "seen")

    def __init__(self, owed: Counter[bytes] | None = None, upto: Upto | None = None) -> None:
        # remember what goes out (``unsaved``): only where alerts commit ahead of the state (``run``, exactly-once,
        # state kept, by-model topology or input partitioning: the runtime sets it), else it would grow for ever (``replay``, no state)
        self.track = False
        self.owed: Counter[bytes] = Counter(owed or {})
        self.unsaved: Counter[bytes] = Counter()
        self.stored = bool(self.owed)  # the written item is not empty (a full checkpoint deletes it)
        self.dirty = False  # outputs sent since the item was last written
        self.held_back = 0  # outputs not sent again because they were committed before (counted, logged by the caller)
        self.upto = upto  # how far judging had gone when what is owed was committed (None: not known, never expire)
        self.dropped = 0  # owed outputs judging redone past their rows did not make again (counted, logged by the caller)
        self.seen: Upto = (None, None)  # the largest keys judged since this ledger was made (see judged)

    def settle(self, alerts: list[Any], retraining: list[Any], key: Callable[[Any], bytes] = alert_key,
               retraining_key: Callable[[Any], bytes] = retraining_key) -> tuple[list[Any], list[Any]]:  # fmt: skip
        """The alerts and retraining events to send: those already committed are held back; all are remembered."""
        return self._settle(alerts, key), self._settle(retraining, retraining_key)

    def _settle(self, outputs: list[Any], key: Callable[[Any], bytes]) -> list[Any]:
        if not outputs or not (self.track or self.owed):
            return outputs
        keep = []
        owed, unsaved, track = self.owed, self.unsaved, self.track
        for out in outputs:
            k = key(out)
            if track:
                unsaved[k] += 1
            if owed.get(k, 0) > 0:
                owed[k] -= 1
                if not owed[k]:
                    del owed[k]
                self.held_back += 1
            else:
                keep.append(out)
                self.dirty = track
        return keep

    def judged(self, inference: Key | None, labels: Key | None) -> int:
        """Rows up to these keys were judged (the largest of one judging step's inference and label rows, None: none).

        Remembered for the item's ``upto``. Once judging has gone past the ``upto`` of what is owed,
        what is still owed is forgotten; returns how many were dropped. Every row that made an output
        the item names has a key at or below ``upto``; judged again (the rows in the same order), they
        made it again, so what is still owed then would be made by no row: the config or the code
        changed since it was committed.
        """
        seen = self.seen = (_later(self.seen[0], inference), _later(self.seen[1], labels))
        if not self.owed or self.upto is None:
            return 0
        need_i, need_l = self.upto
        if (need_i is not None and (seen[0] is None or seen[0] < need_i)) or (need_l is not None and (seen[1] is None or seen[1] < need_l)):
            return 0
        n = sum(self.owed.values())
        self.owed.clear()
        self.upto = None
        self.dropped += n  # (the item written stays as it is until the next commit writes one: a restore from it drops them again)
        return n

    @property
    def large(self) -> bool:
        """So many outputs ahead of the state that writing the state is the better commit."""
        return len(self.unsaved) + len(self.owed) >= LARGE

    def ahead_item(self) -> bytes | None:
        """The item for a commit carrying outputs without the state; None when it did not change since last written.

        Its ``upto``: the largest keys judged so far (every output it names was made at or below them), or
        what is still owed needs, whichever is later.
        """
        if not self.dirty:
            return None
        self.dirty = False
        self.stored = True
        if self.owed and self.upto is None:  # owed from an item without upto: how far those need is not known
            return encode_sent(self.owed + self.unsaved)
        upto, seen = self.upto or (None, None), self.seen
        return encode_sent(self.owed + self.unsaved, (_later(upto[0], seen[0]), _later(upto[1], seen[1])))

    def state_item(self) -> tuple[bool, bytes | None]:
        """For a full checkpoint (the state written past everything made so far): (write it?, the item or None to delete it)."""
        self.unsaved.clear()
        self.dirty = False
        if self.owed:
            self.stored = True
            return True, encode_sent(self.owed, self.upto)
        if self.stored:
            self.stored = False
            return True, None
        return False, None
