"""Keyset paging: every matching call exactly once, in order, both ways, with honest next/prev."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dataset import Dataset, build, expected
from tests.harness import Api, new_tenant

SORTS = [
    "started_at",
    "-started_at",
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
    "duration",
    "-duration",
]
FILTERS: list[dict[str, Any]] = [
    {},
    {"direction": "in"},
    {"call_state": "answered", "duration": {"comparison": "greater_than", "value": 10}},
    {"date_from": "2025-03-03", "date_to": "2025-03-12"},
    {"external_id": "sdk-a"},
]


@pytest.fixture(scope="module")
def data(api: Api, database_url: str) -> Dataset:
    return build(api, new_tenant(database_url), calls=150, seed=2)


def page(api: Api, key: str, f: dict[str, Any], paging: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = api.ok("ListCallLogs", {"filter": f, "paging": paging}, key)
    return answer


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(f=st.sampled_from(FILTERS), sort=st.sampled_from(SORTS), limit=st.integers(7, 60))
def test_next_then_prev_walks_every_call_once_in_order(
    api: Api, data: Dataset, f: dict[str, Any], sort: str, limit: int
) -> None:
    walk_both_ways(api, data.tenant.read, f, expected(data, f, sort), sort, limit)


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("which", ["call_number", "extension_ids", "hotline_ids", "both"])
def test_or_filters_walk_every_call_once_in_order(
    api: Api, data: Dataset, sort: str, which: str
) -> None:
    """The filters that match one of several things (a number as caller or callee, any of some
    extensions or hotlines), whose pages merge one index walk per alternative."""
    extensions, hotlines = sorted(data.extensions)[:2], sorted(data.hotlines)
    filters: dict[str, dict[str, Any]] = {
        "call_number": {"call_number": "101"},
        "extension_ids": {"extension_ids": extensions},
        "hotline_ids": {"hotline_ids": hotlines},
        "both": {"call_number": "101", "extension_ids": extensions},
    }
    f = filters[which]
    want_filter = {k: v for k, v in f.items() if k != "call_number"}
    if "call_number" in f:
        want_filter["call_number_party"] = f["call_number"]
    want = expected(data, want_filter, sort)
    assert len(want) > 7, want  # several pages
    walk_both_ways(api, data.tenant.read, f, want, sort, 7)


def walk_both_ways(
    api: Api, key: str, f: dict[str, Any], want: list[str], sort: str, limit: int
) -> None:
    """Walk ``next`` from the first page, then ``prev`` back: every call of ``want`` once, in
    its order, each page full but the last."""
    pages: list[list[str]] = []
    answer = page(api, key, f, {"limit": limit, "sort": sort})
    assert answer["paging"]["prev"] == ""  # nothing lies before the first page
    while True:
        rows = [r["id"] for r in answer["call_logs"]]
        pages.append(rows)
        has_more = sum(map(len, pages)) < len(want)
        assert bool(answer["paging"]["next"]) == has_more
        assert bool(answer["paging"]["prev"]) == (len(pages) > 1)
        if not answer["paging"]["next"]:
            break
        answer = page(
            api, key, f, {"limit": limit, "sort": sort, "after": answer["paging"]["next"]}
        )
    assert [i for p in pages for i in p] == want
    assert all(len(p) == limit for p in pages[:-1])
    # And back to the start with prev: the same pages, each in sort order.
    back = [pages[-1]]
    while answer["paging"]["prev"]:
        answer = page(
            api, key, f, {"limit": limit, "sort": sort, "before": answer["paging"]["prev"]}
        )
        back.append([r["id"] for r in answer["call_logs"]])
        assert bool(answer["paging"]["next"])
    walked_back = [i for p in reversed(back) for i in p]
    assert walked_back == want


def test_after_prev_also_pages_backwards(api: Api, data: Dataset) -> None:
    """The seed's note: passing prev as `after` gives the previous page."""
    key = data.tenant.read
    first = page(api, key, {}, {"limit": 10})
    second = page(api, key, {}, {"limit": 10, "after": first["paging"]["next"]})
    again = page(api, key, {}, {"limit": 10, "after": second["paging"]["prev"]})
    assert [r["id"] for r in again["call_logs"]] == [r["id"] for r in first["call_logs"]]


def test_empty_result_has_no_cursors(api: Api, data: Dataset) -> None:
    answer = page(api, data.tenant.read, {"external_id": "nobody"}, {})
    assert answer["call_logs"] == []
    assert answer["paging"]["next"] == answer["paging"]["prev"] == ""


def test_paging_echoes_request(api: Api, data: Dataset) -> None:
    first = page(api, data.tenant.read, {}, {"limit": "5", "sort": "duration"})
    assert first["paging"]["limit"] == 5 and first["paging"]["sort"] == "duration"
    nxt = first["paging"]["next"]
    second = page(api, data.tenant.read, {}, {"limit": 5, "sort": "duration", "after": nxt})
    assert second["paging"]["after"] == nxt and second["paging"]["before"] == ""


