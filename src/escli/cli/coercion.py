"""Fast option coercion for Typer 0.29: plain conversions for the simple types escli uses, pydantic for the rest.

Typer 0.29 coerces every parameter, given or not, through a pydantic TypeAdapter built on first use. Importing
pydantic and building ~50 adapters costs more than importing typer itself, on every command, a cache hit
included. escli's options are str, bool, int, float (with min/max), Path and lists of those; this module converts
those directly, with click's messages ("'x' is not a valid integer.", "-1 is not in the range x>=0."), and hands
anything else (enums, files, custom parsers, clamping, Path checks) to Typer's own pydantic path unchanged.
`install()` is called once by escli.cli.app, through the hook in cli/typer_compat.py (the one module that touches
Typer's private parts); tests/unit/test_search_startup.py checks that the conversions agree with Typer's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

from typer import BadParameter

from escli.cli.typer_compat import RuntimeParam, TypeDescriptor, install_runtime_param
from escli.text import parse_float, parse_int

Convert = Callable[[Any], Any]
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off", ""}


@dataclass(frozen=True)
class FastRuntimeParam(RuntimeParam):
    convert: Convert

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        try:
            return self.convert(value)
        except (TypeError, ValueError) as exc:
            raise BadParameter(str(exc), ctx=ctx, param=param) from None


def _to_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a valid boolean.")


def _number(kind: type[Any], low: float | None, high: float | None) -> Convert:
    name = "integer" if kind is int else "float"
    if low is not None and high is not None:
        bounds = f"{low}<=x<={high}"
    elif low is not None:
        bounds = f"x>={low}"
    else:
        bounds = f"x<={high}"

    def convert(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a valid {name}.")
        try:
            # ASCII digits only (escli.text): int() and float() would take '٣', '1_000' and 'nan'
            number = (parse_int if kind is int else parse_float)(value) if isinstance(value, str) else kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not a valid {name}.") from None
        if (low is not None and number < low) or (high is not None and number > high):
            raise ValueError(f"{number} is not in the range {bounds}.")
        return number

    return convert


def _plain_path(info: Any) -> bool:
    """A Path option with none of the checks Typer's path adapter performs."""
    defaults = {"exists": False, "file_okay": True, "dir_okay": True, "writable": False, "readable": True,
                "resolve_path": False, "allow_dash": False, "path_type": None}
    return all(getattr(info, name, default) == default for name, default in defaults.items())


def _leaf(annotation: Any, info: Any) -> Convert | None:
    if annotation is str:
        return _to_str
    if annotation is bool:
        return _to_bool
    if annotation in (int, float):
        if getattr(info, "clamp", False):
            return None
        return _number(annotation, info.min, info.max)
    if annotation is Path and _plain_path(info):
        return lambda v: v if isinstance(v, Path) else Path(_to_str(v))
    return None


def fast_runtime_param(descriptor: TypeDescriptor) -> RuntimeParam | None:
    """A pydantic-free RuntimeParam for simple annotations, or None."""
    info = descriptor.parameter_info
    if descriptor.file_annotation is not None or getattr(info, "parser", None) is not None \
            or getattr(info, "click_type", None) is not None:
        return None
    annotation: Any = descriptor.annotation
    convert: Convert | None
    if get_origin(annotation) is list:
        args = get_args(annotation)
        leaf = _leaf(args[0], info) if len(args) == 1 else None
        convert = None if leaf is None else _list_of(leaf)
    else:
        convert = _leaf(annotation, info)
    if convert is None:
        return None
    return FastRuntimeParam(parameter_info=info, annotation=annotation, convert=convert)


def _list_of(item: Convert) -> Convert:
    def convert(value: Any) -> list[Any]:
        return [item(v) for v in (value if isinstance(value, (list, tuple)) else [value])]

    return convert


def install() -> None:
    install_runtime_param(fast_runtime_param)
