"""Legs of a call as PBXs report them, and how one call log is assembled from them.

Pure functions, no I/O. A PBX writes one record per channel (FreeSWITCH) or per caller→target
pairing (Asterisk); each becomes a ``Leg``. The caller's legs describe the call (who, when,
which way); the target legs are the phones and trunks it rang and become ``call_targets``.
Asterisk rows need the whole call to be read (``Local/`` plumbing), so they are stored as
``row`` legs and turned into caller and target legs by ``asterisk_csv.resolve`` first.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from callhistory.calllogs.schemas import CallTarget, Direction, TargetStatus
from callhistory.ingest.schemas import IngestCallLog
from callhistory.kit.numbers import normalize
from callhistory.kit.times import format_micros

# Which side of the PBX a party is on: a tenant's phone ("internal"), the outside world
# ("external"), or not said ("").
Side = Literal["", "internal", "external"]
EXTENSION_MAX_DIGITS = 6  # the last resort: numbers this short look like extensions
_ANONYMOUS = frozenset({"anonymous", "unknown", "restricted", "private", "unavailable"})


class Leg(msgspec.Struct, kw_only=True, omit_defaults=True):
    call_id: str  # the call's source_id: FreeSWITCH A-leg uuid, Asterisk linkedid
    leg_id: str  # unique within the call
    role: Literal["caller", "target", "row"]
    start: int  # microseconds UTC
    answer: int | None = None  # set only when the PBX says this leg was answered
    end: int | None = None
    caller: str = ""
    callee: str = ""
    stated: Direction = "unknown"  # the call's direction as the PBX itself stated it
    caller_side: Side = ""  # the PBX's own evidence of each party's side
    callee_side: Side = ""
    talk_seconds: int | None = None  # the PBX's own billable seconds, when it gives them
    status: TargetStatus = "no_answer"
    end_reason: str = ""
    fail_code: int = 0
    target_number: str = ""
    trunk_name: str = ""
    recording_urls: list[str] = []
    # A target known only from its A-leg's list of originated legs: the uuid of the B-leg it
    # stands for, dropped once that B-leg's own CDR is stored.
    stands_for: str = ""
    # An Asterisk row (role "row"): channel, dstchannel, lastapp, lastdata, disposition.
    channel: str = ""
    peer: str = ""
    app: str = ""
    app_data: str = ""
    disposition: str = ""


@dataclass(frozen=True)
class Directory:
    """What the tenant's directory says about numbers: its extensions, and its hotlines
    (normalised)."""

    extensions: Container[str] = field(default_factory=frozenset)
    hotlines: Container[str] = field(default_factory=frozenset)


def shape_side(number: str) -> Side:
    """The last resort: short numbers and SIP user names are phones; long numbers and the
    anonymous caller ids are the outside world."""
    text = number.strip()
    if not text:
        return ""
    digits = text[1:] if text.startswith("+") else text
    if digits.isdigit():
        return "internal" if len(digits) <= EXTENSION_MAX_DIGITS and text == digits else "external"
    return "external" if text.lower() in _ANONYMOUS else "internal"


def decide_direction(
    *, caller: str, callee: str, stated: Direction, caller_side: Side, callee_side: Side,
    directory: Directory,
) -> Direction:  # fmt: skip
    """The tenant's directory first, the PBX's own statement second, number shape last."""
    caller_known: Side = (
        "internal"
        if caller in directory.extensions or normalize(caller) in directory.hotlines
        else ""
    )
    to_hotline = bool(callee) and normalize(callee) in directory.hotlines
    if to_hotline and not caller_known:
        return "in"  # someone outside the tenant's phones called one of its hotlines
    callee_known: Side = "internal" if callee in directory.extensions or to_hotline else ""
    if caller_known and callee_known:
        return "ext"
    if stated != "unknown":
        return stated
    first = caller_known or caller_side or shape_side(caller)
    second = callee_known or callee_side or shape_side(callee)
    if first == "external":
        return "in"
    if first == "internal":
        return "ext" if second == "internal" else ("out" if second == "external" else "unknown")
    return "in" if second == "internal" else "unknown"


def _time(micros: int | None) -> str | None:
    return format_micros(micros)


def _merge_side(legs: list[Leg], attr: str) -> Side:
    """One side from several legs: a call that rang a phone of the tenant is internal even if
    a forward to a trunk rang too."""
    sides = {getattr(leg, attr) for leg in legs} - {""}
    if "internal" in sides:
        return "internal"
    return "external" if sides else ""


def assemble(call_id: str, legs: list[Leg], directory: Directory | None = None) -> IngestCallLog:
    """One call log from every caller and target leg known of the call, in any order they
    arrived."""
    real = {leg.leg_id for leg in legs if not leg.stands_for}
    legs = [leg for leg in legs if not leg.stands_for or leg.stands_for not in real]
    callers = sorted((leg for leg in legs if leg.role == "caller"), key=lambda leg: leg.start)
    targets = sorted((leg for leg in legs if leg.role == "target"), key=lambda leg: leg.start)
    first = callers[0] if callers else targets[0]
    ends = [leg.end for leg in (callers or targets) if leg.end is not None]
    recordings = list(dict.fromkeys(url for leg in legs for url in leg.recording_urls))
    answered = [leg for leg in targets if leg.status == "answered"]
    direction = decide_direction(
        caller=first.caller,
        callee=first.callee,
        stated=next((leg.stated for leg in callers if leg.stated != "unknown"), "unknown"),
        caller_side=_merge_side(callers, "caller_side"),
        callee_side=_merge_side(callers + targets, "callee_side"),
        directory=directory or Directory(),
    )
    item = IngestCallLog(
        source_id=call_id,
        started_at=_time(min(leg.start for leg in legs)) or "",
        ended_at=_time(max(ends)) if ends else None,
        caller=first.caller,
        callee=first.callee,
        direction=direction,
        call_targets=[
            CallTarget(
                add_time=_time(leg.start),
                ring_time=_time(leg.start),
                answered_time=_time(leg.answer) if leg.status == "answered" else None,
                ended_time=_time(leg.end),
                status=leg.status,
                end_reason=leg.end_reason,
                fail_code=leg.fail_code,
                target_number=leg.target_number,
                trunk_name=leg.trunk_name,
            )
            for leg in targets
        ],
        recording_urls=recordings[:20],
    )
    if targets:
        # The call was answered if a phone or trunk it rang answered; talk time is what the
        # PBX billed those legs, else the caller's own billed time.
        item.call_state = "answered" if answered else ("not_answered" if ends else "unknown")
        talk = [leg.talk_seconds for leg in answered if leg.talk_seconds is not None]
        if answered:
            caller_talk = max((leg.talk_seconds or 0) for leg in callers) if callers else 0
            item.duration = sum(talk) if talk else caller_talk
        else:
            item.duration = 0
    elif callers:
        # No phone was rung (an IVR, an announcement): the caller's own leg says how it went.
        was_answered = any(leg.answer is not None for leg in callers)
        item.call_state = "answered" if was_answered else ("not_answered" if ends else "unknown")
        item.duration = max((leg.talk_seconds or 0) for leg in callers) if was_answered else 0
    return item
