"""Secrets the service must give back later (SIP passwords), sealed with AES-GCM.

The key is the operator's ``CALLHISTORY_DATA_KEY``; without one, a key kept in the database is
used (which protects nothing against a copy of the database: set the variable in production).
A sealed value names the key it was sealed with, so values sealed with an earlier key are still
opened and are sealed again with the current one when the service starts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from callhistory.kit.config import ConfigError

_PREFIX = "s1:"
_NONCE = 12


def _kid(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def parse_key(text: str, *, variable: str = "CALLHISTORY_DATA_KEY") -> bytes:
    """32 bytes from base64 (URL-safe or not); ``ConfigError`` naming ``variable`` otherwise."""
    try:
        key = base64.urlsafe_b64decode(text.strip().replace("+", "-").replace("/", "_") + "==")
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ConfigError(
            f"{variable}: must be 32 random bytes in base64, e.g. from "
            '`python -c "import secrets; print(secrets.token_urlsafe(32))"`'
        )
    return key


def parse_keys(text: str) -> list[bytes]:
    """The keys of ``CALLHISTORY_DATA_KEY`` (comma-separated, the sealing one first)."""
    return [parse_key(part) for part in text.split(",") if part.strip()]


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


class Sealer:
    """Seals with the first key, opens with any of them."""

    def __init__(self, keys: list[bytes]) -> None:
        self._keys = {_kid(key): AESGCM(key) for key in keys}
        self._primary = _kid(keys[0])

    def seal(self, plain: str, *, context: str) -> str:
        """``context`` (the record's identity) is bound in: a sealed value moved to another
        record does not open."""
        nonce = os.urandom(_NONCE)
        box = self._keys[self._primary].encrypt(nonce, plain.encode(), context.encode())
        return f"{_PREFIX}{self._primary}:{base64.urlsafe_b64encode(nonce + box).decode()}"

    def open(self, value: str, *, context: str) -> str:
        """The secret; a value stored before sealing existed is returned as it is, and one
        that cannot be opened (a key no longer configured) as ""."""
        if not value.startswith(_PREFIX):
            return value
        kid, _, data = value[len(_PREFIX) :].partition(":")
        aead = self._keys.get(kid)
        if aead is None:
            return ""
        try:
            raw = base64.urlsafe_b64decode(data)
            return aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode()).decode()
        except (InvalidTag, ValueError):  # a damaged value (binascii.Error is a ValueError)
            return ""

    def current(self, value: str) -> bool:
        """Whether ``value`` is sealed with the current key."""
        return value.startswith(f"{_PREFIX}{self._primary}:")
