"""FreeSWITCH ``mod_json_cdr`` documents → legs. Pure functions, driven by lookup tables.

FreeSWITCH writes one CDR per channel. The A-leg (the caller's channel) describes the call; a
B-leg (a phone or trunk the call rang) carries its A-leg's uuid in ``originating_leg_uuid`` or an
``originator`` in its callflow, and becomes one of the call's targets. An A-leg also lists the
legs it originated (``originated_legs``, ``originate_causes``): they stand in as targets until
the B-legs' own CDRs arrive (or for good, with ``log-b-leg=false``). An A-leg whose channel
FreeSWITCH placed itself (``originate``: click-to-call, diallers) is both the call and its one
target. With the default ``encode-values``, variable values arrive URL-encoded.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

import msgspec

from callhistory.calllogs.schemas import Direction, TargetStatus
from callhistory.ingest.legs import Leg, Side
from callhistory.kit.times import MAX_MICROS

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
# FusionPBX's call_direction: the PBX's own word on the call.
_STATED: dict[str, Direction] = {"inbound": "in", "outbound": "out", "local": "ext"}
_RECORDING_VARIABLES = ("record_file_name", "recording_file", "cc_record_filename")
# Domains the PBX itself set (from its directory or dialplan); sip_to_host and sip_req_host
# are whatever the caller wrote, so they never route a CDR to a tenant.
_DOMAIN_VARIABLES = ("domain_name", "dialed_domain")
# Characters FreeSWITCH's URL encoder escapes: a value holding one as is was not encoded.
_URL_UNSAFE = frozenset('\r\n #&+:;<=>?@[\\]^`{|}"')
_BASE64 = re.compile(rb"[A-Za-z0-9+/=\s]+")
_GATEWAY_CHANNEL = re.compile(r"^sofia/gateway/([^/]+)/")


class CdrError(ValueError):
    """The document is not a usable FreeSWITCH CDR; the message says why."""


@dataclass(frozen=True)
class FreeSwitchCdr:
    legs: list[Leg]
    domain: str  # the SIP domain the PBX set, to find the tenant
    domain_variable: str  # where the domain came from (for error messages)
    dialed: str  # the number the call came in on (a hotline, for inbound calls)


def _merge_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Older mod_json_cdr writes one ``callflow`` key per profile: keep them all."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key == "callflow" and key in out:
            held = out[key]
            out[key] = [*(held if isinstance(held, list) else [held]), value]
        else:
            out[key] = value
    return out


def _json(text: bytes) -> Any:
    if text.count(b'"callflow"') > 1:
        try:
            return json.loads(text, object_pairs_hook=_merge_duplicates)
        except (ValueError, RecursionError):
            raise CdrError("the CDR is not valid JSON") from None
    try:
        return msgspec.json.decode(text)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise CdrError("the CDR is not valid JSON") from None


def decode_document(data: bytes) -> Any:
    """A CDR as mod_json_cdr writes it to a file or a form field: plain JSON, URL-encoded JSON
    (``encode=true``) or base64 (``encode=base64``), told apart by the text itself."""
    text = data.strip()
    if text.startswith(b"{"):
        return _json(text)
    if text[:3].upper() == b"%7B":
        decoded = unquote_to_bytes(text.replace(b"+", b" "))
        try:
            return _json(decoded)
        except CdrError:
            raise CdrError(
                "the URL-encoded CDR does not decode to JSON; mod_json_cdr sends that with "
                "encode=true and encode-values=true (values escaped twice cannot be told "
                "apart): set encode-values=false, or encode=base64"
            ) from None
    if _BASE64.fullmatch(text):
        try:
            raw = base64.b64decode(b"".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise CdrError("the CDR is neither JSON, URL-encoded JSON nor base64") from None
        if raw.lstrip().startswith(b"{"):
            return _json(raw)
    raise CdrError("the CDR is neither JSON, URL-encoded JSON nor base64")


def decode_body(body: bytes) -> Any:
    """The CDR document from a POST body, decided by the body, not its declared type: with
    ``disable-100-continue=true`` mod_json_cdr drops its own Content-Type header, so every
    body arrives as ``application/x-www-form-urlencoded``. A ``cdr=`` form holds the document
    URL-encoded or in base64; anything else is the document itself."""
    text = body.strip()
    if text.startswith(b"{"):
        return _json(text)
    for part in text.split(b"&"):
        if part.startswith(b"cdr="):
            return decode_document(part[4:])
    if text[:3].upper() == b"%7B":
        return decode_document(text)
    raise CdrError("the body is neither a JSON CDR nor a form with a cdr field")


def _profiles(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Caller profiles of the callflow, the original (first) profile last."""
    callflow = doc.get("callflow")
    flows = [cf for cf in ([callflow] if isinstance(callflow, dict) else _list(callflow))
             if isinstance(cf, dict)]  # fmt: skip
    flows.sort(key=lambda cf: -_index(cf.get("profile_index")))  # stable: ties keep their order
    return [cf["caller_profile"] for cf in flows if isinstance(cf.get("caller_profile"), dict)]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _index(value: Any) -> int:
    text = str(value or "").strip()
    return int(text) if text.isdecimal() else 0


