"""The recipes in README.md and docs/commands/*.md, run as written against the live engine.

A code block preceded by `<!-- recipe: run ... -->` is a recipe. Cron lines (```cron / ```crontab) run the way
cron runs them: the five time fields dropped, an unescaped `%` ends the command (the rest is its stdin, `%` as
newlines) and `\\%` is a `%`, under /bin/sh. ```sh blocks run under /bin/sh -e. Only where the recipe points
outside this machine's sandbox is anything swapped, in one table (PLACES): the system paths become directories of
the test, the documented URL becomes the test engine's, `mail` is a recorder on PATH.
"""

from __future__ import annotations

import csv
import itertools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs" / "commands").glob("*.md"))]
MARKER = re.compile(r"<!-- recipe: run\b[^>]*-->\n```(\w+)\n(.*?)\n```", re.S)
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Recipe:
    doc: str
    line: int
    lang: str
    text: str
    prose: str  # the paragraph before the block, for what it promises ("nightly")

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"


def recipes() -> list[Recipe]:
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for m in MARKER.finditer(text):
            before = text[:m.start()].rstrip().rsplit("\n\n", 1)[-1]
            out.append(Recipe(str(doc.relative_to(ROOT)), text[:m.start()].count("\n") + 2, m.group(1), m.group(2),
                              before))
    return out


def cron_split(line: str) -> tuple[str, str, str]:
    """(schedule, command, stdin) of a crontab line, as cron reads it."""
    fields = line.split(None, 5)
    schedule, rest = " ".join(fields[:5]), fields[5]
    parts = re.split(r"(?<!\\)%", rest)
    command = parts[0].replace("\\%", "%")
    stdin = "\n".join(p.replace("\\%", "%") for p in parts[1:])
    return schedule, command, stdin


@pytest.fixture()
def sandbox(tmp_path: Path, isolated_env: dict[str, str], sample_index: str) -> tuple[dict[str, str], dict[str, str]]:
    """(environment, path swaps) for running recipes: system paths inside tmp_path, a mail recorder."""
    places = {
        "/etc/escli/": f"{tmp_path}/etc/",
        "/var/lib/node_exporter/textfile/": f"{tmp_path}/textfile/",
        "/var/log/": f"{tmp_path}/log/",
        "/opt/escli/bin/escli": str(BIN / "escli"),
        "http://127.0.0.1:9200": isolated_env["ESCLI_URL"],
    }
    for d in ("etc", "textfile", "log", "bin"):
        (tmp_path / d).mkdir()
    shutil.copy(ROOT / "sample_queries" / "products.ndjson", tmp_path / "etc" / "warm.ndjson")
    shutil.copy(ROOT / "sample_queries" / "products.ndjson", tmp_path / "etc" / "probe.ndjson")
    mail = tmp_path / "bin" / "mail"
    mail.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/mail.args\ncat > {tmp_path}/mail.body\n')
    mail.chmod(0o755)
    config = Path(isolated_env["XDG_CONFIG_HOME"]) / "escli"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(f'[clusters.main]\nurl = "{isolated_env["ESCLI_URL"]}"\n')
    env = {**isolated_env, "PATH": f"{tmp_path / 'bin'}:{BIN}:{os.environ['PATH']}"}
    return env, places


def swap(command: str, places: dict[str, str]) -> str:
    for old, new in places.items():
        command = command.replace(old, new)
    return command


def run(command: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", "-c", command], input=stdin, env=env, capture_output=True, text=True,
                          cwd=ROOT, check=False)


def test_there_are_recipes_to_run() -> None:
    found = recipes()
    assert {r.doc for r in found} >= {"README.md", "docs/commands/health.md", "docs/commands/profile.md",
                                      "docs/commands/warm-cache.md"}
    assert all(r.lang in ("cron", "crontab", "sh") for r in found), [str(r) for r in found]


