"""Several `callhistory serve` processes on one database: pages stay consistent across them
(cursors minted by one are honoured by another) while a third process takes ingest."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.harness import Api, new_tenant, start_serve


@contextmanager
def serve(database_url: str) -> Iterator[Api]:
    process, base = start_serve(database_url)
    api = Api(base)
    try:
        yield api
    finally:
        api.close()
        process.terminate()
        process.wait(timeout=30)


def calls(prefix: str, n: int) -> list[dict[str, Any]]:
    start = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)
    return [
        {
            "source_id": f"{prefix}-{i}",
            "started_at": (start + dt.timedelta(seconds=(i * 7919) % 900_000)).isoformat(),
        }
        for i in range(n)
    ]


def test_two_servers_page_consistently_while_a_third_ingests(
    database_url: str, server: object
) -> None:
    tenant = new_tenant(database_url)
    with serve(database_url) as a, serve(database_url) as b, serve(database_url) as writer:
        original = {ack["id"] for ack in writer.ingest(tenant.ingest, calls("old", 400))}
        stop = threading.Event()
        written: list[int] = []

        def ingest() -> None:
            for round_ in range(200):
                if stop.is_set():
                    return
                writer.ingest(tenant.ingest, calls(f"new{round_}", 20))
                written.append(round_)

        thread = threading.Thread(target=ingest)
        thread.start()
        try:
            seen: list[str] = []
            paging: dict[str, Any] = {"limit": 25}
            readers = [a, b]
            for turn in range(1000):
                answer = readers[turn % 2].ok("ListCallLogs", {"paging": paging}, tenant.read)
                seen += [row["id"] for row in answer["call_logs"]]
                if not answer["paging"]["next"]:
                    break
                paging = {"limit": 25, "after": answer["paging"]["next"]}
        finally:
            stop.set()
            thread.join(timeout=60)
        assert written, "the writer never got a batch in"
        assert len(seen) == len(set(seen))
        assert original <= set(seen)


def test_the_same_cdrs_posted_to_two_servers_at_once_are_stored_once(
    database_url: str, server: object
) -> None:
    """A PBX that re-sends a batch to a second API process while the first is still storing it
    (a retry after a timeout, two PBX nodes): each call is stored once, and both answers name
    the same call. On PostgreSQL and Citus the per-tenant ingest lock decides this, not a
    unique index."""
    tenant = new_tenant(database_url)
    with serve(database_url) as a, serve(database_url) as b:
        for round_ in range(10):
            batch = calls(f"twice{round_}", 100)
            answers: dict[str, list[dict[str, Any]]] = {}

            def post(name: str, api: Api, items: list[dict[str, Any]]) -> None:
                answers[name] = api.ingest(tenant.ingest, items)

            threads = [
                threading.Thread(target=post, args=("a", a, batch)),
                threading.Thread(target=post, args=("b", b, batch[::-1])),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            ids_a = {ack["source_id"]: ack["id"] for ack in answers["a"]}
            ids_b = {ack["source_id"]: ack["id"] for ack in answers["b"]}
            assert ids_a == ids_b and len(ids_a) == 100, round_
        stored = [
            row["id"] for page in a.walk(tenant.read, {"paging": {"limit": 1000}}) for row in page
        ]
        assert len(stored) == 1000
