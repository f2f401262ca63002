"""A call log's stored document: its wire JSON, written with the row (the ``doc`` column), so
a page is the stored documents joined rather than columns decoded and encoded again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import msgspec

from callhistory.calllogs.schemas import CallLog, CallTarget
from callhistory.kit.ids import format_id
from callhistory.kit.times import format_micros

_encoder = msgspec.json.Encoder()


def call_log_json(row: Mapping[str, Any]) -> bytes:
    """The wire JSON of one call log from its stored columns."""
    return _encoder.encode(
        CallLog(
            call_state=row["call_state"],
            call_status=row["call_status"],
            call_targets=cast(list[CallTarget], msgspec.Raw(row["call_targets"])),
            callee=row["callee"],
            caller=row["caller"],
            contact_id=format_id(row["contact_id"]),
            created_at=format_micros(row["created_at"]),
            direction=row["direction"],
            duration=row["duration"],
            ended_at=format_micros(row["ended_at"]),
            extension_id=format_id(row["extension_id"]),
            external_id=row["external_id"] or "",
            external_session_id=row["external_session_id"] or "",
            hotline_id=format_id(row["hotline_id"]),
            id=str(row["id"]),
            note=row["note"],
            recording_urls=cast(list[str], msgspec.Raw(row["recording_urls"])),
            started_at=format_micros(row["started_at"]),
            updated_at=format_micros(row["updated_at"]),
            user_id=format_id(row["user_id"]),
        )
    )
