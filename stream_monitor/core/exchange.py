"""What crosses from reading records to judging models: validated rows, per model, as MessagePack.

Reading (decoding, validating, dead-lettering) happens where the records are, per input partition;
judging happens once per model (:mod:`stream_monitor.core.ordering` puts a model's rows from every
input partition in event-time order). Between the two travel :class:`Row` objects, batched per
model in a :func:`encode_rows` record: the already-validated values of each event (no JSON, no
re-validation), its event time and ordering key, and where it came from.

The ordering key is ``(event_time_ms, tie, index)``: ``tie`` is a 64-bit digest of the record's
bytes and ``index`` the event's place within its record (model-server formats carry several
events per record). It does not depend on partition or offset, so the same events are judged in
the same order whatever the topic's partitioning and keys; only byte-identical records tie, and
their order cannot change a judgement.

Wire format (MessagePack, no extension types except integers beyond 64 bits, as their decimal
text in extension type 1): ``[ROWS_FORMAT, model, [row, ...]]`` with an inference row
``[0, topic, partition, offset, timestamp_ms, event_time_ms, tie, index, event_id, model_version,
features, prediction, label, latency_ms, problems]`` and a label row ``[1, topic, partition,
offset, timestamp_ms, event_time_ms, tie, index, event_id, label, ts]``; ``problems`` is a list of
``[reason, detail]``. The rows of judging group g > 0 of N of a model (:mod:`stream_monitor.core.groups`)
are ``[ROWS_FORMAT, model, [row, ...], g, N]``, read back under the group's judge name.

The usual record, inference rows whose features objects all have the same names in the same order,
is sent *columnar*: ``[COLUMNS_FORMAT, model, [name, ...], [row, ...]]`` (``..., g, N]`` for a
judging group), each row an inference row whose ``features`` is the array of its values in the
order of ``names`` (the names are sent once, not per row; the values keep their types). It reads
back as the same rows (features as the same ordered map). When some of those columns hold only finite
floats and nulls, they travel packed as float64 bytes instead: ``[PACKED_FORMAT, model, names, rows,
packed, data]`` (:mod:`stream_monitor.core.packed`). What the reading side sends (``runtime/forward.py``) also
codes the columns of only texts and nulls: ``[CODED_FORMAT, model, names, rows, packed, data, coded,
categories, codes]``, each coded column's distinct texts and an int32 code per row. msgspec reads these
three formats in one pass (:mod:`stream_monitor.core.wire_views`). Anything else (a label row, a row without
features, names that differ) travels as a ``ROWS_FORMAT`` record, which is read as before, so a
topic holding records of both formats (a rolling upgrade) is read whole. A record that does not
decode as any of them raises :class:`RowsFormatError`.

Beside rows records travel *progress records*, ``[PROGRESS_FORMAT, topic, partition,
event_time_ms]``: "input partition (topic, partition) has read up to this event time". The reading
side sends one to a judging partition that got no rows of that input partition, so its event-time
order still learns how far the input partition got. ``[PROGRESS_FORMAT, topic, partition,
event_time_ms | nil, quiet_ms]``: it is *caught up* (read to its end offset), not grown for ``quiet_ms``
as its reader saw it (an earlier version's ``true`` reads as "not said"; a downgrade cannot read it).

>>> from stream_monitor.core.events import decode_inference, SourcePosition
>>> d = decode_inference(b'{"model": "m", "ts": 5, "features": {"x": 1.5}}', None)
>>> row = inference_row(d, SourcePosition("in", 2, 7, None), tie_of(b"x"), 0)
>>> model, rows = decode_rows(encode_rows("m", [row]))
>>> model, rows[0].key == row.key, rows[0].event.features, rows[0].source
('m', True, {'x': 1.5}, ('in', 2))
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from operator import attrgetter, itemgetter, setitem
from typing import Any, Literal, Sequence, Union

import msgpack
import msgspec
import orjson

from stream_monitor.core import events as ev
from stream_monitor.core.groups import judge_name, model_of
from stream_monitor.core.packed import block_of, pack_and_code
from stream_monitor.core.scan import ScannedRows
from stream_monitor.core.wire_views import ColumnsView, EventView, ColumnsRecord, CodedRecord, PackedRecord, not_on_wire

ROWS_FORMAT = 1
COLUMNS_FORMAT = 3  # a rows record whose inference rows share their feature names: the names once, values per row
PACKED_FORMAT = 4  # COLUMNS_FORMAT with its float feature columns as float64 bytes (core/packed.py)
CODED_FORMAT = 5  # PACKED_FORMAT with its text feature columns as int32 codes into their distinct texts (core/packed.py)
PROGRESS_FORMAT = 2  # a progress record (no rows): how far an input partition has read
INFERENCE, LABEL = 0, 1
_BIG_INT = 1  # extension type: an integer beyond 64 bits, as decimal text


class RowsFormatError(ValueError):
    """A rows record that is not what :func:`encode_rows` writes."""


def tie_of(raw: bytes) -> int:
    """The tie-break of a record: a signed 64-bit digest of its bytes (no partition, no offset).

    >>> tie_of(b"a") == tie_of(b"a") != tie_of(b"b")
    True
    """
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big", signed=True)


class Row(msgspec.Struct, gc=False):
    """One validated event on its way to its model's judgement.

    ``carrier`` is where the row was read by the judging side (the internal topic's record, or the
    input record itself): offsets committed there decide what is read again after a restart.

    Rows wait by the thousand, so a row is out of the cyclic collector's sight (``gc=False``: nothing it refers to refers
    back), no problems are the shared ``()``, and a row read from the internal topic makes :attr:`position` from its event
    view when asked (``pos`` None): a waiting row holds nothing the collector scans again and again (BENCHMARKS.md).
    """

    kind: int
    key: tuple[int, int, int]
    pos: ev.SourcePosition | None  # None: the event view's topic, partition, offset and timestamp_ms (a ColumnsView)
    event: Any  # InferenceEvent (kind 0) or LabelEvent (kind 1)
    problems: Sequence[tuple[ev.DeadLetterReason, str]] = ()
    carrier: tuple[str, int, int] | None = None
    original: bytes | None = None  # the record's bytes, where it was read (never sent on)

    @property
    def position(self) -> ev.SourcePosition:
        """Where the row's event was read (its input record)."""
        p = self.pos
        if p is None:
            v = self.event
            return _position((v.topic, v.partition, v.offset, v.timestamp_ms))
        return p

    @property
    def event_time_ms(self) -> int:
        """The row's event time (the first part of its key)."""
        return self.key[0]

    @property
    def identity(self) -> int:
        """The event's identity, whatever the layout: its record's digest combined with its place in the record.

        Alert ids hash it (where a firing episode started), so the same episode gets the same id
        with any number of input partitions and any keys; a partition offset would not.
        """
        return self.key[1] ^ self.key[2]

    @property
    def source(self) -> tuple[str, int]:
        """The input partition the row came from (topic, partition)."""
        p = self.pos
        if p is None:
            v = self.event
            return (v.topic, v.partition)
        return p[:2]  # type: ignore[return-value]  # (a SourcePosition is a tuple: topic, partition, ...)

    def raw(self) -> bytes:
        """The record's bytes where it was read; after crossing, the event as JSON (the original stays at ``position``)."""
        if self.original is not None:
            return self.original
        e = self.event
        if self.kind == LABEL:
            obj: dict[str, Any] = {"event_id": e.event_id, "model": model_of(e.model)[0], "label": e.label}
            if e.ts is not None:
                obj["ts"] = e.ts
        else:
            fields = ("event_id", "model", "model_version", "ts", "features", "prediction", "label", "latency_ms")
            obj = {k: getattr(e, k) for k in fields if getattr(e, k) is not None}
            obj["model"] = model_of(e.model)[0]
        try:
            return orjson.dumps(obj)
        except TypeError:  # an integer beyond 64 bits
            return repr(obj).encode("utf-8", "replace")


