"""Shared fixtures. Behaviour is tested against the real engine that `make test` starts (ESCLI_TEST_URL).

When the engine cannot be reached the tests that need it fail; they never skip.
"""

from __future__ import annotations

import io
import os
import ssl
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis.database import DirectoryBasedExampleDatabase

from escli.cli.app import run
from escli.cli.common import AppContext

ROOT = Path(__file__).resolve().parents[1]
ES_URL = os.environ.get("ESCLI_TEST_URL", "http://127.0.0.1:9200")
ES8_URL = os.environ.get("ESCLI_TEST_ES8_URL", "http://127.0.0.1:9250")
SECURE_URL = os.environ.get("ESCLI_TEST_SECURE_URL", "https://127.0.0.1:9210")
# A second cluster, for several-cluster tests (scripts/test.sh starts it on OTHER_PORT, 9260 by default).
OTHER_URL = os.environ.get("ESCLI_TEST_OTHER_URL", "http://127.0.0.1:9260")
SECURE_DIR = Path(os.environ.get("ESCLI_TEST_SECURE_DIR", str(ROOT / ".cache/es/run/9210")))
OPENSEARCH_URL = os.environ.get("ESCLI_TEST_OPENSEARCH_URL", "http://127.0.0.1:9230")
# The engines people migrate between (scripts/test.sh starts them on ES7_PORT and OPENSEARCH3_PORT).
ES7_URL = os.environ.get("ESCLI_TEST_ES7_URL", "http://127.0.0.1:9270")
OPENSEARCH3_URL = os.environ.get("ESCLI_TEST_OPENSEARCH3_URL", "http://127.0.0.1:9280")
SAMPLE_INDEX = "products"

# Property tests: `ci` (the default, what `make test` runs) is derandomized with no example database, so a run
# draws the same examples on every machine and cannot fail by chance, nor by machine speed (no deadline, no
# too_slow check). `dev` (`make fuzz`, HYPOTHESIS_PROFILE=dev) draws fresh examples, many more of them, and keeps
# the failures it found in .hypothesis/ (git-ignored) so the next run tries them first.
hypothesis_settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, max_examples=200, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.register_profile(
    "dev", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "3000")), deadline=None, print_blob=True,
    database=DirectoryBasedExampleDatabase(str(ROOT / ".hypothesis" / "examples")),
    suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _reachable(url: str, *, start: str = "make es-up", **kwargs: object) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30, **kwargs)  # type: ignore[arg-type]
    try:
        client.get("/_cluster/health").raise_for_status()
    except httpx.HTTPError as exc:
        pytest.fail(f"the engine at {url} is not reachable ({exc}); start it with `{start}` "
                    "(make test does this itself)", pytrace=False)
    return client


@pytest.fixture(scope="session")
def es_url() -> str:
    return ES_URL


@pytest.fixture(scope="session")
def es(es_url: str) -> Iterator[httpx.Client]:
    """A plain HTTP client for the test engine, for setting up and checking, never for the code under test."""
    client = _reachable(es_url)
    yield client
    client.close()


def _engine(url: str, start: str) -> Iterator[httpx.Client]:
    """A session's plain client for one of the engines make test starts; `start` says how to start it by hand."""
    client = _reachable(url, start=start)
    yield client
    client.close()


def _port(url: str) -> str:
    return url.rsplit(":", 1)[-1]


@pytest.fixture(scope="session")
def es8() -> Iterator[httpx.Client]:
    yield from _engine(ES8_URL, f"make es-up ES_VERSION=8.19.21 ES_PORT={_port(ES8_URL)} ES_HEAP=512m")


@pytest.fixture(scope="session")
def opensearch() -> Iterator[httpx.Client]:
    """The OpenSearch 2.x node (`ENGINE=opensearch scripts/es.sh up`; make test starts it)."""
    yield from _engine(OPENSEARCH_URL, f"make es-up ENGINE=opensearch ES_PORT={_port(OPENSEARCH_URL)}")


@pytest.fixture(scope="session")
def es7() -> Iterator[httpx.Client]:
    """The Elasticsearch 7.17 node (make test starts it on ES7_PORT)."""
    yield from _engine(ES7_URL, f"make es-up ES_VERSION=7.17.29 ES_PORT={_port(ES7_URL)} ES_HEAP=512m")


@pytest.fixture(scope="session")
def opensearch3() -> Iterator[httpx.Client]:
    """The OpenSearch 3.x node (make test starts it on OPENSEARCH3_PORT)."""
    yield from _engine(OPENSEARCH3_URL, "make es-up ENGINE=opensearch OPENSEARCH_VERSION=3.9.0 "
                       f"ES_PORT={_port(OPENSEARCH3_URL)} ES_HEAP=512m")