def _micros(var: Callable[[str], str], name: str) -> int | None:
    """A ``*_uepoch`` variable: None when 0 or absent (never happened), refused past 9999."""
    text = var(name)
    number = int(text) if text.isdecimal() and len(text) <= 20 else 0
    if number > MAX_MICROS:
        raise CdrError(f"{name} {text} is not a time")
    return number or None


def _values_encoded(raw: dict[str, Any]) -> bool:
    """Whether ``encode-values`` was on: its values never hold a character it escapes."""
    return not any(
        isinstance(value, str) and any(c in _URL_UNSAFE or c > "~" for c in value)
        for value in raw.values()
    )


def _fail_code(var: Callable[[str], str]) -> int:
    for name in ("sip_term_status", "sip_invite_failure_status"):
        text = var(name)
        if text.isdecimal() and 300 <= int(text) <= 699:
            return int(text)
    for name in ("last_bridge_proto_specific_hangup_cause", "proto_specific_hangup_cause"):
        scheme, _, code = var(name).partition(":")
        if scheme == "sip" and code.isdecimal() and 300 <= int(code) <= 699:
            return int(code)
    return 0


def _recordings(var: Callable[[str], str]) -> list[str]:
    found = [v for v in map(var, _RECORDING_VARIABLES) if v]
    path, name = var("record_path"), var("record_name")
    if name:  # FusionPBX: the directory and the file name apart
        found.append(f"{path.rstrip('/')}/{name}" if path and not name.startswith("/") else name)
    return list(dict.fromkeys(found))


def _split_array(value: str) -> list[str]:
    """A FreeSWITCH ``ARRAY::a|:b`` value (or a single one) as its items."""
    if value.startswith("ARRAY::"):
        return [item for item in value[len("ARRAY::") :].split("|:") if item]
    return [value] if value else []


def _gateway(chan_name: str) -> str:
    match = _GATEWAY_CHANNEL.match(chan_name)
    return match.group(1) if match else ""


def _originated_targets(
    var: Callable[[str], str], *, call_id: str, start: int, end: int | None,
    bridged_at: int | None, originatees: dict[str, dict[str, Any]],
) -> list[Leg]:  # fmt: skip
    """The legs an A-leg says it originated, as targets standing in for their own CDRs."""
    causes = {}
    for item in _split_array(var("originate_causes")):
        uuid, _, cause = item.partition(";")
        causes[uuid] = cause
    targets = []
    for item in _split_array(var("originated_legs")):
        uuid, _, rest = item.partition(";")
        number = rest.rpartition(";")[2]
        cause = causes.get(uuid, "")
        answered = cause in ("NONE", "SUCCESS") and bridged_at is not None
        profile = originatees.get(uuid, {})
        gateway = _gateway(str(profile.get("chan_name", "")))
        targets.append(
            Leg(
                call_id=call_id,
                leg_id=f"originated:{uuid}",
                stands_for=uuid,
                role="target",
                start=start,
                answer=bridged_at if answered else None,
                end=end,
                status="answered" if answered else _UNANSWERED.get(cause, "failed"),
                end_reason="" if answered else cause,
                target_number=number or str(profile.get("destination_number", "")),
                trunk_name=gateway,
                callee_side="external" if gateway else "",
            )
        )
    return targets


