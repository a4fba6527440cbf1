"""Settings that escli search and the cache add: [cache] in the config file, secrets from files named in the env."""

from __future__ import annotations

from pathlib import Path

import pytest

from escli.errors import UsageError
from escli.settings import DEFAULT_CACHE_SIZE_LIMIT, DEFAULT_CACHE_TTL, GlobalOptions, resolve


def config(tmp_path: Path, text: str) -> dict[str, str]:
    cfg = tmp_path / "escli" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(text)
    return {"XDG_CONFIG_HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}


def test_cache_defaults_and_config(tmp_path: Path) -> None:
    s = resolve(env={"XDG_CONFIG_HOME": str(tmp_path / "none")})
    assert (s.cache_ttl, s.cache_size_limit) == (DEFAULT_CACHE_TTL, DEFAULT_CACHE_SIZE_LIMIT) == (300.0, 512 * 2**20)
    s = resolve(env=config(tmp_path, "[cache]\nttl = 60\nsize_limit_mb = 8\n"))
    assert (s.cache_ttl, s.cache_size_limit) == (60.0, 8 * 2**20)
    with pytest.raises(UsageError, match=r"\[cache\] ttl: \"soon\" is not a number of seconds"):
        resolve(env=config(tmp_path, '[cache]\nttl = "soon"\n'))
    with pytest.raises(UsageError, match="ttl: 0 must be more than 0 seconds"):
        resolve(env=config(tmp_path, "[cache]\nttl = 0\n"))


def test_secrets_from_files_named_in_the_environment(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    pw.chmod(0o600)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "none"), "ESCLI_USERNAME": "reporter", "ESCLI_PASSWORD_FILE": str(pw)}
    creds = resolve(env=env).credentials
    assert (creds.username, creds.password) == ("reporter", "s3cret")
    assert "s3cret" not in repr(creds)
    key = tmp_path / "key"
    key.write_text("aWQ6a2V5\n")
    key.chmod(0o600)
    assert resolve(env={**env, "ESCLI_API_KEY_FILE": str(key)}).credentials.api_key == "aWQ6a2V5"
    pw.chmod(0o644)
    with pytest.raises(UsageError, match=r"\$ESCLI_PASSWORD_FILE: secret file .* must not be readable by others"):
        resolve(env=env)
    with pytest.raises(UsageError, match="cannot be read"):
        resolve(env={**env, "ESCLI_PASSWORD_FILE": str(tmp_path / "missing")})


def test_identity_names_the_user_never_the_secret() -> None:
    a = resolve(env={"XDG_CONFIG_HOME": "/nonexistent", "ESCLI_API_KEY": "aWQ6c2VjcmV0"})
    b = resolve(env={"XDG_CONFIG_HOME": "/nonexistent", "ESCLI_USERNAME": "u", "ESCLI_PASSWORD": "p"})
    assert "aWQ6c2VjcmV0" not in a.identity and a.identity != b.identity
    assert b.identity.endswith("|user:u") and "p" not in b.identity.split("|")[1].replace("user:", "")


def test_the_shared_cache_url_option_env_config_and_its_password(tmp_path: Path) -> None:
    base = config(tmp_path, '[cache]\nurl = "redis://cfg:6379/1"\ntimeout_ms = 50\nmemory_mb = 1\n')
    s = resolve(env=base)
    assert (s.cache_url, s.cache_timeout, s.cache_memory_limit) == ("redis://cfg:6379/1", 0.05, 2**20)
    assert resolve(env={**base, "ESCLI_CACHE_URL": "rediss://env:6380/0"}).cache_url == "rediss://env:6380/0"
    assert resolve(GlobalOptions(cache_url="redis://opt/2"), env={**base, "ESCLI_CACHE_URL": "x"}).cache_url == "redis://opt/2"
    assert resolve(env={**base, "ESCLI_CACHE_URL": ""}).cache_url == "redis://cfg:6379/1"
    assert resolve(env={"XDG_CONFIG_HOME": str(tmp_path / "none")}).cache_url is None
    with pytest.raises(UsageError, match="--cache-url: put the Redis password in ESCLI_CACHE_PASSWORD"):
        resolve(GlobalOptions(cache_url="redis://:hunter2@host:6379/0"), env=base)
    with pytest.raises(UsageError, match=r"expected redis://HOST:PORT/DB"):
        resolve(GlobalOptions(cache_url="http://host:6379"), env=base)
    with pytest.raises(UsageError, match=r"\[cache\] password: must come from password_env or password_file"):
        resolve(env=config(tmp_path, '[cache]\nurl = "redis://h/0"\npassword = "inline"\n'))
    s = resolve(env={**config(tmp_path, '[cache]\nurl = "redis://h/0"\npassword_env = "MY_REDIS_PW"\n'),
                     "MY_REDIS_PW": "s3cret"})
    assert s.cache_password == "s3cret" and "s3cret" not in repr(s)
    pw = tmp_path / "redis-pw"
    pw.write_text("from-file\n")
    pw.chmod(0o644)
    with pytest.raises(UsageError, match="must not be readable by others"):
        resolve(env=config(tmp_path, f'[cache]\nurl = "redis://h/0"\npassword_file = "{pw}"\n'))
    pw.chmod(0o600)
    assert resolve(env=config(tmp_path, f'[cache]\nurl = "redis://h/0"\npassword_file = "{pw}"\n')
                   ).cache_password == "from-file"
    with pytest.raises(UsageError, match=r"\[cache\] timeout_ms: 0 must be more than 0"):
        resolve(env=config(tmp_path, "[cache]\ntimeout_ms = 0\n"))
