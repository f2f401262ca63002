"""Directory methods in eTelecom shapes."""

from __future__ import annotations

from tests.harness import Api, Tenant


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
    listed = api.ok("GetExtensions", {}, tenant.read)
    assert listed["extensions"] == [ext]
    assert listed["paging"]["sort"] == "-created_at"


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
