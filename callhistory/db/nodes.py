"""Id node leases: a process takes one of the 1,024 node numbers of ``ids`` from the database
for as long as it runs, renews it, and gives it back when it stops; a process that crashed
loses its number when the lease expires. Two live processes never mint with the same number,
and a number changes hands only after its last holder stopped minting with it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import threading
import time
from types import TracebackType

import sqlalchemy as sa

from callhistory.db.engine import Database, transaction
from callhistory.db.tables import id_nodes
from callhistory.kit import ids

LEASE_SECONDS = 600.0
# A number given back is free again only after this, so that the next holder's first id can
# never fall in the same millisecond as the last holder's last one (nor within clock skew).
REUSE_AFTER_SECONDS = 2.0
_ATTEMPTS = 50
logger = logging.getLogger("callhistory.kit.ids")


class NoFreeNode(RuntimeError):
    """Every node number is held by a live process."""


def _now() -> int:
    return int(time.time() * 1_000_000)


async def take(db: Database, *, holder: str, seconds: float = LEASE_SECONDS) -> int:
    """Lease the lowest free (or expired) node number for ``holder``."""
    for _ in range(_ATTEMPTS):
        now = _now()
        async with transaction(db, write=True) as conn:
            free = (
                await conn.execute(
                    sa.select(id_nodes.c.node)
                    .where(id_nodes.c.expires_at < now)
                    .order_by(id_nodes.c.node)
                    .limit(1)
                )
            ).scalar()
            if free is None:
                raise NoFreeNode(f"all {ids.NODES} id node numbers are leased")
            # Claimed only if still free when updated: a concurrent taker re-reads and moves on.
            claimed = await conn.execute(
                sa.update(id_nodes)
                .where(id_nodes.c.node == free, id_nodes.c.expires_at < now)
                .values(holder=holder, expires_at=now + int(seconds * 1_000_000))
            )
            if claimed.rowcount == 1:
                return int(free)
    raise NoFreeNode(f"no id node number could be leased in {_ATTEMPTS} attempts")


async def renew(db: Database, *, node: int, holder: str, seconds: float = LEASE_SECONDS) -> bool:
    """Extend the lease; False when it was lost (expired and taken by another process)."""
    async with transaction(db, write=True) as conn:
        result = await conn.execute(
            sa.update(id_nodes)
            .where(id_nodes.c.node == node, id_nodes.c.holder == holder)
            .values(expires_at=_now() + int(seconds * 1_000_000))
        )
    return result.rowcount == 1


async def give_back(db: Database, *, node: int, holder: str) -> None:
    async with transaction(db, write=True) as conn:
        await conn.execute(
            sa.update(id_nodes)
            .where(id_nodes.c.node == node, id_nodes.c.holder == holder)
            .values(holder="", expires_at=_now() + int(REUSE_AFTER_SECONDS * 1_000_000))
        )


class _Process:
    """The one lease of this process, shared by every ``NodeLease`` open in it (tests run
    several servers in one process; each must mint with the process's number)."""

    guard = threading.Lock()
    users = 0
    node = -1
    holder = f"{socket.gethostname()[:100]}:{os.getpid()}:{secrets.token_hex(6)}"


class NodeLease:
    """``async with NodeLease(db):`` ids minted inside use a node number no other live process
    holds. Renewed every third of the lease; a lease lost anyway (the process was stopped for
    longer than the lease) is replaced before more ids are minted (``ids.LeaseExpired`` until
    then)."""

    def __init__(self, db: Database, *, seconds: float = LEASE_SECONDS) -> None:
        self._db = db
        self._seconds = seconds
        self._task: asyncio.Task[None] | None = None

    @property
    def node(self) -> int:
        return _Process.node

    async def __aenter__(self) -> NodeLease:
        with _Process.guard:
            _Process.users += 1
            first = _Process.users == 1
        if first:
            await self._take()
        else:
            for _ in range(3000):  # another lease of this process is being taken
                if _Process.node >= 0:
                    break
                await asyncio.sleep(0.01)
        self._task = asyncio.create_task(self._keep())
        return self

    async def _take(self) -> None:
        # The local deadline starts before the database's, so it never outlives it.
        until = time.time() + self._seconds
        node = await take(self._db, holder=_Process.holder, seconds=self._seconds)
        _Process.node = node
        ids.use_node(node, until=until)

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self._seconds / 3)
            try:
                until = time.time() + self._seconds
                node = _Process.node
                if await renew(self._db, node=node, holder=_Process.holder, seconds=self._seconds):
                    ids.use_node(node, until=until)
                else:
                    logger.warning("id node %d was lost; leasing another", node)
                    await self._take()
            except Exception:  # the store is down: try again at the next round
                logger.warning("could not renew id node %d", _Process.node, exc_info=True)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
        with _Process.guard:
            _Process.users -= 1
            last = _Process.users == 0
        if not last:
            return
        ids.use_node(_Process.node, until=time.time())  # no more ids under a number given back
        try:
            await give_back(self._db, node=_Process.node, holder=_Process.holder)
        except Exception:  # expiry frees it anyway
            logger.warning("could not give back id node %d", _Process.node, exc_info=True)
