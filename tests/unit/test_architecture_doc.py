"""docs/ARCHITECTURE.md stays true to the code, and no merge-conflict marker is left anywhere in the tree.

Every module path the document names (`src/escli/...`, `x/y.py`, an entry of the layer map) must exist, and every
dotted name (`escli.x.y`, `es.connect.open_es`, `cli/common.run_async`) must import or be an attribute of the
module it names.
"""

from __future__ import annotations

import importlib
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
PACKAGE = ROOT / "src" / "escli"
# Built, not written, so this file does not hold the markers it looks for.
MARKERS = re.compile("^(" + "<" * 7 + "|" + ">" * 7 + "|" + "=" * 7 + ")( |$)", re.MULTILINE)
TOP = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()} - {"__init__"}


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked sdist): every file here
        skip = {".venv", ".cache", ".git", ".hypothesis", "node_modules", "build", "dist"}
        return [p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]
    return [ROOT / name for name in out.decode().split("\0") if name]


def test_no_conflict_markers_in_the_tree() -> None:
    found = []
    for path in tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files
        for m in MARKERS.finditer(text):
            if m.group(1).startswith("=") and ("<" * 7) not in text:
                continue  # a lone ======= is a Markdown or reST underline, not a conflict
            found.append(f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}")
    assert not found, f"merge-conflict markers: {', '.join(found)}"


def layer_map_paths(text: str) -> list[str]:
    """The paths of the layer map (the indented tree under `## Layers`), e.g. `cli/app.py`, `es/wire.py`."""
    block = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    paths: list[str] = []
    stack: list[tuple[int, str]] = []  # (indent, directory)
    for line in block.splitlines():
        m = re.match(r"^( {4,})([A-Za-z0-9_./]+)(?=\s|$)", line)
        if m is None or not (m.group(2).endswith("/") or m.group(2).endswith(".py")):
            continue
        indent, name = len(m.group(1)), m.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if name == "src/escli/":
            stack = []
            continue
        path = "".join(d for _, d in stack) + name
        paths.append(path)
        if name.endswith("/"):
            stack.append((indent, name))
    return paths


def exists(path: str) -> bool:
    path = path.rstrip("/")
    return any((base / path).exists() for base in (PACKAGE, ROOT, ROOT / "src"))


def resolves(dotted: str) -> bool:
    """`escli.x.y`, `x.y.name` (x a part of escli) or `x/y.name`: a module, or an attribute of one."""
    dotted = dotted.replace("/", ".")
    if not dotted.startswith("escli."):
        dotted = "escli." + dotted
    parts = dotted.split(".")
    for cut in range(len(parts), 1, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_every_module_path_in_the_architecture_doc_exists() -> None:
    text = DOC.read_text()
    named = set(layer_map_paths(text))
    named |= set(re.findall(r"\bsrc/escli/[A-Za-z0-9_/]+\.py\b", text))
    named |= {m for m in re.findall(r"(?<![\w./-])((?:[a-z_][a-z0-9_]*/)+[a-z_][a-z0-9_]*\.py)\b", text)}
    missing = sorted(p for p in named if not exists(p))
    assert not missing, f"docs/ARCHITECTURE.md names modules that do not exist: {', '.join(missing)}"
    assert len(named) > 60  # the layer map was read


def test_every_dotted_name_in_the_architecture_doc_exists() -> None:
    text = DOC.read_text()
    names = set(re.findall(r"(?<![\w.])escli(?:\.[A-Za-z_][A-Za-z0-9_]*)+", text))
    for code in re.findall(r"`([^`]+)`", text):
        head = code.split("(", 1)[0].strip()
        m = re.fullmatch(r"((?:[a-z_][a-z0-9_]*[./])+[A-Za-z_][A-Za-z0-9_]*)", head)
        if m and head.replace("/", ".").split(".")[0] in TOP and not head.endswith((".py", ".md", ".json")):
            names.add(head)
    missing = sorted(n for n in names if not resolves(n))
    assert not missing, f"docs/ARCHITECTURE.md names what does not exist: {', '.join(missing)}"
    assert len(names) > 10


def test_every_module_is_on_the_map() -> None:
    text = DOC.read_text()
    named = set(layer_map_paths(text)) | set(re.findall(r"\b((?:[a-z_]+/)*[a-z_]+\.py)\b", text))
    modules = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}
    left_out = sorted(m for m in modules if m not in named and f"escli/{m}" not in text)
    assert not left_out, f"docs/ARCHITECTURE.md leaves out: {', '.join(left_out)}"
