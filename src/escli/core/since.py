"""`export --since FIELD --state FILE`: only what changed since the last completed run.

A run exports `last_mark < FIELD <= mark`. `mark` is the highest FIELD value inside the run's own point in time,
taken right after the PIT opens, so the mark and the export see the same documents; `last_mark` is the mark of
the last completed run (its state file) or `--since-value`. The state file is written (by the cli, atomically,
0600) only when the run completes, so an interrupted run is simply run again, and a run that finds nothing new
leaves it untouched.

Marks are exact integers inside: epoch milliseconds for `date`, epoch nanoseconds for `date_nanos`, the number
itself for numeric fields. They are taken from the top hit of a search sorted on FIELD (its raw sort value), not
from a `max` aggregation: that answers a double, which cuts `date_nanos` to milliseconds and rounds longs above
2^53 -- a mark below the true maximum would lose the documents between the two for good (the next run's window
starts above them). Dates go to the engine and into the state as ISO-8601 UTC strings
(`strict_date_optional_time_nanos` round-trips both units).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from escli.errors import UsageError
from escli.timestamps import format_date, parse_date

DATE_TYPES = {"date": 1_000_000, "date_nanos": 1}  # nanoseconds per unit of the field's raw sort value
NUMBER_TYPES = {"long", "integer", "short", "byte", "unsigned_long", "double", "float", "half_float",
                "scaled_float"}
DATE_FORMAT = "strict_date_optional_time_nanos||epoch_millis"
STATE_VERSION = 1

Mark = int | float


@dataclass
class Since:
    """The window of one run, as the cli hands it in and the exporter completes it (kind, mark, new)."""

    field: str
    last_mark: Mark | None = None
    lag_seconds: float | None = None
    since_value: Mark | str | None = None  # --since-value or the state's mark, parsed once the type is known
    since_from: str = "--since-value"  # where since_value came from, for messages
    kind: str | None = None  # the field's mapped type
    mark: Mark | None = None
    new: int = 0  # documents in the window (the whole query, not one partition's share)
    taken: bool = False  # the window is known (taken in this run's PIT, or restored from a checkpoint)
    seq_span: tuple[int, int] | None = None  # the window's lowest and highest _seq_no, when the mark search asked

    @property
    def is_date(self) -> bool:
        return self.kind in DATE_TYPES

    @property
    def nothing_new(self) -> bool:
        return self.taken and (self.mark is None or self.new == 0)

    def resolve(self, types: Mapping[str, set[str]]) -> None:
        """The field's type from the mapping (`core.columns.mapped_types`); then --since-value in its unit."""
        kinds = types.get(self.field)
        if not kinds:
            raise UsageError(f"--since {self.field}: not a field of the index mapping")
        if len(kinds) > 1:
            raise UsageError(f"--since {self.field}: mapped as {', '.join(sorted(kinds))} in different indices; "
                             "export them one at a time")
        kind = next(iter(kinds))
        if kind not in DATE_TYPES and kind not in NUMBER_TYPES:
            raise UsageError(f"--since {self.field}: a {kind} field; --since needs a date or a number that grows "
                             "with every write (e.g. updated_at)")
        if self.lag_seconds is not None and kind not in DATE_TYPES:
            raise UsageError(f"--lag: {self.field} is a {kind} field; --lag is for date fields")
        self.kind = kind
        if self.since_value is not None:
            self.last_mark = self.parse(self.since_value, self.since_from)

    # -- values ----------------------------------------------------------------------------------------------------
    def parse(self, value: Any, where: str) -> Mark:
        """A mark as given by a user or a state file: ISO-8601 or epoch millis for dates, a number otherwise."""
        if self.is_date:
            try:
                return parse_date(value, DATE_TYPES[str(self.kind)])
            except ValueError as exc:
                raise UsageError(f"{where} {value}: {exc}") from None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        try:
            return int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else float(text)
        except ValueError:
            raise UsageError(f"{where} {value}: {self.field} is a {self.kind} field; give a number") from None

    def show(self, value: Mark) -> Mark | str:
        """As the engine and the state file take it."""
        return format_date(int(value), DATE_TYPES[str(self.kind)]) if self.is_date else value

    # -- requests --------------------------------------------------------------------------------------------------
    def ceiling(self, now: float | None = None) -> int | None:
        """--lag: the newest value this run may take, in the field's unit."""
        if self.lag_seconds is None:
            return None
        at = (time.time() if now is None else now) - self.lag_seconds
        return int(at * 1_000) * 1_000_000 // DATE_TYPES[str(self.kind)]

    def range(self, upper: Mark | None) -> dict[str, Any]:
        bounds: dict[str, Any] = {}
        if self.last_mark is not None:
            bounds["gt"] = self.show(self.last_mark)
        if upper is not None:
            bounds["lte"] = self.show(upper)
        if self.is_date:
            bounds["format"] = DATE_FORMAT
        return {"range": {self.field: bounds}}

    def mark_body(self, query: dict[str, Any] | None, now: float | None = None, *, seq_span: bool = False
                  ) -> dict[str, Any]:
        """One search: the top FIELD value (its raw sort value is exact) and how many documents lie in the window
        up to the --lag ceiling (with `seq_span`, also their _seq_no span, for cutting a small window into units).
        The caller adds the PIT."""
        must = [q for q in (query,) if q]
        window: dict[str, Any] = {"filter": self.range(self.ceiling(now))}
        if seq_span:
            window["aggs"] = {"seq": {"stats": {"field": "_seq_no"}}}
        return {"size": 1, "_source": False, "track_total_hits": False,
                "query": {"bool": {"filter": [{"exists": {"field": self.field}}], "must": must}},
                "sort": [{self.field: {"order": "desc"}}], "aggs": {"window": window}}

    def take(self, answer: Mapping[str, Any], now: float | None = None) -> None:
        """mark = min(the top value, now - lag); nothing new when the window holds no document."""
        hits = (answer.get("hits") or {}).get("hits") or []
        top = (hits[0].get("sort") or [None])[0] if hits else None
        window = (answer.get("aggregations") or {}).get("window") or {}
        self.new = int(window.get("doc_count", 0))
        seq = window.get("seq") or {}
        if seq.get("count"):
            # an aggregation answers doubles: widened by their spacing, so that a _seq_no past 2^53 rounded either
            # way stays inside (the units only cut the window; a wider span takes in no other document)
            low, high = float(seq["min"]), float(seq["max"])
            self.seq_span = (max(0, math.floor(low - math.ulp(low))), math.ceil(high + math.ulp(high)))
        self.taken = True
        if top is None:
            self.mark = None
            return
        mark: Mark = top if self.kind not in DATE_TYPES else int(top)
        ceiling = self.ceiling(now)
        if ceiling is not None and mark > ceiling:
            mark = ceiling
        self.mark = mark
        if self.last_mark is not None and mark <= self.last_mark:
            self.new = 0

    def window(self) -> dict[str, Any] | None:
        """The query clause every unit adds: last_mark < FIELD <= mark."""
        return self.range(self.mark) if self.taken and self.mark is not None else None

    # -- checkpoint ------------------------------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "kind": self.kind, "last_mark": self.last_mark, "mark": self.mark,
                "new": self.new, "taken": self.taken, "lag_seconds": self.lag_seconds}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Since:
        return cls(field=str(d["field"]), kind=d.get("kind"), last_mark=d.get("last_mark"), mark=d.get("mark"),
                   new=int(d.get("new", 0)), taken=bool(d.get("taken")), lag_seconds=d.get("lag_seconds"))


