"""The ``callhistory`` command: serve, migrate, tenants, keys, demo data."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import msgspec
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db import citus, partitions
from callhistory.db.backend import backend
from callhistory.db.engine import Database as Store
from callhistory.db.engine import open_database, transaction
from callhistory.db.migrate import schema_state, upgrade
from callhistory.db.nodes import NodeLease
from callhistory.db.partitions import RetentionBlocked
from callhistory.db.work import unit_of_work
from callhistory.demo import create_demo
from callhistory.ingest import files
from callhistory.ingest import service as ingest
from callhistory.ingest.files import ImportReport
from callhistory.keys import service as keys
from callhistory.keys.schemas import TenantStatus
from callhistory.kit.config import DEFAULT_DATABASE_URL, ConfigError, Settings
from callhistory.kit.errors import ApiError, InvalidArgument
from callhistory.kit.ids import parse_id
from callhistory.kit.sealing import parse_keys
from callhistory.kit.times import valid_zone, zone
from callhistory.principal import Scope
from callhistory.recording_sync import Syncer, SyncReport
from callhistory.recordings import service as recording_service
from callhistory.recordings import storage
from callhistory.recordings.storage import Storage
from callhistory.retention import service as retention
from callhistory.rollups import service as rollups
from callhistory.webhooks import schemas as webhook_schemas
from callhistory.webhooks import service as webhooks
from callhistory.webhooks.delivery import Deliverer
from callhistory.webhooks.guard import allow_list

T = TypeVar("T")
app = typer.Typer(
    help="Multi-tenant call history with the eTelecom ListCallLogs API.", no_args_is_help=True
)
tenant_app = typer.Typer(
    help="Create and suspend tenants; on Citus, see and isolate their shards.",
    no_args_is_help=True,
)
key_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
pbx_app = typer.Typer(
    help="PBX credentials (one per PBX, for the tenants it serves) and routing numbers.",
    no_args_is_help=True,
)
route_app = typer.Typer(
    help="Numbers that route a PBX's CDRs to a tenant when no domain does.",
    no_args_is_help=True,
)
app.add_typer(tenant_app, name="tenant")
app.add_typer(key_app, name="key")
app.add_typer(pbx_app, name="pbx")
pbx_app.add_typer(route_app, name="route")
console = Console()
err = Console(stderr=True)

Database = Annotated[
    str,
    typer.Option(
        "--database",
        envvar="CALLHISTORY_DATABASE_URL",
        help="Database URL: sqlite:///FILE or postgresql://USER:PASS@HOST/DB.",
        show_envvar=True,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.", metavar="")]


def _settings(database: str) -> Settings:
    settings = Settings.from_env(database_url=database)
    if settings.database_url.startswith("sqlite:///"):
        folder = Path(settings.database_url.removeprefix("sqlite:///")).parent
        if not folder.is_dir():
            raise ConfigError(
                f"--database / CALLHISTORY_DATABASE_URL: the folder {folder} does not exist"
            )
    parse_keys(settings.data_key)  # refused here, with its variable named, not at start-up
    allow_list(settings.webhook_allow)
    storage.check(settings)
    return settings


def _recordings_store(settings: Settings) -> Storage:
    """The store recordings commands work on; refused in one line where there is none."""
    store = storage.open_storage(settings)
    if store is None:
        raise ConfigError(
            "CALLHISTORY_RECORDINGS_URL: no recordings store is configured for PostgreSQL"
        )
    return store


def _run(database: str, work: Callable[[Store], Awaitable[T]], *, migrate: bool = False) -> T:
    """Run ``work`` against the database (migrated first when ``migrate``; otherwise it must
    already be at the latest schema), turning API errors into exit code 1."""

    async def main() -> T:
        db = open_database(_settings(database))
        try:
            if migrate:
                await upgrade(db.writer)
                if await rollups.build_pending(db):
                    err.print("statistics built from the stored calls (once, after upgrading)")
            else:
                current, head = await schema_state(db.writer)
                if current != head:
                    at = f"at revision {current}" if current else "empty"
                    raise ConfigError(
                        f"the database is {at}, not at the latest schema ({head}): run "
                        "`callhistory migrate` with the same --database first"
                    )
            async with transaction(db, write=True) as conn:
                await partitions.create_ahead(conn)
            async with NodeLease(db):
                return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except ApiError as error:
        _fail(error.code, error.msg, 1)
    except Exception as error:  # the one place expected failures become a line, not a traceback
        known = _expected_failure(error)
        if _State.debug or known is None:
            raise
        _fail(*known)


def _in_transaction(database: str, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    async def run(db: Store) -> T:
        async with transaction(db, write=True) as conn:
            return await work(conn)

    return _run(database, run)


def _print(value: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(msgspec.json.encode(value).decode())
    else:
        for name, item in msgspec.structs.asdict(value).items():
            console.print(f"[bold]{name}[/bold]: {item}")


def _id_argument(value: str, name: str) -> int:
    try:
        parsed = parse_id(value, name)
    except ApiError as error:
        raise typer.BadParameter(error.msg) from None
    if parsed is None:
        raise typer.BadParameter(f"{name} is required")
    return parsed


@app.command()
def serve(
    database: Database = DEFAULT_DATABASE_URL,
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on. [env var: CALLHISTORY_HOST] [default: 127.0.0.1]"),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port to listen on. [env var: CALLHISTORY_PORT] [default: 8080]"),
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the API (migrating the database first)."""
    from callhistory.http.server import uvicorn_arguments  # uvicorn stays out of the other commands

    os.environ["CALLHISTORY_DATABASE_URL"] = database
    # Settings are read (and a bad CALLHISTORY_PORT reported) as for every command, by _run.
    _run(database, lambda _db: asyncio.sleep(0), migrate=True)  # once, before any worker starts
    settings = Settings.from_env(host=host, port=port)
    host, port = settings.host, settings.port
    # This process becomes uvicorn itself, so what the CLI and the migration loaded (Typer,
    # Rich, Alembic) does not stay resident beside the workers.
    sys.stdout.flush()
    os.execv(  # noqa: S606 - this interpreter, fixed arguments, no shell
        sys.executable,
        [
            sys.executable,
            "-m",
            "uvicorn",
            "callhistory.app:from_env",
            "--factory",
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
            *uvicorn_arguments(Settings.from_env()),
        ],
    )