def inference_row(d: ev.DecodedEvent, position: ev.SourcePosition, tie: int, index: int, original: bytes | None = None) -> Row:
    """The row of a decoded inference event."""
    return Row(INFERENCE, (d.event_time_ms, tie, index), position, d.event, d.problems or (), original=original)


def label_row(label: ev.LabelEvent, event_time_ms: int, position: ev.SourcePosition, tie: int, original: bytes | None = None) -> Row:
    """The row of a decoded label event, ordered at ``event_time_ms`` (its ``ts``, else its record's time)."""
    return Row(LABEL, (event_time_ms, tie, 0), position, label, original=original)


def row_list(r: Row) -> list[Any]:
    """A row in its wire form (what :func:`encode_row_lists` takes; see the module's docstring)."""
    p, e = r.position, r.event
    head = [r.kind, p.topic, p.partition, p.offset, p.timestamp_ms, r.key[0], r.key[1], r.key[2], e.event_id]
    if r.kind == LABEL:
        return head + [e.label, e.ts]
    problems = [[str(reason), detail] for reason, detail in r.problems]
    return head + [e.model_version, e.features, e.prediction, e.label, e.latency_ms, problems]


def encode_rows(model: str, rows: list[Row], group: int = 0, groups: int = 1, pack: bool = True) -> bytes:
    """One model's rows as a rows record (of its judging group ``group`` of ``groups``, when > 0; see :func:`encode_row_lists`)."""
    return encode_row_lists(model, [row_list(r) for r in rows], group, groups, pack)


