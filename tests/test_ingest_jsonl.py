"""`callhistory import jsonl`: the IngestCallLogs item shape, one per line."""

from __future__ import annotations

from pathlib import Path

import msgspec
from typer.testing import CliRunner

from callhistory.cli import app
from tests.harness import Api, Tenant


def item(source_id: str, **fields: object) -> bytes:
    body = {
        "source_id": source_id,
        "started_at": "2025-05-01T09:00:00+07:00",
        "caller": "0912345678",
        **fields,
    }
    return msgspec.json.encode(body)


def test_jsonl_import_reports_bad_lines_and_keeps_the_rest(
    api: Api, tenant: Tenant, database_url: str, tmp_path: Path
) -> None:
    lines = [
        item("j1", note="j1"),
        b"{not json",
        item("j2", direction="out", note="j2"),
        b"",
        item("j3", started_at="1999-01-01T00:00:00Z"),  # refused by the service, not the parser
        item("j4", extension_id="12345"),  # not an extension of this tenant
        item("j5", duration=30, call_state="answered", note="j5"),
        item("j1", note="second version of j1"),
    ]
    path = tmp_path / "calls.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = CliRunner().invoke(
        app, ["import", "jsonl", str(path), "--tenant", tenant.id, "--database", database_url]
    )
    assert result.exit_code == 1
    assert "calls.jsonl:2: rejected: JSON is malformed" in result.output
    assert "calls.jsonl:5: rejected: call_logs[" in result.output and "started_at" in result.output
    assert "calls.jsonl:6: rejected:" in result.output and "extension_id" in result.output
    assert "imported 3, updated 0, unchanged 0, rejected 3" in result.output
    rows = {r["note"]: r for p in api.walk(tenant.read, {}) for r in p}
    assert set(rows) == {"second version of j1", "j2", "j5"}
    assert (rows["j5"]["duration"], rows["j5"]["call_state"]) == (30, "answered")
    again = CliRunner().invoke(
        app,
        ["import", "jsonl", str(path), "--tenant", tenant.id, "--database", database_url, "--json"],
    )
    assert msgspec.json.decode(again.stdout.strip().splitlines()[-1]) == {
        "imported": 0,
        "updated": 0,
        "unchanged": 3,
        "rejected": 3,
    }


def test_a_line_that_is_not_utf8_is_rejected_by_number(
    api: Api, tenant: Tenant, database_url: str, tmp_path: Path
) -> None:
    lines = [
        item("u1", note="u1"),
        item("u2", note="caf\xe9").replace("caf\u00e9".encode(), b"caf\xe9"),  # Latin-1 é
        item("u3", note="u3"),
    ]
    path = tmp_path / "calls.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = CliRunner().invoke(
        app, ["import", "jsonl", str(path), "--tenant", tenant.id, "--database", database_url]
    )
    assert result.exit_code == 1, result.output
    assert "calls.jsonl:2: rejected: the line is not valid UTF-8" in result.output
    assert "imported 2, updated 0, unchanged 0, rejected 1" in result.output
    assert "Traceback" not in result.output
    assert sorted(r["note"] for p in api.walk(tenant.read, {}) for r in p) == ["u1", "u3"]


def test_refused_calls_in_a_large_import_are_reported_by_line_and_the_rest_stored(
    api: Api, tenant: Tenant, database_url: str, tmp_path: Path
) -> None:
    """An import larger than one batch (5,000 calls on SQLite, 10,000 on PostgreSQL), of calls
    over two years (24 monthly partitions on PostgreSQL and Citus), with calls the service
    refuses here and there: each refused one is reported by its line, every other one stored
    once."""
    total, refused = 10_200, {3, 1_700, 9_999}
    lines = [
        item(f"big-{n}", started_at="1999-01-01T00:00:00Z")
        if n in refused
        else item(
            f"big-{n}",
            started_at=f"{2024 + n // 12 % 2}-{1 + n % 12:02d}-09T09:00:00Z",
            note=str(n),
        )
        for n in range(1, total + 1)
    ]
    path = tmp_path / "calls.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = CliRunner().invoke(
        app, ["import", "jsonl", str(path), "--tenant", tenant.id, "--database", database_url]
    )
    assert result.exit_code == 1, result.output
    for n in refused:
        assert f"calls.jsonl:{n}: rejected: call_logs[" in result.output
    assert f"imported {total - 3}, updated 0, unchanged 0, rejected 3" in result.output
    stored = [r["note"] for p in api.walk(tenant.read, {"paging": {"limit": 1000}}) for r in p]
    assert sorted(stored) == sorted(str(n) for n in range(1, total + 1) if n not in refused)
