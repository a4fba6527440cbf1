"""`escli import` against the real engine."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson

from escli.sample import MAPPING, generate


def ids_and_sources(es: httpx.Client, index: str) -> dict[str, dict[str, object]]:
    resp = es.post(f"/{index}/_search", json={"size": 10000, "query": {"match_all": {}}, "sort": ["_doc"]})
    resp.raise_for_status()
    return {h["_id"]: h["_source"] for h in resp.json()["hits"]["hits"]}


def write_ndjson(path: Path, docs: list[dict[str, object]]) -> None:
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))


def test_round_trip_keeps_ids_and_documents(cli: Callable[..., object], es: httpx.Client,
                                            index_name: Callable[[str], str], tmp_path: Path) -> None:
    docs = list(generate(300, seed=7))
    src = tmp_path / "docs.ndjson"
    write_ndjson(src, docs)
    mapping = tmp_path / "mapping.json"
    mapping.write_bytes(orjson.dumps(MAPPING))
    index = index_name("rt")
    r = cli("import", index, str(src), "--mapping", str(mapping), "--id-field", "id", "--chunk-size", "64")
    assert r.code == 0, r.stderr
    assert "imported 300 of 300" in r.stderr
    got = ids_and_sources(es, index)
    assert got == {d["id"]: d for d in docs}
    # the mapping was applied (the explicit keyword subfield exists; dynamic mapping would not make `id` keyword)
    props = es.get(f"/{index}/_mapping").json()[index]["mappings"]["properties"]
    assert props["id"] == {"type": "keyword"}
    assert props["name"]["fields"]["keyword"]["type"] == "keyword"


def test_bad_line_is_named_rest_imported_exit_1(cli: Callable[..., object], es: httpx.Client,
                                                 index_name: Callable[[str], str], tmp_path: Path) -> None:
    src = tmp_path / "bad.ndjson"
    src.write_text('{"id": "a", "n": 1}\n\n{"id": "b", "n": 2\n[1, 2]\n{"id": "c", "n": 3}\n')
    errors = tmp_path / "errors.ndjson"
    index = index_name("bad")
    r = cli("import", index, str(src), "--id-field", "id", "--errors", str(errors))
    assert r.code == 1
    assert f"{src}:3: invalid JSON" in r.stderr
    assert f"{src}:4: expected a JSON object" in r.stderr
    assert "Traceback" not in r.stderr
    assert set(ids_and_sources(es, index)) == {"a", "c"}
    lines = [json.loads(x) for x in errors.read_text().splitlines()]
    assert [x["line"] for x in lines] == [3, 4]
    assert errors.stat().st_mode & 0o777 == 0o600


def test_rejected_documents_go_to_errors_file(cli: Callable[..., object], es: httpx.Client,
                                               index_name: Callable[[str], str], tmp_path: Path) -> None:
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps({"properties": {"n": {"type": "integer"}}}))
    src = tmp_path / "docs.ndjson"
    src.write_text('{"n": 1}\n{"n": "not a number"}\n{"n": 3}\n')
    errors = tmp_path / "errors.ndjson"
    index = index_name("rej")
    r = cli("import", index, str(src), "--mapping", str(mapping), "--errors", str(errors))
    assert r.code == 1
    assert "1 documents rejected" in r.stderr
    (rec,) = [json.loads(x) for x in errors.read_text().splitlines()]
    assert rec["line"] == 2 and rec["status"] == 400 and rec["document"] == {"n": "not a number"}
    assert rec["error"]["type"] == "document_parsing_exception"
    assert es.get(f"/{index}/_count").json()["count"] == 2


def test_csv_with_quoting_nested_and_arrays(cli: Callable[..., object], es: httpx.Client,
                                            index_name: Callable[[str], str], tmp_path: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["_id", "name", "specs.ram_gb", "tags"])
    w.writerow(["x1", 'He said "hi", twice\nand left', "16", '["a,b","c"]'])
    w.writerow(["x2", "=SUM(A1)", "", "[]"])
    src = tmp_path / "docs.csv"
    src.write_text(buf.getvalue(), encoding="utf-8")
    index = index_name("csv")
    r = cli("import", index, str(src))
    assert r.code == 0, r.stderr
    got = ids_and_sources(es, index)
    assert got["x1"] == {"name": 'He said "hi", twice\nand left', "specs": {"ram_gb": 16}, "tags": ["a,b", "c"]}
    assert got["x2"] == {"name": "=SUM(A1)", "tags": []}


def test_csv_row_with_wrong_width_is_named(cli: Callable[..., object], index_name: Callable[[str], str],
                                           tmp_path: Path) -> None:
    src = tmp_path / "w.csv"
    src.write_text("a,b\n1,2\n3\n4,5\n")
    r = cli("import", index_name("w"), str(src))
    assert r.code == 1
    assert f"{src}:3: expected 2 fields, got 1" in r.stderr


def test_stdin_and_hits_form(cli: Callable[..., object], es: httpx.Client,
                             index_name: Callable[[str], str]) -> None:
    data = b'{"_id": "h1", "_index": "old", "_source": {"v": 1}}\n{"_id": "h2", "_source": {"v": 2}}\n'
    index = index_name("stdin")
    r = cli("import", index, "-", stdin=data)
    assert r.code == 0, r.stderr
    assert ids_and_sources(es, index) == {"h1": {"v": 1}, "h2": {"v": 2}}


def test_missing_file_and_bad_mapping_exit_2(cli: Callable[..., object], index_name: Callable[[str], str],
                                             tmp_path: Path) -> None:
    r = cli("import", index_name("nf"), str(tmp_path / "nope.ndjson"))
    assert r.code == 2 and "nope.ndjson: no such file" in r.stderr
    bad = tmp_path / "m.json"
    bad.write_text("{not json")
    src = tmp_path / "d.ndjson"
    src.write_text("{}\n")
    r = cli("import", index_name("bm"), str(src), "--mapping", str(bad))
    assert r.code == 2 and f"--mapping {bad}: invalid JSON" in r.stderr


def test_unreachable_cluster_exits_3(cli: Callable[..., object], tmp_path: Path) -> None:
    src = tmp_path / "d.ndjson"
    src.write_text('{"a": 1}\n')
    r = cli("--url", "http://127.0.0.1:9", "--max-retries", "0", "--timeout", "2", "import", "x", str(src))
    assert r.code == 3
    assert "cluster unreachable" in r.stderr and "Traceback" not in r.stderr


def routed_index(es: httpx.Client, name: str, docs: dict[str, tuple[str, dict[str, object]]]) -> str:
    """An index that requires routing, with these documents ({id: (routing, source)})."""
    es.put(f"/{name}", json={"settings": {"number_of_shards": 3},
                             "mappings": {"_routing": {"required": True}}}).raise_for_status()
    lines = b"".join(orjson.dumps({"index": {"_id": k, "routing": r}}) + b"\n" + orjson.dumps(v) + b"\n"
                     for k, (r, v) in docs.items())
    resp = es.post(f"/{name}/_bulk", params={"refresh": "true"}, content=lines,
                   headers={"content-type": "application/x-ndjson"})
    assert not resp.json()["errors"], resp.text[:500]
    return name


def test_export_import_keeps_required_routing(cli: Callable[..., object], es: httpx.Client,
                                              index_name: Callable[[str], str], tmp_path: Path) -> None:
    # issue 32: all 6 of 6 documents were rejected (routing_missing_exception) by `export | import`
    docs = {f"d{i}": (f"user{i % 3}", {"n": i, "text": "line\nbreak" if i == 4 else "plain"}) for i in range(6)}
    source = routed_index(es, index_name("src"), docs)
    dest = index_name("dest")
    es.put(f"/{dest}", json={"mappings": {"_routing": {"required": True}}}).raise_for_status()
    exported = cli("export", source)
    assert exported.code == 0, exported.stderr
    lines = [orjson.loads(x) for x in exported.stdout.splitlines()]
    assert {x["_id"]: x["_routing"] for x in lines} == {k: r for k, (r, _) in docs.items()}
    imported = cli("import", dest, "-", stdin=exported.stdout)
    assert imported.code == 0, imported.stderr
    assert "imported 6 of 6" in imported.stderr
    for doc_id, (routing, body) in docs.items():
        got = es.get(f"/{dest}/_doc/{doc_id}", params={"routing": routing}).json()
        assert got["found"] and got["_routing"] == routing and got["_source"] == body


def test_errors_file_keeps_routing(cli: Callable[..., object], es: httpx.Client,
                                   index_name: Callable[[str], str], tmp_path: Path) -> None:
    dest = index_name("dest")
    es.put(f"/{dest}", json={"mappings": {"_routing": {"required": True}, "dynamic": "strict",
                                          "properties": {"n": {"type": "long"}}}}).raise_for_status()
    src = tmp_path / "in.ndjson"
    src.write_bytes(b'{"_id": "a", "_routing": "r1", "_source": {"n": 1}}\n'
                    b'{"_id": "b", "_routing": "r2", "_source": {"n": 2, "extra": true}}\n')
    errors = tmp_path / "errors.ndjson"
    r = cli("import", dest, str(src), "--errors", str(errors))
    assert r.code == 1
    assert orjson.loads(errors.read_bytes())["_routing"] == "r2"
    es.put(f"/{dest}/_mapping", json={"dynamic": True}).raise_for_status()
    again = cli("import", dest, str(errors))
    assert again.code == 0, again.stderr
    assert es.get(f"/{dest}/_doc/b", params={"routing": "r2"}).json()["_source"] == {"n": 2, "extra": True}


def test_output_json_prints_the_summary_in_any_spelling(cli: Callable[..., object],
                                                        index_name: Callable[[str], str], tmp_path: Path) -> None:
    """-o json and -o ndjson (any case, before or after the command) print the summary document; -o JSON printed
    nothing, silently."""
    src = tmp_path / "docs.ndjson"
    write_ndjson(src, [{"n": 1}, {"n": 2}])
    index = index_name("out")
    for args in (("-o", "JSON", "import", index, str(src)), ("import", index, str(src), "-o", "NDJSON"),
                 ("import", index, str(src), "-o", "json")):
        r = cli(*args)
        assert r.code == 0, r.stderr
        doc = json.loads(r.out)
        assert doc["index"] == index and doc["imported"] == 2 and doc["read"] == 2, args
    r = cli("import", index, str(src), "-o", "table")
    assert r.code == 0 and r.stdout == b""