def encode_row_lists(model: str, rows: list[list[Any]], group: int = 0, groups: int = 1, pack: bool = True, code: bool = False) -> bytes:
    """A rows record of rows already in their wire form (:func:`row_list`, :func:`~stream_monitor.core.split.split_row_lists`,
    ``core/intake.py``'s :func:`~stream_monitor.core.intake.read_inference_wire`): columnar when they allow it, its float
    columns packed (``pack``) and, with ``code`` too, its text columns coded (:mod:`stream_monitor.core.packed`).
    Rows whose features are still a scan's columns (:class:`~stream_monitor.core.scan.ScannedRows`) are encoded from them."""
    if type(rows) is ScannedRows:  # features still a scan's columns: packed and coded from its arrays
        names, packing, values = rows.columns(pack, code)
        feats: Any = repeat(None)
    else:
        cols = _columnar(rows)
        if cols is None:
            return _packed([ROWS_FORMAT, model, rows, group, groups] if group else [ROWS_FORMAT, model, rows])
        names, feats, values = cols
        packing = pack_and_code(values, len(names), code) if pack else None
    head: list[Any] = [COLUMNS_FORMAT, model, names]
    tail: list[Any] = [group, groups] if group else []
    if packing is not None:
        head[0] = CODED_FORMAT if packing[3] else PACKED_FORMAT
        tail[:0] = [*packing[:2], *packing[3:]] if packing[3] else packing[:2]
        values = packing[2]
    # each row's features object swapped for its values while packing (no row copied), then put back
    list(map(setitem, rows, repeat(10, len(rows)), values))
    try:
        return _packed([*head, rows, *tail])
    finally:
        list(map(setitem, rows, repeat(10, len(rows)), feats))


_ENCODER = msgspec.msgpack.Encoder()  # the bytes msgpack.packb(use_bin_type=True) writes, in about a quarter of the time


def _packed(body: list[Any]) -> bytes:
    """``body`` as MessagePack (``msgpack.packb(body, use_bin_type=True)``'s bytes; integers beyond 64 bits as extension type 1)."""
    try:
        return _ENCODER.encode(body)
    except OverflowError:  # an integer beyond 64 bits somewhere: encode those as text
        return msgpack.packb(_widen(body), use_bin_type=True)


_KIND, _FEATURES = itemgetter(0), itemgetter(10)


def _columnar(rows: list[list[Any]]) -> tuple[list[str], list[dict[str, Any]], list[list[Any]]] | None:
    """(names, features objects, values) of a ``COLUMNS_FORMAT`` record of ``rows`` (wire form), or None when they
    are not all inference rows whose features objects have the same names in the same order (C-level passes)."""
    if not rows or set(map(_KIND, rows)) != {INFERENCE}:
        return None
    feats = list(map(_FEATURES, rows))
    if set(map(type, feats)) != {dict}:
        return None
    same = set(map(tuple, feats))
    if len(same) != 1:
        return None
    names = same.pop()
    if set(map(type, names)) != {str}:  # (an empty features object, or names that are not text: as rows)
        return None
    return list(names), feats, list(map(list, map(dict.values, feats)))


def _widen(obj: Any) -> Any:
    if type(obj) is int and not -(2**63) <= obj < 2**64:
        return msgpack.ExtType(_BIG_INT, str(obj).encode())
    if type(obj) is list:
        return [_widen(v) for v in obj]
    if type(obj) is dict:
        return {k: _widen(v) for k, v in obj.items()}
    return obj


def _ext(code: int, data: bytes) -> Any:
    if code != _BIG_INT:
        raise RowsFormatError(f"unexpected extension type {code}")
    try:
        return int(data.decode("ascii"))
    except ValueError as exc:
        raise RowsFormatError("bad integer extension") from exc


