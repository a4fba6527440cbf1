"""Every config key checked for type and range: one line naming the file, the table and the key; exit 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from escli.errors import UsageError
from escli.settings import GlobalOptions, config_path, resolve


def write_config(tmp_path: Path, text: str) -> dict[str, str]:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"), "ESCLI_SECRET": "s"}
    path = config_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return env


@pytest.mark.parametrize(("line", "expect"), [
    ('timeout = "abc"', '[clusters.prod] timeout: "abc" is not a number of seconds'),
    ("timeout = 0", "[clusters.prod] timeout: 0 must be more than 0 seconds"),
    ("timeout = inf", "[clusters.prod] timeout: inf must be more than 0 seconds and finite"),
    ("timeout = true", "[clusters.prod] timeout: true is not a number of seconds"),
    ("max_retries = -3", "[clusters.prod] max_retries: -3 must be 0 or more"),
    ("max_retries = 2.5", "[clusters.prod] max_retries: 2.5 is not a whole number"),
    ('max_retries = "3"', '[clusters.prod] max_retries: "3" is not a whole number'),
    ("connections = 0", "[clusters.prod] connections: 0 must be 1 or more"),
    ('verify = "no"', '[clusters.prod] verify: "no" is not true or false'),
    ("sniff = 1", "[clusters.prod] sniff: 1 is not true or false"),
    ("default = 1", "[clusters.prod] default: 1 is not true or false"),
    ("weight = 0", "[clusters.prod] weight: 0 must be more than 0"),
    ("max_answer_mb = 0", "[clusters.prod] max_answer_mb: 0 must be more than 0"),
    ('max_answer_mb = "big"', '[clusters.prod] max_answer_mb: "big" is not a number'),
    ("urls = []", "[clusters.prod] urls: [] is not a URL or a list of URLs"),
    ("urls = [1]", "[clusters.prod] urls: [1] is not a URL or a list of URLs"),
    ("username = 7", "[clusters.prod] username: 7 is not a non-empty string"),
    ('password = "hunter2"', "[clusters.prod] password: must come from password_env or password_file"),
    ('api_key = "k"', "[clusters.prod] api_key: must come from api_key_env or api_key_file"),
])
def test_a_bad_cluster_value_names_file_table_and_key(tmp_path: Path, line: str, expect: str) -> None:
    env = write_config(tmp_path, f'[clusters.prod]\nurl = "http://a:9200"\n{line}\n')
    with pytest.raises(UsageError) as err:
        resolve(GlobalOptions(cluster=["prod"]), env=env)
    assert str(err.value).startswith(f"{config_path(env)}: {expect}"), str(err.value)
    assert "\n" not in str(err.value)
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize(("text", "expect"), [
    ('[groups.g]\nclusters = "a"\n', '[groups.g] clusters: "a" is not a list of cluster names'),
    ('[groups.g]\nclusters = ["a"]\nstrategy = "fastest"\n', '[groups.g] strategy: "fastest" is not a strategy'),
    ("[cache]\nttl = -1\n", "[cache] ttl: -1 must be more than 0 seconds"),
    ("[cache]\nmemory_mb = -1\n", "[cache] memory_mb: -1 must be 0 or more"),
    ('[cache]\nsize_limit_mb = "big"\n', '[cache] size_limit_mb: "big" is not a number'),
    ("cache = 3\n", "[cache] must be a table, not 3"),
    ("[clusters]\nprod = 3\n", "[clusters.prod]: must be a table, not 3"),
])
def test_a_bad_group_or_cache_value_names_file_table_and_key(tmp_path: Path, text: str, expect: str) -> None:
    env = write_config(tmp_path, text)
    with pytest.raises(UsageError) as err:
        resolve(env=env)
    assert str(err.value).startswith(f"{config_path(env)}: {expect}"), str(err.value)


def test_good_values_take_their_final_types(tmp_path: Path) -> None:
    env = write_config(tmp_path, '[clusters.prod]\nurl = "http://a:9200"\ntimeout = "1m"\nmax_retries = 0\n'
                                 "connections = 1\nverify = false\nweight = 2\n[cache]\nttl = \"2h\"\n")
    s = resolve(GlobalOptions(cluster=["prod"]), env=env)
    assert (s.urls, s.timeout, s.max_retries, s.connections, s.verify_certs, s.weight, s.cache_ttl) == \
        (("http://a:9200",), 60.0, 0, 1, False, 2.0, 7200.0)


def test_an_unknown_key_is_a_warning_naming_the_closest_known_one(tmp_path: Path) -> None:
    env = write_config(tmp_path, '[clusters.prod]\nurls = ["http://a:9200"]\napi_key_evn = "ESCLI_SECRET"\n'
                                 "[cache]\nttl_s = 3\n[clutsers.x]\n")
    warnings: list[str] = []
    s = resolve(GlobalOptions(cluster=["prod"]), env=env, warn=warnings.append)
    assert s.urls == ("http://a:9200",)
    path = config_path(env)
    assert warnings == [
        f"{path}: [clusters.prod] api_key_evn: not a key escli knows, ignored (did you mean api_key_env?)",
        f"{path}: [cache] ttl_s: not a key escli knows, ignored (did you mean ttl?)",
        f"{path}: clutsers: not a key escli knows, ignored (did you mean clusters?)",
    ]


@pytest.mark.parametrize(("option", "value", "expect"), [
    ("timeout", 0.0, "--timeout 0: must be more than 0 seconds"),
    ("max_retries", -1, "--max-retries -1: must be 0 or more"),
    ("connections", 0, "--connections 0: must be 1 or more"),
])
def test_options_that_feed_the_same_settings_have_the_same_ranges(tmp_path: Path, option: str, value: Any,
                                                                  expect: str) -> None:
    env = write_config(tmp_path, "")
    with pytest.raises(UsageError, match=expect):
        resolve(GlobalOptions(**{option: value}), env=env)


def test_the_cli_says_one_line_and_exits_2(tmp_path: Path, cli: Callable[..., Any],
                                          isolated_env: dict[str, str]) -> None:
    path = Path(isolated_env["XDG_CONFIG_HOME"]) / "escli" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('[clusters.prod]\nurls = ["http://127.0.0.1:1"]\ntimeout = "abc"\n')
    r = cli("-c", "prod", "search", "products", "x")
    assert r.code == 2
    assert r.stderr == f'escli: error: {path}: [clusters.prod] timeout: "abc" is not a number of seconds ' \
                       "(or a duration such as 30s or 500ms)\n"
    path.write_text('[clusters.prod]\nurls = ["http://127.0.0.1:1"]\nmax_retry = 0\n')
    r = cli("-c", "prod", "--max-retries", "0", "--timeout", "1", "search", "products", "x")
    assert r.code == 3  # nothing listens on port 1: the warning came first, then the run went on
    assert r.stderr.splitlines()[0] == (f"escli: warning: {path}: [clusters.prod] max_retry: not a key escli knows, "
                                        "ignored (did you mean max_retries?)")


def test_the_answer_bound_env_over_config_over_default(tmp_path: Path) -> None:
    from escli.settings import DEFAULT_MAX_ANSWER

    env = write_config(tmp_path, '[clusters.prod]\nurl = "http://a:9200"\nmax_answer_mb = 512\n')
    assert resolve(GlobalOptions(cluster=["prod"]), env=env).max_answer == 512 * 2**20
    assert resolve(GlobalOptions(cluster=["prod"]), env={**env, "ESCLI_MAX_ANSWER_MB": "0.5"}).max_answer == 2**19
    assert resolve(GlobalOptions(url=["http://b:9200"]), env=env).max_answer == DEFAULT_MAX_ANSWER == 128 * 2**20
    with pytest.raises(UsageError, match="ESCLI_MAX_ANSWER_MB=-1: must be a number of MiB above 0"):
        resolve(GlobalOptions(cluster=["prod"]), env={**env, "ESCLI_MAX_ANSWER_MB": "-1"})
