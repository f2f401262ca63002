"""FreeSWITCH ``mod_json_cdr`` documents → legs. Pure functions, driven by lookup tables.

FreeSWITCH writes one CDR per channel. The A-leg (the caller's channel) describes the call; a
B-leg (a phone or trunk the call rang) carries its A-leg's uuid in ``originating_leg_uuid`` or an
``originator`` in its callflow, and becomes one of the call's targets. With the default
``encode-values``, variable values arrive URL-encoded.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

import msgspec

from callhistory.calllogs.schemas import Direction
from callhistory.ingest.legs import Leg, TargetStatus, guess_direction

# Hangup causes of a leg that was never answered → its status.
_UNANSWERED: dict[str, TargetStatus] = {
    "USER_BUSY": "busy",
    "NO_ANSWER": "no_answer",
    "NO_USER_RESPONSE": "no_answer",
    "ALLOTTED_TIMEOUT": "no_answer",
    "RECOVERY_ON_TIMER_EXPIRE": "no_answer",
    "ORIGINATOR_CANCEL": "cancelled",
    "LOSE_RACE": "cancelled",
    "PICKED_OFF": "cancelled",
    "NORMAL_CLEARING": "cancelled",
}
_DIRECTIONS: dict[str, Direction] = {"inbound": "in", "outbound": "out", "local": "ext"}
_RECORDING_VARIABLES = ("record_file_name", "recording_file", "cc_record_filename")
_DOMAIN_VARIABLES = ("domain_name", "sip_to_host", "dialed_domain", "sip_req_host")


class CdrError(ValueError):
    """The document is not a usable FreeSWITCH CDR; the message says why."""


@dataclass(frozen=True)
class FreeSwitchCdr:
    leg: Leg
    domain: str  # the SIP domain, to find the tenant
    dialed: str  # the number the call came in on (a hotline, for inbound calls)


def decode_body(body: bytes, content_type: str) -> Any:
    """The CDR document from a raw JSON body or a ``cdr=`` form (URL- or base64-encoded)."""
    media = content_type.split(";")[0].strip().lower()
    text = body
    if media in ("application/x-www-form-urlencoded", "application/x-www-form-base64-encoded"):
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise CdrError("the form is not UTF-8") from None
        if "cdr" not in form:
            raise CdrError("the form has no cdr field")
        value = form["cdr"][0]
        if media.endswith("base64-encoded"):
            try:
                text = base64.b64decode(value.replace(" ", "+"), validate=False)
            except (binascii.Error, ValueError):
                raise CdrError("the cdr field is not base64") from None
        else:
            text = value.encode("utf-8")
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        raise CdrError("the CDR is not valid JSON") from None


def _profiles(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Caller profiles of the callflow, newest first (FreeSWITCH's own order)."""
    callflow = doc.get("callflow") or []
    if isinstance(callflow, dict):
        callflow = [callflow]
    return [
        cf["caller_profile"]
        for cf in callflow
        if isinstance(cf, dict) and isinstance(cf.get("caller_profile"), dict)
    ]


def _micros(value: str) -> int | None:
    number = int(value) if value.isdigit() else 0
    return number or None


def parse(doc: Any) -> FreeSwitchCdr:
    if not isinstance(doc, dict) or not isinstance(doc.get("variables"), dict):
        raise CdrError("a FreeSWITCH CDR is a JSON object with variables")
    raw = doc["variables"]

    def var(name: str) -> str:
        value = raw.get(name)
        return unquote(value) if isinstance(value, str) else ""

    uuid = var("uuid") or var("call_uuid")
    if not uuid:
        raise CdrError("the CDR has no uuid variable")
    start = _micros(var("start_uepoch"))
    if start is None:
        raise CdrError("the CDR has no start_uepoch")
    profiles = _profiles(doc)
    original = profiles[-1] if profiles else {}
    originator = next(
        (p["originator"] for p in profiles if isinstance(p.get("originator"), dict)), None
    )
    a_leg = var("originating_leg_uuid")
    if not a_leg and originator:
        callers = originator.get("originator_caller_profiles")
        first = callers[0] if isinstance(callers, list) and callers else None
        if not isinstance(first, dict) or not first.get("uuid"):
            raise CdrError("a B-leg whose originator names no A-leg uuid")
        a_leg = str(first["uuid"])
    answer = _micros(var("answer_uepoch"))
    cause = var("hangup_cause")
    sip_status = var("sip_term_status")
    fail_code = int(sip_status) if sip_status.isdigit() and int(sip_status) >= 300 else 0
    caller = var("caller_id_number") or str(original.get("caller_id_number", ""))
    dialed = str(original.get("destination_number", "")) or var("destination_number")
    talk = var("billsec")
    direction = _DIRECTIONS.get(var("call_direction")) or guess_direction(caller, dialed)
    leg = Leg(
        call_id=uuid,
        leg_id=uuid,
        role="caller",
        start=start,
        answer=answer,
        end=_micros(var("end_uepoch")),
        caller=caller,
        callee=dialed,
        direction=direction,
        talk_seconds=int(talk) if talk.isdigit() else None,
        end_reason=cause,
        fail_code=fail_code,
        recording_urls=[v for v in map(var, _RECORDING_VARIABLES) if v],
    )
    domain = next((v for v in map(var, _DOMAIN_VARIABLES) if v), "")
    if not a_leg:
        return FreeSwitchCdr(leg=leg, domain=domain, dialed=dialed if direction == "in" else "")
    target = dialed or var("callee_id_number") or var("dialed_user")
    as_target = msgspec.structs.replace(
        leg,
        call_id=a_leg,
        role="target",
        callee=target,
        direction="unknown",
        status="answered" if answer else _UNANSWERED.get(cause, "failed"),
        target_number=target,
        trunk_name=var("sip_gateway_name"),
    )
    return FreeSwitchCdr(leg=as_target, domain=domain, dialed="")
