"""core/array_sample: the look at a sample that decides which Parquet columns are lists (pure parts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from escli.core.array_sample import MAX_SAMPLE, arrays_in, parse_sample_size, sample_body
from escli.errors import UsageError
from escli.output.parquet import misfit_summary


def test_any_list_makes_a_candidate_a_list_column_even_empty_or_one_element() -> None:
    sources = [{"tags": "solo", "specs": {"cpu": "x", "ports": ["usb"]}, "name": "n"},
               {"tags": [], "sizes": [1, 2]},
               {"name": ["one"]}]
    assert arrays_in(sources, ["tags", "specs.cpu", "specs.ports", "name"]) == {"tags", "specs.ports", "name"}
    # a field that is not a candidate (a JSON column, or left out by --fields) is not reported
    assert arrays_in(sources, ["specs.cpu"]) == set()
    # a dotted key in _source is its column as well
    assert arrays_in([{"specs.cpu": ["a", "b"]}], ["specs.cpu"]) == {"specs.cpu"}


def test_the_sample_is_the_exports_query_randomly_ordered_and_cut_to_the_candidates() -> None:
    q = {"term": {"brand": "acme"}}
    body = sample_body(q, ["tags", "price"], 2000)
    assert body["size"] == 2000 and body["_source"] == {"includes": ["tags", "price"]}
    fs = body["query"]["function_score"]
    assert fs["query"] == q and fs["random_score"]["field"] == "_seq_no" and fs["boost_mode"] == "replace"
    assert sample_body(None, ["tags"], 10)["query"]["function_score"]["query"] == {"match_all": {}}
    assert sample_body(None, ["tags"], 10) == sample_body(None, ["tags"], 10)  # seeded: the same every run


@pytest.mark.parametrize(("text", "size"), [("2000", 2000), ("off", 0), ("OFF", 0), ("none", 0), ("0", 0),
                                            ("999999", MAX_SAMPLE)])
def test_sample_size(text: str, size: int) -> None:
    assert parse_sample_size(text) == size


@pytest.mark.parametrize("text", ["", "-1", "2k", "lots"])
def test_a_bad_sample_size_names_the_option(text: str) -> None:
    with pytest.raises(UsageError, match="--array-sample"):
        parse_sample_size(text)


def test_the_summary_names_the_arrays_the_sample_missed_and_the_option_to_add() -> None:
    line = misfit_summary(3, Path("e.ndjson"), {"tags", "colors"})
    assert line == ("3 value(s) did not fit their column and were left empty (written to e.ndjson); colors, tags "
                    "held arrays the sample did not see: add --array-fields colors,tags")
    assert misfit_summary(1, None).endswith("(use --errors FILE to see them)")
