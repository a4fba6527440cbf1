"""`escli profile INDEX [TEXT]` or `--queries FILE`: latency, service time and took percentiles under load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from escli.cli.common import app_context, global_options, run_async
from escli.output.formats import report_format


def register(app: typer.Typer) -> None:
    app.command("profile", help="Measure query latency: percentiles, throughput, service time, took; closed or "
                                "open loop.")(profile_command)


@global_options
def profile_command(
    ctx: typer.Context,
    index: Annotated[str | None, typer.Argument(
        metavar="INDEX", help="Index to query (not with --queries)", show_default=False)] = None,
    text: Annotated[str | None, typer.Argument(
        metavar="TEXT", help="Query text (multi_match); empty for match_all", show_default=False)] = None,
    queries: Annotated[Path | None, typer.Option(
        "--queries", "-Q", metavar="FILE", show_default=False,
        help='Query file (NDJSON; "weight" sets how often each query is picked)')] = None,
    field: Annotated[list[str] | None, typer.Option(
        "--field", "-f", metavar="FIELD", help="Field to match, name^boost (repeatable)", show_default=False)] = None,
    size: Annotated[int | None, typer.Option(
        "--size", min=0, metavar="N", help="Hits per request", show_default=False)] = None,
    iterations: Annotated[int | None, typer.Option(
        "--iterations", "-n", min=1, metavar="N", show_default=False,
        help="Requests to measure [default: 1000 unless --duration]")] = None,
    duration: Annotated[str | None, typer.Option(
        "--duration", "-d", metavar="DURATION", help="Measure for this long (30s, 2m)", show_default=False)] = None,
    warmup: Annotated[str, typer.Option(
        "--warmup", metavar="N|DURATION", help="Requests (50) or time (5s) sent first and not counted")] = "10",
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", "-j", min=1, metavar="N", show_default=False,
        help="Closed loop: workers; open loop: most requests in flight [default: 1 closed, connections open]")
    ] = None,
    rate: Annotated[float | None, typer.Option(
        "--rate", "-r", min=0.001, metavar="PER_SECOND", show_default=False,
        help="Open loop: requests per second on a schedule; latency counts from the intended send time")] = None,
    schedule: Annotated[str, typer.Option(
        "--schedule", metavar="fixed|poisson", help="Open-loop send times: fixed or poisson")] = "fixed",
    percentiles: Annotated[str, typer.Option(
        "--percentiles", "-p", metavar="LIST", help="Comma-separated percentiles; max and min allowed")
    ] = "50,90,95,99,99.9,max",
    seed: Annotated[int | None, typer.Option(
        "--seed", metavar="N", help="Seed for query choice and Poisson gaps", show_default=False)] = None,
    format: Annotated[str | None, typer.Option(
        "--format", "-F", metavar="FORMAT", show_default=False,
        help="table|json [default: table on a terminal, json when piped]")] = None,
    save: Annotated[Path | None, typer.Option(
        "--save", metavar="FILE", help="Write the result as JSON (a baseline for --compare)", show_default=False)
    ] = None,
    compare: Annotated[Path | None, typer.Option(
        "--compare", metavar="FILE", help="A result saved with --save: show each figure's change in %",
        show_default=False)] = None,
    shards: Annotated[bool, typer.Option(
        "--shards", help="Run each query once with the Profile API and show the per-shard breakdown as a tree "
                         "(no load)")] = False,
    prometheus_file: Annotated[Path | None, typer.Option(
        "--prometheus-file", metavar="FILE", help="Also write node_exporter textfile format here (0644)",
        show_default=False)] = None,
    fail_if: Annotated[list[str] | None, typer.Option(
        "--fail-if", metavar="EXPR", show_default=False,
        help="Exit 1 when EXPR holds: p99>200ms, errors>0.1%, throughput<500, ID:p99>50ms (repeatable)")] = None,
    report: Annotated[Path | None, typer.Option(
        "--report", metavar="FILE", show_default=False,
        help="Write a self-contained HTML report: table, percentile distribution, latency and throughput over "
             "time (with --compare: both runs)")] = None,
    plot: Annotated[bool, typer.Option(
        "--plot", help="Draw a compact latency percentile chart on the terminal (stderr when stdout is JSON)")
    ] = False,
    tune: Annotated[str | None, typer.Option("--tune", metavar="throughput|latency", show_default=False,
                                             help="A search preset (as escli search --tune), for every query")] = None,
    stored_fields: Annotated[list[str] | None, typer.Option(
        "--stored-fields", metavar="FIELDS", show_default=False, help="Stored fields instead of _source")] = None,
    batched_reduce_size: Annotated[int | None, typer.Option(
        "--batched-reduce-size", min=2, metavar="N", show_default=False, help="As escli search")] = None,
    pre_filter_shard_size: Annotated[int | None, typer.Option(
        "--pre-filter-shard-size", min=1, metavar="N", show_default=False, help="As escli search")] = None,
    max_concurrent_shard_requests: Annotated[int | None, typer.Option(
        "--max-concurrent-shard-requests", min=1, metavar="N", show_default=False, help="As escli search")] = None,
) -> None:
    from escli.core.profile import (
        SCHEDULES,
        ProfileOptions,
        Warmup,
        compare_profiles,
        load_baseline,
        load_workload,
        run_profile,
        shard_profiles,
        single_query,
    )
    from escli.durations import parse_duration
    from escli.errors import PartialFailure, UsageError
    from escli.es.connect import open_es
    from escli.inputs import numbered_lines, open_input
    from escli.profiler import parse_percentiles

    app = app_context(ctx)
    msgs = app.messages
    fmt = report_format(format, app.options.get("output"), app.stdout_is_tty, ("table", "json"), "profile")
    if queries is not None and (index is not None or text is not None):
        raise UsageError("INDEX/TEXT and --queries: give one or the other")
    if queries is not None and (field or size is not None):
        raise UsageError("--field/--size shape the INDEX TEXT query; a --queries file sets its own")
    if queries is None and index is None:
        raise UsageError("missing INDEX (or --queries FILE)")
    if iterations is not None and duration is not None:
        raise UsageError("--iterations and --duration: choose one")
    if schedule not in SCHEDULES:
        raise UsageError(f"--schedule {schedule}: choose fixed or poisson")
    if schedule != "fixed" and rate is None:
        raise UsageError("--schedule applies to the open loop: add --rate R")
    try:
        pcts = parse_percentiles(percentiles)
    except ValueError as exc:
        raise UsageError(f"--percentiles {percentiles}: {exc}") from None
    seconds = parse_duration(duration, "--duration") if duration is not None else None
    warm = Warmup.parse(warmup)
    baseline = load_baseline(str(compare)) if compare is not None else None
    for opt, path in (("--save", save), ("--prometheus-file", prometheus_file), ("--report", report)):
        if path is not None and not path.parent.is_dir():
            raise UsageError(f"{opt} {path}: directory {path.parent} does not exist")

    if queries is not None:
        with open_input(str(queries)) as fh:
            workload = load_workload(numbered_lines(fh), str(queries))
    else:
        assert index is not None
        workload = [single_query(index, text, field or [], size)]
    # Search tuning (--tune and its options) under each query's own params: a query file's value wins.
    from dataclasses import replace

    from escli.es.query_builder import tuning_params

    tuned: dict[str, Any] = {}
    for note in tuning_params(tuned, tune, stored_fields or (), batched_reduce_size=batched_reduce_size,
                              pre_filter_shard_size=pre_filter_shard_size,
                              max_concurrent_shard_requests=max_concurrent_shard_requests):
        msgs.detail(note)
    workload = [replace(q, params={**tuned, **q.params}) for q in workload] if tuned else workload
    from escli.core.gates import evaluate_gates, gate_percentiles, parse_gates

    gates = parse_gates(fail_if or [], {q.id for q in workload})
    # A gate on p97 needs p97 measured and shown: the gated percentiles join the table's.
    pcts = tuple(sorted(set(pcts) | set(gate_percentiles(gates))))

    # Never a retry (--max-retries does not apply): it would hide an error inside a longer latency; profile
    # counts each failure by type instead.
    settings = app.settings.with_(max_retries=0)
    width = concurrency or (settings.connections if rate else 1)
    opts = ProfileOptions(iterations=None if seconds else (iterations or 1000), duration=seconds, warmup=warm,
                          concurrency=width, rate=rate, schedule=schedule, percentiles=pcts, seed=seed)

    if shards:
        async def run_shards() -> list[dict[str, Any]]:
            async with open_es(settings, pooled=False) as client:
                return await shard_profiles(client, workload)

        profiles = run_async(run_shards())
        if fmt == "json":
            import orjson

            app.stdout.write(orjson.dumps({"profiles": profiles}, option=orjson.OPT_APPEND_NEWLINE))
        else:
            from escli.output.profile_view import render_shards

            app.stdout.write(render_shards(profiles).encode("utf-8"))
        return

    async def main() -> Any:
        async with open_es(settings, pooled=False) as client:  # the preflight; the load goes on es.wire
            with msgs.progress("profile", total=opts.iterations) as bar:
                return await run_profile(client, workload, opts, bar.advance)

    what = f"{opts.iterations:,} requests" if opts.iterations else f"{seconds:g} s"
    loop = f"open loop at {rate:g}/s" if rate else f"closed loop, concurrency {width}"
    msgs.detail(f"profiling {len(workload)} quer{'y' if len(workload) == 1 else 'ies'}: {what}, {loop}")
    result = run_async(main(), many_requests=True)
    doc = result.as_dict()
    if gates:
        doc["gates"] = evaluate_gates(doc, gates)
    deltas = compare_profiles(doc, baseline) if baseline is not None else None
    from escli.files import write_private

    if save is not None:
        import orjson

        write_private(save, orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
    if prometheus_file is not None:
        from escli.output.profile_view import prometheus_text
        from escli.output.prometheus import write_textfile

        write_textfile(prometheus_file, prometheus_text(doc))
    if report is not None:
        from escli.output.report_html import render_report

        write_private(report, render_report(doc, baseline, deltas).encode("utf-8"))
        msgs.info(f"report: {report}")
    if fmt == "json":
        import orjson

        out = {**doc, "compare": deltas} if deltas is not None else doc
        app.stdout.write(orjson.dumps(out, option=orjson.OPT_APPEND_NEWLINE))
    else:
        from escli.output.profile_view import render_profile

        app.stdout.write(render_profile(doc, deltas).encode("utf-8"))
    if plot:
        from escli.output.plot import percentile_plot

        chart = percentile_plot(doc, baseline)
        if fmt == "json":  # stdout is for the JSON document
            app.stderr.write(chart)
        else:
            app.stdout.write(chart.encode("utf-8"))
    app.stdout.flush()
    if result.interrupted:
        raise KeyboardInterrupt
    failed = [g for g in doc.get("gates") or [] if not g["passed"]]
    if failed:
        from escli.output.profile_view import breach_line

        for g in failed:  # one line per breach, even with -q: it is why the exit code is 1
            app.stderr.write(f"escli: fail-if: {breach_line(g)}\n")
        if result.ok:
            raise SystemExit(1)
    if not result.ok:
        errs = ", ".join(f"{k} ({v})" for k, v in sorted(result.overall.errors.items()))
        raise PartialFailure(f"{sum(result.overall.errors.values())} of {result.overall.requests} requests "
                             f"failed: {errs}")



