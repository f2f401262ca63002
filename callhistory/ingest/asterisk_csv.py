"""Asterisk ``cdr_csv`` (Master.csv) and ``cdr_custom`` (default mapping) rows → legs. Pure.

Asterisk writes one row per caller→target pairing; rows of one call share ``linkedid`` (with
``newcdrcolumns=yes``) and the caller channel's ``uniqueid``. Times carry no offset: they are in
the PBX's local time (or UTC with ``usegmtime=yes``), given here as ``tz``.

A row alone cannot say what it was part of, so each is stored as it is (a ``row`` leg) and the
call is read from all of its rows (``resolve``): ``Local/`` channels are plumbing between the
caller and the phones a ring group or queue reached; a target answered only when its row's
disposition says ``ANSWERED`` (Asterisk fills ``answer`` from the caller's channel even when
the phone never picked up); talk time is the answered rows' ``billsec``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from callhistory.calllogs.schemas import TargetStatus
from callhistory.ingest.legs import Leg, Side, shape_side
from callhistory.kit.times import to_micros, zone

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
    "CANCEL": "cancelled",
}
# Applications that answer the caller's channel to make it wait: a call that ended in one
# without a phone answering was missed, however long it waited.
_WAITING_APPS = frozenset({"queue", "voicemail"})
_CHANNEL = re.compile(
    r"^(?P<tech>[A-Za-z0-9]+)/(?P<resource>[^-@;/]+(?:-[^-@;/]+)*?)(?:@[^-;]*)?"
    r"(?:-(?P<seq>[0-9a-fA-F]+))?(?:;\d)?$"
)
_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?")
_RACE_SECONDS = 2_000_000  # a ring-group member that stopped this close to the answer lost


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


def _parse_time(text: str, tz: str, name: str) -> int | None:
    if not text:
        return None
    if not _TIME.fullmatch(text):
        raise RowError(f"{name} {text!r} is not a time")
    local = dt.datetime.fromisoformat(text).replace(tzinfo=zone(tz))
    return to_micros(local)


LocalLinks = dict[str, tuple[str, str]]


def local_links(rows: Iterable[Sequence[str]]) -> LocalLinks:
    """For files without ``linkedid`` (cdr.conf's default ``newcdrcolumns=no``): which row dialled
    each ``Local/`` channel, so that the rows its ``;2`` half wrote join that row's call.
    Maps ``Local/101@ctx-0000002a`` to the dialling row's (channel, uniqueid)."""
    links: LocalLinks = {}
    for row in rows:
        try:
            fields = dict(zip(layout(row), row, strict=True))
        except RowError:
            continue
        peer = fields["dstchannel"]
        if not fields.get("linkedid") and peer.startswith("Local/") and peer.endswith(";1"):
            links[peer[:-2]] = (fields["channel"], fields.get("uniqueid", ""))
    return links


def _linked_call(channel: str, uniqueid: str, links: LocalLinks) -> str:
    """The uniqueid of the channel that started the call a ``Local/…;2`` channel works for."""
    for _ in range(16):  # Local channels dialling Local channels, a few deep at most
        if not (channel.startswith("Local/") and channel.endswith(";2")):
            break
        parent = links.get(channel[:-2])
        if parent is None:
            break
        channel, uniqueid = parent
    return uniqueid


def parse_row(row: Sequence[str], *, line: int, tz: str, links: LocalLinks | None = None) -> Leg:
    """One row as Asterisk wrote it, keyed within its call so that importing it again
    replaces it. ``links`` (see ``local_links``) joins ``Local/`` rows to their call when the
    file has no ``linkedid``."""
    fields = dict(zip(layout(row), row, strict=True))
    start = _parse_time(fields["start"], tz, "start")
    if start is None:
        raise RowError("start is empty")
    answer = _parse_time(fields["answer"], tz, "answer")
    end = _parse_time(fields["end"], tz, "end")
    disposition = fields["disposition"].strip().upper()
    if disposition not in _DISPOSITIONS:
        raise RowError(f"disposition {fields['disposition']!r} is unknown")
    uniqueid = fields.get("uniqueid", "")
    linked = fields.get("linkedid") or (
        _linked_call(fields["channel"], uniqueid, links) if links and uniqueid else ""
    )
    call_id = linked or uniqueid or f"{fields['channel']}|{fields['start']}"
    piece = fields.get("sequence") or (f"{uniqueid}@{fields['start']}" if uniqueid else str(line))
    billsec = fields["billsec"].split(".")[0]
    return Leg(
        call_id=call_id,
        leg_id=f"row:{piece}:{fields['channel']}>{fields['dstchannel']}",
        role="row",
        start=start,
        answer=answer,
        end=end,
        caller=fields["src"],
        callee=fields["dst"],
        talk_seconds=int(billsec) if billsec.isdecimal() else None,
        channel=fields["channel"],
        peer=fields["dstchannel"],
        app=fields["lastapp"],
        app_data=fields["lastdata"],
        disposition=disposition,
    )


class _Channel(NamedTuple):
    tech: str
    resource: str
    seq: int


def _channel(name: str) -> _Channel:
    """``PJSIP/102-0000000a`` → (PJSIP, 102, 10); ``SIP/viettel-trunk-00000003`` →
    (SIP, viettel-trunk, 3)."""
    match = _CHANNEL.match(name)
    if not match:
        return _Channel(name.partition("/")[0], "", 0)
    seq = match.group("seq")
    return _Channel(match.group("tech"), match.group("resource"), int(seq, 16) if seq else 0)


def _is_local(name: str) -> bool:
    return name.startswith("Local/")


class _Entry(NamedTuple):
    tech: str
    peer: str  # the endpoint or trunk the entry dials
    number: str  # the number dialled through a trunk ("" for a phone)


def _dial_entries(app_data: str) -> list[_Entry]:
    """The parties of a Dial string: ``SIP/301&SIP/200@trunk,60,t`` → (SIP, 301, ""),
    (SIP, trunk, 200). Trunks are written ``TECH/number@trunk`` or ``TECH/trunk/number``."""
    entries = []
    for part in app_data.split(",")[0].split("|")[0].split("&"):
        tech, slash, rest = part.strip().partition("/")
        if not slash or not rest:
            continue
        if "/" in rest:
            peer, _, number = rest.partition("/")
            number = number.removeprefix("sip:").partition("@")[0]
        elif "@" in rest:
            number, _, peer = rest.partition("@")
        else:
            peer, number = rest, ""
        entries.append(_Entry(tech.lower(), peer, number))
    return entries


def _locate(rows: list[Leg]) -> dict[str, tuple[str, str]]:
    """Each target channel's (number, trunk) from the Dial strings that created it; several
    channels to one trunk take that trunk's entries in the order they were created."""
    found: dict[str, tuple[str, str]] = {}
    dials: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in rows:
        if row.peer and not _is_local(row.peer):
            dials[(row.channel, row.app_data)].add(row.peer)
    for (_, app_data), peers in dials.items():
        entries = _dial_entries(app_data)
        taken: dict[tuple[str, str], int] = defaultdict(int)
        for peer in sorted(peers, key=lambda name: _channel(name).seq):
            tech, resource, _ = _channel(peer)
            matches = [e for e in entries if e.tech == tech.lower() and e.peer == resource]
            if not matches or peer in found:
                continue
            entry = matches[min(taken[(tech, resource)], len(matches) - 1)]
            taken[(tech, resource)] += 1
            found[peer] = (entry.number, entry.peer) if entry.number else (resource, "")
    return found


def _caller_side(channel: str, src: str) -> Side:
    """A phone presents its own name or number; a trunk brings other people's numbers."""
    if channel.startswith("Console/"):
        return "internal"
    if _is_local(channel):
        return ""
    resource = _channel(channel).resource
    if not resource or not src:
        return ""
    return "internal" if resource == src else "external"


def resolve(rows: list[Leg]) -> list[Leg]:
    """A call's caller leg and target legs from all of its rows."""
    rows = sorted(rows, key=lambda row: (row.start, row.leg_id))
    origin = next((row for row in rows if not _is_local(row.channel)), rows[0])
    own = [row for row in rows if row.channel == origin.channel and not row.peer]
    numbers = _locate(rows)
    groups: dict[str, list[Leg]] = defaultdict(list)
    for row in rows:
        if row.peer and not _is_local(row.peer):
            groups[row.peer].append(row)
    answers = [
        row.answer or row.start
        for group in groups.values()
        for row in group
        if row.disposition == "ANSWERED"
    ]
    first_answer = min(answers) if answers else None
    targets = []
    in_ring_order = sorted(
        groups.items(), key=lambda item: (item[1][0].start, _channel(item[0]).seq)
    )
    for peer, group in in_ring_order:
        won = [row for row in group if row.disposition == "ANSWERED"]
        last = group[-1]
        status: TargetStatus = "answered" if won else _DISPOSITIONS[last.disposition]
        end = max((row.end for row in group if row.end is not None), default=None)
        if (
            status == "no_answer"
            and first_answer is not None
            and end is not None
            and first_answer <= end <= first_answer + _RACE_SECONDS
        ):
            status = "cancelled"  # rang alongside the phone that answered, and lost
        number, trunk = numbers.get(peer, ("", ""))
        if not number:
            resource = _channel(peer).resource
            on_trunk = shape_side(resource) != "internal"
            number, trunk = (last.callee, resource) if on_trunk else (resource, "")
        targets.append(
            Leg(
                call_id=origin.call_id,
                leg_id=f"target:{peer}",
                role="target",
                start=min(row.start for row in group),
                answer=min((row.answer or row.start for row in won), default=None),
                end=end,
                talk_seconds=sum(row.talk_seconds or 0 for row in won) if won else None,
                status=status,
                end_reason="ANSWERED" if won else last.disposition,
                target_number=number,
                trunk_name=trunk,
                callee_side="external" if trunk else "internal",
            )
        )
    picked_up = [
        row for row in own if row.disposition == "ANSWERED" and row.app.lower() not in _WAITING_APPS
    ]
    ends = [row.end for row in rows if row.end is not None]
    caller = Leg(
        call_id=origin.call_id,
        leg_id=f"caller:{origin.channel}",
        role="caller",
        start=rows[0].start,
        answer=min((row.answer or row.start for row in picked_up), default=None),
        end=max(ends) if ends else None,
        caller=origin.caller,
        callee=origin.callee,
        talk_seconds=sum(row.talk_seconds or 0 for row in picked_up) if picked_up else None,
        caller_side=_caller_side(origin.channel, origin.caller),
    )
    return [caller, *targets]
