"""The windows a walk along started_at reads PostgreSQL's monthly partitions in: whatever the
starting point and the date bound, they follow one another with no gap and no overlap, start
with the starting point's month, and reach the bound (tests/test_paging.py walks real pages)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from callhistory.db.months import Window, month_windows

YEAR = 365 * 86_400_000_000
instants = st.integers(min_value=10 * YEAR, max_value=100 * YEAR)  # 1980..2070


def holds(window: Window, micros: int) -> bool:
    low, high = window
    return (low is None or low <= micros) and (high is None or micros < high)


@given(anchor=instants, far=st.none() | instants, step=st.sampled_from([-1, 1]))
def test_windows_follow_one_another_from_the_anchor_to_the_bound(
    anchor: int, far: int | None, step: int
) -> None:
    windows = month_windows(anchor, far, step=step)
    if far is not None and (far - anchor) * step < 0:
        return  # a bound behind the anchor: nothing to walk, whatever is read
    for window in windows:
        low, high = window
        assert low is None or high is None or low < high, windows
    for nearer, further in itertools.pairwise(windows):
        assert (nearer[0] == further[1]) if step < 0 else (nearer[1] == further[0]), windows
    near_end = windows[0][1] if step < 0 else windows[0][0]
    assert near_end is None, windows  # nothing beyond the anchor the other way is left out
    assert holds(windows[0], anchor), windows
    if far is None:
        far_end = windows[-1][0] if step < 0 else windows[-1][1]
        assert far_end is None, windows
    else:
        assert any(holds(window, far) for window in windows), windows
