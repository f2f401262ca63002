"""Per-key rate limits: a burst, then resource_exhausted with Retry-After; other keys unaffected."""

from __future__ import annotations

from callhistory.config import Settings
from tests.harness import Api, ServerThread, Tenant


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
