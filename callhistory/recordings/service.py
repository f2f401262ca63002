"""Recordings: an upload is matched to its call and streamed into the store; a recording is
read back through a signed link."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import PurePosixPath
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.calllogs import service as calllogs
from callhistory.kit import ids
from callhistory.kit.errors import BodyTooLarge, InvalidArgument, NotFound
from callhistory.kit.times import format_micros, now_micros
from callhistory.principal import Principal
from callhistory.recordings import links, repository
from callhistory.recordings.schemas import RecordingRead
from callhistory.recordings.storage import Storage

# What a recording may be, by its file name's extension (a PBX writes these).
AUDIO_TYPES = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".m4a": "audio/mp4",
    ".flac": "audio/flac",
    ".webm": "audio/webm",
    ".gsm": "audio/x-gsm",
}


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """What an upload is: for which call, under which name, of which type."""

    call_id: int
    name: str
    source: str
    content_type: str


def file_name(source: str) -> str:
    return PurePosixPath(source.replace("\\", "/")).name


async def target(
    conn: AsyncConnection,
    *,
    principal: Principal,
    source: str,
    call_id: str,
    source_id: str,
    content_type: str,
) -> Target:
    """The call an upload is for (by ``call_id``, or the PBX's ``source_id``) and its checked
    name: when the call's CDR named recordings, the file must be one of them."""
    name = file_name(source)
    if not name or len(name) > 255 or not name.isprintable():
        raise InvalidArgument("name", "must end in a file name (at most 255 characters)")
    kind = AUDIO_TYPES.get(PurePosixPath(name).suffix.lower())
    if kind is None:
        if not content_type.startswith("audio/"):
            known = ", ".join(AUDIO_TYPES)
            raise InvalidArgument("name", f"must be an audio file ({known}) or sent as audio/*")
        kind = content_type.split(";", 1)[0].strip()
    if bool(call_id) == bool(source_id):
        raise InvalidArgument("call_id", "give the call's call_id or its PBX source_id (one)")
    found = await calllogs.recordings_named(
        conn,
        principal=principal,
        call_id=ids.parse_id(call_id, "call_id") if call_id else None,
        source_id=source_id or None,
    )
    if found is None:
        field = "call_id" if call_id else "source_id"
        raise NotFound(f"{field}: no call {call_id or source_id} in this tenant", field=field)
    named = [file_name(url) for url in found[1]]
    if named and name not in named:
        raise InvalidArgument(
            "name", f"the call names its recordings {', '.join(named)}; not {name}"
        )
    return Target(call_id=found[0], name=name, source=source, content_type=kind)


class Stored(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    size: int
    sha256: str


async def store(
    storage: Storage,
    chunks: AsyncIterable[bytes],
    *,
    tenant_id: int,
    recording_id: int,
    content_type: str,
    max_bytes: int,
    sha256: str,
) -> Stored:
    """Stream an upload into the store, counting and hashing it on the way; over
    ``max_bytes``, or not matching the ``sha256`` the client gave, nothing stays stored."""
    digest = hashlib.sha256()
    size = 0

    async def counted() -> AsyncIterator[bytes]:
        nonlocal size
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise BodyTooLarge(f"a recording is at most {max_bytes // 1_000_000} MB")
            digest.update(chunk)
            yield chunk

    key = f"{tenant_id}/{recording_id}"
    try:
        await storage.put(key, counted(), content_type=content_type)
    except BaseException:
        await storage.delete(key)
        raise
    if sha256 and sha256.lower() != digest.hexdigest():
        await storage.delete(key)
        raise InvalidArgument(
            "X-Checksum-Sha256", f"the body's SHA-256 is {digest.hexdigest()}, not {sha256}"
        )
    if size == 0:
        await storage.delete(key)
        raise InvalidArgument("body", "is empty: a recording has bytes")
    return Stored(key=key, size=size, sha256=digest.hexdigest())


async def record(
    conn: AsyncConnection,
    *,
    principal: Principal,
    target: Target,
    recording_id: int,
    stored: Stored,
) -> tuple[Any, list[str]]:
    """Keep the uploaded file as the call's recording of that name (the same bytes again
    change nothing; other bytes replace the earlier file). Answers the row and the store keys
    no longer used, to delete once this is committed."""
    tenant_id = principal.tenant_id
    earlier = await repository.named(
        conn, tenant_id=tenant_id, call_id=target.call_id, name=target.name
    )
    if earlier is not None and earlier.sha256 == stored.sha256:
        return earlier, [stored.key]
    values = {
        "id": recording_id,
        "call_id": target.call_id,
        "name": target.name,
        "source": target.source,
        "key": stored.key,
        "size": stored.size,
        "content_type": target.content_type,
        "sha256": stored.sha256,
        "created_at": now_micros(),
    }
    if earlier is None:
        await repository.insert(conn, tenant_id=tenant_id, values=values)
        unused = []
    else:
        await repository.replace(conn, tenant_id=tenant_id, recording_id=earlier.id, values=values)
        unused = [earlier.key]
    row = await repository.get(conn, tenant_id=tenant_id, recording_id=recording_id)
    return row, unused


def read(row: Any, *, tenant_id: int, key: bytes, base_url: str, seconds: int) -> RecordingRead:
    expires = math.ceil(time.time()) + seconds  # at least ``seconds`` from now
    return RecordingRead(
        id=str(row.id),
        call_id=str(row.call_id),
        name=row.name,
        source=row.source,
        size=row.size,
        content_type=row.content_type,
        sha256=row.sha256,
        created_at=format_micros(row.created_at),
        url=base_url
        + links.path(key, tenant_id=tenant_id, recording_id=row.id, name=row.name, expires=expires),
        url_expires_at=format_micros(expires * 1_000_000),
    )


async def of_call(conn: AsyncConnection, *, principal: Principal, call_id: str) -> list[Any]:
    number = ids.parse_id(call_id, "call_id")
    if number is None:
        raise InvalidArgument("call_id", "is required")
    if (
        await calllogs.recordings_named(conn, principal=principal, call_id=number, source_id=None)
        is None
    ):
        raise NotFound(f"call_id: no call {number} in this tenant", field="call_id")
    return await repository.of_call(conn, tenant_id=principal.tenant_id, call_id=number)


async def linked(conn: AsyncConnection, *, tenant_id: int, recording_id: int) -> Any:
    """The recording a valid link names (None: gone since)."""
    return await repository.get(conn, tenant_id=tenant_id, recording_id=recording_id)
