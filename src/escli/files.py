"""The one way escli writes a file whole: private from its first byte, and never seen half-written.

Results, checkpoints, state files, memos and the manifest are 0600 (SPEC: files that hold results or state);
the Prometheus textfile is the one 0644 file (node_exporter, another user, reads it).
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE = 0o600


def require_parent(option: str, path: Path) -> None:
    """One line naming the option when a file to be written has no directory to go in (exit 2), checked before
    anything is asked of the cluster."""
    if not path.parent.is_dir():
        from escli.errors import UsageError

        raise UsageError(f"{option} {path}: directory {path.parent} does not exist")


def make_dirs(option: str, path: Path) -> None:
    """An output directory and its missing parents (`--out-dir nightly/$(date +%F)` on the first night), the last
    one 0700 as exports are private; one line naming the option when it cannot be made (exit 2)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        from escli.errors import UsageError

        raise UsageError(f"{option} {path}: cannot create it ({(exc.strerror or str(exc)).lower()})") from None


def write_private(path: Path, data: bytes, *, mode: int = PRIVATE, fsync: bool = False) -> None:
    """Write `data` to `path` atomically: a new temporary file beside it (created with `mode`, O_EXCL, so no
    earlier file's wider mode is inherited), optionally fsync'd, then renamed over `path`. Readers see the old
    file or the new one. The temporary name starts with a dot (collectors and globs skip it) and is removed if
    anything fails; the error is raised."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)  # the umask may have taken bits away at creation
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
