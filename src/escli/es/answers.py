"""The one error map: an answer's status and body, or a failed connection, to escli's errors and their one line.

Words are product-neutral unless the answer says who sent it: "Elasticsearch refused the request" only when the
answer carries `X-Elastic-Product: Elasticsearch`, "OpenSearch refused the request" when it carries OpenSearch
3.x's `X-OpenSearch-Version: OpenSearch/...`, "the server refused the request" otherwise (OpenSearch 2.x, a
proxy, a load balancer).

Whatever answers is checked here before it is used, by one function per depth: `check` (no parsing: a redirect,
a body that is not a JSON object, an object without the field the call needs; cheap enough for every page and
every profile request) and `parsed` (the same, then the JSON read and its shape checked). What fails is a
BadAnswerError: one line naming the URL and what came back ("http://h:9200/products/_search answered HTML, not
JSON: is this Elasticsearch?"), exit 3, a `kind` for counts (not_json, wrong_shape, redirect, too_large,
broken_answer), and the answer's first bytes as a note that only --debug's traceback shows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from escli.errors import STATUS_HINTS, BadAnswerError, RefusedError, UnreachableError, error_summary


def who(headers: Mapping[str, str] | None) -> str:
    """Who refused: the product when the answer names it, else the server."""
    if (headers or {}).get("x-elastic-product", "").lower() == "elasticsearch":
        return "Elasticsearch"
    if (headers or {}).get("x-opensearch-version", "").lower().startswith("opensearch/"):
        return "OpenSearch"
    return "the server"


def refused(status: int, raw: bytes, headers: Mapping[str, str] | None = None) -> RefusedError:
    try:
        body: Any = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = raw.decode("utf-8", "replace").strip()[:500] or None
    etype, reason = error_summary(status, body)
    hint = STATUS_HINTS.get(status, "")
    return RefusedError(f"{who(headers)} refused the request ({status} {etype}): {reason}{hint}", status, body,
                        (headers or {}).get("retry-after"))


def unreachable(where: str, reason: str, *, timed_out: bool = False) -> UnreachableError:
    what = "no answer within the timeout" if timed_out else "cluster unreachable"
    return UnreachableError(f"{what}: {where}: {reason}", timed_out=timed_out)


def connection_reason(exc: BaseException) -> str:
    """The one line that says why a connection failed: the first line of the error, or its class."""
    if isinstance(exc, UnreachableError):
        text = str(exc)
        for prefix in ("cluster unreachable: ", "no answer within the timeout: "):
            text = text.removeprefix(prefix)
        return text
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__


# -- answers escli cannot use -------------------------------------------------------------------------------------

NOT_JSON, WRONG_SHAPE, REDIRECT, TOO_LARGE, BROKEN = "not_json", "wrong_shape", "redirect", "too_large", \
    "broken_answer"
BAD_KINDS = frozenset({NOT_JSON, WRONG_SHAPE, REDIRECT, TOO_LARGE, BROKEN})
_HINT = ": is this Elasticsearch?"
_TITLE = re.compile(rb"<title[^>]*>([^<]{1,80})", re.IGNORECASE)
_BLANK = b" \t\r\n"


@dataclass(frozen=True, slots=True)
class Need:
    """What a call needs from an answer: a JSON object with these fields (`what` names it in messages)."""

    what: str
    fields: tuple[str, ...] = ()
    keys: tuple[bytes, ...] = field(init=False)  # the fields as they appear in JSON, encoded once

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(f'"{f}"'.encode() for f in self.fields))


OBJECT = Need("a JSON object")
SEARCH = Need("a search answer", ("hits",))
MSEARCH = Need("an _msearch answer", ("responses",))
BULK = Need("a bulk answer", ("items",))
HEALTH = Need("a cluster health answer", ("status",))
COUNT = Need("a count answer", ("count",))
ANY_JSON = Need("JSON")


def bad(url: str, what: str, kind: str, body: bytes = b"") -> BadAnswerError:
    err = BadAnswerError(f"{url} answered {what}", kind)
    if body:
        err.add_note(f"the answer's first bytes: {body[:300]!r}")  # --debug prints notes with the traceback
    return err


def too_large(url: str, limit: int) -> BadAnswerError:
    from escli.settings import ENV_MAX_ANSWER_MB

    return bad(url, f"more than the answer bound of {limit / 2**20:g} MiB and was cut off (a bigger bound: "
                    f"max_answer_mb in the cluster's config, or {ENV_MAX_ANSWER_MB})", TOO_LARGE)


def broken(url: str, exc: BaseException) -> BadAnswerError:
    """An answer es/wire.py could not read as HTTP (its BrokenAnswer says what came back)."""
    return bad(url, f"{exc}{_HINT}", BROKEN)


def redirect(url: str, status: int, location: str | None) -> BadAnswerError:
    to = f" to {location}" if location else ""
    return bad(url, f"{status}, a redirect{to}: not followed (escli sends requests and credentials only to the "
                    f"URLs it is given; give the final URL instead)", REDIRECT)


def _not_json(url: str, body: bytes, need: Need) -> BadAnswerError:
    """What a body that is not the JSON object `need` asks for looks like, in a few words."""
    head = body[:4096].lstrip(_BLANK)
    if not head:
        return bad(url, f"an empty body, not {need.what}{_HINT}", NOT_JSON)
    low = head[:64].lower()
    if low.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in head.lower():
        m = _TITLE.search(head)
        title = f" ({m.group(1).decode('utf-8', 'replace').strip()!r})" if m else ""
        return bad(url, f"HTML{title}, not JSON{_HINT}", NOT_JSON, body)
    if low.startswith(b"<"):
        return bad(url, f"XML or HTML, not JSON{_HINT}", NOT_JSON, body)
    if head[:1] == b"[":
        return bad(url, f"a JSON array, not {need.what}{_HINT}", WRONG_SHAPE, body)
    if head[:1] == b"{":
        return bad(url, f"broken JSON, not {need.what}{_HINT}", NOT_JSON, body)
    try:
        value = orjson.loads(head) if len(body) <= 4096 else None
    except orjson.JSONDecodeError:
        value = None
    if value is not None or head in (b"null",):
        kind = {str: "a JSON string", bool: "a JSON boolean", int: "a JSON number", float: "a JSON number"}
        return bad(url, f"{kind.get(type(value), 'JSON null')}, not {need.what}{_HINT}", WRONG_SHAPE, body)
    return bad(url, f"text, not JSON{_HINT}", NOT_JSON, body)


def _missing(url: str, body: bytes, need: Need, field: str) -> BadAnswerError:
    shown = "{}" if body.strip(_BLANK) == b"{}" else "a JSON object"
    return bad(url, f"{shown} without \"{field}\": not {need.what}{_HINT}", WRONG_SHAPE, body)


def problem(status: int, body: bytes, url: str, need: Need, location: str | None = None,
            filtered: bool = False) -> BadAnswerError | None:
    """What is wrong with an answer of status < 400 before it is used, without parsing it: a redirect, a body
    that does not start as a JSON object, a field `need` names that does not occur (unless `filtered`: a
    filter_path may leave it out). A status of 400 or more is the error map's (`refused`), not this."""
    if 300 <= status < 400:
        return redirect(url, status, location)
    if status >= 400:
        return None
    if body[:1] != b"{" and body.lstrip(_BLANK)[:1] != b"{":  # the first test is the engine's answers
        return _not_json(url, body, need)
    if not filtered:
        for name, key in zip(need.fields, need.keys, strict=True):
            if key not in body:
                return _missing(url, body, need, name)
    return None


def check(status: int, body: bytes, url: str, need: Need, location: str | None = None,
          filtered: bool = False) -> None:
    """`problem`, raised."""
    err = problem(status, body, url, need, location, filtered)
    if err is not None:
        raise err


def parsed(status: int, body: bytes, url: str, need: Need | None, location: str | None = None) -> Any:
    """The answer's JSON, or the BadAnswerError that says what came back: with `need`, a JSON object holding
    the fields it names; None takes any JSON value (a `_cat` list)."""
    if 300 <= status < 400:
        raise redirect(url, status, location)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _not_json(url, body, need or ANY_JSON) from None
    if need is None:
        return data
    if not isinstance(data, dict):
        raise _not_json(url, body, need)
    for name in need.fields:
        if name not in data:
            raise _missing(url, body, need, name)
    return data
