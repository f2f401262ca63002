"""``callhistory recordings sync DIR``: upload a PBX's recording files, each matched to its
call, run on (or beside) the PBX with the service's database and store.

A file is matched by its name to the call whose CDR named it (``recording_urls``: the path as
the PBX wrote it, compared by file name), among the tenant's calls started from two days
before the oldest file was last written (or ``--since``) until now; failing that, by its name
without the extension as the PBX's call id (``source_id``: FreeSWITCH names recordings by the
call's uuid, Asterisk's MixMonitor often by its ``uniqueid``). A file already uploaded for its
call with the same size is skipped, so a sync can be run again or resumed after a crash; a
file no call names yet is tried again by the next run (its CDR may come later).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import msgspec

from callhistory.calllogs import service as calllogs
from callhistory.db.engine import Database, transaction
from callhistory.ingest import service as ingest
from callhistory.kit import ids
from callhistory.kit.config import Settings
from callhistory.kit.errors import InvalidArgument, NotFound
from callhistory.kit.times import now_micros
from callhistory.principal import Principal
from callhistory.recordings import service as recordings
from callhistory.recordings.storage import Storage

_DAY = 86_400_000_000
_SETTLED_S = 2.0  # a file modified more recently may still be being written
_CHUNK = 1024 * 1024


class SyncReport(msgspec.Struct, kw_only=True):
    uploaded: int = 0
    present: int = 0  # uploaded before (same call, name and size)
    unmatched: list[tuple[str, str]] = []  # (path, why)


class Syncer:
    """One directory of one tenant's recordings; remembers what it has handled, so that a
    ``--watch`` loop only looks at new or changed files."""

    def __init__(
        self,
        db: Database,
        storage: Storage,
        principal: Principal,
        settings: Settings,
        root: Path,
        *,
        since: int | None = None,
    ) -> None:
        self._db = db
        self._storage = storage
        self._principal = principal
        self._settings = settings
        self._root = root
        self._since = (
            since  # micros: look among calls started since then, whatever the files' times
        )
        self._done: dict[Path, tuple[int, float]] = {}

    def pending(self) -> list[Path]:
        """Audio files not handled yet (or changed since), settled for a moment."""
        now = time.time()
        found = []
        for path in sorted(self._root.rglob("*")):
            if path.suffix.lower() not in recordings.AUDIO_TYPES or not path.is_file():
                continue
            stat = path.stat()
            if now - stat.st_mtime < _SETTLED_S:
                continue
            if self._done.get(path) != (stat.st_size, stat.st_mtime):
                found.append(path)
        return found

    async def run(self, files: list[Path], advance: Callable[[int], None]) -> SyncReport:
        report = SyncReport()
        if not files:
            return report
        stats = _stats(files)
        times = [int(mtime * 1_000_000) for _, mtime in stats.values()]
        async with transaction(self._db, write=False) as conn:
            start = min(times) - 2 * _DAY if self._since is None else self._since
            end = max(max(times), now_micros()) + _DAY
            index = await calllogs.recordings_index(
                conn, principal=self._principal, start=start, end=end
            )
        for path in files:
            size, _ = stats[path]
            why = await self._one(path, size, index, report, advance)
            if why:
                report.unmatched.append((str(path), why))
                advance(size)
            else:
                self._done[path] = stats[path]
        return report

    async def _one(
        self,
        path: Path,
        size: int,
        index: dict[str, recordings.Call | None],
        report: SyncReport,
        advance: Callable[[int], None],
    ) -> str:
        """Upload one file; "" when done, else why it was not."""
        tenant_id = self._principal.tenant_id
        call = index.get(path.name)
        if call is None:
            if path.name in index:
                return "several calls name a recording of this name"
            try:
                async with transaction(self._db, write=False) as conn:
                    call = await calllogs.recording_call(
                        conn, principal=self._principal, call_id="", source_id=path.stem
                    )
            except NotFound:
                return "no call names it (yet)"
        try:
            target = recordings.target(call=call, source=str(path), content_type="")
        except InvalidArgument as error:
            return error.detail
        async with transaction(self._db, write=False) as conn:
            kept = await recordings.kept(
                conn, tenant_id=tenant_id, call_id=call.id, name=target.name
            )
        if kept is not None and kept.size == size:
            report.present += 1
            advance(size)
            return ""
        recording_id = ids.new_id()
        stored = await recordings.store(
            self._storage,
            _read(path, advance),
            tenant_id=tenant_id,
            recording_id=recording_id,
            content_type=target.content_type,
            max_bytes=self._settings.recording_max_mb * 1_000_000,
            sha256="",
        )
        try:
            async with transaction(self._db, write=True) as conn:
                row, unused = await recordings.record(
                    conn,
                    principal=self._principal,
                    target=target,
                    recording_id=recording_id,
                    stored=stored,
                )
                if row.id == recording_id:  # new bytes: the call changed
                    await ingest.recording_arrived(conn, principal=self._principal, call_id=call.id)
        except BaseException:
            await self._storage.delete(stored.key)
            raise
        for key in unused:
            await self._storage.delete(key)
        report.uploaded += 1
        return ""


def _stats(files: list[Path]) -> dict[Path, tuple[int, float]]:
    return {path: (path.stat().st_size, path.stat().st_mtime) for path in files}


async def _read(path: Path, advance: Callable[[int], None]) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := await asyncio.to_thread(file.read, _CHUNK):
            advance(len(chunk))
            yield chunk
