"""State record signatures: bound to the record's key and partition, key ids, rotation, old formats."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_monitor.core.signing import SigningKeys, StateAuthError, key_id, sign_state, verify_state

OLD = b"o" * 16 + bytes(range(16))
NEW = bytes(range(32, 64))


def reason(blob: bytes, keys: SigningKeys | bytes, context: bytes = b"") -> str:
    with pytest.raises(StateAuthError) as info:
        verify_state(blob, keys, context)
    return info.value.reason


def test_a_signed_item_moved_to_another_key_or_partition_is_rejected():
    blob = sign_state(b"state", NEW, b"0\x1fc\x1fm\x1fx")
    assert verify_state(blob, NEW, b"0\x1fc\x1fm\x1fx") == b"state"
    assert reason(blob, NEW, b"0\x1fc\x1fm\x1fy") == "signature"  # another key
    assert reason(blob, NEW, b"1\x1fc\x1fm\x1fx") == "signature"  # another partition


def test_records_carry_the_key_id_of_the_secret_that_signed_them():
    blob = sign_state(b"state", NEW)
    assert key_id(NEW) in blob[:64]
    assert key_id(NEW) == hashlib.sha256(NEW).hexdigest()[:8].encode()
    assert SigningKeys(NEW).current_id == key_id(NEW).decode()


def test_rotation_accepts_the_previous_secret_and_signs_with_the_current_one():
    old_blob = sign_state(b"old", OLD, b"k")
    rotating = SigningKeys(NEW, (OLD,))
    assert verify_state(old_blob, rotating, b"k") == b"old"
    new_blob = sign_state(b"new", rotating, b"k")
    assert verify_state(new_blob, SigningKeys(NEW), b"k") == b"new"
    assert reason(new_blob, SigningKeys(OLD), b"k") == "unknown_key"
    assert reason(old_blob, SigningKeys(NEW), b"k") == "unknown_key"  # rotation finished: old state dropped


def test_records_of_the_previous_format_are_recognised_by_version_never_misread():
    body = b"\x01" + b"payload-of-the-old-format"
    previous = hmac.new(NEW, body, hashlib.sha256).digest() + body  # what version 1 wrote
    assert reason(previous, NEW) == "old_format"


def test_short_and_unknown_format_records_are_rejected():
    assert reason(b"", NEW) == "malformed"
    assert reason(b"\x00" * 32, NEW) == "malformed"
    assert reason(b"\x00" * 32 + b"\x07" + b"x" * 20, NEW) == "unknown_format"
    assert reason(b"\x00" * 32 + b"\x02" + b"abc", NEW) == "malformed"


@given(st.binary(max_size=200), st.binary(max_size=40))
def test_any_bytes_verify_or_raise_state_auth_error(blob, context):
    try:
        verify_state(blob, SigningKeys(NEW, (OLD,)), context)
    except StateAuthError as exc:
        assert exc.reason in {"malformed", "old_format", "unknown_format", "unknown_key", "signature"}
