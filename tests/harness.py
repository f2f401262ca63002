"""Test harness: a real server on loopback, the real CLI, and an HTTP client for the API."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import msgspec
import uvicorn
from typer.testing import CliRunner

from callhistory.app import create_app
from callhistory.cli import app as cli_app
from callhistory.db.engine import open_database, transaction
from callhistory.db.nodes import NodeLease
from callhistory.http.server import uvicorn_options
from callhistory.keys import service as keys
from callhistory.keys.schemas import ApiKeyCreated, TenantRead
from callhistory.kit.config import Settings
from callhistory.principal import Scope

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """uvicorn serving ``create_app`` in a background thread on a free loopback port."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            **uvicorn_options(settings),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.base_url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


def cli(*args: str) -> str:
    """Run the real CLI in-process; fail the test with its output if it fails."""
    result = CliRunner().invoke(cli_app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def cli_json(*args: str) -> Any:
    return msgspec.json.decode(cli(*args, "--json"))


@dataclass
class Tenant:
    id: str
    read: str
    ingest: str
    admin: str
    key_ids: dict[str, str]


def new_tenant(
    database_url: str, *, name: str = "Test tenant", timezone: str = "", domain: str = ""
) -> Tenant:
    """A tenant and a key of each scope, made by the services the CLI's commands call (the
    CLI itself is tested in test_cli.py; here it would check the schema four times)."""

    async def make() -> tuple[TenantRead, dict[Scope, ApiKeyCreated]]:
        db = open_database(Settings(database_url=database_url))
        try:
            async with NodeLease(db), transaction(db, write=True) as conn:
                tenant = await keys.create_tenant(
                    conn, name=name, timezone=timezone or keys.DEFAULT_TIMEZONE, domain=domain
                )
                made = {
                    scope: await keys.create_key(conn, tenant_id=int(tenant.id), scope=scope)
                    for scope in (Scope.READ, Scope.INGEST, Scope.ADMIN)
                }
            return tenant, made
        finally:
            await db.dispose()

    tenant, made = asyncio.run(make())
    return Tenant(
        id=tenant.id,
        read=made[Scope.READ].key,
        ingest=made[Scope.INGEST].key,
        admin=made[Scope.ADMIN].key,
        key_ids={scope.value: k.id for scope, k in made.items()},
    )


class Api:
    """Calls the RPC methods of a running server."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60)

    def close(self) -> None:
        self.http.close()

    def call(
        self, method: str, body: Any, key: str, *, prefix: str = "shop", service: str = "Etelecom"
    ) -> httpx.Response:
        content = body if isinstance(body, bytes) else msgspec.json.encode(body)
        return self.http.post(
            f"/v1/{prefix}.{service}/{method}",
            content=content,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )

    def ok(self, method: str, body: Any, key: str, **kw: str) -> Any:
        response = self.call(method, body, key, **kw)
        assert response.status_code == 200, response.text
        return response.json()

    def error(self, method: str, body: Any, key: str, status: int, code: str, **kw: str) -> Any:
        response = self.call(method, body, key, **kw)
        assert response.status_code == status, response.text
        envelope = response.json()
        assert envelope["code"] == code, envelope
        assert set(envelope) == {"code", "msg", "meta"}
        return envelope

    def ingest(self, key: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for start in range(0, len(items), 500):
            body = {"call_logs": items[start : start + 500]}
            out += self.ok("IngestCallLogs", body, key, prefix="pbx")["call_logs"]
        return out

    def walk(self, key: str, body: dict[str, Any]) -> list[list[dict[str, Any]]]:
        """Every page from the first, following ``next``."""
        pages = []
        paging = dict(body.get("paging", {}))
        while True:
            answer = self.ok("ListCallLogs", {**body, "paging": paging}, key)
            pages.append(answer["call_logs"])
            if not answer["paging"]["next"]:
                return pages
            paging = {**paging, "after": answer["paging"]["next"]}


def start_serve(
    database_url: str, *, workers: int = 1, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``callhistory serve`` as its own process on a free port, once it answers /readyz."""
    port = free_port()
    command = [sys.executable, "-m", "callhistory", "serve", "--database", database_url]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/readyz").status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("callhistory serve did not start")
        time.sleep(0.05)


def eventually(check: Callable[[], T | None], *, within: float = 10, every: float = 0.02) -> T:
    """``check()`` once it is truthy, tried every ``every`` seconds for up to ``within``."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s")
        time.sleep(every)


def post_at_once(base_url: str, key: str, batches: list[list[dict[str, Any]]]) -> list[Any]:
    """Post the batches from 6 threads at once, each over its own connection; the items
    IngestCallLogs answered, batch after batch."""

    def post(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        client = Api(base_url)
        try:
            return client.ingest(key, batch)
        finally:
            client.close()

    with ThreadPoolExecutor(6) as pool:
        return [item for answer in pool.map(post, batches) for item in answer]


def worst_queries() -> list[bytes]:
    """The heaviest requests one read key can send: long lists of ids that match nothing (the
    walk finds no page to stop at), sorted by a key no filter index follows, a number nobody
    called, a duration no call has."""
    unknown = [str(10**15 + i) for i in range(100)]
    return [
        msgspec.json.encode(body)
        for body in (
            {"filter": {"extension_ids": unknown, "hotline_ids": unknown},
             "paging": {"sort": "duration"}},
            {"filter": {"extension_ids": unknown}, "paging": {"sort": "-updated_at"}},
            {"filter": {"call_number": "0999999999"}, "paging": {"sort": "-duration"}},
            {"filter": {"duration": {"comparison": "equal", "value": 86399}},
             "paging": {"sort": "created_at"}},
        )
    ]  # fmt: skip


def run_sql(
    database_url: str, statement: str, *, all_tenants: bool = False, **params: object
) -> list[Any]:
    """One statement in a transaction of its own, straight on the database; its rows (if any).
    ``all_tenants``: the statement spans tenants on purpose (see tests/scope_check.py)."""
    import asyncio

    import sqlalchemy as sa

    from callhistory.db.engine import ALL_TENANTS, create_engine

    async def run() -> list[Any]:
        engine = create_engine(Settings(database_url=database_url))
        options = ALL_TENANTS if all_tenants else {}
        try:
            async with engine.begin() as conn:
                result = await conn.execute(sa.text(statement), params, execution_options=options)
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def partition_names(database_url: str) -> set[str]:
    """The monthly partitions of call_logs (PostgreSQL)."""
    rows = run_sql(
        database_url,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'call_logs'::regclass",
    )
    return {name for (name,) in rows}


def assert_kept_stats_agree(api: Api, key: str) -> None:
    """GetCallStats from the statistics kept at write time equals the same request counted
    call by call (a filter they do not keep, ``duration >= 0``, matches every call)."""
    every_call = {"duration": {"comparison": "greater_than_or_equal_to", "value": 0}}
    for group_by in (["direction"], ["hour"], ["weekday"], ["extension"], ["hotline"]):
        kept = api.ok("GetCallStats", {"group_by": group_by}, key)
        counted = api.ok("GetCallStats", {"group_by": group_by, "filter": every_call}, key)
        assert kept == counted, group_by


def watch_webhooks(api: Api, tenant: Tenant) -> None:
    """Give the tenant a webhook endpoint (the suite's shared server sends nothing: its
    ``deliver`` is off), so that its calls' events are written to the outbox."""
    api.ok("CreateWebhookEndpoint", {"url": "https://crm.example.com/hook"}, tenant.admin)


def assert_outbox_agrees(api: Api, tenant: Tenant, database_url: str) -> None:
    """Every call ListCallLogs shows had a ``call_log.created`` event, and its last event
    carries the call exactly as ListCallLogs shows it."""
    rows = run_sql(
        database_url,
        "SELECT call_id, type, data FROM webhook_events WHERE tenant_id = :t ORDER BY seq",
        t=int(tenant.id),
    )
    created = {str(call_id) for call_id, kind, _ in rows if kind == "call_log.created"}
    last = {str(call_id): msgspec.json.decode(data) for call_id, _, data in rows}
    listed = {r["id"]: r for p in api.walk(tenant.read, {"paging": {"limit": 1000}}) for r in p}
    assert listed and set(listed) <= created
    for call_id, row in listed.items():
        assert last[call_id] == row, call_id
