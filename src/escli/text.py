"""Numbers read from text (options, query files, CSV cells, URL parameters): ASCII only.

`str.isdigit()` is true for '²' and '٣', and `int()`/`float()` take '٣', ' 7 ', '1_000', 'nan' and 'inf'; none of
those is a number a user means to give escli, and what escli sends on must be what Elasticsearch reads. These are
the one test and the two conversions every reader uses.
"""

from __future__ import annotations

import re

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def is_digits(text: str) -> bool:
    """True for one or more ASCII digits 0-9 and nothing else (no sign, no space, no '²')."""
    return text.isascii() and text.isdigit()


def parse_int(text: str) -> int:
    """An integer written with ASCII digits and an optional sign, surrounding spaces allowed; ValueError else."""
    stripped = text.strip()
    if _INT.fullmatch(stripped) is None:
        raise ValueError(f"{text!r} is not a whole number")
    return int(stripped)


def parse_float(text: str) -> float:
    """A decimal number (`1`, `-2.5`, `.5`, `1e3`) in ASCII, surrounding spaces allowed; ValueError else.

    Not 'nan', 'inf' or '1_0', which `float()` would take. A number too big for a float gives inf: callers that
    need a finite value check it, as they check the range."""
    stripped = text.strip()
    if _FLOAT.fullmatch(stripped) is None:
        raise ValueError(f"{text!r} is not a number")
    return float(stripped)
