"""A demo tenant: directory plus realistic calls spread over 90 days, stored through the ingest
service like any PBX's calls."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

import msgspec

from callhistory.calllogs.schemas import CallTarget
from callhistory.db.engine import Database, transaction
from callhistory.db.work import unit_of_work
from callhistory.directory import service as directory
from callhistory.directory.schemas import (
    DepartmentCreate,
    ExtensionCreate,
    HotlineCreate,
    UserCreate,
)
from callhistory.ingest import service as ingest
from callhistory.ingest.schemas import IngestCallLog
from callhistory.keys import service as keys
from callhistory.keys.schemas import ApiKeyCreated, TenantRead
from callhistory.principal import Principal, Scope

BATCH = 1000
_FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi"]
_GIVEN = ["An", "Bình", "Chi", "Dũng", "Hà", "Hương", "Lan", "Minh", "Nam", "Thảo", "Trang", "Tú"]
_MOBILE_PREFIXES = ["090", "091", "093", "096", "097", "098", "032", "035", "070", "077", "086"]
_CAUSES = {
    "no_answer": ("NO_ANSWER", 480),
    "busy": ("USER_BUSY", 486),
    "cancelled": ("ORIGINATOR_CANCEL", 487),
}


class DemoResult(msgspec.Struct, kw_only=True):
    tenant: TenantRead
    keys: list[ApiKeyCreated]
    calls: int


def _customer(rng: random.Random) -> str:
    local = rng.choice(_MOBILE_PREFIXES)[1:] + f"{rng.randrange(10**7):07d}"
    style = rng.random()
    if style < 0.6:
        return "0" + local
    return ("+84" if style < 0.85 else "84") + local


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _call(
    rng: random.Random,
    index: int,
    start: dt.datetime,
    hotlines: list[str],
    extensions: list[str],
) -> IngestCallLog:
    """One call: inbound rings 1-3 extensions, outbound leaves through a trunk, internal ext→ext."""
    kind = rng.random()
    direction = "in" if kind < 0.55 else "out" if kind < 0.9 else "ext"
    customer = _customer(rng)
    hotline = rng.choice(hotlines)
    answered = rng.random() < 0.75
    talk = int(rng.lognormvariate(4.2, 0.9)) + 1 if answered else 0
    targets: list[CallTarget] = []
    moment = start
    if direction == "in":
        caller, callee = customer, hotline
        legs = rng.choice([1, 1, 2, 3])
        ringing = rng.sample(extensions, legs)
    elif direction == "out":
        caller, callee = rng.choice(extensions), customer
        ringing = [customer]
    else:
        caller, callee = rng.sample(extensions, 2)
        ringing = [callee]
    for leg, number in enumerate(ringing):
        ring = rng.randint(3, 25)
        last = leg == len(ringing) - 1
        status = "answered" if answered and last else rng.choice(["no_answer", "busy", "cancelled"])
        reason, code = ("NORMAL_CLEARING", 0) if status == "answered" else _CAUSES[status]
        answer_at = moment + dt.timedelta(seconds=ring) if status == "answered" else None
        end_at = (
            (answer_at + dt.timedelta(seconds=talk))
            if answer_at
            else moment + dt.timedelta(seconds=ring)
        )
        targets.append(
            CallTarget(
                add_time=_iso(moment),
                ring_time=_iso(moment),
                answered_time=_iso(answer_at) if answer_at else None,
                ended_time=_iso(end_at),
                status=status,  # type: ignore[arg-type]
                end_reason=reason,
                fail_code=code,
                target_number=number,
                trunk_name="viettel-trunk-1" if direction == "out" else "",
            )
        )
        moment = end_at
    recordings = [f"https://recordings.example.vn/demo/{index}.mp3"] if answered else []
    return IngestCallLog(
        source_id=f"demo-{index}",
        started_at=_iso(start),
        ended_at=_iso(moment),
        caller=caller,
        callee=callee,
        direction=direction,  # type: ignore[arg-type]
        call_targets=targets,
        recording_urls=recordings,
        note=rng.choice(
            ["", "", "", "Khách hỏi về đơn hàng", "Gọi lại sau", "Customer asked for a refund"]
        ),
    )


async def create_demo(
    db: Database,
    *,
    calls: int,
    seed: int = 7,
    data_key: str = "",
    progress: Callable[[int], None] = lambda _: None,
) -> DemoResult:
    rng = random.Random(seed)
    async with transaction(db, write=True) as conn:
        sealer = await keys.sealer(conn, configured=data_key)
        tenant = await keys.create_tenant(
            conn, name="Demo Call Centre", domain=f"demo-{rng.randrange(10**6)}.callhistory.local"
        )
        tenant_id = int(tenant.id)
        made = [await keys.create_key(conn, tenant_id=tenant_id, scope=scope) for scope in Scope]
        principal = Principal(
            key_id=0,
            tenant_id=tenant_id,
            tenant_domain=tenant.domain,
            timezone=tenant.timezone,
            scope=Scope.ADMIN,
        )
        hotline_numbers = ["02873001234", "19006868", "0901234567"]
        hotline_ids = [
            (
                await directory.create_hotline(
                    conn,
                    principal=principal,
                    request=HotlineCreate(hotline=n, name=f"Hotline {i + 1}", network="viettel"),
                )
            ).id
            for i, n in enumerate(hotline_numbers)
        ]
        department_ids = [
            (
                await directory.create_department(
                    conn, principal=principal, request=DepartmentCreate(name=name)
                )
            ).id
            for name in ("Chăm sóc khách hàng", "Kinh doanh", "Kỹ thuật")
        ]
        extensions: list[str] = []
        for i in range(12):
            user = await directory.create_user(
                conn,
                principal=principal,
                request=UserCreate(
                    full_name=f"{rng.choice(_FAMILY)} {rng.choice(_GIVEN)}",
                    email=f"agent{i + 1}@demo.vn",
                    department_id=department_ids[i % len(department_ids)],
                ),
            )
            number = str(101 + i)
            await directory.create_extension(
                conn,
                principal=principal,
                request=ExtensionCreate(
                    extension_number=number, hotline_id=hotline_ids[i % 3], user_id=user.id
                ),
                sealer=sealer,
            )
            extensions.append(number)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    starts = sorted(now - dt.timedelta(seconds=rng.randrange(90 * 86_400)) for _ in range(calls))
    for first in range(0, calls, BATCH):
        items = [
            _call(rng, i, starts[i], hotline_numbers, extensions)
            for i in range(first, min(calls, first + BATCH))
        ]
        async with unit_of_work(db, write=True) as work:
            await ingest.ingest(work, principal=principal, items=items)
        progress(len(items))
    return DemoResult(tenant=tenant, keys=made, calls=calls)
