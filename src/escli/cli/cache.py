"""`escli cache stats|clear [--index X]|path`: look into and empty every cache level (never imports the client).

The disk level's figures stay at the top of `stats -o json` (entries, bytes_on_disk, indices, ...), and `levels`
holds each level's: memory (per process: batch and warm-cache keep one while they run, so there is nothing to
count or clear between runs; its bound is shown), disk, and shared when a cache URL is configured. `clear`
empties the disk and shared levels; a shared level that cannot be reached is a warning and exit 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from escli.cli.common import app_context, global_options

if TYPE_CHECKING:
    from escli.cache import Level
    from escli.settings import Settings

cache_app = typer.Typer(help="Inspect or clear the cache levels (memory, disk, shared).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")


def _memory_stats(settings: Settings) -> dict[str, Any]:
    return {"enabled": settings.use_cache, "per_process": True, "entries": 0, "bytes": 0,
            "size_limit": settings.cache_memory_limit, "indices": {},
            "note": "held by batch and warm-cache while they run; nothing is kept between runs"}


def _levels(settings: Settings, warn: Any) -> list[Level]:
    """The disk level (only when its directory exists: stats and clear create nothing) and the shared one."""
    from escli.cache import DiskCache
    from escli.cache.levels import shared_level

    levels: list[Level] = []
    if settings.cache_dir.exists():
        levels.append(DiskCache(settings.cache_dir, settings.cache_size_limit, warn))
    shared = shared_level(settings, warn)
    if shared is not None:
        levels.append(shared)
    return levels


@cache_app.command("stats", help="Entries and sizes per level (memory, disk, shared) and per index.")
@global_options
def stats_command(ctx: typer.Context) -> None:
    from escli.output.formats import Format, write_json

    app = app_context(ctx)
    fmt = app.output_format()
    settings = app.settings
    levels = _levels(settings, app.messages.warn)
    per_level: dict[str, dict[str, Any]] = {"memory": _memory_stats(settings)}
    try:
        for level in levels:
            per_level[level.name] = level.stats()
    finally:
        for level in levels:
            level.close()
    disk = per_level.setdefault("disk", _empty_stats(str(settings.cache_dir), settings.cache_size_limit))
    stats: dict[str, Any] = {**disk, "default_ttl": settings.cache_ttl, "levels": per_level}
    if fmt in (Format.JSON, Format.NDJSON):
        write_json(app.stdout, stats)
        return
    from escli.output.writers import make_writer

    rows: list[dict[str, Any]] = []
    for name, figures in per_level.items():
        for index, v in figures.get("indices", {}).items():
            rows.append({"level": name, "index": index, "entries": v["entries"], "expired": v.get("expired", ""),
                         "bytes": v["bytes"]})
    title = f"{disk.get('entries', 0)} entries, {disk.get('bytes_on_disk', 0) / 2**20:.1f} MiB on disk"
    writer = make_writer(fmt, app.stdout, ["level", "index", "entries", "expired", "bytes"], title=title)
    for row in rows:
        writer.write(row)
    writer.close()
    msgs = app.messages
    msgs.info(f"memory: up to {settings.cache_memory_limit:,} bytes per batch or warm-cache run")
    msgs.info(f"disk {disk.get('path')}: {disk.get('entries', 0)} entries, {disk.get('bytes_on_disk', 0):,} "
              f"bytes on disk (limit {disk.get('size_limit', 0):,}), default TTL {settings.cache_ttl:g}s")
    shared = per_level.get("shared")
    if shared is not None:
        if shared.get("usable"):
            msgs.info(f"shared {shared['url']}: {shared['entries']} entries, {shared['bytes']:,} bytes of values")
        else:
            msgs.info(f"shared {shared['url']}: not reachable ({shared.get('error')})")


def _empty_stats(path: str, size_limit: int) -> dict[str, Any]:
    return {
        "enabled": True,
        "path": path,
        "usable": True,
        "entries": 0,
        "expired": 0,
        "bytes_on_disk": 0,
        "size_limit": size_limit,
        "indices": {},
    }


@cache_app.command("clear", help="Remove every entry from every level, or only those of one index.")
@global_options
def clear_command(
    ctx: typer.Context,
    index: Annotated[
        str | None,
        typer.Option(
            "--index",
            "-i",
            metavar="INDEX",
            help="Only entries for this index (as it was given to search)",
            show_default=False,
        ),
    ] = None,
) -> None:
    from escli.errors import PartialFailure
    from escli.output.formats import summary_wanted, write_json

    app = app_context(ctx)
    settings = app.settings
    levels = _levels(settings, app.messages.warn)
    removed_by_level: dict[str, int] = {"disk": 0}
    try:
        for level in levels:
            removed_by_level[level.name] = level.clear(index)
    finally:
        for level in levels:
            level.close()
    removed = removed_by_level["disk"]
    where = f" for index {index}" if index else ""
    app.messages.info(f"removed {removed} cache entries{where} from {settings.cache_dir}")
    failed = [name for name, n in removed_by_level.items() if n < 0]
    if "shared" in removed_by_level and "shared" not in failed:
        app.messages.info(f"removed {removed_by_level['shared']} cache entries{where} from {settings.cache_url}")
    if summary_wanted(app.options.output):
        write_json(app.stdout, {"removed": removed, "index": index, "path": str(settings.cache_dir),
                                "levels": removed_by_level})
    if failed:
        raise PartialFailure(f"the shared cache level ({settings.cache_url}) could not be cleared")


@cache_app.command("path", help="Print the cache directory.")
@global_options
def path_command(ctx: typer.Context) -> None:
    app = app_context(ctx)
    from escli.output.formats import write_text

    write_text(app.stdout, f"{app.settings.cache_dir}\n")
