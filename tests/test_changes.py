"""GetCallLog, the change feed and erasure, as an integrator's sync sees them: a copy kept
from the feed alone must equal ListCallLogs, under concurrent writers, erasures and retention."""

from __future__ import annotations

import base64
import json
import random
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from callhistory.cli import app as cli_app
from tests.harness import Api, ServerThread, Tenant, cli, new_tenant, start_serve
from tests.test_ingest import call
from tests.test_ingest_freeswitch import missed_call, post

ROOT = Path(__file__).resolve().parent.parent


def listed(api: Api, tenant: Tenant) -> dict[str, dict[str, Any]]:
    """The tenant's calls as ListCallLogs shows them, by id."""
    pages = api.walk(tenant.read, {"paging": {"limit": 1000}})
    return {row["id"]: row for page in pages for row in page}


class Copy:
    """An integrator's copy of the tenant's calls, kept from the feed alone."""

    def __init__(self, api: Api, key: str) -> None:
        self.api, self.key = api, key
        self.calls: dict[str, dict[str, Any]] = {}
        self.token = ""
        self.seen: list[dict[str, Any]] = []

    def poll(self, limit: int = 100) -> int:
        answer = self.api.ok("ListCallLogChanges", {"since": self.token, "limit": limit}, self.key)
        assert answer["next"], "a token comes back on every page, empty or not"
        self.token = answer["next"]
        for change in answer["changes"]:
            self.seen.append(change)
            if change["type"] == "upsert":
                self.calls[change["call_log"]["id"]] = change["call_log"]
            elif change["type"] == "delete":
                self.calls.pop(change["id"], None)
            else:
                cutoff = change["started_before"]
                self.calls = {k: v for k, v in self.calls.items() if v["started_at"] >= cutoff}
        return len(answer["changes"])

    def catch_up(self) -> None:
        while self.poll(limit=1000):
            pass


def test_get_call_log_by_each_name(api: Api, tenant: Tenant) -> None:
    stored = api.ingest(
        tenant.ingest, [call("g1", external_id="crm-1", external_session_id="sess-1"), call("g2")]
    )
    [row] = [r for r in listed(api, tenant).values() if r["id"] == stored[0]["id"]]
    for name, value in (
        ("id", stored[0]["id"]),
        ("source_id", "g1"),
        ("external_id", "crm-1"),
        ("external_session_id", "sess-1"),
    ):
        assert api.ok("GetCallLog", {name: value}, tenant.read) == row
    assert api.ok("GetCallLog", {"id": int(stored[0]["id"])}, tenant.read) == row


def test_get_call_log_refuses_what_is_not_one_name(
    api: Api, tenant: Tenant, database_url: str
) -> None:
    other = new_tenant(database_url)
    [theirs] = api.ingest(other.ingest, [call("theirs")])
    missing = api.error("GetCallLog", {"id": theirs["id"]}, tenant.read, 404, "not_found")
    assert missing["meta"]["field"] == "id"
    api.error("GetCallLog", {"source_id": "theirs"}, tenant.read, 404, "not_found")
    none = api.error("GetCallLog", {}, tenant.read, 400, "invalid_argument")
    assert none["meta"]["field"] == "id"
    two = api.error(
        "GetCallLog", {"id": theirs["id"], "source_id": "x"}, tenant.read, 400, "invalid_argument"
    )
    assert two["meta"]["field"] == "source_id"
    bad = api.error("GetCallLog", {"id": "12ab"}, tenant.read, 400, "invalid_argument")
    assert bad["meta"]["field"] == "id"


def test_the_feed_gives_each_call_once_as_it_is_now(api: Api, tenant: Tenant) -> None:
    reader = Copy(api, tenant.read)
    assert reader.poll() == 0  # nothing yet, but a token to poll with
    first = api.ingest(tenant.ingest, [call(f"f{i}") for i in range(5)])[0]["id"]
    for note in ("one", "two", "three", "four", "five"):
        api.ingest(tenant.ingest, [call("f0", note=note)])
    reader.catch_up()
    upserts = [c for c in reader.seen if c["type"] == "upsert"]
    assert len(upserts) == 5  # f0 changed five times between two polls: once, as it is now
    assert reader.calls == listed(api, tenant)
    assert [c["call_log"]["note"] for c in upserts if c["call_log"]["id"] == first] == ["five"]
    # The same call sent again changes nothing, so nothing new in the feed.
    api.ingest(tenant.ingest, [call("f1")])
    assert reader.poll() == 0


