"""Column types for CSV import: guessed from a sample, or read from a mapping, then one converter per column.

Pure functions only (no I/O): the sample decides a `Kind` per column, the kind gives the mapping and a converter
that is compiled once and called for every cell while the file streams. A converter raises ValueError for a value
that breaks the guess; the reader reports it as FILE:LINE and goes on.

The rules follow what users know from DuckDB's `read_csv_auto` and Elasticsearch's own text-structure finder:
integers -> long, other numbers -> double, true/false -> boolean, year-first dates -> date, short text with few
spaces (or values that repeat) -> keyword, anything else -> text with a `keyword` sub-field. Epoch numbers are
dates only when asked (`--types col=date_epoch`): on their own they are just numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from escli.text import is_digits

# --- the kinds a column can have -------------------------------------------------------------------------------

LONG, DOUBLE, BOOLEAN, DATE, DATE_EPOCH, DATE_EPOCH_MS = "long", "double", "boolean", "date", "date_epoch", \
    "date_epoch_ms"
KEYWORD, TEXT, JSON, STRING = "keyword", "text", "json", "string"
# STRING: a value kept as it is, mapping left to the engine (a column empty in the whole sample, or unmapped in an
# existing index). JSON: every sampled value is a JSON array or object (what `escli export` writes for arrays).

#: the names `--types` accepts (plus the date_* spellings, and "integer"/"float" etc. as engine aliases below)
TYPE_NAMES = (LONG, DOUBLE, BOOLEAN, DATE, DATE_EPOCH, DATE_EPOCH_MS, KEYWORD, TEXT, JSON, STRING)
_ALIASES = {"int": LONG, "integer": LONG, "short": LONG, "byte": LONG, "float": DOUBLE, "half_float": DOUBLE,
            "scaled_float": DOUBLE, "number": DOUBLE, "bool": BOOLEAN, "epoch": DATE_EPOCH,
            "epoch_second": DATE_EPOCH, "epoch_millis": DATE_EPOCH_MS, "date_epoch_millis": DATE_EPOCH_MS,
            "str": STRING, "object": JSON}

KEYWORD_MAX_CHARS = 256  # the engine's own dynamic-mapping ignore_above, and the text-structure finder's limit
KEYWORD_MAX_SPACES = 2   # more spaces than this reads as prose (the text-structure finder's rule)
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})

# Year-first dates only: 01/02/2013 is January or February depending on who wrote it, so it stays text.
# Each form is one regex for the per-value check and the engine's name for it in the mapping's `format`.
_TIME = r"[0-2][0-9]:[0-5][0-9](?::[0-6][0-9](?:[.,][0-9]{1,9})?)?"
_ZONE = r"(?:Z|[+-][0-2][0-9]:?[0-5][0-9])?"
DATE_FORMS: tuple[tuple[str, str], ...] = (
    # ISO 8601 as the engine's strict_date_optional_time reads it: 2013-01-01, 2013-01-01T05:00[:00[.123]][Z|+01:00]
    (r"[0-9]{4}-[01][0-9]-[0-3][0-9](?:T" + _TIME + _ZONE + ")?", "strict_date_optional_time"),
    (r"[0-9]{4}-[01][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9]", "yyyy-MM-dd HH:mm:ss"),
    (r"[0-9]{4}-[01][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9]\.[0-9]{3}", "yyyy-MM-dd HH:mm:ss.SSS"),
    (r"[0-9]{4}-[01][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]", "yyyy-MM-dd HH:mm"),
    (r"[0-9]{4}/[01][0-9]/[0-3][0-9]", "yyyy/MM/dd"),
    (r"[0-9]{4}/[01][0-9]/[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-6][0-9]", "yyyy/MM/dd HH:mm:ss"),
)
ISO_FORMAT = DATE_FORMS[0][1]
_DATE_RES = tuple((re.compile(rx), fmt) for rx, fmt in DATE_FORMS)


@dataclass(frozen=True, slots=True)
class ColumnType:
    """A column's kind, and for dates the engine formats its values use (`||`-joined in the mapping)."""

    kind: str
    formats: tuple[str, ...] = ()

    def mapping(self) -> dict[str, Any] | None:
        """The field mapping escli creates for this column (None: leave it to the engine)."""
        if self.kind in (LONG, DOUBLE, BOOLEAN, KEYWORD):
            return {"type": self.kind}
        if self.kind == TEXT:
            return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": KEYWORD_MAX_CHARS}}}
        if self.kind == DATE:
            # ISO always among the formats: the field's format also parses the dates written in searches
            formats = dict.fromkeys((*self.formats, ISO_FORMAT))
            return {"type": "date", "format": "||".join(formats)}
        # ISO as a second format, so that searches can say `when=gte:2013-01-01` (the values stay numbers)
        if self.kind == DATE_EPOCH:
            return {"type": "date", "format": "epoch_second||strict_date_optional_time"}
        if self.kind == DATE_EPOCH_MS:
            return {"type": "date", "format": "epoch_millis||strict_date_optional_time"}
        return None


