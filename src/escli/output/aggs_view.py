"""Aggregation results as rows (NDJSON, CSV) and as tables with bars (a terminal).

Rows, one per bucket or statistic, in the order Elasticsearch gave them:
    bucket aggregations (terms, histogram, date_histogram, range, filters, ...): {"agg", "key", "count"} plus the
        value of each single-value sub-aggregation (`avg_price`: 12.5); `key` is `key_as_string` when there is one
        (dates), so a person and a CSV read the same key;
    metric aggregations: {"agg", "key", "value"}, one row per statistic (stats: count, min, max, avg, sum) or
        percentile ("50.0", "99.0"), `key` "value" for a single-value metric (avg, cardinality...);
    single-bucket aggregations (filter, global, nested): {"agg", "count"}.
A bucket aggregation inside another is named by its path (`brands>cats`, Elasticsearch's buckets-path syntax),
and its rows carry `parent`, the enclosing bucket's key (keys joined with > when deeper).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

BAR_WIDTH = 30
_EIGHTHS = " ▏▎▍▌▋▊▉"
BASE_COLUMNS = ("agg", "key", "parent", "count", "value")


def _bucket_items(buckets: Any) -> Iterator[tuple[Any, Mapping[str, Any]]]:
    if isinstance(buckets, Mapping):  # keyed buckets (filters, keyed ranges)
        for key, bucket in buckets.items():
            if isinstance(bucket, Mapping):
                yield key, bucket
    elif isinstance(buckets, list):
        for bucket in buckets:
            if isinstance(bucket, Mapping):
                yield bucket.get("key_as_string", bucket.get("key")), bucket


def _is_single_value(result: Mapping[str, Any]) -> bool:
    return "value" in result and "buckets" not in result


def _metric_rows(path: str, result: Mapping[str, Any]) -> Iterator[tuple[Any, Any]]:
    """(key, value) pairs of a metric aggregation."""
    values = result.get("values")
    if isinstance(values, Mapping):  # percentiles, keyed
        for key, value in values.items():
            if not str(key).endswith("_as_string"):
                yield key, value
        return
    if isinstance(values, list):  # percentiles with keyed: false
        for item in values:
            if isinstance(item, Mapping):
                yield item.get("key"), item.get("value")
        return
    if "value" in result:
        yield "value", result["value"]
        return
    for key, value in result.items():  # stats, extended_stats: every number it has
        if key != "meta" and not key.endswith("_as_string") and (
                value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))):
            yield key, value


def agg_rows(aggregations: Mapping[str, Any], prefix: str = "", parent: str | None = None
             ) -> Iterator[dict[str, Any]]:
    """Every row of a response's `aggregations` (see the module doc), nested aggregations after their bucket."""
    for name, result in aggregations.items():
        if not isinstance(result, Mapping):
            continue
        path = f"{prefix}>{name}" if prefix else str(name)
        where = {"parent": parent} if parent is not None else {}
        subs = {k: v for k, v in result.items() if isinstance(v, Mapping) and k not in ("buckets", "meta", "values")}
        if "buckets" in result:
            for key, bucket in _bucket_items(result["buckets"]):
                inner = {k: v for k, v in bucket.items() if isinstance(v, Mapping)}
                row: dict[str, Any] = {"agg": path, "key": key, **where, "count": bucket.get("doc_count")}
                row.update({k: v.get("value") for k, v in inner.items() if _is_single_value(v)})
                yield row
                nested = {k: v for k, v in inner.items() if not _is_single_value(v)}
                if nested:
                    yield from agg_rows(nested, path, str(key) if parent is None else f"{parent}>{key}")
        elif "doc_count" in result:  # filter, global, nested, ...: one bucket, named by the aggregation
            yield {"agg": path, **where, "count": result["doc_count"]}
            if subs:
                yield from agg_rows(subs, path, parent)
        else:
            for key, value in _metric_rows(path, result):
                yield {"agg": path, "key": key, **where, "value": value}


def row_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """CSV columns: agg, key, parent (when any row has one), count, value, then sub-aggregation values."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    base = [c for c in BASE_COLUMNS if c in seen or c in ("agg", "key", "count", "value")]
    return base + [c for c in seen if c not in BASE_COLUMNS]


def bar(count: float, largest: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar proportional to count/largest, in eighths of a character."""
    if largest <= 0 or count <= 0:
        return ""
    eighths = max(1, round(count / largest * width * 8))
    return "█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")


def number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4g}"


def _key(key: Any) -> str:
    """A bucket key for a person: numbers as numbers (a histogram's 100.0 is 100), text as it is."""
    if key is None:
        return ""
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return str(key)


def _others(aggregations: Mapping[str, Any]) -> dict[str, str]:
    """Captions for top-level terms aggregations: documents in keys not shown, and the count error bound."""
    notes: dict[str, str] = {}
    for name, result in aggregations.items():
        if isinstance(result, Mapping) and isinstance(result.get("buckets"), list):
            other = result.get("sum_other_doc_count")
            if other:
                notes[str(name)] = f"{number(other)} more documents in other keys"
    return notes


def render_aggs(aggregations: Mapping[str, Any], color: bool = False) -> str:
    """One rich table per aggregation: buckets with counts and a bar, statistics as rows."""
    from rich.table import Table
    from rich.text import Text

    from escli.output.tables import render

    rows = list(agg_rows(aggregations))
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["agg"], []).append(row)
    captions = _others(aggregations)
    tables = []
    for path, group in groups.items():
        table = Table(title=path, caption=captions.get(path), title_justify="left", show_lines=False)
        has_parent = any("parent" in r for r in group)
        if has_parent:
            table.add_column("parent", overflow="fold")
        if any("count" in r for r in group):
            extra = [c for c in row_columns(group) if c not in BASE_COLUMNS]
            largest = max((r.get("count") or 0 for r in group), default=0)
            table.add_column("key", overflow="fold")
            table.add_column("count", justify="right")
            table.add_column("", no_wrap=True, min_width=BAR_WIDTH)
            for c in extra:
                table.add_column(c, justify="right")
            for r in group:
                cells = [Text(str(r.get("parent", "")))] if has_parent else []
                cells += [Text(_key(r.get("key"))), Text(number(r.get("count"))),
                          Text(bar(r.get("count") or 0, largest), style="cyan" if color else "")]
                cells += [Text(number(r.get(c))) for c in extra]
                table.add_row(*cells)
        else:
            table.add_column("statistic")
            table.add_column("value", justify="right")
            for r in group:
                table.add_row(*([Text(str(r.get("parent", "")))] if has_parent else []),
                              Text(str(r.get("key"))), Text(number(r.get("value"))))
        tables.append(table)
    return render(*tables, color=color) if tables else ""
