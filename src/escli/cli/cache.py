"""`escli cache stats|clear [--index X]|path`: look into and empty the on-disk cache (never imports the client)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from escli.cli.common import app_context, global_options

cache_app = typer.Typer(help="Inspect or clear the on-disk cache.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")


@cache_app.command("stats", help="Entries, size on disk and entries per index.")
@global_options
def stats_command(ctx: typer.Context) -> None:
    from escli.cache import DiskCache
    from escli.output.formats import Format

    app = app_context(ctx)
    fmt = app.output_format()
    settings = app.settings
    cache = DiskCache(settings.cache_dir, settings.cache_size_limit, app.messages.warn)
    try:
        stats = (
            cache.stats()
            if settings.cache_dir.exists()
            else _empty_stats(str(settings.cache_dir), settings.cache_size_limit)
        )
    finally:
        cache.close()
    stats["default_ttl"] = settings.cache_ttl
    if fmt in (Format.JSON, Format.NDJSON):
        import orjson

        app.stdout.write(orjson.dumps(stats, option=orjson.OPT_APPEND_NEWLINE))
        app.stdout.flush()
        return
    from escli.output.writers import make_writer

    rows: list[dict[str, Any]] = [
        {"index": name, "entries": v["entries"], "expired": v["expired"], "bytes": v["bytes"]}
        for name, v in stats.get("indices", {}).items()
    ]
    title = f"{stats.get('entries', 0)} entries, {stats.get('bytes_on_disk', 0) / 2**20:.1f} MiB"
    detail = (f"cache {stats.get('path')}: {stats.get('entries', 0)} entries, {stats.get('bytes_on_disk', 0):,} "
              f"bytes on disk (limit {stats.get('size_limit', 0):,}), default TTL {settings.cache_ttl:g}s")
    writer = make_writer(fmt, app.stdout, ["index", "entries", "expired", "bytes"], title=title)
    for row in rows:
        writer.write(row)
    writer.close()
    app.messages.info(detail)


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


@cache_app.command("clear", help="Remove every entry, or only those of one index.")
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
    from escli.cache import DiskCache

    app = app_context(ctx)
    settings = app.settings
    removed = 0
    if settings.cache_dir.exists():
        cache = DiskCache(settings.cache_dir, settings.cache_size_limit, app.messages.warn)
        try:
            removed = cache.clear(index)
        finally:
            cache.close()
    where = f" for index {index}" if index else ""
    app.messages.info(f"removed {removed} cache entries{where} from {settings.cache_dir}")
    if app.options.get("output") in ("json", "ndjson"):
        import orjson

        app.stdout.write(
            orjson.dumps(
                {"removed": removed, "index": index, "path": str(settings.cache_dir)}, option=orjson.OPT_APPEND_NEWLINE
            )
        )


@cache_app.command("path", help="Print the cache directory.")
@global_options
def path_command(ctx: typer.Context) -> None:
    app = app_context(ctx)
    app.stdout.write(f"{app.settings.cache_dir}\n".encode())
