"""The recipes in README.md and docs/commands/*.md, run as written against the live engine.

A code block preceded by `<!-- recipe: run ... -->` is a recipe. Cron lines (```cron / ```crontab) run the way
cron runs them: the five time fields dropped, an unescaped `%` ends the command (the rest is its stdin, `%` as
newlines) and `\\%` is a `%`, under /bin/sh. ```sh blocks run under /bin/sh -e. Only where the recipe points
outside this machine's sandbox is anything swapped, in one table (PLACES): the system paths become directories of
the test, the documented URL becomes the test engine's, `mail` is a recorder on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

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
