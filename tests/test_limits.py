"""Per-key rate limits: a burst, then resource_exhausted with Retry-After; other keys unaffected.
Failed authentications throttled per address; keys that expire, listed with their last use."""

from __future__ import annotations

import time
from typing import Any

from callhistory.kit.config import Settings
from tests.harness import Api, ServerThread, Tenant, cli_json, new_tenant, run_sql
from tests.test_ingest_freeswitch import missed_call, post
from tests.test_pbx_accounts import _pbx


def test_rate_limit_per_key(database_url: str, tenant: Tenant) -> None:
    settings = Settings(
        database_url=database_url, access_log=False, rate_limit_per_second=0.5, rate_limit_burst=3
    )
    with ServerThread(settings) as running:
        api = Api(running.base_url)
        try:
            for _ in range(3):
                api.ok("ListCallLogs", {}, tenant.read)
            response = api.call("ListCallLogs", {}, tenant.read)
            assert response.status_code == 429
            assert response.json()["code"] == "resource_exhausted"
            assert int(response.headers["retry-after"]) >= 1
            api.ok("ListCallLogs", {}, tenant.admin)  # another key has its own bucket
        finally:
            api.close()


def test_failed_authentications_are_throttled_per_address(
    database_url: str, tenant: Tenant
) -> None:
    settings = Settings(database_url=database_url, access_log=False, auth_failures_per_minute=5)
    with ServerThread(settings) as running:
        api = Api(running.base_url)
        try:
            for guess in range(5):
                assert api.call("ListCallLogs", {}, f"ch_guess{guess}").status_code == 401
            throttled = api.call("ListCallLogs", {}, "ch_guess5")
            assert throttled.status_code == 429
            assert throttled.json()["code"] == "resource_exhausted"
            assert int(throttled.headers["retry-after"]) >= 1
            # Until the address has failures to spend again, not even a good key is looked at,
            # and neither are a PBX's Basic credentials.
            assert api.call("ListCallLogs", {}, tenant.read).status_code == 429
            basic = api.http.post(
                "/ingest/freeswitch", content=b"{}", auth=("fs", "pbx_" + "x" * 43)
            )
            assert basic.status_code == 429
        finally:
            api.close()


def test_keys_expire_and_are_listed_with_their_last_use(api: Api, database_url: str) -> None:
    tenant = new_tenant(database_url)
    expiring = cli_json(
        "key", "create", "--tenant", tenant.id, "--expires-in-days", "1", "--database", database_url
    )
    assert expiring["expires_at"] is not None
    api.ok("ListCallLogs", {}, expiring["key"])

    def listed() -> dict[str, Any]:
        keys = cli_json("key", "list", "--tenant", tenant.id, "--database", database_url)
        assert tenant.read not in str(keys) and expiring["key"] not in str(keys)
        return {k["id"]: k for k in keys}

    deadline = time.monotonic() + 5
    while listed()[expiring["id"]]["last_used_at"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listed()[expiring["id"]]["last_used_at"] is not None
    assert listed()[tenant.key_ids["admin"]]["last_used_at"] is None
    assert set(listed()) == set(tenant.key_ids.values()) | {expiring["id"]}

    # A day later (the clock cannot be moved from outside: the expiry is moved instead).
    run_sql(
        database_url, "UPDATE api_keys SET expires_at = 1 WHERE id = :id", id=int(expiring["id"])
    )
    answer = api.call("ListCallLogs", {}, expiring["key"])
    assert answer.status_code == 401
    assert "expired" in answer.json()["msg"]
    api.ok("ListCallLogs", {}, tenant.read)


def test_freeswitch_posts_are_rate_limited_per_pbx_and_per_key(
    database_url: str, tenant: Tenant
) -> None:
    """The FreeSWITCH endpoint is admitted like every request: a PBX's credentials and a
    tenant's ingest key each have their own bucket."""
    settings = Settings(
        database_url=database_url, access_log=False, rate_limit_per_second=0.5, rate_limit_burst=2
    )
    name, secret = _pbx(database_url, tenant)

    with ServerThread(settings) as running:
        api = Api(running.base_url)
        try:
            for _ in range(2):
                assert post(api, secret, missed_call(), user=name).status_code == 200
            limited = post(api, secret, missed_call(), user=name)
            assert limited.status_code == 429, limited.text
            assert limited.json()["code"] == "resource_exhausted"
            assert int(limited.headers["retry-after"]) >= 1
            for _ in range(2):  # the tenant's ingest key is another bucket
                assert post(api, tenant.ingest, missed_call()).status_code == 200
            assert post(api, tenant.ingest, missed_call()).status_code == 429
        finally:
            api.close()
