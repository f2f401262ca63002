"""ListMissedCalls: customers whose inbound calls were left unanswered and not returned, checked
against stories written out by hand and against the definition in docs/stats.md applied to
what ListCallLogs lists."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any

import pytest

from callhistory.client import AsyncClient, Client
from callhistory.kit.numbers import normalize
from tests.harness import Api, Tenant, new_tenant

T0 = dt.datetime(2025, 6, 2, 2, 0, tzinfo=dt.UTC)
RANGE = {"date_from": "2025-06-01T00:00:00Z", "date_to": "2025-06-09T00:00:00Z"}


def _iso(at: dt.datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _call(
    source_id: str, minutes: float, number: str, direction: str, answered: bool, **extra: Any
) -> dict[str, Any]:
    """A call ``minutes`` after T0 with a customer's ``number`` on the outside end."""
    started = T0 + dt.timedelta(minutes=minutes)
    outside_is_caller = direction in ("in", "ext_in")
    return {
        "source_id": source_id,
        "started_at": _iso(started),
        "ended_at": _iso(started + dt.timedelta(seconds=90)),
        "caller": number if outside_is_caller else "101",
        "callee": "19006868" if outside_is_caller else number,
        "direction": direction,
        "call_state": "answered" if answered else "not_answered",
        "duration": 60 if answered else 0,
        "external_id": source_id,  # to find the call again
        **extra,
    }


def _missed(api: Api, tenant: Tenant, **body: Any) -> list[dict[str, Any]]:
    """Every entry, following ``next`` pages of 2."""
    out: list[dict[str, Any]] = []
    paging: dict[str, Any] = {"limit": 2}
    while True:
        page = api.ok("ListMissedCalls", {"filter": RANGE, **body, "paging": paging}, tenant.read)
        out += page["missed_calls"]
        if not page["paging"]["next"]:
            return out
        paging = {"limit": 2, "after": page["paging"]["next"]}


def test_the_stories_a_manager_would_tell(api: Api, tenant: Tenant) -> None:
    hours = 60.0
    api.ingest(
        tenant.ingest,
        [
            # A tried twice (two writings of one number); a call back rang out unanswered.
            _call("a1", 0, "0901000001", "in", False),
            _call("a2", 10, "+84901000001", "in", False),
            _call("a3", 70, "0901000001", "out", False),
            # B was called back and answered: returned.
            _call("b1", 0, "0901000002", "in", False),
            _call("b2", 2 * hours, "84901000002", "out", True),
            # C called again and got through the next morning, 20 hours later: returned.
            _call("c1", 5, "0901000003", "in", False),
            _call("c2", 20 * hours, "0901000003", "in", True),
            # D was answered once, then missed: the later miss is not returned.
            _call("d1", 0, "0901000004", "in", True),
            _call("d2", 60, "0901000004", "in", False),
            # E's call back came 30 hours later: too late for a 24-hour window.
            _call("e1", 30, "0901000005", "in", False),
            _call("e2", 30 + 30 * hours, "0901000005", "out", True),
            # F was only called, never called in; G is an internal call.
            _call("f1", 40, "0901000006", "out", False),
            _call("g1", 50, "0901000007", "ext", False),
        ],
    )
    entries = _missed(api, tenant)
    assert [e["number"] for e in entries] == ["0901000004", "0901000005", "+84901000001"]
    d, e, a = entries
    assert (a["attempts"], a["callback_attempts"]) == (2, 1)
    assert a["first_try_at"] == "2025-06-02T02:00:00Z"
    assert a["last_try_at"] == "2025-06-02T02:10:00Z"
    assert a["last_callback_at"] == "2025-06-02T03:10:00Z"
    assert (d["attempts"], d["callback_attempts"], d["last_callback_at"]) == (1, 0, None)
    assert e["attempts"] == 1
    by_source = {r["source_id"]: r["id"] for r in _ids(api, tenant)}
    assert a["last_call_id"] == by_source["a2"] and d["last_call_id"] == by_source["d2"]
    # With two days to return a call, E's counts as returned.
    wider = _missed(api, tenant, window_hours=48)
    assert [x["number"] for x in wider] == ["0901000004", "+84901000001"]


