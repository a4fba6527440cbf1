"""Fast start: what `escli --help`, completion and a cache hit import (checked in fresh subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from escli.cache import DiskCache, cache_key
from escli.cache.product import product_identity, remember_product
from escli.es.query_builder import SearchOptions, build_search
from escli.settings import GlobalOptions, resolve

HEAVY = ("elasticsearch", "elastic_transport", "aiohttp")
PROBE = """
import sys
from escli.cli.app import run
code = run(sys.argv[1:])
loaded = sorted({m.split(".")[0] for m in sys.modules})
sys.stderr.write("\\nMODULES " + " ".join(loaded) + "\\n")
sys.exit(code)
"""


def probe(args: list[str], env: dict[str, str]) -> tuple[int, str, set[str]]:
    """Run escli in a fresh interpreter; return (exit code, stdout, top-level modules imported)."""
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env,
                         check=False)
    line = [x for x in out.stderr.splitlines() if x.startswith("MODULES ")]
    assert line, out.stderr
    return out.returncode, out.stdout, set(line[-1].split()[1:])


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ESCLI_", "ELASTICSEARCH_"))}
    return {**base, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache")}


def test_help_imports_neither_the_client_nor_pydantic(env: dict[str, str]) -> None:
    for args in (["--help"], ["search", "--help"], ["cache", "--help"]):
        code, out, modules = probe(args, env)
        assert code == 0 and "Usage: escli" in out
        assert not modules & {*HEAVY, "pydantic"}, (args, modules & {*HEAVY, "pydantic"})


def test_completion_imports_no_client(env: dict[str, str]) -> None:
    for line, expect in (("escli se", "search"), ("escli search --fi", "--field"), ("escli -o cs", "csv")):
        comp = {**env, "_ESCLI_COMPLETE": "bash", "_ESCLI_COMPLETE_LINE": line}
        code, out, modules = probe([], comp)
        assert code == 0 and expect in out.split(), out
        assert not modules & set(HEAVY)
    # index names asked on the network (here: nobody listens) go through the light transport
    comp = {**env, "_ESCLI_COMPLETE": "bash", "_ESCLI_COMPLETE_LINE": "escli search pro",
            "ESCLI_URL": "http://127.0.0.1:1"}
    code, out, modules = probe([], comp)
    assert code == 0 and out == ""
    assert not modules & set(HEAVY)


def test_a_cache_hit_needs_no_client_and_no_cluster(env: dict[str, str]) -> None:
    """The entry is put where the search will look; the URL points nowhere, so only the cache can answer."""
    url = "http://127.0.0.1:9"
    settings = resolve(GlobalOptions(url=[url]), env=env)
    built = build_search(SearchOptions(index="products", text="laptop", fields=["name^2"], size=2))
    response = {"took": 3, "timed_out": False, "hits": {"total": {"value": 1, "relation": "eq"}, "max_score": 1.0,
                                                        "hits": [{"_id": "p1", "_score": 1.0,
                                                                  "_source": {"name": "laptop"}}]}}
    cache = DiskCache(settings.cache_dir)
    # keyed by the product, which a hit learns from the memo a previous search left (cache/product.py)
    remember_product(settings, "elasticsearch")
    cache.set(cache_key(product_identity(settings.identity, "elasticsearch"), built.index, built.body, built.params),
              orjson.dumps(response), 60, built.index)
    cache.close()
    code, out, modules = probe(["--url", url, "search", "products", "laptop", "-f", "name^2", "-n", "2",
                                "-o", "json"], env)
    assert code == 0
    got: dict[str, Any] = json.loads(out)
    assert got["hits"] == response["hits"] and got["_escli"]["cache"] == "hit-disk"
    assert not modules & {*HEAVY, "pydantic"}, modules & {*HEAVY, "pydantic"}


def test_fast_coercion_agrees_with_typer() -> None:
    """escli.cli.coercion converts like Typer's own (pydantic) path for the types escli uses."""
    from typer._coercion import build_runtime_param, resolve_type_descriptor
    from typer.models import OptionInfo

    from escli.cli.coercion import fast_runtime_param

    cases: list[tuple[Any, dict[str, Any], list[Any]]] = [
        (str, {}, ["abc", "", "é"]),
        (int, {}, ["10", "-3", 7]),
        (int, {"min": 0}, ["0", "5"]),
        (float, {}, ["1.5", "2", 3]),
        (bool, {}, ["true", "false", "1", "0", True]),
        (Path, {}, ["a/b", "-"]),
        (list[str], {}, [["a", "b"], ("c",)]),
    ]
    for annotation, info_kw, values in cases:
        descriptor = resolve_type_descriptor(annotation, OptionInfo(**info_kw))
        fast = fast_runtime_param(descriptor)
        assert fast is not None, annotation
        slow = build_runtime_param(descriptor)
        for value in values:
            assert fast._coerce_value(value, None, None) == slow._coerce_value(value, None, None), (annotation, value)
    for annotation, info_kw, bad in ((int, {}, "x"), (int, {"min": 0}, "-1"), (float, {}, "nan?"),
                                     (bool, {}, "perhaps")):
        descriptor = resolve_type_descriptor(annotation, OptionInfo(**info_kw))
        fast = fast_runtime_param(descriptor)
        assert fast is not None
        with pytest.raises(Exception, match="not"):
            fast._coerce_value(bad, None, None)


def test_lazy_commands_list_suggest_and_build_like_eager_ones(env: dict[str, str],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import io

    import typer

    from escli.cli.app import run
    from escli.cli.commands import COMMAND_MODULES, register_all
    from escli.cli.common import AppContext

    assert run(["--help"], AppContext(stdout=io.BytesIO(), stderr=io.StringIO(), env=env)) == 0
    listed = capsys.readouterr().out.split("Commands:", 1)[1]  # click prints help on sys.stdout
    assert [line.split()[0] for line in listed.strip().splitlines()] == list(COMMAND_MODULES)
    err = io.StringIO()
    assert run(["serch", "products"], AppContext(stdout=io.BytesIO(), stderr=err, env=env)) == 2
    assert "No such command 'serch'. Did you mean 'search'?" in err.getvalue()
    eager = typer.Typer()
    register_all(eager)  # the eager path still registers every command
    names = {c.name for c in eager.registered_commands} | {g.name for g in eager.registered_groups}
    assert names == set(COMMAND_MODULES)
