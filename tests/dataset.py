"""A tenant filled with known calls, and an oracle that applies the contract's rules to them.

The oracle is written from CONTRACT.md, not from the service: numbers are compared by the
subscriber they were generated from, not by the service's normaliser.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from tests.harness import Api, Tenant

UTC = dt.UTC
TENANT_TZ = ZoneInfo("Asia/Ho_Chi_Minh")  # a tenant's default time zone
BASE_TIME = dt.datetime(2025, 3, 1, tzinfo=UTC)
# Subscribers as 9 digits after the national 0; those starting 3x also have a pre-2018 form.
SUBSCRIBERS = ["912345678", "987654321", "356781234", "398765432", "701234567", "283001234"]
OLD_PREFIX = {f"3{d}": f"16{d}" for d in "23456789"}


def render(subscriber: str, rng: random.Random) -> str:
    """One of the ways people write a Vietnamese number."""
    forms = ["0" + subscriber, "+84" + subscriber, "84" + subscriber]
    forms.append(f"0{subscriber[:2]} {subscriber[2:5]}.{subscriber[5:]}")
    forms.append(f"(+84) {subscriber[:3]}-{subscriber[3:]}")
    old = OLD_PREFIX.get(subscriber[:2])
    if old is not None:
        forms.append("0" + old + subscriber[2:])
        forms.append("+84" + old + subscriber[2:])
    return rng.choice(forms)


@dataclass
class Call:
    source_id: str
    body: dict[str, Any]
    caller_party: str  # subscriber (9 digits) or extension number
    callee_party: str
    started: dt.datetime
    duration: int
    state: str
    extension_id: str = ""
    user_id: str = ""
    hotline_id: str = ""
    id: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    tenant: Tenant
    calls: list[Call]
    hotlines: dict[str, str]  # id -> number
    extensions: dict[str, dict[str, str]]  # id -> {number, user_id, hotline_id}
    user_department: dict[str, str]
    departments: list[str]


def build(api: Api, tenant: Tenant, *, calls: int = 240, seed: int = 1) -> Dataset:
    rng = random.Random(seed)
    admin = tenant.admin
    hotlines = {}
    for number in ("02873001234", "19006868"):
        hotlines[api.ok("CreateHotline", {"hotline": number}, admin)["id"]] = number
    departments = [api.ok("CreateDepartment", {"name": n}, admin)["id"] for n in ("Sales", "Care")]
    users = {}
    for i in range(4):
        user = {"full_name": f"Agent {i}", "department_id": departments[i % 2]}
        users[api.ok("CreateUser", user, admin)["id"]] = departments[i % 2]
    extensions = {}
    user_ids = list(users)
    hotline_ids = list(hotlines)
    for i in range(5):
        extension = {
            "extension_number": 101 + i,
            "hotline_id": hotline_ids[i % 2],
            "user_id": user_ids[i % 4],
        }
        ext = api.ok("CreateExtension", extension, admin)
        extensions[ext["id"]] = {
            "number": ext["extension_number"],
            "user_id": ext["user_id"],
            "hotline_id": ext["hotline_id"],
        }
    ext_ids = list(extensions)
    out: list[Call] = []
    for i in range(calls):
        # Some calls share a start time, so ties must be broken by id.
        started = BASE_TIME + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 20, 7))
        direction = rng.choice(["in", "in", "out", "ext", "ext_in", "ext_out", "unknown"])
        answered = rng.random() < 0.6
        # Around the tiers of long calls (300 s, 1,800 s) too.
        duration = rng.choice([0, 5, 30, 30, 60, 61, 299, 300, 301, 1799, 1800, 4000])
        duration = duration if answered else 0
        ext_id = rng.choice([*ext_ids, ""])
        ext = extensions.get(ext_id)
        subscriber = rng.choice(SUBSCRIBERS)
        ext_number = ext["number"] if ext else "199"
        hotline_id = ext["hotline_id"] if ext else ""
        if direction in ("in", "unknown"):
            hotline_id = rng.choice(hotline_ids)
            caller_party, callee_party = subscriber, hotlines[hotline_id]
        elif direction == "ext_in":
            caller_party, callee_party = subscriber, ext_number
        elif direction == "ext":
            caller_party, callee_party = ext_number, rng.choice(["101", "102", "103"])
        else:
            caller_party, callee_party = ext_number, subscriber
        ended = started + dt.timedelta(seconds=duration + rng.randint(1, 30))
        body: dict[str, Any] = {
            "source_id": f"call-{seed}-{i}",
            "started_at": started.isoformat(),
            "ended_at": ended.isoformat(),
            "caller": render(caller_party, rng) if len(caller_party) == 9 else caller_party,
            "callee": render(callee_party, rng) if len(callee_party) == 9 else callee_party,
            "direction": direction,
            "call_state": "answered" if answered else "not_answered",
            "duration": duration,
            "extension_id": ext_id,
            "hotline_id": hotline_id,
            "user_id": ext["user_id"] if ext else "",
            "external_id": rng.choice(["", "", "sdk-a", "sdk-b"]),
            "external_session_id": rng.choice(["", "", "sess-1", "sess-2"]),
        }
        out.append(
            Call(
                source_id=body["source_id"],
                body=body,
                caller_party=_party(caller_party),
                callee_party=_party(callee_party),
                started=started,
                duration=duration,
                state=body["call_state"],
                extension_id=ext_id,
                user_id=body["user_id"],
                hotline_id=body["hotline_id"],
            )
        )
    acks = api.ingest(tenant.ingest, [c.body for c in out])
    for call, ack in zip(out, acks, strict=True):
        assert ack["source_id"] == call.source_id
        call.id = ack["id"]
    stored = {
        row["id"]: row
        for page in api.walk(tenant.read, {"paging": {"limit": 1000}})
        for row in page
    }
    for call in out:
        call.fields = stored[call.id]
    return Dataset(
        tenant=tenant,
        calls=out,
        hotlines=hotlines,
        extensions=extensions,
        user_department=users,
        departments=departments,
    )


def _party(number: str) -> str:
    """A hotline written as 0… is the subscriber after its 0; extensions stay as they are."""
    return number[1:] if number.startswith("0") and len(number) == 10 else number


def matches(call: Call, f: dict[str, Any], data: Dataset, tz: dt.tzinfo = TENANT_TZ) -> bool:
    """Does ``call`` match filter ``f``, by the contract's rules?"""
    if "date_from" in f and call.started < _instant(f["date_from"], tz, end=False):
        return False
    if "date_to" in f and call.started > _instant(f["date_to"], tz, end=True):
        return False
    if f.get("call_state") not in (None, "unknown") and call.state != f["call_state"]:
        return False
    if f.get("direction") not in (None, "unknown") and call.body["direction"] != f["direction"]:
        return False
    if "duration" in f:
        op, value = f["duration"]["comparison"], int(f["duration"]["value"])
        ops = {
            "equal": call.duration == value,
            "not_equal": call.duration != value,
            "less_than": call.duration < value,
            "less_than_or_equal_to": call.duration <= value,
            "greater_than": call.duration > value,
            "greater_than_or_equal_to": call.duration >= value,
        }
        if not ops.get(op, True):
            return False
    if "call_number_party" in f and f["call_number_party"] not in (
        call.caller_party,
        call.callee_party,
    ):
        return False
    if f.get("extension_ids") and call.extension_id not in f["extension_ids"]:
        return False
    if f.get("hotline_ids") and call.hotline_id not in f["hotline_ids"]:
        return False
    if f.get("user_id") and call.user_id != f["user_id"]:
        return False
    if f.get("department_id") and data.user_department.get(call.user_id) != f["department_id"]:
        return False
    if f.get("external_id") and call.body["external_id"] != f["external_id"]:
        return False
    return not (
        f.get("external_session_id")
        and call.body["external_session_id"] != f["external_session_id"]
    )


def _instant(text: str, tz: dt.tzinfo, *, end: bool) -> dt.datetime:
    if len(text) == 10:
        day = dt.date.fromisoformat(text)
        start = dt.datetime(day.year, day.month, day.day, tzinfo=tz)
        return start + dt.timedelta(days=1, microseconds=-1) if end else start
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=tz)


SORT_KEYS = {
    "started_at": lambda c: c.started,
    "created_at": lambda c: c.fields["created_at"],
    "updated_at": lambda c: c.fields["updated_at"],
    "duration": lambda c: c.duration,
}


def expected(
    data: Dataset, f: dict[str, Any], sort: str = "-started_at", tz: dt.tzinfo = TENANT_TZ
) -> list[str]:
    """Ids of the matching calls in ``sort`` order, ties broken by id the same way."""
    name = sort.lstrip("-")
    rows = [c for c in data.calls if matches(c, f, data, tz)]
    rows.sort(
        key=lambda c: (_sortable(SORT_KEYS[name](c)), int(c.id)), reverse=sort.startswith("-")
    )
    return [c.id for c in rows]


def _sortable(value: Any) -> Any:
    """RFC 3339 texts of the response compare as instants."""
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value
