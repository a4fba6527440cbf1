"""Global options mean the same before and after the command name, whatever their value: 0, False and "" too.

Counted at a fault proxy in front of the real engine: the requests it saw are what escli sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fault_proxy import FaultProxy

Cli = Callable[..., Any]


@pytest.fixture()
def proxy(es_url: str, sample_index: str) -> Iterator[FaultProxy]:
    with FaultProxy(es_url, lifetime=600) as p:
        yield p


def _search_requests(proxy: FaultProxy) -> int:
    return sum(1 for r in proxy.requests if "_search" in r.target)


@pytest.mark.parametrize("where", ["before", "after"])
def test_max_retries_zero_is_kept_wherever_it_stands(cli: Cli, proxy: FaultProxy, where: str) -> None:
    proxy.fail(503, times=5, match=b"_search")
    opts = ["--no-cache", "--max-retries", "0"]
    args = [*opts, "search", "products", "foo"] if where == "before" else ["search", "products", "foo", *opts]
    r = cli("--url", proxy.url, *args)
    assert r.code == 4, r.stderr
    assert _search_requests(proxy) == 1, [q.target for q in proxy.requests]


def test_a_value_after_the_command_overrides_the_one_before(cli: Cli, proxy: FaultProxy) -> None:
    proxy.fail(503, times=5, match=b"_search")
    r = cli("--url", proxy.url, "--max-retries", "3", "search", "products", "foo", "--no-cache",
            "--max-retries", "0")
    assert r.code == 4, r.stderr
    assert _search_requests(proxy) == 1


def test_max_retries_after_the_command_is_used(cli: Cli, proxy: FaultProxy) -> None:
    proxy.fail(503, times=2, match=b"_search")
    r = cli("--url", proxy.url, "search", "products", "foo", "--no-cache", "--max-retries", "2", "-o", "json")
    assert r.code == 0, r.stderr
    assert _search_requests(proxy) == 3


def test_empty_cache_url_after_the_command_turns_the_shared_level_off(cli: Cli, es_url: str) -> None:
    # ESCLI_CACHE_URL names a Redis nobody listens on; `--cache-url ""` after the command must still win
    r = cli("search", "products", "laptop", "-o", "json", "--cache-url", "",
            env={"ESCLI_CACHE_URL": "redis://127.0.0.1:1/0"})
    assert r.code == 0, r.stderr
    assert "shared" not in r.stderr and "redis" not in r.stderr.lower()


@pytest.mark.parametrize("where", ["before", "after"])
def test_health_all_keeps_every_global_option(cli: Cli, proxy: FaultProxy, isolated_env: dict[str, str],
                                              where: str) -> None:
    # --all resolves each configured cluster itself: --max-retries 0 must hold there too (it was dropped)
    cfg = Path(isolated_env["XDG_CONFIG_HOME"]) / "escli" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f'[clusters.proxied]\nurls = ["{proxy.url}"]\n')
    proxy.fail(503, times=5, match=b"/_cluster/health")
    opts = ["--max-retries", "0"]
    args = [*opts, "health", "--all"] if where == "before" else ["health", "--all", *opts]
    r = cli(*args, "--format", "json")
    health = [q.target for q in proxy.requests if q.target.startswith("/_cluster/health")]
    assert len(health) == 1, (health, r.stderr)
    assert r.code == 3, r.stderr
