"""Tab in real bash, zsh and fish (typed through tmux) with the committed scripts, against the live engine.

Each shell starts clean (its own HOME, no user rc files), loads completions/ the way a user would, and gets keys
sent into a tmux pane; the test reads the pane back. A name that only one candidate starts with is completed in
place on every shell, so the assertion is the command line itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from escli.cli.completion_scripts import FILES, install_to

ROOT = Path(__file__).resolve().parents[2]
COMPLETIONS = ROOT / "completions"
BIN = Path(sys.executable).parent
SHELLS = ("bash", "zsh", "fish")
PROMPT = "READY> "


class Pane:
    """One shell in a detached tmux session on a private server socket."""

    def __init__(self, shell: str, home: Path, env: dict[str, str]) -> None:
        if shutil.which("tmux") is None or shutil.which(shell) is None:
            pytest.fail(f"tmux and {shell} are needed (scripts/test-deps.sh installs them)", pytrace=False)
        self.socket = f"escli-complete-test-{uuid.uuid4().hex[:8]}"
        self.env = {**env, "HOME": str(home), "PATH": f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}", "TERM": "xterm"}
        command = {
            "bash": f"bash --noprofile --rcfile {home / '.bashrc'}",
            "zsh": "zsh",
            "fish": "fish",
        }[shell]
        self.tmux("new-session", "-d", "-x", "200", "-y", "50", command)
        self.socket_path = self.tmux("display-message", "-p", "#{socket_path}").strip()
        self.wait_for(PROMPT.strip())

    def tmux(self, *args: str) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, *args], env=self.env, capture_output=True, text=True,
                             check=True)
        return out.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p")

    def wait_for(self, text: str, deadline_s: float = 60) -> str:
        """Poll the pane until `text` shows (a failsafe deadline, not a performance limit)."""
        end = time.time() + deadline_s
        while True:
            screen = self.screen()
            if text in screen or time.time() > end:
                return screen
            time.sleep(0.1)

    def tab(self, typed: str, expect: str) -> str:
        """Type `typed`, press Tab, return the pane once `expect` shows (or the deadline passed)."""
        self.tmux("send-keys", "-l", typed)
        self.tmux("send-keys", "Tab")
        return self.wait_for(expect)

    def clear_line(self) -> None:
        """Drop the typed line and clear the screen, so the next expectation cannot match an old line."""
        self.tmux("send-keys", "C-c")
        end = time.time() + 60
        while self.screen().strip() != PROMPT.strip() and time.time() < end:
            # Again, both keys: a C-c that landed while a completion was still being shown only closed it (fish
            # keeps the line then), and C-l alone never drops a line.
            time.sleep(0.3)
            if self.screen().strip() != PROMPT.strip():
                self.tmux("send-keys", "C-c")
                self.tmux("send-keys", "C-l")
        assert self.screen().strip() == PROMPT.strip(), self.screen()

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], env=self.env, capture_output=True, check=False)
        Path(self.socket_path).unlink(missing_ok=True)  # the server leaves its socket file behind


def shell_home(shell: str, tmp_path: Path, env: dict[str, str], *, installed: bool = False) -> Path:
    """A HOME whose rc file loads the committed script (or what --install-completion put there)."""
    home = tmp_path / f"home-{shell}"
    home.mkdir()
    if shell == "bash":
        src = "" if installed else f"source {COMPLETIONS / FILES['bash']}\n"
        rc = home / ".bashrc"
        rc.write_text((rc.read_text() if rc.exists() else "") + src + f"PS1='{PROMPT}'\n")
    elif shell == "zsh":
        # the script autoloaded from $fpath by compinit, as a packaged completion is: the first Tab must answer
        fpath = "" if installed else f"fpath=({COMPLETIONS} $fpath)\nautoload -Uz compinit && compinit -u\n"
        (home / ".zshrc").write_text(fpath + f"PROMPT='{PROMPT}'\nunsetopt BEEP\n")
    else:
        conf = Path(env["XDG_CONFIG_HOME"]) / "fish" / "conf.d"
        conf.mkdir(parents=True)
        src = "" if installed else f"source {COMPLETIONS / FILES['fish']}\n"
        (conf / "escli-test.fish").write_text(
            src + f"set -g fish_greeting ''\nfunction fish_prompt; printf '{PROMPT}'; end\n"
            "set -g fish_autosuggestion_enabled 0\n")
    return home


@pytest.fixture(params=SHELLS)
def pane(request: pytest.FixtureRequest, tmp_path: Path, isolated_env: dict[str, str],
         sample_index: str) -> Iterator[Pane]:
    shell = str(request.param)
    config = Path(isolated_env["XDG_CONFIG_HOME"]) / "escli"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(f'[clusters.localtest]\nurl = "{isolated_env["ESCLI_URL"]}"\n')
    env = {**isolated_env, "ZDOTDIR": str(tmp_path / f"home-{shell}")}
    p = Pane(shell, shell_home(shell, tmp_path, env), env)
    try:
        yield p
    finally:
        p.close()


def test_tab_completes_commands_options_names_fields_and_choices(pane: Pane) -> None:
    # the very first Tab of a new shell (zsh autoloads _escli on it)
    assert "escli export" in pane.tab("escli ex", "escli export")
    pane.clear_line()
    assert "escli search products" in pane.tab("escli search produ", "escli search products")
    pane.clear_line()
    assert "--sort price" in pane.tab("escli search products laptop --sort pri", "--sort price")
    pane.clear_line()
    assert "--fields specs.ram_gb" in pane.tab("escli export products --fields specs.ra", "specs.ram_gb")
    pane.clear_line()
    assert "-c localtest" in pane.tab("escli -c localt", "-c localtest")
    pane.clear_line()
    assert "-F prometheus" in pane.tab("escli health -F prom", "-F prometheus")


@pytest.mark.parametrize("shell", SHELLS)
def test_install_completion_then_a_new_shell_completes(shell: str, tmp_path: Path, isolated_env: dict[str, str],
                                                       sample_index: str) -> None:
    home = shell_home(shell, tmp_path, isolated_env, installed=True)
    env = {**isolated_env, "HOME": str(home), "SHELL": f"/bin/{shell}", "ZDOTDIR": str(home)}
    for _ in range(2):  # twice: the rc file gets its line once
        # from inside that shell, as a user would: escli asks which shell started it
        out = subprocess.run([shell, "-c", "escli --install-completion; true"],
                             env={**env, "PATH": f"{BIN}:{env['PATH']}"}, capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stderr
        assert f"{shell} completion installed in" in out.stdout
    if shell == "zsh":
        zshrc = (home / ".zshrc").read_text()
        assert "zstyle" not in zshrc  # the user's menu style stays theirs
        assert zshrc.count(".zfunc") == 1
        assert (home / ".zfunc" / "_escli").read_text() == (COMPLETIONS / "_escli").read_text()
        # compinit must run after PROMPT is set up in this test's rc; the installed line comes last
    if shell == "bash":
        assert (home / ".bashrc").read_text().count("bash-completion/completions/escli") == 1
    p = Pane(shell, home, env)
    try:
        assert "escli search products" in p.tab("escli search produ", "escli search products")
    finally:
        p.close()


def test_install_to_writes_the_shipped_file(tmp_path: Path) -> None:
    for shell, name in FILES.items():
        assert install_to(shell, tmp_path, {}).read_text() == (COMPLETIONS / name).read_text()
    assert not os.path.exists(tmp_path / ".zshrc") or "zstyle" not in (tmp_path / ".zshrc").read_text()
