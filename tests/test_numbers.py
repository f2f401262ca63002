"""Phone number normalisation for the call_number filter (CONTRACT.md §3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callhistory.kit.numbers import normalize

subscriber = st.from_regex(r"[1-9][0-9]{8}", fullmatch=True)
OLD_TO_NEW = [
    ("0162", "032"),
    ("0163", "033"),
    ("0164", "034"),
    ("0165", "035"),
    ("0166", "036"),
    ("0167", "037"),
    ("0168", "038"),
    ("0169", "039"),
    ("0120", "070"),
    ("0121", "079"),
    ("0122", "077"),
    ("0126", "076"),
    ("0128", "078"),
    ("0123", "083"),
    ("0124", "084"),
    ("0125", "085"),
    ("0127", "081"),
    ("0129", "082"),
    ("0186", "056"),
    ("0188", "058"),
    ("0199", "059"),
]


@given(subscriber)
def test_three_vietnamese_forms_are_one_number(digits: str) -> None:
    national = "0" + digits
    assert normalize("+84" + digits) == normalize("84" + digits) == normalize(national)


@given(subscriber, st.lists(st.sampled_from([" ", ".", "-", "(", ")"]), max_size=4))
def test_separators_do_not_matter(digits: str, separators: list[str]) -> None:
    written = "0" + digits
    for i, sep in enumerate(separators):
        cut = 1 + (i * 3) % (len(written) - 1)
        written = written[:cut] + sep + written[cut:]
    assert normalize(written) == normalize("0" + digits)


@given(st.text(max_size=20))
def test_normalising_twice_changes_nothing(text: str) -> None:
    assert normalize(normalize(text)) == normalize(text)


@pytest.mark.parametrize(("old", "new"), OLD_TO_NEW)
@given(rest=st.from_regex(r"[0-9]{7}", fullmatch=True))
def test_pre_2018_mobile_numbers_map_to_successors(old: str, new: str, rest: str) -> None:
    assert normalize(old + rest) == normalize(new + rest) == new + rest
    assert normalize("+84" + old[1:] + rest) == new + rest


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("0841234567", "0841234567"),  # a national 084… number stays itself
        ("84912345678", "0912345678"),
        ("101", "101"),  # extensions compare as they are
        ("1900 6868", "19006868"),
        ("+1 (415) 555-0100", "+14155550100"),
    ],
)
def test_examples(written: str, canonical: str) -> None:
    assert normalize(written) == canonical