# --- guessing from a sample ------------------------------------------------------------------------------------

def _is_long(v: str) -> bool:
    return _INT.fullmatch(v) is not None and LONG_MIN <= int(v) <= LONG_MAX


def _has_leading_zero(v: str) -> bool:
    digits = v.lstrip("+-")
    return len(digits) > 1 and digits[0] == "0"


def _date_forms(values: Sequence[str]) -> tuple[str, ...] | None:
    """The date formats that cover every value (in DATE_FORMS order), or None if one value is no date."""
    used: dict[str, None] = {}
    for v in values:
        for rx, fmt in _DATE_RES:
            if rx.fullmatch(v):
                used[fmt] = None
                break
        else:
            return None
    return tuple(fmt for _, fmt in DATE_FORMS if fmt in used)


def _is_json_container(v: str) -> bool:
    if v[:1] not in ("[", "{"):
        return False
    try:
        orjson.loads(v)
    except orjson.JSONDecodeError:
        return False
    return True


def infer(values: Sequence[str]) -> ColumnType:
    """The type of one column from its sampled non-null values (in file order)."""
    if not values:
        return ColumnType(STRING)
    sampled = len(values)
    values = list(dict.fromkeys(values))  # each distinct value checked once: most columns repeat a lot
    if all(is_digits(v) or _INT.fullmatch(v) for v in values):
        # Codes with leading zeros (ZIP codes, 007) and numbers too big for a long are identifiers, not numbers:
        # a long would drop the zeros and a double the last digits.
        if any(_has_leading_zero(v) for v in values) or not all(_is_long(v) for v in values):
            return ColumnType(KEYWORD)
        return ColumnType(LONG)
    if all(_FLOAT.fullmatch(v) for v in values):
        return ColumnType(DOUBLE)
    if all(v in _TRUE or v in _FALSE for v in values):
        return ColumnType(BOOLEAN)
    forms = _date_forms(values)
    if forms:
        return ColumnType(DATE, forms)
    if all(_is_json_container(v) for v in values):
        return ColumnType(JSON)
    if all(len(v) <= KEYWORD_MAX_CHARS for v in values):
        short = all(v.count(" ") <= KEYWORD_MAX_SPACES for v in values)
        repeated = len(values) * 2 <= sampled
        if short or repeated:
            return ColumnType(KEYWORD)
    return ColumnType(TEXT)


def parse_kind(name: str) -> ColumnType:
    """A `--types` value (`long`, `date`, `date_epoch`, `keyword`, ... or an engine alias such as `integer`)."""
    kind = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if kind not in TYPE_NAMES:
        raise ValueError(f"unknown type {name!r}; choose one of {', '.join(TYPE_NAMES)}")
    return ColumnType(kind, tuple(fmt for _, fmt in DATE_FORMS) if kind == DATE else ())


def parse_types(specs: Iterable[str]) -> dict[str, ColumnType]:
    """`--types a=long,b=keyword` (repeatable) -> {column: type}; ValueError names the bad item."""
    out: dict[str, ColumnType] = {}
    for spec in specs:
        for item in spec.split(","):
            if not item.strip():
                continue
            column, sep, kind = item.rpartition("=")
            if not sep or not column.strip():
                raise ValueError(f"{item!r}: expected COLUMN=TYPE")
            out[column.strip()] = parse_kind(kind)
    return out


# --- reading an existing mapping -------------------------------------------------------------------------------

_FROM_ENGINE = {"long": LONG, "integer": LONG, "short": LONG, "byte": LONG, "unsigned_long": LONG,
                "double": DOUBLE, "float": DOUBLE, "half_float": DOUBLE, "scaled_float": DOUBLE,
                "boolean": BOOLEAN, "keyword": KEYWORD, "constant_keyword": KEYWORD, "wildcard": KEYWORD,
                "text": TEXT, "match_only_text": TEXT, "ip": KEYWORD, "object": JSON, "nested": JSON,
                "flattened": JSON}


