"""The curl command line of a request escli would send: `--curl` prints it and sends nothing.

Built from the pieces the transport sends: the Target's first endpoint, es/target.request_target for the path and
query string, the same content types. Every fixed part is quoted with shlex.quote. Secrets never appear:
authentication is written as the environment variables escli reads them from, inside double quotes, so the
shell that runs the command expands them and the printed text holds no value.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

import orjson

from escli.es.target import JSON, Target, index_path, request_target, target_for
from escli.settings import ENV_API_KEY, ENV_PASSWORD, ENV_USERNAME, Settings

OPENSEARCH = "opensearch"
PIT_PLACEHOLDER = "__escli_pit__"  # where a script's $pit goes inside a body


def auth_args(settings: Settings) -> list[str]:
    """curl's authentication options, as shell words: the variables' names only."""
    creds = settings.credentials
    if creds.api_key:
        return ["-H", f'"Authorization: ApiKey ${ENV_API_KEY}"']
    if creds.username:
        return ["-u", f'"${ENV_USERNAME}:${ENV_PASSWORD}"']
    return []


def auth_note(settings: Settings) -> list[str]:
    """A comment naming the variables the command needs (escli may have read them from a file or the config)."""
    creds = settings.credentials
    if creds.api_key:
        return [f"# needs {ENV_API_KEY} in the environment"]
    if creds.username:
        return [f"# needs {ENV_USERNAME} and {ENV_PASSWORD} in the environment"]
    return []


def _tls_args(target: Target) -> list[str]:
    args: list[str] = []
    if target.ca_certs:
        args += ["--cacert", shlex.quote(target.ca_certs)]
    if not target.verify:
        args.append("--insecure")
    return args


def _dq(text: str) -> str:
    """`text` inside double quotes, with what the shell would expand escaped."""
    return '"' + "".join("\\" + c if c in '\\"$`' else c for c in text) + '"'


def _body_word(body: bytes) -> str:
    """The --data-binary word: single-quoted, or double-quoted with `$pit` where the placeholder is."""
    text = body.decode("utf-8")
    if PIT_PLACEHOLDER not in text:
        return shlex.quote(text)
    return '"' + '"$pit"'.join(_dq(part)[1:-1] for part in text.split(PIT_PLACEHOLDER)) + '"'


def curl_command(settings: Settings, method: str, path: str, *, params: Mapping[str, str] | None = None,
                 body: bytes | None = None, content_type: str = JSON) -> str:
    """One curl command line for `method path?params` with `body`, to the first node escli would ask."""
    target = target_for(settings)
    url = target.endpoints[0].url + request_target(path, params)
    words = ["curl", "-sS", "-X", method, shlex.quote(url), *_tls_args(target), *auth_args(settings)]
    if body is not None:
        words += ["-H", shlex.quote(f"Content-Type: {content_type}"), "--data-binary", _body_word(body)]
    return " ".join(words)


def json_body(body: Any) -> bytes:
    return orjson.dumps(body)


def export_script(settings: Settings, product: str | None, index: str, search_body: Mapping[str, Any],
                  sort: list[Any], page_size: int, keep_alive: str) -> str:
    """An sh script for an export's requests: open a point in time, read the first page, close the point in time.

    The loop itself (search_after the last hit's sort until a page comes back short, slices, retries, the
    checkpoint) is what `escli export` is for; a comment says how to continue by hand. The PIT id is read with
    sed, so the script needs nothing but a POSIX shell and curl."""
    close_body: dict[str, Any]
    if product == OPENSEARCH:
        open_path, id_key = index_path(index, "_search/point_in_time"), "pit_id"
        close_path, close_body = "/_search/point_in_time", {"pit_id": [PIT_PLACEHOLDER]}
    else:
        open_path, id_key = index_path(index, "_pit"), "id"
        close_path, close_body = "/_pit", {"id": PIT_PLACEHOLDER}
    page = {**search_body, "size": page_size, "sort": sort, "track_total_hits": False,
            "pit": {"id": PIT_PLACEHOLDER, "keep_alive": keep_alive}}
    opener = curl_command(settings, "POST", open_path, params={"keep_alive": keep_alive})
    grab = shlex.quote(f's/.*"{id_key}":"\\([^"]*\\)".*/\\1/p')
    return "\n".join([
        f"# escli export {index}: the point in time ({product or 'elasticsearch'}), the first page, the point in "
        "time closed.",
        "# Next pages: the same search with \"search_after\": the last hit's \"sort\", until a page has fewer hits",
        f"# than {page_size} (escli export runs that loop, with slices, retries and checkpoints).",
        *auth_note(settings),
        "set -e",
        f"pit=$({opener} | sed -n {grab})",
        curl_command(settings, "POST", "/_search", body=json_body(page)),
        "echo",
        curl_command(settings, "DELETE", close_path, body=json_body(close_body)) + " >/dev/null",
        "",
    ])
