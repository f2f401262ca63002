"""``POST /ingest/freeswitch``: FreeSWITCH mod_json_cdr's posts, admitted by the same pipeline as
every request, parsed by ``ingest.freeswitch`` and stored by ``ingest.service``."""

from __future__ import annotations

import base64
import binascii

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from callhistory.db.work import Work
from callhistory.http.dispatch import Caller
from callhistory.ingest import freeswitch, service
from callhistory.keys import service as keys
from callhistory.keys.schemas import PbxPrincipal
from callhistory.kit.errors import Malformed, Unauthenticated
from callhistory.principal import Principal, Scope

# A CDR is a few kB; this bound is the endpoint's own, far below the RPC body limit.
MAX_CDR_BYTES = 1024 * 1024


class FreeSwitchEntry:
    """Point ``mod_json_cdr``'s ``url`` here, with ``cred`` set to the PBX's own credentials
    (``callhistory pbx create``) or ``<anything>:<ingest key>``. Accepts every body
    mod_json_cdr sends (raw JSON, ``cdr=`` URL-encoded or base64, whatever the Content-Type
    says); 200 only after the commit."""

    write = True

    def __init__(self, *, max_body_bytes: int) -> None:
        self.body_limit = min(max_body_bytes, MAX_CDR_BYTES)

    async def authenticate(self, conn: AsyncConnection, request: Request) -> Caller:
        return await _caller(conn, request)

    async def run(
        self, work: Work, caller: Caller, body: bytes, request: Request
    ) -> msgspec.Struct:
        try:
            cdr = freeswitch.parse(freeswitch.decode_body(body))
        except freeswitch.CdrError as error:
            raise Malformed(str(error)) from None
        principal = await service.pbx_principal(
            work.read,
            caller=caller,
            domain=cdr.domain,
            domain_field=f"variables.{cdr.domain_variable}",
            dialed=cdr.dialed,
        )
        request.state.tenant_id = principal.tenant_id
        stored = await service.ingest_legs(work, principal=principal, legs=cdr.legs)
        return stored[0].ack()


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
