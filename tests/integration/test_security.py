"""`escli search` against the secured TLS engine: API key, basic auth, config files, and no secret anywhere."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SECURE_URL, Result

Cli = Callable[..., Result]
pytestmark = pytest.mark.secure


@pytest.fixture(scope="module")
def secure_index(secure_engine: tuple[httpx.Client, str, Path]) -> Iterator[str]:
    admin, _, _ = secure_engine
    name = f"t-secure-{uuid.uuid4().hex[:8]}"
    docs = b"".join(json.dumps(x).encode() + b"\n" for i in range(20)
                    for x in ({"index": {"_index": name, "_id": f"d{i}"}}, {"name": f"lamp {i}", "n": i}))
    admin.post("/_bulk", params={"refresh": "true"}, content=docs,
               headers={"content-type": "application/x-ndjson"}).raise_for_status()
    yield name
    admin.delete(f"/{name}")


@pytest.fixture()
def api_key(secure_engine: tuple[httpx.Client, str, Path]) -> Iterator[dict[str, str]]:
    """A real API key made by the secured engine (the escli-analysis plugin lets it create its .security index)."""
    admin, _, _ = secure_engine
    resp = admin.post("/_security/api_key", json={"name": f"escli-test-{uuid.uuid4().hex[:8]}"})
    resp.raise_for_status()
    key = resp.json()
    yield {"id": key["id"], "api_key": key["api_key"], "encoded": key["encoded"]}
    admin.request("DELETE", "/_security/api_key", json={"ids": [key["id"]]})


def unknown_api_key() -> dict[str, str]:
    key_id, secret = f"escli-{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    return {"id": key_id, "api_key": secret, "encoded": base64.b64encode(f"{key_id}:{secret}".encode()).decode()}


def base_env(ca: Path) -> dict[str, str]:
    return {"ESCLI_URL": SECURE_URL, "ESCLI_CA_CERTS": str(ca)}


def secrets_of(password: str, key: dict[str, str]) -> list[bytes]:
    basic = base64.b64encode(f"elastic:{password}".encode())
    return [password.encode(), key["api_key"].encode(), key["encoded"].encode(), basic]


def assert_no_secret(secrets: list[bytes], *blobs: bytes | str) -> None:
    for blob in blobs:
        data = blob.encode() if isinstance(blob, str) else blob
        for secret in secrets:
            assert secret not in data, "a secret leaked"


def test_basic_auth(cli: Cli, secure_engine: tuple[httpx.Client, str, Path], secure_index: str) -> None:
    _, password, ca = secure_engine
    env = {**base_env(ca), "ESCLI_USERNAME": "elastic", "ESCLI_PASSWORD": password}
    basic = cli("search", secure_index, "lamp", "-n", "3", "-o", "json", env=env)
    assert basic.code == 0, basic.stderr
    assert len(json.loads(basic.out)["hits"]["hits"]) == 3
    assert json.loads(cli("search", secure_index, "lamp", "-n", "3", "-o", "json", env=env).out)["_escli"][
        "cache"] == "hit-disk"


def test_api_key_works(cli: Cli, secure_engine: tuple[httpx.Client, str, Path], secure_index: str,
                       api_key: dict[str, str]) -> None:
    _, _, ca = secure_engine
    r = cli("search", secure_index, "lamp", "-n", "4", "-o", "json",
            env={**base_env(ca), "ESCLI_API_KEY": api_key["encoded"]})
    assert r.code == 0, r.stderr
    assert len(json.loads(r.out)["hits"]["hits"]) == 4


def test_unknown_api_key_exits_4_with_one_line(cli: Cli, secure_engine: tuple[httpx.Client, str, Path],
                                               secure_index: str) -> None:
    _, _, ca = secure_engine
    key = unknown_api_key()
    r = cli("search", secure_index, "lamp", env={**base_env(ca), "ESCLI_API_KEY": key["encoded"]})
    assert r.code == 4
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "401" in lines[0] and "ESCLI_API_KEY" in lines[0]
    assert key["api_key"] not in r.stderr and key["encoded"] not in r.stderr


def test_wrong_password_exits_4_with_one_clear_line(cli: Cli, secure_engine: tuple[httpx.Client, str, Path],
                                                    secure_index: str) -> None:
    _, _, ca = secure_engine
    wrong = "not-the-password-" + uuid.uuid4().hex
    r = cli("search", secure_index, "lamp", env={**base_env(ca), "ESCLI_USERNAME": "elastic",
                                                 "ESCLI_PASSWORD": wrong})
    assert r.code == 4
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "401" in lines[0] and "unable to authenticate user [elastic]" in lines[0]
    assert wrong not in r.stderr


def test_tls_is_verified_by_default(cli: Cli, secure_engine: tuple[httpx.Client, str, Path],
                                    secure_index: str) -> None:
    _, password, _ = secure_engine
    creds = {"ESCLI_URL": SECURE_URL, "ESCLI_USERNAME": "elastic", "ESCLI_PASSWORD": password}
    r = cli("--max-retries", "0", "search", secure_index, env=creds)
    assert r.code == 3 and "certificate" in r.stderr.lower() and "Traceback" not in r.stderr
    r = cli("--insecure", "search", secure_index, "-n", "1", "-o", "json", env=creds)
    assert r.code == 0 and "TLS certificate verification is off" in r.stderr


def test_named_cluster_with_a_0600_password_file(cli: Cli, secure_engine: tuple[httpx.Client, str, Path],
                                                 secure_index: str, isolated_env: dict[str, str],
                                                 tmp_path: Path) -> None:
    _, password, ca = secure_engine
    pw = tmp_path / "es.pw"
    pw.write_text(password + "\n")
    pw.chmod(0o600)
    cfg = Path(isolated_env["XDG_CONFIG_HOME"]) / "escli" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f'[clusters.sec]\nurls = ["{SECURE_URL}"]\nusername = "elastic"\npassword_file = "{pw}"\n'
                   f'ca_certs = "{ca}"\n')
    r = cli("-c", "sec", "search", secure_index, "lamp", "-n", "2", "-o", "json", env={"ESCLI_URL": ""})
    assert r.code == 0, r.stderr
    pw.chmod(0o644)
    r = cli("-c", "sec", "search", secure_index, env={"ESCLI_URL": ""})
    assert r.code == 2 and str(pw) in r.stderr and "chmod 600" in r.stderr
    # a user without a password and no terminal to ask on: a clear usage error, not a hang
    r = cli("search", secure_index, env={**base_env(ca), "ESCLI_USERNAME": "elastic"})
    assert r.code == 2 and "no password for user elastic" in r.stderr


def test_no_secret_in_verbose_debug_output_or_the_cache(cli: Cli, secure_engine: tuple[httpx.Client, str, Path],
                                                        secure_index: str, api_key: dict[str, str],
                                                        isolated_env: dict[str, str]) -> None:
    _, password, ca = secure_engine
    secrets = secrets_of(password, api_key)
    runs: list[Result] = []
    basic = {**base_env(ca), "ESCLI_USERNAME": "elastic", "ESCLI_PASSWORD": password}
    keyed = {**base_env(ca), "ESCLI_API_KEY": api_key["encoded"]}
    for env in (basic, keyed):
        runs.append(cli("-vv", "--debug", "search", secure_index, "lamp", "-n", "25", "-o", "json", env=env))
        runs.append(cli("-vv", "--debug", "search", secure_index, "lamp", "-n", "25", "-o", "json", env=env))
        runs.append(cli("-vv", "--debug", "search", "no-such-index", env=env))
        runs.append(cli("--debug", "search", secure_index, "--preference", "session-1", "--cache", env=env))
    runs.append(cli("-vv", "--debug", "search", secure_index, env={**basic, "ESCLI_PASSWORD": password + "x"}))
    assert [r.code for r in runs] == [0, 0, 4, 0, 0, 0, 4, 0, 4]
    assert any("Traceback" in r.stderr for r in runs)  # --debug did show something
    assert any("basic auth as elastic" in r.stderr for r in runs) and any("API key" in r.stderr for r in runs)
    for r in runs:
        assert_no_secret(secrets, r.stdout, r.stderr)
    root = Path(isolated_env["XDG_CACHE_HOME"]) / "escli"
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert_no_secret(secrets, path.read_bytes())


def test_api_key_from_a_file_named_in_the_environment(cli: Cli, secure_engine: tuple[httpx.Client, str, Path],
                                                      secure_index: str, api_key: dict[str, Any],
                                                      tmp_path: Path) -> None:
    _, _, ca = secure_engine
    f = tmp_path / "key"
    f.write_text(api_key["encoded"] + "\n")
    f.chmod(0o600)
    r = cli("search", secure_index, "-n", "1", "-o", "json", env={**base_env(ca), "ESCLI_API_KEY_FILE": str(f)})
    assert r.code == 0, r.stderr
    assert len(json.loads(r.out)["hits"]["hits"]) == 1
    f.chmod(0o640)
    r = cli("search", secure_index, env={**base_env(ca), "ESCLI_API_KEY_FILE": str(f)})
    assert r.code == 2 and "must not be readable by others" in r.stderr
