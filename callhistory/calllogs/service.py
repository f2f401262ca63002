"""ListCallLogs: validate the request, page through the tenant's calls, shape the response."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.calllogs import repository
from callhistory.calllogs.query import parse_request
from callhistory.calllogs.schemas import (
    CallLog,
    ListCallLogsRequest,
    ListCallLogsResponse,
)
from callhistory.directory import service as directory
from callhistory.kit.paging import CursorCodec, Key, paginate
from callhistory.principal import Principal

_encoder = msgspec.json.Encoder()
SORTS = tuple(f"{sign}{name}" for name in repository.SORT_COLUMNS for sign in ("", "-"))


async def list_call_logs(
    conn: AsyncConnection, *, principal: Principal, request: ListCallLogsRequest, secret: bytes
) -> ListCallLogsResponse:
    query, page = parse_request(request, timezone=principal.timezone, allowed_sorts=SORTS)
    tenant_id = principal.tenant_id
    codec = CursorCodec(
        secret=secret, tenant_id=tenant_id, sort=page.sort, filter_key=_encoder.encode(query)
    )
    if query.department_id is not None:
        members = await directory.department_members(
            conn, tenant_id=tenant_id, department_id=query.department_id
        )
        query = msgspec.structs.replace(query, members=members)

    async def fetch(
        key: Key | None, forward: bool, limit: int, inclusive: bool
    ) -> list[Sequence[Any]]:
        return await repository.fetch_page(
            conn,
            tenant_id=tenant_id,
            query=query,
            sort=page.sort,
            key=key,
            forward=forward,
            limit=limit,
            inclusive=inclusive,
        )

    async def exists(key: Key, forward: bool) -> bool:
        return await repository.exists_beyond(
            conn, tenant_id=tenant_id, query=query, sort=page.sort, key=key, forward=forward
        )

    result = await paginate(
        request=page,
        codec=codec,
        fetch=fetch,
        exists=exists,
        key_of=lambda row: (row[0], row[1]),
    )
    documents = [msgspec.Raw(doc) for _, _, doc in result.rows]
    return ListCallLogsResponse(call_logs=cast(list[CallLog], documents), paging=result.paging)
