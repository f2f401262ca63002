"""The benchmark data set: 5,000,000 calls over 50 tenants (one with 2,000,000), two years,
realistic mixes, built once per backend and cached under bench/.data/.

Tenants, keys and the directory go through the service; calls are bulk-loaded with the driver
(the API's ingest throughput is measured separately), indexes built after the load.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from callhistory.calllogs.documents import call_log_json
from callhistory.db import partitions
from callhistory.db.engine import open_database, transaction
from callhistory.db.migrate import alembic_config, upgrade
from callhistory.db.tables import call_logs
from callhistory.directory import service as directory
from callhistory.directory.schemas import (
    DepartmentCreate,
    ExtensionCreate,
    HotlineCreate,
    UserCreate,
)
from callhistory.keys import service as keys
from callhistory.kit.config import Settings
from callhistory.kit.numbers import normalize
from callhistory.principal import Principal, Scope
from callhistory.rollups import service as rollups

DATA = Path(__file__).resolve().parent / ".data"
DAY = 86_400_000_000
END = 1_764_547_200_000_000  # 2025-12-01T00:00:00Z
START = END - 730 * DAY
COLUMNS = [c.name for c in call_logs.columns]
PREFIXES = ["090", "091", "093", "096", "097", "098", "032", "035", "070", "077", "086", "039"]


class TenantInfo(msgspec.Struct):
    id: int
    key: str
    calls: int
    extension_ids: list[int]
    hotline_ids: list[int]
    user_ids: list[int]
    department_ids: list[int]
    busy_number: str  # a number present in very many of the tenant's calls


class Dataset(msgspec.Struct):
    backend: str
    url: str
    total: int
    tenants: list[TenantInfo]


@dataclass
class Sizes:
    total: int
    big: int
    tenants: int = 50


async def _directory(url: str, sizes: Sizes, rng: random.Random) -> list[TenantInfo]:
    db = open_database(Settings(database_url=url))
    await upgrade(db.writer)
    rest = (sizes.total - sizes.big) // (sizes.tenants - 1)
    infos = []
    async with transaction(db, write=True) as conn:
        sealer = await keys.sealer(conn, configured="")
        for t in range(sizes.tenants):
            tenant = await keys.create_tenant(
                conn, name=f"Bench {t}", domain=f"bench{t}.example.vn"
            )
            tid = int(tenant.id)
            key = await keys.create_key(conn, tenant_id=tid, scope=Scope.ADMIN)
            me = Principal(
                key_id=0,
                tenant_id=tid,
                tenant_domain="",
                timezone=tenant.timezone,
                scope=Scope.ADMIN,
            )
            hotlines = [
                int(
                    (
                        await directory.create_hotline(
                            conn, principal=me, request=HotlineCreate(hotline=f"1900{t:02d}{i:02d}")
                        )
                    ).id
                )
                for i in range(3)
            ]
            departments = [
                int(
                    (
                        await directory.create_department(
                            conn, principal=me, request=DepartmentCreate(name=f"D{i}")
                        )
                    ).id
                )
                for i in range(3)
            ]
            users, extensions = [], []
            for i in range(30):
                user = await directory.create_user(
                    conn,
                    principal=me,
                    request=UserCreate(full_name=f"Agent {i}", department_id=departments[i % 3]),
                )
                users.append(int(user.id))
                ext = await directory.create_extension(
                    conn,
                    principal=me,
                    request=ExtensionCreate(
                        extension_number=100 + i, hotline_id=hotlines[i % 3], user_id=user.id
                    ),
                    sealer=sealer,
                )
                extensions.append(int(ext.id))
            busy = "0" + rng.choice(PREFIXES)[1:] + f"{rng.randrange(10**7):07d}"
            infos.append(
                TenantInfo(
                    id=tid,
                    key=key.key,
                    calls=sizes.big if t == 0 else rest,
                    extension_ids=extensions,
                    hotline_ids=hotlines,
                    user_ids=users,
                    department_ids=departments,
                    busy_number=busy,
                )
            )
    await db.dispose()
    return infos


def _targets_pool(rng: random.Random) -> list[str]:
    """Pre-encoded call_targets JSON of 1-4 legs (times are relative placeholders rendered once)."""
    pool = []
    for _ in range(400):
        legs = []
        for leg in range(rng.randint(1, 4)):
            status = rng.choice(["answered", "no_answer", "busy", "cancelled"])
            legs.append(
                {
                    "add_time": f"2025-01-01T00:00:{leg:02d}Z",
                    "answered_time": "2025-01-01T00:00:09Z" if status == "answered" else None,
                    "end_reason": "NORMAL_CLEARING" if status == "answered" else "NO_ANSWER",
                    "ended_time": "2025-01-01T00:01:09Z",
                    "fail_code": 0 if status == "answered" else 480,
                    "ring_duration": rng.randint(2, 20),
                    "ring_time": f"2025-01-01T00:00:{leg:02d}Z",
                    "status": status,
                    "target_number": str(100 + rng.randrange(30)),
                    "trunk_name": "",
                }
            )
        pool.append(msgspec.json.encode(legs).decode())
    return pool


def rows(info: TenantInfo, rng: random.Random, first_id: int) -> Iterator[tuple[object, ...]]:
    """The tenant's calls in column order, spread over two years."""
    targets = _targets_pool(rng)
    step = (END - START) // info.calls
    for i in range(info.calls):
        started = START + i * step + rng.randrange(step)
        r = rng.random()
        direction = (
            "in"
            if r < 0.55
            else "out"
            if r < 0.88
            else "ext"
            if r < 0.95
            else "ext_in"
            if r < 0.98
            else "ext_out"
        )
        answered = rng.random() < 0.72
        duration = int(rng.lognormvariate(4.0, 1.0)) if answered else 0
        if rng.random() < 0.02:
            customer = info.busy_number
        else:
            customer = rng.choice(PREFIXES)[1:] + f"{rng.randrange(10**7):07d}"
            style = rng.random()
            customer = ("0" if style < 0.6 else "+84" if style < 0.85 else "84") + customer
        ext_index = rng.randrange(30)
        ext = str(100 + ext_index)
        hotline = f"1900{info.id % 100:02d}00"
        caller, callee = (customer, hotline) if direction in ("in", "ext_in") else (ext, customer)
        ended = started + (duration + rng.randint(3, 30)) * 1_000_000
        created = started + rng.randint(1, 120) * 1_000_000
        external = f"sdk-{rng.randrange(10**9)}" if rng.random() < 0.05 else None
        values = {
            "tenant_id": info.id,
            "id": first_id + i,
            "source_id": f"src-{info.id}-{i}",
            "caller": caller,
            "callee": callee,
            "caller_norm": normalize(caller),
            "callee_norm": normalize(callee),
            "direction": direction,
            "call_state": "answered" if answered else "not_answered",
            "call_status": "P" if answered else "N",
            "started_at": started,
            "ended_at": ended,
            "duration": duration,
            "extension_id": info.extension_ids[ext_index],
            "user_id": info.user_ids[ext_index],
            "hotline_id": info.hotline_ids[ext_index % 3],
            "contact_id": None,
            "external_id": external,
            "external_session_id": f"sess-{rng.randrange(10**9)}" if external else None,
            "recording_urls": '["https://rec.example.vn/r.mp3"]' if answered else "[]",
            "call_targets": rng.choice(targets),
            "note": "",
            "created_at": created,
            "updated_at": created,
            "change_seq": i + 1,  # written in time order, as PBXs post them
        }
        values["doc"] = call_log_json(values)
        yield tuple(values[name] for name in COLUMNS)


