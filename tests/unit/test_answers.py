"""es/answers.py's one check of what came back, on answers as bytes (pure functions)."""

from __future__ import annotations

import pytest

from escli.errors import BadAnswerError, ExitCode, exit_code_for
from escli.es.answers import BULK, SEARCH, check, parsed, problem

URL = "http://h:9200/products/_search"
SEARCH_ANSWER = b'{"took":2,"timed_out":false,"hits":{"total":{"value":0,"relation":"eq"},"hits":[]}}'


@pytest.mark.parametrize(("status", "body", "kind", "said"), [
    (200, b"<!DOCTYPE html><html><head><title>Welcome to nginx!</title>", "not_json",
     "answered HTML ('Welcome to nginx!'), not JSON: is this Elasticsearch?"),
    (200, b"  <html><body>hi</body></html>", "not_json", "answered HTML, not JSON: is this Elasticsearch?"),
    (200, b"<?xml version='1.0'?><a/>", "not_json", "answered XML or HTML, not JSON"),
    (200, b"", "not_json", "answered an empty body, not a search answer"),
    (200, b"[1, 2]", "wrong_shape", "answered a JSON array, not a search answer"),
    (200, b'"hello"', "wrong_shape", "answered a JSON string, not a search answer"),
    (200, b"42", "wrong_shape", "answered a JSON number, not a search answer"),
    (200, b"null", "wrong_shape", "answered JSON null, not a search answer"),
    (200, b"Welcome!", "not_json", "answered text, not JSON"),
    (200, b"{}", "wrong_shape", 'answered {} without "hits": not a search answer'),
    (200, b'{"status": 200}', "wrong_shape", 'answered a JSON object without "hits"'),
    (302, b"", "redirect", "answered 302, a redirect to http://other:1/x: not followed"),
])
def test_what_came_back_is_said_in_one_line(status: int, body: bytes, kind: str, said: str) -> None:
    err = problem(status, body, URL, SEARCH, "http://other:1/x")
    assert isinstance(err, BadAnswerError) and err.kind == kind
    assert str(err).startswith(f"{URL} {said}"), str(err)
    assert "\n" not in str(err) and exit_code_for(err) is ExitCode.UNREACHABLE and not err.retryable
    with pytest.raises(BadAnswerError) as parsed_err:  # the parsing check says the same
        parsed(status, body, URL, SEARCH, "http://other:1/x")
    assert parsed_err.value.kind == kind


def test_the_first_bytes_are_a_note_for_debug_only() -> None:
    err = problem(200, b"<html>" + b"x" * 1000, URL, SEARCH)
    assert err is not None and "<html>" not in str(err)
    assert err.__notes__ == [f"the answer's first bytes: {(b'<html>' + b'x' * 294)!r}"]


def test_answers_that_are_what_the_call_needs_pass() -> None:
    assert problem(200, SEARCH_ANSWER, URL, SEARCH) is None
    assert problem(200, b'\n {"took":1,"hits":{}}', URL, SEARCH) is None
    assert problem(200, b'{"aggregations":{}}', URL, SEARCH, filtered=True) is None  # a filter_path may drop hits
    assert problem(404, b"<html>", URL, SEARCH) is None  # an error status is the error map's business
    assert parsed(200, SEARCH_ANSWER, URL, SEARCH)["took"] == 2
    assert parsed(200, b"[1]", URL, None) == [1]  # any JSON (a _cat list)
    check(200, b'{"took":1,"errors":false,"items":[]}', URL, BULK)


def test_broken_json_that_looks_like_an_object_is_caught_by_the_parse() -> None:
    body = b'{"hits": {"hits": [ ...'
    assert problem(200, body, URL, SEARCH) is None  # the cheap check cannot tell
    with pytest.raises(BadAnswerError, match="answered broken JSON, not a search answer"):
        parsed(200, body, URL, SEARCH)
