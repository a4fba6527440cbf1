"""es/api.py's `typeless`: a 6.x/7.x mapping's type level taken out, anything else left as it is (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from escli.es.api import typeless, typeless_answer

PROPS = {"properties": {"a": {"type": "keyword"}}}


@pytest.mark.parametrize(("given", "expected"), [
    ({"_doc": PROPS}, PROPS),
    ({"product": {**PROPS, "_source": {"enabled": True}}}, {**PROPS, "_source": {"enabled": True}}),  # 6.x name
    ({"_doc": {}}, {}),
    ({"_doc": {"dynamic": "strict"}}, {"dynamic": "strict"}),
    (PROPS, PROPS),  # typeless already
    ({"dynamic": "strict"}, {"dynamic": "strict"}),  # one parameter, not a type
    ({"_source": {"enabled": False}}, {"_source": {"enabled": False}}),
    ({"_meta": {"properties": {}}}, {"_meta": {"properties": {}}}),  # a parameter whose value looks like a mapping
    ({"x": {"y": 1}}, {"x": {"y": 1}}),  # not a mapping inside: left for the engine to refuse by name
    ({}, {}),
    ({"_doc": PROPS, "dynamic": True}, {"_doc": PROPS, "dynamic": True}),  # two keys: never a type level
    (None, None),
])
def test_the_type_level_goes_and_nothing_else(given: Any, expected: Any) -> None:
    assert typeless(given) == expected


def test_an_answer_with_types_has_none_after() -> None:
    answer = {"old": {"mappings": {"_doc": PROPS}}, "new": {"mappings": PROPS}, "odd": {"aliases": {}}}
    assert typeless_answer(answer) == {"old": {"mappings": PROPS}, "new": {"mappings": PROPS}, "odd": {"aliases": {}}}
    assert typeless_answer(["not", "an", "object"]) == {}