def _ids(api: Api, tenant: Tenant) -> list[dict[str, Any]]:
    pages = api.walk(tenant.read, {"paging": {"limit": 1000}})
    return [{"source_id": r["external_id"], "id": r["id"]} for p in pages for r in p]


def test_hotlines_dates_and_paging_both_ways(api: Api, tenant: Tenant) -> None:
    hotlines = [
        api.ok("CreateHotline", {"hotline": h}, tenant.admin)["id"] for h in ("19006868", "1800")
    ]
    items = [
        {**_call(f"h{i}", i * 30, f"09020000{i:02}", "in", False), "callee": callee}
        for i, callee in enumerate(["19006868", "1800", "19006868", "1800", "19006868"])
    ]
    api.ingest(tenant.ingest, items)
    all_ = _missed(api, tenant)
    assert [e["number"] for e in all_] == [f"09020000{i:02}" for i in (4, 3, 2, 1, 0)]
    assert {e["hotline_id"] for e in all_} == set(hotlines)
    on_first = _missed(api, tenant, filter={**RANGE, "hotline_ids": [hotlines[0]]})
    assert [e["number"] for e in on_first] == [f"09020000{i:02}" for i in (4, 2, 0)]
    # Dates select the tries: an hour after T0 leaves out the first two.
    later = _missed(api, tenant, filter={**RANGE, "date_from": "2025-06-02T02:45:00Z"})
    assert [e["number"] for e in later] == [f"09020000{i:02}" for i in (4, 3, 2)]
    # Back from the last page with prev: the same entries, the same order.
    first = api.ok("ListMissedCalls", {"filter": RANGE, "paging": {"limit": 2}}, tenant.read)
    second = api.ok(
        "ListMissedCalls",
        {"filter": RANGE, "paging": {"limit": 2, "after": first["paging"]["next"]}},
        tenant.read,
    )
    back = api.ok(
        "ListMissedCalls",
        {"filter": RANGE, "paging": {"limit": 2, "before": second["paging"]["prev"]}},
        tenant.read,
    )
    assert back["missed_calls"] == first["missed_calls"] and not back["paging"]["prev"]
    # A cursor minted for one filter is refused under another.
    api.error(
        "ListMissedCalls",
        {"filter": RANGE, "window_hours": 48, "paging": {"after": first["paging"]["next"]}},
        tenant.read,
        400,
        "invalid_argument",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"window_hours": 0}, "window_hours"),
        ({"window_hours": 169}, "window_hours"),
        ({"filter": {"date_from": "2025-01-01", "date_to": "2025-06-01"}}, "filter.date_from"),
        ({"filter": {"date_from": "2025-06-02", "date_to": "2025-06-01"}}, "filter.date_from"),
        ({"filter": {"date_from": "yesterday"}}, "filter.date_from"),
        ({"filter": {"hotline_ids": ["x"]}}, "filter.hotline_ids[0]"),
        ({"paging": {"sort": "started_at"}}, "paging.sort"),
    ],
)
def test_bad_requests_name_the_field(
    api: Api, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    envelope = api.error("ListMissedCalls", body, tenant.read, 400, "invalid_argument")
    assert envelope["meta"]["field"] == field


def test_another_tenants_calls_never_count(api: Api, tenant: Tenant, database_url: str) -> None:
    other = new_tenant(database_url, name="Other")
    api.ingest(tenant.ingest, [_call("x1", 0, "0903000001", "in", False)])
    # The other tenant answered the same customer: that returns nothing of ours.
    api.ingest(other.ingest, [_call("y1", 60, "0903000001", "in", True)])
    assert [e["number"] for e in _missed(api, tenant)] == ["0903000001"]
    assert _missed(api, other) == []


def _expected(calls: list[dict[str, Any]], window_h: int) -> list[tuple[str, int, int]]:
    """The definition, applied to the calls as ListCallLogs lists them: per customer, the
    inbound tries not answered with no answered call with the number in the window after;
    tries with no answered call between them are one entry; calls back are the calls to the
    number, not answered, after the first try, up to the window after the last and before the
    next answered call. (number as last written, attempts, calls back), the last try first."""
    window = dt.timedelta(hours=window_h)

    def at(c: dict[str, Any]) -> dt.datetime:
        return dt.datetime.fromisoformat(c["started_at"])

    def number(c: dict[str, Any]) -> str:
        return normalize(c["caller"] if c["direction"] in ("in", "ext_in") else c["callee"])

    outside = [c for c in calls if c["direction"] in ("in", "ext_in", "out", "ext_out")]
    answered = [c for c in outside if c["call_state"] == "answered"]
    entries = []
    for n in {number(c) for c in outside}:
        mine = [c for c in answered if number(c) == n]
        tries = sorted(
            (
                c
                for c in outside
                if number(c) == n and c["direction"] in ("in", "ext_in")
                and c["call_state"] != "answered"
                and not any(at(c) < at(a) <= at(c) + window for a in mine)
            ),
            key=lambda c: (at(c), int(c["id"])),
        )  # fmt: skip
        groups: list[list[dict[str, Any]]] = []
        for t in tries:
            if groups and not any(at(groups[-1][-1]) < at(a) <= at(t) for a in mine):
                groups[-1].append(t)
            else:
                groups.append([t])
        for group in groups:
            first, last = at(group[0]), at(group[-1])
            closing = min((at(a) for a in mine if at(a) > last), default=None)
            backs = [
                c
                for c in outside
                if number(c) == n and c["direction"] in ("out", "ext_out")
                and c["call_state"] != "answered" and first < at(c) <= last + window
                and (closing is None or at(c) < closing)
            ]  # fmt: skip
            entries.append(
                ((last, int(group[-1]["id"])), group[-1]["caller"], len(group), len(backs))
            )
    entries.sort(reverse=True)
    return [(caller, attempts, backs) for _, caller, attempts, backs in entries]


@pytest.mark.parametrize("seed", [1, 2])
def test_random_calls_against_the_definition(api: Api, tenant: Tenant, seed: int) -> None:
    rng = random.Random(seed)
    numbers = [f"09040000{i:02}" for i in range(8)]
    writings = [lambda n: n, lambda n: "+84" + n[1:], lambda n: "84" + n[1:]]
    minutes = rng.sample(range(0, 4 * 24 * 60, 7), 160)  # no two calls at one time
    items = [
        _call(
            f"r{seed}-{i}",
            minutes[i],
            rng.choice(writings)(rng.choice(numbers)),
            rng.choice(["in", "in", "in", "ext_in", "out", "ext_out", "ext"]),
            rng.random() < 0.35,
        )
        for i in range(160)
    ]
    api.ingest(tenant.ingest, items)
    listed = [r for page in api.walk(tenant.read, {"paging": {"limit": 1000}}) for r in page]
    for window_h in (6, 24):
        got = [
            (e["number"], e["attempts"], e["callback_attempts"])
            for e in _missed(api, tenant, window_hours=window_h)
        ]
        assert got == _expected(listed, window_h)
        assert got  # the draw leaves customers unreturned


def test_both_clients_page_through_missed_calls(api: Api, tenant: Tenant) -> None:
    api.ingest(
        tenant.ingest,
        [_call(f"m{i}", i * 5, f"09050000{i:02}", "in", False) for i in range(5)],
    )
    base = str(api.http.base_url)
    with Client(base, tenant.read) as client:
        entries = list(
            client.missed_calls(limit=2, date_from=RANGE["date_from"], date_to=RANGE["date_to"])
        )
    assert [e.number for e in entries] == [f"09050000{i:02}" for i in (4, 3, 2, 1, 0)]

    async def run() -> list[str]:
        async with AsyncClient(base, tenant.read) as client:
            return [
                e.number
                async for e in client.missed_calls(
                    limit=3, window_hours=1, date_from=RANGE["date_from"], date_to=RANGE["date_to"]
                )
            ]

    assert asyncio.run(run()) == [e.number for e in entries]


def test_a_date_from_in_the_future_names_it(api: Api, tenant: Tenant) -> None:
    envelope = api.error(
        "ListMissedCalls", {"filter": {"date_from": "2099-01-01"}}, tenant.read, 400,
        "invalid_argument",
    )  # fmt: skip
    assert envelope["meta"]["field"] == "filter.date_from"
    assert "future" in envelope["msg"]
