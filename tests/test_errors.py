"""Every malformed request gets the documented code and names its field; never a 5xx."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.harness import Api, Tenant

LIST = "/v1/shop.Etelecom/ListCallLogs"


def post(
    api: Api, key: str, content: bytes, content_type: str = "application/json"
) -> httpx.Response:
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {key}"}
    return api.http.post(LIST, content=content, headers=headers)


def envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code and isinstance(body["msg"], str) and isinstance(body["meta"], dict)
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"filter": {"date_from": "10/03/2021"}}, "filter.date_from"),
        ({"filter": {"date_to": "2021-13-40"}}, "filter.date_to"),
        ({"filter": {"date_from": "2021-03-11", "date_to": "2021-03-10"}}, "filter.date_from"),
        ({"filter": {"call_state": "maybe"}}, "filter.call_state"),
        ({"filter": {"direction": "sideways"}}, "filter.direction"),
        (
            {"filter": {"duration": {"comparison": "about", "value": 1}}},
            "filter.duration.comparison",
        ),
        ({"filter": {"duration": {"comparison": "equal", "value": -1}}}, "filter.duration.value"),
        (
            {"filter": {"duration": {"comparison": "equal", "value": "ten"}}},
            "filter.duration.value",
        ),
        ({"filter": {"duration": {"comparison": "equal", "value": 1.5}}}, "filter.duration.value"),
        ({"filter": {"user_id": "abc"}}, "filter.user_id"),
        ({"filter": {"user_id": "99999999999999999999"}}, "filter.user_id"),
        ({"filter": {"user_id": 2**64}}, "filter.user_id"),
        ({"filter": {"department_id": -5}}, "filter.department_id"),
        ({"filter": {"extension_ids": ["1", "x"]}}, "filter.extension_ids[1]"),
        ({"filter": {"extension_ids": "1"}}, "filter.extension_ids"),
        ({"filter": {"hotline_ids": [str(i + 1) for i in range(101)]}}, "filter.hotline_ids"),
        ({"filter": {"call_number": 912345678}}, "filter.call_number"),
        ({"filter": {"external_id": "x" * 300}}, "filter.external_id"),
        ({"filter": {"extension_id": "1"}}, "filter.extension_id"),
        ({"filters": {}}, "filters"),
        ({"paging": {"limit": 1001}}, "paging.limit"),
        ({"paging": {"limit": -1}}, "paging.limit"),
        ({"paging": {"limit": "many"}}, "paging.limit"),
        ({"paging": {"sort": "caller"}}, "paging.sort"),
        ({"paging": {"after": "not-a-cursor"}}, "paging.after"),
        ({"paging": {"before": "AAAA"}}, "paging.before"),
        ({"paging": {"after": "x", "before": "y"}}, "paging.before"),
        ({"filter": []}, "filter"),
    ],
)
def test_invalid_argument_names_the_field(
    api: Api, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    found = api.error("ListCallLogs", body, tenant.read, 400, "invalid_argument")
    assert found["meta"]["field"] == field


def test_bad_sort_lists_the_allowed_values(api: Api, tenant: Tenant) -> None:
    found = api.error(
        "ListCallLogs", {"paging": {"sort": "id"}}, tenant.read, 400, "invalid_argument"
    )
    assert "-started_at" in found["msg"] and "duration" in found["meta"]["allowed"]


@pytest.mark.parametrize(
    "content", [b"", b"{", b"[]", b"null", b"42", b'"text"', b"\xff\xfe", b"{}{}"]
)
def test_body_that_is_not_a_json_object_is_malformed(
    api: Api, tenant: Tenant, content: bytes
) -> None:
    envelope(post(api, tenant.read, content), 400, "malformed")


def test_empty_object_is_a_valid_request(api: Api, tenant: Tenant) -> None:
    assert post(api, tenant.read, b"{}").json() == {
        "call_logs": [],
        "paging": {
            "after": "",
            "before": "",
            "limit": 100,
            "next": "",
            "prev": "",
            "sort": "-started_at",
        },
    }


def test_nulls_for_optional_objects_are_absent(api: Api, tenant: Tenant) -> None:
    response = post(api, tenant.read, b'{"filter": null, "paging": null}')
    assert response.status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_wrong_content_type_is_bad_route(api: Api, tenant: Tenant, content_type: str) -> None:
    envelope(post(api, tenant.read, b"{}", content_type), 404, "bad_route")


def test_charset_parameter_is_accepted(api: Api, tenant: Tenant) -> None:
    assert post(api, tenant.read, b"{}", "application/json; charset=utf-8").status_code == 200


def test_service_name_is_case_blind(api: Api, tenant: Tenant) -> None:
    api.ok("ListCallLogs", {}, tenant.read, service="ETelecom")
    api.ok("ListCallLogs", {}, tenant.read, prefix="partner")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/shop.Etelecom/NoSuchMethod",
        "/v1/shop.Other/ListCallLogs",
        "/v1/nope.Etelecom/ListCallLogs",
        "/v1/x",
    ],
)
def test_unknown_method_is_bad_route(api: Api, tenant: Tenant, path: str) -> None:
    response = api.http.post(
        path,
        content=b"{}",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {tenant.read}"},
    )
    envelope(response, 404, "bad_route")


def test_get_is_bad_route(api: Api) -> None:
    envelope(api.http.get(LIST), 404, "bad_route")


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer nope", "Basic abc", "Bearer ch_" + "x" * 43]
)
def test_missing_or_unknown_key_is_unauthenticated(api: Api, authorization: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    envelope(api.http.post(LIST, content=b"{}", headers=headers), 401, "unauthenticated")


def test_body_over_the_limit_is_refused(api: Api, tenant: Tenant) -> None:
    big = b'{"filter": {"call_number": "' + b"1" * (2 * 1024 * 1024) + b'"}}'
    response = post(api, tenant.read, big)
    assert response.status_code == 413
    assert response.json()["code"] == "resource_exhausted"


@pytest.mark.parametrize(
    "hostile",
    ["' OR 1=1 --", "%", "_", "\\", "😀", "\u202e", "Robert'); DROP TABLE call_logs;--"],
)
def test_hostile_strings_are_just_values(api: Api, tenant: Tenant, hostile: str) -> None:
    body = {
        "filter": {"call_number": hostile, "external_id": hostile, "external_session_id": hostile}
    }
    assert api.ok("ListCallLogs", body, tenant.read)["call_logs"] == []


def test_deeply_nested_json_is_an_error_not_a_crash(api: Api, tenant: Tenant) -> None:
    content = b'{"filter": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    response = post(api, tenant.read, content)
    assert response.status_code == 400


def test_nul_characters_are_refused_with_their_field(api: Api, tenant: Tenant) -> None:
    body = {"filter": {"external_id": "a\x00b"}}
    found = api.error("ListCallLogs", body, tenant.read, 400, "invalid_argument")
    assert found["meta"]["field"] == "filter.external_id"
    item = {
        "source_id": "x",
        "started_at": "2025-01-01T00:00:00Z",
        "call_targets": [{"target_number": "\x00"}],
    }
    found = api.error(
        "IngestCallLogs",
        {"call_logs": [item]},
        tenant.ingest,
        400,
        "invalid_argument",
        prefix="pbx",
    )
    assert found["meta"]["field"] == "call_logs[0].call_targets[0].target_number"


RAW_BODIES = [
    b'{"filter": {"call_number": "09\xff\xfe12"}}',  # invalid UTF-8 inside a string
    b'{"call_logs": [{"source_id": "\xc0\xaf"}]}',  # an overlong encoding of "/"
    b'{"hotline": "\xe1\xbb"}',  # a multi-byte sequence cut short
    b'{"\\ud800": 1}',  # a lone surrogate
    b'{"a\x00b": 1}',  # a raw NUL
    b"\xef\xbb\xbf{}",  # a byte order mark
]


def every_method(api: Api) -> list[str]:
    paths = api.http.get("/openapi.json").json()["paths"]
    return [path for path in paths if path.startswith("/v1/")]


@pytest.mark.parametrize("content", RAW_BODIES)
def test_bytes_that_are_not_utf8_json_are_malformed_everywhere(
    api: Api, tenant: Tenant, content: bytes
) -> None:
    paths = every_method(api)
    assert len(paths) >= 20
    for path in paths:
        response = api.http.post(
            path,
            content=content,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {tenant.admin}"},
        )
        assert (response.status_code, response.json()["code"]) == (400, "malformed"), path
    basic = base64.b64encode(f"freeswitch:{tenant.ingest}".encode()).decode()
    response = api.http.post(
        "/ingest/freeswitch",
        content=content,
        headers={"Content-Type": "application/json", "Authorization": f"Basic {basic}"},
    )
    assert (response.status_code, response.json()["code"]) == (400, "malformed")


def test_a_json_object_missing_a_required_field_names_that_field(api: Api, tenant: Tenant) -> None:
    found = api.error("IngestCallLogs", {}, tenant.ingest, 400, "invalid_argument", prefix="pbx")
    assert found["meta"]["field"] == "call_logs"
    items: list[dict[str, Any]] = [
        {"source_id": f"s{i}", "started_at": "2025-01-01T00:00:00Z"} for i in range(4)
    ]
    del items[3]["source_id"]
    found = api.error(
        "IngestCallLogs", {"call_logs": items}, tenant.ingest, 400, "invalid_argument", prefix="pbx"
    )
    assert found["meta"]["field"] == "call_logs[3].source_id"
    items[3]["source_id"] = "s3"
    items[2]["call_targets"] = [{}, {"status": "answered", "fail_code": "x"}]
    found = api.error(
        "IngestCallLogs", {"call_logs": items}, tenant.ingest, 400, "invalid_argument", prefix="pbx"
    )
    assert found["meta"]["field"] == "call_logs[2].call_targets[1].fail_code"
    found = api.error("CreateHotline", {}, tenant.admin, 400, "invalid_argument")
    assert found["meta"]["field"] == "hotline"
