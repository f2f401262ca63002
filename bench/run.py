"""`make bench`: ListCallLogs at 5M calls, side by side with the machine's floor, in one run.

Prints and writes bench/results.md. Sizes and durations come from BENCH_* variables so a quick
run is possible (BENCH_CALLS=200000 make bench); the defaults are the issue's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import httpx
import msgspec
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bench import data as bench_data
from bench.client import Client
from bench.data import DATA, Dataset, Sizes, TenantInfo, build_postgres, build_sqlite, cache_name
from callhistory.calllogs.query import CallLogQuery
from callhistory.calllogs.repository import (
    edge_start,
    page_select,
    starts_at_edge,
    window_statements,
)
from callhistory.calllogs.schemas import CallLog
from callhistory.db.backend import backend
from callhistory.db.tables import call_logs
from callhistory.kit.paging import ChangeToken, ChangeTokenCodec, CursorCodec
from tests.harness import free_port, worst_queries
from tests.pgserver import CitusCluster, PostgresCluster

CALLS = int(os.environ.get("BENCH_CALLS", 5_000_000))
BIG = int(os.environ.get("BENCH_BIG", CALLS * 2 // 5))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", 200))
ROUND = 10  # consecutive requests of one case
OFFSET_REQUESTS = int(os.environ.get("BENCH_OFFSET_REQUESTS", 30))
LOAD_SECONDS = int(os.environ.get("BENCH_LOAD_SECONDS", 5))
LOAD_RUNS = 3  # the median counts
HANDLER_SECONDS = float(os.environ.get("BENCH_HANDLER_SECONDS", 2))  # a burst; there are three
DEPTH = min(1_000_000, BIG - 200)
BACKENDS = os.environ.get("BENCH_BACKENDS", "sqlite,postgresql,citus").split(",")
# One part alone, printed and not written to results.md: "pages", "ingest" or "import" (a quick look
# while working on one path).
ONLY = os.environ.get("BENCH_ONLY", "")
RESULTS = Path(__file__).resolve().parent / "results.md"
LIST = "/v1/shop.Etelecom/ListCallLogs"
# The floor reads the columns a call log is made of, as a plain server would, and encodes them.
# (The service itself reads each call's document, rendered when the call was stored.) Fields
# made at read time (the recordings not yet uploaded) are no column.
WIRE_COLUMNS = tuple(name for name in CallLog.__struct_fields__ if name in call_logs.c)


def scenarios(t: TenantInfo) -> dict[str, tuple[dict[str, Any], CallLogQuery]]:
    """name → (API filter, the same filter as the repository's query)."""
    ext, hot, user, dept = t.extension_ids[3], t.hotline_ids[1], t.user_ids[5], t.department_ids[2]
    from_, to = "2024-06-01T00:00:00Z", "2024-09-01T00:00:00Z"
    f, q = CallLogQuery, {}
    return {
        "first page": ({}, f()),
        "date range": (
            {"date_from": from_, "date_to": to},
            f(date_from=1_717_200_000_000_000, date_to=1_725_148_800_000_000),
        ),
        "call_state": ({"call_state": "not_answered"}, f(call_state="not_answered")),
        "direction": ({"direction": "ext_out"}, f(direction="ext_out")),
        "duration": (
            {"duration": {"comparison": "greater_than", "value": 600}},
            f(duration_op=">", duration_value=600),
        ),
        "duration > 1 h": (
            {"duration": {"comparison": "greater_than", "value": 3600}},
            f(duration_op=">", duration_value=3600),
        ),
        "call_number": ({"call_number": t.busy_number}, f(call_number=t.busy_number)),
        "extension_ids": (
            {"extension_ids": [str(ext), str(t.extension_ids[4])]},
            f(extension_ids=tuple(sorted((ext, t.extension_ids[4])))),
        ),
        "hotline_ids": ({"hotline_ids": [str(hot)]}, f(hotline_ids=(hot,))),
        "user_id": ({"user_id": str(user)}, f(user_id=user)),
        "department_id": (
            {"department_id": str(dept)},
            f(department_id=dept, members=tuple(sorted(t.user_ids[2::3]))),
        ),
        "external_id": ({"external_id": "sdk-1"}, f(external_id="sdk-1")),
        "3 filters": (
            {"direction": "in", "call_state": "answered", "hotline_ids": [str(hot)]},
            f(direction="in", call_state="answered", hotline_ids=(hot,)),
        ),
    } | q


STARTED = time.monotonic()


def log(message: str) -> None:
    """A progress line, with the minutes since the run began (the run is bounded: 15 min)."""
    print(f"[{(time.monotonic() - STARTED) / 60:4.1f} min] {message}", flush=True)


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]


class Floor:
    """The raw keyset SQL on the driver, plus plain orjson encoding of the rows, in-process."""

    def __init__(self, data: Dataset) -> None:
        self.data = data
        if data.backend == "sqlite":
            self.db = sqlite3.connect(data.url.removeprefix("sqlite:///"))
            self.dialect: sa.Dialect = sqlite.dialect(paramstyle="qmark")
        else:
            import asyncpg

            self.loop = asyncio.new_event_loop()
            dsn = data.url.replace("postgresql://", "postgres://")
            self.pg = self.loop.run_until_complete(asyncpg.connect(dsn))
            self.dialect = postgresql.dialect(paramstyle="numeric_dollar")

    def sql(self, select: sa.Select[Any]) -> tuple[str, list[Any]]:
        compiled = select.compile(dialect=self.dialect, compile_kwargs={"render_postcompile": True})
        params = compiled.construct_params()
        return str(compiled), [params[name] for name in compiled.positiontup or []]

    def fetch(self, sql: str, params: list[Any]) -> list[Any]:
        if self.data.backend == "sqlite":
            return self.db.execute(sql, params).fetchall()
        return self.loop.run_until_complete(self.pg.fetch(sql, *params))

    def best(self, key: tuple[int, int] | None) -> bytes:
        """The best possible read of the large tenant's page on PostgreSQL: its calls in one
        table (``one_table``) with one (tenant_id, started_at, id) index, keyset."""
        sql = _BEST_DEEP if key else _BEST_FIRST
        params = [self.data.tenants[0].id, *(key or ())]
        rows = self.loop.run_until_complete(self.pg.fetch(sql, *params))
        return orjson.dumps([dict(zip(WIRE_COLUMNS, row)) for row in rows])

    def one_table(self) -> None:
        """Copy the large tenant's calls into ``ONE_TABLE`` once (kept with the data set)."""
        found = self.fetch("SELECT to_regclass($1) IS NOT NULL", [ONE_TABLE])[0][0]
        if found:
            return
        log(f"{self.data.backend}: {ONE_TABLE}, the large tenant's calls in one table")
        for sql in (
            f"CREATE TABLE {ONE_TABLE} AS SELECT * FROM call_logs WHERE tenant_id = "
            f"{int(self.data.tenants[0].id)}",
            f"ALTER TABLE {ONE_TABLE} ADD PRIMARY KEY (tenant_id, started_at, id)",
            f"VACUUM ANALYZE {ONE_TABLE}",
        ):
            self.loop.run_until_complete(self.pg.execute(sql))

    def rows(self, statements: Statements) -> list[Any]:
        """A page's rows from its statements in turn, as the service reads them: on PostgreSQL
        the first call's start, then one window of started_at after the other."""
        lookup, windows = statements
        if lookup is not None:
            self.fetch(*lookup)
        rows: list[Any] = []
        for sql, params in windows:
            rows += self.fetch(sql, params)[: 101 - len(rows)]
            if len(rows) == 101:
                break
        return rows

    def page(self, statements: Statements) -> bytes:
        names = WIRE_COLUMNS
        return orjson.dumps([dict(zip(names, row)) for row in self.rows(statements)])