@pytest.fixture(scope="session")
def other_es() -> Iterator[httpx.Client]:
    """A plain HTTP client for the second engine (another cluster); make test starts it on OTHER_PORT."""
    yield from _engine(OTHER_URL, f"make es-up ES_PORT={_port(OTHER_URL)}")


@pytest.fixture(scope="session")
def secure_engine() -> Iterator[tuple[httpx.Client, str, Path]]:
    """(admin client, elastic password, CA file) of the secured TLS engine."""
    password = (SECURE_DIR / "elastic-password").read_text().strip() if (SECURE_DIR / "elastic-password").exists() \
        else pytest.fail(f"no secured engine in {SECURE_DIR}; make test starts it", pytrace=False)
    ca = SECURE_DIR / "tls" / "ca.crt"
    client = _reachable(SECURE_URL, auth=("elastic", password), verify=ssl.create_default_context(cafile=str(ca)))
    yield client, password, ca
    client.close()


@pytest.fixture()
def index_name(es: httpx.Client, request: pytest.FixtureRequest) -> Iterator[Callable[[str], str]]:
    """Unique index names for this test; every index made through it is deleted afterwards."""
    made: list[str] = []

    def make(tag: str = "") -> str:
        base = request.node.name.lower().replace("[", "-").replace("]", "").replace("_", "-")[:40]
        name = f"t-{base}-{tag}-{uuid.uuid4().hex[:8]}".replace("--", "-")
        made.append(name)
        return name

    yield make
    for name in made:
        es.delete(f"/{name}", params={"ignore_unavailable": "true"})


@pytest.fixture(scope="session")
def sample_index(es: httpx.Client) -> str:
    count = es.get(f"/{SAMPLE_INDEX}/_count").json().get("count", 0)
    if not count:
        pytest.fail("the sample index `products` is empty; `make sample-data` (run by make test) loads it",
                    pytrace=False)
    return SAMPLE_INDEX


@dataclass
class Result:
    code: int
    stdout: bytes
    stderr: str

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8")


@pytest.fixture()
def isolated_env(tmp_path: Path) -> dict[str, str]:
    """An environment with its own config and cache directories and no escli variables from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESCLI_", "ELASTICSEARCH_"))}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["ESCLI_URL"] = ES_URL
    return env


@pytest.fixture()
def cli(isolated_env: dict[str, str]) -> Callable[..., Result]:
    """Run escli in-process with captured streams: cli("search", "products", "laptop", stdin=b"...")."""

    def invoke(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> Result:
        out, err = io.BytesIO(), io.StringIO()
        ctx = AppContext(stdout=out, stderr=err, env={**isolated_env, **(env or {})})
        old_stdin = sys.stdin
        if stdin is not None:
            sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
        try:
            code = run(list(args), ctx)
        finally:
            sys.stdin = old_stdin
        return Result(code, out.getvalue(), err.getvalue())

    return invoke


@pytest.fixture()
def escli_proc(isolated_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """Run the installed `escli` as a real subprocess (for signals, pipes, exit codes)."""
    exe = str(Path(sys.executable).parent / "escli")

    def invoke(*args: str, input: bytes | None = None, env: dict[str, str] | None = None,
               timeout: float | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([exe, *args], input=input, capture_output=True, env={**isolated_env, **(env or {})},
                              timeout=timeout, check=False)

    return invoke


def es_script(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run scripts/es.sh with extra environment (ES_PORT, NODES, ...)."""
    return subprocess.run(["bash", str(ROOT / "scripts" / "es.sh"), *args], capture_output=True, text=True,
                          env={**os.environ, **env}, check=False)


THREE_NODE_PORT = os.environ.get("ESCLI_TEST_THREE_NODE_PORT", "9220")


@pytest.fixture(scope="session")
def three_nodes() -> Iterator[str]:
    """A three-node cluster (HTTP 9220-9222) started for this session and stopped after it; yields its URL.

    A test that stops one of its nodes must start it again (es_script("start-node", "N", ...)) and wait for green.
    """
    env = {"NODES": "3", "ES_PORT": THREE_NODE_PORT, "ES_HEAP": "512m"}
    started = es_script("up", **env)
    if started.returncode != 0:
        pytest.fail(f"three-node cluster did not start:\n{started.stderr[-3000:]}", pytrace=False)
    yield started.stdout.strip().splitlines()[-1]
    es_script("down", **env)
