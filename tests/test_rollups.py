"""The statistics kept as calls are written equal a full pass over the stored calls, whatever
happened to the calls: first stored, stored again changed (another day, state, agent, legs),
a B leg arriving late, erased by id or by number, cut by retention. GetCallStats answers from
the kept statistics for whole days with the filters they keep; the same request with a filter
they do not keep (``duration >= 0``: every call) makes it read every call."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.freeswitch import a_leg, b_leg
from tests.harness import Api, Tenant, cli, new_tenant, run_sql
from tests.test_ingest_freeswitch import send

START = dt.datetime(2025, 6, 1, 17, 0, tzinfo=dt.UTC)  # local midnight of June 2 (UTC+7)
DAYS = 6
EVERY_CALL = {"duration": {"comparison": "greater_than_or_equal_to", "value": 0}}
GROUPINGS = [
    ["day"],
    ["hour"],
    ["weekday", "hour"],
    ["day", "extension"],
    ["user"],
    ["direction", "day"],
    ["department"],
    ["hotline", "day"],
    ["user", "direction"],  # not kept: counted call by call both ways
]


def _iso(at: dt.datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _directory(api: Api, tenant: Tenant) -> tuple[list[str], list[str], list[str]]:
    admin = tenant.admin
    department = api.ok("CreateDepartment", {"name": "Sales"}, admin)["id"]
    users = [
        api.ok("CreateUser", {"full_name": f"U{i}", "department_id": department if i else ""},
               admin)["id"]
        for i in range(3)
    ]  # fmt: skip
    hotlines = [api.ok("CreateHotline", {"hotline": h}, admin)["id"] for h in ("19006868", "1800")]
    extensions = [
        api.ok("CreateExtension", {"extension_number": str(300 + i), "user_id": u}, admin)["id"]
        for i, u in enumerate(users)
    ]
    return users, hotlines, extensions


def _call(rng: random.Random, source_id: str, ids: tuple[list[str], ...]) -> dict[str, Any]:
    users, hotlines, extensions = ids
    started = START + dt.timedelta(minutes=rng.randrange(0, DAYS * 24 * 60))
    answered = rng.random() < 0.6
    ring = started + dt.timedelta(seconds=rng.randint(0, 4), milliseconds=rng.randrange(1000))
    targets: list[dict[str, Any]] = []
    if answered:
        wait = dt.timedelta(seconds=rng.randint(1, 45), microseconds=rng.randrange(10**6))
        targets = [{"target_number": "300", "ring_time": _iso(ring),
                    "answered_time": _iso(ring + wait), "status": "answered"}]  # fmt: skip
    elif rng.random() < 0.6:
        status = rng.choice(["cancelled", "no_answer", "busy"])
        targets = [{"target_number": "300", "ring_time": _iso(ring), "status": status}]
    who = rng.randrange(4)
    return {
        "source_id": source_id,
        "started_at": _iso(started),
        "ended_at": _iso(started + dt.timedelta(minutes=2)),
        "caller": rng.choice(["0912345678", "0987654321"]),
        "callee": "0280000000",
        "direction": rng.choice(["in", "in", "ext_in", "out", "ext"]),
        "call_state": "answered" if answered else "not_answered",
        "duration": rng.randint(5, 600) if answered else 0,
        "call_targets": targets,
        **({"extension_id": extensions[who], "user_id": users[who]} if who < 3 else {}),
        **({"hotline_id": rng.choice(hotlines)} if rng.random() < 0.7 else {}),
    }


def _both_ways(api: Api, tenant: Tenant, group_by: list[str], filter_: dict[str, Any]) -> None:
    kept = api.ok("GetCallStats", {"group_by": group_by, "filter": filter_}, tenant.read)
    scanned = api.ok(
        "GetCallStats", {"group_by": group_by, "filter": {**filter_, **EVERY_CALL}}, tenant.read
    )
    assert kept == scanned, group_by


def _check(api: Api, tenant: Tenant) -> None:
    whole = {"date_from": "2025-06-02", "date_to": "2025-06-07"}
    for group_by in GROUPINGS:
        _both_ways(api, tenant, group_by, whole)
    _both_ways(api, tenant, ["day"], {"date_from": "2025-06-03", "date_to": "2025-06-03"})
    _both_ways(api, tenant, ["extension"], {**whole, "direction": "in"})
    _both_ways(api, tenant, ["day", "user"], {**whole, "hotline_ids": []})


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32))
def test_kept_statistics_equal_a_full_pass(api: Api, database_url: str, seed: int) -> None:
    rng = random.Random(seed)
    tenant = new_tenant(database_url, name=f"stats {seed}")
    ids = _directory(api, tenant)
    calls = {f"c{i}": _call(rng, f"c{i}", ids) for i in range(120)}
    api.ingest(tenant.ingest, list(calls.values()))
    _check(api, tenant)
    # Stored again, a third of them changed: other day, state, agent, legs.
    again = [_call(rng, source_id, ids) for source_id in rng.sample(sorted(calls), 40)]
    api.ingest(tenant.ingest, [*again, calls["c0"]])  # and one unchanged
    _check(api, tenant)
    # A FreeSWITCH call whose B leg arrives after its A leg.
    a, b = f"a-{seed}", f"b-{seed}"
    t0 = int(START.timestamp() * 10**6) + 3_600 * 10**6
    send(api, tenant.ingest, a_leg(uuid=a, caller="0912345678", destination="19006868",
         start=t0, answer=t0 + 9 * 10**6, end=t0 + 70 * 10**6, cause="NORMAL_CLEARING",
         b_legs=[(b, "300")]))  # fmt: skip
    _check(api, tenant)
    send(api, tenant.ingest, b_leg(uuid=b, a_uuid=a, caller="0912345678", destination="300",
         start=t0 + 250_000, answer=t0 + 9 * 10**6, end=t0 + 70 * 10**6,
         cause="NORMAL_CLEARING", sip_status="200"))  # fmt: skip
    _check(api, tenant)
    # Erased: some by id, then every call of one number.
    listed = api.walk(tenant.read, {"paging": {"limit": 1000}})
    victims = [call["id"] for page in listed for call in page][:7]
    api.ok("DeleteCallLogs", {"ids": victims}, tenant.admin)
    api.ok("DeleteCallLogs", {"number": "+84987654321"}, tenant.admin)
    _check(api, tenant)


def test_retention_cuts_a_day_in_two_and_the_statistics_follow(api: Api, database_url: str) -> None:
    rng = random.Random(7)
    tenant = new_tenant(database_url, name="retention")
    ids = _directory(api, tenant)
    api.ingest(tenant.ingest, [_call(rng, f"r{i}", ids) for i in range(150)])
    _check(api, tenant)
    # The cutoff falls within June 4th, at the time of day it is now.
    now = dt.datetime.now(dt.UTC)
    cutoff_day = dt.datetime(2025, 6, 4, tzinfo=dt.UTC)
    days = (now - cutoff_day).days
    cli("retention", "apply", "--older-than", f"{days}d", "--database", database_url)
    before = api.ok(
        "GetCallStats",
        {"group_by": ["day"], "filter": {"date_from": "2025-06-02", "date_to": "2025-06-07"}},
        tenant.read,
    )["buckets"]
    assert before[0]["calls"] == 0 and before[-1]["calls"] > 0  # June 2nd is gone, 7th is not
    _check(api, tenant)


def test_a_store_upgraded_with_calls_gets_its_statistics_built(api: Api, database_url: str) -> None:
    """Migration 0009 finds calls and marks the statistics pending: until the next `migrate`
    (or `serve`) builds them from the stored calls, GetCallStats reads the calls."""
    rng = random.Random(11)
    tenant = new_tenant(database_url, name="upgraded")
    ids = _directory(api, tenant)
    api.ingest(tenant.ingest, [_call(rng, f"u{i}", ids) for i in range(80)])
    body = {
        "group_by": ["day", "user"],
        "filter": {"date_from": "2025-06-02", "date_to": "2025-06-07"},
    }
    expected = api.ok("GetCallStats", body, tenant.read)
    # As a store that held calls before 0009 would be: nothing kept, marked pending.
    run_sql(database_url, "DELETE FROM call_stats_days", all_tenants=True)
    run_sql(database_url, "DELETE FROM call_stats_hours", all_tenants=True)
    run_sql(database_url, "UPDATE service_state SET value = 'pending' WHERE name = 'call_stats'")
    assert api.ok("GetCallStats", body, tenant.read) == expected
    cli("migrate", "--database", database_url)
    state = run_sql(database_url, "SELECT value FROM service_state WHERE name = 'call_stats'")
    assert [tuple(row) for row in state] == [("ready",)]
    kept = "SELECT count(*) FROM call_stats_days WHERE tenant_id = :t"
    assert run_sql(database_url, kept, t=int(tenant.id))[0][0] > 0
    assert api.ok("GetCallStats", body, tenant.read) == expected
    _check(api, tenant)


def test_statistics_that_disagree_never_stop_a_write(api: Api, database_url: str) -> None:
    """Kept sums that do not hold a call being erased (damaged by hand here): the erasure
    succeeds, GetCallStats counts calls instead, and the next migrate builds the sums anew."""
    rng = random.Random(5)
    tenant = new_tenant(database_url, name="damaged")
    ids = _directory(api, tenant)
    api.ingest(tenant.ingest, [_call(rng, f"d{i}", ids) for i in range(30)])
    run_sql(database_url, "DELETE FROM call_stats_days WHERE tenant_id = :t", t=int(tenant.id))
    listed = api.walk(tenant.read, {"paging": {"limit": 1000}})
    api.ok("DeleteCallLogs", {"ids": [listed[0][0]["id"]]}, tenant.admin)
    state = run_sql(database_url, "SELECT value FROM service_state WHERE name = 'call_stats'")
    assert [tuple(row) for row in state] == [("pending",)]
    _check(api, tenant)
    cli("migrate", "--database", database_url)
    state = run_sql(database_url, "SELECT value FROM service_state WHERE name = 'call_stats'")
    assert [tuple(row) for row in state] == [("ready",)]
    _check(api, tenant)
