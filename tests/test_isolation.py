"""A key sees only its tenant: foreign ids match nothing, foreign cursors are refused."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dataset import Dataset, build
from tests.harness import Api, Tenant, cli, new_tenant


@pytest.fixture(scope="module")
def two(api: Api, database_url: str) -> tuple[Dataset, Dataset]:
    return (
        build(api, new_tenant(database_url, name="A"), calls=60, seed=3),
        build(api, new_tenant(database_url, name="B"), calls=60, seed=4),
    )


def all_ids(api: Api, key: str, f: dict[str, Any]) -> set[str]:
    return {r["id"] for p in api.walk(key, {"filter": f, "paging": {"limit": 1000}}) for r in p}


def test_each_key_sees_only_its_tenant(api: Api, two: tuple[Dataset, Dataset]) -> None:
    a, b = two
    assert all_ids(api, a.tenant.read, {}) == {c.id for c in a.calls}
    assert all_ids(api, b.tenant.read, {}) == {c.id for c in b.calls}


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_foreign_ids_and_values_match_nothing(
    api: Api, two: tuple[Dataset, Dataset], data: st.DataObject
) -> None:
    a, b = two
    victim = data.draw(st.sampled_from(b.calls))
    probes: list[dict[str, Any]] = [
        {"extension_ids": list(b.extensions)},
        {"hotline_ids": list(b.hotlines)},
        {"user_id": data.draw(st.sampled_from(list(b.user_department)))},
        {"department_id": data.draw(st.sampled_from(b.departments))},
    ]
    probe = data.draw(st.sampled_from(probes))
    assert all_ids(api, a.tenant.read, probe) == set()
    # Values both tenants use (numbers, SDK ids) return only the caller's own calls.
    shared = {"call_number": victim.body["caller"]}
    assert all_ids(api, a.tenant.read, shared) <= {c.id for c in a.calls}


def test_foreign_cursor_is_refused(api: Api, two: tuple[Dataset, Dataset]) -> None:
    a, b = two
    theirs = api.ok("ListCallLogs", {"paging": {"limit": 5}}, b.tenant.read)["paging"]["next"]
    for field in ("after", "before"):
        envelope = api.error(
            "ListCallLogs", {"paging": {field: theirs}}, a.tenant.read, 400, "invalid_argument"
        )
        assert envelope["meta"]["field"] == f"paging.{field}"


def test_edited_cursor_is_refused(api: Api, two: tuple[Dataset, Dataset]) -> None:
    a, _ = two
    cursor = api.ok("ListCallLogs", {"paging": {"limit": 5}}, a.tenant.read)["paging"]["next"]
    for i in range(0, len(cursor), 3):
        edited = cursor[:i] + ("A" if cursor[i] != "A" else "B") + cursor[i + 1 :]
        response = api.call("ListCallLogs", {"paging": {"after": edited}}, a.tenant.read)
        assert response.status_code == 400, edited
        assert response.json()["code"] == "invalid_argument"


def test_directory_of_another_tenant_is_not_found(api: Api, two: tuple[Dataset, Dataset]) -> None:
    a, b = two
    foreign_ext = next(iter(b.extensions))
    foreign_user = next(iter(b.user_department))
    api.error(
        "AssignUserToExtension",
        {"extension_id": foreign_ext, "user_id": next(iter(a.user_department))},
        a.tenant.admin,
        404,
        "not_found",
    )
    api.error(
        "AssignUserToExtension",
        {"extension_id": next(iter(a.extensions)), "user_id": foreign_user},
        a.tenant.admin,
        404,
        "not_found",
    )
    api.error(
        "CreateUser",
        {"full_name": "x", "department_id": b.departments[0]},
        a.tenant.admin,
        404,
        "not_found",
    )
    listed = api.ok("GetExtensions", {"paging": {"limit": 1000}}, a.tenant.read)["extensions"]
    assert {e["id"] for e in listed} == set(a.extensions)


def test_ingest_cannot_reference_another_tenants_records(
    api: Api, two: tuple[Dataset, Dataset]
) -> None:
    a, b = two
    item = {
        "source_id": "x",
        "started_at": "2025-01-01T00:00:00Z",
        "user_id": next(iter(b.user_department)),
    }
    api.error(
        "IngestCallLogs",
        {"call_logs": [item]},
        a.tenant.ingest,
        400,
        "invalid_argument",
        prefix="pbx",
    )


def test_revoked_key_is_unauthenticated(api: Api, tenant: Tenant, database_url: str) -> None:
    api.ok("ListCallLogs", {}, tenant.read)
    cli("key", "revoke", tenant.key_ids["read"], "--database", database_url)
    api.error("ListCallLogs", {}, tenant.read, 401, "unauthenticated")
    api.ok("ListCallLogs", {}, tenant.admin)


def test_suspended_tenant_is_denied_until_resumed(
    api: Api, tenant: Tenant, database_url: str
) -> None:
    cli("tenant", "suspend", tenant.id, "--database", database_url)
    api.error("ListCallLogs", {}, tenant.read, 403, "permission_denied")
    cli("tenant", "resume", tenant.id, "--database", database_url)
    api.ok("ListCallLogs", {}, tenant.read)


@pytest.mark.parametrize(
    "method",
    [
        "CreateHotline",
        "CreateDepartment",
        "CreateUser",
        "CreateExtension",
        "AssignUserToExtension",
        "RemoveUserOfExtension",
    ],
)
def test_directory_writes_need_admin(api: Api, tenant: Tenant, method: str) -> None:
    api.error(method, {}, tenant.read, 403, "permission_denied")
    api.error(method, {}, tenant.ingest, 403, "permission_denied")
