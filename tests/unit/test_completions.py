"""The committed completion scripts match what the app generates now, and completion itself works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from escli.cli.completion_scripts import FILES, script

ROOT = Path(__file__).resolve().parents[2]


def test_committed_scripts_are_current() -> None:
    for shell, name in FILES.items():
        assert (ROOT / "completions" / name).read_text() == script(shell), f"run scripts/completions.sh ({name})"


def test_bash_completion_lists_commands_without_importing_the_client() -> None:
    exe = str(Path(sys.executable).parent / "escli")
    env = {**os.environ, "_ESCLI_COMPLETE_LINE": "escli ex", "_ESCLI_COMPLETE": "bash"}
    out = subprocess.run([exe], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0
    assert out.stdout.split() == ["export"]
    assert out.stderr == ""


def test_show_completion_prints_a_shipped_script() -> None:
    exe = str(Path(sys.executable).parent / "escli")
    out = subprocess.run([exe, "--show-completion"], capture_output=True, text=True, check=False,
                         env={**os.environ, "SHELL": "/bin/bash"})
    assert out.returncode == 0, out.stderr
    assert out.stdout in {(ROOT / "completions" / name).read_text() for name in FILES.values()}
