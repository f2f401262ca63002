"""Exports as a spreadsheet user and a data warehouse get them: every call of the filter, in
ListCallLogs' order, streamed; CSV with documented columns and readable times."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from callhistory.client import AsyncClient, Client, InvalidArgumentError
from tests.harness import Api, Tenant, cli, new_tenant
from tests.test_changes import listed
from tests.test_ingest import call

COLUMNS = [
    "id",
    "started_at",
    "ended_at",
    "direction",
    "call_state",
    "call_status",
    "caller",
    "callee",
    "duration",
    "answered_by",
    "extension_id",
    "user_id",
    "hotline_id",
    "contact_id",
    "external_id",
    "external_session_id",
    "recording_urls",
    "note",
    "created_at",
    "updated_at",
]


def _calls(count: int) -> list[dict[str, Any]]:
    return [
        call(
            f"x{i}",
            started_at=f"2025-05-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00+07:00",
            ended_at=None,
            direction="in" if i % 3 else "out",
            note=f"Nguyễn Văn {i}",
            recording_urls=[f"https://rec.example.vn/{i}.mp3"] if i % 2 else [],
            call_targets=[
                {
                    "target_number": "101",
                    "status": "answered",
                    "answered_time": "2025-05-01T09:00:05+07:00",
                }
            ]
            if i % 5 == 0
            else [],
        )
        for i in range(count)
    ]


def _export(api: Api, key: str, kind: str, **params: str) -> tuple[int, dict[str, str], bytes]:
    with api.http.stream(
        "GET", f"/v1/export/call_logs.{kind}", params=params,
        headers={"Authorization": f"Bearer {key}"},
    ) as answer:  # fmt: skip
        body = b"".join(answer.iter_bytes())
        return answer.status_code, dict(answer.headers), body


def test_jsonl_is_every_call_in_list_order(api: Api, tenant: Tenant) -> None:
    api.ingest(tenant.ingest, _calls(2300))  # more than two chunks
    status, headers, body = _export(api, tenant.read, "jsonl")
    assert status == 200
    assert headers["content-type"].startswith("application/x-ndjson")
    assert "content-length" not in headers  # streamed, not built whole first
    lines = [json.loads(line) for line in body.decode().splitlines()]
    pages = api.walk(tenant.read, {"paging": {"limit": 1000}})
    assert lines == [row for page in pages for row in page]


def test_csv_columns_times_and_bom(api: Api, tenant: Tenant) -> None:
    items = _calls(30)
    stored = api.ingest(tenant.ingest, items)
    given = {ack["id"]: item["started_at"] for ack, item in zip(stored, items, strict=True)}
    status, headers, body = _export(api, tenant.read, "csv", bom="true")
    assert status == 200 and headers["content-type"].startswith("text/csv")
    assert body.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert list(rows[0]) == COLUMNS
    listed_rows = listed(api, tenant)
    assert [r["id"] for r in rows] == list(listed_rows)  # newest first, as ListCallLogs
    first = listed_rows[rows[0]["id"]]
    # In the tenant's zone (Asia/Ho_Chi_Minh, the +07:00 the PBX gave), as spreadsheets read it.
    for row in rows:
        assert row["started_at"] == given[row["id"]][:19].replace("T", " ")
    by_id = {r["id"]: r for r in rows}
    for id_, row in listed_rows.items():
        exported = by_id[id_]
        assert exported["note"] == row["note"] and exported["note"].startswith("Nguyễn")
        assert exported["recording_urls"] == " ".join(row["recording_urls"])
        answered = [t["target_number"] for t in row["call_targets"] if t["status"] == "answered"]
        assert exported["answered_by"] == (answered[0] if answered else "")
        assert exported["duration"] == str(row["duration"])
    _, _, plain = _export(api, tenant.read, "csv", times="utc")
    assert not plain.startswith("\ufeff".encode())
    utc_rows = list(csv.DictReader(io.StringIO(plain.decode())))
    assert utc_rows[0]["started_at"] == first["started_at"]


def test_filters_from_the_query_or_a_body(api: Api, tenant: Tenant) -> None:
    api.ingest(tenant.ingest, _calls(60))
    inbound = [r["id"] for r in listed(api, tenant).values() if r["direction"] == "in"]
    _, _, body = _export(api, tenant.read, "jsonl", direction="in")
    assert [json.loads(line)["id"] for line in body.splitlines()] == inbound
    answer = api.http.post(
        "/v1/export/call_logs.jsonl",
        json={"filter": {"direction": "in"}},
        headers={"Authorization": f"Bearer {tenant.read}"},
    )
    assert [json.loads(line)["id"] for line in answer.content.splitlines()] == inbound


def test_bad_requests_are_errors_before_any_row(api: Api, tenant: Tenant) -> None:
    status, _, body = _export(api, tenant.read, "csv", date_from="yesterday")
    assert status == 400 and json.loads(body)["meta"]["field"] == "filter.date_from"
    status, _, body = _export(api, tenant.read, "csv", bom="maybe")
    assert status == 400 and json.loads(body)["meta"]["field"] == "bom"
    status, _, body = _export(api, tenant.read, "csv", colour="red")
    assert status == 400 and json.loads(body)["meta"]["field"] == "colour"
    status, _, body = _export(api, tenant.read, "xlsx")
    assert status == 404 and json.loads(body)["code"] == "bad_route"
    status, _, body = _export(api, "ch_wrong", "csv")
    assert status == 401


def test_the_cli_writes_what_the_api_serves(
    api: Api, tenant: Tenant, database_url: str, tmp_path: Path
) -> None:
    api.ingest(tenant.ingest, _calls(40))
    out = tmp_path / "calls.csv"
    cli("export", out.as_posix(), "--tenant", tenant.id, "--filter", '{"direction": "out"}',
        "--database", database_url)  # fmt: skip
    _, _, served = _export(api, tenant.read, "csv", direction="out")
    assert out.read_bytes() == served
    assert len(served.decode().splitlines()) == 1 + 40 // 3 + 1


def test_the_client_streams_an_export_to_a_file(api: Api, tenant: Tenant, tmp_path: Path) -> None:
    api.ingest(tenant.ingest, _calls(25))
    base = str(api.http.base_url)
    with Client(base, tenant.read) as client:
        assert client.export(tmp_path / "in.jsonl", format="jsonl", direction="in") == 16
        with pytest.raises(InvalidArgumentError) as error:
            client.export(tmp_path / "bad.csv", date_from="yesterday")
        assert error.value.meta["field"] == "filter.date_from"
    lines = (tmp_path / "in.jsonl").read_text().splitlines()
    inbound = [r["id"] for r in listed(api, tenant).values() if r["direction"] == "in"]
    assert [json.loads(line)["id"] for line in lines] == inbound

    async def go() -> int:
        async with AsyncClient(base, tenant.read) as client:
            return await client.export(tmp_path / "all.csv", bom=True)

    assert asyncio.run(go()) == 25
    assert (tmp_path / "all.csv").read_bytes().startswith("\ufeff".encode())


def test_csv_times_in_a_zone_offset_by_half_an_hour(api: Api, database_url: str) -> None:
    tenant = new_tenant(database_url, timezone="Asia/Kolkata")
    items = [
        call(f"k{i}", started_at=f"2025-03-{10 + i:02d}T23:{10 + i:02d}:0{i}+05:30", ended_at=None)
        for i in range(5)
    ]
    stored = api.ingest(tenant.ingest, items)
    given = {ack["id"]: item["started_at"] for ack, item in zip(stored, items, strict=True)}
    _, _, body = _export(api, tenant.read, "csv")
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert {r["id"]: r["started_at"] for r in rows} == {
        id_: text[:19].replace("T", " ") for id_, text in given.items()
    }
