"""cli/app._exit_now: the console script's exit without interpreter teardown, taken only when nothing is left."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _run(code: str, *, unbuffered: bool) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1" if unbuffered else ""}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)


def test_exits_at_once_running_atexit_and_flushing() -> None:
    code = ("import atexit, sys\nfrom escli.cli.app import _exit_now\n"
            "atexit.register(lambda: print('atexit ran'))\nprint('out', end=' ')\n_exit_now(3)\nprint('returned')")
    for unbuffered in (True, False):
        p = _run(code, unbuffered=unbuffered)
        assert (p.returncode, p.stdout) == (3, "out atexit ran\n"), p.stderr


def test_keeps_the_usual_exit_when_a_file_or_a_thread_is_left(tmp_path: Path) -> None:
    left_open = (f"from escli.cli.app import _exit_now\nf = open({str(tmp_path / 'f')!r}, 'w')\nf.write('kept')\n"
                 "_exit_now(3)\nprint('returned')")
    p = _run(left_open, unbuffered=False)
    assert (p.returncode, p.stdout) == (0, "returned\n") and (tmp_path / "f").read_text() == "kept"
    thread = ("import threading\nfrom escli.cli.app import _exit_now\nstop = threading.Event()\n"
              "t = threading.Thread(target=stop.wait)\nt.start()\n_exit_now(3)\nprint('returned')\nstop.set()")
    p = _run(thread, unbuffered=False)
    assert (p.returncode, p.stdout) == (0, "returned\n")
