"""Missed calls nobody returned: the inbound calls left unanswered after which, within a window,
no call with the same number (in either direction) was answered, gathered per customer."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from callhistory.rollups.sums import INBOUND

OUTBOUND = ("out", "ext_out")


@dataclass(frozen=True, slots=True)
class Call:
    """What the computation needs of a call, in the order ``repository.calls_between`` reads
    it."""

    started_at: int  # microseconds
    id: int
    direction: str
    call_state: str
    caller: str
    caller_norm: str
    callee_norm: str
    hotline_id: int | None


@dataclass(slots=True)
class Unreturned:
    """One customer's run of unreturned tries: no answered call with the number between them."""

    tries: list[Call] = field(default_factory=list)
    callbacks: list[int] = field(default_factory=list)  # starts of unanswered calls back

    @property
    def last(self) -> Call:
        return self.tries[-1]

    @property
    def number(self) -> str:
        """The customer's number as the last try wrote it."""
        return self.last.caller


def unreturned(
    calls: Iterable[Call],
    *,
    missed_from: int,
    missed_to: int,
    window: int,
    hotline_ids: Sequence[int] = (),
) -> list[Unreturned]:
    """The runs of unreturned tries among ``calls`` (which must hold every call with a number
    of these from ``missed_from`` to ``missed_to + window``): a try is an inbound call not
    answered that started within ``[missed_from, missed_to]`` (on one of ``hotline_ids`` when
    given), unreturned when no call with its number was answered in the ``window`` after it."""
    by_number: dict[str, list[tuple[int, int, str, Call]]] = {}
    for call in calls:
        if call.direction in INBOUND:
            number = call.caller_norm
            if call.call_state == "answered":
                kind = "answered"
            elif missed_from <= call.started_at <= missed_to and (
                not hotline_ids or call.hotline_id in hotline_ids
            ):
                kind = "try"
            else:
                continue
        elif call.direction in OUTBOUND:
            number = call.callee_norm
            kind = "answered" if call.call_state == "answered" else "callback"
        else:
            continue
        if number:
            by_number.setdefault(number, []).append((call.started_at, call.id, kind, call))
    runs: list[Unreturned] = []
    for events in by_number.values():
        events.sort(key=lambda event: (event[0], event[1]))
        answers = [at for at, _, kind, _ in events if kind == "answered"]
        run: Unreturned | None = None
        for at, _, kind, call in events:
            if kind == "answered":
                run = None  # whatever came before is closed by this answer
            elif kind == "try":
                after = bisect.bisect_right(answers, at)
                if after < len(answers) and answers[after] <= at + window:
                    continue  # returned: an answered call came within the window
                if run is None:
                    run = Unreturned()
                    runs.append(run)
                run.tries.append(call)
            elif run is not None:
                run.callbacks.append(at)
    for run in runs:  # calls back count up to the window after the last try
        run.callbacks = [at for at in run.callbacks if at <= run.last.started_at + window]
    return runs


def key_of(run: Unreturned) -> tuple[int, int]:
    return run.last.started_at, run.last.id


class Listing:
    """The runs, the last try first, paged as a repository pages rows (``kit.paging``)."""

    def __init__(self, runs: list[Unreturned]) -> None:
        self._runs = sorted(runs, key=key_of, reverse=True)
        self._keys = [(-at, -call_id) for at, call_id in map(key_of, self._runs)]

    async def fetch(
        self, key: tuple[int, int] | None, forward: bool, limit: int, inclusive: bool
    ) -> list[Unreturned]:
        if key is None:
            return self._runs[:limit] if forward else self._runs[::-1][:limit]
        probe = (-key[0], -key[1])
        if forward:
            start = (bisect.bisect_left if inclusive else bisect.bisect_right)(self._keys, probe)
            return self._runs[start : start + limit]
        end = (bisect.bisect_right if inclusive else bisect.bisect_left)(self._keys, probe)
        return self._runs[max(0, end - limit) : end][::-1]

    async def exists(self, key: tuple[int, int], forward: bool) -> bool:
        return bool(await self.fetch(key, forward, 1, False))
