"""Fixtures: a database built by the Alembic migrations, served by a real server on loopback.

Every store-touching test runs once per backend. Tests stay independent by working in a tenant
of their own (tenant isolation is the product's core guarantee, so this also exercises it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from callhistory.config import Settings
from tests.harness import Api, ServerThread, Tenant, new_tenant

BACKENDS = ["sqlite"]


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp(request.param) / "callhistory.db"
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def server(database_url: str) -> Iterator[ServerThread]:
    settings = Settings(database_url=database_url, access_log=False, max_body_bytes=1024 * 1024)
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
