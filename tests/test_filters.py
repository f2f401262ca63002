"""Contract tests, one per ListCallLogs filter, against the oracle of tests/dataset.py."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.dataset import SUBSCRIBERS, Dataset, build, expected, render
from tests.harness import Api, Tenant, new_tenant


@pytest.fixture(scope="module")
def data(api: Api, database_url: str) -> Dataset:
    return build(api, new_tenant(database_url))


def ids(api: Api, tenant: Tenant, api_filter: dict[str, Any], sort: str = "") -> list[str]:
    paging = {"limit": 1000, **({"sort": sort} if sort else {})}
    pages = api.walk(tenant.read, {"filter": api_filter, "paging": paging})
    return [row["id"] for page in pages for row in page]


def check(
    api: Api, data: Dataset, api_filter: dict[str, Any], oracle: dict[str, Any] | None = None
) -> list[str]:
    want = expected(data, api_filter if oracle is None else oracle)
    got = ids(api, data.tenant, api_filter)
    assert got == want
    return got


def test_no_filter_returns_every_call_newest_first(api: Api, data: Dataset) -> None:
    got = check(api, data, {})
    assert len(got) == len(data.calls)


def test_first_page_has_100_calls_by_default(api: Api, data: Dataset) -> None:
    answer = api.ok("ListCallLogs", {}, data.tenant.read)
    assert len(answer["call_logs"]) == 100
    assert answer["paging"]["limit"] == 100
    assert answer["paging"]["sort"] == "-started_at"


@pytest.mark.parametrize(
    ("date_from", "date_to"),
    [
        ("2025-03-05T00:00:00+07:00", "2025-03-09T12:30:00+07:00"),
        ("2025-03-05", "2025-03-05"),
        ("2025-03-10T08:00:00", ""),
        ("", "2025-03-04T23:59:59Z"),
    ],
)
def test_date_range_is_inclusive_in_the_tenant_zone(
    api: Api, data: Dataset, date_from: str, date_to: str
) -> None:
    f = {k: v for k, v in (("date_from", date_from), ("date_to", date_to)) if v}
    assert check(api, data, f)


def test_date_bounds_are_inclusive_to_the_microsecond(api: Api, data: Dataset) -> None:
    call = data.calls[17]
    moment = call.started.isoformat()
    got = ids(api, data.tenant, {"date_from": moment, "date_to": moment})
    assert call.id in got
    assert got == expected(data, {"date_from": moment, "date_to": moment})


@pytest.mark.parametrize("state", ["answered", "not_answered", "unknown"])
def test_call_state(api: Api, data: Dataset, state: str) -> None:
    got = check(api, data, {"call_state": state})
    assert got


@pytest.mark.parametrize("direction", ["in", "out", "ext", "ext_in", "ext_out", "unknown"])
def test_direction(api: Api, data: Dataset, direction: str) -> None:
    assert check(api, data, {"direction": direction})


@pytest.mark.parametrize(
    "comparison",
    [
        "equal",
        "not_equal",
        "less_than",
        "less_than_or_equal_to",
        "greater_than",
        "greater_than_or_equal_to",
    ],
)
@pytest.mark.parametrize("value", [0, 30, "60", 299, 300, 1799, 1800, 3600])
def test_duration_comparisons(api: Api, data: Dataset, comparison: str, value: int | str) -> None:
    check(api, data, {"duration": {"comparison": comparison, "value": value}})


@pytest.mark.parametrize("comparison", ["unknow", "unknown"])
def test_duration_unknown_comparison_is_no_filter(api: Api, data: Dataset, comparison: str) -> None:
    got = ids(api, data.tenant, {"duration": {"comparison": comparison, "value": 5}})
    assert len(got) == len(data.calls)


@pytest.mark.parametrize("subscriber", SUBSCRIBERS)
def test_call_number_matches_caller_or_callee_in_any_format(
    api: Api, data: Dataset, subscriber: str
) -> None:
    rng = random.Random(subscriber)
    for _ in range(3):
        written = render(subscriber, rng)
        got = check(api, data, {"call_number": written}, {"call_number_party": subscriber})
        assert got, written


def test_call_number_of_an_extension_compares_as_written(api: Api, data: Dataset) -> None:
    assert check(api, data, {"call_number": "101"}, {"call_number_party": "101"})


def test_a_call_from_a_number_to_itself_is_listed_once(api: Api, database_url: str) -> None:
    tenant = new_tenant(database_url, name="self calls")
    calls = [
        {
            "source_id": f"self-{i}",
            "started_at": f"2025-03-0{i + 1}T08:00:00Z",
            "caller": caller,
            "callee": callee,
            "direction": "out",
        }
        for i, (caller, callee) in enumerate(
            [("0912000111", "+84912000111"), ("0912000111", "19006868"), ("0987", "0912000111")]
        )
    ]
    stored = [item["id"] for item in api.ingest(tenant.ingest, calls)]
    # Newest first; the first call matches both as caller and as callee.
    assert ids(api, tenant, {"call_number": "84912000111"}) == stored[::-1]
    # Pages of one call each walk the same calls, each once.
    pages = api.walk(tenant.read, {"filter": {"call_number": "0912000111"}, "paging": {"limit": 1}})
    assert [row["id"] for page in pages for row in page] == stored[::-1]


def test_call_number_that_nobody_called_matches_nothing(api: Api, data: Dataset) -> None:
    assert ids(api, data.tenant, {"call_number": "0999999999"}) == []


def test_extension_ids(api: Api, data: Dataset) -> None:
    ext_ids = list(data.extensions)
    assert check(api, data, {"extension_ids": ext_ids[:1]})
    assert check(api, data, {"extension_ids": ext_ids[1:3]})
    as_numbers = [int(x) for x in ext_ids[1:3]]
    assert ids(api, data.tenant, {"extension_ids": as_numbers}) == expected(
        data, {"extension_ids": ext_ids[1:3]}
    )


def test_hotline_ids(api: Api, data: Dataset) -> None:
    hotline_ids = list(data.hotlines)
    assert check(api, data, {"hotline_ids": hotline_ids[:1]})
    assert check(api, data, {"hotline_ids": hotline_ids})


def test_user_id(api: Api, data: Dataset) -> None:
    for user_id in data.user_department:
        assert check(api, data, {"user_id": user_id})


def test_department_id(api: Api, data: Dataset) -> None:
    for department_id in data.departments:
        assert check(api, data, {"department_id": department_id})


@pytest.mark.parametrize(
    ("name", "value"), [("external_id", "sdk-a"), ("external_session_id", "sess-2")]
)
def test_sdk_ids(api: Api, data: Dataset, name: str, value: str) -> None:
    assert check(api, data, {name: value})


def test_unknown_ids_match_nothing(api: Api, data: Dataset) -> None:
    for f in (
        {"user_id": "1"},
        {"department_id": 42},
        {"extension_ids": ["123456789"]},
        {"hotline_ids": ["9"]},
    ):
        assert ids(api, data.tenant, f) == []


def test_empty_values_mean_no_filter(api: Api, data: Dataset) -> None:
    f = {
        "user_id": "",
        "extension_ids": [],
        "hotline_ids": [],
        "call_number": "",
        "direction": "unknown",
    }
    assert len(ids(api, data.tenant, f)) == len(data.calls)


@pytest.mark.parametrize("seed", range(12))
def test_filters_combine_with_and(api: Api, data: Dataset, seed: int) -> None:
    rng = random.Random(seed)
    options: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"direction": rng.choice(["in", "out"])}, {}),
        ({"call_state": rng.choice(["answered", "not_answered"])}, {}),
        ({"duration": {"comparison": "greater_than", "value": rng.choice([0, 30])}}, {}),
        ({"date_from": "2025-03-04", "date_to": "2025-03-15"}, {}),
        ({"extension_ids": rng.sample(list(data.extensions), 2)}, {}),
        ({"hotline_ids": [rng.choice(list(data.hotlines))]}, {}),
        ({"department_id": rng.choice(data.departments)}, {}),
        ({"external_id": "sdk-b"}, {}),
    ]
    subscriber = rng.choice(SUBSCRIBERS)
    options.append(({"call_number": render(subscriber, rng)}, {"call_number_party": subscriber}))
    api_filter: dict[str, Any] = {}
    oracle: dict[str, Any] = {}
    for extra_api, extra_oracle in rng.sample(options, 3):
        api_filter.update(extra_api)
        oracle.update(extra_api, **extra_oracle)
    oracle.pop("call_number", None)
    check(api, data, api_filter, oracle)


@pytest.mark.parametrize(
    "sort",
    [
        "started_at",
        "-started_at",
        "created_at",
        "-created_at",
        "updated_at",
        "-updated_at",
        "duration",
        "-duration",
    ],
)
def test_every_sort_orders_with_id_tie_breaker(api: Api, data: Dataset, sort: str) -> None:
    got = ids(api, data.tenant, {"direction": "in"}, sort)
    assert got == expected(data, {"direction": "in"}, sort)


def test_response_has_every_documented_field(api: Api, data: Dataset) -> None:
    row = api.ok("ListCallLogs", {"paging": {"limit": 1}}, data.tenant.read)["call_logs"][0]
    documented = {
        "call_state",
        "call_status",
        "call_targets",
        "callee",
        "caller",
        "contact_id",
        "created_at",
        "direction",
        "duration",
        "ended_at",
        "extension_id",
        "external_id",
        "external_session_id",
        "id",
        "note",
        "recording_urls",
        "started_at",
        "updated_at",
        "user_id",
        "hotline_id",
    }
    assert set(row) == documented
    assert isinstance(row["id"], str) and row["id"].isdigit()
    assert row["started_at"].endswith("Z")