@pytest.mark.parametrize("recipe", recipes(), ids=str)
def test_recipe_runs_as_written(recipe: Recipe, sandbox: tuple[dict[str, str], dict[str, str]],
                                tmp_path: Path) -> None:
    env, places = sandbox
    if recipe.lang == "sh":
        # a recipe that reads what a cron recipe writes: give it that log first
        log = tmp_path / "log" / "escli-warm.ndjson"
        outage = {"queries": 0, "failed": 0, "error": "cluster unreachable: ...", "exit": 3}
        log.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in ({"queries": 2, "failed": 1}, {"failed": 0},
                                                                   outage)))
        r = run("set -e\n" + swap(recipe.text, places), env)
        assert r.returncode == 0 and r.stderr == "", f"{recipe}: {r.stderr}"
        assert r.stdout.splitlines() == ['{"queries":2,"failed":1}', orjson.dumps(outage).decode()]
        return
    for line in recipe.text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        schedule, command, stdin = cron_split(line)
        if "nightly" in recipe.prose:
            minute, hour = schedule.split()[:2]
            assert minute.isdigit() and hour.isdigit(), f"{recipe}: a nightly job runs once a day, not {schedule}"
        r = run(swap(command, places), env, stdin)
        # cron mails anything printed: a healthy run of a recipe prints nothing
        assert r.returncode == 0, f"{recipe}: exit {r.returncode}: {r.stderr}"
        assert r.stdout == "" and r.stderr == "", f"{recipe}: cron would mail: {r.stdout}{r.stderr}"
        for target in re.findall(r"--prometheus-file (\S+)", command):
            assert "escli_" in Path(swap(target, places)).read_text(), f"{recipe}: {target} not written"
        for target in re.findall(r">> (\S+)", command):
            summary = orjson.loads(Path(swap(target, places)).read_text().splitlines()[-1])
            assert summary["failed"] == 0 and "started_at" in summary
        if "| mail" in command:
            # the mail goes out only when something is wrong: with the cluster gone, its subject is the state
            assert not (tmp_path / "mail.args").exists()
            gone = {**env, "ESCLI_URL": "http://127.0.0.1:1"}
            r = run(swap(command, places), gone, stdin)
            assert r.returncode == 0 and r.stderr == "", r.stderr
            args = (tmp_path / "mail.args").read_text().splitlines()
            assert args[0] == "-s" and args[1] == "elasticsearch: ESCLI UNKNOWN", args
            assert (tmp_path / "mail.body").read_text().startswith("ESCLI UNKNOWN - ")


def test_cron_reads_percent_as_a_newline() -> None:
    assert cron_split("* * * * * echo a%b\\%c") == ("* * * * *", "echo a", "b%c")


# ----------------------------------------------------------------------------------------------------------------
# Every shell example of README.md and docs/commands/*.md (any doc added there is picked up): each line that runs
# escli, in a fenced block or an indented one, is run in order (per doc, in one directory, so `--save run.json`
# is there for `--compare run.json`) against the sample data, and must exit as the text says (0 unless its line
# says otherwise) and print what its comment promises (PRINTS). An example that cannot run here is marked with
# what it needs: a whole block by `<!-- examples: needs WHAT -->` on the line before it in the doc, one line by
# NEEDS below. Recipe blocks (`<!-- recipe: run -->`) are run above, cron-style. What is swapped, and why, is in
# SWAPS: the documented hosts and system paths (as for the recipes), indices that an example writes (never the
# shared `products`), and durations of a load (the same command, shorter: the suite is not a benchmark).

