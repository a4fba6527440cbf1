"""What a copy keeps, rewrites or drops, per target product and major (core/copy_rules.py, pure)."""

from __future__ import annotations

from escli.core.copy_mappings import clean_mappings, compare_mappings, unwrap_type
from escli.core.copy_meta import Rename, named_in
from escli.core.copy_rules import DROPPED, REFUSED, REWRITTEN, Note, clean_alias, clean_settings, flatten_settings
from escli.core.copy_templates import clean_template, compose_template
from escli.es.api import ELASTICSEARCH, OPENSEARCH, ProductInfo, name_lists

ES7 = ProductInfo(ELASTICSEARCH, "7.17.29")
ES8 = ProductInfo(ELASTICSEARCH, "8.19.21")
ES9 = ProductInfo(ELASTICSEARCH, "9.5.4")
OS2 = ProductInfo(OPENSEARCH, "2.19.6")

SOURCE_SETTINGS = {
    "index.analysis.analyzer.my.type": "custom", "index.analysis.analyzer.my.filter": ["lowercase"],
    "index.creation_date": "1796566390769", "index.number_of_replicas": "1", "index.number_of_shards": "2",
    "index.provided_name": "src", "index.routing.allocation.include._tier_preference": "data_content",
    "index.uuid": "YCBdVbxVRMK", "index.version.created": "8537000", "index.history.uuid": "h",
    "index.resize.source.name": "big", "index.resize.source.uuid": "u",
}


def actions(notes: list[Note]) -> dict[str, str]:
    return {n.what: n.action for n in notes}


def test_the_sources_own_life_is_left_out_silently() -> None:
    out = clean_settings(SOURCE_SETTINGS, ES8, ES9)
    assert out.body == {"index.analysis.analyzer.my.type": "custom", "index.analysis.analyzer.my.filter": ["lowercase"],
                        "index.number_of_replicas": "1", "index.number_of_shards": "2"}
    assert out.notes == []


def test_what_ties_the_copy_to_the_source_is_dropped_and_said() -> None:
    flat = {"index.blocks.write": "true", "index.routing.allocation.require.box": "hot",
            "index.lifecycle.name": "logs", "index.default_pipeline": "p", "index.refresh_interval": "5s",
            "index.xpack.ccr.following_index": "true", "index.store.type": "snapshot",
            "index.plugins.index_state_management.policy_id": "hot"}
    out = clean_settings(flat, ES9, ES9)
    assert out.body == {"index.refresh_interval": "5s"}
    assert actions(out.notes) == {k: DROPPED for k in flat if k != "index.refresh_interval"}
    assert all(n.why for n in out.notes)


def test_opensearch_internals_are_left_out_silently() -> None:
    flat = {"index.context.created_version": "1", "index.remote_store.enabled": "true",
            "index.replication.type": "SEGMENT", "index.number_of_shards": "1"}
    assert clean_settings(flat, OS2, OS2).body == {"index.replication.type": "SEGMENT", "index.number_of_shards": "1"}
    assert clean_settings(flat, OS2, OS2).notes == []


def test_soft_deletes_off_is_dropped_going_to_8_or_later() -> None:
    flat = {"index.soft_deletes.enabled": "false", "index.number_of_shards": "1"}
    assert clean_settings(flat, ES7, ES9).body == {"index.number_of_shards": "1"}
    assert actions(clean_settings(flat, ES7, ES9).notes) == {"index.soft_deletes.enabled": DROPPED}
    kept = {"index.soft_deletes.enabled": "true"}
    assert clean_settings(kept, ES7, ES9).body == kept


def test_across_products_only_the_portable_settings_cross() -> None:
    flat = {"index.number_of_shards": "3", "index.mode": "logsdb", "index.mapping.source.mode": "synthetic",
            "index.codec": "best_compression", "index.analysis.filter.f.type": "stop"}
    out = clean_settings(flat, ES9, OS2)
    assert out.body == {"index.number_of_shards": "3", "index.codec": "best_compression",
                        "index.analysis.filter.f.type": "stop"}
    assert actions(out.notes) == {"index.mode": DROPPED, "index.mapping.source.mode": DROPPED}
    back = clean_settings({"index.replication.type": "DOCUMENT", "index.knn": "true", "index.codec": "zstd",
                           "index.number_of_shards": "1"}, OS2, ES9)
    assert back.body == {"index.number_of_shards": "1"}
    assert actions(back.notes) == {"index.knn": DROPPED, "index.codec": DROPPED}  # replication.type: silent


