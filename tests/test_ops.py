"""Operations: health, readiness, the OpenAPI document, JSON access logs with request ids, the
store's time budget, recovery from a PostgreSQL restart, SQLite's WAL under continuous ingest."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from callhistory.app import METHODS
from callhistory.http.accesslog import JsonFormatter
from callhistory.kit.config import Settings
from tests.harness import Api, ServerThread, Tenant, cli, new_tenant, post_at_once
from tests.pgserver import PostgresCluster

LIST = "/v1/shop.Etelecom/ListCallLogs"


def test_health_and_readiness(api: Api) -> None:
    assert api.http.get("/healthz").json() == {"status": "ok"}
    assert api.http.get("/readyz").json() == {"status": "ready"}


def test_openapi_describes_every_method_with_its_models(api: Api) -> None:
    doc = api.http.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    for method in METHODS:
        for prefix in method.prefixes:
            operation = doc["paths"][f"/v1/{prefix}.{method.service}/{method.name}"]["post"]
            request_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            response_ref = operation["responses"]["200"]["content"]["application/json"]["schema"][
                "$ref"
            ]
            for ref in (request_ref, response_ref):
                assert ref.split("/")[-1] in doc["components"]["schemas"]
            assert "400" in operation["responses"] and "401" in operation["responses"]
    call_log = doc["components"]["schemas"]["CallLog"]
    assert call_log["properties"]["call_targets"]["items"]["$ref"].endswith("/CallTarget")
    filters = doc["components"]["schemas"]["CallLogFilter"]
    assert filters["additionalProperties"] is False
    assert "call_number" in filters["properties"]
    assert (
        "0 or absent = 100"
        in doc["components"]["schemas"]["Paging"]["properties"]["limit"]["description"]
    )


def test_openapi_describes_the_pbx_and_health_endpoints_and_each_status(api: Api) -> None:
    doc = api.http.get("/openapi.json").json()
    freeswitch = doc["paths"]["/ingest/freeswitch"]["post"]
    assert freeswitch["security"] == [{"basic": []}]
    assert doc["components"]["securitySchemes"]["basic"]["scheme"] == "basic"
    assert set(freeswitch["requestBody"]["content"]) >= {
        "application/json",
        "application/x-www-form-urlencoded",
    }
    assert {"/healthz", "/readyz"} <= set(doc["paths"])
    list_call_logs = doc["paths"]["/v1/shop.Etelecom/ListCallLogs"]["post"]["responses"]
    statuses = {
        status: answer["description"]
        for status, answer in list_call_logs.items()
        if status != "200"
    }
    for status, code in [("400", "malformed"), ("401", "unauthenticated"), ("404", "bad_route"),
                         ("413", "resource_exhausted"), ("503", "unavailable")]:  # fmt: skip
        assert code in statuses[status]


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(JsonFormatter().format(record)))


def test_access_log_is_json_with_request_id(database_url: str, tenant: Tenant) -> None:
    settings = Settings(database_url=database_url, access_log=True)
    capture = Capture()
    with ServerThread(settings) as running:
        logging.getLogger("callhistory.access").addHandler(capture)
        try:
            with Api(running.base_url).http as http:
                headers = {
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {tenant.read}",
                }
                tagged = http.post(
                    LIST, content=b"{}", headers={**headers, "X-Request-Id": "req-123"}
                )
                untagged = http.post(LIST, content=b"{}", headers=headers)
        finally:
            logging.getLogger("callhistory.access").removeHandler(capture)
    assert tagged.headers["x-request-id"] == "req-123"
    generated = untagged.headers["x-request-id"]
    assert generated and generated != "req-123"
    by_id = {line["request_id"]: line for line in capture.lines}
    assert by_id["req-123"]["status"] == 200
    assert by_id["req-123"]["tenant_id"] == tenant.id
    assert by_id["req-123"]["path"] == LIST
    assert by_id["req-123"]["key_id"] == tenant.key_ids["read"]
    assert by_id["req-123"]["client"] == "127.0.0.1"
    assert tenant.read not in json.dumps(capture.lines)
    assert by_id[generated]["level"] == "info"


@pytest.mark.only_on("postgresql")
def test_statement_timeout_is_unavailable_and_retryable(database_url: str, tenant: Tenant) -> None:
    """A query stuck behind a lock is cancelled by the statement timeout: 503, not 500."""
    import asyncio
    import threading

    import sqlalchemy as sa

    from callhistory.db.engine import create_engine

    locked = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        async def run() -> None:
            engine = create_engine(Settings(database_url=database_url))
            async with engine.begin() as conn:
                await conn.execute(sa.text("LOCK TABLE call_logs IN ACCESS EXCLUSIVE MODE"))
                locked.set()
                await asyncio.get_running_loop().run_in_executor(None, release.wait, 30)
            await engine.dispose()

        asyncio.run(run())

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(30)
        settings = Settings(database_url=database_url, access_log=False, statement_timeout_ms=300)
        with ServerThread(settings) as running, Api(running.base_url).http as http:
            response = http.post(
                LIST,
                content=b"{}",
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {tenant.read}",
                },
            )
    finally:
        release.set()
        holder.join(timeout=30)
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "unavailable"


def test_the_service_recovers_when_postgresql_restarts(postgres: PostgresCluster | None) -> None:
    """A restart leaves every pooled connection dead: the request that finds one answers a
    retryable ``unavailable`` (never ``internal``), the whole pool starts afresh, and the
    following requests are served (not one ``unavailable`` per pooled connection)."""
    if postgres is None:
        pytest.skip("needs the tests' own PostgreSQL cluster to restart")
    url = postgres.create_database("restarted")
    cli("migrate", "--database", url)
    tenant = new_tenant(url)
    with ServerThread(Settings(database_url=url, rate_limit_per_second=0)) as server:
        api = Api(server.base_url)
        try:
            # Batches at once, so the pool holds several connections.
            batches = [
                [
                    {"source_id": f"r{b}-{i}", "started_at": "2025-05-01T09:00:00Z"}
                    for i in range(50)
                ]
                for b in range(6)
            ]
            assert len(post_at_once(server.base_url, tenant.ingest, batches)) == 300
            postgres.restart()
            statuses = [api.call("ListCallLogs", {}, tenant.read).status_code for _ in range(4)]
        finally:
            api.close()
    assert statuses[0] in (200, 503), statuses
    assert statuses[1:] == [200, 200, 200], statuses


def test_sqlite_wal_stays_bounded_under_continuous_ingest(tmp_path: Path) -> None:
    """Batch after batch, SQLite's write-ahead log is checkpointed and started over, so the
    -wal file beside the database stays near the autocheckpoint size (1000 pages, 4 MB) rather
    than growing with every call ingested (it grew to 37 MB over these batches when a request's
    read snapshot stayed open across its write's commit)."""
    url = f"sqlite:///{tmp_path / 'wal.db'}"
    cli("migrate", "--database", url)
    tenant = new_tenant(url)
    with ServerThread(Settings(database_url=url, rate_limit_per_second=0)) as server:
        api = Api(server.base_url)
        try:
            for b in range(40):
                calls = [
                    {
                        "source_id": f"w{b}-{i}",
                        "started_at": f"2025-{1 + i % 12:02d}-{1 + b % 28:02d}T{i % 24:02d}:00:00Z",
                        "caller": f"09{b:04d}{i:04d}",
                        "direction": "in",
                    }
                    for i in range(250)
                ]
                api.ingest(tenant.ingest, calls)
            listed = api.ok("ListCallLogs", {"paging": {"limit": 1}}, tenant.read)
            wal_bytes = (tmp_path / "wal.db-wal").stat().st_size  # removed at shutdown
        finally:
            api.close()
    assert listed["call_logs"], listed
    assert wal_bytes < 12 * 2**20, wal_bytes