BLOCK_MARK = re.compile(r"<!-- examples: needs ([^>]+?) -->\s*$")
ENV_WORD = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")
# (doc, start of the command as written) -> what it needs that this suite does not have
NEEDS: dict[tuple[str, str], str] = {
    ("README.md", "escli export products --out laptops.ndjson.gz --checkpoint laptops.ckpt --resume"):
        "an interrupted run to resume (the line above ran to the end and removed its checkpoint)",
    ("docs/commands/export.md", "escli export products --out all.ndjson.gz --checkpoint all.ckpt --resume"):
        "an interrupted run to resume (the line above ran to the end and removed its checkpoint)",
    ("docs/commands/cache.md", "ESCLI_CACHE_URL=redis://cache.internal:6379/0 escli search"):
        "a remote host (cache.internal, another machine's Redis)",
}
# Exit codes other than 0 that the text gives, first match wins (health: 2 for nodes<3 on one node, 1 yellow, which
# the shared test engine may be while other tests hold unassigned replicas; a --fail-if gate: 1 when the machine
# delivers less than it asks).
EXITS: dict[str, set[int]] = {"--crit 'nodes<3'": {2}, "escli health": {0, 1}, "--fail-if": {0, 1}}
# (doc, start of the command) -> (stream, regular expression its output must match): what the comment says;
# and every search that asks for hits must find some on the sample data
PRINTS: dict[tuple[str, str], tuple[str, str]] = {
    ("README.md", "escli health --format nagios          # ESCLI OK"):
        ("stdout", r"^ESCLI (OK|WARNING) - \S+ (green|yellow): 1 node, .* \| status=[01];1;2;0;3 nodes=1;;;0 "),
    ("README.md", "escli export products --max-docs 100 --source-only | jq .name"): ("stdout", r'^"'),
    ("docs/commands/cache.md", "escli search products laptop -f name^2          # hit"):
        ("stderr", r"escli: cache hit-disk: stored \d+s ago, expires in \d+m"),
    ("docs/commands/cache.md", "escli search products laptop -f name^2 -o json | jq ._escli"):
        ("stdout", r'"cache": "hit-disk"'),
    ("docs/commands/warm-cache.md", "escli search products laptop -f name^2 -f description --size 10"):
        ("stderr", r"escli: cache hit-disk: stored \d+s ago, expires in \d+m"),
    ("docs/commands/health.md", "escli health -F nagios --warn 'heap>85' --crit 'disk>90' --crit 'nodes<3'"):
        ("stdout", r"^ESCLI CRITICAL - CRITICAL: nodes 1 \(nodes<3\)"),
    ("docs/commands/search.md", "escli search products laptop --tune latency --terminate-after 2000 -v"):
        ("stderr", r"--tune latency"),
}
# Durations and sizes of a load (profile) and of a wait (health), shortened; the rest of the line as written.
LOAD_SWAPS = [(re.compile(r"(--duration|-d) (30|60)s\b"), r"\1 1s"), (re.compile(r"(-n|--iterations) (2000|5000)\b"),
                                                                      r"\1 200"),
              (re.compile(r"--timeout (60s|10m|5m)\b"), "--timeout 3s"),
              (re.compile(r"--rate (2500)\b"), "--rate 100")]


@dataclass(frozen=True)
class Example:
    doc: str
    line: int
    command: str  # as written, continuation lines joined, the prompt taken off
    needs: str | None  # what it needs when it cannot run here

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {self.command}"


def _runs_escli(line: str) -> bool:
    words = line.split()
    while words and ENV_WORD.match(words[0]):
        words = words[1:]
    if words[:1] == ["escli"]:
        return len(words) < 2 or not words[1].endswith(":")  # `escli profile: closed loop ...` is output
    return "| escli " in line


def examples(doc: Path) -> list[Example]:
    """The escli command lines of one doc's code blocks, in order, with their marks."""
    rel = str(doc.relative_to(ROOT)) if doc.is_relative_to(ROOT) else doc.name
    lines = doc.read_text().splitlines()
    out: list[Example] = []
    fence: str | None = None
    block_needs: str | None = None
    recipe = False
    i = 0
    while i < len(lines):
        raw = lines[i]
        if raw.startswith("```"):
            if fence is None:
                fence = raw[3:].strip()
                before = next((x for x in reversed(lines[:i]) if x.strip()), "")
                mark = BLOCK_MARK.search(before)
                block_needs = mark.group(1) if mark else None
                recipe = "<!-- recipe: run" in before
            else:
                fence, block_needs, recipe = None, None, False
            i += 1
            continue
        indented = fence is None and raw.startswith("    ") and (i == 0 or not lines[i - 1].strip()
                                                               or lines[i - 1].startswith("    "))
        if (fence is not None and fence in ("", "sh", "console", "bash", "shell") and not recipe) or indented:
            text = raw.strip()
            text = text[2:] if text.startswith("$ ") else text
            start = i
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1] + " " + lines[i].strip()
            if _runs_escli(text):
                command = text
                needs = block_needs or next((why for (d, head), why in NEEDS.items()
                                             if d == rel and command.startswith(head)), None)
                out.append(Example(rel, start + 1, command, needs))
        i += 1
    return out


