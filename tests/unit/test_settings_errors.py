"""Pure parts of settings and the error mapping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from escli.errors import ExitCode, InputError, PartialFailure, RefusedError, UnreachableError, UsageError, exit_code_for
from escli.settings import Credentials, GlobalOptions, resolve


def env_with_config(tmp_path: Path, text: str, **extra: str) -> dict[str, str]:
    cfg = tmp_path / "escli" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(text)
    return {"XDG_CONFIG_HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"), **extra}


def test_exit_codes() -> None:
    assert exit_code_for(UsageError("x")) is ExitCode.USAGE
    assert exit_code_for(InputError("f", 3, "bad")) is ExitCode.USAGE
    assert str(InputError("f.ndjson", 3, "bad", column=7)) == "f.ndjson:3:7: bad"
    assert exit_code_for(UnreachableError("x")) is ExitCode.UNREACHABLE
    assert exit_code_for(RefusedError("x")) is ExitCode.REFUSED
    assert exit_code_for(PartialFailure("x")) is ExitCode.PARTIAL
    assert exit_code_for(KeyboardInterrupt()) is ExitCode.INTERRUPTED


def test_url_precedence(tmp_path: Path) -> None:
    env = env_with_config(tmp_path, '[clusters.prod]\nurls = ["https://a:9200", "https://b:9200"]\ndefault = true\n')
    assert resolve(env=env).urls == ("https://a:9200", "https://b:9200")
    # an URL in the environment beats the config file's default cluster
    assert resolve(env={**env, "ELASTICSEARCH_URL": "http://e:9200"}).urls == ("http://e:9200",)
    assert resolve(env={**env, "ESCLI_URL": "http://x:1,http://y:2"}).urls == ("http://x:1", "http://y:2")
    assert resolve(GlobalOptions(url=["http://z:3"]), env=env).urls == ("http://z:3",)
    assert resolve(env={"XDG_CONFIG_HOME": str(tmp_path / "none")}).urls == ("http://127.0.0.1:9200",)


def test_unknown_cluster_and_bad_url(tmp_path: Path) -> None:
    env = env_with_config(tmp_path, "[clusters.a]\nurls = ['http://a:1']\n")
    with pytest.raises(UsageError, match=r"--cluster nope: no \[clusters.nope\]"):
        resolve(GlobalOptions(cluster=["nope"]), env=env)
    with pytest.raises(UsageError, match="must start with http"):
        resolve(GlobalOptions(url=["a:9200"]), env=env)
    with pytest.raises(UsageError, match="not in the URL"):
        resolve(GlobalOptions(url=["http://user:secret@a:9200"]), env=env)


def test_secrets_from_env_var_names_and_0600_files(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("c2VjcmV0\n")
    os.chmod(key, 0o644)
    text = f'[clusters.k]\nurls = ["https://k:9200"]\napi_key_file = "{key}"\n' \
           '[clusters.u]\nurls = ["https://u:9200"]\nusername = "bob"\npassword_env = "BOB_PW"\n'
    env = env_with_config(tmp_path, text, BOB_PW="pw1")
    with pytest.raises(UsageError, match="must not be readable by others"):
        resolve(GlobalOptions(cluster=["k"]), env=env)
    os.chmod(key, 0o600)
    creds = resolve(GlobalOptions(cluster=["k"]), env=env).credentials
    assert creds.api_key == "c2VjcmV0"
    assert "c2VjcmV0" not in repr(creds) and "c2VjcmV0" not in creds.principal
    u = resolve(GlobalOptions(cluster=["u"]), env=env)
    assert (u.credentials.username, u.credentials.password) == ("bob", "pw1")
    assert "pw1" not in repr(u) and "pw1" not in u.identity


def test_inline_secret_is_refused(tmp_path: Path) -> None:
    env = env_with_config(tmp_path, '[clusters.x]\nurls = ["http://x:1"]\npassword = "oops"\nusername = "u"\n')
    with pytest.raises(UsageError, match="password: must come from password_env or password_file"):
        resolve(GlobalOptions(cluster=["x"]), env=env)


def test_identity_changes_with_user() -> None:
    assert Credentials(username="a").principal != Credentials(username="b").principal
    assert Credentials(api_key="k1").principal != Credentials(api_key="k2").principal
