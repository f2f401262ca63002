"""Retention: remove every tenant's calls, and their PBX legs, older than a cutoff."""

from __future__ import annotations

from callhistory.db import partitions
from callhistory.db.backend import backend
from callhistory.db.engine import Database, transaction
from callhistory.kit.times import now_micros
from callhistory.recordings import service as recordings
from callhistory.recordings.storage import Storage
from callhistory.retention import repository
from callhistory.rollups import service as rollups


async def apply_retention(
    db: Database, *, older_than_days: int, storage: Storage | None = None
) -> int:
    """Remove every tenant's calls (and their PBX legs and recordings) that started more than
    ``older_than_days`` ago; returns how many calls. Where calls are partitioned by month
    (PostgreSQL) whole months go as partitions first, each in its own transactions; the rest
    in one transaction. The recordings' bytes are deleted from ``storage`` last."""
    cutoff = now_micros() - older_than_days * 86_400_000_000
    removed = 0
    if backend(db.dialect).monthly_partitions:
        removed += await partitions.drop_partitions_before(db.writer, cutoff=cutoff)
    async with transaction(db, write=True) as conn:
        await repository.delete_legs_older_than(conn, cutoff=cutoff)
        removed += await repository.delete_older_than(conn, cutoff=cutoff)
        await repository.record_purge(conn, cutoff=cutoff)
        await rollups.trim(conn, cutoff=cutoff)
        await recordings.forget_before(conn, cutoff=cutoff)
    await recordings.purge(db, storage)
    return removed
