"""Asterisk ``cdr_csv`` (Master.csv) and ``cdr_custom`` (default mapping) rows → legs. Pure.

Asterisk writes one row per caller→target pairing; rows of one call share ``linkedid`` (with
``newcdrcolumns=yes``) and the caller channel's ``uniqueid``. Times carry no offset: they are in
the PBX's local time (or UTC with ``usegmtime=yes``), given here as ``tz``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from callhistory.ingest.legs import Leg, TargetStatus, guess_direction, is_extension
from callhistory.times import to_micros, zone

_CSV_BASE = [
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
]  # fmt: skip
_NEW_COLUMNS = ["peeraccount", "linkedid", "sequence"]
# cdr_csv's layout by column count: loguniqueid, loguserfield and newcdrcolumns add columns.
_CSV_LAYOUTS = {
    16: _CSV_BASE,
    17: [*_CSV_BASE, "uniqueid"],
    18: [*_CSV_BASE, "uniqueid", "userfield"],
    19: [*_CSV_BASE, *_NEW_COLUMNS],
    20: [*_CSV_BASE, "uniqueid", *_NEW_COLUMNS],
    21: [*_CSV_BASE, "uniqueid", "userfield", *_NEW_COLUMNS],
}
# The mapping of Asterisk's cdr_custom.conf sample.
CUSTOM_LAYOUT = [
    "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp", "lastdata", "start",
    "answer", "end", "duration", "billsec", "disposition", "amaflags", "accountcode", "uniqueid",
    "userfield", "sequence",
]  # fmt: skip
_DISPOSITIONS: dict[str, TargetStatus] = {
    "ANSWERED": "answered",
    "NO ANSWER": "no_answer",
    "BUSY": "busy",
    "FAILED": "failed",
    "CONGESTION": "failed",
}
_CHANNEL = re.compile(
    r"^(?:[A-Za-z0-9]+)/(?P<resource>[^-@;/]+(?:-[^-@;/]+)*?)(?:@[^-;]*)?(?:-[0-9a-fA-F]+)?(?:;\d)?$"
)
_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?")


class RowError(ValueError):
    """A row that cannot be read; the message says why."""


def layout(row: Sequence[str]) -> list[str]:
    """Column names of a row: cdr_custom's sample mapping (start is column 9) or cdr_csv's."""
    if len(row) == len(CUSTOM_LAYOUT) and _TIME.fullmatch(row[8]):
        return CUSTOM_LAYOUT
    names = _CSV_LAYOUTS.get(len(row))
    if names is None:
        raise RowError(f"{len(row)} columns is not a cdr_csv or cdr_custom layout")
    return names


def _time(text: str, tz: str, name: str) -> int | None:
    if not text:
        return None
    if not _TIME.fullmatch(text):
        raise RowError(f"{name} {text!r} is not a time")
    local = dt.datetime.fromisoformat(text).replace(tzinfo=zone(tz))
    return to_micros(local)


def _resource(channel: str) -> str:
    """``PJSIP/102-0000000a`` → ``102``; ``SIP/viettel-trunk-00000003`` → ``viettel-trunk``."""
    match = _CHANNEL.match(channel)
    return match.group("resource") if match else ""


def parse_row(row: Sequence[str], *, line: int, tz: str) -> list[Leg]:
    """The legs of one row: a piece of the caller's leg, and the target it rang (if any)."""
    fields = dict(zip(layout(row), row, strict=True))
    start = _time(fields["start"], tz, "start")
    if start is None:
        raise RowError("start is empty")
    answer = _time(fields["answer"], tz, "answer")
    end = _time(fields["end"], tz, "end")
    disposition = fields["disposition"].strip().upper()
    if disposition not in _DISPOSITIONS:
        raise RowError(f"disposition {fields['disposition']!r} is unknown")
    uniqueid = fields.get("uniqueid", "")
    call_id = fields.get("linkedid") or uniqueid or f"{fields['channel']}|{fields['start']}"
    piece = fields.get("sequence") or uniqueid or str(line)
    src, dst = fields["src"], fields["dst"]
    billsec = fields["billsec"].split(".")[0]
    legs = [
        Leg(
            call_id=call_id,
            leg_id=f"caller:{fields['channel']}:{piece}",
            role="caller",
            start=start,
            # Without a target, the answer is the caller's own (an IVR or voicemail picked up).
            answer=None if fields["dstchannel"] else answer,
            end=end,
            caller=src,
            callee=dst,
            direction=guess_direction(src, dst),
            talk_seconds=int(billsec) if billsec.isdigit() else None,
        )
    ]
    if fields["dstchannel"]:
        resource = _resource(fields["dstchannel"])
        on_trunk = not is_extension(resource)
        legs.append(
            Leg(
                call_id=call_id,
                leg_id=f"target:{fields['dstchannel']}:{piece}",
                role="target",
                start=start,
                answer=answer,
                end=end,
                caller=src,
                callee=dst,
                status=_DISPOSITIONS[disposition],
                end_reason=disposition,
                target_number=dst if on_trunk else resource,
                trunk_name=resource if on_trunk else "",
            )
        )
    return legs