# --- the state file -----------------------------------------------------------------------------------------------

def read_state(path: Path, since: Since, index: str, query: Any, partition: str | None) -> Mark | str | None:
    """The last completed run's mark (still in the state's own form), or None when there is no state yet. A state
    written for another index, field, query or partition is refused: its mark means nothing here."""
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise UsageError(f"--state {path}: not an escli export state ({exc})") from exc
    if not isinstance(data, dict) or "mark" not in data:
        raise UsageError(f"--state {path}: not an escli export state (no mark)")
    for key, want in (("index", index), ("field", since.field), ("query", query), ("partition", partition)):
        if data.get(key) != want:
            raise UsageError(f"--state {path}: written for {key} {orjson.dumps(data.get(key)).decode()}, not "
                             f"{orjson.dumps(want).decode()}; use one state file per export")
    mark = data["mark"]
    if mark is not None and not isinstance(mark, int | float | str):
        raise UsageError(f"--state {path}: its mark is not a date or a number")
    return mark


def state_bytes(since: Since, index: str, query: Any, partition: str | None, documents: int,
                version: str) -> bytes:
    assert since.mark is not None
    finished = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = {"version": STATE_VERSION, "index": index, "query": query, "partition": partition, "field": since.field,
            "type": since.kind, "mark": since.show(since.mark), "documents": documents, "finished_at": finished,
            "escli_version": version}
    return orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
