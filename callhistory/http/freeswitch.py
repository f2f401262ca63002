"""``POST /ingest/freeswitch``: FreeSWITCH mod_json_cdr's posts, admitted like every request
(the throttle, the credentials before the body, the rate limit), parsed by ``ingest.freeswitch``
and stored by ``ingest.service`` in one write transaction."""

from __future__ import annotations

import base64
import binascii

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from callhistory.config import Settings
from callhistory.db import deadline
from callhistory.db.engine import Database, transaction
from callhistory.errors import ApiError, Malformed, Unauthenticated
from callhistory.http.dispatch import Admission, envelope_for_unexpected, error_response, read_body
from callhistory.ingest import freeswitch, service
from callhistory.keys import service as keys
from callhistory.keys.schemas import PbxPrincipal
from callhistory.principal import Principal, Scope

_encoder = msgspec.json.Encoder()
MAX_CDR_BYTES = 1024 * 1024


class FreeSwitchEndpoint:
    """``POST /ingest/freeswitch``: point ``mod_json_cdr``'s ``url`` here, with ``cred`` set to
    the PBX's own credentials (``callhistory pbx create``) or ``<anything>:<ingest key>``.
    Accepts every body mod_json_cdr sends (raw JSON, ``cdr=`` URL-encoded or base64, whatever
    the Content-Type says); 200 only after the commit."""

    def __init__(self, *, db: Database, settings: Settings, admission: Admission) -> None:
        self._db = db
        self._settings = settings
        self._admission = admission

    async def handle(self, request: Request) -> Response:
        try:
            with deadline.within(self._settings.request_timeout_ms / 1000):
                stored = await self._store(request)
        except ApiError as error:
            return error_response(error)
        except Exception as exc:
            return error_response(envelope_for_unexpected(exc))
        return Response(_encoder.encode(stored.ack()), media_type="application/json")

    async def _store(self, request: Request) -> service.Stored:
        # Credentials first, on a read: a stranger costs neither a body read nor the write lock.
        caller = await self._admission.authenticate(request, lambda read: _caller(read, request))
        if isinstance(caller, Principal):
            self._admission.admit(request, caller, caller.key_id)
        else:
            self._admission.admit(request, None, ("pbx", caller.id))
        # A CDR is a few kB; this bound is the endpoint's own, far below the RPC body limit.
        limit = min(self._settings.max_body_bytes, MAX_CDR_BYTES)
        body = await read_body(request, limit, self._settings.body_timeout_ms / 1000)
        try:
            cdr = freeswitch.parse(freeswitch.decode_body(body))
        except freeswitch.CdrError as error:
            raise Malformed(str(error)) from None
        async with transaction(self._db, write=True) as conn:
            principal = await service.pbx_principal(
                conn,
                caller=caller,
                domain=cdr.domain,
                domain_field=f"variables.{cdr.domain_variable}",
                dialed=cdr.dialed,
            )
            stored = await service.ingest_legs(conn, principal=principal, legs=cdr.legs)
        request.state.tenant_id = principal.tenant_id
        return stored[0]


async def _caller(read: AsyncConnection, request: Request) -> Principal | PbxPrincipal:
    user, password = _basic_credentials(request)
    if password.startswith(keys.PBX_PREFIX):
        return await keys.authenticate_pbx(read, name=user, secret=password)
    return await keys.authenticate(read, key=password, needed=Scope.INGEST)


def _basic_credentials(request: Request) -> tuple[str, str]:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    user, sep, password = decoded.partition(":")
    if scheme.lower() != "basic" or not sep:
        raise Unauthenticated("send HTTP Basic credentials (mod_json_cdr's cred param)")
    return user, password