def test_a_token_is_bound_to_its_tenant_and_cannot_be_altered(
    api: Api, tenant: Tenant, database_url: str
) -> None:
    api.ingest(tenant.ingest, [call("t1")])
    token = api.ok("ListCallLogChanges", {}, tenant.read)["next"]
    other = new_tenant(database_url)
    foreign = api.error("ListCallLogChanges", {"since": token}, other.read, 400, "invalid_argument")
    assert foreign["meta"]["field"] == "since"
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[3] ^= 1
    altered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    api.error("ListCallLogChanges", {"since": altered}, tenant.read, 400, "invalid_argument")
    api.error("ListCallLogChanges", {"since": "nonsense"}, tenant.read, 400, "invalid_argument")
    limit = api.error("ListCallLogChanges", {"limit": 0}, tenant.read, 400, "invalid_argument")
    assert limit["meta"]["field"] == "limit"


def test_a_token_survives_a_restart(database_url: str) -> None:
    tenant = new_tenant(database_url)
    process, base = start_serve(database_url)
    try:
        api = Api(base)
        api.ingest(tenant.ingest, [call("r1")])
        token = api.ok("ListCallLogChanges", {}, tenant.read)["next"]
        api.close()
    finally:
        process.terminate()
        process.wait(30)
    process, base = start_serve(database_url)
    try:
        api = Api(base)
        [second] = api.ingest(tenant.ingest, [call("r2")])
        changes = api.ok("ListCallLogChanges", {"since": token}, tenant.read)["changes"]
        assert [c["call_log"]["id"] for c in changes] == [second["id"]]
        api.close()
    finally:
        process.terminate()
        process.wait(30)


