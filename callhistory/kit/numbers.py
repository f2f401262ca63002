"""Phone number normalisation for the ``call_number`` filter (CONTRACT.md §3).

Vietnamese numbers written ``+84…``, ``84…`` or ``0…`` become one national form ``0`` + 9 digits,
decided by length; the pre-2018 eleven-digit mobile numbers map to their ten-digit successors.
Anything else (extensions, foreign numbers) compares as written, minus separators.
"""

from __future__ import annotations

_SEPARATORS = str.maketrans("", "", " .-()[]\t")

# Old 4-digit mobile prefixes (11-digit numbers) -> new 3-digit prefixes (10-digit numbers).
_OLD_PREFIXES: dict[str, str] = {
    **{f"016{d}": f"03{d}" for d in "23456789"},
    "0120": "070",
    "0121": "079",
    "0122": "077",
    "0126": "076",
    "0128": "078",
    "0123": "083",
    "0124": "084",
    "0125": "085",
    "0127": "081",
    "0129": "082",
    "0186": "056",
    "0188": "058",
    "0199": "059",
}


def normalize(number: str) -> str:
    """The canonical form under which two writings of one number compare equal."""
    text = number.translate(_SEPARATORS)
    if text.startswith("+84"):
        rest = text[3:]
        if rest.isdigit() and len(rest) in (9, 10):
            text = "0" + rest
    elif text.startswith("84") and text.isdigit() and len(text) in (11, 12):
        text = "0" + text[2:]
    if len(text) == 11 and text.isdigit():
        new_prefix = _OLD_PREFIXES.get(text[:4])
        if new_prefix is not None:
            return new_prefix + text[4:]
    return text