Statements = tuple[tuple[str, list[Any]] | None, list[tuple[str, list[Any]]]]


# The best floor's table: not the service's; its statements never read it.
ONE_TABLE = "bench_one_table"
_BEST = f"SELECT {', '.join(WIRE_COLUMNS)} FROM {ONE_TABLE} WHERE tenant_id = $1 {{}} "
_BEST += "ORDER BY started_at DESC, id DESC LIMIT 101"
_BEST_FIRST, _BEST_DEEP = _BEST.format(""), _BEST.format("AND (started_at, id) < ($2, $3)")


def page_sql(
    floor: Floor,
    tenant: int,
    query: CallLogQuery,
    key: tuple[int, int] | None,
    columns: tuple[str, ...] = WIRE_COLUMNS,
) -> Statements:
    """The statements of a page as ``calllogs.repository.fetch_page`` runs them."""
    lookup, edge = None, None
    store = backend(floor.data.backend)
    if starts_at_edge(store, query, sort="-started_at", key=key):
        statement, values = edge_start(tenant, query, descending=True)
        lookup = floor.sql(statement.params(values))
        edge = floor.fetch(*lookup)[0][0]
    statements = window_statements(
        store,
        tenant,
        query,
        sort="-started_at",
        key=key,
        forward=True,
        limit=101,
        edge=edge,
        columns=columns,
    )
    return lookup, [floor.sql(statement.params(values)) for statement, values in statements]


def timed(fn: Callable[[], Any], n: int, warm: int = 20) -> list[float]:
    for _ in range(warm):
        fn()
    out = []
    for _ in range(n):
        began = time.perf_counter()
        fn()
        out.append((time.perf_counter() - began) * 1000)
    return out


