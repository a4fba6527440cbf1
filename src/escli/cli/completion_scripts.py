"""The committed completion scripts (completions/): `python -m escli.cli.completion_scripts DIR` rewrites them.

Typer's scripts call back into `escli` for the candidates, so they stay right as commands and options change;
a test checks the committed files still equal what this module makes.
"""

from __future__ import annotations

import sys
from pathlib import Path

FILES = {"bash": "escli.bash", "zsh": "_escli", "fish": "escli.fish"}


def script(shell: str) -> str:
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name="escli", complete_var="_ESCLI_COMPLETE", shell=shell).rstrip() + "\n"


def write_all(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for shell, name in FILES.items():
        (directory / name).write_text(script(shell))


if __name__ == "__main__":
    write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "completions"))
