"""Signatures by the Standard Webhooks specification: ``whsec_`` secrets (base64 of random
bytes), and ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, one
signature per secret that signs (two while a rotated secret's predecessor still does)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

PREFIX = "whsec_"
_KEY_BYTES = 24


def new_secret() -> str:
    return PREFIX + base64.b64encode(os.urandom(_KEY_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    content = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secrets: list[str], *, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of a signed message."""
    signatures = " ".join(
        signature(secret, msg_id=msg_id, timestamp=timestamp, body=body) for secret in secrets
    )
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
    }
