"""Recordings: an upload is matched to its call and streamed into the store; a recording is
read back through a signed link."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from pathlib import PurePosixPath
from typing import Any, NamedTuple

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db.engine import Database, transaction
from callhistory.kit.errors import BodyTooLarge, InvalidArgument
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


_encoder = msgspec.json.Encoder()


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """What an upload is: for which call, under which name, of which type."""

    call_id: int
    started_at: int
    name: str
    source: str
    content_type: str


def file_name(source: str) -> str:
    return PurePosixPath(source.replace("\\", "/")).name


class Call(msgspec.Struct, frozen=True, kw_only=True):
    """The call an upload is for, as the call logs know it."""

    id: int
    started_at: int
    named: list[str]  # the recordings its CDR named (``recording_urls``)


def target(*, call: Call, source: str, content_type: str) -> Target:
    """What an upload is, its name checked: when the call's CDR named recordings, the file
    must be one of them (by file name)."""
    name = file_name(source)
    if not name or len(name) > 255 or not name.isprintable():
        raise InvalidArgument("name", "must end in a file name (at most 255 characters)")
    kind = AUDIO_TYPES.get(PurePosixPath(name).suffix.lower())
    if kind is None:
        if not content_type.startswith("audio/"):
            known = ", ".join(AUDIO_TYPES)
            raise InvalidArgument("name", f"must be an audio file ({known}) or sent as audio/*")
        kind = content_type.split(";", 1)[0].strip()
    named = [file_name(url) for url in call.named]
    if named and name not in named:
        raise InvalidArgument(
            "name", f"the call names its recordings {', '.join(named)}; not {name}"
        )
    return Target(
        call_id=call.id, started_at=call.started_at, name=name, source=source, content_type=kind
    )


class Stored(msgspec.Struct, frozen=True, kw_only=True):
    store: str  # the store's URL
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
    return Stored(store=storage.url, key=key, size=size, sha256=digest.hexdigest())


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
        "store": stored.store,
        "key": stored.key,
        "size": stored.size,
        "content_type": target.content_type,
        "sha256": stored.sha256,
        "created_at": now_micros(),
        "started_at": target.started_at,
        "gone_at": None,
    }
    if earlier is None:
        await repository.insert(conn, tenant_id=tenant_id, values=values)
        unused = []
    else:
        await repository.replace(conn, tenant_id=tenant_id, recording_id=earlier.id, values=values)
        unused = [earlier.key]
    row = await repository.get(conn, tenant_id=tenant_id, recording_id=recording_id)
    _none_until.pop(tenant_id, None)
    return row, unused


class Linker(NamedTuple):
    """What a signed link needs: the links' key, where this service is, how long it lasts."""

    key: bytes
    base_url: str
    seconds: int

    def expiry(self) -> int:
        """When links made now expire (epoch seconds): at least ``seconds`` from now."""
        return math.ceil(time.time()) + self.seconds

    def url(self, row: Any, *, tenant_id: int, expires: int) -> str:
        """The signed link to a recording (a row with ``id`` and ``name``)."""
        return self.base_url + links.path(
            self.key, tenant_id=tenant_id, recording_id=row.id, name=row.name, expires=expires
        )


def read(row: Any, *, tenant_id: int, linker: Linker) -> RecordingRead:
    expires = linker.expiry()
    return RecordingRead(
        id=str(row.id),
        call_id=str(row.call_id),
        name=row.name,
        source=row.source,
        size=row.size,
        content_type=row.content_type,
        sha256=row.sha256,
        created_at=format_micros(row.created_at),
        url=linker.url(row, tenant_id=tenant_id, expires=expires),
        url_expires_at=format_micros(expires * 1_000_000),
    )


async def of_call(conn: AsyncConnection, *, principal: Principal, call_id: int) -> list[Any]:
    """The call's recordings (none for a call of another tenant, or none at all)."""
    return await repository.of_call(conn, tenant_id=principal.tenant_id, call_id=call_id)


def may_keep(tenant_id: int) -> bool:
    """False while this tenant is known to have no recordings (``present`` has nothing to
    do): callers skip preparing the documents."""
    return time.monotonic() >= _none_until.get(tenant_id, 0.0)


async def kept(conn: AsyncConnection, *, tenant_id: int, call_id: int, name: str) -> Any:
    """The call's recording of that file name, if one was uploaded."""
    return await repository.named(conn, tenant_id=tenant_id, call_id=call_id, name=name)


async def linked(conn: AsyncConnection, *, tenant_id: int, recording_id: int) -> Any:
    """The recording a valid link names (None: gone since)."""
    return await repository.get(conn, tenant_id=tenant_id, recording_id=recording_id)


