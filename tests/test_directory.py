"""Directory methods in eTelecom shapes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import Api, Tenant, run_sql


def test_create_and_list_extensions(api: Api, tenant: Tenant) -> None:
    hotline = api.ok(
        "CreateHotline",
        {"hotline": "02873001234", "name": "Main", "network": "viettel"},
        tenant.admin,
    )
    assert hotline["status"] == "P" and hotline["network"] == "viettel"
    user = api.ok(
        "CreateUser", {"full_name": "Trần Thảo", "email": "thao@example.vn"}, tenant.admin
    )
    ext = api.ok(
        "CreateExtension",
        {"extension_number": 101, "hotline_id": hotline["id"], "user_id": user["id"]},
        tenant.admin,
    )
    assert ext["extension_number"] == "101"
    assert ext["tenant_id"] == tenant.id
    assert len(ext["extension_password"]) >= 12
    assert ext["state"] == "P" and ext["expires_at"] is None
    assert set(ext) == {
        "id",
        "extension_number",
        "extension_password",
        "hotline_id",
        "user_id",
        "tenant_id",
        "tenant_domain",
        "account_id",
        "subscription_id",
        "state",
        "created_at",
        "updated_at",
        "expires_at",
    }
    listed = api.ok("GetExtensions", {}, tenant.admin)
    assert listed["extensions"] == [ext]
    assert listed["paging"]["sort"] == "-created_at"
    # The SIP password is for admin keys only (eTelecom shows it to every key).
    for key in (tenant.read, tenant.ingest):
        seen = api.ok("GetExtensions", {}, key)["extensions"]
        assert seen == [{**ext, "extension_password": ""}]


def _execute(database_url: str, sql: str, **params: Any) -> list[str]:
    return [str(row[0]) for row in run_sql(database_url, sql, **params)]


def _stored_passwords(database_url: str, tenant_id: str) -> list[str]:
    return _execute(
        database_url,
        "SELECT extension_password FROM extensions WHERE tenant_id = :t",
        t=int(tenant_id),
    )


def test_sip_passwords_are_stored_sealed(api: Api, tenant: Tenant, database_url: str) -> None:
    ext = api.ok("CreateExtension", {"extension_number": 150}, tenant.admin)
    (stored,) = _stored_passwords(database_url, tenant.id)
    assert ext["extension_password"] and ext["extension_password"] not in stored
    assert stored.startswith("s1:")


def test_sealed_passwords_survive_the_data_key_rotation(database_url: str) -> None:
    """Created under one CALLHISTORY_DATA_KEY; served, and sealed anew, under the next one
    (the old listed after it); a legacy clear password is sealed when the service starts."""
    from callhistory.kit.config import Settings
    from callhistory.kit.sealing import new_key
    from tests.harness import ServerThread, new_tenant

    tenant = new_tenant(database_url)
    first, second = new_key(), new_key()

    def serve(data_key: str) -> ServerThread:
        return ServerThread(
            Settings(database_url=database_url, access_log=False, data_key=data_key)
        )

    with serve(first) as running:
        api = Api(running.base_url)
        ext = api.ok("CreateExtension", {"extension_number": 160}, tenant.admin)
        api.close()
    before = _stored_passwords(database_url, tenant.id)
    with serve(f"{second},{first}") as running:
        api = Api(running.base_url)
        (listed,) = api.ok("GetExtensions", {}, tenant.admin)["extensions"]
        api.close()
    assert listed["extension_password"] == ext["extension_password"]
    after = _stored_passwords(database_url, tenant.id)
    assert after != before and after[0].startswith("s1:")
    with serve(second) as running:  # the first key retired: the password was sealed anew
        api = Api(running.base_url)
        (listed,) = api.ok("GetExtensions", {}, tenant.admin)["extensions"]
        api.close()
    assert listed["extension_password"] == ext["extension_password"]

    _execute(
        database_url,
        "UPDATE extensions SET extension_password = 'clear-0001' WHERE tenant_id = :t",
        t=int(tenant.id),
    )
    with serve(second) as running:
        api = Api(running.base_url)
        (listed,) = api.ok("GetExtensions", {}, tenant.admin)["extensions"]
        api.close()
    assert listed["extension_password"] == "clear-0001"
    (stored,) = _stored_passwords(database_url, tenant.id)
    assert stored.startswith("s1:") and "clear-0001" not in stored


def test_extension_number_is_unique_per_tenant(api: Api, tenant: Tenant) -> None:
    api.ok("CreateExtension", {"extension_number": 200}, tenant.admin)
    envelope = api.error(
        "CreateExtension", {"extension_number": "200"}, tenant.admin, 409, "already_exists"
    )
    assert envelope["meta"]["field"] == "extension_number"


def test_assign_and_remove_user(api: Api, tenant: Tenant) -> None:
    user = api.ok("CreateUser", {"full_name": "A"}, tenant.admin)
    ext = api.ok("CreateExtension", {"extension_number": 300}, tenant.admin)
    assigned = api.ok(
        "AssignUserToExtension", {"extension_id": ext["id"], "user_id": user["id"]}, tenant.admin
    )
    assert assigned["user_id"] == user["id"]
    removed = api.ok("RemoveUserOfExtension", {"extension_id": ext["id"]}, tenant.admin)
    assert removed["user_id"] == ""
    api.error("RemoveUserOfExtension", {"extension_id": "12345"}, tenant.admin, 404, "not_found")


def test_users_in_departments_and_paging(api: Api, tenant: Tenant) -> None:
    dept = api.ok("CreateDepartment", {"name": "Care"}, tenant.admin)
    made = [
        api.ok("CreateUser", {"full_name": f"U{i}", "department_id": dept["id"]}, tenant.admin)
        for i in range(5)
    ]
    first = api.ok("GetUsers", {"paging": {"limit": 2}}, tenant.read)
    second = api.ok(
        "GetUsers", {"paging": {"limit": 2, "after": first["paging"]["next"]}}, tenant.read
    )
    third = api.ok(
        "GetUsers", {"paging": {"limit": 2, "after": second["paging"]["next"]}}, tenant.read
    )
    got = [u["id"] for page in (first, second, third) for u in page["users"]]
    assert got == [u["id"] for u in reversed(made)]
    assert third["paging"]["next"] == "" and third["paging"]["prev"] != ""
    assert all(u["department_id"] == dept["id"] for u in third["users"])
    assert api.ok("GetDepartments", {}, tenant.read)["departments"] == [dept]


def test_create_validation(api: Api, tenant: Tenant) -> None:
    assert (
        api.error("CreateHotline", {"hotline": "call me"}, tenant.admin, 400, "invalid_argument")[
            "meta"
        ]["field"]
        == "hotline"
    )
    assert (
        api.error(
            "CreateExtension", {"extension_number": "12a"}, tenant.admin, 400, "invalid_argument"
        )["meta"]["field"]
        == "extension_number"
    )
    assert (
        api.error("CreateDepartment", {"name": ""}, tenant.admin, 400, "invalid_argument")["meta"][
            "field"
        ]
        == "name"
    )
    assert (
        api.error(
            "GetHotlines", {"paging": {"sort": "-started_at"}}, tenant.read, 400, "invalid_argument"
        )["meta"]["field"]
        == "paging.sort"
    )
    assert api.ok("GetHotlines", {}, tenant.read)["hotlines"] == []


def test_a_damaged_sealed_password_is_shown_empty_not_a_500(
    api: Api, tenant: Tenant, database_url: str
) -> None:
    api.ok("CreateExtension", {"extension_number": 170}, tenant.admin)
    (stored,) = _stored_passwords(database_url, tenant.id)
    damaged = stored.rsplit(":", 1)[0] + ":@@not base64@@"
    run_sql(database_url, "UPDATE extensions SET extension_password = :p WHERE tenant_id = :t",
            p=damaged, t=int(tenant.id))  # fmt: skip
    (listed,) = api.ok("GetExtensions", {}, tenant.admin)["extensions"]
    assert listed["extension_password"] == ""


def test_a_bad_data_key_is_refused_naming_its_variable(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from callhistory.cli import app

    monkeypatch.setenv("CALLHISTORY_DATA_KEY", "too-short")
    result = CliRunner().invoke(app, ["key", "list", "--database", database_url])
    assert result.exit_code == 2
    assert "CALLHISTORY_DATA_KEY" in result.output
