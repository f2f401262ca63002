"""Keyset paging shared by every list method: paging rules, signed cursors, page assembly.

A cursor holds a position (the sort value and id of a row), the way it points (after or before),
the sort and a hash of the filter it was minted under. It is signed with a secret kept in the
database and bound to the tenant, so an altered cursor, or one from another tenant, sort or filter,
is rejected instead of silently paging something else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Generic, TypeVar

import msgspec

from callhistory.kit.errors import InvalidArgument
from callhistory.kit.schemas import Paging, PagingRead

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
_VERSION: Final = 1
_MAC_BYTES: Final = 16

Key = tuple[int, int]
Row = TypeVar("Row")


class PageRequest(msgspec.Struct, frozen=True, kw_only=True):
    after: str
    before: str
    limit: int
    sort: str


def whole_number(value: int | str, field: str, *, maximum: int) -> int:
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit() and len(value) <= 10):
            raise InvalidArgument(field, "must be a whole number")
        value = int(value)
    if not 0 <= value <= maximum:
        raise InvalidArgument(field, f"must be between 0 and {maximum}")
    return value


def parse_paging(
    raw: Paging | None, *, default_sort: str, allowed_sorts: Sequence[str]
) -> PageRequest:
    raw = raw or Paging()
    limit = whole_number(raw.limit, "paging.limit", maximum=MAX_LIMIT) or DEFAULT_LIMIT
    sort = raw.sort or default_sort
    if sort not in allowed_sorts:
        allowed = ", ".join(allowed_sorts)
        raise InvalidArgument("paging.sort", f"must be one of {allowed}", allowed=allowed)
    if raw.after and raw.before:
        raise InvalidArgument("paging.before", "cannot be given together with paging.after")
    return PageRequest(after=raw.after, before=raw.before, limit=limit, sort=sort)


def _seal(secret: bytes, context: bytes, payload: bytes) -> str:
    """``payload`` with its MAC (bound to ``context``: the tenant, and what the text is for),
    as URL-safe text."""
    mac = hmac.new(secret, context + payload, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()


def _unseal(secret: bytes, context: bytes, text: str, field: str, what: str) -> bytes:
    """The payload of a text ``_seal`` made with this secret and context, else
    ``invalid_argument`` naming ``field``."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise InvalidArgument(field, f"is not a {what} of this API") from None
    payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    expected = hmac.new(secret, context + payload, hashlib.sha256).digest()[:_MAC_BYTES]
    if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, expected):
        raise InvalidArgument(field, f"is not a valid {what} (altered, or of another tenant)")
    return payload


class _Cursor(msgspec.Struct, array_like=True, frozen=True):
    version: int
    forward: bool
    sort: str
    filter_hash: str
    value: int
    id: int


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Cursor)


class CursorCodec:
    """Signs and checks cursors for one tenant, one sort and one filter."""

    def __init__(self, *, secret: bytes, tenant_id: int, sort: str, filter_key: bytes) -> None:
        self._secret = secret
        self._tenant = tenant_id.to_bytes(8, "big")
        self._sort = sort
        self._filter_hash = hashlib.blake2b(filter_key, digest_size=8).hexdigest()

    def encode(self, key: Key, *, forward: bool) -> str:
        cursor = _Cursor(_VERSION, forward, self._sort, self._filter_hash, key[0], key[1])
        return _seal(self._secret, self._tenant, _encoder.encode(cursor))

    def decode(self, text: str, field: str) -> tuple[Key, bool]:
        """The position and direction of a cursor, or ``invalid_argument`` naming ``field``."""
        payload = _unseal(self._secret, self._tenant, text, field, "cursor")
        try:
            cursor = _decoder.decode(payload)
        except msgspec.DecodeError:
            raise InvalidArgument(field, "is not a cursor of this API") from None
        if cursor.version != _VERSION:
            raise InvalidArgument(field, "is a cursor of an older version")
        if cursor.sort != self._sort:
            raise InvalidArgument(field, f"was made for sort {cursor.sort!r}, not {self._sort!r}")
        if cursor.filter_hash != self._filter_hash:
            raise InvalidArgument(field, "was made for a different filter")
        return (cursor.value, cursor.id), cursor.forward


class Page(msgspec.Struct, Generic[Row], kw_only=True):
    rows: list[Row]
    paging: PagingRead


Fetch = Callable[[Key | None, bool, int, bool], Awaitable[list[Row]]]
Exists = Callable[[Key, bool], Awaitable[bool]]


async def paginate(
    *,
    request: PageRequest,
    codec: CursorCodec,
    fetch: Fetch[Row],
    exists: Exists,
    key_of: Callable[[Row], Key],
) -> Page[Row]:
    """One page in sort order, with ``next``/``prev`` set exactly when rows lie beyond it.

    ``fetch(key, forward, n, inclusive)`` returns up to ``n`` rows beyond ``key`` (or from the
    start when ``key`` is None), nearest first, walking forward or backward in the sort order,
    and starting with the row at ``key`` itself when ``inclusive``; ``exists(key, forward)``
    tells whether any row lies beyond ``key`` that way.

    The cursor's own row is fetched along with the page: when it is still there, it proves a row
    lies behind the page, which spares the ``exists`` query in the common case. The first page
    has nothing behind it by definition.
    """
    key: Key | None = None
    forward = True
    if request.after or request.before:
        field = "paging.after" if request.after else "paging.before"
        key, forward = codec.decode(request.after or request.before, field)
    rows = await fetch(key, forward, request.limit + 1 + (key is not None), key is not None)
    behind = key is not None and bool(rows) and key_of(rows[0]) == key
    if behind:
        rows = rows[1:]
    more = len(rows) > request.limit
    rows = rows[: request.limit]
    if not forward:
        rows.reverse()
    first = key_of(rows[0]) if rows else key
    last = key_of(rows[-1]) if rows else key
    if forward:
        has_next = more
        has_prev = behind or (key is not None and first is not None and await exists(first, False))
    else:
        has_prev = more
        has_next = behind or (last is not None and await exists(last, True))
    paging = PagingRead(
        after=request.after,
        before=request.before,
        limit=request.limit,
        sort=request.sort,
        next=codec.encode(last, forward=True) if has_next and last is not None else "",
        prev=codec.encode(first, forward=False) if has_prev and first is not None else "",
    )
    return Page(rows=rows, paging=paging)


class ChangeToken(msgspec.Struct, array_like=True, frozen=True, kw_only=True):
    """Where a reader of the change feed stands: ``sequenced`` False while it reads the calls
    stored before the feed existed (by id), then True (by change number); ``position`` the last
    id or number it has; ``purged_before`` the retention cutoff it has been told of."""

    sequenced: bool
    position: int
    purged_before: int
    version: int = _VERSION


_token_decoder = msgspec.json.Decoder(ChangeToken)


class ChangeTokenCodec:
    """Signs and checks change-feed tokens for one tenant. They never expire: the secret is
    the database's own, so they survive restarts and migrations."""

    def __init__(self, *, secret: bytes, tenant_id: int) -> None:
        self._secret = secret
        self._context = b"changes" + tenant_id.to_bytes(8, "big")

    def encode(self, token: ChangeToken) -> str:
        return _seal(self._secret, self._context, _encoder.encode(token))

    def decode(self, text: str, field: str) -> ChangeToken:
        payload = _unseal(self._secret, self._context, text, field, "change token")
        try:
            token = _token_decoder.decode(payload)
        except msgspec.DecodeError:
            raise InvalidArgument(field, "is not a change token of this API") from None
        if token.version != _VERSION:
            raise InvalidArgument(field, "is a change token of an older version")
        return token
