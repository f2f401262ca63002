"""JSON access logs, one line per request, each with a request id (also sent as X-Request-Id)."""

from __future__ import annotations

import logging
import re
import secrets
import sys
import time
from functools import lru_cache
from typing import Any

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("callhistory.access")
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


_encoder = msgspec.json.Encoder()


@lru_cache(maxsize=4)
def _second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


class JsonFormatter(logging.Formatter):
    """One JSON object per line, every request: encoded with msgspec, the second's text
    cached."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": f"{_second(int(record.created))}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _encoder.encode(entry).decode()


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("callhistory")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


# On every answer; API answers are never cached (the page's own headers: web.views).
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_NO_STORE = (b"cache-control", b"no-store")


class AccessLog:
    """ASGI middleware: assigns the request id, adds the security headers, times the request,
    logs one JSON line (with the client's address and the key's id, never the key)."""

    def __init__(self, app: ASGIApp, *, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.fullmatch(incoming) else secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        cached = scope["path"].startswith("/static/")

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [h for h in _SECURITY_HEADERS if h[0] not in names]
                if not cached and b"cache-control" not in names:
                    headers.append(_NO_STORE)
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.enabled:
                fields = {
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    "tenant_id": str(scope["state"].get("tenant_id", "")),
                    "key_id": scope["state"].get("key_id", ""),
                    "client": (scope.get("client") or ("",))[0],
                }
                logger.info("request", extra={"fields": fields})
