"""On a Citus cluster (a coordinator and two workers): the tables are distributed as
docs/scaling.md says, and every statement a tenant's request sends is routed to one shard."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from callhistory.app import METHODS
from callhistory.db.citus import REFERENCE_TABLES
from callhistory.db.engine import create_engine
from callhistory.db.tables import metadata
from callhistory.kit.config import Settings
from tests.dataset import build
from tests.harness import Api, ServerThread, Tenant, cli, cli_json, new_tenant, run_sql
from tests.pgserver import CitusCluster

pytestmark = pytest.mark.only_on("citus")

Statement = tuple[str, Any]


@contextmanager
def statements_sent() -> Iterator[list[Statement]]:
    """The statements the server sends meanwhile, with their parameters (not those marked as
    spanning tenants: background work such as purges)."""
    seen: list[Statement] = []
    lock = threading.Lock()

    def note(
        conn: sa.Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if context is not None and context.execution_options.get("callhistory_all_tenants"):
            return
        with lock:  # a statement run for many rows: planned with the first
            seen.append((statement, tuple(params[0] if many else params)))

    event.listen(sa.engine.Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(sa.engine.Engine, "before_cursor_execute", note)


_PLANNED = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")
_TASKS = re.compile(r"Task Count: (\d+)")


def plans(database_url: str, statements: list[Statement]) -> list[tuple[str, str]]:
    """(statement, its EXPLAIN) for each query among the statements, planned with the same
    parameters on the coordinator."""

    async def explain() -> list[tuple[str, str]]:
        engine = create_engine(Settings(database_url=database_url))
        out: list[tuple[str, str]] = []
        try:
            async with engine.connect() as conn:
                for statement, params in statements:
                    if not statement.lstrip().upper().startswith(_PLANNED):
                        continue
                    async with conn.begin():
                        rows = await conn.exec_driver_sql("EXPLAIN " + statement, params)
                        out.append((statement, "\n".join(row[0] for row in rows)))
        finally:
            await engine.dispose()
        return out

    return asyncio.run(explain())


def multi_shard(plan: str) -> bool:
    return any(int(count) != 1 for count in _TASKS.findall(plan))


def test_tables_are_distributed_by_tenant_and_colocated(database_url: str, api: Api) -> None:
    rows = run_sql(
        database_url,
        "SELECT logicalrelid::regclass::text, partmethod::text, "
        "column_to_column_name(logicalrelid, partkey), colocationid FROM pg_dist_partition",
    )
    kinds = {name: (method, column, group) for name, method, column, group in rows}
    for table in metadata.sorted_tables:
        method, column, group = kinds[table.name]
        if table.name in REFERENCE_TABLES:
            assert method == "n", table.name  # a reference table: a copy on every node
        else:
            assert (method, column) == ("h", "tenant_id"), table.name
            assert group == kinds["call_logs"][2], f"{table.name} is not co-located"
    # The monthly partitions are distributed with their table.
    months = [name for name in kinds if re.fullmatch(r"call_logs_p\d{6}", name)]
    assert months and all(kinds[name][0] == "h" for name in months)


def test_every_rpc_method_is_routed_to_one_shard(
    database_url: str, api: Api, tenant: Tenant
) -> None:
    data = build(api, tenant, calls=60)
    call = data.calls[0]
    ext_id = next(iter(data.extensions))
    user_id = next(iter(data.user_department))
    with statements_sent() as seen:
        made = api.ok("CreateWebhookEndpoint", {"url": "https://crm.example.com/a"}, tenant.admin)
    endpoint = made["endpoint"]
    sent: dict[str, list[Statement]] = {"CreateWebhookEndpoint": seen}
    # Each method at least once; the call log queries in their different shapes.
    requests: list[tuple[str, dict[str, Any], str, str]] = [
        ("GetTenant", {}, tenant.read, "shop"),
        ("CreateHotline", {"hotline": "02873009999"}, tenant.admin, "shop"),
        ("GetHotlines", {}, tenant.read, "shop"),
        ("CreateDepartment", {"name": "Night shift"}, tenant.admin, "shop"),
        ("GetDepartments", {}, tenant.read, "shop"),
        ("CreateUser", {"full_name": "Lê Minh", "department_id": data.departments[0]},
         tenant.admin, "shop"),
        ("GetUsers", {"paging": {"limit": 2}}, tenant.read, "shop"),
        ("CreateExtension", {"extension_number": "399"}, tenant.admin, "shop"),
        ("GetExtensions", {}, tenant.read, "shop"),
        ("AssignUserToExtension", {"extension_id": ext_id, "user_id": user_id},
         tenant.admin, "shop"),
        ("RemoveUserOfExtension", {"extension_id": ext_id}, tenant.admin, "shop"),
        ("IngestCallLogs", {"call_logs": [
            {**c.body, "source_id": c.source_id + "-again"} for c in data.calls[:5]]},
         tenant.ingest, "pbx"),
        ("IngestCallLogs", {"call_logs": [c.body for c in data.calls[:5]]}, tenant.ingest, "pbx"),
        ("ListCallLogs", {}, tenant.read, "shop"),
        ("ListCallLogs", {"paging": {"sort": "started_at", "limit": 5}}, tenant.read, "shop"),
        ("ListCallLogs", {"paging": {"sort": "-duration"}}, tenant.read, "shop"),
        ("ListCallLogs", {"filter": {"call_number": "0912345678"}}, tenant.read, "shop"),
        ("ListCallLogs", {"filter": {"department_id": data.departments[1]}}, tenant.read, "shop"),
        ("ListCallLogs", {"filter": {"extension_ids": list(data.extensions)[:2],
                                     "hotline_ids": list(data.hotlines)}}, tenant.read, "shop"),
        ("ListCallLogs", {"filter": {"duration": {"comparison": "greater_than", "value": 600},
                                     "direction": "in", "call_state": "answered"}},
         tenant.read, "shop"),
        ("ListCallLogs", {"filter": {"external_id": "sdk-a"}}, tenant.read, "shop"),
        ("GetCallLog", {"id": call.id}, tenant.read, "shop"),
        ("ListCallRecordings", {"call_id": call.id}, tenant.read, "shop"),
        ("ListCallLogChanges", {"limit": 10}, tenant.read, "shop"),
        ("GetCallStats", {"group_by": ["direction"]}, tenant.read, "shop"),
        ("GetCallStats", {"group_by": ["extension"],
                          "filter": {"duration": {"comparison": "greater_than", "value": 0}}},
         tenant.read, "shop"),
        ("ListMissedCalls", {}, tenant.read, "shop"),
        ("ListWebhookEndpoints", {}, tenant.admin, "shop"),
        ("ListWebhookDeliveries", {"endpoint_id": endpoint["id"]}, tenant.admin, "shop"),
        ("UpdateWebhookEndpoint", {"id": endpoint["id"], "description": "CRM"},
         tenant.admin, "shop"),
        ("RotateWebhookSecret", {"id": endpoint["id"]}, tenant.admin, "shop"),
        ("DeleteCallLogs", {"number": call.body["caller"]}, tenant.admin, "shop"),
    ]  # fmt: skip
    for method, body, key, prefix in requests:
        with statements_sent() as seen:
            api.ok(method, body, key, prefix=prefix)
        sent.setdefault(method, []).extend(seen)
    deliveries = api.ok("ListWebhookDeliveries", {"endpoint_id": endpoint["id"]}, tenant.admin)
    for method, body in (
        ("RetryWebhookDelivery", {"id": deliveries["deliveries"][0]["id"]}),
        ("DeleteWebhookEndpoint", {"id": endpoint["id"]}),
    ):
        with statements_sent() as seen:
            api.ok(method, body, tenant.admin)
        sent.setdefault(method, []).extend(seen)

    assert set(sent) == {method.name for method in METHODS}, "a method is not exercised here"
    planned = {method: plans(database_url, statements) for method, statements in sent.items()}
    spread = [
        f"{method}:\n{statement}\n{plan}"
        for method, pairs in planned.items()
        for statement, plan in pairs
        if multi_shard(plan)
    ]
    assert not spread, "\n\n".join(spread)
    # Each method's statements did reach the distributed tables.
    for method, pairs in planned.items():
        assert any("Task Count: 1" in plan for _, plan in pairs), method
    # The check itself: a statement without the tenant is planned over every shard.
    (everyone,) = plans(database_url, [("SELECT count(*) FROM call_logs", ())])
    assert multi_shard(everyone[1])


def calls(prefix: str, n: int, start: dt.datetime) -> list[dict[str, Any]]:
    return [
        {"source_id": f"{prefix}-{i}", "started_at": (start + dt.timedelta(seconds=i)).isoformat()}
        for i in range(n)
    ]


def _database(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_a_tenant_moves_to_the_other_worker_while_its_pbx_posts(
    fresh_database_url: str, citus: CitusCluster
) -> None:
    """The rebalancer's move of a busy tenant's shard (with every co-located table) to the
    other worker, while a PBX posts batches and a CRM pages: afterwards every acknowledged call
    is there once, and a cursor taken before the move goes on where it was."""
    url = fresh_database_url
    cli("migrate", "--database", url)
    tenant = new_tenant(url)
    settings = Settings(database_url=url, access_log=False, rate_limit_per_second=0)
    july = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)
    with ServerThread(settings) as server, closing(Api(server.base_url)) as api:
        before = [ack["id"] for ack in api.ingest(tenant.ingest, calls("before", 300, july))]
        order = [row["id"] for page in api.walk(tenant.read, {}) for row in page]
        first = api.ok("ListCallLogs", {"paging": {"limit": 50}}, tenant.read)
        cursor = first["paging"]["next"]
        stop = threading.Event()
        acked: list[str] = []
        retried: list[int] = []
        pages: list[int] = []

        def post() -> None:  # as a PBX: a batch that fails is sent again
            with closing(Api(server.base_url)) as pbx:
                later = july + dt.timedelta(days=20)
                for round_ in range(10_000):
                    if stop.is_set():
                        return
                    batch = calls(f"during{round_}", 20, later + dt.timedelta(minutes=round_))
                    while True:
                        response = pbx.call("IngestCallLogs", {"call_logs": batch}, tenant.ingest,
                                            prefix="pbx")  # fmt: skip
                        if response.status_code == 200:
                            acked.extend(item["id"] for item in response.json()["call_logs"])
                            break
                        assert response.json()["code"] == "unavailable", response.text
                        retried.append(round_)

        def read() -> None:
            with closing(Api(server.base_url)) as crm:
                while not stop.is_set():
                    response = crm.call("ListCallLogs", {"paging": {"limit": 50}}, tenant.read)
                    pages.append(response.status_code)

        workers = [threading.Thread(target=post), threading.Thread(target=read)]
        for worker in workers:
            worker.start()
        try:
            time.sleep(1)
            where = cli_json("tenant", "where", tenant.id, "--database", url)
            source = where["node"]
            target = next(
                f"127.0.0.1:{node.port}"
                for node in citus.workers
                if f"127.0.0.1:{node.port}" != source
            )
            host, port = source.split(":")
            to_host, to_port = target.split(":")
            citus.sql(
                _database(url),
                f"SELECT citus_move_shard_placement({where['shard']}, '{host}', {port}, "
                f"'{to_host}', {to_port})",
            )
            moved_at = len(acked)
            time.sleep(1)
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=60)
        assert cli_json("tenant", "where", tenant.id, "--database", url)["node"] == target
        assert moved_at and len(acked) > moved_at, "the PBX did not post across the move"
        assert pages and set(pages) == {200}, set(pages)
        stored = [row["id"] for page in api.walk(tenant.read, {"paging": {"limit": 1000}})
                  for row in page]  # fmt: skip
        missing = sorted((set(before) | set(acked)) - set(stored), key=int)
        # Should one go missing, whether it is stored at all tells a lost write from a page
        # that skipped it.
        in_store = missing and run_sql(
            url,
            "SELECT id FROM call_logs WHERE tenant_id = :t AND id = ANY(:ids)",
            t=int(tenant.id),
            ids=[int(i) for i in missing],
        )
        assert not missing, f"{len(missing)} acknowledged calls not listed, stored: {in_store}"
        assert len(stored) == len(set(stored)) == len(before) + len(acked)
        rest = api.walk(tenant.read, {"paging": {"limit": 100, "after": cursor}})
        shown = [row["id"] for row in first["call_logs"]] + [row["id"] for p in rest for row in p]
        # The calls posted during the move are newer: the old cursor's walk goes on through
        # the calls from before, as they were in order before the move.
        assert shown == order


def test_a_large_tenant_gets_shards_of_its_own(database_url: str, api: Api) -> None:
    tenant = new_tenant(database_url)
    other = new_tenant(database_url)
    start = dt.datetime(2025, 8, 1, tzinfo=dt.UTC)
    api.ingest(tenant.ingest, calls("big", 200, start))
    api.ingest(other.ingest, calls("small", 20, start))
    listing = {"paging": {"limit": 1000}}
    mine, theirs = (api.walk(t.read, listing) for t in (tenant, other))
    assert not cli_json("tenant", "where", tenant.id, "--database", database_url)["alone"]

    isolated = cli_json("tenant", "isolate", tenant.id, "--database", database_url)
    assert isolated["alone"] and isolated["tenant_id"] == tenant.id
    assert cli_json("tenant", "where", tenant.id, "--database", database_url) == isolated
    assert (
        cli_json("tenant", "where", other.id, "--database", database_url)["shard"]
        != (isolated["shard"])
    )
    # Every table's rows of the tenant moved with it; both tenants are served as before.
    assert api.walk(tenant.read, listing) == mine
    assert api.walk(other.read, listing) == theirs
    assert api.ok("IngestCallLogs", {"call_logs": calls("after", 5, start)}, tenant.ingest,
                  prefix="pbx")  # fmt: skip
    # Isolating again changes nothing.
    assert cli_json("tenant", "isolate", tenant.id, "--database", database_url) == isolated
