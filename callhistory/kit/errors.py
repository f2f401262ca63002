"""Domain exceptions; each carries its Twirp code and HTTP status (CONTRACT.md §1)."""

from __future__ import annotations

import re

import msgspec

_ERROR_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(?P<name>[^`]*)`")
_MISSING_FIELD = re.compile(r"^Object missing required field `(?P<name>[^`]*)`")
_NOT_AN_OBJECT = re.compile(r"^Expected `object`, got `(?P<got>[^`]*)`")


class ApiError(Exception):
    """Base of every error the API renders into ``{"code", "msg", "meta"}``."""

    code = "internal"
    status = 500

    def __init__(self, msg: str, **meta: str) -> None:
        super().__init__(msg)
        self.msg = msg
        self.meta = meta


class InvalidArgument(ApiError):
    code = "invalid_argument"
    status = 400

    def __init__(self, field: str, msg: str, **meta: str) -> None:
        super().__init__(f"{field}: {msg}" if field else msg, field=field, **meta)
        self.field = field
        self.detail = msg

    def within(self, prefix: str, **meta: str) -> InvalidArgument:
        """The same error, its field path placed under ``prefix`` (e.g. ``call_logs[3]``)."""
        path = f"{prefix}.{self.field}" if self.field else prefix
        extra = {k: v for k, v in self.meta.items() if k != "field"}
        return InvalidArgument(path, self.detail, **{**extra, **meta})


class Malformed(ApiError):
    code = "malformed"
    status = 400


class Unauthenticated(ApiError):
    code = "unauthenticated"
    status = 401


class PermissionDenied(ApiError):
    code = "permission_denied"
    status = 403


class NotFound(ApiError):
    code = "not_found"
    status = 404


class AlreadyExists(ApiError):
    code = "already_exists"
    status = 409


class BadRoute(ApiError):
    code = "bad_route"
    status = 404


class ResourceExhausted(ApiError):
    code = "resource_exhausted"
    status = 429


class BodyTooLarge(ResourceExhausted):
    """A body over the size limit: ``resource_exhausted`` with the more precise HTTP 413."""

    status = 413


class Canceled(ApiError):
    """The client went away before its request was read: nobody receives the answer, but the
    access log shows 499 (nginx's code for it), not a server error."""

    code = "canceled"
    status = 499


class RequestTimeout(ApiError):
    """A body that did not arrive in time (Twirp's ``deadline_exceeded``, HTTP 408)."""

    code = "deadline_exceeded"
    status = 408


class Internal(ApiError):
    code = "internal"
    status = 500


class Unavailable(ApiError):
    code = "unavailable"
    status = 503


def decode_error(
    error: msgspec.ValidationError | msgspec.DecodeError | UnicodeDecodeError,
) -> ApiError:
    """Map a decoding error to ``invalid_argument`` naming the field (a missing one by its own
    path, ``call_logs[3].source_id``), or ``malformed`` for a body that is not a JSON object."""
    if isinstance(error, UnicodeDecodeError):
        return Malformed("the body is not valid UTF-8")
    if not isinstance(error, msgspec.ValidationError):
        return Malformed("the body is not valid JSON")
    text = str(error)
    located = _ERROR_PATH.search(text)
    path = located.group("path").lstrip(".") if located else ""
    detail = text[: located.start()] if located else text
    named = _UNKNOWN_FIELD.match(detail) or _MISSING_FIELD.match(detail)
    if named:
        name = named.group("name")
        path = f"{path}.{name}" if path else name
        detail = "unknown field" if named.re is _UNKNOWN_FIELD else "required field is missing"
    elif not path and _NOT_AN_OBJECT.match(detail):
        return Malformed("the body must be a JSON object")
    elif not path:
        return Malformed(f"the body is not a request: {detail}")
    return InvalidArgument(path, detail)
