"""`escli verify` and core/verify.py on real engines: a copy made here with plain bulk requests (the copy command is
tested on its own), then verified: the differences it must name, the spellings it must not see, routed indices,
engines of other versions and products, and slices and partitions that must add up to one pass."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from escli.core.digest import BYTES, Digest, combine, fold_answer
from escli.core.verify import (
    PairDigests,
    Reading,
    VerifyResult,
    combine_partitions,
    partition_digests,
    side_digest,
    verify_copy,
)
from escli.es.connect import open_es
from escli.settings import Settings
from escli.ui import SILENT
from tests.conftest import ES8_URL, ES_URL, OPENSEARCH_URL

Doc = tuple[str, str | None, bytes]  # _id, _routing, the _source as sent


def products(n: int, start: int = 0) -> list[Doc]:
    return [(f"p{i}", None, orjson.dumps({"name": f"item {i}", "price": i + 0.5, "stock": i % 7,
                                          "tags": ["a", "b"][: i % 3], "specs": {"w": i, "h": 2}}))
            for i in range(start, start + n)]


def load(client: httpx.Client, index: str, docs: Sequence[Doc], shards: int = 2,
         mappings: dict[str, Any] | None = None) -> None:
    body: dict[str, Any] = {"settings": {"number_of_shards": shards, "number_of_replicas": 0}}
    if mappings:
        body["mappings"] = mappings
    client.put(f"/{index}", json=body).raise_for_status()
    lines = b""
    for doc_id, routing, source in docs:
        meta = {"_id": doc_id, **({"routing": routing} if routing is not None else {})}
        lines += orjson.dumps({"index": meta}) + b"\n" + source + b"\n"
    if lines:
        resp = client.post(f"/{index}/_bulk", content=lines, params={"refresh": "true"},
                           headers={"content-type": "application/x-ndjson"})
        resp.raise_for_status()
        assert not resp.json()["errors"], resp.text[:500]


@pytest.fixture()
def cleanup() -> Iterator[Callable[[httpx.Client, str], None]]:
    made: list[tuple[httpx.Client, str]] = []

    def later(client: httpx.Client, index: str) -> None:
        made.append((client, index))

    yield later
    for client, index in made:
        client.delete(f"/{index}", params={"ignore_unavailable": "true"})


def run_verify(source_url: str, target_url: str, pairs: list[tuple[str, str]], **kw: Any) -> VerifyResult:
    async def main() -> VerifyResult:
        async with open_es(Settings(urls=(source_url,)), SILENT, concurrency=8) as src, \
                open_es(Settings(urls=(target_url,)), SILENT, concurrency=8) as dst:
            return await verify_copy(src, dst, pairs, **kw)

    return asyncio.run(main())


def found(result: VerifyResult) -> set[tuple[str, str, str | None]]:
    return {(d.kind, d.key.id, d.key.routing) for v in result.indices for d in v.differences}


def test_names_one_changed_one_missing_and_one_extra(es: httpx.Client, index_name: Callable[[str], str]) -> None:
    src, dst = index_name("src"), index_name("dst")
    docs = products(500)
    load(es, src, docs)
    changed = [(i, r, s.replace(b'"stock":3', b'"stock":4')) if i == "p10" else (i, r, s) for i, r, s in docs]
    target = [d for d in changed if d[0] != "p20"] + [("intruder", None, b'{"name":"x"}')]
    load(es, dst, target, shards=3)
    result = run_verify(ES_URL, ES_URL, [(src, dst)])
    verdict = result.indices[0]
    assert not result.equal and not verdict.equal
    assert (verdict.source_count, verdict.target_count) == (500, 500)
    assert found(result) == {("changed", "p10", None), ("missing", "p20", None), ("extra", "intruder", None)}
    assert verdict.differing_buckets == 3
    assert "differs" in verdict.summary() and src in verdict.summary()


def test_equal_despite_key_order_and_number_spelling(es: httpx.Client, index_name: Callable[[str], str]) -> None:
    src, dst = index_name("src"), index_name("dst")
    docs = [("a", None, b'{"n": 1, "f": 2.50, "o": {"x": 1, "y": [1, 2.0]}}'),
            ("b", None, b'{"big": 123456789012345678901234567890, "z": -0.0}'), *products(200)]
    big = {"properties": {"big": {"type": "keyword"}}}  # beyond a long: kept as it was written
    load(es, src, docs, mappings=big)
    respelled = [("a", None, b'{"o": {"y": [1.0, 2], "x": 1e0}, "f": 2.5, "n": 1.00}'),
                 ("b", None, b'{"z": 0, "big": 123456789012345678901234567890}'), *products(200)]
    load(es, dst, respelled, mappings=big)
    result = run_verify(ES_URL, ES_URL, [(src, dst)])
    assert result.equal, result.indices[0].summary()
    assert result.indices[0].spelled_apart >= 1  # the bytes differed; the values did not
    assert result.passes == 2
    # byte-identical copies end after one pass
    same = index_name("same")
    load(es, same, docs, shards=1, mappings=big)
    assert run_verify(ES_URL, ES_URL, [(src, same)]).passes == 1


def test_a_number_that_changes_value_is_a_difference(es: httpx.Client, index_name: Callable[[str], str]) -> None:
    src, dst = index_name("src"), index_name("dst")
    load(es, src, [("a", None, b'{"n": 1, "s": "x"}'), ("b", None, b'{"n": 9007199254740993}')])
    load(es, dst, [("a", None, b'{"n": 1.5, "s": "x"}'), ("b", None, b'{"n": 9007199254740993.0}')])
    assert found(run_verify(ES_URL, ES_URL, [(src, dst)])) == {("changed", "a", None), ("changed", "b", None)}


def test_routed_index(es: httpx.Client, index_name: Callable[[str], str]) -> None:
    src, dst = index_name("src"), index_name("dst")
    mappings = {"_routing": {"required": True}}
    docs = [(f"r{i}", f"user{i % 5}", orjson.dumps({"i": i})) for i in range(100)]
    load(es, src, docs, shards=3, mappings=mappings)
    # the same documents, one of them under another routing value: missing under one, extra under the other
    moved = [(i, "elsewhere" if i == "r7" else r, s) for i, r, s in docs]
    load(es, dst, moved, shards=2, mappings=mappings)
    result = run_verify(ES_URL, ES_URL, [(src, dst)])
    assert found(result) == {("missing", "r7", "user2"), ("extra", "r7", "elsewhere")}
    faithful = index_name("ok")
    load(es, faithful, docs, shards=1, mappings=mappings)
    assert run_verify(ES_URL, ES_URL, [(src, faithful)]).equal


@pytest.mark.es8
def test_across_elasticsearch_versions(es: httpx.Client, es8: httpx.Client, index_name: Callable[[str], str],
                                       cleanup: Callable[[httpx.Client, str], None]) -> None:
    src, dst = index_name("src"), index_name("dst")
    cleanup(es8, dst)
    docs = products(800)
    load(es, src, docs, shards=3)
    load(es8, dst, docs, shards=1)
    assert run_verify(ES_URL, ES8_URL, [(src, dst)]).equal
    es8.post(f"/{dst}/_doc/p3", params={"refresh": "true"}, json={"name": "changed"}).raise_for_status()
    assert found(run_verify(ES8_URL, ES_URL, [(dst, src)])) == {("changed", "p3", None)}


@pytest.mark.opensearch
def test_elasticsearch_against_opensearch(es: httpx.Client, opensearch: httpx.Client,
                                          index_name: Callable[[str], str],
                                          cleanup: Callable[[httpx.Client, str], None]) -> None:
    src, dst = index_name("src"), index_name("dst")
    cleanup(opensearch, dst)
    docs = products(600)
    routed = [(f"x{i}", "r1", b'{"v": %d}' % i) for i in range(20)]
    load(es, src, docs + routed, shards=2)
    load(opensearch, dst, docs + routed, shards=3)
    assert run_verify(ES_URL, OPENSEARCH_URL, [(src, dst)]).equal
    opensearch.delete(f"/{dst}/_doc/x4", params={"routing": "r1", "refresh": "true"}).raise_for_status()
    result = run_verify(OPENSEARCH_URL, ES_URL, [(dst, src)])
    assert found(result) == {("extra", "x4", "r1")}  # on the source side (OpenSearch) only: the target has it


def test_no_such_target_index(es: httpx.Client, index_name: Callable[[str], str]) -> None:
    src = index_name("src")
    load(es, src, products(10))
    result = run_verify(ES_URL, ES_URL, [(src, src + "-nowhere")])
    verdict = result.indices[0]
    assert not result.equal and verdict.target_count is None and verdict.source_count == 10
    assert "no such index on the target" in verdict.summary()


def test_slices_and_partitions_add_up_to_one_pass(es: httpx.Client, index_name: Callable[[str], str]) -> None:
    src, dst = index_name("src"), index_name("dst")
    docs = products(3000)
    load(es, src, docs, shards=3)
    load(es, dst, docs[:-1], shards=2)

    async def main() -> tuple[list[Digest], list[Digest], list[PairDigests]]:
        async with open_es(Settings(urls=(ES_URL,)), SILENT, concurrency=8) as client:
            # small pages and an explicit grid: several units per shard, so partitions and slices really split
            digests = [(await side_digest(client, src, Reading(slices=n, page_size=100), BYTES)).digest
                       for n in (1, 4)]
            parts = [(await side_digest(client, src, Reading(partition=(k, 3), page_size=100), BYTES)).digest
                     for k in (1, 2, 3)]
            pairs = []
            for k in (1, 2):
                pairs += await partition_digests(client, client, [(src, dst)],
                                                 Reading(partition=(k, 2), page_size=100))
            return digests, parts, pairs

    (one, four), parts, pairs = asyncio.run(main())
    assert one.count == 3000 and one.form == BYTES
    assert four == one
    assert all(0 < p.count < 3000 for p in parts)  # each partition a real share
    assert combine(parts) == one
    first = combine_partitions(pairs)
    assert first[(src, dst)][0] == one
    result = run_verify(ES_URL, ES_URL, [(src, dst)], first=first)
    assert found(result) == {("missing", docs[-1][0], None)}
    with pytest.raises(Exception, match=r"1/N\.\.N/N"):
        combine_partitions(pairs[:1])



# --- the command ---------------------------------------------------------------------------------------------------

def test_command_exit_codes_and_report(es: httpx.Client, index_name: Callable[[str], str], cli: Callable[..., Any],
                                       tmp_path: Path) -> None:
    src, dst = index_name("src"), index_name("dst")
    docs = products(300)
    load(es, src, docs)
    load(es, dst, [d for d in docs if d[0] != "p5"])
    res = cli("verify", src, "--to", ES_URL, "--dest", dst)
    assert res.code == 1, res.stderr
    lines = res.stderr.splitlines()
    assert lines[0].startswith(f"escli: error: {src} -> {dst}: differs: 300 documents on the source, 299 on")
    assert lines[1] == f"escli: error: {dst}: missing p5"
    report = orjson.loads(res.stdout)  # not a terminal: JSON
    assert report["equal"] is False and report["indices"][0]["differences"] == [
        {"kind": "missing", "_id": "p5", "_routing": None}]
    assert "Traceback" not in res.stderr

    es.post(f"/{dst}/_doc/p5", params={"refresh": "true"}, content=docs[5][2],
            headers={"content-type": "application/json"}).raise_for_status()
    res = cli("verify", src, "--to", ES_URL, "--dest", dst, "-o", "table", "--slices", "3")
    assert res.code == 0, res.stderr
    assert "equal" in res.out and src in res.out and "300" in res.out

    # --query: the same subset on both sides
    res = cli("verify", src, "--to", ES_URL, "--dest", dst, "--query", "stock:3")
    assert res.code == 0 and orjson.loads(res.stdout)["indices"][0]["source_count"] == 43

    # partitions, then combined
    outs = []
    for k in (1, 2):
        part = cli("verify", src, "--to", ES_URL, "--dest", dst, "--partition", f"{k}/2")
        assert part.code == 0, part.stderr
        outs.append(tmp_path / f"part{k}.ndjson")
        outs[-1].write_bytes(part.stdout)
    es.delete(f"/{dst}/_doc/p9", params={"refresh": "true"}).raise_for_status()  # after: the digests are the past
    res = cli("verify", src, "--to", ES_URL, "--dest", dst, "--combine", str(outs[0]), "--combine", str(outs[1]))
    assert res.code == 0, res.stderr  # the partitions' digests say equal, and nothing is read again
    res = cli("verify", src, "--to", ES_URL, "--dest", dst, "--combine", str(outs[0]))
    assert res.code == 2 and "not each of 1/N..N/N once" in res.stderr


def test_command_bad_input_and_unreachable(es: httpx.Client, index_name: Callable[[str], str],
                                           cli: Callable[..., Any], tmp_path: Path) -> None:
    src = index_name("src")
    load(es, src, products(3))
    res = cli("verify", src, "--to", ES_URL, "--dest", "x", "--prefix", "p")
    assert res.code == 2 and "--dest with --prefix" in res.stderr
    res = cli("verify", src + "-none", "--to", ES_URL)
    assert res.code == 2 and f"SOURCE {src}-none" in res.stderr
    res = cli("verify", src, "--to", "nosuchcluster")
    assert res.code == 2 and "--to nosuchcluster" in res.stderr
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"source": 1}\n')
    res = cli("verify", src, "--to", ES_URL, "--combine", str(bad))
    assert res.code == 2 and f"{bad}:1:" in res.stderr
    res = cli("verify", src, "--to", "http://127.0.0.1:1", "--max-retries", "0")
    assert res.code == 3, res.stderr
    assert "Traceback" not in res.stderr


def test_command_prefix_over_a_pattern(es: httpx.Client, index_name: Callable[[str], str],
                                       cli: Callable[..., Any]) -> None:
    a, b = index_name("pa"), index_name("pb")
    for name in (a, b):
        load(es, name, products(20))
        load(es, "copy-" + name, products(20))
    try:
        res = cli("verify", f"{a},{b}", "--to", ES_URL, "--prefix", "copy-")
        assert res.code == 0, res.stderr
        assert [(v["source"], v["dest"]) for v in orjson.loads(res.stdout)["indices"]] == \
            sorted([(a, "copy-" + a), (b, "copy-" + b)])
    finally:
        for name in (a, b):
            es.delete(f"/copy-{name}", params={"ignore_unavailable": "true"})


@pytest.mark.secure
def test_target_a_config_cluster_with_its_own_credentials_and_tls(
        es: httpx.Client, secure_engine: tuple[httpx.Client, str, Path], index_name: Callable[[str], str],
        cli: Callable[..., Any], isolated_env: dict[str, str], cleanup: Callable[[httpx.Client, str], None]) -> None:
    admin, password, ca = secure_engine
    src = index_name("src")
    cleanup(admin, src)
    docs = products(50)
    load(es, src, docs)
    load(admin, src, docs[:-1])
    config = Path(isolated_env["XDG_CONFIG_HOME"]) / "escli"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(f'[clusters.vault]\nurl = "https://127.0.0.1:9210"\nusername = "elastic"\n'
                                        f'password_env = "VAULT_PASSWORD"\nca_certs = "{ca}"\n')
    # the source (plain HTTP, ESCLI_URL) has no credentials; the target's come from its own table
    res = cli("verify", src, "--to", "vault", env={"VAULT_PASSWORD": password})
    assert res.code == 1, res.stderr
    assert res.stderr.splitlines()[-1] == f"escli: error: {src}: missing {docs[-1][0]}"
    res = cli("verify", src, "--to", "vault", env={"VAULT_PASSWORD": "wrong"})
    assert res.code == 4 and "Traceback" not in res.stderr


@pytest.mark.opensearch
def test_a_data_stream(opensearch: httpx.Client, index_name: Callable[[str], str]) -> None:
    """On OpenSearch: the Elasticsearch test build has no data stream API to delete one with."""
    base = index_name("ds")
    template = f"{base}-tpl"
    src, dst = f"{base}-src", f"{base}-dst"
    opensearch.put(f"/_index_template/{template}", json={"index_patterns": [f"{base}-*"], "data_stream": {},
                                                         "priority": 500}).raise_for_status()
    try:
        docs = [(f"e{i}", None, orjson.dumps({"@timestamp": f"2026-01-01T00:00:{i % 60:02d}Z", "n": i}))
                for i in range(120)]
        changed = ("e119", None, b'{"@timestamp": "2026-01-01T00:00:59Z", "n": -1}')
        for name, items in ((src, docs), (dst, [*docs[:-1], changed])):
            lines = b"".join(orjson.dumps({"create": {"_id": i}}) + b"\n" + s + b"\n" for i, _, s in items)
            resp = opensearch.post(f"/{name}/_bulk", content=lines, params={"refresh": "true"},
                                   headers={"content-type": "application/x-ndjson"})
            assert resp.status_code == 200 and not resp.json()["errors"], resp.text[:300]
        opensearch.post(f"/{dst}/_rollover").raise_for_status()  # two backing indices on the target
        result = run_verify(OPENSEARCH_URL, OPENSEARCH_URL, [(src, dst)])
        assert found(result) == {("changed", "e119", None)}
        assert (result.indices[0].source_count, result.indices[0].target_count) == (120, 120)
    finally:
        for name in (src, dst):
            opensearch.delete(f"/_data_stream/{name}")
        opensearch.delete(f"/_index_template/{template}")


def test_a_source_digest_made_while_copying(es: httpx.Client, index_name: Callable[[str], str]) -> None:
    """copy --verify: the copy folds each page it sends (digest.fold_answer); verify then reads the target only."""
    src, dst = index_name("src"), index_name("dst")
    docs = products(400)
    load(es, src, docs)
    load(es, dst, [d for d in docs if d[0] != "p77"])
    pages = []
    after: list[Any] | None = None
    while True:  # the pages as a copy reads them (any order, any page size)
        body: dict[str, Any] = {"size": 150, "sort": ["name.keyword"]}  # unique per document: no page skips one
        if after is not None:
            body["search_after"] = after
        raw = es.post(f"/{src}/_search", json=body).content
        hits = orjson.loads(raw)["hits"]["hits"]
        if not hits:
            break
        pages.append(raw)
        after = hits[-1]["sort"]
    known = combine(fold_answer(raw) for raw in pages)
    assert known.count == 400
    result = run_verify(ES_URL, ES_URL, [(src, dst)], source_digests={(src, dst): known})
    assert found(result) == {("missing", "p77", None)}
    assert result.indices[0].source_count == 400


def test_a_lost_point_in_time_counts_each_document_once(es: httpx.Client, index_name: Callable[[str], str]) -> None:
    """Units read again in a new PIT are taken out of the digest first (FoldPart.rewind): no document twice."""
    from tests.support.fault_proxy import FaultProxy

    src = index_name("src")
    docs = products(2000)
    load(es, src, docs)
    reading = Reading(slices=4, page_size=100)

    async def digest_at(url: str) -> Digest:
        async with open_es(Settings(urls=(url,)), SILENT, concurrency=4) as client:
            return (await side_digest(client, src, reading, BYTES)).digest

    with FaultProxy(ES_URL, lifetime=600) as proxy:
        proxy.fail(404, times=3, match=b'"search_after"', error_type="search_context_missing_exception")
        lost = asyncio.run(digest_at(proxy.url))
        opens = sum(1 for r in proxy.requests if r.method == "POST" and "/_pit" in r.target and r.fault is None)
        assert proxy.injected == 3
    assert opens >= 2  # the lost PIT was replaced, and units were read again
    assert lost.count == 2000
    assert lost == asyncio.run(digest_at(ES_URL))
