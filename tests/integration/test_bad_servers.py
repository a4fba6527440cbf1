"""escli against what answers when it is not a healthy engine (issue 35, SPEC "Answers from any server").

Each test runs escli as a real subprocess against tests/support/bad_server.py (a server that misbehaves on purpose)
or against the real engine behind tests/support/fault_proxy.py with some requests answered badly, and asserts:
the exit code (3; health's 3 is Nagios UNKNOWN), exactly one `escli: error:` line naming the URL and what came
back, no traceback nor Python exception name, and the child's peak RSS (its own `ru_maxrss`, from os.wait4 on
that child alone) under RSS_BOUND_MB: a bounded run stays near the interpreter plus the answer bound, an unbounded
one went to 1.5-8 GB. The endless answers run with an 8 MiB bound (ESCLI_MAX_ANSWER_MB) and a long --timeout, so
the bound, not the clock, ends them whatever the machine's speed; on search (one request) the gzip bomb and the
huge Content-Length meet the default bound (128 MiB). The bound is per answer: commands with requests in flight
together (batch's queries, export's first requests) may hold one bound each, so they meet the bomb at 8 MiB.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.conftest import ES_URL
from tests.support.bad_server import MODES, BadServer
from tests.support.fault_proxy import FaultProxy

RSS_BOUND_MB = 300
FAST = ("--timeout", "3", "--max-retries", "1")
SMALL_BOUND = {"ESCLI_MAX_ANSWER_MB": "8"}
PYTHON_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception)\b|Traceback")

# mode -> (what the one line says, environment, global options)
SAID: dict[str, tuple[str, dict[str, str], tuple[str, ...]]] = {
    "endless_chunks": ("answered more than the answer bound of 8 MiB", SMALL_BOUND, ("--timeout", "120")),
    "huge_length": ("answered more than the answer bound of 128 MiB", {}, FAST),
    "gzip_bomb": ("answered more than the answer bound of 128 MiB", {}, ("--timeout", "120", "--max-retries", "1")),
    "empty_object": ('answered {} without "', {}, FAST),
    "html": ("answered HTML ('Welcome to nginx!'), not JSON: is this Elasticsearch?", {}, FAST),
    "array": ("answered a JSON array, not ", {}, FAST),
    "redirect": ("answered 302, a redirect to http://127.0.0.1:9/elsewhere: not followed", {}, FAST),
    "bad_chunk": ("answered a bad chunk header: b'zz'", {}, FAST),
    "garbage_status": ("answered something that is not an HTTP answer", {}, FAST),
    "big_headers": ("answered headers larger than 64 KiB", {}, FAST),
    "endless_headers": ("answered headers larger than 64 KiB", {}, FAST),
    "short_body": ("cluster unreachable: ", {}, FAST),
    "negative_length": ("answered a Content-Length that is not a length: b'-5'", {}, FAST),
    "trickle": ("no answer within the timeout", {}, FAST),
    "reset": ("cluster unreachable: ", {}, FAST),
    "http09": ("answered something that is not an HTTP answer", {}, FAST),
}
# what each kind of answer is counted as (batch lines, profile)
KIND = {"endless_chunks": "too_large", "gzip_bomb": "too_large", "html": "not_json", "array": "wrong_shape",
        "empty_object": "wrong_shape", "redirect": "redirect", "bad_chunk": "broken_answer"}
SHAPES = ("endless_chunks", "gzip_bomb", "html", "array", "empty_object", "redirect", "bad_chunk")
IN_FLIGHT = {**SAID, "gzip_bomb": ("answered more than the answer bound of 8 MiB", SMALL_BOUND,
                                   ("--timeout", "120", "--max-retries", "1"))}


@dataclass
class Run:
    code: int
    stdout: bytes
    stderr: str
    rss_mb: float

    def error_line(self) -> str:
        """The one `escli: error:` line, after checking it is the only one and that no Python shows through."""
        lines = [ln for ln in self.stderr.splitlines() if ln.startswith("escli: error:")]
        assert len(lines) == 1, self.stderr
        assert PYTHON_NAME.search(self.stderr) is None, self.stderr
        assert self.rss_mb < RSS_BOUND_MB, f"peak RSS {self.rss_mb:.0f} MB"
        return lines[0]


@pytest.fixture()
def escli_run(isolated_env: dict[str, str]) -> Callable[..., Run]:
    """escli as a subprocess; its peak RSS is its own (os.wait4 on that child, not RUSAGE_CHILDREN's total)."""
    exe = str(Path(sys.executable).parent / "escli")

    def run(*args: str, env: dict[str, str] | None = None) -> Run:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen([exe, *args], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    env={**isolated_env, **(env or {})})
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
            out.seek(0)
            err.seek(0)
            return Run(proc.returncode, out.read(), err.read().decode("utf-8", "replace"), usage.ru_maxrss / 1024)

    return run


@pytest.fixture()
def files(tmp_path: Path) -> Path:
    (tmp_path / "queries.ndjson").write_text('{"id":"a","index":"products","q":"laptop"}\n'
                                             '{"id":"b","index":"products","q":"phone"}\n')
    (tmp_path / "docs.ndjson").write_text('{"name":"x"}\n{"name":"y"}\n')
    return tmp_path


def command(name: str, files: Path) -> list[str]:
    return {"search": ["search", "products", "laptop"],
            "batch": ["batch", str(files / "queries.ndjson")],
            "export": ["export", "products", "--out", str(files / "out.ndjson")],
            "import": ["import", "bad-server-target", str(files / "docs.ndjson")],
            "health": ["health"],
            "profile": ["profile", "products", "laptop", "--iterations", "5"]}[name]


# -- every misbehaviour, on search ----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_search_stays_bounded_and_says_what_answered(mode: str, escli_run: Callable[..., Run], files: Path) -> None:
    said, env, options = SAID[mode]
    with BadServer(mode) as server:
        run = escli_run("--url", server.url, *options, *command("search", files), env=env)
    assert run.code == 3, run.stderr
    line = run.error_line()
    assert said in line, line
    assert server.url in line, line  # the URL at fault is named
    assert run.stdout == b""  # never an empty result passed off as an answer


# -- the answers escli must bound or refuse, on every other command ------------------------------------------------

@pytest.mark.parametrize("mode", SHAPES)
@pytest.mark.parametrize("name", ["batch", "export", "import", "health", "profile"])
def test_every_command_stays_bounded_and_says_what_answered(name: str, mode: str, escli_run: Callable[..., Run],
                                                            files: Path) -> None:
    said, env, options = IN_FLIGHT[mode]
    with BadServer(mode) as server:
        run = escli_run("--url", server.url, *options, *command(name, files), env=env)
    assert run.code == 3, run.stderr  # health: Nagios UNKNOWN, the others: no usable cluster at that URL
    line = run.error_line()
    assert said in line and server.url in line, line
    if name == "batch":  # each query is a failed line naming what came back; none passes as answered
        lines = [orjson.loads(x) for x in run.stdout.splitlines()]
        assert sorted((x["id"], x["ok"], x["error"]["type"]) for x in lines) == [("a", False, KIND[mode]),
                                                                                  ("b", False, KIND[mode])]
        assert said in lines[0]["error"]["reason"]
        assert f"errors: {KIND[mode]} 2" in run.stderr  # the summary counts them by kind
        assert line.startswith("escli: error: no query got an answer escli can use (")
    if name == "export":
        assert not (files / "out.ndjson").exists()


def test_debug_shows_the_first_bytes(escli_run: Callable[..., Run], files: Path) -> None:
    with BadServer("html") as server:
        run = escli_run("--url", server.url, *FAST, "--debug", *command("search", files))
    assert run.code == 3
    assert "the answer's first bytes: b'<!DOCTYPE html>\\n<html>" in run.stderr


def test_a_redirect_is_not_followed_and_credentials_stay(escli_run: Callable[..., Run], files: Path) -> None:
    """The redirect names another origin (a second server): it is never asked, so no credentials reach it."""
    creds = {"ESCLI_USERNAME": "elastic", "ESCLI_PASSWORD": "s3cret"}
    with BadServer("reset") as elsewhere, BadServer("redirect", redirect_to=elsewhere.url + "/products/_search") \
            as server:
        for name in ("search", "batch", "export", "import", "health", "profile"):
            run = escli_run("--url", server.url, *FAST, *command(name, files), env=creds)
            assert run.code == 3, (name, run.stderr)
            assert f"answered 302, a redirect to {elsewhere.url}/products/_search: not followed" in run.error_line()
    assert server.requests and all(r.authorization for r in server.requests)  # sent where it was told to go
    assert elsewhere.requests == []


def test_the_bound_is_raised_by_the_config_key(escli_run: Callable[..., Run], files: Path,
                                               isolated_env: dict[str, str]) -> None:
    config = Path(isolated_env["XDG_CONFIG_HOME"]) / "escli" / "config.toml"
    config.parent.mkdir(parents=True)
    with BadServer("endless_chunks") as server:
        config.write_text(f'[clusters.odd]\nurls = ["{server.url}"]\nmax_answer_mb = 4\n')
        run = escli_run("-c", "odd", "--timeout", "120", *command("search", files))
    assert run.code == 3
    assert "answered more than the answer bound of 4 MiB" in run.error_line()


@pytest.mark.parametrize(("value", "said"), [("0", "ESCLI_MAX_ANSWER_MB=0: must be a number of MiB above 0"),
                                             ("lots", "ESCLI_MAX_ANSWER_MB=lots: must be a number of MiB above 0")])
def test_a_bad_bound_is_a_usage_error(value: str, said: str, escli_run: Callable[..., Run], files: Path) -> None:
    run = escli_run("--url", ES_URL, *command("search", files), env={"ESCLI_MAX_ANSWER_MB": value})
    assert run.code == 2
    assert said in run.error_line()


# -- the real engine, with only some answers bad (export pages, the PIT, bulk answers, profile under load) --------

@pytest.fixture()
def proxy() -> Iterator[FaultProxy]:
    with FaultProxy(ES_URL) as p:
        yield p


@pytest.mark.parametrize("mode", ["html", "endless_chunks", "array", "bad_chunk"])
@pytest.mark.parametrize("match", [b"POST /_search", b"/_pit?"])  # a page of the export; opening its PIT
def test_export_pages_and_pit_from_a_bad_server(mode: str, match: bytes, proxy: FaultProxy,
                                               escli_run: Callable[..., Run], files: Path, sample_index: str) -> None:
    said, env, options = SAID[mode]
    proxy.misbehave(mode, match=match)
    run = escli_run("--url", proxy.url, *options, "export", sample_index, "--out", str(files / "out.ndjson"),
                    env=env)
    assert run.code == 3, run.stderr
    line = run.error_line()
    assert said in line and proxy.url in line, line
    assert not (files / "out.ndjson").exists()


@pytest.mark.parametrize("mode", ["html", "empty_object", "gzip_bomb"])
def test_import_bulk_answers_from_a_bad_server(mode: str, proxy: FaultProxy, escli_run: Callable[..., Run],
                                               files: Path, index_name: Callable[[str], str]) -> None:
    said, env, options = SAID[mode]
    proxy.misbehave(mode, match=b"/_bulk")
    run = escli_run("--url", proxy.url, *options, "import", index_name("bad-bulk"), str(files / "docs.ndjson"),
                    env=env)
    assert run.code == 3, run.stderr
    line = run.error_line()
    assert said in line and f"{proxy.url}/_bulk answered" in line, line


@pytest.mark.parametrize("mode", ["html", "array", "empty_object"])
def test_profile_counts_bad_answers_by_kind(mode: str, proxy: FaultProxy, escli_run: Callable[..., Run],
                                            sample_index: str) -> None:
    """The preflight search reaches the engine; every timed one gets the bad answer: counted by its kind, and a
    run where all failed ends with the one line naming it."""
    proxy.misbehave(mode, match=b"/_search", after=1)
    run = escli_run("--url", proxy.url, *FAST, "profile", sample_index, "laptop", "--iterations", "20")
    assert run.code == 3, run.stderr
    line = run.error_line()
    assert f"every request failed ({KIND[mode]}): {proxy.url}/{sample_index}/_search answered" in line, line


def test_health_probes_count_bad_answers(proxy: FaultProxy, escli_run: Callable[..., Run], sample_index: str) -> None:
    """The health calls reach the engine, the probe searches get HTML: the check stands, the probe's errors are
    counted as not_json (never a crash)."""
    proxy.misbehave("html", match=b"/_search")
    run = escli_run("--url", proxy.url, *FAST, "health", "--format", "json", "--probe", f"{sample_index} laptop")
    assert PYTHON_NAME.search(run.stderr) is None and run.rss_mb < RSS_BOUND_MB, run.stderr
    assert b"not_json" in run.stdout, run.stdout


@pytest.mark.parametrize("mode", ["html", "empty_object", "redirect"])
def test_batch_msearch_groups_say_what_answered(mode: str, escli_run: Callable[..., Run], files: Path) -> None:
    said, env, options = SAID[mode]
    with BadServer(mode) as server:
        run = escli_run("--url", server.url, *options, "batch", str(files / "queries.ndjson"), "--msearch", "2",
                        env=env)
    assert run.code == 3, run.stderr
    assert said in run.error_line() and f"{server.url}/_msearch answered" in run.error_line()
    assert [orjson.loads(x)["error"]["type"] for x in run.stdout.splitlines()] == [KIND[mode]] * 2