def parse(doc: Any) -> FreeSwitchCdr:
    if not isinstance(doc, dict) or not isinstance(doc.get("variables"), dict):
        raise CdrError("a FreeSWITCH CDR is a JSON object with variables")
    raw = doc["variables"]
    decode: Callable[[str], str] = unquote if _values_encoded(raw) else str

    def var(name: str) -> str:
        value = raw.get(name)
        return decode(value) if isinstance(value, str) else ""

    uuid = var("uuid") or var("call_uuid")
    if not uuid:
        raise CdrError("the CDR has no uuid variable")
    start = _micros(var, "start_uepoch")
    if start is None:
        raise CdrError("the CDR has no start_uepoch")
    profiles = _profiles(doc)
    original = profiles[-1] if profiles else {}
    originator = next(
        (p["originator"] for p in profiles if isinstance(p.get("originator"), dict)), None
    )
    a_leg = var("originating_leg_uuid")
    origin: dict[str, Any] = {}  # the A-leg's profile, as a B-leg records it
    if originator:
        callers = originator.get("originator_caller_profiles")
        first = callers[0] if isinstance(callers, list) and callers else None
        if isinstance(first, dict):
            origin = first
        if not a_leg and not origin.get("uuid"):
            raise CdrError("a B-leg whose originator names no A-leg uuid")
        a_leg = a_leg or str(origin["uuid"])
    answer = _micros(var, "answer_uepoch")
    end = _micros(var, "end_uepoch")
    cause = var("hangup_cause")
    channel_data = doc.get("channel_data")
    channel_direction = var("direction") or (
        str(channel_data.get("direction", "")) if isinstance(channel_data, dict) else ""
    )
    dialed = str(original.get("destination_number", "")) or var("destination_number")
    talk = var("billsec")
    gateway = var("sip_gateway_name") or _gateway(str(original.get("chan_name", "")))
    domain, domain_variable = next(
        ((v, name) for name in _DOMAIN_VARIABLES if (v := var(name))), ("", "domain_name")
    )
    base = Leg(
        call_id=uuid,
        leg_id=uuid,
        role="caller",
        start=start,
        end=end,
        stated=_STATED.get(var("call_direction"), "unknown"),
        talk_seconds=int(talk) if talk.isdecimal() else None,
        recording_urls=_recordings(var),
    )
    replace = msgspec.structs.replace
    # This channel as a phone or trunk the call rang: a B-leg, or a channel originate placed.
    rung = replace(
        base,
        role="target",
        answer=answer,
        status="answered" if answer else _UNANSWERED.get(cause, "failed"),
        end_reason=cause,
        fail_code=_fail_code(var),
        trunk_name=gateway,
        callee_side="external" if gateway else ("internal" if var("dialed_user") else ""),
    )

    if a_leg:  # a B-leg: one phone or trunk the call rang
        target = dialed or var("callee_id_number") or var("dialed_user")
        leg = replace(
            rung,
            call_id=a_leg,
            caller=str(origin.get("caller_id_number", ""))
            or str(original.get("caller_id_number", "")),
            callee=str(origin.get("destination_number", "")) or target,
            target_number=target,
        )
        return FreeSwitchCdr(legs=[leg], domain=domain, domain_variable=domain_variable, dialed="")

    if channel_direction == "outbound":
        # FreeSWITCH placed this channel itself (originate): the profile's caller id is the
        # party called, the number presented is origination_caller_id_number.
        caller = (
            var("origination_caller_id_number")
            or str(original.get("ani", ""))
            or var("effective_caller_id_number")
        )
        caller_leg = replace(
            base,
            answer=answer,
            caller=caller,
            callee=dialed,
            caller_side="internal",
            callee_side=rung.callee_side,
        )
        placed = replace(rung, leg_id=f"placed:{uuid}", target_number=dialed, recording_urls=[])
        return FreeSwitchCdr(
            legs=[caller_leg, placed], domain=domain, domain_variable=domain_variable, dialed=""
        )

    caller = str(original.get("caller_id_number", "")) or var("caller_id_number")
    caller_side: Side = ""
    if var("user_name") or var("sip_authorized") == "true" or var("sip_auth_username"):
        caller_side = "internal"  # the caller signed in as one of the PBX's users
    elif gateway or original.get("context") == "public":
        caller_side = "external"  # came in through a gateway, or unauthenticated
    originatees = {
        str(p.get("uuid", "")): p
        for profile in profiles
        if isinstance(profile.get("originatee"), dict)
        for p in _list(profile["originatee"].get("originatee_caller_profiles"))
        if isinstance(p, dict)
    }
    bridged = _micros(var, "bridge_uepoch") or answer
    targets = _originated_targets(
        var, call_id=uuid, start=start, end=end, bridged_at=bridged, originatees=originatees
    )
    callee_side: Side = "internal" if var("dialed_user") else ""
    leg = replace(
        base,
        answer=answer,
        caller=caller,
        callee=dialed,
        caller_side=caller_side,
        callee_side=callee_side,
    )
    inbound = caller_side == "external" or leg.stated == "in"
    return FreeSwitchCdr(
        legs=[leg, *targets],
        domain=domain,
        domain_variable=domain_variable,
        dialed=dialed if inbound or not caller_side else "",
    )
