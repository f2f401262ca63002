"""A throwaway PostgreSQL cluster for the tests: initdb into a temp dir, a free loopback port,
pg_ctl start/stop. Needs the Debian ``postgresql-15`` package (``.ci/run`` installs it)."""

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

    def __init__(self, directory: Path | None = None) -> None:
        self._keep = directory is not None
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory or Path(tempfile.mkdtemp(prefix="callhistory-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
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
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
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
