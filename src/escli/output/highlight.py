"""Highlighted fragments (`highlight` in a search hit): where the match is, as segments, or as plain text.

Elasticsearch marks each match with the body's `pre_tags`/`post_tags` (`<em>`/`</em>` unless the body says
otherwise). The table shows the segments with the match emphasised; every other format gets plain text with the
tags removed, never a `**word**` stand-in, so a pipe receives the document's own words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

FRAGMENT_SEPARATOR = " … "
Segments = tuple[tuple[str, bool], ...]


def highlight_tags(body: Mapping[str, Any]) -> tuple[str, str]:
    """The (pre, post) tags the search asked for, or Elasticsearch's default `<em>`, `</em>`."""
    hl = body.get("highlight")
    pre, post = "<em>", "</em>"
    if isinstance(hl, Mapping):
        pres, posts = hl.get("pre_tags"), hl.get("post_tags")
        if isinstance(pres, list) and pres and isinstance(pres[0], str) and pres[0]:
            pre = pres[0]
        if isinstance(posts, list) and posts and isinstance(posts[0], str) and posts[0]:
            post = posts[0]
        if hl.get("tags_schema") == "styled":
            pre = '<em class="hlt1">'
    return pre, post


def segments(fragments: Sequence[str] | str, tags: tuple[str, str]) -> Segments:
    """Fragments (joined with ` … `) as (text, emphasised) pieces; a tag left open emphasises to the end."""
    pre, post = tags
    parts: list[tuple[str, bool]] = []
    items = [fragments] if isinstance(fragments, str) else list(fragments)
    for n, fragment in enumerate(items):
        if n:
            parts.append((FRAGMENT_SEPARATOR, False))
        rest = str(fragment)
        while rest:
            start = rest.find(pre)
            if start < 0:
                parts.append((rest, False))
                break
            if start:
                parts.append((rest[:start], False))
            rest = rest[start + len(pre):]
            end = rest.find(post)
            word, rest = (rest, "") if end < 0 else (rest[:end], rest[end + len(post):])
            if word:
                parts.append((word, True))
    return tuple(parts)


def plain(fragments: Sequence[str] | str, tags: tuple[str, str]) -> str:
    return "".join(text for text, _ in segments(fragments, tags))


def plain_highlight(highlight: Mapping[str, Any], tags: tuple[str, str]) -> dict[str, Any]:
    """A hit's `highlight` object with the tags removed from every fragment (same shape: field -> [fragments])."""
    return {name: [plain(f, tags) for f in frags] if isinstance(frags, list) else plain(str(frags), tags)
            for name, frags in highlight.items()}
