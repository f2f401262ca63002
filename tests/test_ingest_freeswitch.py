"""FreeSWITCH mod_json_cdr posted to the real endpoint, compared field by field with what the
PBX recorded (the fixtures' own parameters)."""

from __future__ import annotations

import base64
import itertools
import secrets
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
import pytest

from tests.fixtures.freeswitch import a_leg, b_leg
from tests.harness import Api, Tenant, new_tenant

T0 = 1_760_400_000_000_000  # 2025-10-14T00:00:00Z
S = 1_000_000
_ids = itertools.count(1)


def uid() -> str:
    return f"5a3a1d91-90d3-4db4-af5c-{next(_ids):012d}"


def missed_call(
    *, caller: str = "0912345678", destination: str = "19006868", domain: str = ""
) -> dict[str, Any]:
    """An A-leg CDR of an inbound call nobody answered, with a new uuid."""
    return a_leg(
        uuid=uid(),
        caller=caller,
        destination=destination,
        start=T0,
        answer=0,
        end=T0 + S,
        cause="NO_ANSWER",
        b_legs=[],
        domain=domain,
    )


def iso(micros: int) -> str:
    import datetime as dt

    text = dt.datetime.fromtimestamp(micros / S, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = micros % S
    return text + (f".{frac // 1000:03d}" if frac else "") + "Z"


def post(
    api: Api, key: str, doc: dict[str, Any], *, form: str = "", user: str = "freeswitch"
) -> httpx.Response:
    auth = base64.b64encode(f"{user}:{key}".encode()).decode()
    headers = {"Authorization": f"Basic {auth}"}
    raw = msgspec.json.encode(doc)
    if form == "url":
        content = b"cdr=" + quote(raw.decode(), safe="").encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif form == "base64":
        content = b"cdr=" + base64.b64encode(raw)
        headers["Content-Type"] = "application/x-www-form-base64-encoded"
    else:
        content = raw
        headers["Content-Type"] = "application/json"
    uuid = doc["callflow"][0]["caller_profile"]["uuid"]
    return api.http.post(f"/ingest/freeswitch?uuid={uuid}", content=content, headers=headers)


def send(api: Api, key: str, *docs: dict[str, Any], form: str = "") -> None:
    for doc in docs:
        response = post(api, key, doc, form=form)
        assert response.status_code == 200, response.text


def calls(api: Api, tenant: Tenant) -> list[dict[str, Any]]:
    return [r for p in api.walk(tenant.read, {"paging": {"limit": 1000}}) for r in p]


def only(api: Api, tenant: Tenant) -> dict[str, Any]:
    found = calls(api, tenant)
    assert len(found) == 1, found
    return found[0]


def test_answered_inbound_call_through_a_hotline(api: Api, tenant: Tenant) -> None:
    hotline = api.ok("CreateHotline", {"hotline": "02873001234"}, tenant.admin)
    a, b = uid(), uid()
    recording = "/var/lib/freeswitch/recordings/tongdai.example.vn/2025-10-14/call.wav"
    send(
        api,
        tenant.ingest,
        a_leg(
            uuid=a,
            caller="0912345678",
            destination="02873001234",
            start=T0,
            answer=T0 + 8 * S,
            end=T0 + 68 * S,
            cause="NORMAL_CLEARING",
            b_legs=[(b, "101")],
            recording=recording,
        ),
        b_leg(
            uuid=b,
            a_uuid=a,
            caller="0912345678",
            destination="101",
            start=T0 + S // 5,
            answer=T0 + 8 * S,
            end=T0 + 68 * S,
            cause="NORMAL_CLEARING",
            sip_status="200",
        ),
    )
    call = only(api, tenant)
    assert (call["caller"], call["callee"], call["direction"]) == (
        "0912345678",
        "02873001234",
        "in",
    )
    assert (call["call_state"], call["call_status"], call["duration"]) == ("answered", "P", 60)
    assert call["started_at"] == iso(T0) and call["ended_at"] == iso(T0 + 68 * S)
    assert call["hotline_id"] == hotline["id"]
    assert call["recording_urls"] == [recording]
    assert call["call_targets"] == [
        {
            "add_time": iso(T0 + S // 5),
            "answered_time": iso(T0 + 8 * S),
            "end_reason": "NORMAL_CLEARING",
            "ended_time": iso(T0 + 68 * S),
            "fail_code": 0,
            "ring_duration": 7,
            "ring_time": iso(T0 + S // 5),
            "status": "answered",
            "target_number": "101",
            "trunk_name": "",
        }
    ]


def test_b_leg_first_and_repeats_give_the_same_call(api: Api, database_url: str) -> None:
    in_order, reversed_ = new_tenant(database_url), new_tenant(database_url)
    a, b = uid(), uid()
    docs = [
        a_leg(
            uuid=a,
            caller="0987000111",
            destination="19006868",
            start=T0,
            answer=T0 + 5 * S,
            end=T0 + 35 * S,
            cause="NORMAL_CLEARING",
            b_legs=[(b, "102")],
        ),
        b_leg(
            uuid=b,
            a_uuid=a,
            caller="0987000111",
            destination="102",
            start=T0 + S,
            answer=T0 + 5 * S,
            end=T0 + 35 * S,
            cause="NORMAL_CLEARING",
            sip_status="200",
        ),
    ]
    send(api, in_order.ingest, *docs)
    send(api, reversed_.ingest, docs[1])
    partial = only(api, reversed_)
    assert [t["target_number"] for t in partial["call_targets"]] == ["102"]
    send(api, reversed_.ingest, docs[0], docs[1], docs[0])
    first, second = only(api, in_order), only(api, reversed_)
    same = (
        "caller",
        "callee",
        "direction",
        "call_state",
        "call_status",
        "duration",
        "started_at",
        "ended_at",
        "call_targets",
    )
    assert {k: first[k] for k in same} == {k: second[k] for k in same}
    assert second["call_state"] == "answered" and second["duration"] == 30


@pytest.mark.parametrize(
    ("a_cause", "b_cause", "sip", "status"),
    [
        ("ORIGINATOR_CANCEL", "ORIGINATOR_CANCEL", "487", "cancelled"),
        ("NO_ANSWER", "NO_ANSWER", "480", "no_answer"),
        ("USER_BUSY", "USER_BUSY", "486", "busy"),
        ("CALL_REJECTED", "CALL_REJECTED", "603", "failed"),
    ],
)
def test_unanswered_calls(
    api: Api, tenant: Tenant, a_cause: str, b_cause: str, sip: str, status: str
) -> None:
    a, b = uid(), uid()
    send(
        api,
        tenant.ingest,
        a_leg(
            uuid=a,
            caller="0912000222",
            destination="19006868",
            start=T0,
            answer=0,
            end=T0 + 20 * S,
            cause=a_cause,
            b_legs=[(b, "101")],
        ),
        b_leg(
            uuid=b,
            a_uuid=a,
            caller="0912000222",
            destination="101",
            start=T0 + S,
            answer=0,
            end=T0 + 20 * S,
            cause=b_cause,
            sip_status=sip,
        ),
    )
    call = only(api, tenant)
    assert (call["call_state"], call["call_status"], call["duration"]) == ("not_answered", "N", 0)
    (target,) = call["call_targets"]
    assert (target["status"], target["fail_code"], target["end_reason"]) == (
        status,
        int(sip),
        b_cause,
    )
    assert target["answered_time"] is None and target["ring_duration"] == 19


def test_ring_group_with_several_legs(api: Api, tenant: Tenant) -> None:
    a, b1, b2, b3 = uid(), uid(), uid(), uid()
    legs = [(b1, "101"), (b2, "102"), (b3, "103")]
    send(
        api,
        tenant.ingest,
        a_leg(
            uuid=a,
            caller="0903111222",
            destination="19006868",
            start=T0,
            answer=T0 + 9 * S,
            end=T0 + 129 * S,
            cause="NORMAL_CLEARING",
            b_legs=legs,
        ),
        b_leg(
            uuid=b1,
            a_uuid=a,
            caller="0903111222",
            destination="101",
            start=T0 + S,
            answer=0,
            end=T0 + 9 * S,
            cause="LOSE_RACE",
            sip_status="487",
        ),
        b_leg(
            uuid=b2,
            a_uuid=a,
            caller="0903111222",
            destination="102",
            start=T0 + S + 1000,
            answer=T0 + 9 * S,
            end=T0 + 129 * S,
            cause="NORMAL_CLEARING",
            sip_status="200",
        ),
        b_leg(
            uuid=b3,
            a_uuid=a,
            caller="0903111222",
            destination="103",
            start=T0 + S + 2000,
            answer=0,
            end=T0 + 9 * S,
            cause="LOSE_RACE",
            sip_status="487",
        ),
    )
    call = only(api, tenant)
    assert [(t["target_number"], t["status"]) for t in call["call_targets"]] == [
        ("101", "cancelled"),
        ("102", "answered"),
        ("103", "cancelled"),
    ]
    assert call["duration"] == 120 and call["call_state"] == "answered"


def test_outbound_through_a_trunk_is_attributed_to_the_extension(api: Api, tenant: Tenant) -> None:
    user = api.ok("CreateUser", {"full_name": "Minh"}, tenant.admin)
    ext = api.ok("CreateExtension", {"extension_number": 101, "user_id": user["id"]}, tenant.admin)
    a, b = uid(), uid()
    send(
        api,
        tenant.ingest,
        a_leg(
            uuid=a,
            caller="101",
            destination="0987654321",
            start=T0,
            answer=T0 + 12 * S,
            end=T0 + 52 * S,
            cause="NORMAL_CLEARING",
            b_legs=[(b, "0987654321")],
            call_direction="outbound",
        ),
        b_leg(
            uuid=b,
            a_uuid=a,
            caller="101",
            destination="0987654321",
            start=T0 + S // 2,
            answer=T0 + 12 * S,
            end=T0 + 52 * S,
            cause="NORMAL_CLEARING",
            sip_status="200",
            gateway="viettel-trunk",
        ),
    )
    call = only(api, tenant)
    assert (call["direction"], call["caller"], call["callee"]) == ("out", "101", "0987654321")
    assert call["extension_id"] == ext["id"] and call["user_id"] == user["id"]
    (target,) = call["call_targets"]
    assert (target["trunk_name"], target["target_number"], target["status"]) == (
        "viettel-trunk",
        "0987654321",
        "answered",
    )


def test_internal_extension_to_extension(api: Api, tenant: Tenant) -> None:
    a, b = uid(), uid()
    send(
        api,
        tenant.ingest,
        a_leg(
            uuid=a,
            caller="101",
            destination="102",
            start=T0,
            answer=T0 + 3 * S,
            end=T0 + 33 * S,
            cause="NORMAL_CLEARING",
            b_legs=[(b, "102")],
        ),
        b_leg(
            uuid=b,
            a_uuid=a,
            caller="101",
            destination="102",
            start=T0 + S,
            answer=T0 + 3 * S,
            end=T0 + 33 * S,
            cause="NORMAL_CLEARING",
            sip_status="200",
        ),
    )
    call = only(api, tenant)
    assert (call["direction"], call["duration"]) == ("ext", 30)


def test_transferred_call_keeps_both_legs(api: Api, tenant: Tenant) -> None:
    a, b1, b2 = uid(), uid(), uid()
    send(
        api,
        tenant.ingest,
        a_leg(
            uuid=a,
            caller="0934555666",
            destination="19006868",
            start=T0,
            answer=T0 + 4 * S,
            end=T0 + 100 * S,
            cause="NORMAL_CLEARING",
            b_legs=[(b1, "101"), (b2, "102")],
            transferred_to="102",
        ),
        b_leg(
            uuid=b1,
            a_uuid=a,
            caller="0934555666",
            destination="101",
            start=T0 + S,
            answer=T0 + 4 * S,
            end=T0 + 40 * S,
            cause="NORMAL_CLEARING",
            sip_status="200",
        ),
        b_leg(
            uuid=b2,
            a_uuid=a,
            caller="0934555666",
            destination="102",
            start=T0 + 38 * S,
            answer=T0 + 41 * S,
            end=T0 + 100 * S,
            cause="NORMAL_CLEARING",
            sip_status="200",
        ),
    )
    call = only(api, tenant)
    assert call["callee"] == "19006868"  # the number dialled, not the transfer target
    assert [(t["target_number"], t["status"]) for t in call["call_targets"]] == [
        ("101", "answered"),
        ("102", "answered"),
    ]
    assert call["duration"] == 36 + 59  # each agent's billed talk; the second between rang


@pytest.mark.parametrize("form", ["url", "base64"])
def test_form_encoded_posts(api: Api, tenant: Tenant, form: str) -> None:
    a = uid()
    doc = a_leg(
        uuid=a,
        caller="0912345678",
        destination="19006868",
        start=T0,
        answer=0,
        end=T0 + 9 * S,
        cause="ORIGINATOR_CANCEL",
        b_legs=[],
    )
    send(api, tenant.ingest, doc, form=form)
    call = only(api, tenant)
    assert (call["call_state"], call["caller"]) == ("not_answered", "0912345678")


def test_bad_posts_get_a_clear_4xx(api: Api, tenant: Tenant, database_url: str) -> None:
    doc = missed_call()
    headers = {
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(f"x:{tenant.ingest}".encode()).decode(),
    }
    assert api.http.post("/ingest/freeswitch", content=b"{nope", headers=headers).status_code == 400
    no_uuid = msgspec.json.decode(msgspec.json.encode(doc))
    del no_uuid["variables"]["uuid"]
    response = api.http.post(
        "/ingest/freeswitch", content=msgspec.json.encode(no_uuid), headers=headers
    )
    assert response.status_code == 400 and "uuid" in response.json()["msg"]
    assert post(api, "ch_wrong", doc).status_code == 401
    assert post(api, tenant.read, doc).status_code == 403
    assert (
        api.http.post(
            "/ingest/freeswitch", content=b"{}", headers={"Content-Type": "application/json"}
        ).status_code
        == 401
    )
    their_domain = f"t{secrets.token_hex(4)}.example.vn"
    new_tenant(database_url, domain=their_domain)
    foreign = missed_call(domain=their_domain)
    assert post(api, tenant.ingest, foreign).status_code == 403
    assert calls(api, tenant) == []


def test_unusable_cdrs_are_400_not_500(api: Api, tenant: Tenant) -> None:
    b = b_leg(
        uuid=uid(),
        a_uuid="x",
        caller="0912",
        destination="101",
        start=T0,
        answer=0,
        end=T0 + S,
        cause="NO_ANSWER",
        sip_status="480",
    )
    del b["variables"]["originating_leg_uuid"]
    b["callflow"][0]["caller_profile"]["originator"] = {"originator_caller_profiles": {"x": 1}}
    response = post(api, tenant.ingest, b)
    assert response.status_code == 400
    assert "originator" in response.json()["msg"]
    long_number = "0" * 100
    a = a_leg(
        uuid=uid(),
        caller=long_number,
        destination="19006868",
        start=T0,
        answer=0,
        end=T0 + S,
        cause="NO_ANSWER",
        b_legs=[],
    )
    response = post(api, tenant.ingest, a)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_argument"
    assert response.json()["meta"]["field"] == "call_logs[0].caller"
    assert calls(api, tenant) == []


def test_strangers_are_turned_away_before_the_body_and_the_write_lock(
    api: Api, tenant: Tenant, database_url: str
) -> None:
    """Wrong credentials are 401 whatever the body holds, and are answered while another
    process holds SQLite's write lock (the key is checked on a read)."""
    import sqlite3

    wrong = base64.b64encode(b"freeswitch:ch_not_a_key").decode()
    headers = {"Authorization": f"Basic {wrong}", "Content-Type": "application/json"}
    for body in (b"{nope", b"x" * (2 * 1024 * 1024), b""):
        response = api.http.post("/ingest/freeswitch", content=body, headers=headers)
        assert response.status_code == 401, response.text
    if not database_url.startswith("sqlite"):
        return
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=1)
    try:
        holder.execute("BEGIN IMMEDIATE")
        response = api.http.post("/ingest/freeswitch", content=b"{}", headers=headers, timeout=20)
        assert response.status_code == 401, response.text
    finally:
        holder.rollback()
        holder.close()


def test_absurd_times_and_deep_nesting_are_400_not_500(api: Api, tenant: Tenant) -> None:
    headers = {
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(f"x:{tenant.ingest}".encode()).decode(),
    }
    for start in ("9" * 30, "9" * 5000):
        body = msgspec.json.encode({"variables": {"uuid": "u1", "start_uepoch": start}})
        response = api.http.post("/ingest/freeswitch", content=body, headers=headers)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "malformed"
    nested = (
        b'{"variables": {"uuid": "u2", "start_uepoch": "1"}, "x": '
        + b"[" * 5000
        + b"]" * 5000
        + b"}"
    )
    response = api.http.post("/ingest/freeswitch", content=nested, headers=headers)
    assert (response.status_code, response.json()["code"]) == (400, "malformed")
    assert calls(api, tenant) == []
