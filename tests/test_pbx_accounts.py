"""PBX credentials and routing, probed as a hostile tenant and a careless operator would: a PBX
writes only for the tenants it serves, only the operator's routing numbers and the PBX's own
domains pick the tenant, and nothing a tenant can register moves another tenant's calls."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from typer.testing import CliRunner

from callhistory.cli import app
from tests.harness import Api, Tenant, cli, cli_json, new_tenant
from tests.test_ingest_freeswitch import calls, missed_call, post


def _number() -> str:
    return f"028{secrets.randbelow(10**8):08d}"


def _cdr(*, destination: str, domain: str) -> dict[str, Any]:
    return missed_call(destination=destination, domain=domain)


def _pbx(database_url: str, *tenants: Tenant) -> tuple[str, str]:
    name = f"fs-{secrets.token_hex(4)}"
    args = [a for t in tenants for a in ("--tenant", t.id)]
    created = cli_json("pbx", "create", name, *args, "--database", database_url)
    assert created["credentials"] == f"{name}:{created['secret']}"
    return name, created["secret"]


def test_a_pbx_routes_by_its_domains_then_the_operators_numbers(
    api: Api, database_url: str
) -> None:
    domain = f"shop{secrets.token_hex(3)}.example.vn"
    by_domain = new_tenant(database_url, domain=domain)
    by_number = new_tenant(database_url)
    name, secret = _pbx(database_url, by_domain, by_number)
    number = _number()
    cli("pbx", "route", "add", number, "--tenant", by_number.id, "--database", database_url)

    assert post(api, secret, _cdr(destination="19006868", domain=domain), user=name).is_success
    routed = _cdr(destination=number, domain="unknown.example.vn")
    assert post(api, secret, routed, user=name).is_success
    nowhere = post(api, secret, _cdr(destination=_number(), domain="unknown.example.vn"), user=name)
    assert nowhere.status_code == 400, nowhere.text
    assert nowhere.json()["meta"]["field"] == "variables.domain_name"
    assert len(calls(api, by_domain)) == 1 and len(calls(api, by_number)) == 1


def test_a_pbx_cannot_write_for_a_tenant_it_does_not_serve(api: Api, database_url: str) -> None:
    served = new_tenant(database_url)
    other_domain = f"other{secrets.token_hex(3)}.example.vn"
    other = new_tenant(database_url, domain=other_domain)
    other_number = _number()
    cli("pbx", "route", "add", other_number, "--tenant", other.id, "--database", database_url)
    name, secret = _pbx(database_url, served)

    by_domain = post(api, secret, _cdr(destination="19006868", domain=other_domain), user=name)
    by_number = post(api, secret, _cdr(destination=other_number, domain=""), user=name)
    assert (by_domain.status_code, by_number.status_code) == (403, 403)
    assert calls(api, other) == [] and calls(api, served) == []
    # A PBX serving one tenant needs neither domain nor route for that tenant's own calls.
    assert post(api, secret, _cdr(destination=_number(), domain=""), user=name).is_success
    assert len(calls(api, served)) == 1


def test_hotline_squatting_moves_no_calls(api: Api, database_url: str) -> None:
    """Tenant B registers, as hotlines, the numbers tenants A and C receive calls on."""
    a_domain = f"a{secrets.token_hex(3)}.example.vn"
    a, b, c = (
        new_tenant(database_url, domain=a_domain),
        new_tenant(database_url),
        new_tenant(database_url),
    )
    c_number, a_number = _number(), _number()
    cli("pbx", "route", "add", c_number, "--tenant", c.id, "--database", database_url)
    name, secret = _pbx(database_url, a, b, c)
    for number in (c_number, a_number):
        api.ok("CreateHotline", {"hotline": number}, b.admin)

    assert post(api, secret, _cdr(destination=c_number, domain=""), user=name).is_success
    assert post(api, secret, _cdr(destination=a_number, domain=a_domain), user=name).is_success
    assert calls(api, b) == []
    assert len(calls(api, c)) == 1 and len(calls(api, a)) == 1
    # Nor can B take the number over: a routing number belongs to one tenant.
    taken = CliRunner().invoke(
        app, ["pbx", "route", "add", c_number, "--tenant", b.id, "--database", database_url]
    )
    assert taken.exit_code == 1
    assert f"already routes to tenant {c.id}" in taken.output


def test_wrong_rotated_and_revoked_pbx_secrets(api: Api, database_url: str) -> None:
    tenant = new_tenant(database_url)
    name, old = _pbx(database_url, tenant)
    cdr = _cdr(destination=_number(), domain="")
    assert post(api, "pbx_" + secrets.token_urlsafe(32), cdr, user=name).status_code == 401
    assert post(api, old, cdr, user="someone-else").status_code == 401

    new = cli_json("pbx", "rotate", name, "--database", database_url)["secret"]
    assert post(api, old, cdr, user=name).is_success  # the grace period
    assert post(api, new, cdr, user=name).is_success
    listed = {p["name"]: p for p in cli_json("pbx", "list", "--database", database_url)}
    assert listed[name]["previous_secret_until"] is not None
    assert listed[name]["tenant_ids"] == [tenant.id]

    newer = cli_json("pbx", "rotate", name, "--grace-hours", "0", "--database", database_url)
    assert post(api, new, cdr, user=name).status_code == 401
    assert post(api, newer["secret"], cdr, user=name).is_success

    cli("pbx", "revoke", name, "--database", database_url)
    assert post(api, newer["secret"], cdr, user=name).status_code == 401
    assert len(calls(api, tenant)) == 1


def test_binding_and_unbinding_tenants(api: Api, database_url: str) -> None:
    first, second = new_tenant(database_url), new_tenant(database_url)
    name, secret = _pbx(database_url, first)
    number = _number()
    cli("pbx", "route", "add", number, "--tenant", second.id, "--database", database_url)
    cdr = _cdr(destination=number, domain="")
    assert post(api, secret, cdr, user=name).status_code == 403
    cli("pbx", "add-tenant", name, second.id, "--database", database_url)
    assert post(api, secret, cdr, user=name).is_success
    cli("pbx", "remove-tenant", name, second.id, "--database", database_url)
    assert post(api, secret, _cdr(destination=number, domain=""), user=name).status_code == 403
    assert len(calls(api, second)) == 1
    routes = cli_json("pbx", "route", "list", "--database", database_url)
    assert {"number": number, "tenant_id": second.id} in [
        {"number": r["number"], "tenant_id": r["tenant_id"]} for r in routes
    ]
    cli("pbx", "route", "remove", number, "--database", database_url)
    routes = cli_json("pbx", "route", "list", "--database", database_url)
    assert number not in {r["number"] for r in routes}


def test_the_old_shared_password_setting_is_refused(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLHISTORY_PBX_CREDENTIALS", "freeswitch:s3cret")
    result = CliRunner().invoke(app, ["key", "list", "--database", database_url])
    assert result.exit_code == 2
    assert "CALLHISTORY_PBX_CREDENTIALS" in result.output
    assert "callhistory pbx create" in result.output
