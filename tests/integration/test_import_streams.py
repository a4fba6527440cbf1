"""`escli import` into data streams, with `--op-type`, through mapping races, and of its own errors file.

Data streams are tested on the OpenSearch node (they are in its core; Elasticsearch's test build has none).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from escli.sample import generate
from tests.conftest import OPENSEARCH_URL, Result
from tests.integration.test_completion_names import tab

Cli = Callable[..., Result]


@pytest.fixture()
def run_os(cli: Cli) -> Cli:
    def invoke(*args: str, **kwargs: Any) -> Result:
        return cli(*args, env={"ESCLI_URL": OPENSEARCH_URL, **kwargs.pop("env", {})}, **kwargs)
    return invoke


@pytest.fixture()
def stream_prefix(opensearch: httpx.Client) -> Iterator[str]:
    """A data-stream index template for `PREFIX-*`; the streams and the template are deleted afterwards."""
    prefix = f"t-ds-{uuid.uuid4().hex[:8]}"
    opensearch.put(f"/_index_template/{prefix}", json={"index_patterns": [f"{prefix}-*"], "data_stream": {},
                                                        "priority": 500}).raise_for_status()
    yield prefix
    opensearch.delete(f"/_data_stream/{prefix}-*")
    opensearch.delete(f"/_index_template/{prefix}")


@pytest.fixture()
def os_index(opensearch: httpx.Client) -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def make() -> str:
        made.append(f"t-os-imp-{uuid.uuid4().hex[:8]}")
        return made[-1]

    yield make
    for name in made:
        opensearch.delete(f"/{name}", params={"ignore_unavailable": "true"})


def events(n: int, start: int = 0) -> bytes:
    return b"".join(orjson.dumps({"@timestamp": f"2024-01-01T00:00:{i % 60:02d}Z", "n": i, "msg": f"event {i}"})
                    + b"\n" for i in range(start, start + n))


@pytest.mark.opensearch
def test_import_into_a_data_stream_writes_with_create(run_os: Cli, opensearch: httpx.Client, stream_prefix: str,
                                                      tmp_path: Path, isolated_env: dict[str, str]) -> None:
    stream = f"{stream_prefix}-logs"
    src = tmp_path / "events.ndjson"
    src.write_bytes(events(1000))
    # a new name the template makes a data stream of: learnt from the engine's first refusal
    first = run_os("import", stream, str(src), "--chunk-size", "100", "--errors", str(tmp_path / "e1.ndjson"))
    assert first.code == 0, first.stderr
    assert "imported 1000 of 1000" in first.stderr
    assert opensearch.get(f"/_data_stream/{stream}").json()["data_streams"][0]["name"] == stream
    # an existing data stream: known before the first request
    src.write_bytes(events(500, start=1000))
    again = run_os("import", stream, str(src), "-o", "json")
    assert again.code == 0, again.stderr
    assert json.loads(again.out)["imported"] == 500
    assert opensearch.get(f"/{stream}/_count").json()["count"] == 1500

    refused = run_os("import", stream, str(src), "--op-type", "index")
    assert refused.code == 2 and "data stream" in refused.stderr and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    # the other commands take the data stream's name as they take an index's
    found = run_os("search", stream, "event", "-f", "msg", "--filter", "n=1200", "-o", "json")
    assert found.code == 0, found.stderr
    assert [h["_source"]["n"] for h in json.loads(found.out)["hits"]["hits"]] == [1200]
    exported = run_os("export", stream, "--format", "ndjson")
    assert exported.code == 0, exported.stderr
    assert sorted(json.loads(x)["_source"]["n"] for x in exported.out.splitlines()) == list(range(1500))
    health = run_os("health", "--index", stream, "--format", "json")
    assert health.code in (0, 1), health.stderr  # yellow on one node is a warning, not a failure
    assert json.loads(health.out)["status"] in ("green", "yellow")
    names, _ = tab({**isolated_env, "ESCLI_URL": OPENSEARCH_URL}, f"escli search {stream_prefix}-lo")
    assert names == [stream]


@pytest.mark.opensearch
def test_op_type_create_sends_an_existing_id_to_errors(run_os: Cli, opensearch: httpx.Client, tmp_path: Path,
                                                       os_index: Callable[[], str]) -> None:
    index = os_index()
    src = tmp_path / "docs.ndjson"
    src.write_text('{"id": "a", "v": 1}\n{"id": "b", "v": 2}\n')
    assert run_os("import", index, str(src), "--id-field", "id").code == 0
    src.write_text('{"id": "b", "v": 20}\n{"id": "c", "v": 3}\n')
    errors = tmp_path / "errors.ndjson"
    r = run_os("import", index, str(src), "--id-field", "id", "--op-type", "create", "--errors", str(errors))
    assert r.code == 1 and "1 documents rejected" in r.stderr
    (rec,) = [json.loads(x) for x in errors.read_text().splitlines()]
    assert rec["_id"] == "b" and rec["status"] == 409
    assert rec["error"]["type"] == "version_conflict_engine_exception"
    assert opensearch.get(f"/{index}/_doc/b").json()["_source"]["v"] == 2  # create never overwrites
    assert opensearch.get(f"/{index}/_count").json()["count"] == 3
    # the default (index) overwrites, as before
    assert run_os("import", index, str(src), "--id-field", "id").code == 0
    assert opensearch.get(f"/{index}/_doc/b").json()["_source"]["v"] == 20
    bad = run_os("import", index, str(src), "--op-type", "upsert")
    assert bad.code == 2 and "--op-type upsert" in bad.stderr


@pytest.mark.opensearch
def test_no_document_lost_to_a_mapping_race_on_opensearch(run_os: Cli, opensearch: httpx.Client, tmp_path: Path,
                                                          os_index: Callable[[], str]) -> None:
    """The seed-7 sample with no mapping: concurrent bulk requests map the same new fields at once (OpenSearch
    refuses the loser's items with "cannot be changed from type"); escli resends them once the mapping settled."""
    index = os_index()
    src = tmp_path / "sample.ndjson"
    src.write_bytes(b"".join(orjson.dumps(doc) + b"\n" for doc in generate(5000, seed=7)))
    errors = tmp_path / "errors.ndjson"
    r = run_os("import", index, str(src), "--id-field", "id", "--errors", str(errors), "-o", "json")
    assert r.code == 0, r.stderr
    assert json.loads(r.out)["imported"] == 5000 and not errors.exists()
    assert opensearch.get(f"/{index}/_count").json()["count"] == 5000
    # a real conflict is still refused, and kept
    field = next(k for k, v in opensearch.get(f"/{index}/_mapping").json()[index]["mappings"]["properties"].items()
                 if v.get("type") == "long")
    src.write_text(json.dumps({field: "not a number"}) + "\n")
    bad = run_os("import", index, str(src), "--errors", str(errors))
    assert bad.code == 1 and "1 documents rejected" in bad.stderr
    (rec,) = [json.loads(x) for x in errors.read_text().splitlines()]
    assert rec["error"]["type"] == "mapper_parsing_exception" and rec["document"] == {field: "not a number"}


def test_the_errors_file_imports_as_it_is(cli: Cli, es: httpx.Client, index_name: Callable[[str], str],
                                          tmp_path: Path) -> None:
    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps({"properties": {"n": {"type": "integer"}, "tag": {"type": "keyword"}}}))
    src = tmp_path / "docs.ndjson"
    src.write_text('{"id": "a", "n": 1}\n{"id": "b", "n": "two", "tag": "x"}\nnot json\n'
                   '{"id": "c", "n": "three"}\n')
    errors = tmp_path / "errors.ndjson"
    first = index_name("strict")
    r = cli("import", first, str(src), "--mapping", str(strict), "--id-field", "id", "--errors", str(errors))
    assert r.code == 1
    records = [json.loads(x) for x in errors.read_text().splitlines()]
    assert sorted(rec.get("_id") or "" for rec in records) == ["", "b", "c"]  # the bad line has no id
    # the cause fixed (n as text), the errors file goes in as it is: its documents with their ids
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps({"properties": {"n": {"type": "keyword"}, "tag": {"type": "keyword"}}}))
    second = index_name("fixed")
    again = cli("import", second, str(errors), "--mapping", str(fixed), "-o", "json")
    assert again.code == 1, again.stderr  # the bad input line is named, not taken as a document
    assert "holds no document" in again.stderr and f"{src}:3" in again.stderr
    assert json.loads(again.out)["imported"] == 2
    assert es.get(f"/{second}/_doc/b").json()["_source"] == {"id": "b", "n": "two", "tag": "x"}
    assert es.get(f"/{second}/_doc/c").json()["_source"] == {"id": "c", "n": "three"}
    assert es.get(f"/{second}/_count").json()["count"] == 2