@pytest.mark.parametrize(
    ("changed", "field"),
    [
        ({"sort": "started_at"}, "paging.after"),
        ({"filter": {"direction": "out"}}, "paging.after"),
    ],
)
def test_cursor_of_another_sort_or_filter_is_rejected(
    api: Api, data: Dataset, changed: dict[str, Any], field: str
) -> None:
    key = data.tenant.read
    first = page(api, key, {"direction": "in"}, {"limit": 5})
    body: dict[str, Any] = {
        "filter": {"direction": "in"},
        "paging": {"after": first["paging"]["next"]},
    }
    if "sort" in changed:
        body["paging"]["sort"] = changed["sort"]
    if "filter" in changed:
        body["filter"] = changed["filter"]
    envelope = api.error("ListCallLogs", body, key, 400, "invalid_argument")
    assert envelope["meta"]["field"] == field


def test_walking_while_calls_arrive_returns_each_original_call_once(
    api: Api, database_url: str
) -> None:
    tenant = new_tenant(database_url)
    start = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)

    def calls(prefix: str, n: int, step: int) -> list[dict[str, Any]]:
        return [
            {
                "source_id": f"{prefix}-{i}",
                "started_at": (start + dt.timedelta(minutes=(i * step) % 5000)).isoformat(),
                "caller": "0912345678",
                "callee": "19006868",
                "direction": "in",
            }
            for i in range(n)
        ]

    original = {a["id"] for a in api.ingest(tenant.ingest, calls("old", 200, 13))}
    seen: list[str] = []
    paging: dict[str, Any] = {"limit": 17}
    round_ = 0
    while True:
        answer = api.ok("ListCallLogs", {"paging": paging}, tenant.read)
        seen += [r["id"] for r in answer["call_logs"]]
        # New calls land everywhere in time, before and after the reader's position.
        api.ingest(tenant.ingest, calls(f"new{round_}", 7, 31 + round_))
        round_ += 1
        if not answer["paging"]["next"]:
            break
        paging = {"limit": 17, "after": answer["paging"]["next"]}
    assert len(seen) == len(set(seen))
    assert original <= set(seen)


@pytest.mark.parametrize(
    ("sort", "f"),
    [
        ("-started_at", {}),
        ("started_at", {}),
        ("-started_at", {"direction": "in"}),
        ("-started_at", {"date_to": "MIDDLE"}),
        ("-started_at", {"date_from": "MIDDLE"}),
        ("started_at", {"date_to": "MIDDLE"}),
        ("started_at", {"date_from": "MIDDLE"}),
        ("started_at", {"direction": "in"}),
    ],
)
def test_pages_across_months_list_every_call_once_in_order(
    api: Api, database_url: str, sort: str, f: dict[str, Any]
) -> None:
    """Calls of the last four months, several at the very edges of months, walked both ways in
    pages of 4 (PostgreSQL keeps a partition per month and reads the newest months first)."""
    tenant = new_tenant(database_url)
    rng = random.Random(9)
    now = dt.datetime.now(dt.UTC)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    starts = [now + dt.timedelta(hours=2)]  # a PBX whose clock runs a little ahead
    for _ in range(4):
        earlier = (month - dt.timedelta(days=1)).replace(day=1)
        starts += [month, month - dt.timedelta(microseconds=1), month + dt.timedelta(seconds=1)]
        starts += [earlier + (month - earlier) * rng.random() for _ in range(5)]
        month = earlier
    middle = (now - dt.timedelta(days=45)).isoformat()
    items = [
        {
            "source_id": f"m{i}",
            "started_at": start.isoformat(),
            "caller": "0912345678",
            "callee": "19006868",
            "direction": rng.choice(["in", "out"]),
        }
        for i, start in enumerate(starts)
    ]
    stored = api.ingest(tenant.ingest, items)
    calls = [
        (int(start.timestamp() * 1_000_000), int(s["id"]), item)
        for start, s, item in zip(starts, stored, items, strict=True)
    ]
    f = {k: middle if v == "MIDDLE" else v for k, v in f.items()}
    low = dt.datetime.fromisoformat(f.get("date_from", "1970-01-01T00:00:00Z")).timestamp()
    high = dt.datetime.fromisoformat(f.get("date_to", "2999-01-01T00:00:00Z")).timestamp()
    want = [
        str(id_)
        for micros, id_, item in sorted(calls, reverse=sort.startswith("-"))
        if low * 1e6 <= micros <= high * 1e6
        and f.get("direction", item["direction"]) == item["direction"]
    ]
    assert len(want) > 4  # more than a page
    forward, backward = [], []
    paging: dict[str, Any] = {"limit": 4, "sort": sort}
    while True:
        answer = api.ok("ListCallLogs", {"filter": f, "paging": paging}, tenant.read)
        forward += [r["id"] for r in answer["call_logs"]]
        if not answer["paging"]["next"]:
            break
        paging = {"limit": 4, "sort": sort, "after": answer["paging"]["next"]}
    assert forward == want
    backward = [r["id"] for r in answer["call_logs"]]
    while answer["paging"]["prev"]:
        paging = {"limit": 4, "sort": sort, "before": answer["paging"]["prev"]}
        answer = api.ok("ListCallLogs", {"filter": f, "paging": paging}, tenant.read)
        backward = [r["id"] for r in answer["call_logs"]] + backward
    assert backward == want