_REASONS = {str(r): r for r in ev.DeadLetterReason}
_position = partial(tuple.__new__, ev.SourcePosition)  # a SourcePosition of a row's [topic, partition, offset, timestamp_ms]


def decode_rows(blob: bytes) -> tuple[str, list[Row]]:
    """(model, rows) of a rows record; :class:`RowsFormatError` when it is not one."""
    return _typed_columns(blob, None) or _rows_of(_unpack(blob))


def _unpack(blob: bytes) -> Any:
    try:
        return msgpack.unpackb(blob, raw=False, ext_hook=_ext, strict_map_key=True)
    except RowsFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - msgpack raises several types for bad input
        raise RowsFormatError(f"not MessagePack: {type(exc).__name__}") from exc


def _rows_of(body: Any, carrier: tuple[str, int, int] | None = None) -> tuple[str, list[Row]]:
    if type(body) is list and (len(body) in (4, 6) and body[0] == COLUMNS_FORMAT or len(body) in (6, 8) and body[0] == PACKED_FORMAT
                               or len(body) in (9, 11) and body[0] == CODED_FORMAT):
        return _columns_of(body, carrier)
    if type(body) is not list or len(body) not in (3, 5) or body[0] != ROWS_FORMAT or type(body[1]) is not str or type(body[2]) is not list:
        raise RowsFormatError(f"not a rows record of format {ROWS_FORMAT}, {COLUMNS_FORMAT}, {PACKED_FORMAT} or {CODED_FORMAT}")
    model = body[1] if len(body) == 3 else _group_name(body[1], body[3], body[4])
    out: list[Row] = []
    append = out.append
    try:
        for r in body[2]:
            # an inference row, read in line (what most rows are); anything else, or a bad row, by _row
            if type(r) is list and len(r) == 15 and r[0] == INFERENCE:
                _, topic, partition, offset, _, t, tie, index, event_id, version, features, prediction, label, latency, problems = r
                if type(topic) is str and type(partition) is int and type(offset) is int and type(t) is int and type(tie) is int and (features is None or type(features) is dict):
                    event = EventView(event_id, model, version, t, features, prediction, label, latency)
                    probs = [(_REASONS[reason], detail) for reason, detail in problems] if problems else ()
                    append(Row(INFERENCE, (t, tie, index), _position(r[1:5]), event, probs, carrier))
                    continue
            row = _row(model, r)
            row.carrier = carrier
            append(row)
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise RowsFormatError(f"bad row: {type(exc).__name__}: {exc}") from exc
    return model, out


def _group_name(model: str, group: Any, groups: Any) -> str:
    """The judge name of a judging group's rows (judged under the group's name)."""
    if type(group) is not int or type(groups) is not int or not 0 < group < groups:
        raise RowsFormatError("bad judging group")
    return judge_name(model, group, groups)


def _columns_of(body: list[Any], carrier: tuple[str, int, int] | None) -> tuple[str, list[Row]]:
    """The rows of a ``COLUMNS_FORMAT`` record: every row an inference row, its features the values of ``names``
    (of a ``PACKED_FORMAT`` record: the values of the names not packed)."""
    model, names, rows = body[1], body[2], body[3]
    if type(model) is not str or type(names) is not list or type(rows) is not list:
        raise RowsFormatError(f"not a rows record of format {body[0]}")
    if set(map(type, names)) - {str} or len(set(names)) != len(names):
        raise RowsFormatError("bad feature names")
    names = _shared_names(names)
    block, width, group = None, len(names), body[4:]
    if body[0] in (PACKED_FORMAT, CODED_FORMAT):
        coded = body[4:9] if body[0] == CODED_FORMAT else [body[4], body[5], [], [], b""]
        packed, data, positions, texts, codes = coded
        group = body[9:] if body[0] == CODED_FORMAT else body[6:]
        if type(packed) is not list or type(positions) is not list or set(map(type, packed + positions)) - {int} or type(data) is not bytes:
            raise RowsFormatError("bad packed columns")
        block = block_of(names, packed, data, len(rows), positions, texts, codes) if type(texts) is list and type(codes) is bytes else None
        if block is None:
            raise RowsFormatError("bad packed columns")
        width -= len(packed) + len(positions)
    if group:
        model = _group_name(model, group[0], group[1])
    out: list[Row] = []
    append = out.append
    try:
        for r in rows:
            if type(r) is not list or len(r) != 15 or r[0] != INFERENCE:
                raise ValueError("not an inference row")
            _, topic, partition, offset, _, t, tie, index, event_id, version, values, prediction, label, latency, problems = r
            if type(topic) is not str or type(partition) is not int or type(offset) is not int or type(t) is not int or type(tie) is not int:
                raise ValueError("bad position or time")
            if type(values) is not list or len(values) != width:
                raise ValueError("features are not the values of the names")
            event = ColumnsView(INFERENCE, topic, partition, offset, r[4], t, tie, index, event_id, version, values, prediction, label, latency, problems, model, names,
                                None, block, len(out))  # fmt: skip
            probs = [(_REASONS[reason], detail) for reason, detail in problems] if problems else ()
            append(Row(INFERENCE, (t, tie, index), _position(r[1:5]), event, probs, carrier))
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise RowsFormatError(f"bad row: {type(exc).__name__}: {exc}") from exc
    return model, out


