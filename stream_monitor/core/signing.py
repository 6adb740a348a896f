"""HMAC-SHA256 authentication of stored state records (pure: no I/O, no clock).

A signed blob is ``mac (32 bytes) + version byte + payload``; :func:`verify_state` returns the
payload only when the MAC verifies with the secret and the version byte is the one written here.

>>> blob = sign_state(b"payload", b"k" * 32)
>>> verify_state(blob, b"k" * 32)
b'payload'
>>> verify_state(blob, b"x" * 32)
Traceback (most recent call last):
...
stream_monitor.core.signing.StateAuthError: state record signature does not verify (wrong secret or forged record)
"""

from __future__ import annotations

import hashlib
import hmac

SIGNED_FORMAT_VERSION = 1
_MAC_LEN = 32


class StateAuthError(ValueError):
    """A state record's signature did not verify: it is not loaded."""


def sign_state(payload: bytes, secret: bytes) -> bytes:
    """Prefix ``payload`` with a version byte and an HMAC-SHA256 over both."""
    body = bytes([SIGNED_FORMAT_VERSION]) + payload
    return hmac.new(secret, body, hashlib.sha256).digest() + body


def verify_state(blob: bytes, secret: bytes) -> bytes:
    """Return the payload of a signed state blob, or raise :class:`StateAuthError`."""
    if len(blob) < _MAC_LEN + 1:
        raise StateAuthError("state record too short to carry a signature")
    mac, body = blob[:_MAC_LEN], blob[_MAC_LEN:]
    if not hmac.compare_digest(mac, hmac.new(secret, body, hashlib.sha256).digest()):
        raise StateAuthError("state record signature does not verify (wrong secret or forged record)")
    if body[0] != SIGNED_FORMAT_VERSION:
        raise StateAuthError(f"state record format {body[0]} is not {SIGNED_FORMAT_VERSION}")
    return body[1:]
