"""Throwaway PostgreSQL servers for the tests: initdb into a temp dir, a free loopback port,
pg_ctl start/stop. Needs the Debian ``postgresql-15`` package (``.ci/run`` installs it), and
for ``CitusCluster`` the Citus extension (``../shared/vendor/citus/build.sh``; ``.ci/run``
runs it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.harness import free_port

BIN = Path(os.environ.get("CALLHISTORY_PG_BIN", "/usr/lib/postgresql/15/bin"))


class PostgresCluster:
    """A cluster in a temp dir (removed on stop), or in ``directory`` (kept, reused if there)."""

    def __init__(self, directory: Path | None = None, *, settings: str = "") -> None:
        self._keep = directory is not None
        self._settings = settings  # more ``-c name=value`` server options
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory or Path(tempfile.mkdtemp(prefix="callhistory-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        if self._keep:  # a kept cluster keeps its port (Citus's metadata names the workers' ports)
            kept = self.dir / "port"
            self.port = int(kept.read_text()) if kept.exists() else self.port
            kept.write_text(str(self.port))
        self._as_postgres = os.geteuid() == 0  # initdb refuses to run as root

    def _run(self, *args: str) -> None:
        command = [str(BIN / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresCluster:
        if not (BIN / "initdb").exists():
            raise RuntimeError(
                f"PostgreSQL 15 is not installed ({BIN}): apt-get install postgresql-15"
            )
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        if not (self.data / "PG_VERSION").exists():
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            )
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
            + self._settings
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )
        return self

    def restart(self) -> None:
        """Stop and start the server (its data kept), as an operator's restart would."""
        log = str(self.dir / "log")
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-l", log, "-w", "restart")

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def sql(self, database: str, statement: str) -> str:
        """Run one statement with psql; its output, unaligned and without headers."""
        command = [str(BIN / "psql"), "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"]
        command += ["-p", str(self.port), "-U", "postgres", "-d", database, "-c", statement]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
        return done.stdout.strip()

    def drop_database(self, name: str) -> None:
        self._run(
            "dropdb", "--if-exists", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name
        )

    def stop(self) -> None:
        try:
            self._run(
                "pg_ctl",
                "-D",
                str(self.data),
                "-m",
                "fast" if self._keep else "immediate",
                "-w",
                "stop",
            )
        finally:
            if not self._keep:
                shutil.rmtree(self.dir, ignore_errors=True)


# Each node loads Citus; logical decoding lets shards move while they are written (the
# rebalancer's default transfer mode).
_CITUS = (
    "-c shared_preload_libraries=citus -c wal_level=logical -c max_replication_slots=20 "
    "-c max_wal_senders=20"
)


def _trusted_output_plugins() -> str:
    """Shard moves and splits decode WAL with Citus's own output plugins; PostgreSQL releases
    since 15.20 use only the plugins ``output_plugin_libraries`` names."""
    described = subprocess.run(
        [str(BIN / "postgres"), "--describe-config"], capture_output=True, text=True, timeout=60
    ).stdout
    if "output_plugin_libraries" not in described:
        return ""
    return " -c output_plugin_libraries=pgoutput,citus,citus_decoders/pgoutput"


class CitusCluster:
    """A Citus coordinator and ``workers`` workers, each a ``PostgresCluster`` on loopback
    (in temp dirs, or kept in ``directory``).

    ``create_database`` creates the database on every node, the extension in each, and
    registers the workers with the coordinator; its URL is the coordinator's, as an operator
    points the service at it."""

    def __init__(
        self, directory: Path | None = None, *, workers: int = 2, shard_count: int = 4
    ) -> None:
        # The tests' four shards per table: two per worker, and few tables to create for every
        # test database (Citus's default is 32).
        settings = f"{_CITUS} -c citus.shard_count={shard_count}" + _trusted_output_plugins()

        def node(name: str) -> PostgresCluster:
            return PostgresCluster(directory / name if directory else None, settings=settings)

        self.coordinator = node("coordinator")
        self.workers = [node(f"worker{i + 1}") for i in range(workers)]
        self.port = self.coordinator.port

    @property
    def nodes(self) -> list[PostgresCluster]:
        return [self.coordinator, *self.workers]

    def start(self) -> CitusCluster:
        if not (BIN.parent / "lib" / "citus.so").exists():
            raise RuntimeError(
                "the Citus extension is not installed: bash ../shared/vendor/citus/build.sh"
            )
        started: list[PostgresCluster] = []
        try:
            for node in self.nodes:
                started.append(node.start())
        except BaseException:
            for node in started:
                node.stop()
            raise
        return self

    def url(self, database: str) -> str:
        return self.coordinator.url(database)

    def create_database(self, name: str) -> str:
        for node in self.nodes:
            node.create_database(name)
            node.sql(name, "CREATE EXTENSION citus")
        self.coordinator.sql(
            name, f"SELECT citus_set_coordinator_host('127.0.0.1', {self.coordinator.port})"
        )
        for worker in self.workers:
            self.coordinator.sql(name, f"SELECT citus_add_node('127.0.0.1', {worker.port})")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        for node in self.nodes:
            node.drop_database(name)

    def sql(self, database: str, statement: str) -> str:
        return self.coordinator.sql(database, statement)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
