"""The typed views msgspec reads the rows records of :mod:`stream_monitor.core.exchange` into, in one pass.

:class:`ColumnsView` is an inference event of a columnar rows record (``COLUMNS_FORMAT`` 3, ``PACKED_FORMAT`` 4,
``CODED_FORMAT`` 5: the numbers in the records' ``format`` fields below), :class:`EventView` one of any other;
``ColumnsRecord``, ``PackedRecord`` and ``CodedRecord`` are whole records of those formats (``exchange``'s
``_typed_columns`` reads them; what they refuse, its general reading words as a :class:`RowsFormatError`).
"""

from __future__ import annotations

from typing import Any, Literal, Union

import msgspec


class EventView:
    """An inference or label event read back from a rows record: the validated values, no validation again.

    It has the attributes the judging step reads (those of ``InferenceEvent`` / ``LabelEvent``);
    building it costs a fraction of a pydantic instance, and a model's judge builds one per event.
    """

    __slots__ = ("event_id", "model", "model_version", "ts", "features", "prediction", "label", "latency_ms")

    def __init__(self, event_id: Any, model: str, model_version: Any, ts: Any, features: Any, prediction: Any, label: Any, latency_ms: Any) -> None:
        self.event_id = event_id
        self.model = model
        self.model_version = model_version
        self.ts = ts
        self.features = features
        self.prediction = prediction
        self.label = label
        self.latency_ms = latency_ms

    @property
    def __dict__(self) -> dict[str, Any]:  # type: ignore[override]
        """The fields as a map (what :meth:`Row.raw` writes)."""
        return {k: getattr(self, k) for k in EventView.__slots__}


class _Local:
    """The type of a :class:`ColumnsView` field set where it is read, never sent: a wire row that has one is refused."""


def not_on_wire(kind: type, obj: Any) -> Any:
    """msgspec's ``dec_hook`` for the views: a wire row with a field of :class:`_Local` type is refused."""
    raise ValueError("not a wire field")


_S = Union[None, bool, int, float, str]  # a value as reading writes it (what pydantic's Scalar and fast_values take)


class ColumnsView(msgspec.Struct, array_like=True, gc=False, eq=False):
    """An inference event read from a columnar rows record, made by msgspec from the row's wire form (its fields in
    wire order, ``ts`` the event time; types checked), with the attributes judging reads (``InferenceEvent``'s); ``model``
    and the ``names`` (shared by the record's rows) set when read. The features object is made only when asked for
    (the judge's gathering takes the values as they are: :func:`~stream_monitor.core.gathering.uniform_columns`)."""

    kind: Literal[0]
    topic: str
    partition: int
    offset: int
    timestamp_ms: Union[int, None]
    ts: int
    tie: int
    index: int
    event_id: Union[str, None]
    model_version: Union[str, None]
    values: tuple[_S, ...]  # (a tuple: GC untracks it, a row waiting in the event-time order costs later collections nothing)
    prediction: Union[_S, dict[str, _S]]
    label: _S
    latency_ms: Union[int, float, None]
    problems: tuple[tuple[str, str], ...]  # (a tuple: none is the shared empty tuple, no list per row)
    model: _Local = None  # type: ignore[assignment]  # (set when read: never on the wire)
    names: _Local = None  # type: ignore[assignment]
    made: _Local = None  # type: ignore[assignment]  # the features object, once asked for
    block: _Local = None  # type: ignore[assignment]  # a PACKED_FORMAT or CODED_FORMAT record's packed and coded columns (core/packed.py), else None
    at: _Local = None  # type: ignore[assignment]  # the row's place in them

    @property
    def features(self) -> dict[str, Any]:
        """The features object (names to values, in the names' order), made once when first asked for."""
        f = self.made
        if f is None:
            b = self.block
            f = self.made = dict(zip(self.names, self.values)) if b is None else b.features(self.at, self.values)  # type: ignore[assignment,arg-type]
        return f  # type: ignore[return-value]

    __dict__ = vars(EventView)["__dict__"]  # the fields as a map (what Row.raw writes)


class ColumnsRecord(msgspec.Struct, array_like=True, gc=False):
    """A ``COLUMNS_FORMAT`` record (``group``, ``groups`` None: not sent)."""

    format: Literal[3]
    model: str
    names: list[str]
    rows: list[ColumnsView]
    group: int = None  # type: ignore[assignment]
    groups: int = None  # type: ignore[assignment]


class PackedRecord(msgspec.Struct, array_like=True, gc=False):
    """A ``PACKED_FORMAT`` record: its float columns packed (``core/packed.py``)."""

    format: Literal[4]
    model: str
    names: list[str]
    rows: list[ColumnsView]
    packed: list[int]
    data: bytes
    group: int = None  # type: ignore[assignment]
    groups: int = None  # type: ignore[assignment]
    coded = categories = ()  # type: ignore[var-annotated]  # (a class attribute: never on the wire of this format)
    codes = b""


class CodedRecord(msgspec.Struct, array_like=True, gc=False):
    """A ``CODED_FORMAT`` record: its float columns packed, its text columns coded (``core/packed.py``)."""

    format: Literal[5]
    model: str
    names: list[str]
    rows: list[ColumnsView]
    packed: list[int]
    data: bytes
    coded: list[int]
    categories: list[list[str]]
    codes: bytes
    group: int = None  # type: ignore[assignment]
    groups: int = None  # type: ignore[assignment]