def all_examples() -> list[Example]:
    return [e for doc in DOCS for e in examples(doc)]


def _exits(command: str) -> set[int]:
    for key, codes in EXITS.items():
        if key in command:
            return codes
    return {0}


@pytest.fixture()
def workdir(tmp_path: Path, isolated_env: dict[str, str], sample_index: str, es: Any
            ) -> Iterator[tuple[Path, dict[str, str], list[tuple[re.Pattern[str], str]]]]:
    """A directory holding the files the examples name, an environment whose config has the clusters they name
    (eu and us: the test engine, as `regions`), and the swaps of the indices they write."""
    from tests.conftest import ES_URL, OTHER_URL

    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(ROOT / "sample_queries", work / "sample_queries")
    for name in ("queries.ndjson", "dashboards.ndjson"):
        shutil.copy(ROOT / "sample_queries" / "products.ndjson", work / name)
    import gzip

    (work / "big.ndjson.gz").write_bytes(gzip.compress((ROOT / "sample_queries" / "products.ndjson").read_bytes()))
    aggs = {"size": 0, "aggs": {"brands": {"terms": {"field": "brand.keyword"}}}}
    (work / "query.json").write_bytes(orjson.dumps({**aggs, "query": {"match": {"name": "laptop"}}}))
    (work / "cheap.json").write_bytes(orjson.dumps({"query": {"range": {"price": {"lt": 50}}}}))
    docs = es.post(f"/{sample_index}/_search", json={"size": 50, "sort": ["_doc"]}).json()["hits"]["hits"]
    (work / "products.ndjson").write_bytes(b"".join(orjson.dumps(h["_source"]) + b"\n" for h in docs))
    mapping = es.get(f"/{sample_index}/_mapping").json()[sample_index]["mappings"]
    (work / "mapping.json").write_bytes(orjson.dumps(mapping))
    fields = ["id", "name", "price"]
    with (work / "products.csv").open("w", newline="") as fh:  # RFC 4180 quoting: sample names hold `"` (15" ...)
        rows = csv.writer(fh)
        rows.writerow(fields)
        rows.writerows([h["_source"].get(f, "") for f in fields] for h in docs)
    (work / "flights.csv").write_text("year,month,day,dep_delay,carrier,flight,time_hour\n" + "".join(
        f"2013,1,{1 + i % 28},{'NA' if i % 7 == 0 else (i * 37) % 180 - 20},UA,{1000 + i},"
        f"2013-01-{1 + i % 28:02d} {5 + i % 18:02d}:00:00\n" for i in range(300)))
    config = Path(isolated_env["XDG_CONFIG_HOME"]) / "escli"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        f'[clusters.main]\nurl = "{ES_URL}"\ndefault = true\n\n[clusters.eu]\nurl = "{ES_URL}"\n\n'
        f'[clusters.us]\nurl = "{ES_URL}"\nweight = 3\n\n[groups.regions]\nclusters = ["eu", "us"]\n'
        'strategy = "fan-out"\n')
    (work / "textfile").mkdir()
    env = {**isolated_env, "HOME": str(tmp_path / "home"), "PATH": f"{BIN}:{os.environ['PATH']}",
           "ESCLI_TEST_OTHER_URL": OTHER_URL}
    (tmp_path / "home").mkdir()
    # indices the examples write: fresh ones, deleted afterwards (index_name), never the shared products
    import uuid

    flights, imported = f"t-doc-flights-{uuid.uuid4().hex[:8]}", f"t-doc-products-{uuid.uuid4().hex[:8]}"
    swaps = [(re.compile(r"\bflights\b(?![.\w])"), flights),
             (re.compile(r"^escli import products\b"), f"escli import {imported}"),
             (re.compile(r"/var/lib/node_exporter/textfile/"), f"{work}/textfile/"),
             *LOAD_SWAPS]
    yield work, env, swaps
    for name in (flights, imported):
        es.delete(f"/{name}", params={"ignore_unavailable": "true"})


