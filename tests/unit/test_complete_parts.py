"""The pure parts of completion: line splitting, each shell's answer format, mapping and resolve walking."""

from __future__ import annotations

from escli.cli.complete import format_items, split_line
from escli.core.names import fields_of, names_of, walk_mapping


def test_split_line_separates_the_word_being_completed() -> None:
    assert split_line("escli search pro") == (["search"], "pro")
    assert split_line("escli search ") == (["search"], "")
    assert split_line("escli search 'my ind") == (["search"], "my ind")


def test_bash_gets_only_the_part_after_its_last_wordbreak() -> None:
    items = [("price:asc", ""), ("price:desc", "")]
    env = {"_ESCLI_COMPLETE_LINE": "escli search p --sort price:", "_ESCLI_COMPLETE_WORDBREAKS": " \t\n\"'@><=;|&(:"}
    assert format_items("bash", items, env) == "asc\ndesc"
    env["_ESCLI_COMPLETE_WORDBREAKS"] = " \t\n"  # a user who took : and = out of COMP_WORDBREAKS
    assert format_items("bash", items, env) == "price:asc\nprice:desc"


def test_zsh_and_fish_formats_carry_the_help() -> None:
    items = [("a:b", "keyword"), ("c", "")]
    assert format_items("zsh", items, {}) == "a\\:b:keyword\nc"
    assert format_items("fish", items, {}) == "a:b\tkeyword\nc"


def test_mapping_walk_gives_dotted_leaves_and_multi_fields() -> None:
    props = {"name": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
             "specs": {"properties": {"ram": {"type": "integer"}}}, "tags": {"type": "keyword"}}
    assert list(walk_mapping(props)) == [("name", "text"), ("name.raw", "keyword"), ("specs.ram", "integer"),
                                         ("tags", "keyword")]
    two = {"a": {"mappings": {"properties": {"x": {"type": "long"}}}},
           "b": {"mappings": {"properties": {"y": {"type": "date"}, "x": {"type": "long"}}}}}
    assert fields_of(two) == [("x", "long"), ("y", "date")]


def test_resolve_answer_names_indices_aliases_and_data_streams_not_backing_indices() -> None:
    resolved = {"indices": [{"name": "products", "aliases": ["shop"]},
                            {"name": ".ds-logs-2026.11.29-000001", "data_stream": "logs"}],
                "aliases": [{"name": "shop", "indices": ["products"]}],
                "data_streams": [{"name": "logs", "backing_indices": [".ds-logs-2026.11.29-000001"]}]}
    assert names_of(resolved) == ["logs", "products", "shop"]