def test_same_product_keeps_what_it_does_not_know_about() -> None:
    flat = {"index.mode": "logsdb", "index.mapping.total_fields.ignore_dynamic_beyond_limit": "true"}
    assert clean_settings(flat, ES8, ES9).body == flat


def test_nested_template_settings_are_flattened_with_the_index_prefix() -> None:
    assert flatten_settings({"index": {"number_of_shards": "1", "analysis": {"analyzer": {"a": {"type": "x"}}}},
                             "number_of_replicas": 0}) == {
        "index.number_of_shards": "1", "index.analysis.analyzer.a.type": "x", "index.number_of_replicas": 0}


MAPPING = {"_routing": {"required": True}, "properties": {
    "k": {"type": "keyword"}, "price": {"type": "long"}, "at": {"type": "date_nanos"}, "loc": {"type": "geo_point"},
    "tags": {"type": "nested", "properties": {"name": {"type": "keyword"}}},
    "owner": {"properties": {"name": {"type": "text", "fields": {"raw": {"type": "keyword"}}}}}}}


def test_a_plain_mapping_crosses_unchanged_either_way() -> None:
    for src, dst in ((ES8, ES9), (ES9, OS2), (OS2, ES9), (ES7, ES9)):
        out = clean_mappings(MAPPING, src, dst)
        assert out.body == MAPPING and out.notes == [] and out.settings == {}


def test_a_typed_mapping_is_unwrapped() -> None:
    inner, name = unwrap_type({"_doc": {"properties": {"a": {"type": "long"}}}})
    assert (inner, name) == ({"properties": {"a": {"type": "long"}}}, "_doc")
    assert unwrap_type({"properties": {}})[1] is None
    out = clean_mappings({"doc": {"properties": {"a": {"type": "long"}}}}, ES7, ES9)
    assert out.body == {"properties": {"a": {"type": "long"}}}
    assert actions(out.notes) == {"mappings": REWRITTEN}


def test_es_only_field_types_are_rewritten_for_opensearch() -> None:
    mapping = {"properties": {
        "f": {"type": "flattened", "depth_limit": 5}, "s": {"type": "semantic_text", "inference_id": "e5"},
        "v": {"type": "dense_vector", "dims": 3, "similarity": "cosine"},
        "k": {"type": "keyword", "time_series_dimension": True}, "h": {"type": "histogram"},
        "o": {"type": "object", "subobjects": False, "properties": {"a.b": {"type": "long"}}}}}
    out = clean_mappings(mapping, ES9, OS2)
    props = out.body["properties"]
    assert props["f"] == {"type": "flat_object"}
    assert props["s"] == {"type": "text"}
    assert props["v"] == {"type": "knn_vector", "dimension": 3,
                          "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"}}
    assert props["k"] == {"type": "keyword"}
    assert props["h"] == {"type": "object", "enabled": False}
    assert props["o"] == {"type": "object", "properties": {"a.b": {"type": "long"}}}
    assert out.settings == {"index.knn": True}
    assert actions(out.notes) == {"f": REWRITTEN, "s": REWRITTEN, "v": REWRITTEN, "k.time_series_dimension": DROPPED,
                                  "h": REWRITTEN, "o.subobjects": DROPPED}


def test_opensearch_field_types_are_rewritten_for_elasticsearch() -> None:
    mapping = {"properties": {"f": {"type": "flat_object"},
                              "v": {"type": "knn_vector", "dimension": 4, "method": {"space_type": "l2"}},
                              "w": {"type": "knn_vector", "dimension": 4, "method": {"space_type": "l1"}}}}
    out = clean_mappings(mapping, OS2, ES9)
    assert out.body["properties"]["f"] == {"type": "flattened"}
    assert out.body["properties"]["v"] == {"type": "dense_vector", "dims": 4, "index": True, "similarity": "l2_norm"}
    assert actions(out.notes) == {"f": REWRITTEN, "v": REWRITTEN, "w": REFUSED}


