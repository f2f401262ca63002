"""The Python client against a real server: paging, typed results and errors, retries."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from callhistory.calllogs.schemas import CallLog, CallTarget
from callhistory.client import (
    AsyncClient,
    CallHistoryError,
    Client,
    InvalidArgumentError,
    PermissionDeniedError,
    UnavailableError,
)
from tests.dataset import Dataset, build, expected
from tests.harness import Api, ServerThread, free_port, new_tenant


@pytest.fixture(scope="module")
def data(api: Api, database_url: str) -> Dataset:
    return build(api, new_tenant(database_url), calls=130, seed=9)


def test_list_call_logs_follows_next_to_the_end(server: ServerThread, data: Dataset) -> None:
    with Client(server.base_url, data.tenant.read) as client:
        calls = list(client.list_call_logs(limit=7))
        assert [c.id for c in calls] == expected(data, {})
        assert all(isinstance(c, CallLog) for c in calls)
        legs = [t for c in calls for t in c.call_targets]
        assert all(isinstance(t, CallTarget) for t in legs)
        inbound = [c.id for c in client.list_call_logs(direction="in", sort="duration", limit=50)]
        assert inbound == expected(data, {"direction": "in"}, "duration")


def test_errors_are_typed(server: ServerThread, data: Dataset) -> None:
    with Client(server.base_url, data.tenant.read) as client:
        with pytest.raises(CallHistoryError) as caught:
            list(client.list_call_logs(direction="sideways"))
        assert caught.value.code == "invalid_argument"
        assert caught.value.meta["field"] == "filter.direction"
        assert caught.value.status == 400
    with (
        Client(server.base_url, "ch_not_a_key", retries=0) as client,
        pytest.raises(CallHistoryError) as caught,
    ):
        next(client.list_call_logs())
    assert caught.value.code == "unauthenticated"


def test_ingest_and_directory(server: ServerThread, database_url: str) -> None:
    tenant = new_tenant(database_url)
    item = {"source_id": "c1", "started_at": "2025-05-01T09:00:00+07:00", "caller": "0912345678"}
    with Client(server.base_url, tenant.ingest) as client:
        first = client.ingest_call_logs([item]).call_logs[0]
        again = client.ingest_call_logs([item]).call_logs[0]
        assert (first.created, again.created, first.id) == (True, False, again.id)
        assert [c.caller for c in client.list_call_logs()] == ["0912345678"]
        assert list(client.extensions()) == []


def test_async_client(server: ServerThread, data: Dataset) -> None:
    async def run() -> list[str]:
        async with AsyncClient(server.base_url, data.tenant.read) as client:
            return [c.id async for c in client.list_call_logs(limit=40, call_state="answered")]

    assert asyncio.run(run()) == expected(data, {"call_state": "answered"})


class Outage:
    """A stand-in for a server whose store is briefly down (a real HTTP server on loopback):
    it answers 503 ``unavailable`` (with Retry-After) ``failures`` times, then a page."""

    def __init__(self, failures: int, *, proxy: bool = False) -> None:
        self.failures = failures
        self.seen: list[float] = []

        async def endpoint(request: Request) -> Response:
            self.seen.append(time.monotonic())
            if len(self.seen) <= self.failures and proxy:  # a proxy's own page, not JSON
                return Response(b"<html>502 Bad Gateway</html>", 502, media_type="text/html")
            if len(self.seen) <= self.failures:
                body = b'{"code":"unavailable","msg":"store down","meta":{}}'
                return Response(body, 503, {"Retry-After": "0"}, media_type="application/json")
            paging = b'{"after":"","before":"","limit":100,"next":"","prev":"",'
            paging += b'"sort":"-started_at"}'
            body = b'{"call_logs":[],"paging":' + paging + b"}"
            return Response(body, 200, media_type="application/json")

        app = Starlette(routes=[Route("/v1/{path:path}", endpoint, methods=["POST"])])
        self.port = free_port()
        self._server = uvicorn.Server(uvicorn.Config(app, port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> Outage:
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *_: Any) -> None:
        self._server.should_exit = True
        self._thread.join(10)


def test_retries_unavailable_then_succeeds() -> None:
    with (
        Outage(failures=2) as outage,
        Client(f"http://127.0.0.1:{outage.port}", "k", backoff=0.01) as client,
    ):
        assert list(client.list_call_logs()) == []
    assert len(outage.seen) == 3


def test_gives_up_after_its_retries() -> None:
    with (
        Outage(failures=10) as outage,
        Client(f"http://127.0.0.1:{outage.port}", "k", retries=2, backoff=0.01) as client,
    ):
        with pytest.raises(CallHistoryError) as caught:
            list(client.list_call_logs())
    assert caught.value.code == "unavailable"
    assert len(outage.seen) == 3


def test_unreachable_server_is_unavailable() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", "k", retries=1, backoff=0.01) as client:
        with pytest.raises(CallHistoryError) as caught:
            list(client.list_call_logs())
    assert caught.value.code == "unavailable"


def test_documented_csv_example_runs(server: ServerThread, data: Dataset, tmp_path: Any) -> None:
    import csv
    import runpy

    example = runpy.run_path("docs/examples/sync_to_csv.py")
    out = tmp_path / "calls.csv"
    assert (
        example["main"](server.base_url, data.tenant.read, "2025-03-01", "2025-03-10", str(out))
        == 0
    )
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == expected(
        data, {"date_from": "2025-03-01", "date_to": "2025-03-10"}
    )


def test_a_proxys_bad_gateway_is_retried_within_the_deadline() -> None:
    with (
        Outage(failures=2, proxy=True) as outage,
        Client(f"http://127.0.0.1:{outage.port}", "k", backoff=0.01) as client,
    ):
        assert list(client.list_call_logs()) == []
    assert len(outage.seen) == 3
    with (
        Outage(failures=10_000, proxy=True) as outage,
        Client(
            f"http://127.0.0.1:{outage.port}", "k", retries=10_000, backoff=0.02, deadline=0.5
        ) as client,
        pytest.raises(UnavailableError) as caught,
    ):
        list(client.list_call_logs())
    assert caught.value.status == 502 and isinstance(caught.value, CallHistoryError)
    assert 2 <= len(outage.seen) < 10_000  # the deadline ended it, not the count


def test_both_clients_have_the_same_methods(server: ServerThread, database_url: str) -> None:
    def public(cls: type) -> set[str]:
        return {name for name in dir(cls) if not name.startswith("_")}

    assert public(Client) == public(AsyncClient)
    tenant = new_tenant(database_url)
    api = Api(server.base_url)
    api.ok("CreateHotline", {"hotline": "02873009999"}, tenant.admin)

    async def run() -> tuple[list[str], int]:
        async with AsyncClient(server.base_url, tenant.read) as client:
            hotlines = [h.hotline async for h in client.hotlines()]
            pages = [page async for page in client.call_log_pages(limit=5)]
            assert [u async for u in client.users()] == []
            assert [d async for d in client.departments()] == []
            assert [e async for e in client.extensions()] == []
            return hotlines, len(pages)

    assert asyncio.run(run()) == (["02873009999"], 1)
    api.close()


def test_errors_have_a_class_per_code(server: ServerThread, data: Dataset) -> None:
    with Client(server.base_url, data.tenant.read) as client:
        with pytest.raises(InvalidArgumentError):
            list(client.list_call_logs(direction="sideways"))
        with pytest.raises(PermissionDeniedError):
            client.ingest_call_logs([{"source_id": "x", "started_at": "2025-01-01T00:00:00Z"}])


CLIENT_ONLY = """
import importlib.abc, sys

SERVER = ("starlette", "uvicorn", "sqlalchemy", "alembic", "aiosqlite", "asyncpg", "typer", "rich")


class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in SERVER:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
from callhistory.client import Client

with Client(sys.argv[1], sys.argv[2]) as client:
    print(len(list(client.list_call_logs(limit=50))))
"""


def test_the_client_needs_only_httpx_and_msgspec(server: ServerThread, data: Dataset) -> None:
    import subprocess
    import sys
    import tomllib
    from pathlib import Path

    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    base = {re.split(r"[\[=<>~ ]", dep)[0] for dep in project["dependencies"]}
    assert base == {"httpx", "msgspec"}
    assert "sqlalchemy[asyncio]==2.1.9" in project["optional-dependencies"]["server"]
    result = subprocess.run(
        [sys.executable, "-c", CLIENT_ONLY, server.base_url, data.tenant.read],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(expected(data, {}))
