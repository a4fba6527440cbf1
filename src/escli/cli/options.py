"""Option groups more than one command declares, as `Annotated` aliases: declared here once.

- the search tuning group (--tune and the three shard-level knobs it presets): search and profile;
- concurrency (-j/--concurrency): one cap for every command that has it;
- a report command's -F/--format (health, profile, export, import): `format_option(choices)`;
- what to read and where the copy is (export, copy, verify: --query, --slices, --partition; copy and verify:
  --to, --dest/--prefix/--suffix): one declaration each, the help the command's own, since each reads them
  in its own terms (`slices_option(help)`, ...); `parse_slices` reads --slices for all three.

No `from __future__ import annotations` in the modules that use these: Typer reads the objects themselves.
"""

from typing import Annotated, Any

import typer

MAX_CONCURRENCY = 1024  # the one cap of -j: more requests in flight than this is a typo, not a load


def option(*decls: str, help: str, metavar: str | None = None, **kw: Any) -> Any:
    """A typer.Option without a shown default (the help says it where it matters), as most of escli's are."""
    return typer.Option(*decls, help=help, metavar=metavar, show_default=False, **kw)


def concurrency_option(help: str, *, show_default: bool = True) -> Any:
    """-j/--concurrency N, 1 to MAX_CONCURRENCY (batch, import, warm-cache, profile)."""
    return typer.Option("--concurrency", "-j", min=1, max=MAX_CONCURRENCY, metavar="N", help=help,
                        show_default=show_default)


def format_option(choices: str, default: str) -> Any:
    """-F/--format for a command whose output has its own formats (beyond the global -o)."""
    return typer.Option("--format", "-F", metavar="FORMAT", show_default=False,
                        help=f"{choices} [default: {default}]")


def to_option(help: str) -> Any:
    """--to TARGET: a URL, or a cluster name from the config file (copy, verify)."""
    return option("--to", metavar="TARGET", help=help)


def dest_option(help: str) -> Any:
    """--dest NAME: the copy's name, one index (copy, verify)."""
    return option("--dest", metavar="NAME", help=help)


def prefix_option(help: str) -> Any:
    """--prefix P: each copy named P + its source's name (copy, verify)."""
    return option("--prefix", metavar="P", help=help)


def suffix_option(help: str) -> Any:
    """--suffix S: each copy named its source's name + S (copy, verify)."""
    return option("--suffix", metavar="S", help=help)


def query_option(help: str) -> Any:
    """--query TEXT: a Lucene query string (export, copy, verify)."""
    return option("--query", metavar="TEXT", help=help)


def slices_option(help: str) -> Any:
    """--slices N|auto: parallel readers, read by `parse_slices` (export, copy, verify)."""
    return typer.Option("--slices", metavar="N|auto", help=help)


def partition_option(help: str) -> Any:
    """--partition K/N: one of N shares of the work (export, copy, verify; core/export_plan.parse_partition)."""
    return option("--partition", metavar="K/N", help=help)


def parse_slices(value: str) -> int | None:
    """--slices N|auto: N readers, or None for auto."""
    from escli.errors import UsageError
    from escli.text import parse_int

    if value.lower() == "auto":
        return None
    try:
        n = parse_int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise UsageError(f"--slices {value}: a positive number or auto")
    return n


Tune = Annotated[str | None, typer.Option(
    "--tune", metavar="throughput|latency", show_default=False,
    help="A preset: throughput sets --batched-reduce-size, --pre-filter-shard-size and "
         "--max-concurrent-shard-requests; latency --terminate-after and --timeout (-v prints the values); "
         "each of those options, given, wins over the preset")]
BatchedReduceSize = Annotated[int | None, typer.Option(
    "--batched-reduce-size", metavar="N", min=2, show_default=False,
    help="Reduce shard results on the coordinating node every N shards")]
PreFilterShardSize = Annotated[int | None, typer.Option(
    "--pre-filter-shard-size", metavar="N", min=1, show_default=False,
    help="Run the can_match pre-filter round when the search spans more than N shards")]
MaxConcurrentShardRequests = Annotated[int | None, typer.Option(
    "--max-concurrent-shard-requests", metavar="N", min=1, show_default=False,
    help="Shard requests this search runs at once per node")]
