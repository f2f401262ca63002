"""Ids are unique across processes by construction: each process leases its node number."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time

import pytest

from callhistory.db.engine import open_database
from callhistory.db.migrate import upgrade
from callhistory.db.nodes import NoFreeNode, take
from callhistory.kit import ids
from callhistory.kit.config import Settings

WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from callhistory.kit import ids
    from callhistory.kit.config import Settings
    from callhistory.db.engine import open_database
    from callhistory.db.nodes import NodeLease

    async def main():
        db = open_database(Settings(database_url=sys.argv[1]))
        async with NodeLease(db) as lease:
            minted = ids.new_ids(4096) + ids.new_ids(4096)
            print(lease.node, *minted)
        await db.dispose()

    asyncio.run(main())
    """
)


def test_processes_started_at_once_never_mint_the_same_id(
    database_url: str, server: object
) -> None:
    """Twelve processes lease, as each worker and CLI command does, and mint at once."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, database_url], stdout=subprocess.PIPE, text=True
        )
        for _ in range(12)
    ]
    outputs = [process.communicate(timeout=120)[0].split() for process in processes]
    assert [p.returncode for p in processes] == [0] * 12
    nodes = [int(out[0]) for out in outputs]
    minted = [int(value) for out in outputs for value in out[1:]]
    assert len(set(nodes)) == 12
    assert len(minted) == 12 * 8192 and len(set(minted)) == len(minted)
    assert all(((value >> 12) & 1023) == node for out, node in zip(outputs, nodes, strict=True)
               for value in map(int, out[1:]))  # fmt: skip


def test_a_lease_not_renewed_frees_its_number(fresh_database_url: str) -> None:
    async def go() -> None:
        db = open_database(Settings(database_url=fresh_database_url))
        try:
            await upgrade(db.writer)
            alive = [await take(db, holder=f"alive-{n}", seconds=120) for n in range(ids.NODES - 1)]
            crashed = await take(db, holder="crashed", seconds=1.0)
            assert sorted([*alive, crashed]) == list(range(ids.NODES))
            with pytest.raises(NoFreeNode):
                await take(db, holder="one too many", seconds=1.0)
            await asyncio.sleep(1.2)  # "crashed" never renewed: its lease ran out
            assert await take(db, holder="next", seconds=1.0) == crashed
        finally:
            await db.dispose()

    asyncio.run(go())


def test_a_generator_stops_when_its_lease_ran_out() -> None:
    generator = ids.IdGenerator()
    generator.use_node(7, until=time.time() + 60)
    assert (generator.next_ids(1)[0] >> 12) & 1023 == 7
    generator.use_node(7, until=time.time() - 1)
    with pytest.raises(ids.LeaseExpired):
        generator.next_ids(1)