def test_a_dense_vector_without_dims_is_refused_for_opensearch() -> None:
    out = clean_mappings({"properties": {"v": {"type": "dense_vector"}}}, ES9, OS2)
    assert actions(out.notes) == {"v": REFUSED}


def test_removed_mapping_parameters_are_dropped_going_to_8_or_later() -> None:
    mapping = {"_field_names": {"enabled": False}, "properties": {
        "t": {"type": "text", "boost": 2}, "s": {"type": "geo_shape", "tree": "quadtree", "precision": "1m"}}}
    out = clean_mappings(mapping, ES7, ES9)
    assert out.body == {"properties": {"t": {"type": "text"}, "s": {"type": "geo_shape"}}}
    assert actions(out.notes) == {"mappings._field_names": DROPPED, "t.boost": DROPPED, "s.tree": DROPPED,
                                  "s.precision": DROPPED}
    assert clean_mappings(mapping, ES7, OS2).body["properties"]["t"] == {"type": "text", "boost": 2}


def test_source_mode_moves_to_the_setting_on_elasticsearch_and_is_dropped_for_opensearch() -> None:
    mapping = {"_source": {"mode": "synthetic"}, "properties": {"a": {"type": "long"}}}
    es = clean_mappings(mapping, ES8, ES9)
    assert es.body == {"properties": {"a": {"type": "long"}}}
    assert es.settings == {"index.mapping.source.mode": "synthetic"}
    assert clean_mappings(mapping, ES8, ES8).body == mapping  # 8.x knows only the mapping's form before 8.17
    os_ = clean_mappings(mapping, ES8, OS2)
    assert os_.body == {"properties": {"a": {"type": "long"}}} and os_.settings == {}
    assert actions(os_.notes) == {"mappings._source.mode": DROPPED}


def test_runtime_fields_do_not_go_to_opensearch() -> None:
    out = clean_mappings({"dynamic": "runtime", "runtime": {"r": {"type": "long"}}, "properties": {}}, ES9, OS2)
    assert out.body == {"dynamic": True, "properties": {}}
    assert actions(out.notes) == {"mappings.runtime": DROPPED, "mappings.dynamic": REWRITTEN}


def test_dynamic_templates_are_rewritten_like_fields() -> None:
    mapping = {"dynamic_templates": [{"flat": {"match": "f_*", "mapping": {"type": "flattened"}}}]}
    out = clean_mappings(mapping, ES9, OS2)
    assert out.body == {"dynamic_templates": [{"flat": {"match": "f_*", "mapping": {"type": "flat_object"}}}]}


def test_an_existing_target_must_take_the_sources_fields() -> None:
    source = {"properties": {"price": {"type": "long"}, "k": {"type": "keyword"}, "new": {"type": "long"},
                             "o": {"properties": {"x": {"type": "long"}}}}}
    target = {"properties": {"price": {"type": "keyword"}, "k": {"type": "keyword"}}}
    notes = compare_mappings(source, target)
    assert [(n.what, n.action, n.why) for n in notes] == [
        ("price", REFUSED, "long on the source, keyword on the target")]
    strict = compare_mappings(source, {**target, "dynamic": "strict"})
    assert actions(strict) == {"price": REFUSED, "new": REFUSED, "o": REFUSED}
    off = compare_mappings({"properties": {"o": {"properties": {"y": {"type": "long"}}}}},
                           {"properties": {"o": {"dynamic": False, "properties": {"x": {"type": "long"}}}}})
    assert actions(off) == {"o.y": DROPPED}


def test_an_object_against_nested_is_a_conflict() -> None:
    notes = compare_mappings({"properties": {"n": {"type": "nested", "properties": {}}}},
                             {"properties": {"n": {"properties": {"a": {"type": "long"}}}}})
    assert [(n.what, n.why) for n in notes] == [("n", "nested on the source, object on the target")]


