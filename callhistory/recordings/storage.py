"""Where recordings' bytes live: a local directory (the default beside a SQLite file) or an
S3-compatible bucket, both through obstore, configured by one URL
(``CALLHISTORY_RECORDINGS_URL``):

- ``file:///var/lib/callhistory/recordings``
- ``s3://bucket/prefix?endpoint=https://s3.example.net&region=ap-southeast-1``; credentials
  from the usual ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` variables.

Bytes always move in chunks: an upload is streamed into the store, a download out of it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

import obstore
from obstore.store import LocalStore, S3Store

from callhistory.kit.config import ConfigError, Settings

_CHUNK = 256 * 1024  # bytes handed to the client at a time


class Stat(NamedTuple):
    size: int
    etag: str


def store_url(settings: Settings) -> str:
    """The configured URL, or a directory beside the SQLite file (``callhistory.db`` →
    ``callhistory-recordings/``); "" when neither applies (PostgreSQL without a setting)."""
    if settings.recordings_url:
        return settings.recordings_url
    if settings.database_url.startswith("sqlite:///"):
        db = Path(settings.database_url.removeprefix("sqlite:///")).resolve()
        return (db.parent / f"{db.stem}-recordings").as_uri()
    return ""


class _Where(NamedTuple):
    scheme: str  # file or s3
    place: str  # the directory, or the bucket
    prefix: str
    endpoint: str
    region: str


def _where(url: str) -> _Where:
    """The store a URL names, or ``ConfigError`` naming the variable."""
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.path:
        return _Where("file", parts.path, "", "", "")
    if parts.scheme == "s3" and parts.netloc:
        options = dict(parse_qsl(parts.query))
        unknown = set(options) - {"endpoint", "region"}
        if unknown:
            raise ConfigError(
                f"CALLHISTORY_RECORDINGS_URL: unknown option {sorted(unknown)[0]!r} "
                "(endpoint and region are known)"
            )
        return _Where(
            "s3",
            parts.netloc,
            parts.path.strip("/"),
            options.get("endpoint", ""),
            options.get("region", ""),
        )
    raise ConfigError(
        f"CALLHISTORY_RECORDINGS_URL: {url!r} is neither file:///a/directory nor s3://bucket/prefix"
    )


def check(settings: Settings) -> None:
    """Refuse a store URL that cannot work, in one line (at start-up, before any request)."""
    url = store_url(settings)
    if url:
        _where(url)


def open_storage(settings: Settings) -> Storage | None:
    """The configured store; None where there is none (PostgreSQL without a setting)."""
    url = store_url(settings)
    return Storage(url) if url else None


class Storage:
    """One recordings store; keys are ``tenant/recording`` paths inside it."""

    def __init__(self, url: str) -> None:
        where = _where(url)
        self.url = url
        if where.scheme == "file":
            root = Path(where.place)
            root.mkdir(parents=True, exist_ok=True)
            self._store: LocalStore | S3Store = LocalStore(root)
        else:
            self._store = S3Store(
                where.place,
                prefix=where.prefix or None,
                endpoint=where.endpoint or None,
                region=where.region or None,
                client_options={"allow_http": where.endpoint.startswith("http://")},
            )

    async def put(self, key: str, chunks: AsyncIterable[bytes], *, content_type: str) -> None:
        # The type is kept with the row; on S3 the object carries it too (a local file cannot).
        if isinstance(self._store, S3Store):
            await obstore.put_async(
                self._store, key, chunks, attributes={"Content-Type": content_type}
            )
        else:
            await obstore.put_async(self._store, key, chunks)

    async def stat(self, key: str) -> Stat | None:
        try:
            meta = await obstore.head_async(self._store, key)
        except FileNotFoundError:
            return None
        return Stat(size=int(meta["size"]), etag=str(meta.get("e_tag") or ""))

    async def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive), a chunk at a time. Opened here, so a missing
        file is ``FileNotFoundError`` before anything is sent."""
        result = await obstore.get_async(self._store, key, options={"range": (start, end)})

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in result.stream(min_chunk_size=_CHUNK):
                yield bytes(chunk)

        return chunks()

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await obstore.delete_async(self._store, key)

    async def listing(self) -> dict[str, float]:
        """Every file in the store: its key and when it was last written (epoch seconds)."""
        found: dict[str, float] = {}
        async for batch in obstore.list(self._store):
            for item in batch:
                found[str(item["path"])] = item["last_modified"].timestamp()
        return found