def mapped_field(properties: Mapping[str, Any], dotted: str) -> Mapping[str, Any] | None:
    """The mapping of `a.b.c` inside `properties` (through object fields), or None."""
    props: Any = properties
    spec: Any = None
    for part in dotted.split("."):
        if not isinstance(props, Mapping) or not isinstance(spec := props.get(part), Mapping):
            return None
        props = spec.get("properties")
    return spec if isinstance(spec, Mapping) else None


def from_mapping(spec: Mapping[str, Any] | None) -> ColumnType:
    """How to convert a column whose field the index already maps (no re-guessing)."""
    if spec is None:
        return ColumnType(STRING)
    ftype = spec.get("type", "object" if "properties" in spec else None)
    if ftype in ("date", "date_nanos"):
        fmt = str(spec.get("format", ""))
        if fmt.startswith("epoch_second"):
            return ColumnType(DATE_EPOCH)
        if fmt.startswith("epoch_millis"):
            return ColumnType(DATE_EPOCH_MS)
        return ColumnType(DATE, tuple(fmt.split("||")) if fmt else ())
    return ColumnType(_FROM_ENGINE.get(str(ftype), STRING))


# --- converters: compiled once per column, called for every cell -----------------------------------------------

Converter = Callable[[str], Any]


def _to_long(v: str, _match: Callable[[str], Any] = _INT.fullmatch) -> int:
    # Plain digits (most cells) take the fast test; anything else must have the shape, since int() alone would
    # take "1_000" and " 7 ". The regex costs about as much as int() itself, so it is kept off the common path.
    if is_digits(v) or _match(v) is not None:
        return int(v)
    raise ValueError(f"{v!r} is not a long")


def _to_double(v: str, _match: Callable[[str], Any] = _FLOAT.fullmatch) -> float:
    # float() alone would take "nan", "inf", "1_0" and " 1 "
    if not is_digits(v.replace(".", "", 1)) and _match(v) is None:
        raise ValueError(f"{v!r} is not a double")
    f = float(v)
    if f in (float("inf"), float("-inf")):
        raise ValueError(f"{v!r} is out of range for a double")
    return f


def _to_boolean(v: str) -> bool:
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(f"{v!r} is not a boolean (true/false)")


def _date_checker(formats: Sequence[str]) -> Converter:
    known = [rx for rx, fmt in DATE_FORMS if fmt in formats]
    if not known or len(known) < len(formats):
        # a format escli has no pattern for (a mapping someone wrote): the engine checks it, escli passes it on
        return _keep
    match = re.compile("|".join(f"(?:{rx})" for rx in known)).fullmatch

    def check(v: str) -> str:
        if match(v) is None:
            raise ValueError(f"{v!r} is not a date in the column's format ({'||'.join(formats)})")
        return v

    return check


def _to_epoch(v: str) -> int | float:
    if _INT.fullmatch(v):
        return int(v)
    if _FLOAT.fullmatch(v):
        return float(v)
    raise ValueError(f"{v!r} is not an epoch number")


def _keep(v: str) -> str:
    return v


def _json_or_text(v: str) -> Any:
    # today's CSV rule for string columns: a cell that is a JSON array or object (as export writes arrays) decodes
    if v[:1] in ("[", "{"):
        try:
            return orjson.loads(v)
        except orjson.JSONDecodeError:
            return v
    return v


def _json(v: str) -> Any:
    try:
        return orjson.loads(v)
    except orjson.JSONDecodeError:
        raise ValueError(f"{v[:40]!r} is not JSON") from None


def converter(ctype: ColumnType) -> Converter | None:
    """The function applied to every non-null cell of the column; None means the text is kept as it is."""
    kind = ctype.kind
    if kind == LONG:
        return _to_long
    if kind == DOUBLE:
        return _to_double
    if kind == BOOLEAN:
        return _to_boolean
    if kind == DATE:
        return _date_checker(ctype.formats)
    if kind in (DATE_EPOCH, DATE_EPOCH_MS):
        return _to_epoch
    if kind == JSON:
        return _json
    if kind == STRING:
        return _json_or_text
    return None  # keyword, text: the string as read


def is_typed(ctype: ColumnType) -> bool:
    """Numbers, booleans and dates: an empty cell in such a column can only mean "no value"."""
    return ctype.kind in (LONG, DOUBLE, BOOLEAN, DATE, DATE_EPOCH, DATE_EPOCH_MS)
