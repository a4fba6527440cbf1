"""`escli verify SOURCE --to TARGET`: are the target's documents the source's? Counts and an order-free digest of
every document on both sides (core/verify.py); exit 1 naming up to 10 documents that differ."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from escli.cli.common import app_context, global_options, run_async
from escli.cli.options import (
    dest_option,
    option,
    parse_slices,
    partition_option,
    prefix_option,
    query_option,
    slices_option,
    suffix_option,
    to_option,
)

if TYPE_CHECKING:
    from escli.core.verify import PairDigests


def register(app: typer.Typer) -> None:
    app.command(
        "verify",
        help="Compare an index (alias, data stream, pattern) with its copy on another cluster: counts and a digest "
             "of every document (_id, _routing, _source as values); name up to 10 documents that differ.\n\n"
             "Exit status: 0 equal, 1 a difference, 2 bad input, 3 unreachable, 4 refused.",
    )(verify_command)


Source = Annotated[str, typer.Argument(metavar="INDEX", help="Index, alias, data stream or pattern on the source "
                                       "cluster (--url/--cluster)")]
To = Annotated[str, to_option("The copy's cluster: a URL, or a cluster name from the config file (its own "
                              "credentials and TLS)")]
Dest = Annotated[str | None, dest_option("The copy's name on the target (one index)")]
Prefix = Annotated[str, prefix_option("The copies are named P + source name")]
Suffix = Annotated[str, suffix_option("The copies are named source name + S")]
Query = Annotated[str | None, query_option("Compare only the documents matching this Lucene query (query_string "
                                           "syntax), on both sides")]
Slices = Annotated[str, slices_option("Parallel readers per side: N, or auto")]
Partition = Annotated[str | None, partition_option("Read partition K of N of both sides and print its digests "
                                                   "(NDJSON); --combine compares all N")]
Combine = Annotated[list[Path] | None, option("--combine", metavar="FILE", help="Compare the digests of every "
                                              "partition (the --partition outputs; repeatable)")]


@global_options
def verify_command(
    ctx: typer.Context, source: Source, to: To, dest: Dest = None, prefix: Prefix = "", suffix: Suffix = "",
    query: Query = None, slices: Slices = "auto", partition: Partition = None, combine: Combine = None,
) -> None:
    from escli.core.copy_meta import Rename
    from escli.core.export_plan import parse_partition
    from escli.errors import ExitCode, Said, UsageError
    from escli.output.formats import report_format

    app = app_context(ctx)
    if dest is not None and (prefix or suffix):
        raise UsageError("--dest with --prefix/--suffix: --dest names one copy, --prefix/--suffix name many")
    parts = parse_partition(partition)
    if parts is not None and combine:
        raise UsageError("--partition and --combine: run each partition with --partition, then --combine them")
    fmt = report_format(None, app.options.output, app.stdout_is_tty, ("table", "json"), "verify")
    rename = Rename(dest=dest, prefix=prefix, suffix=suffix)
    query_clause = {"query_string": {"query": query}} if query else None
    readers = parse_slices(slices)
    given = _read_digests(combine) if combine else None
    msgs = app.messages
    source_settings = app.one_cluster("verify")
    target_settings = app.target_settings(to)

    async def main() -> Any:
        from escli.core.export_plan import AUTO_READERS
        from escli.core.verify import Reading, combine_partitions, partition_digests, resolve_pairs, verify_copy
        from escli.es.connect import open_es

        concurrency = readers or AUTO_READERS
        async with open_es(source_settings, msgs, concurrency=concurrency, paced=True) as src, \
                open_es(target_settings, msgs, concurrency=concurrency, paced=True) as dst:
            pairs = await resolve_pairs(src, source, rename)
            with msgs.progress(f"verify {source}", total=None) as bar:
                if parts is not None:
                    reading = Reading(query=query_clause, slices=readers, partition=parts)
                    return await partition_digests(src, dst, pairs, reading, bar.advance, msgs.detail)
                first = combine_partitions(given) if given is not None else None
                if first is not None:
                    unknown = sorted(set(pairs) - set(first))
                    if unknown:
                        raise UsageError(f"--combine: no digests of {unknown[0][0]} -> {unknown[0][1]} in the "
                                         "files given")
                return await verify_copy(src, dst, pairs, query_clause, slices=readers, first=first,
                                         on_progress=bar.advance, on_warning=msgs.detail)

    from escli.output import verify_view

    outcome = run_async(main(), many_requests=True)
    if parts is not None:
        verify_view.write_partition(app.stdout, outcome)
        msgs.info(f"partition {parts[0]}/{parts[1]} of {source}: digests of {len(outcome)} index(es) written; "
                  f"compare all {parts[1]} with --combine")
        return
    verify_view.write_verify(app.stdout, outcome, fmt, color=app.stdout_is_tty)
    if not outcome.equal:
        for line in verify_view.difference_lines(outcome):
            msgs.error(line)
        raise Said(ExitCode.PARTIAL, "the copy differs from its source")
    docs = sum(v.source_count for v in outcome.indices)
    msgs.info(f"verified {len(outcome.indices)} index(es), {docs} document{'s' if docs != 1 else ''}: equal "
              f"({outcome.seconds:.2f}s, {outcome.passes} pass{'es' if outcome.passes != 1 else ''})")


def _read_digests(files: list[Path]) -> list[PairDigests]:
    """The --partition outputs: a bad file or line is a UsageError naming FILE:LINE."""
    import orjson

    from escli.core.verify import PairDigests
    from escli.errors import UsageError

    out: list[PairDigests] = []
    for path in files:
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"--combine {path}: {exc.strerror or exc}") from None
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(PairDigests.from_dict(orjson.loads(line)))
            except (ValueError, KeyError, TypeError, AttributeError, UsageError) as exc:
                raise UsageError(f"{path}:{n}: not a line of `escli verify --partition` ({exc})") from None
    if not out:
        raise UsageError(f"--combine {', '.join(map(str, files))}: no digests in the files given")
    return out
