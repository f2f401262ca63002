"""JSON Lines of IngestCallLogs items → items. Pure."""

from __future__ import annotations

import msgspec

from callhistory.ingest.schemas import IngestCallLog

_decoder = msgspec.json.Decoder(IngestCallLog)


class LineError(ValueError):
    """A line that is not an IngestCallLogs item; the message says why."""


def parse_line(text: bytes) -> IngestCallLog:
    try:
        return _decoder.decode(text)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise LineError(str(exc)) from None
    except UnicodeDecodeError:
        raise LineError("the line is not valid UTF-8") from None
