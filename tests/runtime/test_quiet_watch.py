"""``QuietWatch.observe_ends``: the end offsets asked of the broker at assignment start a partition's quiet,
and, with ``older_than_s``, the records' timestamps can move that start back by the grace.

The consumer here is a stand-in with only ``end_offsets`` and ``offsets_for_times`` (what the method
calls); the broker's side is ``tests/integration/test_backlog_quiet.py``.
"""

from __future__ import annotations

from kafka.errors import KafkaTimeoutError

from stream_monitor.runtime.idle import QuietWatch


class Ends:
    """``end_offsets`` answering from a dict, or raising what it is given; ``offsets_for_times`` from ``found``."""

    def __init__(self, ends: dict[str, int] | None = None, error: Exception | None = None, found: dict[str, object] | None = None,
                 found_error: Exception | None = None) -> None:
        self.ends, self.error, self.asked = ends or {}, error, []
        self.found, self.found_error, self.asked_times = found or {}, found_error, []

    def offsets_for_times(self, timestamps: dict[str, int], timeout_ms: int | None = None) -> dict[str, object]:
        self.asked_times.append((dict(timestamps), timeout_ms))
        if self.found_error is not None:
            raise self.found_error
        return {p: self.found.get(p) for p in timestamps}

    def end_offsets(self, partitions: list[str], timeout_ms: int | None = None) -> dict[str, int]:
        self.asked.append((list(partitions), timeout_ms))
        if self.error is not None:
            raise self.error
        return {p: self.ends[p] for p in partitions}


def test_a_backlog_counts_as_quiet_from_its_assignment_while_its_high_watermark_stands() -> None:
    t = [10.0]
    w = QuietWatch(clock=lambda: t[0])
    w.observe_ends(Ends({"p0": 500, "p1": 700}), ["p0", "p1"], timeout_ms=1234)
    t[0] = 14.0
    w.observe([("p0", 500), ("p1", None)])  # p0's first fetch says what the broker said at assignment; p1 not fetched yet
    t[0] = 16.0
    assert (w.quiet_for("p0"), w.quiet_for("p1")) == (6.0, 6.0)


def test_a_different_high_watermark_at_the_first_fetch_restarts_the_clock() -> None:
    """Grown since, or the last stable offset of a read_committed consumer below the high watermark."""
    t = [10.0]
    w = QuietWatch(clock=lambda: t[0])
    w.observe_ends(Ends({"p0": 500}), ["p0"])
    t[0] = 14.0
    w.observe([("p0", 520)])
    t[0] = 15.0
    assert w.quiet_for("p0") == 1.0


def test_no_answer_notes_nothing_and_no_partitions_ask_nothing() -> None:
    t = [10.0]
    w = QuietWatch(clock=lambda: t[0])
    silent = Ends(error=KafkaTimeoutError("no answer"))
    w.observe_ends(silent, ["p0"])
    assert silent.asked == [(["p0"], 5000)]
    t[0] = 20.0
    assert w.quiet_for("p0") == 0.0  # never seen: as without the question
    none = Ends()
    w.observe_ends(none, [])
    assert none.asked == []


def test_here_is_the_quiet_as_of_now_of_a_partition_read_here_and_nothing_of_another() -> None:
    t = [10.0]
    w = QuietWatch(clock=lambda: t[0])
    w.observe([("p0", 100)])
    t[0] = 13.5
    assert w.here("p0") == 3.5  # the marker may have left at 11.0 saying 1.0: here counts the hop too
    assert w.here("elsewhere") == 0.0  # not read here: the marker's word only
    w.observe([("p0", 130)])  # grew: from now
    t[0] = 14.0
    assert w.here("p0") == 0.5
    w.local = False
    assert w.here("p0") == 0.0


def test_partitions_with_no_record_stamped_within_the_grace_count_as_quiet_for_the_grace_at_once() -> None:
    """p0's records are all older than the grace (no offset found), p1 has one stamped since: only p0 is moved back."""
    t = [100.0]
    w = QuietWatch(clock=lambda: t[0], older_than_s=5.0, wall=lambda: 1_000_000.0)
    broker = Ends({"p0": 500, "p1": 700}, found={"p0": None, "p1": (690, 999_998_000)})
    w.observe_ends(broker, ["p0", "p1"], timeout_ms=1234)
    assert broker.asked_times == [({"p0": 999_995_000, "p1": 999_995_000}, 1234)]  # stamped at most 5 s before the wall clock
    assert (w.quiet_for("p0"), w.quiet_for("p1")) == (5.0, 0.0)
    t[0] = 101.0
    w.observe([("p0", 500)])
    assert w.quiet_for("p0") == 6.0  # the same end: the quiet goes on
    w.observe([("p0", 501)])
    assert w.quiet_for("p0") == 0.0  # grown: counted from now, as ever


def test_no_credit_when_switched_off_or_unanswered_and_never_a_later_start() -> None:
    t = [100.0]
    off = Ends({"p0": 500}, found={"p0": None})
    w = QuietWatch(clock=lambda: t[0])  # older_than_s 0: kafka.grace_from_record_timestamps off
    w.observe_ends(off, ["p0"])
    assert off.asked_times == [] and w.quiet_for("p0") == 0.0
    silent = Ends({"p0": 500}, found_error=KafkaTimeoutError("no answer"))
    w = QuietWatch(clock=lambda: t[0], older_than_s=5.0)
    w.observe_ends(silent, ["p0"])
    assert len(silent.asked_times) == 1 and w.quiet_for("p0") == 0.0
    w = QuietWatch(clock=lambda: t[0], older_than_s=5.0)
    w.observe([("p0", 520)])
    t[0] = 109.0  # seen with this end for 9 s already: the answer never moves the start forward
    w.observe_ends(Ends({"p0": 520}, found={"p0": None}), ["p0"])
    assert w.quiet_for("p0") == 9.0