def _index_ddl(dialect: sa.Dialect) -> list[str]:
    return [
        str(sa.schema.CreateIndex(index).compile(dialect=dialect))
        for index in call_logs.indexes
        if index._ddl_if is None or index._ddl_if.dialect == dialect.name
    ]


def cache_name(backend: str, sizes: Sizes) -> str:
    """A data set's cache name; it names the schema revision, so a new migration rebuilds it."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    return f"{backend}-{sizes.total}-r{head}"


async def _build_stats(url: str, backend: str) -> None:
    """The calls went in around the service: build their statistics as an upgraded store
    would (rollups.build_pending)."""
    began = time.perf_counter()
    db = open_database(Settings(database_url=url))
    async with transaction(db, write=True) as conn:
        await conn.execute(
            sa.text("UPDATE service_state SET value = 'pending' WHERE name = 'call_stats'")
        )
    await rollups.build_pending(db)
    await db.dispose()
    print(f"  {backend}: statistics in {time.perf_counter() - began:.0f}s", flush=True)


def build_sqlite(sizes: Sizes, *, seed: int = 11) -> Dataset:
    path = DATA / f"{cache_name('sqlite', sizes)}.db"
    meta = path.with_suffix(".json")
    if meta.exists() and path.exists():
        return msgspec.json.decode(meta.read_bytes(), type=Dataset)
    DATA.mkdir(exist_ok=True)
    for stale in DATA.glob(f"sqlite-{sizes.total}*"):
        stale.unlink()
    url = f"sqlite:///{path}"
    rng = random.Random(seed)
    infos = asyncio.run(_directory(url, sizes, rng))
    began = time.perf_counter()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    names = [
        row[0]
        for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='call_logs' AND sql IS NOT NULL"
        )
    ]
    for name in names:
        db.execute(f"DROP INDEX {name}")
    insert = f"INSERT INTO call_logs ({','.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))})"
    next_id = 10**17
    for info in infos:
        db.execute("BEGIN")
        db.executemany(insert, rows(info, rng, next_id))
        db.execute("COMMIT")
        next_id += info.calls
        print(
            f"  sqlite: tenant {info.id}: {info.calls} calls ({time.perf_counter() - began:.0f}s)",
            flush=True,
        )
    db.executemany(
        "INSERT INTO change_counters (tenant_id, last_seq) VALUES (?, ?)",
        [(info.id, info.calls) for info in infos],
    )
    loaded = time.perf_counter()
    for ddl in _index_ddl(sa.dialects.sqlite.dialect()):
        db.execute(ddl)
    print(f"  sqlite: indexes in {time.perf_counter() - loaded:.0f}s", flush=True)
    db.execute("ANALYZE")
    db.close()
    asyncio.run(_build_stats(url, "sqlite"))
    print(f"  sqlite: built in {time.perf_counter() - began:.0f}s", flush=True)
    data = Dataset(backend="sqlite", url=url, total=sizes.total, tenants=infos)
    meta.write_bytes(msgspec.json.encode(data))
    return data


async def _load_postgres(
    url: str, infos: list[TenantInfo], rng: random.Random, backend: str
) -> None:
    import asyncpg

    db = open_database(Settings(database_url=url))
    async with transaction(db, write=True) as conn:
        await partitions.ensure_partitions(conn, started=range(START, END + 31 * DAY, 28 * DAY))
        names = (
            (
                await conn.execute(
                    sa.text(
                        "SELECT indexname FROM pg_indexes WHERE tablename = 'call_logs' AND indexname <> 'pk_call_logs'"
                    )
                )
            )
            .scalars()
            .all()
        )
        for name in names:
            await conn.execute(sa.text(f"DROP INDEX {name}"))
    await db.dispose()
    raw = await asyncpg.connect(
        sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    began = time.perf_counter()
    next_id = 10**17
    for info in infos:
        await raw.copy_records_to_table(
            "call_logs", records=rows(info, rng, next_id), columns=COLUMNS
        )
        next_id += info.calls
        print(
            f"  {backend}: tenant {info.id}: {info.calls} calls ({time.perf_counter() - began:.0f}s)",
            flush=True,
        )
    await raw.executemany(
        "INSERT INTO change_counters (tenant_id, last_seq) VALUES ($1, $2)",
        [(info.id, info.calls) for info in infos],
    )
    await raw.execute("SET maintenance_work_mem = '1GB'")
    for ddl in _index_ddl(sa.dialects.postgresql.dialect()):
        await raw.execute(ddl)
    await raw.execute("VACUUM ANALYZE call_logs")
    await raw.close()
    await _build_stats(url, backend)
    print(f"  {backend}: built in {time.perf_counter() - began:.0f}s", flush=True)


def build_postgres(
    sizes: Sizes, url: str, *, seed: int = 11, backend: str = "postgresql"
) -> Dataset:
    """PostgreSQL's data set, or Citus's (``backend="citus"``: the same calls, loaded through
    the coordinator into the distributed tables)."""
    meta = DATA / f"{cache_name(backend, sizes)}.json"
    if meta.exists():
        return msgspec.json.decode(meta.read_bytes(), type=Dataset)
    rng = random.Random(seed)
    infos = asyncio.run(_directory(url, sizes, rng))
    asyncio.run(_load_postgres(url, infos, rng, backend))
    data = Dataset(backend=backend, url=url, total=sizes.total, tenants=infos)
    meta.write_bytes(msgspec.json.encode(data))
    return data


if __name__ == "__main__":
    # python -m bench.data URL TOTAL BIG [BACKEND]: the PostgreSQL (or Citus) data set, built
    # beside SQLite's.
    import sys

    sizes = Sizes(total=int(sys.argv[2]), big=int(sys.argv[3]))
    build_postgres(sizes, sys.argv[1], backend=(sys.argv[4:] or ["postgresql"])[0])