def test_alias_properties_are_kept() -> None:
    spec = {"filter": {"term": {"k": "a"}}, "index_routing": "1", "search_routing": "1,2", "is_write_index": True}
    assert clean_alias("a", spec).body == spec


def test_templates_lose_their_read_only_dates_and_cross_products() -> None:
    body = {"index_patterns": ["logs-*"], "composed_of": ["c"], "priority": 5, "data_stream": {"hidden": False},
            "template": {"settings": {"index": {"number_of_shards": "1", "lifecycle": {"name": "p"}}},
                         "mappings": {"properties": {"f": {"type": "flattened"}}}, "lifecycle": {"enabled": True}},
            "created_date_millis": 1, "allow_auto_create": True}
    out = clean_template("index", "t", body, ES9, OS2)
    assert out.body == {"index_patterns": ["logs-*"], "composed_of": ["c"], "priority": 5,
                        "data_stream": {"timestamp_field": {"name": "@timestamp"}},
                        "template": {"settings": {"index.number_of_shards": "1"},
                                     "mappings": {"properties": {"f": {"type": "flat_object"}}}}}
    assert actions(out.notes) == {"index template t: index.lifecycle.name": DROPPED,
                                  "index template t: f": REWRITTEN,
                                  "index template t: template.lifecycle": DROPPED,
                                  "index template t.data_stream.hidden": DROPPED,
                                  "index template t.allow_auto_create": DROPPED}
    same = clean_template("component", "c", {"template": {"mappings": {"properties": {}}}, "version": 2},
                          OS2, OS2)
    assert same.body == {"template": {"mappings": {"properties": {}}}, "version": 2} and same.notes == []


def test_rename() -> None:
    assert Rename(dest="x").apply("a") == "x"
    assert Rename(prefix="p-", suffix="-s").apply("a") == "p-a-s"
    assert Rename().apply("a") == "a"


def test_templates_compose_later_parts_winning() -> None:
    got = compose_template([
        {"settings": {"index": {"number_of_shards": 1, "refresh_interval": "1s"}},
         "mappings": {"properties": {"a": {"type": "keyword"}, "o": {"properties": {"x": {"type": "long"}}}}}},
        {"settings": {"refresh_interval": "5s"},
         "mappings": {"properties": {"o": {"properties": {"y": {"type": "ip"}}}}}},
    ])
    assert got == {"settings": {"index.number_of_shards": 1, "index.refresh_interval": "5s"},
                   "mappings": {"properties": {"a": {"type": "keyword"},
                                               "o": {"properties": {"x": {"type": "long"}, "y": {"type": "ip"}}}}}}


def test_the_field_an_engines_refusal_names() -> None:
    assert named_in("mapper_parsing_exception: No handler for type [wildcard] declared on field [pattern]") == \
        "pattern"
    assert named_in("unknown parameter [script] on mapper [i] of type [ip]") == "i"
    assert named_in("Mapping definition for [o] has unsupported parameters:  [subobjects : false]") == "o"
    assert named_in("unknown setting [index.foo] please check that any required plugins are installed") == \
        "index.foo"
    assert named_in("something else entirely") is None


def test_a_multi_field_the_target_lacks_is_said() -> None:
    source = {"properties": {"name": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
                             "o": {"properties": {"x": {"type": "long"}}}}}
    target = {"properties": {"name": {"type": "text"}, "o": {"type": "keyword"}}}
    notes = compare_mappings(source, target)
    assert [(n.what, n.action) for n in notes] == [("name.raw", DROPPED), ("o", REFUSED)]
    assert notes[1].why == "object on the source, keyword on the target"



def test_long_name_lists_are_split_within_the_request_line() -> None:
    names = [f"{'x' * 240}-{i}" for i in range(40)]
    lines = list(name_lists(names))
    assert len(lines) > 1 and all(len(line) <= 3000 for line in lines)
    assert ",".join(lines).split(",") == names
    assert list(name_lists(["a", "b"])) == ["a,b"] and list(name_lists([])) == []
    assert list(name_lists(["y" * 5000])) == ["y" * 5000]  # one name is never split
