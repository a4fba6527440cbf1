"""Completion that knows the cluster, through escli's completion entry point (what the scripts call), live engine.

The shells themselves are driven in test_completion_shells.py; here each case is one `escli` process with
`_ESCLI_COMPLETE=SHELL` and `_ESCLI_COMPLETE_LINE`, as the committed scripts start it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.delay_proxy import DelayProxy

BIN = Path(sys.executable).parent


def tab(env: dict[str, str], line: str, shell: str = "bash") -> tuple[list[str], str]:
    out = subprocess.run([str(BIN / "escli")], env={**env, "_ESCLI_COMPLETE": shell, "_ESCLI_COMPLETE_LINE": line},
                         capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    assert out.returncode == 0
    return out.stdout.splitlines(), out.stderr


def names_file(env: dict[str, str]) -> Path:
    (path,) = (Path(env["XDG_CACHE_HOME"]) / "escli" / "names").glob("*.json")
    return path


def age_names(env: dict[str, str], seconds: float) -> None:
    path = names_file(env)
    data = orjson.loads(path.read_bytes())
    for entry in data.values():
        entry["at"] -= seconds
    path.write_bytes(orjson.dumps(data))


def names_for(got: list[str], expected: str) -> bool:
    """The completions of "produ": the sample index among them, and only names with that prefix (the engine may
    hold other `produ*` indices, such as a benchmark's products_1m)."""
    return expected in got and all(n.startswith("produ") for n in got)


def test_index_alias_and_list_names(isolated_env: dict[str, str], es: httpx.Client, sample_index: str,
                                    index_name: Callable[[str], str]) -> None:
    name = index_name("names")
    es.put(f"/{name}", json={"aliases": {f"{name}-alias": {}}, "settings": {"number_of_replicas": 0}}
           ).raise_for_status()
    got, err = tab(isolated_env, f"escli search {name[:-4]}")
    assert got == [name, f"{name}-alias"] and err == ""
    assert tab(isolated_env, f"escli export {sample_index},{name}-al")[0] == [f"{sample_index},{name}-alias"]
    assert names_for(tab(isolated_env, "escli health --index produ")[0], sample_index)
    assert names_for(tab(isolated_env, "escli cache clear --index produ")[0], sample_index)
    assert sample_index in tab(isolated_env, "escli profile ")[0]
    assert all(not n.startswith(".") for n in tab(isolated_env, "escli search ")[0])  # hidden unless asked


def test_field_names_sortable_first_for_sort_filter_range(isolated_env: dict[str, str], sample_index: str) -> None:
    sort, _ = tab(isolated_env, f"escli search {sample_index} laptop --sort ")
    assert "price" in sort and "name" in sort and "specs.ram_gb" in sort
    assert sort.index("price") < sort.index("name")  # numeric before text
    for option in ("--filter", "--range"):
        got = tab(isolated_env, f"escli search {sample_index} {option} ")[0]
        assert got.index("category") < got.index("description")
    field = tab(isolated_env, f"escli search {sample_index} laptop -f ")[0]
    assert field == sorted(field) and "description" in field
    assert tab(isolated_env, f"escli search {sample_index} --sort price:d")[0] == ["desc"]  # after bash's `:`
    assert tab(isolated_env, f"escli export {sample_index} --fields name,specs.ra")[0] == ["name,specs.ram_gb"]
    assert tab(isolated_env, f"escli search {sample_index} --source name,-descr")[0] == ["name,-description"]
    assert tab(isolated_env, f"escli import {sample_index} x.ndjson --id-field i")[0] == ["id"]
    assert tab(isolated_env, f"escli search {sample_index} --agg c=te")[0] == ["terms:"]  # bash: after its `=`
    assert tab(isolated_env, f"escli search {sample_index} --agg c=terms:categ")[0] == ["category"]  # after `:`
    assert tab(isolated_env, f"escli search {sample_index} --highlight descr")[0] == ["description"]
    assert tab(isolated_env, "escli search x --tune ")[0] == ["throughput", "latency"]
    assert tab(isolated_env, "escli search x --strategy f")[0] == ["failover", "fan-out"]
    zsh, _ = tab(isolated_env, f"escli search {sample_index} --filter cat", shell="zsh")
    assert zsh == ["category:keyword"]
    fish, _ = tab(isolated_env, f"escli search {sample_index} --filter cat", shell="fish")
    assert fish == ["category\tkeyword"]


def test_global_options_anywhere_pick_the_cluster(isolated_env: dict[str, str], sample_index: str) -> None:
    url = isolated_env["ESCLI_URL"]
    gone = {**isolated_env, "ESCLI_URL": "http://127.0.0.1:1"}
    assert tab(gone, "escli search produ") == ([], "")
    assert names_for(tab(gone, f"escli -u {url} search produ")[0], sample_index)
    assert names_for(tab(gone, f"escli search --url {url} produ")[0], sample_index)


def test_clusters_groups_and_fixed_choices(isolated_env: dict[str, str]) -> None:
    config = Path(isolated_env["XDG_CONFIG_HOME"]) / "escli"
    config.mkdir(parents=True)
    (config / "config.toml").write_text('[clusters.prod-eu]\nurl = "http://a:9200"\n[clusters.prod-us]\n'
                                        'url = "http://b:9200"\n[groups.prod]\nclusters = ["prod-eu", "prod-us"]\n')
    assert tab(isolated_env, "escli -c pro")[0] == ["prod", "prod-eu", "prod-us"]
    assert tab(isolated_env, "escli -c pro", shell="fish")[0] == ["prod\tgroup", "prod-eu\tcluster",
                                                                   "prod-us\tcluster"]
    assert tab(isolated_env, "escli -o ")[0] == ["table", "json", "ndjson", "csv"]
    assert tab(isolated_env, "escli health -F ")[0] == ["table", "json", "nagios", "prometheus"]
    assert tab(isolated_env, "escli export x --method ")[0] == ["auto", "pit", "scroll"]
    assert tab(isolated_env, "escli profile x --schedule p")[0] == ["poisson"]
    assert tab(isolated_env, "escli verify x --to prod-")[0] == ["prod-eu", "prod-us"]  # TARGET: a config name
    assert tab(isolated_env, "escli verify x --slices ")[0] == ["auto"]


def test_names_are_cached_a_minute_then_asked_again(isolated_env: dict[str, str], es: httpx.Client,
                                                    sample_index: str, index_name: Callable[[str], str]) -> None:
    first = index_name("cache")
    es.put(f"/{first}", json={"settings": {"number_of_replicas": 0}}).raise_for_status()
    assert tab(isolated_env, f"escli search {first}")[0] == [first]
    assert oct(names_file(isolated_env).stat().st_mode & 0o777) == "0o600"
    second = f"{first}x"
    es.put(f"/{second}", json={"settings": {"number_of_replicas": 0}}).raise_for_status()
    try:
        assert tab(isolated_env, f"escli search {first}")[0] == [first]  # from the name cache: no request
        age_names(isolated_env, 61)
        assert tab(isolated_env, f"escli search {first}")[0] == [first, second]
    finally:
        es.delete(f"/{second}")


def test_a_stalled_cluster_costs_at_most_the_budget_and_keeps_the_old_names(
        isolated_env: dict[str, str], sample_index: str) -> None:
    with DelayProxy(isolated_env["ESCLI_URL"], stall_at=2, stall_seconds=20) as proxy:
        env = {**isolated_env, "ESCLI_URL": proxy.url}
        assert names_for(tab(env, "escli search produ")[0], sample_index)  # request 1: names cached
        age_names(env, 61)
        started = time.monotonic()
        got, err = tab(env, "escli search produ")  # request 2 stalls for 20 s: the stale names, at once
        elapsed = time.monotonic() - started
        assert names_for(got, sample_index) and err == ""
        assert elapsed < 10, elapsed  # it gave up on the network long before the stall ended


@pytest.mark.parametrize("extra", [{"ESCLI_USERNAME": "someone"}, {"ESCLI_CONFIG": "/nonexistent/dir/config.toml"},
                                   {"ESCLI_URL": "not a url"}])
def test_never_an_error_or_a_prompt_in_the_shell(isolated_env: dict[str, str], extra: dict[str, str]) -> None:
    _, err = tab({**isolated_env, **extra}, "escli search produ")
    assert err == ""
    assert tab({**isolated_env, **extra}, "escli sea")[0] == ["search"]