@dataclass(frozen=True, slots=True)
class Progress:
    """Input partition ``source`` read events up to ``event_time_ms`` (None: none yet); ``caught_up``:
    nothing more to read for now, the partition not grown for ``quiet_ms`` (None: not said)."""

    source: tuple[str, int]
    event_time_ms: int | None
    caught_up: bool = False
    quiet_ms: int | None = None


def encode_progress(topic: str, partition: int, event_time_ms: int | None, caught_up: bool = False, quiet_ms: int | None = None) -> bytes:
    """A progress record: input partition (``topic``, ``partition``) has read up to ``event_time_ms``.

    >>> decode_record(encode_progress("in", 2, 1_700_000_000_000))
    Progress(source=('in', 2), event_time_ms=1700000000000, caught_up=False, quiet_ms=None)
    >>> decode_record(encode_progress("in", 3, None, caught_up=True, quiet_ms=6500))
    Progress(source=('in', 3), event_time_ms=None, caught_up=True, quiet_ms=6500)
    """
    if (event_time_ms is None or quiet_ms is not None) and not caught_up:
        raise ValueError("only a caught-up progress record goes without an event time or says quiet_ms")
    if quiet_ms is not None and (type(quiet_ms) is not int or quiet_ms < 0):
        raise ValueError("quiet_ms: whole milliseconds, not negative")
    body: list[Any] = [PROGRESS_FORMAT, topic, partition, event_time_ms] + ([True if quiet_ms is None else quiet_ms] if caught_up else [])
    try:
        return msgpack.packb(body, use_bin_type=True)
    except OverflowError:  # an event time beyond 64 bits
        return msgpack.packb(_widen(body), use_bin_type=True)


def decode_record(blob: bytes, carrier: tuple[str, int, int] | None = None, own: tuple[str, int] | None = None) -> Progress | tuple[str, list[Row]]:
    """A record of the internal topic: a :class:`Progress`, or (model, rows) of a rows record (with ``carrier``: the
    record's place, see :attr:`Row.carrier`; with ``own``, an input partition: each row carried by its own record
    there, as judging where the rows are read wants it). Anything else raises :class:`RowsFormatError`.

    >>> decode_record(encode_rows("m", []))
    ('m', [])
    """
    got = _typed_columns(blob, carrier) if own is None else _typed_columns(blob, carrier, own)
    if got is not None:  # (what most records are) read in one pass; anything unusual as below
        return got
    body = _unpack(blob)
    if type(body) is list and len(body) in (4, 5) and body[0] == PROGRESS_FORMAT:
        topic, partition, t = body[1], body[2], body[3]
        caught_up = len(body) == 5
        if type(topic) is not str or type(partition) is not int or not (type(t) is int or (t is None and caught_up)):
            raise RowsFormatError("bad progress record")
        quiet = body[4] if caught_up else True
        if quiet is not True and (type(quiet) is not int or quiet < 0):  # True: not caught up, or an earlier version's
            raise RowsFormatError("bad progress record")
        return Progress((topic, partition), t, caught_up, None if quiet is True else quiet)
    got = _rows_of(body, carrier)
    if own is not None:
        for r in got[1]:
            r.carrier = (own[0], own[1], r.position.offset)
    return got


_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}


