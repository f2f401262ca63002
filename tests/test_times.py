"""Times as the API writes them: RFC 3339 UTC, checked against the standard library's own
rendering of the same instant."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from callhistory.kit.times import MAX_MICROS, format_micros, parse_request_time, request_time

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
instants = st.integers(min_value=0, max_value=MAX_MICROS)
DAY = 86_400_000_000
# Instants that stay within years 1..9999 under any offset.
inner_instants = st.integers(min_value=DAY, max_value=MAX_MICROS - DAY)


def stdlib_text(micros: int) -> str:
    moment = EPOCH + dt.timedelta(microseconds=micros)
    spec = "seconds" if not moment.microsecond else "microseconds"
    if moment.microsecond and moment.microsecond % 1000 == 0:
        spec = "milliseconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


@given(instants)
def test_format_matches_the_standard_library(micros: int) -> None:
    assert format_micros(micros) == stdlib_text(micros)


@given(
    inner_instants,
    st.sampled_from(["Z", "+00:00", "+07:00", "-05:30"]),
    st.sampled_from(["calendar", "week"]),
    st.sampled_from(["%H:%M:%S", "%H%M%S"]),  # extended or basic clock
    st.integers(min_value=0, max_value=9),  # tenths of a second, written when not 0
)
def test_any_spelling_is_served_as_the_canonical_utc_text(
    micros: int, offset: str, form: str, clock: str, tenths: int
) -> None:
    moment = (EPOCH + dt.timedelta(microseconds=micros)).replace(microsecond=tenths * 100_000)
    zone = dt.datetime.fromisoformat("2000-01-01T00:00" + offset).tzinfo
    local = moment.astimezone(zone)
    if form == "week":
        year, week, day = local.isocalendar()
        date = f"{year:04d}-W{week:02d}-{day}"
    else:
        date = local.date().isoformat()
    fraction = f".{tenths}" if tenths else ""
    text = f"{date}T{local.strftime(clock)}{fraction}{offset}"
    parsed, served = request_time(text, "t", "UTC")
    assert (
        parsed
        == parse_request_time(text, "t", "UTC")
        == (moment - EPOCH) // dt.timedelta(microseconds=1)
    )
    assert served == stdlib_text((moment - EPOCH) // dt.timedelta(microseconds=1))
