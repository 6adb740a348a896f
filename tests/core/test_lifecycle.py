"""AlertLifecycle: every transition, in event time; fingerprint and alert_id determinism."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_monitor.core.lifecycle import AlertLifecycle, alert_id, fingerprint
from stream_monitor.core.settings import LifecycleSettings

S = 1000  # ms per second


def life(**kw) -> AlertLifecycle:
    base = {"min_consecutive": 1, "resolve_after": 1, "resolve_after_seconds": 0.0, "cooldown_seconds": 0.0}
    return AlertLifecycle(LifecycleSettings(**{**base, **kw}))


def run(lc: AlertLifecycle, steps) -> list:
    """steps: (breached, t_ms[, severity]) tuples → list of transitions."""
    out = []
    for step in steps:
        breached, t = step[0], step[1]
        sev = step[2] if len(step) > 2 else "warning"
        out.append(lc.observe(breached, t, sev, offset=t, statistic=float(t)))
    return out


def test_defaults_are_the_documented_ones():
    s = LifecycleSettings()
    assert (s.min_consecutive, s.resolve_after, s.resolve_after_seconds, s.cooldown_seconds, s.escalate) == (2, 4, 0.0, 300.0, True)


def test_ok_stays_ok_without_breaches():
    lc = life()
    assert run(lc, [(False, t) for t in range(5)]) == [None] * 5
    assert lc.state == "ok" and not lc.firing and lc.episode_start_ms is None


def test_fires_on_first_breach_with_min_consecutive_one():
    lc = life()
    assert lc.observe(True, 10, "warning", offset=7, statistic=0.3) == "firing"
    assert lc.firing
    assert (lc.episode_start_ms, lc.episode_offset, lc.severity, lc.peak_statistic, lc.ended_ms) == (10, 7, "warning", 0.3, None)


def test_min_consecutive_needs_uninterrupted_breaches():
    lc = life(min_consecutive=3)
    assert run(lc, [(True, 1), (True, 2), (False, 3), (True, 4), (True, 5)]) == [None] * 5
    assert not lc.firing and lc.consecutive_breaches == 2
    assert run(lc, [(True, 6)]) == ["firing"]
    assert lc.episode_start_ms == 6  # the episode starts at the breach that met the evidence rule


def test_dedup_while_firing():
    lc = life()
    assert run(lc, [(True, t) for t in range(1, 20)]) == ["firing"] + [None] * 18
    assert lc.episode_start_ms == 1
    assert lc.peak_statistic == 19.0  # the peak is tracked while firing


def test_escalation_once_per_severity_rise():
    lc = life()
    steps = [(True, 1, "info"), (True, 2, "info"), (True, 3, "warning"), (True, 4, "warning"), (True, 5, "critical"), (True, 6, "info"), (True, 7, "critical")]
    assert run(lc, steps) == ["firing", None, "escalated", None, "escalated", None, None]
    assert lc.severity == "critical" and lc.episode_start_ms == 1  # same episode


def test_no_escalation_when_disabled():
    lc = life(escalate=False)
    assert run(lc, [(True, 1, "warning"), (True, 2, "critical")]) == ["firing", None]
    assert lc.severity == "warning"


def test_resolve_after_count_of_consecutive_clear_evaluations():
    lc = life(resolve_after=3)
    assert run(lc, [(True, 1), (False, 2), (False, 3), (True, 4), (False, 5), (False, 6)]) == ["firing"] + [None] * 5
    assert lc.firing
    assert run(lc, [(False, 7)]) == ["resolved"]
    assert not lc.firing and lc.ended_ms == 7 and lc.episode_start_ms == 1


def test_resolve_after_seconds_needs_a_span_of_event_time():
    lc = life(resolve_after=2, resolve_after_seconds=60)
    assert run(lc, [(True, 0), (False, 10 * S), (False, 20 * S), (False, 69 * S)]) == ["firing", None, None, None]
    assert run(lc, [(False, 70 * S)]) == ["resolved"]  # 60 s since the first clear evaluation (t=10 s)
    assert lc.ended_ms == 70 * S


def test_resolve_after_seconds_restarts_on_a_breach():
    lc = life(resolve_after=1, resolve_after_seconds=60)
    assert run(lc, [(True, 0), (False, 10 * S), (False, 50 * S), (True, 60 * S), (False, 80 * S), (False, 130 * S)]) == [
        "firing", None, None, None, None, None
    ]
    assert run(lc, [(False, 140 * S)]) == ["resolved"]


def test_resolve_needs_both_count_and_span():
    lc = life(resolve_after=5, resolve_after_seconds=1)
    # span reached long before the count
    assert run(lc, [(True, 0)] + [(False, t * 10 * S) for t in range(1, 5)]) == ["firing"] + [None] * 4
    assert run(lc, [(False, 50 * S)]) == ["resolved"]


def test_cooldown_suppresses_refiring_in_event_time():
    lc = life(cooldown_seconds=300)
    assert run(lc, [(True, 0), (False, 10 * S)]) == ["firing", "resolved"]
    assert lc.cooldown_until_ms == 310 * S
    assert run(lc, [(True, 100 * S), (True, 309 * S)]) == [None, None]
    assert not lc.firing
    assert run(lc, [(True, 310 * S)]) == ["firing"]
    assert lc.episode_start_ms == 310 * S and lc.ended_ms is None


def test_cooldown_with_min_consecutive_counts_evidence_inside_cooldown():
    lc = life(min_consecutive=2, cooldown_seconds=100)
    assert run(lc, [(True, 0), (True, 1), (False, 2)]) == [None, "firing", "resolved"]
    # a clear evaluation inside the cooldown resets the evidence
    assert run(lc, [(True, 50 * S), (False, 60 * S), (True, 101 * S)]) == [None, None, None]
    assert run(lc, [(True, 102 * S)]) == ["firing"]


def test_second_episode_is_a_new_episode():
    lc = life()
    assert run(lc, [(True, 1), (False, 2), (True, 3)]) == ["firing", "resolved", "firing"]
    assert lc.episode_start_ms == 3 and lc.episode_offset == 3 and lc.ended_ms is None


def test_event_time_going_backwards_never_resolves_early():
    lc = life(resolve_after=1, resolve_after_seconds=10)
    assert run(lc, [(True, 100 * S), (False, 100 * S), (False, 50 * S)]) == ["firing", None, None]
    assert lc.firing


def test_lifecycle_state_survives_pickle():
    lc = life(min_consecutive=2, resolve_after=2)
    run(lc, [(True, 1), (True, 2), (False, 3)])
    clone = pickle.loads(pickle.dumps(lc))
    tail = [(False, 4), (True, 5), (True, 6)]
    assert run(clone, tail) == run(lc, tail) == ["resolved", None, "firing"]


def test_doctest_example_of_the_module():
    lc = AlertLifecycle(LifecycleSettings(min_consecutive=2, resolve_after=2, cooldown_seconds=0))
    assert [lc.observe(b, t, "warning") for b, t in [(True, 1), (True, 2), (True, 3), (False, 4), (False, 5)]] == [
        None, "firing", None, None, "resolved"
    ]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(0, 50), st.sampled_from(["info", "warning", "critical"])), max_size=80),
    st.integers(1, 4),
    st.integers(1, 4),
    st.sampled_from([0.0, 5.0, 30.0]),
    st.sampled_from([0.0, 20.0]),
)
def test_transitions_form_well_nested_episodes(steps, min_consecutive, resolve_after, resolve_s, cooldown_s):
    lc = life(min_consecutive=min_consecutive, resolve_after=resolve_after, resolve_after_seconds=resolve_s, cooldown_seconds=cooldown_s)
    t = 0
    state = "ok"
    for breached, dt, sev in steps:
        t += dt * S
        tr = lc.observe(breached, t, sev)
        if tr == "firing":
            assert state == "ok" and breached
            state = "firing"
        elif tr == "resolved":
            assert state == "firing" and not breached
            state = "ok"
        elif tr == "escalated":
            assert state == "firing" and breached
        assert lc.state == state


# ------------------------------------------------------------------------------ identities
def test_fingerprint_is_stable_and_distinguishes_every_component():
    fp = fingerprint("fraud-v3", "amount", "psi")
    assert fp == fingerprint("fraud-v3", "amount", "psi") == "8cb3ad2802c5078b"  # same on every run
    assert fingerprint("fraud-v3", "amount") == "3d8bec3b461c3d10"  # the channel's page
    assert len(fp) == 16 and int(fp, 16) >= 0
    others = {
        fingerprint("fraud-v4", "amount", "psi"),
        fingerprint("fraud-v3", "amount2", "psi"),
        fingerprint("fraud-v3", "amount", "ks"),
        fingerprint("fraud-v3", "amount"),
        # the separator keeps component boundaries apart
        fingerprint("fraud-v3a", "mount", "psi"),
    }
    assert fp not in others and len(others) == 5


def test_fingerprint_is_stable_across_processes():
    import subprocess
    import sys

    code = "from stream_monitor.core.lifecycle import fingerprint; print(fingerprint('m', 'x', 'adwin'), fingerprint('m', 'x'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""}).stdout.strip()
    assert out == f"{fingerprint('m', 'x', 'adwin')} {fingerprint('m', 'x')}"


def test_alert_id_is_deterministic_per_episode():
    fp = fingerprint("m", "x")
    a = alert_id(fp, 1_700_000_000_000, 42)
    assert a == alert_id(fp, 1_700_000_000_000, 42) and len(a) == 32
    assert a != alert_id(fp, 1_700_000_000_001, 42)
    assert a != alert_id(fp, 1_700_000_000_000, 43)
    assert a != alert_id(fingerprint("m", "x", "ks"), 1_700_000_000_000, 42)


@pytest.mark.parametrize("detector", [None, "js"])
def test_fingerprint_hex(detector):
    assert all(c in "0123456789abcdef" for c in fingerprint("m", "é✓", detector))
