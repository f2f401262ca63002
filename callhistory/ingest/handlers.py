"""Ingest handlers: the IngestCallLogs RPC method, and the FreeSWITCH mod_json_cdr endpoint."""

from __future__ import annotations

import base64
import binascii
import hmac

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from callhistory.config import Settings
from callhistory.db.engine import Database, transaction
from callhistory.errors import ApiError, Malformed, Unauthenticated
from callhistory.ingest import freeswitch, service
from callhistory.ingest.schemas import IngestCallLogsRequest, IngestCallLogsResponse
from callhistory.keys import service as keys
from callhistory.keys.schemas import Scope
from callhistory.rpc import Context, MethodSet, error_response, read_body, unexpected

_encoder = msgspec.json.Encoder()
methods = MethodSet(service="Etelecom", prefixes=("pbx",))


@methods.rpc(scope=Scope.INGEST, write=True)
async def IngestCallLogs(ctx: Context, request: IngestCallLogsRequest) -> IngestCallLogsResponse:
    """Store up to 1000 call logs atomically; idempotent on source_id."""
    stored = await service.ingest(
        ctx.conn, principal=ctx.principal, items=request.call_logs, read=ctx.read
    )
    return IngestCallLogsResponse(call_logs=[one.ack() for one in stored])


class FreeSwitchEndpoint:
    """``POST /ingest/freeswitch``: point ``mod_json_cdr``'s ``url`` here, with ``cred`` set to
    ``<anything>:<ingest key>`` (or the operator's shared ``CALLHISTORY_PBX_CREDENTIALS``).
    Accepts every body mod_json_cdr sends (raw JSON, ``cdr=`` URL-encoded or base64, whatever
    the Content-Type says); 200 only after the commit."""

    def __init__(self, *, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings

    async def handle(self, request: Request) -> Response:
        try:
            user, password = _basic_credentials(request)
            shared = self._settings.pbx_credentials
            operator = bool(shared) and hmac.compare_digest(
                f"{user}:{password}".encode(), shared.encode()
            )
            key_principal = None
            if not operator:
                # Before the body is read and before the write lock: a stranger costs one read.
                async with transaction(self._db, write=False) as read:
                    key_principal = await keys.authenticate(read, key=password, needed=Scope.INGEST)
            body = await read_body(request, self._settings.max_body_bytes)
            try:
                cdr = freeswitch.parse(freeswitch.decode_body(body))
            except freeswitch.CdrError as error:
                raise Malformed(str(error)) from None
            async with transaction(self._db, write=True) as conn:
                principal = await service.pbx_principal(
                    conn,
                    key_principal=key_principal,
                    domain=cdr.domain,
                    domain_field=f"variables.{cdr.domain_variable}",
                    dialed=cdr.dialed,
                )
                stored = await service.ingest_legs(conn, principal=principal, legs=cdr.legs)
            request.state.tenant_id = principal.tenant_id
        except ApiError as error:
            return error_response(error)
        except Exception as exc:
            return error_response(unexpected(exc))
        return Response(_encoder.encode(stored[0].ack()), media_type="application/json")


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
