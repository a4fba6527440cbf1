"""The built wheel: LICENSE, py.typed, the completion scripts, and only dependencies escli uses."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from escli.cli.completion_scripts import FILES

ROOT = Path(__file__).resolve().parents[2]
# Where escli's own code shows it uses each declared runtime dependency.
EVIDENCE = {
    "typer": r"^\s*import typer\b",
    "rich": r"^\s*from rich\b",
    "orjson": r"^\s*import orjson\b",
    "msgspec": r"^\s*import msgspec\b",
    "diskcache": r"^\s*import diskcache\b|^\s*from diskcache\b",
    "redis": r"^\s*from redis\b",
    "psutil": r"^\s*import psutil\b",
    "uvloop": r"^\s*import uvloop\b",
    "shellingham": r"^\s*import shellingham\b",
}
# Declared but not imported by escli (none: httpx, measured for the light path and rejected, is a dev dependency).
PENDING: set[str] = set()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True)
    (path,) = out.glob("escli_search-*.whl")  # the distribution's name, normalised as wheels spell it
    return zipfile.ZipFile(path)


def test_the_distribution_is_named_escli_search_and_installs_the_escli_command(wheel: zipfile.ZipFile) -> None:
    assert "\nName: escli-search\n" in metadata(wheel)
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    assert "escli = " in wheel.read(entry_points).decode()
    assert any(n.startswith("escli/") for n in wheel.namelist())  # the import package stays escli


def metadata(wheel: zipfile.ZipFile) -> str:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return wheel.read(name).decode()


def test_license_py_typed_and_completion_scripts_are_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    (license_name,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    text = wheel.read(license_name).decode()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    assert "License: Apache-2.0" in metadata(wheel) or "License-Expression: Apache-2.0" in metadata(wheel)
    assert "escli/py.typed" in names
    for name in FILES.values():
        assert wheel.read(f"escli/completions/{name}") == (ROOT / "completions" / name).read_bytes()


def test_every_declared_dependency_is_used(wheel: zipfile.ZipFile) -> None:
    declared = set()
    for line in metadata(wheel).splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            declared.add(re.split(r"[\s<>=!;\[]", line.removeprefix("Requires-Dist:").strip())[0].lower())
    # one request path on escli's own HTTP client: no HTTP library among the runtime dependencies
    assert not declared & {"aiohttp", "elastic-transport", "elasticsearch", "httpx", "urllib3", "requests"}
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "escli").rglob("*.py"))
    unused = {d for d in declared - PENDING if not re.search(EVIDENCE.get(d, re.escape(d)), source, re.M)}
    assert not unused, f"declared but not used by escli: {sorted(unused)}"
    assert not declared - set(EVIDENCE) - PENDING, "add the new dependency to EVIDENCE"