def _shared_names(names: list[str]) -> tuple[str, ...]:
    """One tuple per distinct list of feature names (records of a model share it: a batch's rows are told uniform by identity)."""
    key = tuple(names)
    got = _NAMES.get(key)
    if got is None:
        if len(_NAMES) >= 1024:  # (a bound: names that change all the time are only slower to gather)
            _NAMES.clear()
        got = _NAMES[key] = key
    return got


_DECODERS = {  # a MessagePack array of the format's lengths starting with the format
    bytes([0x90 + size, fmt]): msgspec.msgpack.Decoder(kind, dec_hook=not_on_wire).decode
    for fmt, kind, sizes in ((COLUMNS_FORMAT, ColumnsRecord, (4, 6)), (PACKED_FORMAT, PackedRecord, (6, 8)), (CODED_FORMAT, CodedRecord, (9, 11)))
    for size in sizes
}
_VALUES = attrgetter("values")


def _typed_columns(blob: bytes, carrier: tuple[str, int, int] | None, own: tuple[str, int] | None = None) -> tuple[str, list[Row]] | None:
    """The rows of a ``COLUMNS_FORMAT`` record read by msgspec into their :class:`ColumnsView` in one pass; None for any
    other (bad or unusual) record, which :func:`_rows_of` reads and words (``tests/core/test_columns_typed.py``)."""
    decode = _DECODERS.get(blob[:2])
    if decode is None:  # (msgspec would take an array longer than the record's)
        return None
    try:
        body: Any = decode(blob)
    except msgspec.DecodeError:  # (msgspec.ValidationError is one)
        return None
    names, model, views = body.names, body.model, body.rows
    if len(set(names)) != len(names):
        return None
    width, block = len(names), None
    shared = _shared_names(names)
    if body.format != COLUMNS_FORMAT:
        block = block_of(shared, body.packed, body.data, len(views), body.coded, body.categories, body.codes)
        if block is None:
            return None
        width -= len(body.packed) + len(body.coded)
    if body.group is not None or body.groups is not None:  # a judging group's rows (both sent) or nothing read here
        if body.group is None or body.groups is None or not 0 < body.group < body.groups:
            return None
        model = judge_name(model, body.group, body.groups)
    if views and set(map(len, map(_VALUES, views))) != {width}:
        return None
    out: list[Row] = []
    append, reasons = out.append, _REASONS
    for at, v in enumerate(views):
        v.model = model
        v.names = shared
        v.block = block
        v.at = at
        probs = v.problems
        if probs:
            if not all(reason in reasons for reason, _ in probs):
                return None
            probs = [(reasons[reason], detail) for reason, detail in probs]  # type: ignore[assignment]
        append(Row(INFERENCE, (v.ts, v.tie, v.index), None, v, probs, carrier if own is None else (own[0], own[1], v.offset)))  # (its position: the view's fields)
    return model, out


def _row(model: str, r: list[Any]) -> Row:
    kind, topic, partition, offset, ts_ms, t, tie, index, event_id = r[:9]
    if type(topic) is not str or type(partition) is not int or type(offset) is not int or type(t) is not int or type(tie) is not int:
        raise ValueError("bad position or time")
    position = ev.SourcePosition(topic, partition, offset, ts_ms)
    if kind == LABEL:
        return Row(LABEL, (t, tie, index), position, EventView(event_id, model, None, r[10], None, None, r[9], None))
    if kind != INFERENCE or len(r) != 15:
        raise ValueError(f"row kind {kind!r} of {len(r)} fields")
    features = r[10]
    if features is not None and type(features) is not dict:
        raise ValueError("features is not a map")
    problems = r[14]
    probs = [(_REASONS[reason], detail) for reason, detail in problems] if problems else ()
    return Row(INFERENCE, (t, tie, index), position, EventView(event_id, model, r[9], t, features, r[11], r[12], r[13]), probs)


class RawsOf:
    """The bytes of row ``i`` for a dead letter, made only when one is written (see :meth:`Row.raw`)."""

    __slots__ = ("rows",)

    def __init__(self, rows: Sequence[Row]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: Any) -> Any:
        """Row ``i``'s bytes; a slice gives the view of those rows."""
        return type(self)(self.rows[i]) if isinstance(i, slice) else self._of(self.rows[i])

    @staticmethod
    def _of(row: Row) -> Any:
        return row.raw()


class PositionsOf(RawsOf):
    """Row ``i``'s :attr:`Row.position`, made only when asked for (an alert's or a dead letter's row)."""

    __slots__ = ()

    @staticmethod
    def _of(row: Row) -> Any:
        return row.position