def test_replaying_the_feed_under_concurrent_writers_gives_the_list(database_url: str) -> None:
    """Two worker processes, four PBXs posting batches that create and update overlapping calls,
    an admin erasing some customers' calls, and a reader polling all along: the reader's copy,
    kept from the feed alone, ends equal to ListCallLogs. A change number taken before a commit
    that lands after a later one would make the reader pass it over, and the copies differ."""
    tenant = new_tenant(database_url)
    process, base = start_serve(
        database_url, workers=2, env={"CALLHISTORY_RATE_LIMIT_PER_SECOND": "0"}
    )
    errors: list[str] = []

    def customer(i: int) -> str:
        return f"0900{i:06d}"

    def pbx(n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(base_url=base, timeout=60) as http:
            for batch in range(25):
                picks = [rng.randrange(300) for _ in range(20)]
                note = f"pbx{n} batch{batch}"
                items = [
                    call(f"c{i}", caller=customer(i), note=note, duration=rng.randrange(600))
                    for i in picks
                ]
                answer = http.post(
                    "/v1/pbx.Etelecom/IngestCallLogs",
                    json={"call_logs": items},
                    headers={"Authorization": f"Bearer {tenant.ingest}"},
                )
                if answer.status_code != 200:
                    errors.append(answer.text)

    def eraser() -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            for i in range(0, 300, 23):
                answer = http.post(
                    "/v1/shop.Etelecom/DeleteCallLogs",
                    json={"number": customer(i)},
                    headers={"Authorization": f"Bearer {tenant.admin}"},
                )
                if answer.status_code != 200:
                    errors.append(answer.text)

    api = Api(base)
    reader = Copy(api, tenant.read)
    threads = [threading.Thread(target=pbx, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=eraser))
    try:
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            reader.poll(limit=50)
        for thread in threads:
            thread.join()
        assert errors == []
        reader.catch_up()
        final = listed(api, tenant)
        assert reader.calls == final
        assert len(final) > 200
        assert any(change["type"] == "delete" for change in reader.seen)
    finally:
        api.close()
        process.terminate()
        process.wait(30)


def test_erasure_by_number_in_any_form(api: Api, tenant: Tenant, database_url: str) -> None:
    reader = Copy(api, tenant.read)
    kept = api.ingest(tenant.ingest, [call("keep", caller="0987654321")])
    gone = api.ingest(
        tenant.ingest,
        [
            call("e1", caller="+84 912 345 678"),
            call("e2", caller="0912.345.678", direction="out", callee="0912345678"),
            call("e3", caller="101", callee="84912345678", direction="out"),
        ],
    )
    reader.catch_up()
    counted = api.ok("DeleteCallLogs", {"number": "0912345678", "dry_run": True}, tenant.admin)
    assert counted == {"deleted": 3, "dry_run": True}
    assert len(listed(api, tenant)) == 4
    assert api.ok("DeleteCallLogs", {"number": "+84912345678"}, tenant.admin)["deleted"] == 3
    assert list(listed(api, tenant)) == [kept[0]["id"]]
    for item in gone:
        api.error("GetCallLog", {"id": item["id"]}, tenant.read, 404, "not_found")
    reader.catch_up()
    deletions = [c for c in reader.seen if c["type"] == "delete"]
    assert sorted(c["source_id"] for c in deletions) == ["e1", "e2", "e3"]
    assert all(c["deleted_at"] for c in deletions)
    assert reader.calls == listed(api, tenant)
    # The PBX delivers one of them again: acknowledged, not stored.
    again = api.ingest(tenant.ingest, [call("e1", caller="+84 912 345 678"), call("new")])
    assert again[0] == {"id": gone[0]["id"], "source_id": "e1", "created": False}
    assert again[1]["created"] is True
    assert set(listed(api, tenant)) == {kept[0]["id"], again[1]["id"]}


def test_erasure_needs_an_admin_key_and_one_selector(api: Api, tenant: Tenant) -> None:
    api.error("DeleteCallLogs", {"number": "0912345678"}, tenant.read, 403, "permission_denied")
    both = api.error(
        "DeleteCallLogs", {"number": "0912345678", "ids": ["1"]}, tenant.admin, 400,
        "invalid_argument",
    )  # fmt: skip
    assert both["meta"]["field"] == "number"
    api.error("DeleteCallLogs", {}, tenant.admin, 400, "invalid_argument")
    for number in ("--", "abc", "+"):
        no_digits = api.error(
            "DeleteCallLogs", {"number": number}, tenant.admin, 400, "invalid_argument"
        )
        assert no_digits["meta"]["field"] == "number"
    bad = api.error("DeleteCallLogs", {"ids": ["1", "x"]}, tenant.admin, 400, "invalid_argument")
    assert bad["meta"]["field"] == "ids[1]"


def test_erased_freeswitch_cdrs_are_not_stored_again(api: Api, tenant: Tenant) -> None:
    doc = missed_call(caller="0977000111")
    first = post(api, tenant.ingest, doc)
    assert first.status_code == 200, first.text
    by_id = api.ok("DeleteCallLogs", {"ids": [first.json()["id"]]}, tenant.admin)
    assert by_id["deleted"] == 1
    again = post(api, tenant.ingest, doc)
    assert again.status_code == 200, again.text
    assert again.json()["created"] is False
    assert listed(api, tenant) == {}


def test_retention_is_one_purge_in_the_feed(fresh_database_url: str) -> None:
    url = fresh_database_url
    cli("migrate", "--database", url)
    tenant = new_tenant(url)
    process, base = start_serve(url)
    try:
        api = Api(base)
        reader = Copy(api, tenant.read)
        old = call("old", started_at="2020-01-01T00:00:00Z", ended_at="2020-01-01T00:01:00Z")
        recent = api.ingest(tenant.ingest, [old, call("recent")])[1]["id"]
        reader.catch_up()
        cli("retention", "apply", "--older-than", "1000d", "--database", url)
        reader.catch_up()
        purges = [c for c in reader.seen if c["type"] == "purge"]
        assert len(purges) == 1
        assert reader.calls == listed(api, tenant)
        assert set(reader.calls) == {recent}
        assert reader.poll() == 0  # told once
        api.close()
    finally:
        process.terminate()
        process.wait(30)


def test_the_documented_sync_loop_keeps_a_copy(
    api: Api, tenant: Tenant, server: ServerThread, tmp_path: Path
) -> None:
    """docs/examples/sync_to_sqlite.py, run as written while a PBX posts calls and updates."""
    example = [sys.executable, str(ROOT / "docs" / "examples" / "sync_to_sqlite.py")]
    copy = tmp_path / "copy.db"

    def sync() -> None:
        done = subprocess.run(
            [*example, server.base_url, tenant.read, str(copy), "--once"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    def pbx() -> None:
        for batch in range(10):
            api_own = Api(server.base_url)
            items = [call(f"s{(batch * 7 + i) % 40}", note=f"batch {batch}") for i in range(15)]
            api_own.ingest(tenant.ingest, items)
            api_own.close()

    writer = threading.Thread(target=pbx)
    writer.start()
    while writer.is_alive():
        sync()
    writer.join()
    api.ok("DeleteCallLogs", {"ids": [next(iter(listed(api, tenant)))]}, tenant.admin)
    sync()
    with sqlite3.connect(copy) as db:
        kept = {row[0]: json.loads(row[1]) for row in db.execute("SELECT id, call_log FROM calls")}
    assert kept == listed(api, tenant)
    assert len(kept) == 39


def test_erase_from_the_command_line_counts_first(database_url: str, api: Api) -> None:
    tenant = new_tenant(database_url)
    api.ingest(tenant.ingest, [call("x1", caller="0933 000 111"), call("x2", caller="0933000222")])
    args = ["erase", "--tenant", tenant.id, "--number", "+84933000111", "--database", database_url]
    assert json.loads(cli(*args, "--dry-run", "--json")) == {"deleted": 1, "dry_run": True}
    assert len(listed(api, tenant)) == 2
    assert "erased 1 calls" in cli(*args)
    assert len(listed(api, tenant)) == 1
    refused = CliRunner().invoke(
        cli_app, ["erase", "--tenant", tenant.id, "--database", database_url]
    )
    assert refused.exit_code == 2 and "exactly one of --number and --id" in refused.output
