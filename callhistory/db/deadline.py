"""A request's deadline: each statement it runs gets the time that is left, not a budget of its
own, so a request of many statements ends on time too (``db.engine.fetch``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class Budget:
    """Until when a request may run, and whether its reads have left SQLite's inline path
    (``db.inline_sqlite``): one that outgrew its slice once runs the rest off the event loop."""

    __slots__ = ("at", "offloaded")

    def __init__(self, at: float) -> None:
        self.at = at
        self.offloaded = False

    def left(self) -> float:
        return self.at - time.monotonic()


_current: ContextVar[Budget | None] = ContextVar("callhistory_budget", default=None)


@contextmanager
def within(seconds: float) -> Iterator[Budget]:
    """Run the block with ``seconds`` to spend (monotonic clock)."""
    budget = Budget(time.monotonic() + seconds)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


def current() -> Budget | None:
    return _current.get()
