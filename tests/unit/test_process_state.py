"""A command run in-process leaves the process as it found it (warnings hook, gc thresholds)."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable
from typing import Any


def test_warnings_hook_and_gc_thresholds_are_restored(cli: Callable[..., Any]) -> None:
    before_hook, before_gc = warnings.showwarning, gc.get_threshold()
    r = cli("export", "products", "--slices", "nope")  # fails on its options, after the hooks were set
    assert r.code == 2
    r = cli("--version")
    assert r.code == 0
    assert warnings.showwarning is before_hook and gc.get_threshold() == before_gc
