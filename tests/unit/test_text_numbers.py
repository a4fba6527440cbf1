"""Numbers read from text take ASCII digits only (escli.text), and every reader uses them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from escli.core.csv_infer import infer
from escli.core.export_plan import parse_partition
from escli.core.profile import Warmup
from escli.durations import parse_duration
from escli.errors import UsageError
from escli.es.query_builder import parse_track_total_hits
from escli.es.search_defaults import key_form
from escli.profiler import parse_percentiles
from escli.text import is_digits, parse_float, parse_int

NOT_ASCII_DIGITS = ["²", "٣", "１", "⑦", "1²", "٣٣"]


@pytest.mark.parametrize("text", [*NOT_ASCII_DIGITS, "", " 1", "-1", "1.0", "1_000"])
def test_is_digits_refuses_anything_but_ascii_digits(text: str) -> None:
    assert not is_digits(text)


@given(st.text())
def test_is_digits_agrees_with_int_on_any_text(text: str) -> None:
    if is_digits(text):
        assert int(text) >= 0 and text.isascii()
    else:
        assert not text or not all("0" <= c <= "9" for c in text)


@given(st.text())
def test_parse_int_and_float_take_only_what_they_print(text: str) -> None:
    # whatever they accept is ASCII and reads back the same through the builtins
    for strict, builtin in ((parse_int, int), (parse_float, float)):
        try:
            n = strict(text)
        except ValueError:
            continue
        assert text.strip().isascii() and builtin(text.strip()) == n


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1_0", "٣", "1.5²", "0x10"])
def test_parse_float_refuses_what_float_would_take(text: str) -> None:
    with pytest.raises(ValueError):
        parse_float(text)


@pytest.mark.parametrize("text", NOT_ASCII_DIGITS)
def test_every_reader_refuses_unicode_digits(text: str) -> None:
    with pytest.raises(UsageError):
        parse_track_total_hits(text)
    with pytest.raises(UsageError):
        Warmup.parse(text)
    with pytest.raises(UsageError):
        parse_duration(text + "s", "--duration")
    with pytest.raises(UsageError):
        parse_partition(f"{text}/4")
    with pytest.raises(ValueError):
        parse_percentiles(text)
    # a URL parameter that is not ASCII digits stays text in the cache key's body
    assert key_form({}, {"timeout": text})[0].get("timeout", text) == text
    assert infer([text, text]).kind not in ("long", "double")


def test_dates_read_ascii_digits_only() -> None:
    from escli.timestamps import MILLIS, parse_date

    assert parse_date("2024-05-01T12:00:00.3Z", MILLIS) == parse_date("2024-05-01T12:00:00Z", MILLIS) + 300
    for text in ("2024-05-01T12:00:00.\u0663Z", "\u0662024-05-01"):  # ARABIC-INDIC DIGITs: not a date
        with pytest.raises(ValueError):
            parse_date(text, MILLIS)
