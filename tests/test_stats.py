"""GetCallStats against an independent count of the calls the test itself ingested: the
documented definitions (docs/stats.md) applied to the inputs, in the tenant's time zone."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import random
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from callhistory.cli import app as cli_app
from callhistory.client import Client
from tests.harness import Api, Tenant, cli, new_tenant

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
START = dt.datetime(2025, 6, 1, 17, 0, tzinfo=dt.UTC)  # local midnight of June 2
INBOUND = ("in", "ext_in")


def _iso(at: dt.datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _world(api: Api, tenant: Tenant, seed: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """A directory (users in two departments, one without) and 300 calls over 8 local days,
    many near midnight; the ingested items, and each user's department."""
    rng = random.Random(seed)
    admin = tenant.admin
    departments = [api.ok("CreateDepartment", {"name": n}, admin)["id"] for n in ("A", "B")]
    users = [
        api.ok("CreateUser", {"full_name": f"U{i}", **({"department_id": d} if d else {})}, admin)
        for i, d in enumerate([departments[0], departments[1], ""])
    ]
    hotline = api.ok("CreateHotline", {"hotline": "19006868"}, admin)["id"]
    extensions = [
        api.ok(
            "CreateExtension",
            {"extension_number": str(200 + i), "user_id": user["id"], "hotline_id": hotline},
            admin,
        )["id"]
        for i, user in enumerate(users)
    ]
    items = []
    for i in range(300):
        started = START + dt.timedelta(minutes=rng.randrange(0, 8 * 24 * 60, 13))
        direction = rng.choice(["in", "in", "ext_in", "out", "ext"])
        answered = rng.random() < 0.55
        who = rng.randrange(4)  # 3: nobody's
        ring = started + dt.timedelta(seconds=rng.randint(0, 5))
        targets = []
        if answered:
            wait = rng.randint(1, 40)
            targets = [
                {"target_number": "900", "ring_time": _iso(ring), "status": "no_answer"},
                {
                    "target_number": "901",
                    "ring_time": _iso(ring + dt.timedelta(seconds=2)),
                    "answered_time": _iso(ring + dt.timedelta(seconds=wait)),
                    "status": "answered",
                },
            ]
        elif rng.random() < 0.5:
            status = rng.choice(["cancelled", "no_answer", "busy"])
            targets = [{"target_number": "900", "ring_time": _iso(ring), "status": status}]
        items.append(
            {
                "source_id": f"s{seed}-{i}",
                "started_at": _iso(started),
                "ended_at": _iso(started + dt.timedelta(minutes=3)),
                "caller": "0912345678",
                # Numbers no extension or hotline has, so that ingest attributes nothing.
                "callee": "0280000000",
                "direction": direction,
                "call_state": "answered" if answered else "not_answered",
                "duration": rng.randint(5, 400) if answered else 0,
                "extension_id": extensions[who] if who < 3 else "",
                "user_id": users[who]["id"] if who < 3 else "",
                "hotline_id": hotline if rng.random() < 0.7 else "",
                "call_targets": targets,
            }
        )
    api.ingest(tenant.ingest, items)
    return items, {user["id"]: user["department_id"] for user in users}


def _key(item: dict[str, Any], name: str, departments: dict[str, str]) -> str:
    local = dt.datetime.fromisoformat(item["started_at"]).astimezone(ZONE)
    keys: dict[str, str] = {
        "day": local.date().isoformat(),
        "hour": f"{local.hour:02d}",
        "weekday": str(local.isoweekday()),
        "extension": item["extension_id"],
        "user": item["user_id"],
        "department": departments.get(item["user_id"], ""),
        "hotline": item["hotline_id"],
        "direction": item["direction"],
    }
    return keys[name]


