"""Every key of config.toml, its type and range, checked once when the file is read.

A bad value is one UsageError line that names the file, the table and the key
(`config.toml: [clusters.prod] timeout: "abc" is not a number of seconds`), exit 2; an unknown key is a warning
that names the closest known key (a typo such as `api_key_evn` would otherwise be ignored without a word).
`check_config` gives back the file's tables with values in their final types (a `timeout = "30s"` as 30.0), so
settings.resolve reads them without converting again.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from escli.errors import UsageError
from escli.strategies import STRATEGIES, STRATEGY_CHOICES

Check = Callable[[Any], Any]  # the value in its final type, or ValueError with the reason (after the key)


def _show(value: Any) -> str:
    """A value as it is written in TOML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        import json

        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{_show(value)} is not a non-empty string")
    return value


def _bool(value: Any) -> bool:
    # TOML has true and false; a string "no" taken as true would turn TLS verification on or off by surprise
    if not isinstance(value, bool):
        raise ValueError(f"{_show(value)} is not true or false (no quotes)")
    return value


def _urls(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(u, str) and u.strip() for u in items):
        raise ValueError(f'{_show(value)} is not a URL or a list of URLs, e.g. ["https://es1:9200"]')
    return [u.strip() for u in items]


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"{_show(value)} is not {what}")
    return float(value)


def _seconds(value: Any) -> float:
    """A number of seconds (30, 2.5) or a duration ("30s", "500ms", "2m"), more than 0 and finite."""
    what = "a number of seconds"
    if isinstance(value, str):
        from escli.durations import parse_duration

        try:
            return parse_duration(value, "")
        except UsageError:
            raise ValueError(f"{_show(value)} is not {what} (or a duration such as 30s or 500ms)") from None
    seconds = _number(value, what)
    if not 0 < seconds < math.inf:
        raise ValueError(f"{_show(value)} must be more than 0 seconds and finite")
    return seconds


def _positive(zero_ok: bool = False) -> Check:
    def check(value: Any) -> float:
        number = _number(value, "a number")
        if not (number >= 0 if zero_ok else number > 0) or number == math.inf:
            raise ValueError(f"{_show(value)} must be {'0 or more' if zero_ok else 'more than 0'} and finite")
        return number

    return check


def _whole(low: int) -> Check:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{_show(value)} is not a whole number")
        if value < low:
            raise ValueError(f"{_show(value)} must be {low} or more")
        return value

    return check


def _strategy(value: Any) -> str:
    if value not in STRATEGIES:
        raise ValueError(f"{_show(value)} is not a strategy ({STRATEGY_CHOICES})")
    return str(value)


def _names(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(n, str) and n for n in value):
        raise ValueError(f'{_show(value)} is not a list of cluster names, e.g. ["a", "b"]')
    return list(value)


def _inline_secret(key: str) -> Check:
    def check(value: Any) -> Any:
        raise ValueError(f"must come from {key}_env or {key}_file, not inline")

    return check


CLUSTER_KEYS: dict[str, Check] = {
    "url": _urls, "urls": _urls, "default": _bool, "cloud_id": _text, "username": _text,
    "api_key_env": _text, "api_key_file": _text, "api_key": _inline_secret("api_key"),
    "password_env": _text, "password_file": _text, "password": _inline_secret("password"),
    "ca_certs": _text, "verify": _bool, "sniff": _bool,
    "timeout": _seconds, "max_retries": _whole(0), "connections": _whole(1), "weight": _positive(),
    "max_answer_mb": _positive(),
}
GROUP_KEYS: dict[str, Check] = {"clusters": _names, "strategy": _strategy}
CACHE_KEYS: dict[str, Check] = {
    "ttl": _seconds, "size_limit_mb": _positive(), "memory_mb": _positive(zero_ok=True), "timeout_ms": _positive(),
    "url": _text, "ca_certs": _text, "password_env": _text, "password_file": _text,
    "password": _inline_secret("password"),
}
TOP_KEYS = ("clusters", "groups", "cache")


def _unknown(where: str, key: str, known: Any, warn: Callable[[str], None] | None) -> None:
    if warn is None:
        return
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(sorted(known))})"
    warn(f"{where} {key}: not a key escli knows, ignored{hint}")


def _table(raw: Any, keys: Mapping[str, Check], where: str, warn: Callable[[str], None] | None) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: must be a table, not {_show(raw)}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        check = keys.get(key)
        if check is None:
            _unknown(where, key, keys, warn)
            continue
        try:
            out[key] = check(value)
        except ValueError as exc:
            raise UsageError(f"{where} {key}: {exc}") from None
    return out


def check_config(raw: Mapping[str, Any], path: Path, warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The checked config: {"clusters": {NAME: {...}}, "groups": {NAME: {...}}, "cache": {...}}, keys present only."""
    out: dict[str, Any] = {}
    for top, value in raw.items():
        if top not in TOP_KEYS:
            _unknown(f"{path}:", top, TOP_KEYS, warn)
            continue
        if not isinstance(value, dict):
            raise UsageError(f"{path}: [{top}] must be a table, not {_show(value)}")
        if top == "cache":
            out["cache"] = _table(value, CACHE_KEYS, f"{path}: [cache]", warn)
            continue
        keys = CLUSTER_KEYS if top == "clusters" else GROUP_KEYS
        out[top] = {str(name): _table(table, keys, f"{path}: [{top}.{name}]", warn) for name, table in value.items()}
    return out
