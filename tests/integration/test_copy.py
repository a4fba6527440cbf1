"""`escli copy` between real engines: Elasticsearch 7.17, 8.19 and 9.5, OpenSearch 2.19.

Each test builds its own source index through the engine's API (never through escli), copies it, and compares
both sides document by document: `_id`, `_routing` and `_source`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from escli.errors import ExitCode
from escli.sample import MAPPING, generate
from tests.conftest import ES8_URL, ES_URL, OPENSEARCH_URL, OTHER_URL, SECURE_URL, Result, _reachable
from tests.support.fault_proxy import FaultProxy

Cli = Callable[..., Result]
ES7_URL = os.environ.get("ESCLI_TEST_ES7_URL", "http://127.0.0.1:9270")
EXE = str(Path(sys.executable).parent / "escli")
Docs = dict[str, tuple[str | None, dict[str, Any]]]  # id -> (routing, source)


@pytest.fixture()
def names(request: pytest.FixtureRequest) -> Iterator[Callable[[httpx.Client, str], str]]:
    """Unique index names on any engine; each is deleted from its engine afterwards."""
    made: list[tuple[httpx.Client, str]] = []

    def make(client: httpx.Client, tag: str) -> str:
        name = f"t-copy-{request.node.name[5:25].lower().replace('_', '-')}-{tag}-{uuid.uuid4().hex[:8]}"
        made.append((client, name))
        return name

    yield make
    for client, name in made:
        client.delete(f"/{name}", params={"ignore_unavailable": "true"})


@pytest.fixture(scope="module")
def es7() -> Iterator[httpx.Client]:
    client = _reachable(ES7_URL, start="make es-up ES_VERSION=7.17.29 ES_PORT=9270")
    yield client
    client.close()


def load(client: httpx.Client, name: str, docs: Docs, body: dict[str, Any] | None = None) -> str:
    client.put(f"/{name}", json=body or {}).raise_for_status()
    lines = b"".join(orjson.dumps({"index": {"_id": k, **({"routing": r} if r else {})}}) + b"\n"
                     + orjson.dumps(v) + b"\n" for k, (r, v) in docs.items())
    resp = client.post(f"/{name}/_bulk", params={"refresh": "true"}, content=lines,
                       headers={"content-type": "application/x-ndjson"}, timeout=120)
    resp.raise_for_status()
    assert not resp.json()["errors"], resp.text[:500]
    return name


def on_target(client: httpx.Client, index: str) -> Docs:
    client.post(f"/{index}/_refresh").raise_for_status()
    got: Docs = {}
    body: dict[str, Any] = {"size": 5000, "sort": ["_doc"], "query": {"match_all": {}}}
    resp = client.post(f"/{index}/_search", params={"scroll": "1m"}, json=body).json()
    while resp["hits"]["hits"]:
        for h in resp["hits"]["hits"]:
            assert h["_id"] not in got, f"{h['_id']} twice"
            got[h["_id"]] = (h.get("_routing"), h["_source"])
        resp = client.post("/_search/scroll", json={"scroll": "1m", "scroll_id": resp["_scroll_id"]}).json()
    return got


def products(n: int, seed: int = 3) -> Docs:
    return {d["id"]: (None, d) for d in generate(n, seed=seed)}


def copy(cli: Cli, src_url: str, source: str, dst_url: str, *args: str) -> Result:
    return cli("--url", src_url, "copy", source, "--to", dst_url, *args)


@pytest.mark.parametrize("src_url,dst_url", [(ES8_URL, ES_URL), (ES_URL, OPENSEARCH_URL), (OPENSEARCH_URL, ES_URL)],
                         ids=["es8-to-es9", "es9-to-opensearch", "opensearch-to-es9"])
def test_copy_between_engines_every_document_once(cli: Cli, names: Callable[[httpx.Client, str], str],
                                                  src_url: str, dst_url: str, tmp_path: Path) -> None:
    src, dst = _reachable(src_url), _reachable(dst_url)
    docs = products(1500)
    source = load(src, names(src, "src"), docs, MAPPING)
    dest = names(dst, "dest")
    errors = tmp_path / "errors.ndjson"
    r = copy(cli, src_url, source, dst_url, "--dest", dest, "--page-size", "200", "--errors", str(errors),
             "--verify")
    assert r.code == 0, r.stderr
    assert f"copied 1500 documents from {source}" in r.stderr and "0 rejected" in r.stderr
    assert "verified 1500 documents: equal" in r.stderr
    assert on_target(dst, dest) == docs
    assert not errors.exists()
    # the mapping came along (a dynamic one would make `id` text with a .keyword)
    props = dst.get(f"/{dest}/_mapping").json()[dest]["mappings"]["properties"]
    assert props["id"] == {"type": "keyword"} and props["price"] == {"type": "float"}


def test_copy_from_elasticsearch_7(cli: Cli, es7: httpx.Client, es: httpx.Client,
                                   names: Callable[[httpx.Client, str], str]) -> None:
    docs = products(800, seed=5)
    source = load(es7, names(es7, "src"), docs, MAPPING)
    dest = names(es, "dest")
    r = copy(cli, ES7_URL, source, ES_URL, "--dest", dest, "--verify")
    assert r.code == 0, r.stderr
    assert on_target(es, dest) == docs


def routed(n: int) -> Docs:
    return {f"r{i}": (f"user{i % 7}", {"n": i, "user": f"user{i % 7}"}) for i in range(n)}


REQUIRED_ROUTING = {"mappings": {"_routing": {"required": True}}, "settings": {"number_of_shards": 3}}


def test_required_routing_arrives_with_every_document(cli: Cli, es: httpx.Client, other_es: httpx.Client,
                                                      names: Callable[[httpx.Client, str], str]) -> None:
    docs = routed(300)
    source = load(es, names(es, "src"), docs, REQUIRED_ROUTING)
    dest = names(other_es, "dest")
    r = copy(cli, ES_URL, source, OTHER_URL, "--dest", dest, "--page-size", "64")
    assert r.code == 0, r.stderr
    assert other_es.get(f"/{dest}/_mapping").json()[dest]["mappings"]["_routing"] == {"required": True}
    assert on_target(other_es, dest) == docs
    for doc_id, (routing, body) in list(docs.items())[:40]:
        got = other_es.get(f"/{dest}/_doc/{doc_id}", params={"routing": routing}).json()
        assert got["found"] and got["_routing"] == routing and got["_source"] == body


@pytest.mark.parametrize("metadata", [[], ["--no-metadata"]], ids=["metadata", "no-metadata"])
def test_existing_target_is_refused_without_into_existing(cli: Cli, es: httpx.Client, other_es: httpx.Client,
                                                          names: Callable[[httpx.Client, str], str],
                                                          metadata: list[str]) -> None:
    source = load(es, names(es, "src"), products(10))
    dest = names(other_es, "dest")
    other_es.put(f"/{dest}").raise_for_status()
    r = copy(cli, ES_URL, source, OTHER_URL, "--dest", dest, *metadata)
    assert r.code == ExitCode.REFUSED, r.stderr
    assert f"{dest}: the index exists on the target (--into-existing copies into it)" in r.stderr
    assert other_es.get(f"/{dest}/_count").json()["count"] == 0


def test_evaluate_lists_the_plan_and_copies_nothing(cli: Cli, es: httpx.Client, other_es: httpx.Client,
                                                   names: Callable[[httpx.Client, str], str]) -> None:
    source = load(es, names(es, "src"), products(10), MAPPING)
    dest = names(other_es, "dest")
    r = copy(cli, ES_URL, source, OTHER_URL, "--dest", dest, "--evaluate", "-o", "json")
    assert r.code == 0, r.stderr
    plan = orjson.loads(r.stdout)
    assert plan["indices"] == [{"source": source, "dest": dest, "kind": "index", "exists": False,
                                "state": "create"}] and plan["refused"] == 0
    assert other_es.head(f"/{dest}").status_code == 404
    other_es.put(f"/{dest}").raise_for_status()
    refused = copy(cli, ES_URL, source, OTHER_URL, "--dest", dest, "--evaluate", "-o", "json")
    assert refused.code == ExitCode.PARTIAL
    assert orjson.loads(refused.stdout)["refused"] == 1 and f"{dest}" in refused.stderr


def test_target_refusing_above_two_in_flight_gets_every_document_once(
        cli: Cli, es: httpx.Client, other_es: httpx.Client, names: Callable[[httpx.Client, str], str]) -> None:
    docs = products(2000, seed=9)
    # 5 shards: 5 units, so 5 readers each with a page to send at once, more than the proxy lets through
    source = load(es, names(es, "src"), docs, {**MAPPING, "settings": {"number_of_shards": 5}})
    dest = names(other_es, "dest")
    with FaultProxy(OTHER_URL) as proxy:
        # each request held 0.2 s: two in flight stay in flight while the pace's next round (4) arrives
        proxy.limit_in_flight(2, hold=0.2)
        r = copy(cli, ES_URL, source, proxy.url, "--dest", dest, "--no-metadata", "--page-size", "100",
                 "--slices", "5", "--concurrency", "8")
        refused = proxy.refused
    assert r.code == 0, r.stderr
    assert refused > 0  # the proxy did refuse: the copy went through its refusals, not around them
    assert on_target(other_es, dest) == docs


def test_rejected_documents_go_to_errors_and_reimport_as_they_are(
        cli: Cli, es: httpx.Client, other_es: httpx.Client, names: Callable[[httpx.Client, str], str],
        tmp_path: Path) -> None:
    docs: Docs = {f"d{i}": (f"u{i % 3}", {"n": "not a number" if i % 10 == 0 else i}) for i in range(100)}
    source = load(es, names(es, "src"), docs, {"mappings": {"properties": {"n": {"type": "keyword"}}}})
    dest = names(other_es, "dest")
    other_es.put(f"/{dest}", json={"mappings": {"properties": {"n": {"type": "long"}}}}).raise_for_status()
    errors = tmp_path / "errors.ndjson"
    r = copy(cli, ES_URL, source, OTHER_URL, "--dest", dest, "--no-metadata", "--into-existing",
             "--errors", str(errors))
    assert r.code == ExitCode.PARTIAL, r.stderr
    assert "10 documents rejected by the target" in r.stderr and "Traceback" not in r.stderr
    refused = {k: v for k, v in docs.items() if v[1]["n"] == "not a number"}
    assert on_target(other_es, dest) == {k: v for k, v in docs.items() if k not in refused}
    lines = [orjson.loads(x) for x in errors.read_bytes().splitlines()]
    assert {x["_id"] for x in lines} == set(refused)
    assert all(x["error"]["type"] == "document_parsing_exception" for x in lines)
    # as it is: into an index that takes them, each with its id and routing
    again = names(other_es, "again")
    back = cli("--url", OTHER_URL, "import", again, str(errors))
    assert back.code == 0, back.stderr
    assert on_target(other_es, again) == refused


def checkpoint_written(path: Path) -> int:
    try:
        return int(orjson.loads(path.read_bytes()).get("written", 0))
    except (FileNotFoundError, orjson.JSONDecodeError):
        return 0


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_signal_mid_copy_then_resume_every_document_exactly_once(
        isolated_env: dict[str, str], cli: Cli, es: httpx.Client, other_es: httpx.Client,
        names: Callable[[httpx.Client, str], str], tmp_path: Path, sig: signal.Signals) -> None:
    docs = products(3000, seed=11)
    source = load(es, names(es, "src"), docs, MAPPING)
    dest = names(other_es, "dest")
    cp = tmp_path / "copy.checkpoint"
    with FaultProxy(OTHER_URL, lifetime=600) as proxy:
        # 10 bulk requests go through; every later one is held, so the copy stands still mid-way until killed
        proxy.delay(0, times=10, match=b"/_bulk")
        proxy.delay(3600, match=b"/_bulk")
        args = ["--url", ES_URL, "copy", source, "--to", proxy.url, "--dest", dest,
                "--page-size", "100", "--slices", "3", "--checkpoint", str(cp)]
        proc = subprocess.Popen([EXE, *args], env=isolated_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # the first page is recorded at once; later ones at most 10 times a second, so the last few acknowledged
            # pages before the hold may never be: they are what --resume sends again
            while checkpoint_written(cp) < 100:
                assert proc.poll() is None, proc.communicate()[1].decode()
                time.sleep(0.05)
        finally:
            proc.send_signal(sig)
            _, err = proc.communicate()
        if sig == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL, err.decode()
        else:  # ended like Ctrl-C: the checkpoint saved on the way out, 128 + 15
            assert proc.returncode == 143, err.decode()
            assert f"checkpoint saved to {cp}" in err.decode() and "Traceback" not in err.decode()
            assert orjson.loads(cp.read_bytes())["status"] == "interrupted"
        before = on_target(other_es, dest)
        assert 100 <= len(before) <= 1000
        proxy.clear()
        r = cli(*args, "--resume")
    assert r.code == 0, r.stderr
    assert on_target(other_es, dest) == docs  # each id once (on_target asserts it), every document there
    assert not cp.exists()
    # the load's settings are undone once the resumed run finished (copy_meta's finish_plan)
    flat = other_es.get(f"/{dest}/_settings", params={"flat_settings": "true"}).json()[dest]["settings"]
    assert flat.get("index.refresh_interval") != "-1"


def test_resume_refuses_another_source_or_target(cli: Cli, es: httpx.Client, other_es: httpx.Client,
                                                 names: Callable[[httpx.Client, str], str], tmp_path: Path) -> None:
    source = load(es, names(es, "src"), products(10))
    cp = tmp_path / "cp.json"
    cp.write_bytes(orjson.dumps({"version": 3, "status": "interrupted", "readers": [{}], "output": {"copy": {
        "request": {"source": "other"}, "target": OTHER_URL, "pairs": [], "current": 0}}}))
    r = copy(cli, ES_URL, source, OTHER_URL, "--no-metadata", "--checkpoint", str(cp), "--resume")
    assert r.code == ExitCode.USAGE
    assert f"--checkpoint {cp}: it records a copy of other" in r.stderr
    fresh = copy(cli, ES_URL, source, OTHER_URL, "--no-metadata", "--checkpoint", str(cp))
    assert fresh.code == ExitCode.USAGE and "--resume continues it" in fresh.stderr


def test_bad_input_is_one_line(cli: Cli, es: httpx.Client, tmp_path: Path) -> None:
    r = cli("copy", "products", "--to", "nosuchcluster", "--no-metadata")
    assert r.code == ExitCode.USAGE and "--to nosuchcluster: no [clusters.nosuchcluster]" in r.stderr
    r = cli("copy", "products", "--to", OTHER_URL, "--dest", "a", "--prefix", "b", "--no-metadata")
    assert r.code == ExitCode.USAGE and "--dest with --prefix" in r.stderr
    r = cli("copy", "no-such-index-anywhere", "--to", OTHER_URL, "--no-metadata")
    assert r.code == ExitCode.USAGE and "no-such-index-anywhere: no index" in r.stderr
    r = cli("copy", "products", "--to", OTHER_URL, "--no-metadata", "--partition", "3/2")
    assert r.code == ExitCode.USAGE and "--partition 3/2" in r.stderr
    assert all("Traceback" not in x.stderr for x in [r])


def test_data_stream_to_another_opensearch_name_with_create(cli: Cli, opensearch: httpx.Client,
                                                            tmp_path: Path) -> None:
    name = f"t-copy-ds-{uuid.uuid4().hex[:8]}"
    template = f"{name}-template"
    opensearch.put(f"/_index_template/{template}", json={
        "index_patterns": [f"{name}*"], "data_stream": {}, "priority": 500,
        "template": {"mappings": {"properties": {"@timestamp": {"type": "date"}, "n": {"type": "long"}}}},
    }).raise_for_status()
    copied = f"{name}-copy"
    try:
        lines = b"".join(orjson.dumps({"create": {"_id": f"e{i}"}}) + b"\n"
                         + orjson.dumps({"@timestamp": f"2026-01-01T00:00:{i % 60:02d}Z", "n": i}) + b"\n"
                         for i in range(400))
        resp = opensearch.post(f"/{name}/_bulk", params={"refresh": "true"}, content=lines,
                               headers={"content-type": "application/x-ndjson"})
        assert not resp.json()["errors"], resp.text[:300]
        r = copy(cli, OPENSEARCH_URL, name, OPENSEARCH_URL, "--suffix", "-copy", "--page-size", "150")
        assert r.code == 0, r.stderr
        streams = opensearch.get(f"/_data_stream/{copied}").json()["data_streams"]
        assert [s["name"] for s in streams] == [copied]
        want = {h: v for h, v in on_target(opensearch, name).items()}
        assert on_target(opensearch, copied) == want and len(want) == 400
    finally:
        for stream in (name, copied):
            opensearch.delete(f"/_data_stream/{stream}")
        opensearch.delete(f"/_index_template/{template}")
        for t in opensearch.get("/_index_template").json().get("index_templates", []):
            if t["name"].startswith(name):
                opensearch.delete(f"/_index_template/{t['name']}")


def test_lost_point_in_time_mid_copy_reads_the_unit_again_every_document_once(
        cli: Cli, es: httpx.Client, other_es: httpx.Client, names: Callable[[httpx.Client, str], str]) -> None:
    docs = products(1200, seed=17)
    source = load(es, names(es, "src"), docs, MAPPING)
    dest = names(other_es, "dest")
    with FaultProxy(ES_URL) as proxy:
        # the source forgets the point in time on a page after the first of a unit: a new PIT, the unit read again
        proxy.fail(404, times=2, match=b'"search_after"', error_type="search_context_missing_exception")
        r = cli("-v", "--url", proxy.url, "copy", source, "--to", OTHER_URL, "--dest", dest, "--page-size", "100")
        injected = proxy.injected
    assert r.code == 0, r.stderr
    assert injected == 2 and "point in time reopened" in r.stderr
    assert on_target(other_es, dest) == docs


# bulks ahead: the failure surfaces at the end (8 in flight, 6 pages) or at the next page (-j 1: the second page
# waits for the first answer); both say the same
@pytest.mark.parametrize("checkpoint,extra", [(False, []), (False, ["-j", "1"]), (True, [])],
                         ids=["bulks-ahead", "bulks-ahead-one", "checkpoint"])
def test_target_refusing_for_good_stops_with_one_line(cli: Cli, es: httpx.Client, other_es: httpx.Client,
                                                      names: Callable[[httpx.Client, str], str], tmp_path: Path,
                                                      checkpoint: bool, extra: list[str]) -> None:
    source = load(es, names(es, "src"), products(600, seed=21), MAPPING)
    dest = names(other_es, "dest")
    cp = tmp_path / "cp.json"
    with FaultProxy(OTHER_URL) as proxy:
        proxy.fail(503, times=1000, match=b"/_bulk")
        r = cli("--max-retries", "1", "--url", ES_URL, "copy", source, "--to", proxy.url, "--dest", dest,
                "--page-size", "100", *extra, *(["--checkpoint", str(cp)] if checkpoint else []))
    assert r.code in (ExitCode.UNREACHABLE, ExitCode.REFUSED), r.stderr
    assert f"copy of {source} stopped after 0 documents, retries exhausted" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    if checkpoint:
        assert f"checkpoint kept in {cp}: run again with --resume" in r.stderr and cp.exists()


def test_two_partitions_make_one_copy(cli: Cli, es: httpx.Client, other_es: httpx.Client,
                                      names: Callable[[httpx.Client, str], str], tmp_path: Path) -> None:
    docs = products(2500, seed=23)
    source = load(es, names(es, "src"), docs, MAPPING)
    dest = names(other_es, "dest")
    first = copy(cli, ES_URL, source, OTHER_URL, "--dest", dest, "--partition", "1/2", "--page-size", "300")
    assert first.code == 0, first.stderr
    part = on_target(other_es, dest)
    assert 0 < len(part) < len(docs)
    second = copy(cli, ES_URL, source, OTHER_URL, "--dest", dest, "--partition", "2/2", "--into-existing",
                  "--checkpoint", str(tmp_path / "p2.json"))
    assert second.code == 0, second.stderr
    assert on_target(other_es, dest) == docs
    assert f"copied {len(docs) - len(part)} documents" in second.stderr


def test_target_by_config_name_uses_its_own_credentials_and_ca(
        cli: Cli, es: httpx.Client, isolated_env: dict[str, str], names: Callable[[httpx.Client, str], str],
        secure_engine: tuple[httpx.Client, str, Path]) -> None:
    admin, password, ca = secure_engine
    docs = products(300, seed=29)
    source = load(es, names(es, "src"), docs, MAPPING)
    dest = names(admin, "dest")
    config = Path(isolated_env["XDG_CONFIG_HOME"]) / "escli" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[clusters.secure]\nurl = "{SECURE_URL}"\nusername = "elastic"\n'
                      f'password_env = "COPY_TARGET_PASSWORD"\nca_certs = "{ca}"\n')
    config.chmod(0o600)
    # the environment's credentials are the source's: they must not reach the named target (which would refuse
    # them: a wrong password)
    env = {"COPY_TARGET_PASSWORD": password, "ESCLI_USERNAME": "elastic", "ESCLI_PASSWORD": "not-the-password"}
    r = cli("--url", ES_URL, "copy", source, "--to", "secure", "--dest", dest, "--no-metadata", env=env)
    assert r.code == 0, r.stderr
    assert on_target(admin, dest) == docs