def _expected(
    items: list[dict[str, Any]], group_by: list[str], departments: dict[str, str]
) -> dict[tuple[str, ...], dict[str, Any]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for item in items:
        key = tuple(_key(item, name, departments) for name in group_by)
        groups.setdefault(key, []).append(item)
    out = {}
    for key, calls in groups.items():
        answered = [c for c in calls if c["call_state"] == "answered"]
        waits = sorted(
            (
                dt.datetime.fromisoformat(
                    min(t["answered_time"] for t in c["call_targets"] if "answered_time" in t)
                )
                - dt.datetime.fromisoformat(min(t["ring_time"] for t in c["call_targets"]))
            ).total_seconds()
            for c in answered
        )
        missed = [c for c in calls if c["direction"] in INBOUND and c not in answered]
        talk = sum(c["duration"] for c in answered)
        out[key] = {
            "calls": len(calls),
            "answered": len(answered),
            "missed": len(missed),
            "answer_rate": len(answered) / len(calls),
            "abandoned": sum(
                any(t["status"] == "cancelled" for t in c["call_targets"]) for c in missed
            ),
            "avg_time_to_answer": sum(waits) / len(waits) if waits else None,
            "p90_time_to_answer": waits[math.ceil(0.9 * len(waits)) - 1] if waits else None,
            "talk_time": talk,
            "avg_talk_time": talk / len(answered) if answered else 0.0,
        }
    return out


GROUPINGS = [
    ["day"],
    ["hour"],
    ["weekday"],
    ["department"],
    ["day", "extension"],
    ["weekday", "hour"],
    ["user", "direction"],
    ["hotline", "day"],
]


@pytest.mark.parametrize("group_by", GROUPINGS, ids=["+".join(g) for g in GROUPINGS])
def test_stats_equal_an_independent_count(api: Api, database_url: str, group_by: list[str]) -> None:
    tenant = new_tenant(database_url)
    items, departments = _world(api, tenant, seed=len(group_by) * 7 + len(group_by[0]))
    body = {"group_by": group_by, "filter": {"date_from": "2025-06-01", "date_to": "2025-06-12"}}
    answer = api.ok("GetCallStats", body, tenant.read)
    assert answer["timezone"] == "Asia/Ho_Chi_Minh" and answer["group_by"] == group_by
    expected = _expected(items, group_by, departments)
    got = {tuple(b["key"][name] for name in group_by): b for b in answer["buckets"]}
    for key, want in expected.items():
        bucket = got[key]
        for name, value in want.items():
            if isinstance(value, float):
                assert bucket[name] == pytest.approx(value), (key, name)
            else:
                assert bucket[name] == value, (key, name)
    empty = [b for k, b in got.items() if k not in expected]
    assert all(b["calls"] == 0 and b["answer_rate"] == 0 for b in empty)
    assert sum(b["calls"] for b in answer["buckets"]) == len(items)
    # Calendar dimensions are complete: every day of the filter, every hour, every weekday.
    axes = {
        "day": [(dt.date(2025, 6, 1) + dt.timedelta(days=i)).isoformat() for i in range(12)],
        "hour": [f"{h:02d}" for h in range(24)],
        "weekday": [str(d) for d in range(1, 8)],
    }
    for i, name in enumerate(group_by):
        if name in axes:
            assert sorted({k[i] for k in got}) == axes[name]
    if all(name in axes for name in group_by):
        assert len(got) == math.prod(len(axes[n]) for n in group_by)


def test_stats_follow_the_list_filters(api: Api, database_url: str) -> None:
    tenant = new_tenant(database_url)
    items, _ = _world(api, tenant, seed=5)
    inbound = [i for i in items if i["direction"] == "in"]
    answer = api.ok(
        "GetCallStats", {"group_by": ["direction"], "filter": {"direction": "in"}}, tenant.read
    )
    assert [b["key"] for b in answer["buckets"]] == [{"direction": "in"}]
    assert answer["buckets"][0]["calls"] == len(inbound)
    assert answer["buckets"][0]["missed"] == sum(i["call_state"] != "answered" for i in inbound)


def test_stats_refuse_too_many_buckets_and_bad_groups(api: Api, tenant: Tenant) -> None:
    years = {"date_from": "2020-01-01", "date_to": "2024-12-31"}
    many = api.error(
        "GetCallStats", {"group_by": ["day"], "filter": years}, tenant.read, 400, "invalid_argument"
    )
    assert many["meta"]["field"] == "group_by"
    for group_by, field in (([], "group_by"), (["day", "hour", "user"], "group_by"),
                            (["minute"], "group_by[0]"), (["day", "day"], "group_by")):  # fmt: skip
        bad = api.error(
            "GetCallStats", {"group_by": group_by}, tenant.read, 400, "invalid_argument"
        )
        assert bad["meta"]["field"] == field, group_by
    missing = api.error("GetCallStats", {}, tenant.read, 400, "invalid_argument")
    assert missing["meta"]["field"] == "group_by"


def test_no_calls_no_buckets_but_a_complete_calendar(api: Api, tenant: Tenant) -> None:
    answer = api.ok("GetCallStats", {"group_by": ["extension"]}, tenant.read)
    assert answer["buckets"] == []
    hours = api.ok("GetCallStats", {"group_by": ["hour"]}, tenant.read)["buckets"]
    assert [b["key"]["hour"] for b in hours] == [f"{h:02d}" for h in range(24)]
    assert all(b["calls"] == 0 for b in hours)
    assert list(itertools.chain.from_iterable(b["key"] for b in hours)) == ["hour"] * 24


def test_the_client_reads_stats(api: Api, tenant: Tenant) -> None:
    api.ingest(
        tenant.ingest,
        [{"source_id": "c1", "started_at": "2025-06-02T03:00:00Z", "direction": "in",
          "call_state": "not_answered", "ended_at": "2025-06-02T03:01:00Z"}],
    )  # fmt: skip
    with Client(str(api.http.base_url), tenant.read) as client:
        stats = client.get_call_stats(["weekday"], direction="in")
    monday = next(b for b in stats.buckets if b.key == {"weekday": "1"})
    assert (monday.calls, monday.missed, monday.answer_rate) == (1, 1, 0.0)


def test_stats_from_the_command_line(api: Api, tenant: Tenant, database_url: str) -> None:
    api.ingest(
        tenant.ingest,
        [{"source_id": "c1", "started_at": "2025-06-02T03:00:00Z", "direction": "in",
          "call_state": "not_answered", "ended_at": "2025-06-02T03:01:00Z"}],
    )  # fmt: skip
    args = ["stats", "--tenant", tenant.id, "--group-by", "day,direction", "--from",
            "2025-06-01", "--to", "2025-06-03", "--database", database_url]  # fmt: skip
    answer = json.loads(cli(*args, "--json"))
    assert answer == api.ok(
        "GetCallStats",
        {"group_by": ["day", "direction"],
         "filter": {"date_from": "2025-06-01", "date_to": "2025-06-03"}},
        tenant.read,
    )  # fmt: skip
    table = cli(*args)
    assert "2025-06-02" in table and "0%" in table
    refused = CliRunner().invoke(
        cli_app,
        ["stats", "--tenant", tenant.id, "--group-by", "minute", "--database", database_url],
    )
    assert refused.exit_code == 2