@contextmanager
def server(
    data: Dataset, workers: int, env: dict[str, str] | None = None
) -> Iterator[tuple[str, list[int]]]:
    port = free_port()
    extra = env or {}
    env = {
        **os.environ,
        "CALLHISTORY_DATABASE_URL": data.url,
        # Access logs on, as in production (and as handler_times measures), to /dev/null.
        "CALLHISTORY_LOG_LEVEL": "info",
        "CALLHISTORY_RATE_LIMIT_PER_SECOND": "0",  # one key drives all the load here
        **extra,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "callhistory",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        yield base, [process.pid]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the workers)."""
    total = 0
    pids = [pid]
    for child in Path("/proc").iterdir():
        if child.name.isdigit():
            try:
                if (child / "stat").read_text().split()[3] == str(pid):
                    pids.append(int(child.name))
            except OSError:
                continue
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def wrk(base: str, key: str, body: bytes, seconds: int, connections: int) -> float:
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {msgspec.json.encode(body.decode()).decode()}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), base + LIST],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("Requests/sec"))
    errors = [ln for ln in out.splitlines() if "Non-2xx" in ln or "Socket errors" in ln]
    if errors:
        raise RuntimeError(f"load errors: {errors}")
    return float(line.split()[1])


def handler_times(data: Dataset, key: str, body: bytes) -> list[float]:
    """The app's own time per page (ms), in-process (ASGI call, no socket, no HTTP parsing),
    for ``HANDLER_SECONDS``."""
    from callhistory.app import create_app
    from callhistory.kit.config import Settings

    async def run() -> float:
        # The access log is written as in production, but to /dev/null, not the terminal.
        sys.stderr, terminal = open(os.devnull, "w"), sys.stderr  # noqa: SIM115
        try:
            settings = Settings(database_url=data.url, access_log=True, rate_limit_per_second=0)
            app = create_app(settings, migrate=False)
        finally:
            sys.stderr = terminal
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {key}".encode()),
        ]
        scope = {
            "type": "http",
            "method": "POST",
            "path": LIST,
            "raw_path": LIST.encode(),
            "query_string": b"",
            "headers": headers,
            "http_version": "1.1",
            "scheme": "http",
            "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 1),
            "root_path": "",
        }

        async def call() -> None:
            sent = False

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    return {"type": "http.disconnect"}
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    assert message["status"] == 200

            await app(dict(scope, state={}), receive, send)

        samples = []
        async with app.router.lifespan_context(app):
            for _ in range(20):
                await call()
            end = time.perf_counter() + HANDLER_SECONDS
            while (began := time.perf_counter()) < end:
                await call()
                samples.append((time.perf_counter() - began) * 1000)
        return samples

    return asyncio.run(run())


def bench(data: Dataset) -> dict[str, Any]:
    """Every row of the table for SQLite and PostgreSQL; for Citus the pages, the load runs
    and ingest (its column compares those with PostgreSQL's)."""
    full = data.backend != "citus"
    big = data.tenants[0]
    floor = Floor(data)
    out: dict[str, Any] = {"backend": data.backend, "rows": {}}
    mark = (lambda i: "?") if data.backend == "sqlite" else (lambda i: f"${i}")
    deep_sql = (
        f"SELECT started_at, id FROM call_logs WHERE tenant_id = {mark(1)} "
        f"ORDER BY started_at DESC, id DESC LIMIT 1 OFFSET {mark(2)}"
    )
    deep_key = tuple(floor.fetch(deep_sql, [big.id, DEPTH])[0])
    secret = bytes.fromhex(
        floor.fetch("SELECT value FROM service_state WHERE name = 'cursor_secret'", [])[0][0]
    )
    codec = CursorCodec(
        secret=secret,
        tenant_id=big.id,
        sort="-started_at",
        filter_key=msgspec.json.encode(CallLogQuery()),
    )
    deep_cursor = codec.encode(deep_key, forward=True)  # type: ignore[arg-type]
    if ONLY == "ingest":
        return {"backend": data.backend, "ingest": ingest(data), "import": import_rate(data)}
    if ONLY == "import":
        return {"backend": data.backend, "import": import_rate(data)}
    best = data.backend == "postgresql"  # partitioned, with the best floor beside it
    if best:
        floor.one_table()
    cases = {name: (body, q, None) for name, (body, q) in scenarios(big).items()}
    cases[f"page {DEPTH:,} deep"] = ({}, CallLogQuery(), deep_key)
    with server(data, 1) as (base, pids):
        headers = {"Authorization": f"Bearer {big.key}", "Content-Type": "application/json"}
        client = Client(base, LIST, headers)

        def api_call(payload: bytes, statements: Statements) -> Callable[[], None]:
            # Checked once, untimed: the API answers the calls the floor's SQL finds, in order.
            page = msgspec.json.decode(client.post(payload))
            found = [str(row[WIRE_COLUMNS.index("id")]) for row in floor.rows(statements)]
            assert [call["id"] for call in page["call_logs"]] == found[:100], payload

            def api() -> None:
                client.post(payload)

            return api

        def floor_call(statements: Statements) -> Callable[[], bytes]:
            return lambda: floor.page(statements)

        log(f"{data.backend}: pages")
        # Each case: its floor, the API, and for the unfiltered pages the best floor.
        runs: dict[str, tuple[Callable[[], Any], ...]] = {}
        for name, (filter_, query, key) in cases.items():
            statements = page_sql(floor, big.id, query, key)  # type: ignore[arg-type]
            paging = {"after": deep_cursor} if key else {}
            payload = msgspec.json.encode({"filter": filter_, "paging": paging})
            runs[name] = (floor_call(statements), api_call(payload, statements))
            if best and query == CallLogQuery():
                runs[name] += (functools.partial(floor.best, key),)
        # Rounds over the cases (10 floor pages, then 10 API pages, each), so a shared VM's
        # drift over the run hits every row of the table alike. The first round warms up, and
        # so does one untimed page each time a round switches case (caches go cold in between).
        samples = {name: tuple([] for _ in calls) for name, calls in runs.items()}
        for round_ in range(1 + REQUESTS // ROUND):
            for name, calls in runs.items():
                for fn, out_ms in zip(calls, samples[name], strict=True):
                    fn()
                    for _ in range(ROUND):
                        began = time.perf_counter()
                        fn()
                        if round_:
                            out_ms.append((time.perf_counter() - began) * 1000)
        for name, (floor_ms, api_ms, *best_ms) in samples.items():
            out["rows"][name] = {
                "floor_p50": pct(floor_ms, 0.5),
                "floor_p99": pct(floor_ms, 0.99),
                "api_p50": pct(api_ms, 0.5),
                "api_p99": pct(api_ms, 0.99),
            }
            for ms in best_ms:
                out["rows"][name] |= {"best_p50": pct(ms, 0.5), "best_p99": pct(ms, 0.99)}
            log(
                f"{data.backend} {name:>22}: floor p50 {pct(floor_ms, 0.5):7.2f} ms  api p50 {pct(api_ms, 0.5):7.2f} p99 {pct(api_ms, 0.99):7.2f} ms"
            )
        if ONLY == "pages":
            return out
        if full:
            out.update(served_extras(data, base, pids[0], floor, secret))
    documents = page_sql(floor, big.id, CallLogQuery(), None, columns=("started_at", "id", "doc"))

    def read_documents() -> bytes:
        return b",".join(row[2] for row in floor.rows(documents))

    documents_ms = timed(read_documents, REQUESTS)
    out["documents_p50"] = pct(documents_ms, 0.5)
    naive = page_select(
        tenant_id=big.id,
        query=CallLogQuery(),
        sort="-started_at",
        key=None,
        forward=True,
        limit=100,
        columns=WIRE_COLUMNS,
    )
    offset_sql, offset_params = floor.sql(naive.offset(DEPTH))
    offset_ms = timed(lambda: floor.page((None, [(offset_sql, offset_params)])), OFFSET_REQUESTS)
    out["offset"] = {"p50": pct(offset_ms, 0.5), "p99": pct(offset_ms, 0.99), "n": OFFSET_REQUESTS}
    log(f"{data.backend} OFFSET {DEPTH:,}: p50 {pct(offset_ms, 0.5):.1f} ms")
    body = msgspec.json.encode({})
    # The ceiling's handler time is sampled before, between and after the load runs: a vCPU of
    # this VM ran the same in-process page at 0.38 ms and at 0.75 ms a few seconds apart, while
    # the load runs average over such swings.
    handler = handler_times(data, big.key, body)
    for workers in (1, 2):
        with server(data, workers) as (base, pids):
            wrk(base, big.key, body, 2, 8)  # warm
            # Each run opens its 8 connections anew, and uvicorn's workers share one listening
            # socket: the first worker awake takes every connection pending. In 2 runs of 13 one
            # worker held all 8 and served alone, so one run alone did not measure 2 workers.
            rates = [wrk(base, big.key, body, LOAD_SECONDS, 8) for _ in range(LOAD_RUNS)]
            out[f"pages_per_s_{workers}"] = statistics.median(rates)
            out[f"pages_per_s_runs_{workers}"] = rates
            out[f"rss_mb_{workers}"] = rss_mb(pids[0])
        handler += handler_times(data, big.key, body)
        log(
            f"{data.backend} {workers} worker(s): {out[f'pages_per_s_{workers}']:.0f} pages/s (runs {load_runs(out, workers)}), RSS {out[f'rss_mb_{workers}']:.0f} MB"
        )
    out["handler_ms"] = statistics.median(handler)
    out["handler_n"] = len(handler)
    log(f"{data.backend} handler in-process: {out['handler_ms']:.2f} ms ({len(handler)} pages)")
    out["ingest"] = ingest(data)
    for pbx, rate in out["ingest"].items():
        log(f"{data.backend} ingest, {pbx}: {rate[1]:.0f} / {rate[2]:.0f} calls/s")
    out["import"] = import_rate(data)
    log(f"{data.backend} import: {out['import']}")
    if data.backend == "sqlite":
        from bench.webhooks import webhooks

        out["webhooks"] = webhooks(data)
        log(f"sqlite webhooks: {out['webhooks']}")
        from bench.recordings import recordings

        out["recordings"] = recordings()
        log(f"recordings: {out['recordings']}")
    return out


def served_extras(
    data: Dataset, base: str, pid: int, floor: Floor, secret: bytes
) -> dict[str, Any]:
    """The change feed, export, statistics and noisy-neighbour rows, from a running server."""
    big = data.tenants[0]
    out: dict[str, Any] = {}
    log(f"{data.backend}: change feed")
    out["feed"] = feed_pages(base, big, secret)
    log(f"{data.backend} change feed: {out['feed']}")
    log(f"{data.backend}: export")
    # Twice: the first reads whatever of the tenant's rows the page cache lacks (the other
    # rows evicted some), the second runs from memory; docs/performance.md explains the gap.
    out["export"] = export_rate(base, big, pid)
    out["export_again"] = export_rate(base, big, pid)
    log(f"{data.backend} export: {out['export']}, again: {out['export_again']}")
    log(f"{data.backend}: statistics")
    out["stats"] = stats_timings(base, big, floor)
    log(f"{data.backend} statistics: {out['stats']}")
    log(f"{data.backend}: noisy neighbour")
    out["noisy"] = noisy_neighbour(base, big, data.tenants[1])
    log(f"{data.backend} noisy neighbour: {out['noisy']}")
    return out


def feed_pages(base: str, big: TenantInfo, secret: bytes) -> dict[str, float]:
    """ListCallLogChanges, 100 changes a page, from a token 1,000,000 changes deep: what a
    reader catching up pays per page (p50 / p99 over REQUESTS pages, each from its own token,
    so the pages walk forward as a reader's would)."""
    codec = ChangeTokenCodec(secret=secret, tenant_id=big.id)
    token = codec.encode(ChangeToken(sequenced=True, position=DEPTH, purged_before=0))
    headers = {"Authorization": f"Bearer {big.key}", "Content-Type": "application/json"}
    client = Client(base, "/v1/shop.Etelecom/ListCallLogChanges", headers)
    samples: list[float] = []
    for i in range(REQUESTS + 10):
        body = msgspec.json.encode({"since": token, "limit": 100})
        began = time.perf_counter()
        answer = bytes(client.post(body))
        if i >= 10:
            samples.append((time.perf_counter() - began) * 1000)
        if i == 0:  # checked once, untimed: a full page
            assert len(msgspec.json.decode(answer)["changes"]) == 100
        # The next token, without decoding the page (the client's own work is not the API's).
        token = answer[answer.rindex(b'"next":"') + 8 : -2].decode()
    client.close()
    return {"p50": pct(samples, 0.5), "p99": pct(samples, 0.99)}


def export_rate(base: str, big: TenantInfo, pid: int) -> dict[str, float]:
    """The large tenant's whole history as CSV (in the tenant's time zone) through
    GET /v1/export/call_logs.csv: rows/s, and the server's peak resident memory (its high-water
    mark once the export is done: an upper bound of what the export itself took)."""
    # Read by curl into wc -l: a Python client could not keep up with the stream.
    began = time.perf_counter()
    counted = subprocess.run(
        f"curl -sS --fail -H 'Authorization: Bearer {big.key}' "
        f"{base}/v1/export/call_logs.csv | wc -l",
        shell=True,  # a fixed pipeline of our own values
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - began
    rows = int(counted.stdout.strip())
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    return {"rows": rows - 1, "rows_per_s": (rows - 1) / seconds, "peak_rss_mb": peak}


STATS_REQUESTS = 50
STATS_TARGETS = {"month by day x extension": "≤ 50 ms", "year by day": "≤ 200 ms"}


def stats_timings(base: str, big: TenantInfo, floor: Floor) -> dict[str, Any]:
    """GetCallStats of the large tenant, over HTTP, beside the floor of the SQL it runs (the
    kept statistics' rows of the period, fetched alone): the last month of its data by day and
    extension, and the last year by day; and that month counted call by call (with a filter
    the kept statistics cannot answer), as before they were kept."""
    import datetime as dt

    epoch = dt.date(1970, 1, 1).toordinal()
    month = (dt.date(2025, 11, 1), dt.date(2025, 11, 30))  # the data end 2025-12-01 (UTC)
    year = (dt.date(2024, 12, 1), dt.date(2025, 11, 30))
    mark = (lambda i: "?") if floor.data.backend == "sqlite" else (lambda i: f"${i}")

    def days_sql(dim: str) -> str:
        return (
            f"SELECT * FROM call_stats_days WHERE tenant_id = {mark(1)} AND dim = '{dim}' "
            f"AND day BETWEEN {mark(2)} AND {mark(3)}"
        )

    every_call = {"duration": {"comparison": "greater_than_or_equal_to", "value": 0}}
    cases: dict[str, tuple[list[str], dict[str, Any], str, list[int], int]] = {
        "month by day x extension": (
            ["day", "extension"],
            {"date_from": str(month[0]), "date_to": str(month[1])},
            days_sql("extension"),
            [big.id, month[0].toordinal() - epoch, month[1].toordinal() - epoch],
            STATS_REQUESTS,
        ),
        "year by day": (
            ["day"],
            {"date_from": str(year[0]), "date_to": str(year[1])},
            days_sql(""),
            [big.id, year[0].toordinal() - epoch, year[1].toordinal() - epoch],
            STATS_REQUESTS,
        ),
        "month by day x extension, call by call": (
            ["day", "extension"],
            {"date_from": str(month[0]), "date_to": str(month[1]), **every_call},
            "",  # no floor: it reads every call's document
            [],
            3,
        ),
    }
    headers = {"Authorization": f"Bearer {big.key}", "Content-Type": "application/json"}
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base, timeout=60, headers=headers) as http:
        for name, (group_by, filter_, sql, params, n) in cases.items():
            body = msgspec.json.encode({"group_by": group_by, "filter": filter_})

            def call() -> None:
                response = http.post("/v1/shop.Etelecom/GetCallStats", content=body)
                response.raise_for_status()

            api_ms = timed(call, n, warm=min(n, 5))
            floor_ms = timed(lambda: floor.fetch(sql, params), n, warm=min(n, 5)) if sql else []
            out[name] = {
                "api_p50": pct(api_ms, 0.5),
                "floor_p50": pct(floor_ms, 0.5) if floor_ms else None,
                "n": n,
            }
    return out


NOISY_SECONDS = float(os.environ.get("BENCH_NOISY_SECONDS", 5))
NOISY_CLIENTS = 8


def noisy_neighbour(base: str, noisy: TenantInfo, other: TenantInfo) -> dict[str, Any]:
    """Another tenant's first page and /healthz, quiet, then while ``NOISY_CLIENTS`` clients of
    one tenant send ``worst_queries`` back to back."""
    import threading

    def sample(seconds: float) -> tuple[list[float], list[float]]:
        pages, health = [], []
        headers = {"Authorization": f"Bearer {other.key}", "Content-Type": "application/json"}
        with httpx.Client(base_url=base, timeout=30) as http:
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                began = time.perf_counter()
                assert http.post(LIST, content=b"{}", headers=headers).status_code == 200
                pages.append((time.perf_counter() - began) * 1000)
                began = time.perf_counter()
                assert http.get("/healthz").status_code == 200
                health.append((time.perf_counter() - began) * 1000)
        return pages, health

    quiet_pages, quiet_health = sample(NOISY_SECONDS / 2)
    stop = threading.Event()
    answers: dict[int, int] = {}
    lock = threading.Lock()

    def noise(n: int) -> None:
        bodies = worst_queries()
        headers = {"Authorization": f"Bearer {noisy.key}", "Content-Type": "application/json"}
        with httpx.Client(base_url=base, timeout=30) as http:
            i = n
            while not stop.is_set():
                status = http.post(LIST, content=bodies[i % len(bodies)], headers=headers)
                with lock:
                    answers[status.status_code] = answers.get(status.status_code, 0) + 1
                i += 1

    threads = [threading.Thread(target=noise, args=(n,)) for n in range(NOISY_CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    try:
        pages, health = sample(NOISY_SECONDS)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return {
        "quiet_p50": pct(quiet_pages, 0.5),
        "quiet_p99": pct(quiet_pages, 0.99),
        "p50": pct(pages, 0.5),
        "p99": pct(pages, 0.99),
        "healthz_quiet_p99": pct(quiet_health, 0.99),
        "healthz_p99": pct(health, 0.99),
        "noisy_answers": dict(sorted(answers.items())),
    }


INGEST_BATCHES = int(os.environ.get("BENCH_INGEST_BATCHES", 100))
INGEST_START = dt.datetime(2025, 10, 1, tzinfo=dt.UTC)
CUSTOMERS = 200_000
# The ingest cases: (name, the kind of source ids, the calls' shape, their order).
INGEST_CASES = (
    ("asterisk ids, one target, live", "asterisk", "simple", "live"),
    ("freeswitch ids, one target, live", "freeswitch", "simple", "live"),
    ("freeswitch ids, as the corpus, live", "freeswitch", "realistic", "live"),
    ("freeswitch ids, as the corpus, backfill", "freeswitch", "realistic", "backfill"),
)
BACKLOG_NOTE = f"{int(os.environ.get('BENCH_WEBHOOK_BACKLOG', 10_000)):,} stored deliveries"


def ingest_target(backend: str, case: str) -> str:
    """The target of an ingest row: #25's on PostgreSQL (realistic calls in live order, 2
    workers), the earlier ≥ 20,000 on SQLite."""
    if backend == "postgresql":
        return "≥ 5,000 (2 workers)" if case == INGEST_CASES[2][0] else ""
    return "≥ 20,000"


def _stamp(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def ingest_batch(b: int, pbx: str, shape: str = "simple", order: str = "live") -> bytes:
    """Batch ``b`` of 500 calls as a PBX posts them.

    ``live``: in time order as calls end (the next ten minutes of a busy centre); ``backfill``:
    an import of two years of history, the calls in no order (the months of the data set).
    ``simple``: each caller one of the tenant's customers at random, inbound, one answered
    target. ``realistic``: shaped as the CDR corpus's calls are: a mix of directions, 1-4
    targets rung one after another (a ring group) of which at most one answers, the
    recording(s) of answered calls, and now and then the CRM's external ids and a note.
    Source ids as each PBX writes them: Asterisk's uniqueid (epoch seconds and a sequence) comes
    in time order, FreeSWITCH's is a random UUID, and so is every insert into the source-id
    index."""
    rng = random.Random(f"{pbx}-{shape}-{order}-{b}")
    calls = []
    span = (bench_data.END - bench_data.START) // 1_000_000
    for i in range(500):
        n = b * 500 + i
        if order == "live":
            start = INGEST_START + dt.timedelta(seconds=n * 1.2)
        else:
            start = dt.datetime.fromtimestamp(bench_data.START // 1_000_000, tz=dt.UTC)
            start += dt.timedelta(seconds=rng.randrange(span))
        if pbx == "asterisk":
            source = f"{int(start.timestamp())}.{n}"
        else:
            source = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        customer = f"09{rng.randrange(CUSTOMERS) * 7919 % 10**8:08d}"
        if shape == "simple":
            at = [_stamp(start + dt.timedelta(seconds=s)) for s in (0, 1, 5, 40)]
            call: dict[str, Any] = {
                "source_id": source,
                "started_at": at[0],
                "ended_at": at[3],
                "caller": customer,
                "callee": "19006868",
                "direction": "in",
                "call_targets": [
                    {"target_number": "101", "ring_time": at[1], "answered_time": at[2]}
                ],
            }
        else:
            call = _realistic(rng, source, start, customer)
        calls.append(call)
    return msgspec.json.encode({"call_logs": calls})


def _realistic(rng: random.Random, source: str, start: dt.datetime, customer: str) -> Any:
    r = rng.random()
    direction = "in" if r < 0.55 else "out" if r < 0.88 else "ext" if r < 0.95 else "ext_in"
    answered = rng.random() < 0.72
    rung = rng.choice((1, 1, 1, 2, 2, 3, 4))
    which = rng.randrange(rung) if answered else -1
    targets, at = [], start + dt.timedelta(seconds=rng.randint(0, 3))
    for leg in range(rung):
        ring = rng.randint(3, 20)
        target: dict[str, Any] = {
            "target_number": str(100 + rng.randrange(30)),
            "add_time": _stamp(at),
            "ring_time": _stamp(at + dt.timedelta(seconds=1)),
        }
        if leg == which:
            talk = int(rng.lognormvariate(4.0, 1.0))
            target["answered_time"] = _stamp(at + dt.timedelta(seconds=ring))
            target["ended_time"] = _stamp(at + dt.timedelta(seconds=ring + talk))
            target["end_reason"] = "NORMAL_CLEARING"
            at += dt.timedelta(seconds=ring + talk)
            targets.append(target)
            break
        target["ended_time"] = _stamp(at + dt.timedelta(seconds=ring))
        target["end_reason"], target["fail_code"] = "NO_ANSWER", 480
        target["status"] = "no_answer"
        at += dt.timedelta(seconds=ring)
        targets.append(target)
    hotline = "19006868"
    caller, callee = (customer, hotline) if direction in ("in", "ext_in") else ("101", customer)
    if direction == "ext":
        caller, callee = "101", str(100 + rng.randrange(30))
    call: dict[str, Any] = {
        "source_id": source,
        "started_at": _stamp(start),
        "ended_at": _stamp(at + dt.timedelta(seconds=1)),
        "caller": caller,
        "callee": callee,
        "direction": direction,
        "call_targets": targets,
    }
    if answered:
        day = start.strftime("%Y/%m/%d")
        parts = 1 if rng.random() < 0.9 else 2
        call["recording_urls"] = [
            f"https://pbx.example.vn/recordings/{day}/{source}-{part}.wav" for part in range(parts)
        ]
    if rng.random() < 0.05:
        call["external_id"] = f"sdk-{rng.randrange(10**9)}"
        call["external_session_id"] = f"sess-{rng.randrange(10**9)}"
    if rng.random() < 0.02:
        call["note"] = "Khách hàng hỏi về đơn hàng, hẹn gọi lại."
    return call


def ingest(data: Dataset) -> dict[str, dict[int, float]]:
    """Calls/s through IngestCallLogs in batches of 500, per case (``INGEST_CASES``), into a
    scratch tenant each: one PBX posting to one worker, and two PBXs posting at once to two
    workers. Each batch comes on a new connection, as PBXs post CDRs, so the worker free at the
    time takes it (two keep-alive connections often both landed on one worker). The scratch
    tenants' calls are deleted afterwards, so that runs do not grow the cached data set."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.harness import new_tenant

    rates: dict[str, dict[int, float]] = {}
    try:
        for name, pbx, shape, order in INGEST_CASES:
            tenant = new_tenant(data.url, name=f"ingest bench {name}")
            headers = {
                "Authorization": f"Bearer {tenant.ingest}",
                "Content-Type": "application/json",
            }
            rates[name] = {}
            for in_flight in (1, 2):
                with server(data, in_flight) as (base, _):
                    port = int(base.rsplit(":", 1)[1])
                    first = (in_flight - 1) * INGEST_BATCHES
                    batches = [
                        ingest_batch(first + b, pbx, shape, order) for b in range(INGEST_BATCHES)
                    ]

                    def post(share: list[bytes]) -> None:
                        for batch in share:
                            http = HTTPConnection("127.0.0.1", port)
                            http.request("POST", "/v1/pbx.Etelecom/IngestCallLogs", batch, headers)
                            response = http.getresponse()
                            answer = response.read()
                            assert response.status == 200, answer
                            http.close()

                    post(batches[:1])  # warm: the server's first batch
                    began = time.perf_counter()
                    with ThreadPoolExecutor(in_flight) as pool:
                        shares = [batches[1 + i :: in_flight] for i in range(in_flight)]
                        list(pool.map(post, shares))
                    elapsed = time.perf_counter() - began
                    rates[name][in_flight] = (len(batches) - 1) * 500 / elapsed
    finally:
        forget_calls(data)
    return rates


IMPORT_CALLS = int(os.environ.get("BENCH_IMPORT_CALLS", 100_000))


def import_rate(data: Dataset) -> dict[str, float]:
    """Calls/s of ``callhistory import jsonl`` (the command, as an operator runs it: start-up
    included) of two years of corpus-shaped calls in no order into a new tenant, then of the
    same file again (every call already stored: nothing written)."""
    from tests.harness import new_tenant

    tenant = new_tenant(data.url, name="ingest bench import")
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "calls.jsonl"
        with path.open("wb") as out:
            for b in range(IMPORT_CALLS // 500):
                for call in msgspec.json.decode(
                    ingest_batch(10_000 + b, "freeswitch", "realistic", "backfill")
                )["call_logs"]:
                    out.write(msgspec.json.encode(call) + b"\n")
        command = [str(Path(sys.executable).parent / "callhistory"), "import", "jsonl"]
        command += [str(path), "--tenant", tenant.id, "--database", data.url, "--json"]
        try:
            for run in ("first", "again"):
                began = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True, timeout=1800)
                rates[run] = IMPORT_CALLS / (time.perf_counter() - began)
        finally:
            forget_calls(data)
    return rates


def forget_calls(data: Dataset) -> None:
    """Delete the calls of the bench's scratch tenants (this run's, and any earlier run's)."""
    scratch = "SELECT id FROM tenants WHERE name LIKE 'ingest bench%'"
    if data.backend == "sqlite":
        with sqlite3.connect(data.url.removeprefix("sqlite:///")) as db:
            db.execute(f"DELETE FROM call_logs WHERE tenant_id IN ({scratch})")
        return
    from tests.harness import run_sql

    # Tenant by tenant: on Citus a DELETE whose tenants come from a subquery is refused.
    for (tenant_id,) in run_sql(data.url, scratch):
        run_sql(data.url, "DELETE FROM call_logs WHERE tenant_id = :t", t=tenant_id)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def load_runs(result: dict[str, Any], workers: int) -> str:
    return " / ".join(f"{r:,.0f}" for r in result[f"pages_per_s_runs_{workers}"])


def _answers(noisy: dict[str, Any]) -> str:
    return ", ".join(f"{n} x {status}" for status, n in noisy["noisy_answers"].items())


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        f"# Benchmark results\n\n{CALLS:,} calls over 50 tenants; the large tenant has {BIG:,}. "
        f"{REQUESTS} requests per row (OFFSET: {OFFSET_REQUESTS}). 2 cores. Times in ms.\n"
    ]
    for r in results:
        if r["backend"] == "citus":
            continue
        rows = r["rows"]
        first = rows["first page"]
        deep = rows[f"page {DEPTH:,} deep"]
        ceiling = 2000 / r["handler_ms"]
        lines += [
            f"\n## {r['backend']}\n",
            "| page | floor p50 | floor p99 | API p50 | API p99 | API/floor (p50) |",
            "|---|---:|---:|---:|---:|---:|",
            *[
                f"| {name} | {v['floor_p50']:.2f} | {v['floor_p99']:.2f} | {v['api_p50']:.2f} | {v['api_p99']:.2f} | {v['api_p50'] / v['floor_p50']:.2f} |"
                for name, v in rows.items()
            ],
            *[
                f"| {name}: one table, best floor | {v['best_p50']:.2f} | {v['best_p99']:.2f} | | | {v['api_p50'] / v['best_p50']:.2f} |"
                for name, v in rows.items()
                if "best_p50" in v
            ],
            f"| OFFSET {DEPTH:,} (naive) | {r['offset']['p50']:.2f} | {r['offset']['p99']:.2f} | | | |",
            "",
            "| ratio | value | target |",
            "|---|---:|---|",
            f"| API p50 / floor p50, default page | {first['api_p50'] / first['floor_p50']:.2f} | ≤ 2 |",
            *(
                [
                    f"| API p50 / best floor p50 (one table), default page | {first['api_p50'] / first['best_p50']:.2f} | ≤ 2 |",
                    f"| floor p50 / best floor p50 (what the monthly partitions cost), default / deep page | {first['floor_p50'] / first['best_p50']:.2f} / {deep['floor_p50'] / deep['best_p50']:.2f} | |",
                ]
                if "best_p50" in first
                else []
            ),
            f"| deep / first (API p50) | {deep['api_p50'] / first['api_p50']:.2f} | ≤ 1.2 |",
            f"| OFFSET / keyset at depth {DEPTH:,} (floor p50) | {r['offset']['p50'] / deep['floor_p50']:.0f} | ≥ 20 |",
            f"| worst filter p99 / default page p50 (API) | {max(v['api_p99'] for v in rows.values()) / first['api_p50']:.2f} | ≤ 5 |",
            f"| reading the default page's stored documents alone (p50) | {r['documents_p50']:.2f} ms | |",
            f"| handler time per page (in-process, median of {r['handler_n']:,} in 3 bursts around the load runs) | {r['handler_ms']:.2f} ms | |",
            f"| pages/s, 1 worker (median of {LOAD_RUNS} runs: {load_runs(r, 1)}) | {r['pages_per_s_1']:.0f} | |",
            f"| pages/s, 2 workers (median of {LOAD_RUNS} runs: {load_runs(r, 2)}) / ceiling ({ceiling:.0f}) | {r['pages_per_s_2']:.0f} ({r['pages_per_s_2'] / ceiling:.0%}) | ≥ 60% |",
            f"| server RSS, 1 / 2 workers | {r['rss_mb_1']:.0f} / {r['rss_mb_2']:.0f} MB | ≤ 200 MB |",
            f"| noisy neighbour: another tenant's first page p50 / p99, quiet → while {NOISY_CLIENTS} clients of one tenant send the worst queries ({_answers(r['noisy'])}) | {r['noisy']['quiet_p50']:.1f} / {r['noisy']['quiet_p99']:.1f} → {r['noisy']['p50']:.1f} / {r['noisy']['p99']:.1f} ms | p99 ≤ 50 ms |",
            f"| change feed page (100 changes, from 1,000,000 deep) p50 / p99 (API) | {r['feed']['p50']:.2f} / {r['feed']['p99']:.2f} ms | |",
            f"| change feed page p50 / default page p50 (API) | {r['feed']['p50'] / first['api_p50']:.2f} | ≈ 1 |",
            f"| export of the large tenant as CSV ({r['export']['rows']:,} rows): rows/s first / again (rows in the page cache), server peak RSS | {r['export']['rows_per_s']:,.0f} / {r['export_again']['rows_per_s']:,.0f} rows/s, {r['export_again']['peak_rss_mb']:.0f} MB | ≥ 50,000 rows/s, ≤ 200 MB |",
            *(
                f"| GetCallStats, {name}: API p50 (floor: its SQL alone) | {v['api_p50']:.1f} ms ({_ms(v['floor_p50'])}) | {STATS_TARGETS.get(name, '')} |"
                for name, v in r.get("stats", {}).items()
            ),
            f"| noisy neighbour: /healthz p99, quiet → noisy | {r['noisy']['healthz_quiet_p99']:.1f} → {r['noisy']['healthz_p99']:.1f} ms | ≤ 50 ms |",
        ]
        for pbx, rate in r.get("ingest", {}).items():
            lines.append(
                f"| ingest through IngestCallLogs (batches of 500), {pbx}: 1 worker, 1 in flight / 2 workers, 2 in flight | {rate[1]:.0f} / {rate[2]:.0f} calls/s | {ingest_target(r['backend'], pbx)} |"
            )
        imported = r.get("import")
        if imported:
            lines.append(
                f"| `callhistory import jsonl` of {IMPORT_CALLS:,} corpus-shaped calls, two years in no order, into a new tenant: first / again (all stored) | {imported['first']:,.0f} / {imported['again']:,.0f} calls/s | {'≥ 20,000' if r['backend'] == 'postgresql' else ''} |"
            )
        hooks = r.get("webhooks")
        if hooks:
            lines += [
                f"| ingest with a webhook endpoint / without (1 worker, batches of 500 by turns) | {hooks['ingest_on']:.0f} / {hooks['ingest_off']:.0f} calls/s ({hooks['ingest_on'] / hooks['ingest_off'] - 1:+.0%}) | within 15% |",
                f"| webhook deliveries/s, one `callhistory deliver` draining {BACKLOG_NOTE} (first to last delivery) | {hooks['deliveries_per_s']:.0f} | |",
                *(
                    f"| webhook latency, call acknowledged → delivered, posting {rate} calls/s (achieved {hooks[f'steady_rate_{rate}']:.0f}) to 2 workers that also deliver: p50 / p99 | {hooks[f'latency_p50_ms_{rate}']:.0f} / {hooks[f'latency_p99_ms_{rate}']:.0f} ms | |"
                    for rate in (500, 100)
                ),
            ]
        served = r.get("recordings")
        if served:
            lines += [
                f"| a 50 MB recording: upload / download, one client | {served['upload_mb_s']:.0f} / {served['download_mb_s']:.0f} MB/s | |",
                f"| a 50 MB recording to 20 clients at once: MB/s in all, server RSS idle → peak | {served['concurrent_mb_s']:.0f} MB/s, {served['rss_idle_mb']:.0f} → {served['rss_peak_mb']:.0f} MB | ≤ 200 MB, flat |",
                f"| a 64 KiB Range in the middle of a 50 MB recording: time to first byte p50 / max | {served['ttfb_p50_ms']:.1f} / {served['ttfb_max_ms']:.1f} ms | |",
            ]
    lines += citus_table(results)
    return "\n".join(lines) + "\n"


def citus_table(results: list[dict[str, Any]]) -> list[str]:
    """Citus (a coordinator and two workers on this same machine) beside PostgreSQL."""
    by_backend = {r["backend"]: r for r in results}
    if "citus" not in by_backend:
        return []
    shown = [by_backend[name] for name in ("postgresql", "citus") if name in by_backend]

    def row(label: str, value: Callable[[dict[str, Any]], str]) -> str:
        return f"| {label} | " + " | ".join(value(r) for r in shown) + " |"

    def ingest_rate(r: dict[str, Any], in_flight: int) -> str:
        return " / ".join(f"{rates[in_flight]:,.0f}" for rates in r["ingest"].values())

    first = "first page"
    return [
        "\n## citus\n",
        "A coordinator and two workers on this machine (3 PostgreSQL servers sharing its 2 "
        "cores), the same data as PostgreSQL's, distributed by tenant (32 shards per table).\n",
        "| figure | " + " | ".join(r["backend"] for r in shown) + " |",
        "|---|" + "---:|" * len(shown),
        row("first page: API p50 / p99 (ms)",
            lambda r: f"{r['rows'][first]['api_p50']:.2f} / {r['rows'][first]['api_p99']:.2f}"),
        row("first page: floor p50 (ms), API/floor",
            lambda r: f"{r['rows'][first]['floor_p50']:.2f}, "
            f"{r['rows'][first]['api_p50'] / r['rows'][first]['floor_p50']:.2f}"),
        row(f"page {DEPTH:,} deep: API p50 (ms)",
            lambda r: f"{r['rows'][f'page {DEPTH:,} deep']['api_p50']:.2f}"),
        row("worst filter p99 / first page p50 (API)",
            lambda r: f"{max(v['api_p99'] for v in r['rows'].values()) / r['rows'][first]['api_p50']:.2f}"),
        row("pages/s, 1 / 2 workers (median of 3 runs)",
            lambda r: f"{r['pages_per_s_1']:,.0f} / {r['pages_per_s_2']:,.0f}"),
        row("ingest, batches of 500, the cases above in order: 1 worker (calls/s)",
            lambda r: ingest_rate(r, 1)),
        row("ingest, the same: 2 workers, 2 in flight (calls/s)", lambda r: ingest_rate(r, 2)),
    ]  # fmt: skip


def main() -> None:
    sizes = Sizes(total=CALLS, big=BIG)
    cluster = PostgresCluster(DATA / "pg").start() if "postgresql" in BACKENDS else None
    # Coordinator and two workers on this machine; kept, as the PostgreSQL cluster is.
    citus = CitusCluster(DATA / "citus", shard_count=32).start() if "citus" in BACKENDS else None
    try:
        builder = None
        later: list[list[str]] = []
        urls: dict[str, str] = {}
        for name, kept in (("postgresql", cluster), ("citus", citus)):
            if kept is None:
                continue
            sizes_name = cache_name(name, sizes)
            database = sizes_name.replace("-", "_")
            urls[name] = kept.url(database)
            if not (DATA / f"{sizes_name}.json").exists():
                kept.drop_database(database)  # a build that was cut short
                kept.create_database(database)
                build = [sys.executable, "-m", "bench.data", urls[name], str(CALLS), str(BIG), name]
                if name == "postgresql":
                    # Built by a second process while this one builds SQLite's (6 and 7.5
                    # minutes side by side on 2 cores), so that a first run stays within its
                    # 15 minutes.
                    builder = subprocess.Popen(build)
                else:  # Citus's after them, on its own
                    later.append(build)
        results = []
        if "sqlite" in BACKENDS:
            log("sqlite: data set")
            sqlite_data = build_sqlite(sizes)
        if builder is not None and builder.wait() != 0:
            raise RuntimeError("building the PostgreSQL data set failed")
        for build in later:
            log(f"{build[-1]}: data set")
            subprocess.run(build, check=True)
        if "sqlite" in BACKENDS:
            results.append(bench(sqlite_data))
        for name, url in urls.items():
            log(f"{name}: data set")
            data = build_postgres(sizes, url, backend=name)
            data.url = url
            results.append(bench(data))
    finally:
        for kept in (cluster, citus):
            if kept is not None:
                kept.stop()
    if ONLY:
        print(msgspec.json.format(msgspec.json.encode(results)).decode())
        return
    text = table(results)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
