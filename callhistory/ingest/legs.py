"""Legs of a call as PBXs report them, and how one call log is assembled from them.

Pure functions, no I/O. A PBX writes one record per channel (FreeSWITCH) or per caller→target
pairing (Asterisk); each becomes a ``Leg``. The caller's legs describe the call (who, when,
which way); the target legs are the phones it rang and become ``call_targets``.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from callhistory.calllogs.schemas import CallTarget, Direction
from callhistory.ingest.schemas import IngestCallLog
from callhistory.times import format_micros

TargetStatus = Literal["answered", "no_answer", "busy", "cancelled", "failed"]
EXTENSION_MAX_DIGITS = 6  # numbers this short are extensions; longer ones are the outside world


class Leg(msgspec.Struct, kw_only=True, omit_defaults=True):
    call_id: str  # the call's source_id: FreeSWITCH A-leg uuid, Asterisk linkedid
    leg_id: str  # unique within the call
    role: Literal["caller", "target"]
    start: int  # microseconds UTC
    answer: int | None = None
    end: int | None = None
    caller: str = ""
    callee: str = ""
    direction: Direction = "unknown"
    talk_seconds: int | None = None  # the PBX's own billable seconds, when it gives them
    status: TargetStatus = "no_answer"
    end_reason: str = ""
    fail_code: int = 0
    target_number: str = ""
    trunk_name: str = ""
    recording_urls: list[str] = []


def is_extension(number: str) -> bool:
    return number.isdigit() and 0 < len(number) <= EXTENSION_MAX_DIGITS


def guess_direction(caller: str, callee: str) -> Direction:
    """Direction from number shapes: extensions are short, the outside world is not."""
    if is_extension(caller):
        return "ext" if is_extension(callee) else "out"
    return "in" if callee else "unknown"


def _time(micros: int | None) -> str | None:
    return format_micros(micros)


def assemble(call_id: str, legs: list[Leg]) -> IngestCallLog:
    """One call log from every leg known of the call, in any order they arrived."""
    callers = sorted((leg for leg in legs if leg.role == "caller"), key=lambda leg: leg.start)
    targets = sorted((leg for leg in legs if leg.role == "target"), key=lambda leg: leg.start)
    first = callers[0] if callers else targets[0]
    ends = [leg.end for leg in (callers or targets) if leg.end is not None]
    recordings = list(dict.fromkeys(url for leg in legs for url in leg.recording_urls))
    item = IngestCallLog(
        source_id=call_id,
        started_at=_time(min(leg.start for leg in legs)) or "",
        ended_at=_time(max(ends)) if ends else None,
        caller=first.caller,
        callee=first.callee,
        direction=next((leg.direction for leg in callers if leg.direction != "unknown"), "unknown"),
        call_targets=[
            CallTarget(
                add_time=_time(leg.start),
                ring_time=_time(leg.start),
                answered_time=_time(leg.answer),
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
    if not targets and callers:
        # No phone was rung (an IVR, voicemail): the caller's own leg says how it went.
        answered = any(leg.answer is not None for leg in callers)
        item.call_state = "answered" if answered else ("not_answered" if ends else "unknown")
        item.duration = max((leg.talk_seconds or 0) for leg in callers)
    return item