@app.command()
def migrate(database: Database = DEFAULT_DATABASE_URL) -> None:
    """Bring the database schema to the latest version."""
    _run(database, lambda _db: asyncio.sleep(0), migrate=True)
    console.print("database is at the latest schema")


@tenant_app.command("create")
def tenant_create(
    name: Annotated[str, typer.Option(help="The tenant's name.")],
    timezone: Annotated[
        str, typer.Option(help="IANA time zone for dates.")
    ] = keys.DEFAULT_TIMEZONE,
    domain: Annotated[str, typer.Option(help="The tenant's PBX domain.")] = "",
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """Create a tenant and print it with its id."""
    tenant = _in_transaction(
        database, lambda conn: keys.create_tenant(conn, name=name, timezone=timezone, domain=domain)
    )
    _print(tenant, as_json)


class TenantStatusChange(msgspec.Struct):
    id: str
    status: str


def _set_status(tenant_id: str, status: TenantStatus, database: str, as_json: bool) -> None:
    tid = _id_argument(tenant_id, "TENANT_ID")
    _in_transaction(
        database, lambda conn: keys.update_tenant_status(conn, tenant_id=tid, status=status)
    )
    if as_json:
        _print(TenantStatusChange(id=str(tid), status=status.value), as_json)
    else:
        console.print(f"tenant {tid} is {status.value}")


@tenant_app.command("suspend")
def tenant_suspend(
    tenant_id: str, database: Database = DEFAULT_DATABASE_URL, as_json: Json = False
) -> None:
    """Suspend a tenant: its keys get permission_denied."""
    _set_status(tenant_id, TenantStatus.SUSPENDED, database, as_json)


@tenant_app.command("resume")
def tenant_resume(
    tenant_id: str, database: Database = DEFAULT_DATABASE_URL, as_json: Json = False
) -> None:
    """Make a suspended tenant active again."""
    _set_status(tenant_id, TenantStatus.ACTIVE, database, as_json)


def _tenant_placement(tenant_id: str, database: str, *, isolate: bool) -> citus.Placement:
    tid = _id_argument(tenant_id, "TENANT_ID")

    async def work(db: Store) -> citus.Placement:
        async with transaction(db, write=False) as conn:
            await keys.require_tenant(conn, tenant_id=tid)
        async with db.writer.connect() as raw:
            conn = await raw.execution_options(isolation_level="AUTOCOMMIT")
            if not backend(conn).sharded:
                raise ConfigError(
                    "the database is not distributed (no citus extension): tenants have "
                    "shards only on Citus (docs/scaling.md)"
                )
            if isolate:
                return await citus.isolate(conn, tid)
            return await citus.placement_of(conn, tid)

    return _run(database, work)


class TenantPlacement(msgspec.Struct):
    tenant_id: str
    shard: int
    node: str
    alone: bool


def _print_placement(placement: citus.Placement, as_json: bool) -> None:
    if as_json:
        shown = TenantPlacement(**{**placement._asdict(), "tenant_id": str(placement.tenant_id)})
        typer.echo(msgspec.json.encode(shown).decode())
        return
    holds = "this tenant only" if placement.alone else "other tenants too"
    console.print(
        f"tenant {placement.tenant_id}: shard {placement.shard} on {placement.node} (holds {holds})"
    )


@tenant_app.command("where")
def tenant_where(
    tenant_id: str, database: Database = DEFAULT_DATABASE_URL, as_json: Json = False
) -> None:
    """Citus: the shard and worker that hold a tenant's calls (and all its other rows)."""
    _print_placement(_tenant_placement(tenant_id, database, isolate=False), as_json)


@tenant_app.command("isolate")
def tenant_isolate(
    tenant_id: str, database: Database = DEFAULT_DATABASE_URL, as_json: Json = False
) -> None:
    """Citus: give a large tenant shards of its own, so it can be moved to a worker of its
    own; reads and writes go on meanwhile (docs/scaling.md)."""
    _print_placement(_tenant_placement(tenant_id, database, isolate=True), as_json)


@key_app.command("create")
def key_create(
    tenant: Annotated[str, typer.Option(help="The tenant's id.")],
    scope: Annotated[Scope, typer.Option(help="What the key may do.")] = Scope.READ,
    expires_in_days: Annotated[
        int | None, typer.Option(min=1, help="Stop working after so many days (default: never).")
    ] = None,
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """Create an API key; the key itself is shown only here."""
    tenant_id = _id_argument(tenant, "--tenant")
    created = _in_transaction(
        database,
        lambda conn: keys.create_key(
            conn, tenant_id=tenant_id, scope=scope, expires_in_days=expires_in_days
        ),
    )
    _print(created, as_json)


@key_app.command("list")
def key_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """List keys (never their secrets): scope, creation, expiry, last use (to the minute)."""
    tenant_id = _id_argument(tenant, "--tenant") if tenant is not None else None
    found = _in_transaction(database, lambda conn: keys.list_keys(conn, tenant_id=tenant_id))
    _print_rows(found, as_json)


def _print_rows(rows: list[Any], as_json: bool) -> None:
    if as_json:
        typer.echo(msgspec.json.encode(rows).decode())
        return
    if not rows:
        console.print("(none)")
        return
    table = Table(*msgspec.structs.asdict(rows[0]).keys(), box=None)
    for row in rows:
        table.add_row(*(_cell(v) for v in msgspec.structs.asdict(row).values()))
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


@pbx_app.command("create")
def pbx_create(
    name: Annotated[str, typer.Argument(help="The PBX's name, its user name in mod_json_cdr.")],
    tenant: Annotated[list[str], typer.Option(help="A tenant it serves (repeat for more).")],
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """Give a PBX its own credentials; the secret is shown only here."""
    tenant_ids = [_id_argument(t, "--tenant") for t in tenant]
    created = _in_transaction(
        database, lambda conn: keys.create_pbx(conn, name=name, tenant_ids=tenant_ids)
    )
    _print(created, as_json)


@pbx_app.command("list")
def pbx_list(database: Database = DEFAULT_DATABASE_URL, as_json: Json = False) -> None:
    """List PBXs and the tenants each serves."""
    _print_rows(_in_transaction(database, lambda conn: keys.list_pbxes(conn)), as_json)


@pbx_app.command("rotate")
def pbx_rotate(
    name: str,
    grace_hours: Annotated[
        int, typer.Option(min=0, help="Hours the current secret keeps working.")
    ] = keys.ROTATION_GRACE_HOURS,
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """Give a PBX a new secret (shown only here)."""
    rotated = _in_transaction(
        database, lambda conn: keys.rotate_pbx(conn, name=name, grace_hours=grace_hours)
    )
    _print(rotated, as_json)


@pbx_app.command("revoke")
def pbx_revoke(name: str, database: Database = DEFAULT_DATABASE_URL, as_json: Json = False) -> None:
    """Stop a PBX's credentials at once."""
    _print(_in_transaction(database, lambda conn: keys.revoke_pbx(conn, name=name)), as_json)


@pbx_app.command("add-tenant")
def pbx_add_tenant(
    name: str, tenant: str, database: Database = DEFAULT_DATABASE_URL, as_json: Json = False
) -> None:
    """Let a PBX write CDRs for one more tenant."""
    tid = _id_argument(tenant, "TENANT")
    bound = _in_transaction(
        database, lambda conn: keys.create_pbx_tenant(conn, name=name, tenant_id=tid)
    )
    _print(bound, as_json)


@pbx_app.command("remove-tenant")
def pbx_remove_tenant(
    name: str, tenant: str, database: Database = DEFAULT_DATABASE_URL, as_json: Json = False
) -> None:
    """Stop a PBX writing CDRs for a tenant."""
    tid = _id_argument(tenant, "TENANT")
    unbound = _in_transaction(
        database, lambda conn: keys.delete_pbx_tenant(conn, name=name, tenant_id=tid)
    )
    _print(unbound, as_json)


@route_app.command("add")
def route_add(
    number: str,
    tenant: Annotated[str, typer.Option(help="The tenant the number's calls belong to.")],
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """Route CDRs of calls that came in on NUMBER to a tenant (one tenant per number)."""
    tid = _id_argument(tenant, "--tenant")
    added = _in_transaction(
        database, lambda conn: keys.create_route(conn, number=number, tenant_id=tid)
    )
    _print(added, as_json)


@route_app.command("remove")
def route_remove(number: str, database: Database = DEFAULT_DATABASE_URL) -> None:
    """Stop routing NUMBER."""
    _in_transaction(database, lambda conn: keys.delete_route(conn, number=number))
    console.print(f"{number} routes nowhere now")


@route_app.command("list")
def route_list(database: Database = DEFAULT_DATABASE_URL, as_json: Json = False) -> None:
    """List routing numbers and their tenants."""
    _print_rows(_in_transaction(database, lambda conn: keys.list_routes(conn)), as_json)


@key_app.command("revoke")
def key_revoke(
    key_id: str, database: Database = DEFAULT_DATABASE_URL, as_json: Json = False
) -> None:
    """Revoke an API key by its id."""
    kid = _id_argument(key_id, "KEY_ID")
    _print(_in_transaction(database, lambda conn: keys.revoke_key(conn, key_id=kid)), as_json)


@app.command()
def demo(
    calls: Annotated[int, typer.Option(min=0, max=10_000_000, help="How many calls.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    save_key: Annotated[
        Path | None, typer.Option(help="Also write the read key to this file (mode 600).")
    ] = None,
    save_keys: Annotated[
        Path | None,
        typer.Option(
            help="Also write the tenant id and every key, as shell variables, to this file "
            "(mode 600)."
        ),
    ] = None,
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """Create a demo tenant with a directory and CALLS calls over 90 days; print its keys."""
    columns = (TextColumn("calls"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, disable=as_json) as bar:
        task = bar.add_task("calls", total=calls)
        result = _run(
            database,
            lambda db: create_demo(
                db,
                calls=calls,
                seed=seed,
                data_key=_settings(database).data_key,
                progress=lambda n: bar.advance(task, n),
            ),
        )
    if save_key is not None:
        read_key = next(k.key for k in result.keys if k.scope is Scope.READ)
        _write_secret(save_key, read_key + "\n")
    if save_keys is not None:
        lines = [f"CALLHISTORY_DEMO_TENANT={result.tenant.id}"] + [
            f"CALLHISTORY_DEMO_{made.scope.value.upper()}_KEY={made.key}" for made in result.keys
        ]
        _write_secret(save_keys, "\n".join(lines) + "\n")
    if as_json:
        typer.echo(msgspec.json.encode(result).decode())
        return
    console.print(f"demo tenant [bold]{result.tenant.id}[/bold] with {result.calls} calls")
    for made in result.keys:
        console.print(f"  {made.scope.value:>6} key: {made.key}")


def _write_secret(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read, whatever mode it had before."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


retention_app = typer.Typer(help="Remove old calls.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")


def _days(text: str) -> int:
    if not (text.endswith("d") and text[:-1].isdigit() and int(text[:-1]) > 0):
        raise typer.BadParameter("give a number of days such as 400d")
    return int(text[:-1])


@retention_app.command("apply")
def retention_apply(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Age of the calls to remove, in days: 400d.")
    ],
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """Remove every tenant's calls that started longer ago than --older-than."""
    days = _days(older_than)
    try:
        store = storage.open_storage(_settings(database))
        removed = _run(
            database,
            lambda db: retention.apply_retention(db, older_than_days=days, storage=store),
        )
    except RetentionBlocked as error:
        _fail("unavailable", str(error), 1)
    if as_json:
        typer.echo(msgspec.json.encode({"removed": removed}).decode())
    else:
        console.print(f"removed {removed} calls that started more than {days} days ago")


import_app = typer.Typer(help="Import CDR files into a tenant.", no_args_is_help=True)
app.add_typer(import_app, name="import")
TenantOption = Annotated[str, typer.Option("--tenant", help="The tenant's id.")]
FileArgument = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The file to import.")
]


def _import(
    path: Path,
    tenant: str,
    database: str,
    as_json: bool,
    run: Callable[[Store, int, Callable[[int], None]], Awaitable[ImportReport]],
    *,
    size: int | None = None,
    where: Callable[[int], str] | None = None,
) -> None:
    tenant_id = _id_argument(tenant, "--tenant")
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, disable=as_json) as bar:
        task = bar.add_task(path.name, total=path.stat().st_size if size is None else size)
        report = _run(database, lambda db: run(db, tenant_id, lambda n: bar.advance(task, n)))
    for line, reason in report.rejected:
        typer.echo(f"{where(line) if where else f'{path}:{line}'}: rejected: {reason}", err=True)
    if as_json:
        typer.echo(
            msgspec.json.encode(
                msgspec.structs.asdict(
                    ImportSummary(
                        imported=report.imported,
                        updated=report.updated,
                        unchanged=report.unchanged,
                        rejected=len(report.rejected),
                    )
                )
            ).decode()
        )
    else:
        console.print(
            f"imported {report.imported}, updated {report.updated}, "
            f"unchanged {report.unchanged}, rejected {len(report.rejected)}"
        )
    if report.rejected:
        raise typer.Exit(1)


class ImportSummary(msgspec.Struct):
    imported: int
    updated: int
    unchanged: int
    rejected: int


@import_app.command("asterisk-csv")
def import_asterisk_csv(
    file: FileArgument,
    tenant: TenantOption,
    timezone: Annotated[
        str,
        typer.Option(help="Zone of the file's times; default the tenant's (UTC with usegmtime)."),
    ] = "",
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """Import an Asterisk cdr_csv Master.csv (or cdr_custom with the sample mapping)."""

    async def run(db: Store, tenant_id: int, progress: Callable[[int], None]) -> ImportReport:
        async with transaction(db, write=False) as conn:
            zone_name = (
                timezone or (await keys.tenant_principal(conn, tenant_id=tenant_id)).timezone
            )
        if not valid_zone(zone_name):
            raise InvalidArgument("timezone", f"unknown time zone {zone_name!r}")
        records = files.asterisk_records(file, tz=zone_name, progress=progress)
        return await files.run_import(db, tenant_id=tenant_id, records=records, store=files.LEGS)

    _import(file, tenant, database, as_json, run)


@import_app.command("freeswitch-dir")
def import_freeswitch_dir(
    directory: Annotated[
        Path,
        typer.Argument(
            exists=True,
            file_okay=False,
            readable=True,
            help="mod_json_cdr's log-dir or err-log-dir.",
        ),
    ],
    tenant: TenantOption,
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """Import the JSON CDR files FreeSWITCH wrote to a directory (a backfill after downtime)."""
    paths = files.freeswitch_files(directory)

    async def run(db: Store, tenant_id: int, progress: Callable[[int], None]) -> ImportReport:
        records = files.freeswitch_records(paths, progress=progress)
        return await files.run_import(db, tenant_id=tenant_id, records=records, store=files.LEGS)

    _import(
        directory,
        tenant,
        database,
        as_json,
        run,
        size=sum(path.stat().st_size for path in paths),
        where=lambda number: str(paths[number - 1]),
    )


@import_app.command("jsonl")
def import_jsonl(
    file: FileArgument,
    tenant: TenantOption,
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """Import JSON Lines, one IngestCallLogs item per line."""

    async def run(db: Store, tenant_id: int, progress: Callable[[int], None]) -> ImportReport:
        records = files.jsonl_records(file, progress=progress)
        return await files.run_import(db, tenant_id=tenant_id, records=records, store=files.ITEMS)

    _import(file, tenant, database, as_json, run)


class _State:
    debug = False
    as_json = False


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"callhistory {package_version('callhistory')}")
        raise typer.Exit()


@app.callback()
def _global_options(
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show the traceback of an unexpected failure.", metavar=""),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            is_eager=True,
            callback=_print_version,
            metavar="",
        ),
    ] = False,
) -> None:
    _State.debug = debug


def _fail(code: str, msg: str, exit_code: int) -> NoReturn:
    """One line on stderr (a JSON object on stdout under --json), then the exit code: 2 for
    what the operator must fix in the command or its settings, 1 for failures."""
    if _State.as_json:
        typer.echo(msgspec.json.encode({"error": {"code": code, "msg": msg}}).decode())
    else:
        err.print(f"[red]error[/red] ({code}): {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(exit_code)


def _expected_failure(error: BaseException) -> tuple[str, str, int] | None:
    """(code, message, exit code) of a failure an operator should read as one line."""
    if isinstance(error, ConfigError):
        return "config", str(error), 2
    if isinstance(error, (sa_exc.ArgumentError, sa_exc.NoSuchModuleError)):
        return "config", f"--database / CALLHISTORY_DATABASE_URL: not a database URL ({error})", 2
    if isinstance(error, sa_exc.DBAPIError):
        reason = str(error.orig) if error.orig is not None else str(error)
        return "unavailable", f"the database cannot be used: {_first_line(reason)}", 1
    if isinstance(error, (OSError, TimeoutError)):
        return "unavailable", f"the database cannot be reached: {_first_line(str(error))}", 1
    return None


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


def main() -> None:
    _State.as_json = "--json" in sys.argv
    app()


@app.command()
def erase(
    tenant: TenantOption,
    number: Annotated[
        str, typer.Option(help="Erase every call with this number as caller or callee.")
    ] = "",
    call_id: Annotated[
        list[str] | None, typer.Option("--id", help="Erase this call (repeatable).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be erased.", metavar="")
    ] = False,
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """Erase a tenant's calls (a customer's request to be forgotten): by --number, in any
    written form, or by --id. Erased calls leave every method, appear in the change feed as
    deletions, and are not stored again when a PBX delivers the same CDR."""
    tenant_id = _id_argument(tenant, "--tenant")
    ids = [_id_argument(value, "--id") for value in call_id or []]
    if bool(ids) == bool(number):
        raise typer.BadParameter("give exactly one of --number and --id")

    async def run(db: Store) -> int:
        async with unit_of_work(db, write=True) as work:
            principal = await keys.tenant_principal(work.read, tenant_id=tenant_id)
            return await ingest.erase_call_logs(
                work, principal=principal, ids=ids, number=number, dry_run=dry_run
            )

    count = _run(database, run)
    if as_json:
        typer.echo(msgspec.json.encode({"deleted": count, "dry_run": dry_run}).decode())
    elif dry_run:
        console.print(f"{count} calls would be erased (dry run: nothing erased)")
    else:
        console.print(f"erased {count} calls")


@app.command()
def export(
    tenant: TenantOption,
    output: Annotated[Path, typer.Argument(help="The file to write (- for standard output).")],
    file_format: Annotated[
        str, typer.Option("--format", help="csv or jsonl (the ListCallLogs shape).")
    ] = "csv",
    filter_json: Annotated[
        str,
        typer.Option("--filter", help='A ListCallLogs filter as JSON: \'{"direction": "in"}\'.'),
    ] = "",
    utc: Annotated[
        bool,
        typer.Option("--utc", help="CSV times in UTC (default: the tenant's zone).", metavar=""),
    ] = False,
    bom: Annotated[
        bool,
        typer.Option("--bom", help="Start the CSV with a UTF-8 BOM (for Excel).", metavar=""),
    ] = False,
    database: Database = DEFAULT_DATABASE_URL,
) -> None:
    """Export a tenant's calls, newest first, as GET /v1/export/call_logs.{csv,jsonl} does."""
    from callhistory.calllogs import export as formats
    from callhistory.calllogs import service as calllogs
    from callhistory.http.export import export_chunks

    tenant_id = _id_argument(tenant, "--tenant")
    if file_format not in ("csv", "jsonl"):
        raise typer.BadParameter("csv or jsonl", param_hint="--format")
    try:
        wanted = msgspec.json.decode(filter_json) if filter_json else None
        body = {"filter": wanted, "times": "utc" if utc else "local", "bom": bom}
        options = formats.parse_options(msgspec.json.encode(body), [])
    except msgspec.DecodeError:
        raise typer.BadParameter("not JSON", param_hint="--filter") from None
    except ApiError as error:
        field = error.meta.get("field", "")
        raise typer.BadParameter(f"{field}: {error.msg}", param_hint="--filter") from None

    async def run(db: Store) -> int:
        async with unit_of_work(db, write=False) as work:
            principal = await keys.tenant_principal(work.read, tenant_id=tenant_id)
            query = await calllogs.export_query(
                work.read, principal=principal, filter=options.filter
            )
        # No address to link to from here: recordings as the PBX wrote them.
        chunks = export_chunks(db, principal=principal, query=query, timeout_s=600, linker=None)
        written = 0

        async def counted() -> AsyncIterator[list[bytes]]:
            nonlocal written
            async for docs in chunks:
                written += len(docs)
                bar.update(task, completed=written)
                yield docs

        local = None if utc else zone(principal.timezone)
        stream = (
            formats.csv_rows(counted(), local, bom)
            if file_format == "csv"
            else formats.jsonl(counted())
        )
        if str(output) == "-":
            async for part in stream:
                sys.stdout.buffer.write(part)
            sys.stdout.buffer.flush()
            return written
        with output.open("wb") as out:
            async for part in stream:
                out.write(part)
        return written

    with Progress(TextColumn("calls"), MofNCompleteColumn(), console=err) as bar:
        task = bar.add_task("calls", total=None)
        count = _run(database, run)
    err.print(f"exported {count} calls to {output}")


@app.command()
def stats(
    tenant: TenantOption,
    group_by: Annotated[
        str,
        typer.Option(
            "--group-by",
            help="One or two of day, hour, weekday, extension, user, department, hotline, "
            "direction, comma-separated.",
        ),
    ],
    date_from: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD).")] = "",
    date_to: Annotated[str, typer.Option("--to", help="Last day (YYYY-MM-DD).")] = "",
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """Call statistics of a tenant, as GetCallStats counts them (docs/stats.md)."""
    from callhistory.calllogs import service as calllogs
    from callhistory.calllogs.schemas import GetCallStatsRequest

    tenant_id = _id_argument(tenant, "--tenant")
    body = {
        "group_by": [part.strip() for part in group_by.split(",") if part.strip()],
        "filter": {"date_from": date_from, "date_to": date_to},
    }
    try:
        request = msgspec.convert(body, GetCallStatsRequest)
    except msgspec.ValidationError as exc:
        raise typer.BadParameter(str(exc), param_hint="--group-by") from None

    async def run(db: Store) -> Any:
        async with unit_of_work(db, write=False) as work:
            principal = await keys.tenant_principal(work.read, tenant_id=tenant_id)
            return await calllogs.get_call_stats(work.read, principal=principal, request=request)

    answer = _run(database, run)
    if as_json:
        typer.echo(msgspec.json.encode(answer).decode())
        return
    key_columns = [Column(name, no_wrap=True, min_width=10) for name in request.group_by]
    table = Table(
        *key_columns, "calls", "answered", "missed", "rate", "abandoned", "avg wait", "p90 wait",
        "talk", box=None,
    )  # fmt: skip
    for bucket in answer.buckets:
        table.add_row(
            *(bucket.key[name] for name in request.group_by),
            str(bucket.calls),
            str(bucket.answered),
            str(bucket.missed),
            f"{bucket.answer_rate:.0%}",
            str(bucket.abandoned),
            "" if bucket.avg_time_to_answer is None else f"{bucket.avg_time_to_answer:.1f} s",
            "" if bucket.p90_time_to_answer is None else f"{bucket.p90_time_to_answer:.1f} s",
            f"{bucket.talk_time} s",
        )
    console.print(f"times in {answer.timezone}")
    console.print(table)


webhook_app = typer.Typer(
    help="A tenant's webhook endpoints and their deliveries (docs/webhooks.md).",
    no_args_is_help=True,
)
app.add_typer(webhook_app, name="webhook")
EventOption = Annotated[
    list[str] | None,
    typer.Option(
        "--event", help="call_log.created, .updated or .deleted (repeatable; default: all)."
    ),
]


def _as_tenant(
    database: str, tenant: str, work: Callable[[AsyncConnection, Any, Settings, Any], Awaitable[T]]
) -> T:
    """Run ``work(conn, principal, settings, sealer)`` as the tenant, in one transaction."""
    tenant_id = _id_argument(tenant, "--tenant")

    async def run(db: Store) -> T:
        settings = _settings(database)  # read (and refused in one line) inside _run
        async with transaction(db, write=True) as conn:
            principal = await keys.tenant_principal(conn, tenant_id=tenant_id)
            sealer = await keys.sealer(conn, configured=settings.data_key)
            return await work(conn, principal, settings, sealer)

    return _run(database, run)


def _events(values: list[str] | None) -> list[Any]:
    try:
        return msgspec.convert(values or [], list[webhook_schemas.EventType])
    except msgspec.ValidationError:
        raise typer.BadParameter(
            f"--event: each must be one of {', '.join(webhook_schemas.EVENT_TYPES)}"
        ) from None


@webhook_app.command("create")
def webhook_create(
    url: Annotated[str, typer.Argument(help="https URL that receives the events.")],
    tenant: TenantOption,
    event: EventOption = None,
    description: Annotated[str, typer.Option(help="A note for people.")] = "",
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """Add an endpoint; its signing secret is printed this once."""
    request = webhook_schemas.EndpointCreate(
        url=url, events=_events(event), description=description
    )
    made = _as_tenant(
        database,
        tenant,
        lambda conn, principal, settings, sealer: webhooks.create_endpoint(
            conn,
            principal=principal,
            request=request,
            sealer=sealer,
            allow=allow_list(settings.webhook_allow),
        ),
    )
    if as_json:
        typer.echo(msgspec.json.encode(made).decode())
        return
    _print(made.endpoint, False)
    console.print(f"[bold]secret[/bold]: {made.secret}  (shown once: give it to the receiver)")


@webhook_app.command("list")
def webhook_list(
    tenant: TenantOption, database: Database = DEFAULT_DATABASE_URL, as_json: Json = False
) -> None:
    """The tenant's endpoints (never their secrets)."""
    found = _as_tenant(
        database,
        tenant,
        lambda conn, principal, *_: webhooks.list_endpoints(conn, principal=principal),
    )
    _print_rows(found, as_json)


@webhook_app.command("update")
def webhook_update(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id.")],
    tenant: TenantOption,
    url: Annotated[str | None, typer.Option(help="A new URL.")] = None,
    event: EventOption = None,
    description: Annotated[str | None, typer.Option(help="A new note.")] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Send to it, or stop.")
    ] = None,
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """Change an endpoint, or enable one the service disabled after failures."""
    request = webhook_schemas.EndpointUpdate(
        id=endpoint_id,
        url=url,
        events=_events(event) if event else None,
        description=description,
        enabled=enabled,
    )
    updated = _as_tenant(
        database,
        tenant,
        lambda conn, principal, settings, _: webhooks.update_endpoint(
            conn, principal=principal, request=request, allow=allow_list(settings.webhook_allow)
        ),
    )
    _print(updated, as_json)


@webhook_app.command("delete")
def webhook_delete(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id.")],
    tenant: TenantOption,
    database: Database = DEFAULT_DATABASE_URL,
) -> None:
    """Remove an endpoint and its deliveries."""
    _as_tenant(
        database,
        tenant,
        lambda conn, principal, *_: webhooks.delete_endpoint(
            conn, principal=principal, endpoint_id=endpoint_id
        ),
    )
    console.print(f"deleted webhook endpoint {endpoint_id}")


@webhook_app.command("rotate-secret")
def webhook_rotate(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id.")],
    tenant: TenantOption,
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """A new signing secret (printed once); the old one also signs for 24 hours."""
    rotated = _as_tenant(
        database,
        tenant,
        lambda conn, principal, _, sealer: webhooks.rotate_secret(
            conn, principal=principal, endpoint_id=endpoint_id, sealer=sealer
        ),
    )
    _print(rotated, as_json)


@webhook_app.command("deliveries")
def webhook_deliveries(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id.")],
    tenant: TenantOption,
    state: Annotated[str, typer.Option(help="pending, succeeded or failed.")] = "",
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """An endpoint's latest deliveries and their attempts."""
    try:
        request = msgspec.convert(
            {"endpoint_id": endpoint_id, "state": state, "paging": {"limit": limit}},
            webhook_schemas.DeliveriesRequest,
        )
    except msgspec.ValidationError as error:
        raise typer.BadParameter(str(error)) from None

    async def work(conn: AsyncConnection, principal: Any, _: Settings, __: Any) -> Any:
        secret = await keys.cursor_secret(conn)
        return await webhooks.list_deliveries(
            conn, principal=principal, request=request, secret=secret
        )

    found = _as_tenant(database, tenant, work)
    if as_json:
        typer.echo(msgspec.json.encode(found.deliveries).decode())
        return
    if not found.deliveries:
        console.print("(none)")
    for d in found.deliveries:
        tries = ", ".join(f"{a.response_code or '-'} {a.error}".strip() for a in d.attempts)
        console.print(f"{d.id} {d.event_type} call {d.call_id} {d.state} [{tries}]")


@webhook_app.command("retry")
def webhook_retry(
    delivery_id: Annotated[str, typer.Argument(help="The delivery's id.")],
    tenant: TenantOption,
    database: Database = DEFAULT_DATABASE_URL,
) -> None:
    """Send a delivery again now (a failed one is retried as a new one)."""
    _as_tenant(
        database,
        tenant,
        lambda conn, principal, *_: webhooks.retry_delivery(
            conn, principal=principal, delivery_id=delivery_id
        ),
    )
    console.print(f"delivery {delivery_id} will be sent again")


@app.command()
def deliver(
    once: Annotated[
        bool,
        typer.Option(
            "--once", help="Send what is due, then exit (else: until stopped).", metavar=""
        ),
    ] = False,
    database: Database = DEFAULT_DATABASE_URL,
) -> None:
    """Send webhook deliveries (beside `serve` run with CALLHISTORY_DELIVER=false, or as
    more delivery workers); stops cleanly on SIGTERM or Ctrl-C."""

    async def run(db: Store) -> int:
        settings = _settings(database)  # read (and refused in one line) inside _run
        async with transaction(db, write=False) as conn:
            sealer = await keys.sealer(conn, configured=settings.data_key)
            secret = await keys.cursor_secret(conn)
        deliverer = Deliverer(db, settings, sealer, cursor_secret=secret)
        if once:
            return await deliverer.drain()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signal_number, stop.set)
        await deliverer.run(stop)
        return deliverer.sent

    sent = _run(database, run)
    console.print(f"{sent} delivery attempts made")


recordings_app = typer.Typer(
    help="Recordings kept for calls (docs/recordings.md).", no_args_is_help=True
)
app.add_typer(recordings_app, name="recordings")


class SyncSummary(msgspec.Struct):
    uploaded: int
    present: int
    unmatched: int


@recordings_app.command("sync")
def recordings_sync(
    directory: Annotated[
        Path,
        typer.Argument(
            exists=True, file_okay=False, readable=True, help="Where the PBX writes recordings."
        ),
    ],
    tenant: TenantOption,
    watch: Annotated[
        bool,
        typer.Option("--watch", help="Keep looking for new files until stopped.", metavar=""),
    ] = False,
    every: Annotated[
        float, typer.Option("--every", help="Seconds between looks with --watch.", min=0.1)
    ] = 10.0,
    since: Annotated[
        str,
        typer.Option(
            "--since",
            help="Match among calls started since this day (YYYY-MM-DD), whatever the files' "
            "times (files copied from elsewhere).",
        ),
    ] = "",
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """Upload the directory's recording files, each matched to its call; files uploaded
    before are skipped, so it can be run again (or from cron) at any time."""
    tenant_id = _id_argument(tenant, "--tenant")
    try:
        day = dt.date.fromisoformat(since) if since else None
    except ValueError:
        raise typer.BadParameter("a day such as 2025-05-01", param_hint="--since") from None
    start = None
    if day is not None:
        start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1e6)

    async def run(db: Store) -> SyncReport:
        settings = _settings(database)
        store = _recordings_store(settings)
        async with transaction(db, write=False) as conn:
            principal = await keys.tenant_principal(conn, tenant_id=tenant_id)
        syncer = Syncer(db, store, principal, settings, directory, since=start)
        total = SyncReport()
        stop = asyncio.Event()
        if watch:
            loop = asyncio.get_running_loop()
            for signal_number in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signal_number, stop.set)
        while True:
            files = syncer.pending()
            columns = (TextColumn("recordings"), BarColumn(), DownloadColumn())
            quiet = as_json or (watch and not files)
            with Progress(*columns, console=err, disable=quiet) as bar:
                task = bar.add_task("", total=sum(path.stat().st_size for path in files))
                report = await syncer.run(files, partial(bar.advance, task))
            for path, why in report.unmatched:
                typer.echo(f"{path}: not uploaded: {why}", err=True)
            total.uploaded += report.uploaded
            total.present += report.present
            total.unmatched = report.unmatched
            if not watch:
                return total
            if report.uploaded:
                console.print(f"uploaded {report.uploaded}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)
            if stop.is_set():
                return total

    report = _run(database, run)
    summary = SyncSummary(
        uploaded=report.uploaded, present=report.present, unmatched=len(report.unmatched)
    )
    if as_json:
        typer.echo(msgspec.json.encode(summary).decode())
    else:
        console.print(
            f"uploaded {summary.uploaded}, already there {summary.present}, "
            f"not matched {summary.unmatched}"
        )


class CheckSummary(msgspec.Struct):
    objects: int
    rows: int
    orphans: int
    missing: int
    deleted: int


@recordings_app.command("check")
def recordings_check(
    delete: Annotated[
        bool,
        typer.Option(
            "--delete",
            help="Delete orphan files (no row knows them) older than --min-age-minutes.",
            metavar="",
        ),
    ] = False,
    min_age_minutes: Annotated[
        int,
        typer.Option(
            "--min-age-minutes",
            help="Orphans younger than this may be uploads under way: left alone.",
            min=0,
        ),
    ] = 60,
    database: Database = DEFAULT_DATABASE_URL,
    as_json: Json = False,
) -> None:
    """Compare the recordings store with the database: files no recording row knows
    (orphans: an upload cut off) and rows whose file is missing. Exit 1 when any is found."""

    async def run(db: Store) -> tuple[CheckSummary, list[str], list[str]]:
        settings = _settings(database)
        found = await recording_service.compare(
            db, _recordings_store(settings), delete=delete, min_age_s=min_age_minutes * 60
        )
        summary = CheckSummary(
            objects=found.objects,
            rows=found.rows,
            orphans=len(found.orphans),
            missing=len(found.missing),
            deleted=found.deleted,
        )
        return summary, found.orphans, found.missing

    summary, orphans, missing = _run(database, run)
    for key in orphans:
        typer.echo(f"{key}: a file no recording row knows (orphan)", err=True)
    for key in missing:
        typer.echo(f"{key}: a recording whose file is missing from the store", err=True)
    if as_json:
        typer.echo(msgspec.json.encode(summary).decode())
    else:
        console.print(
            f"{summary.objects} files, {summary.rows} recordings; {summary.orphans} orphan files"
            f" ({summary.deleted} deleted), {summary.missing} missing files"
        )
    if (orphans and summary.deleted < len(orphans)) or missing:
        raise typer.Exit(1)