def test_every_example_is_found_and_every_mark_is_used() -> None:
    found = all_examples()
    by_doc = {e.doc for e in found}
    assert by_doc >= {str(d.relative_to(ROOT)) for d in DOCS}, by_doc  # every doc has examples
    assert len(found) > 100, len(found)
    for (doc, head) in [*NEEDS, *PRINTS]:  # a mark whose example changed is stale: say so
        assert any(e.doc == doc and e.command.startswith(head) for e in found), f"{doc}: no example {head!r}"
    assert all(e.needs for e in found if "--resume" in e.command)


def test_a_new_docs_examples_are_found_and_a_block_mark_says_what_they_need(tmp_path: Path) -> None:
    doc = tmp_path / "copy.md"
    doc.write_text("# copy\n\n```sh\nescli copy products --to other   # runs\n$ escli search products x \\\n"
                   "  -n 1\nescli: an output line\n```\n\n<!-- examples: needs a second cluster (other) -->\n"
                   "```console\n$ ESCLI_URL=https://b:9200 escli verify products\nok\n```\n\n"
                   "    zcat x.gz | escli batch -\n")
    found = examples(doc)
    assert [(e.line, e.command, e.needs) for e in found] == [
        (4, "escli copy products --to other   # runs", None), (5, "escli search products x  -n 1", None),
        (12, "ESCLI_URL=https://b:9200 escli verify products", "a second cluster (other)"),
        (16, "zcat x.gz | escli batch -", None)]


@pytest.mark.parametrize("doc", [str(d.relative_to(ROOT)) for d in DOCS])
def test_every_example_runs_as_written(doc: str, workdir: tuple[Path, dict[str, str],
                                                             list[tuple[re.Pattern[str], str]]]) -> None:
    work, env, swaps = workdir
    failures: list[str] = []
    for ex in examples(ROOT / doc):
        if ex.needs:
            continue
        command = ex.command
        for pattern, new in swaps:
            command = pattern.sub(new, command)
        # bash, the shell a user of these docs types them into (--install-completion asks which one it is)
        r = subprocess.run(["/bin/bash", "-c", command], env=env, capture_output=True, text=True, cwd=work,
                           check=False, stdin=subprocess.DEVNULL)
        if r.returncode not in _exits(ex.command):
            failures.append(f"{ex}\n    exit {r.returncode}: {r.stderr.strip()[-400:]}")
            continue
        if "Traceback" in r.stderr:
            failures.append(f"{ex}\n    a traceback: {r.stderr[-400:]}")
        promise = next((p for (d, head), p in PRINTS.items() if d == doc and ex.command.startswith(head)), None)
        if promise is not None:
            stream, pattern = promise
            text = r.stdout if stream == "stdout" else r.stderr
            if not re.search(pattern, text, re.M):
                failures.append(f"{ex}\n    {stream} does not match {pattern!r}: {text[:300]!r}")
        words = ex.command.split()
        no_hits_asked = any(w in ("-n", "--size") and nxt == "0" for w, nxt in itertools.pairwise(words))
        if words[:2] == ["escli", "search"] and not no_hits_asked:  # an example query matches something
            target = re.search(r"> (\S+)", ex.command)
            printed = (work / target.group(1)).read_text() if target else r.stdout
            if len(printed.strip().splitlines()) < (2 if target and target.group(1).endswith(".csv") else 1):
                failures.append(f"{ex}\n    matched nothing on the sample data")
    assert not failures, "examples that do not run as written (fix the doc or the code, or mark what they " \
                         "need):\n" + "\n".join(failures)
