"""Retention removes old calls on both backends; on PostgreSQL by dropping whole months."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from contextlib import closing

import msgspec
import pytest

from callhistory.kit.config import Settings
from tests.harness import Api, ServerThread, cli, cli_json, new_tenant, partition_names


def partitions(url: str) -> set[str]:
    return partition_names(url)


def test_retention_removes_calls_older_than_the_cutoff(fresh_database_url: str) -> None:
    url = fresh_database_url
    cli("migrate", "--database", url)
    now = dt.datetime.now(dt.UTC)
    ages = {"a": 500, "b": 420, "c": 399, "d": 30, "e": 1}
    with (
        ServerThread(Settings(database_url=url, access_log=False)) as server,
        closing(Api(server.base_url)) as api,
    ):
        tenants = [new_tenant(url), new_tenant(url)]
        for t in tenants:
            items = [
                {"source_id": s, "started_at": (now - dt.timedelta(days=days)).isoformat()}
                for s, days in ages.items()
            ]
            api.ingest(t.ingest, items)
        old_month = "call_logs_p" + (now - dt.timedelta(days=500)).strftime("%Y%m")
        if url.startswith("postgresql"):
            assert old_month in partitions(url)
        result = cli_json("retention", "apply", "--older-than", "400d", "--database", url)
        assert result == {"removed": 4}
        for t in tenants:
            rows = [r for p in api.walk(t.read, {"paging": {"limit": 1000}}) for r in p]
            assert len(rows) == 3
        if url.startswith("postgresql"):
            assert old_month not in partitions(url)


def test_retention_needs_a_number_of_days(fresh_database_url: str) -> None:
    from typer.testing import CliRunner

    from callhistory.cli import app

    result = CliRunner().invoke(
        app, ["retention", "apply", "--older-than", "soon", "--database", fresh_database_url]
    )
    assert result.exit_code == 2


def psql(url: str, sql: str) -> str:
    return subprocess.run(
        ["psql", url, "-Atc", sql], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()


@pytest.mark.only_on("postgresql")  # SQLite deletes rows; partitions are PostgreSQL's
def test_retention_never_makes_readers_wait(fresh_database_url: str, backend: str) -> None:
    """A long read holds the old month while retention runs: retention waits for it (each wait
    bounded by its lock timeout), and meanwhile pages are served and calls ingested. (On Citus
    the month stays in sight until it is detached, and a reader may wait up to 100 ms behind
    a try.)"""
    url = fresh_database_url
    cli("migrate", "--database", url)
    now = dt.datetime.now(dt.UTC)
    everything = {"filter": {"date_from": (now - dt.timedelta(days=600)).date().isoformat()}}
    with (
        ServerThread(Settings(database_url=url, access_log=False)) as server,
        closing(Api(server.base_url)) as api,
    ):
        tenant = new_tenant(url)
        old = (now - dt.timedelta(days=500)).isoformat()
        api.ingest(
            tenant.ingest,
            [{"source_id": f"old{i}", "started_at": old} for i in range(5)]
            + [{"source_id": "new", "started_at": now.isoformat()}],
        )
        old_month = "call_logs_p" + (now - dt.timedelta(days=500)).strftime("%Y%m")
        long_read = "BEGIN; SELECT count(*) FROM call_logs; SELECT pg_sleep(6); COMMIT;"
        holder = subprocess.Popen(["psql", url, "-Atc", long_read], stdout=subprocess.DEVNULL)
        reading = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'BEGIN; SELECT%'"
        while psql(url, reading) != "1":
            time.sleep(0.05)
        retention = subprocess.Popen(
            [sys.executable, "-m", "callhistory", "retention", "apply", "--older-than", "400d",
             "--database", url, "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        waiting = (
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE NOT l.granted AND a.query LIKE 'ALTER TABLE%DETACH%'"
        )
        while psql(url, waiting) == "0":
            assert retention.poll() is None, retention.communicate()
            time.sleep(0.05)
        # Readers and writers go on while retention waits for the long read; the month being
        # detached is already out of their sight.
        still = 5 if backend == "citus" else 0
        for i in range(3):
            assert sum(map(len, api.walk(tenant.read, everything))) == still + 1 + i
            api.ingest(tenant.ingest, [{"source_id": f"during{i}", "started_at": now.isoformat()}])
        assert retention.poll() is None and holder.poll() is None
        out, errors = retention.communicate(timeout=120)
        assert retention.returncode == 0, errors
        assert msgspec.json.decode(out) == {"removed": 5}
        holder.wait(timeout=30)
        assert old_month not in partitions(url)
        assert sum(map(len, api.walk(tenant.read, everything))) == 4
