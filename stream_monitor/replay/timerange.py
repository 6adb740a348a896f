"""Event-time ranges of a replay (``--from``/``--to``) and the event time the core gives a record."""

from __future__ import annotations

from dataclasses import dataclass

from stream_monitor.core import events as ev
from stream_monitor.replay.errors import ReplayUsageError


CALENDAR_MS = (-62_135_596_800_000, 253_402_300_799_999)  # 0001-01-01 .. 9999-12-31T23:59:59.999Z, UTC


@dataclass(frozen=True, slots=True)
class TimeRange:
    """An event-time range ``[start_ms, end_ms)``; ``None`` leaves that side open.

    >>> r = TimeRange.parse("2026-01-01T00:00:00Z", "1767225660000")
    >>> r.start_ms, r.end_ms, r.contains(1767225600000), r.contains(1767225660000)
    (1767225600000, 1767225660000, True, False)
    """

    start_ms: int | None = None
    end_ms: int | None = None

    @property
    def bounded(self) -> bool:
        """True when either side is set."""
        return self.start_ms is not None or self.end_ms is not None

    def contains(self, t_ms: int) -> bool:
        """Whether ``t_ms`` is in ``[start_ms, end_ms)``."""
        return (self.start_ms is None or t_ms >= self.start_ms) and (self.end_ms is None or t_ms < self.end_ms)

    @classmethod
    def parse(cls, from_text: str | None, to_text: str | None) -> TimeRange:
        """Parse ``--from``/``--to`` (ISO-8601 or epoch ms); errors name the flag."""
        bounds: list[int | None] = []
        for flag, text in (("--from", from_text), ("--to", to_text)):
            if text is None or text == "":
                bounds.append(None)
                continue
            try:
                bounds.append(ev.parse_event_time(text))
            except ValueError as exc:
                raise ReplayUsageError(f"{flag} {text!r}: {exc} (use ISO-8601, e.g. 2026-01-01T00:00:00Z, or epoch milliseconds)") from None
        start, end = bounds
        if start is not None and end is not None and end <= start:
            raise ReplayUsageError(f"--to {to_text!r} must be after --from {from_text!r}")
        return cls(start, end)


def record_event_time(value: bytes, timestamp_ms: int | None, max_bytes: int) -> int | None:
    """The event time the core will give this record, or ``None`` when it has none (a dead letter).

    Mirrors :func:`stream_monitor.core.events.decode_inference`: the ``ts`` field, else the record
    timestamp.

    >>> record_event_time(b'{"model": "m", "ts": "2026-01-01T00:00:00Z"}', None, 1 << 20)
    1767225600000
    >>> record_event_time(b'{"model": "m"}', 5, 1 << 20), record_event_time(b'{"ts": "soon"}', 5, 1 << 20)
    (5, None)
    """
    obj = ev.decode_json_object(value, max_bytes)
    if isinstance(obj, tuple):
        return None
    try:
        return ev.event_time_of(obj.get("ts"), timestamp_ms)
    except ValueError:
        return None

