"""Signed recording links: ``/v1/recordings/{tenant}/{id}/{name}?expires=…&signature=…``.

The signature (HMAC-SHA256 under a key derived from the database's cursor secret) covers the
tenant, the recording and the expiry, so a link opens that one recording until then; an
altered, expired or other tenant's link is refused without saying which it was.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache
from urllib.parse import quote

_CONTEXT = b"callhistory recording link v1"


@lru_cache(maxsize=4)
def link_key(cursor_secret: bytes) -> bytes:
    """The links' key, derived once per secret (it is asked for on every page)."""
    return hmac.new(cursor_secret, _CONTEXT, hashlib.sha256).digest()


def signature(key: bytes, *, tenant_id: int, recording_id: int, expires: int) -> str:
    message = f"{tenant_id}:{recording_id}:{expires}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def path(key: bytes, *, tenant_id: int, recording_id: int, name: str, expires: int) -> str:
    sig = signature(key, tenant_id=tenant_id, recording_id=recording_id, expires=expires)
    return (
        f"/v1/recordings/{tenant_id}/{recording_id}/{quote(name)}?expires={expires}&signature={sig}"
    )


def valid(
    key: bytes, *, tenant_id: int, recording_id: int, expires: int, given: str, now: int
) -> bool:
    """Whether ``given`` signs this recording until ``expires`` (seconds), and that is after
    ``now``."""
    expected = signature(key, tenant_id=tenant_id, recording_id=recording_id, expires=expires)
    return now < expires and hmac.compare_digest(expected, given)
