"""The CLI as an operator uses it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from callhistory.cli import app
from tests.harness import Api, cli, cli_json


def test_tenant_and_key_lifecycle(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ops.db"
    cli("migrate", "--database", url)
    tenant = cli_json(
        "tenant",
        "create",
        "--name",
        "Shop A",
        "--timezone",
        "Asia/Bangkok",
        "--domain",
        "A.pbx.vn",
        "--database",
        url,
    )
    assert tenant["name"] == "Shop A" and tenant["timezone"] == "Asia/Bangkok"
    assert tenant["domain"] == "a.pbx.vn" and tenant["id"].isdigit()
    key = cli_json(
        "key", "create", "--tenant", tenant["id"], "--scope", "ingest", "--database", url
    )
    assert set(key) == {"id", "key", "scope", "tenant_id", "expires_at"}
    assert key["expires_at"] is None
    assert key["scope"] == "ingest" and key["tenant_id"] == tenant["id"]
    revoked = cli_json("key", "revoke", key["id"], "--database", url)
    assert revoked["revoked"] is True


def test_errors_exit_nonzero_with_a_message(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ops.db"
    cli("migrate", "--database", url)
    runner = CliRunner()
    result = runner.invoke(
        app, ["tenant", "create", "--name", "X", "--timezone", "Mars/Olympus", "--database", url]
    )
    assert result.exit_code == 1 and "time zone" in result.output
    result = runner.invoke(app, ["key", "create", "--tenant", "123", "--database", url])
    assert result.exit_code == 1 and "does not exist" in result.output
    result = runner.invoke(app, ["key", "create", "--tenant", "abc", "--database", url])
    assert result.exit_code == 2
    cli_json("tenant", "create", "--name", "A", "--domain", "same.vn", "--database", url)
    result = runner.invoke(
        app, ["tenant", "create", "--name", "B", "--domain", "same.vn", "--database", url]
    )
    assert result.exit_code == 1 and "already exists" in result.output
    # Shards are Citus's: on SQLite (or plain PostgreSQL) one line says so.
    tenant = cli_json("tenant", "create", "--name", "C", "--database", url)
    for command in ("where", "isolate"):
        result = runner.invoke(app, ["tenant", command, tenant["id"], "--database", url])
        assert result.exit_code == 2 and "not distributed" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1


def test_database_url_from_environment(tmp_path: Path, monkeypatch: object) -> None:
    url = f"sqlite:///{tmp_path}/env.db"
    assert (
        CliRunner().invoke(app, ["migrate"], env={"CALLHISTORY_DATABASE_URL": url}).exit_code == 0
    )
    result = CliRunner().invoke(
        app, ["tenant", "create", "--name", "E", "--json"], env={"CALLHISTORY_DATABASE_URL": url}
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "env.db").exists()


def test_demo_makes_a_usable_tenant(database_url: str, api: Api, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    result = cli_json(
        "demo", "--calls", "300", "--save-key", str(key_file), "--database", database_url
    )
    assert result["calls"] == 300
    assert {k["scope"] for k in result["keys"]} == {"read", "ingest", "admin"}
    read_key = key_file.read_text().strip()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    pages = api.walk(read_key, {"paging": {"limit": 1000}})
    calls = [c for p in pages for c in p]
    assert len(calls) == 300
    assert {c["direction"] for c in calls} >= {"in", "out", "ext"}
    assert {c["call_state"] for c in calls} == {"answered", "not_answered"}
    assert sum(1 for c in calls if c["hotline_id"]) > 100
    extensions = api.ok("GetExtensions", {}, read_key)["extensions"]
    assert len(extensions) == 12


def test_help_lists_every_command() -> None:
    out = cli("--help")
    for command in ("serve", "migrate", "tenant", "key", "demo"):
        assert command in out


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed command as an operator runs it (its own process and environment)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CALLHISTORY_")}
    return subprocess.run(
        [sys.executable, "-m", "callhistory", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "env", "exit_code", "names"),
    [
        (["--database", "notaurl"], {}, 2, "CALLHISTORY_DATABASE_URL"),
        (["--database", "sqlite:////no/such/folder/x.db"], {}, 2, "/no/such/folder"),
        ([], {"CALLHISTORY_DATABASE_URL": "sqlite:////no/such/x.db"}, 2, "/no/such"),
        (["--database", "sqlite:///{tmp}/x.db"], {"CALLHISTORY_PORT": "abc"}, 2,
         "CALLHISTORY_PORT"),
        (["--database", "sqlite:///{tmp}/x.db"], {"CALLHISTORY_LOG_LEVEL": "verbose"}, 2,
         "CALLHISTORY_LOG_LEVEL"),
        (["--database", "postgresql://nobody@127.0.0.1:1/db"], {}, 1, "cannot be reached"),
        (["--database", "mysql://root@127.0.0.1/calls"], {}, 2, "CALLHISTORY_DATABASE_URL"),
        ([], {"CALLHISTORY_DATABASE_URL": "foo://bar"}, 2, "CALLHISTORY_DATABASE_URL"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", [["tenant", "create", "--name", "x"], ["serve"]])
def test_expected_failures_are_one_line(
    tmp_path: Path,
    command: list[str],
    args: list[str],
    env: dict[str, str],
    exit_code: int,
    names: str,
) -> None:
    args = [*command, *(a.replace("{tmp}", str(tmp_path)) for a in args)]
    result = run_cli(*args, env=env)
    assert result.returncode == exit_code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error ("), result.stderr
    assert names in lines[0]
    if command == ["serve"]:  # prints no record, so has no --json
        return
    as_json = run_cli(*args, "--json", env=env)
    assert as_json.returncode == exit_code
    error = msgspec.json.decode(as_json.stdout)["error"]
    assert names in error["msg"] and error["code"] in ("config", "unavailable")


def test_debug_shows_the_traceback_and_version_prints(tmp_path: Path) -> None:
    result = run_cli("--debug", "migrate", "--database", "notaurl")
    assert result.returncode == 1 and "Traceback" in result.stderr
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("callhistory ")


def test_demo_keeps_every_key_for_its_owner_only(tmp_path: Path) -> None:
    keys_file, read_file = tmp_path / "keys.env", tmp_path / "read.key"
    keys_file.write_text("stale")
    keys_file.chmod(0o644)
    cli("migrate", "--database", f"sqlite:///{tmp_path}/demo.db")
    cli(
        "demo", "--calls", "10", "--database", f"sqlite:///{tmp_path}/demo.db",
        "--save-key", str(read_file), "--save-keys", str(keys_file),
    )  # fmt: skip
    saved = dict(line.split("=", 1) for line in keys_file.read_text().splitlines())
    assert set(saved) == {
        "CALLHISTORY_DEMO_TENANT",
        "CALLHISTORY_DEMO_READ_KEY",
        "CALLHISTORY_DEMO_INGEST_KEY",
        "CALLHISTORY_DEMO_ADMIN_KEY",
    }
    assert read_file.read_text().strip() == saved["CALLHISTORY_DEMO_READ_KEY"]
    assert keys_file.stat().st_mode & 0o777 == 0o600 and read_file.stat().st_mode & 0o777 == 0o600
    url = f"sqlite:///{tmp_path}/demo.db"
    tenant = cli_json("key", "create", "--tenant", saved["CALLHISTORY_DEMO_TENANT"], "--scope",
                      "read", "--database", url)  # fmt: skip
    assert tenant["tenant_id"] == saved["CALLHISTORY_DEMO_TENANT"]


def test_only_serve_and_migrate_change_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new.db"
    result = run_cli("tenant", "create", "--name", "x", "--database", url)
    assert result.returncode == 2, result.stderr
    assert "callhistory migrate" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert run_cli("migrate", "--database", url).returncode == 0
    tenant = msgspec.json.decode(
        run_cli("tenant", "create", "--name", "x", "--database", url, "--json").stdout
    )
    suspended = run_cli("tenant", "suspend", tenant["id"], "--database", url, "--json")
    assert msgspec.json.decode(suspended.stdout) == {"id": tenant["id"], "status": "suspended"}