class _Brief(msgspec.Struct):
    id: str
    recording_urls: list[str]


_brief = msgspec.json.Decoder(_Brief)
_none_until: dict[int, float] = {}  # tenant → until when it is known to have no recordings
_NONE_FOR_S = 5.0  # how long another process's first upload may go unseen in call logs


async def present(
    conn: AsyncConnection,
    *,
    tenant_id: int,
    docs: Sequence[bytes],
    linker: Linker,
    remembered: bool = True,
) -> list[bytes]:
    """Call-log documents as the API shows them: a call with uploaded recordings lists links
    to them in ``recording_urls`` and the PBX's names of the others in ``recording_sources``;
    any other call as stored. One indexed query a page for a tenant that keeps recordings; a
    tenant with none costs a look every few seconds, unless ``remembered`` is false (a webhook
    is sent once: it must not miss an upload that another process made a moment ago)."""
    out = list(docs)
    if not out or (remembered and not may_keep(tenant_id)):
        return out
    briefs = {i: _brief.decode(doc) for i, doc in enumerate(out)}
    rows = await repository.of_calls(
        conn, tenant_id=tenant_id, call_ids=[int(b.id) for b in briefs.values()]
    )
    if not rows:
        if remembered and not await repository.any_kept(conn, tenant_id=tenant_id):
            _none_until[tenant_id] = time.monotonic() + _NONE_FOR_S
        return out
    kept: dict[int, list[Any]] = {}
    for row in rows:
        kept.setdefault(int(row.call_id), []).append(row)
    expires = linker.expiry()
    for i, brief in briefs.items():
        mine = kept.get(int(brief.id))
        if not mine:
            continue
        names = {row.name for row in mine}
        urls = [linker.url(row, tenant_id=tenant_id, expires=expires) for row in mine]
        sources = [url for url in brief.recording_urls if file_name(url) not in names]
        doc: dict[str, Any] = msgspec.json.decode(out[i])
        shown: dict[str, Any] = {}
        for name, value in doc.items():
            if name == "recording_urls":
                shown[name] = urls
                shown["recording_sources"] = sources
            elif name != "recording_sources":
                shown[name] = value
        out[i] = _encoder.encode(shown)
    return out


async def forget_calls(conn: AsyncConnection, *, tenant_id: int, call_ids: Sequence[int]) -> None:
    """Erased calls: their recordings are gone (the bytes are deleted by ``purge``)."""
    await repository.mark_gone(conn, tenant_id=tenant_id, call_ids=call_ids, now=now_micros())


async def forget_before(conn: AsyncConnection, *, cutoff: int) -> None:
    """Retention: recordings of calls that started before ``cutoff`` are gone."""
    await repository.mark_gone_before(conn, cutoff=cutoff, now=now_micros())


async def purge(db: Database, storage: Storage | None) -> int:
    """Delete the bytes of gone recordings kept in ``storage``, then their rows; how many.
    Bytes first: a crash in between leaves a row to purge again, never a file no row knows of.
    Recordings of another store are left to processes configured with it."""
    if storage is None:
        return 0
    count = 0
    while True:
        async with transaction(db, write=False) as conn:
            gone = await repository.gone(conn, store=storage.url, limit=500)
        if not gone:
            return count
        for row in gone:
            await storage.delete(row.key)
        async with transaction(db, write=True) as conn:
            await repository.remove(conn, keys=[(row.tenant_id, row.id) for row in gone])
        count += len(gone)


class Comparison(msgspec.Struct, kw_only=True):
    objects: int
    rows: int
    orphans: list[str]  # store keys no row knows
    missing: list[str]  # keys of rows whose file is not in the store
    deleted: int


async def compare(db: Database, storage: Storage, *, delete: bool, min_age_s: float) -> Comparison:
    """The store's files against the recordings rows kept in it; with ``delete``, orphan
    files older than ``min_age_s`` are deleted (a younger one may be an upload under way)."""
    async with transaction(db, write=False) as conn:
        rows = set(await repository.keys_in(conn, store=storage.url))
    files = await storage.listing()
    orphans = sorted(key for key in files if key not in rows)
    missing = sorted(key for key in rows if key not in files)
    deleted = 0
    if delete:
        cutoff = time.time() - min_age_s
        for key in orphans:
            if files[key] < cutoff:
                await storage.delete(key)
                deleted += 1
    return Comparison(
        objects=len(files), rows=len(rows), orphans=orphans, missing=missing, deleted=deleted
    )
