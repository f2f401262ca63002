"""Importing CDR files: stream records, store them in batches (one transaction each), report.

A bad record is reported with its line number and reason and does not stop the import; a batch
holding a call the ingest service refuses is retried without that call. Every batch is
idempotent, so an import killed midway and run again ends with every call stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db.backend import backend
from callhistory.db.engine import Database
from callhistory.db.work import Work, unit_of_work
from callhistory.ingest import asterisk_csv, freeswitch, jsonl, service
from callhistory.ingest.legs import Leg
from callhistory.ingest.schemas import IngestCallLog
from callhistory.keys import service as keys
from callhistory.kit.errors import InvalidArgument
from callhistory.principal import Principal

# Calls per transaction. A larger batch spreads what each one costs whatever its size (the
# statistics rows of the days it touches, read and written once; the lookups; a COPY) over more
# calls; its write holds the tenant's lock (SQLite: the one write lock) for longer. Where
# writers take turns (SQLite), 5,000 calls hold it ~0.6-0.8 s (docs/performance.md).
SERIAL_BATCH = 5_000
BULK_BATCH = 10_000
# After a refused call, the rest of its batch goes on in batches of this size.
SMALL_BATCH = 500
T = TypeVar("T")


@dataclass
class Record(Generic[T]):
    line: int
    source_id: str
    payload: T


@dataclass
class ImportReport:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


P = TypeVar("P")
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Store(Generic[T, P]):
    """How an import stores a batch: ``prepare`` reads and checks it (no write, no lock),
    ``write`` stores what that made in one write transaction. The next batch is prepared
    while one is written: the database's work and this process's overlap."""

    prepare: Callable[[AsyncConnection, Principal, list[T]], Awaitable[P]]
    write: Callable[[Work, Principal, P], Awaitable[list[service.Stored]]]


class _Counting(io.RawIOBase):
    """A binary file that tells how many bytes were read (for the progress bar)."""

    def __init__(self, raw: IO[bytes], progress: Progress) -> None:
        self._raw = raw
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        self._progress(n or 0)
        return int(n or 0)


def _batches(
    records: Iterable[Record[T] | tuple[int, str]], report: ImportReport, size: int
) -> Iterator[list[Record[T]]]:
    batch: list[Record[T]] = []
    for record in records:
        if isinstance(record, tuple):
            report.rejected.append(record)
            continue
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def run_import(
    db: Database,
    *,
    tenant_id: int,
    records: Iterable[Record[T] | tuple[int, str]],
    store: Store[T, P],
) -> ImportReport:
    """Store the records batch by batch, each in a transaction of its own, the next batch read
    and prepared while one is written; what each record became, and the refused ones by line."""
    report = ImportReport()
    size = SERIAL_BATCH if backend(db.dialect).serial_writers else BULK_BATCH
    batches = _batches(records, report, size)

    async def prepare() -> tuple[list[Record[T]], Principal, P | InvalidArgument] | None:
        batch = next(batches, None)
        if batch is None:
            return None
        async with unit_of_work(db, write=False) as work:
            principal = await keys.tenant_principal(work.read, tenant_id=tenant_id)
            try:
                return batch, principal, await store.prepare(work.read, principal, _payloads(batch))
            except InvalidArgument as error:
                return batch, principal, error

    ahead = asyncio.create_task(prepare())
    try:
        while (prepared := await ahead) is not None:
            batch, principal, made = prepared
            ahead = asyncio.create_task(prepare())
            try:
                if isinstance(made, InvalidArgument):  # refused when prepared
                    raise made
                async with unit_of_work(db, write=True) as work:  # PBX legs: checked here
                    stored = await store.write(work, principal, made)
            except InvalidArgument as error:
                batch = _without_refused(batch, error, report)
                await _store_whole(db, tenant_id, batch, store, report)
                continue
            _count(report, stored)
    finally:
        ahead.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await ahead
    report.rejected.sort()
    return report


def _payloads(batch: list[Record[T]]) -> list[T]:
    return [record.payload for record in batch]


def _count(report: ImportReport, stored: list[service.Stored]) -> None:
    counts = Counter({one.source_id: one.outcome for one in stored}.values())
    report.imported += counts["created"]
    report.updated += counts["updated"]
    report.unchanged += counts["unchanged"] + counts["erased"]


def _without_refused(
    batch: list[Record[T]], error: InvalidArgument, report: ImportReport
) -> list[Record[T]]:
    """The batch without the call the service refused, which is reported."""
    bad = error.meta.get("source_id")
    if bad is None:
        raise error
    report.rejected += [(r.line, error.msg) for r in batch if r.source_id == bad]
    return [r for r in batch if r.source_id != bad]


async def _store_whole(
    db: Database, tenant_id: int, batch: list[Record[T]], store: Store[T, P], report: ImportReport
) -> None:
    """Prepare and write what is left of a batch that held a refused call, in batches of
    ``SMALL_BATCH`` (a file with many bad calls is not checked whole again for each), each in
    one unit of work, without the further calls the service refuses (reported)."""
    while batch:
        if len(batch) > SMALL_BATCH:
            for start in range(0, len(batch), SMALL_BATCH):
                part = batch[start : start + SMALL_BATCH]
                await _store_whole(db, tenant_id, part, store, report)
            return
        try:
            async with unit_of_work(db, write=True) as work:
                principal = await keys.tenant_principal(work.read, tenant_id=tenant_id)
                made = await store.prepare(work.read, principal, _payloads(batch))
                stored = await store.write(work, principal, made)
        except InvalidArgument as error:
            batch = _without_refused(batch, error, report)
            continue
        _count(report, stored)
        return


def _csv_rows(path: Path) -> Iterator[list[str]]:
    with path.open(encoding="utf-8", errors="replace", newline="") as text:
        reader = csv.reader(text)
        while True:
            try:
                yield next(reader)
            except StopIteration:
                return
            except csv.Error:
                continue


def asterisk_records(
    path: Path, *, tz: str, progress: Progress
) -> Iterator[Record[list[Leg]] | tuple[int, str]]:
    # Without linkedid, a first pass learns which call each Local/ channel worked for (its
    # rows may come before the row that dialled it); only their names are kept.
    links = asterisk_csv.local_links(_csv_rows(path))
    with path.open("rb") as raw:
        text = io.TextIOWrapper(
            io.BufferedReader(_Counting(raw, progress)),
            encoding="utf-8",
            errors="replace",
            newline="",
        )
        reader = csv.reader(text)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield (reader.line_num, f"not CSV: {error}")
                continue
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            try:
                leg = asterisk_csv.parse_row(row, line=reader.line_num, tz=tz, links=links)
            except asterisk_csv.RowError as error:
                yield (reader.line_num, str(error))
                continue
            yield Record(line=reader.line_num, source_id=leg.call_id, payload=[leg])


FREESWITCH_MAX_BYTES = 4 << 20  # far above any CDR (~20 KB), far below a stray file


def freeswitch_files(directory: Path) -> list[Path]:
    """The CDR files mod_json_cdr writes to its ``log-dir`` or ``err-log-dir``
    (``<uuid>.cdr.json``, ``a_<uuid>.cdr.json``), in name order."""
    return sorted(path for path in directory.glob("*.json") if path.is_file())


def freeswitch_records(
    paths: list[Path], *, progress: Progress
) -> Iterator[Record[list[Leg]] | tuple[int, str]]:
    """One record per file, numbered from 1 in ``paths``' order: plain JSON, or the
    URL-encoded or base64 text mod_json_cdr keeps when a post failed."""
    for number, path in enumerate(paths, start=1):
        try:
            size = path.stat().st_size
            if size > FREESWITCH_MAX_BYTES:
                yield (number, f"{size} bytes is too large for a CDR")
                continue
            data = path.read_bytes()
        except OSError as error:
            yield (number, f"cannot read: {error.strerror}")
            continue
        progress(len(data))
        try:
            cdr = freeswitch.parse(freeswitch.decode_document(data))
        except freeswitch.CdrError as error:
            yield (number, str(error))
            continue
        yield Record(line=number, source_id=cdr.legs[0].call_id, payload=cdr.legs)


def jsonl_records(
    path: Path, *, progress: Progress
) -> Iterator[Record[IngestCallLog] | tuple[int, str]]:
    with path.open("rb") as raw:
        for number, line in enumerate(io.BufferedReader(_Counting(raw, progress)), start=1):
            if not line.strip():
                continue
            try:
                item = jsonl.parse_line(line)
            except jsonl.LineError as error:
                yield (number, str(error))
                continue
            yield Record(line=number, source_id=item.source_id, payload=item)


async def _all_legs(
    read: AsyncConnection, principal: Principal, payloads: list[list[Leg]]
) -> list[Leg]:
    return [leg for legs in payloads for leg in legs]


async def _write_legs(work: Work, principal: Principal, legs: list[Leg]) -> list[service.Stored]:
    return await service.ingest_legs(work, principal=principal, legs=legs)


async def _prepare_items(
    read: AsyncConnection, principal: Principal, items: list[IngestCallLog]
) -> service.Batch:
    return await service.prepare(read, principal=principal, items=items)


async def _write_items(
    work: Work, principal: Principal, batch: service.Batch
) -> list[service.Stored]:
    return await service.store(work, batch)


# PBX legs are read back and merged with those stored before, under the tenant's lock: all of
# their work is the write's. IngestCallLogs items are checked and rendered beforehand.
LEGS: Store[list[Leg], list[Leg]] = Store(prepare=_all_legs, write=_write_legs)
ITEMS: Store[IngestCallLog, service.Batch] = Store(prepare=_prepare_items, write=_write_items)
