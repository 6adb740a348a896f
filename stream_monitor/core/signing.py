"""HMAC-SHA256 authentication of stored state records (pure: no I/O, no clock).

A signed blob is ``mac (32 bytes) | version (1 byte) | key id (8 bytes) | payload``. The MAC
covers the version, the key id, a *context* (the record's key, and for the changelog its
partition) and the payload, so a signed item moved to another key or partition does not verify.
The key id names the secret that signed it (:func:`key_id`), so during a rotation records signed
with a previous secret still verify while new ones are signed with the current secret.

Blobs of the previous format (version 1: no key id, no context) are recognised by their version
byte and refused with reason ``old_format``: never misread.

>>> keys = SigningKeys(b"k" * 32)
>>> blob = sign_state(b"payload", keys, context=b"0\\x1fitem")
>>> verify_state(blob, keys, context=b"0\\x1fitem")
b'payload'
>>> verify_state(blob, keys, context=b"1\\x1fitem")
Traceback (most recent call last):
...
stream_monitor.core.signing.StateAuthError: state record signature does not verify (wrong secret, forged, or moved to another key)
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

SIGNED_FORMAT_VERSION = 2
PREVIOUS_FORMAT_VERSIONS = frozenset({1})
_MAC_LEN = 32
_KEY_ID_LEN = 8
HEADER_LEN = _MAC_LEN + 1 + _KEY_ID_LEN
REJECT_REASONS = ("malformed", "old_format", "unknown_format", "unknown_key", "signature")


class StateAuthError(ValueError):
    """A state record that is not loaded; ``reason`` says why (a short metric label).

    Reasons: ``malformed``, ``old_format``, ``unknown_format``, ``unknown_key``, ``signature``.
    """

    def __init__(self, message: str, reason: str = "signature") -> None:
        super().__init__(message)
        self.reason = reason


def key_id(secret: bytes) -> bytes:
    """The 8-character id of a secret: the first 8 hex digits of its SHA-256 (safe to log).

    >>> key_id(b"k" * 32)
    b'5e318f8c'
    """
    return hashlib.sha256(secret).hexdigest()[:_KEY_ID_LEN].encode()


@dataclass(frozen=True)
class SigningKeys:
    """The current secret (signs and verifies) and previous ones (verify only, during a rotation)."""

    current: bytes
    previous: tuple[bytes, ...] = ()

    def by_id(self, kid: bytes) -> bytes | None:
        """The secret whose :func:`key_id` is ``kid``, or None."""
        for secret in (self.current, *self.previous):
            if hmac.compare_digest(key_id(secret), kid):
                return secret
        return None

    @property
    def current_id(self) -> str:
        """The key id new records carry."""
        return key_id(self.current).decode()


def _keys(keys: SigningKeys | bytes) -> SigningKeys:
    return keys if isinstance(keys, SigningKeys) else SigningKeys(keys)


def _mac(secret: bytes, version: int, kid: bytes, context: bytes, payload: bytes) -> bytes:
    h = hmac.new(secret, bytes([version]) + kid + len(context).to_bytes(4, "big"), hashlib.sha256)
    h.update(context)
    h.update(payload)
    return h.digest()


def sign_state(payload: bytes, keys: SigningKeys | bytes, context: bytes = b"") -> bytes:
    """Sign ``payload`` bound to ``context`` (e.g. partition and record key) with the current secret."""
    k = _keys(keys)
    kid = key_id(k.current)
    mac = _mac(k.current, SIGNED_FORMAT_VERSION, kid, context, payload)
    return mac + bytes([SIGNED_FORMAT_VERSION]) + kid + payload


def verify_state(blob: bytes, keys: SigningKeys | bytes, context: bytes = b"") -> bytes:
    """Return the payload of a blob signed for ``context``, or raise :class:`StateAuthError`."""
    if len(blob) <= _MAC_LEN:
        raise StateAuthError("state record too short to carry a signature", "malformed")
    version = blob[_MAC_LEN]
    if version in PREVIOUS_FORMAT_VERSIONS:
        raise StateAuthError(f"state record of the previous format {version}: dropped, the channel starts again", "old_format")
    if version != SIGNED_FORMAT_VERSION:
        raise StateAuthError(f"state record format {version} is not {SIGNED_FORMAT_VERSION}", "unknown_format")
    if len(blob) < HEADER_LEN:
        raise StateAuthError("state record too short to carry a key id", "malformed")
    kid = blob[_MAC_LEN + 1 : HEADER_LEN]
    secret = _keys(keys).by_id(kid)
    if secret is None:
        raise StateAuthError(f"state record signed with an unknown key id {kid.decode('ascii', 'replace')!r}", "unknown_key")
    payload = blob[HEADER_LEN:]
    if not hmac.compare_digest(blob[:_MAC_LEN], _mac(secret, version, kid, context, payload)):
        raise StateAuthError("state record signature does not verify (wrong secret, forged, or moved to another key)", "signature")
    return payload
