"""The completion scripts: `python -m escli.cli.completion_scripts DIR` rewrites the committed ones (completions/).

Each script hands the command line up to the cursor to `escli` (`_ESCLI_COMPLETE=SHELL`, answered by
cli/complete.py) and shows what comes back; no answer means file names. stderr goes to /dev/null, so nothing but
candidates ever reaches the prompt. The wheel ships the same files as `escli/completions/` (pyproject's
force-include), and `--install-completion` copies the shipped file:
- zsh: `_escli` works both autoloaded from $fpath (it answers the very first Tab, which calls it before it has
  defined anything) and sourced; install puts it in ~/.zfunc and adds one fpath/compinit line to ~/.zshrc when no
  line names ~/.zfunc yet, never a global zstyle (the user's menu style is theirs);
- bash: ~/.local/share/bash-completion/completions/escli (loaded on demand by bash-completion) and a `source`
  line in ~/.bashrc for systems without it;
- fish: ~/.config/fish/completions/escli.fish (fish loads it by itself).
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

FILES = {"bash": "escli.bash", "zsh": "_escli", "fish": "escli.fish"}

BASH = r"""# escli completion for bash: source it, or install with `escli --install-completion bash`
_escli_completion() {
    local IFS=$'\n'
    COMPREPLY=( $(_ESCLI_COMPLETE=bash _ESCLI_COMPLETE_LINE="${COMP_LINE:0:COMP_POINT}" \
                  _ESCLI_COMPLETE_WORDBREAKS="$COMP_WORDBREAKS" "$1" 2>/dev/null) )
    return 0
}
complete -o default -F _escli_completion escli
"""

ZSH = r"""#compdef escli
# escli completion for zsh: put this file (named _escli) in a directory of $fpath before compinit runs, or
# source it after compinit; `escli --install-completion zsh` does the first.

_escli() {
  local -a candidates
  candidates=("${(@f)$(_ESCLI_COMPLETE=zsh _ESCLI_COMPLETE_LINE="${words[1,CURRENT-1]} ${PREFIX}" \
                       ${words[1]} 2>/dev/null)}")
  candidates=(${candidates:#})
  if (( ${#candidates} )); then
    _describe -t values escli candidates
  else
    _files
  fi
}

if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
  # autoloaded by compinit on the first Tab: this run only defined _escli, so answer that Tab too
  _escli "$@"
else
  compdef _escli escli
fi
"""

FISH = r"""# escli completion for fish: copy to ~/.config/fish/completions/ (`escli --install-completion fish`)
function __escli_complete
    set -l out (env _ESCLI_COMPLETE=fish _ESCLI_COMPLETE_LINE=(commandline -cp) escli 2>/dev/null)
    if test (count $out) -eq 0
        __fish_complete_path (commandline -ct)
    else
        printf '%s\n' $out
    end
end
complete --command escli --no-files --arguments '(__escli_complete)'
"""

TEMPLATES = {"bash": BASH, "zsh": ZSH, "fish": FISH}


def script(shell: str) -> str:
    """The completion script for a shell, as committed in completions/ and shipped in the wheel."""
    return TEMPLATES[shell]


def shipped(shell: str) -> str:
    """The script as installed with escli: the wheel's copy, else the checkout's completions/ (editable install)."""
    name = FILES[shell]
    packaged = resources.files("escli").joinpath("completions", name)
    if packaged.is_file():
        return packaged.read_text()
    checkout = Path(__file__).resolve().parents[3] / "completions" / name
    if checkout.is_file():
        return checkout.read_text()
    return script(shell)


def detect_shell(env: dict[str, str] | None = None) -> str | None:
    """The shell escli was started from (its parent process), else $SHELL's name."""
    env = dict(os.environ) if env is None else env
    try:
        import shellingham  # type: ignore[import-untyped]

        name = str(shellingham.detect_shell()[0])
    except Exception:
        name = Path(env.get("SHELL", "")).name
    return name if name in FILES else None


def _add_line(rc: Path, line: str, unless: str) -> None:
    text = rc.read_text() if rc.is_file() else ""
    if unless in text:
        return
    rc.parent.mkdir(parents=True, exist_ok=True)
    with rc.open("a") as fh:
        fh.write(("" if not text or text.endswith("\n") else "\n") + line + "\n")


def install_to(shell: str, home: Path | None = None, env: dict[str, str] | None = None) -> Path:
    """Install the shipped script for `shell` in the user's home; returns where it went."""
    home = Path.home() if home is None else home
    env = dict(os.environ) if env is None else env
    content = shipped(shell)
    if shell == "zsh":
        target = home / ".zfunc" / "_escli"
        zdot = Path(env["ZDOTDIR"]) if env.get("ZDOTDIR") else home
        _add_line(zdot / ".zshrc", "fpath+=(~/.zfunc); autoload -Uz compinit && compinit", unless=".zfunc")
    elif shell == "bash":
        data = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else home / ".local" / "share"
        target = data / "bash-completion" / "completions" / "escli"
        _add_line(home / ".bashrc", f"source '{target}'", unless=str(target))
    else:
        config = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
        target = config / "fish" / "completions" / "escli.fish"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    return target


def install_or_show(shell: str | None, *, install: bool) -> str:
    """What --install-completion / --show-completion print: where the script went, or the script."""
    from escli.errors import UsageError

    if shell is None:
        raise UsageError("cannot tell which shell this is (bash, zsh and fish are supported): set SHELL")
    if not install:
        return shipped(shell)
    return f"{shell} completion installed in {install_to(shell)}; it takes effect in a new shell\n"


def write_all(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for shell, name in FILES.items():
        (directory / name).write_text(script(shell))


if __name__ == "__main__":
    write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "completions"))
