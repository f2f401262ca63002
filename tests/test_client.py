"""The Python client against a real server: paging, typed results and errors, retries."""

from __future__ import annotations

import asyncio
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
from callhistory.client import AsyncClient, CallHistoryError, Client
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

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.seen: list[float] = []

        async def endpoint(request: Request) -> Response:
            self.seen.append(time.monotonic())
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
