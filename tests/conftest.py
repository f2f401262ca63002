"""Fixtures: a database built by the Alembic migrations, served by a real server on loopback.

Every store-touching test runs once per backend: SQLite (a temp file), PostgreSQL (a
throwaway cluster started here, or ``CALLHISTORY_TEST_POSTGRES_URL``) and Citus (a coordinator
and two workers started here; tests marked ``only_on("postgresql")`` run on it too). Tests stay
independent by working in a tenant of their own (tenant isolation is the product's core
guarantee, so this also exercises it).
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from callhistory.kit.config import Settings
from tests import scope_check
from tests.harness import Api, ServerThread, Tenant, new_tenant
from tests.pgserver import CitusCluster, PostgresCluster

BACKENDS = os.environ.get("CALLHISTORY_TEST_BACKENDS", "sqlite,postgresql,citus").split(",")
Cluster = PostgresCluster | CitusCluster


@pytest.fixture(scope="session", autouse=True)
def scoped_queries_only() -> Iterator[None]:
    scope_check.install()
    yield
    assert not scope_check.violations, scope_check.violations


C = TypeVar("C", PostgresCluster, CitusCluster)


def _running(cluster: C | None) -> Iterator[C | None]:
    """A session's own server: started, handed out, stopped at the end (None: not wanted)."""
    if cluster is None:
        yield None
        return
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster | None]:
    wanted = "postgresql" in BACKENDS and not os.environ.get("CALLHISTORY_TEST_POSTGRES_URL")
    yield from _running(PostgresCluster() if wanted else None)


@pytest.fixture(scope="session")
def citus() -> Iterator[CitusCluster | None]:
    yield from _running(CitusCluster() if "citus" in BACKENDS else None)


@pytest.fixture(scope="session")
def clusters(
    postgres: PostgresCluster | None, citus: CitusCluster | None
) -> dict[str, Cluster | None]:
    """The tests' own server of each PostgreSQL backend, by backend name."""
    return {"postgresql": postgres, "citus": citus}


def backend_of(request: pytest.FixtureRequest) -> str:
    """The backend the requesting test runs on (its ``database_url`` parameter)."""
    callspec = getattr(request.node, "callspec", None)
    return str(callspec.params["database_url"]) if callspec else "sqlite"


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend the test runs on: sqlite, postgresql or citus."""
    return backend_of(request)


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    clusters: dict[str, Cluster | None],
) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'callhistory.db'}"
    cluster = clusters[request.param]
    if cluster is None:
        return os.environ["CALLHISTORY_TEST_POSTGRES_URL"]
    return cluster.create_database("callhistory")


@pytest.fixture(scope="session")
def server(database_url: str) -> Iterator[ServerThread]:
    # The suite drives single keys far harder, and fails to authenticate from one address far
    # more often, than anyone would; tests/test_limits.py checks those limits on servers of its
    # own. Webhooks are sent by tests/test_webhooks.py's server, whose settings let them reach
    # loopback: every deliverer of a store shares its deliveries.
    settings = Settings(
        database_url=database_url,
        deliver=False,
        access_log=False,
        max_body_bytes=1024 * 1024,
        rate_limit_per_second=0,
        auth_failures_per_minute=0,
    )
    with ServerThread(settings) as running:
        yield running


@pytest.fixture(scope="session")
def api(server: ServerThread) -> Iterator[Api]:
    client = Api(server.base_url)
    yield client
    client.http.close()


@pytest.fixture
def tenant(database_url: str, server: ServerThread) -> Tenant:
    return new_tenant(database_url)


@pytest.fixture
def fresh_database_url(
    database_url: str,
    tmp_path: Path,
    clusters: dict[str, Cluster | None],
    request: pytest.FixtureRequest,
) -> str:
    """An empty database of the same backend, for tests that change every tenant's data."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    cluster = clusters[backend_of(request)]
    if cluster is None:
        pytest.skip("needs the throwaway cluster to create a database")
    name = "fresh_" + "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:50].lower()
    return cluster.create_database(name)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``only_on(backend)`` are not collected for the other backends (Citus counts
    as PostgreSQL): a skip in the report then always means something is missing (a server, the
    CDR corpus)."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("only_on")
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("database_url") if callspec else None
        family = {backend, "postgresql"} if backend == "citus" else {backend}
        (dropped if marker and backend and not family & set(marker.args) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Let fixtures see whether the test failed (the browser tests save a screenshot then)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
