"""`escli profile INDEX [TEXT]` or `--queries FILE`: latency, service time and took percentiles under load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from escli.cli.common import app_context, global_options, run_async
from escli.cli.options import (
    BatchedReduceSize,
    MaxConcurrentShardRequests,
    PreFilterShardSize,
    Tune,
    concurrency_option,
)
from escli.output.formats import report_format

HELP = ("Measure query latency: percentiles, throughput, service time, took; closed or open loop. "
        "`escli profile merge RUN.json...` merges runs saved with --save.")


class ProfileGroup(TyperGroup):
    """`escli profile [run] INDEX [TEXT]` and `escli profile merge RUN.json...`: a line that does not start with a
    subcommand's name is `run`'s (`escli profile products laptop`, `escli profile --queries F`, `escli profile
    --help`), so an index named merge is profiled as `escli profile run merge`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:
            args = ["run", *args]
        return list(super().parse_args(ctx, args))


def register(app: typer.Typer) -> None:
    group = typer.Typer(cls=ProfileGroup, help=HELP, rich_markup_mode=None)
    group.command("run", help=HELP + " `escli profile INDEX` is `escli profile run INDEX`.")(profile_command)
    group.command("merge", help="Merge runs saved with --save (side by side, e.g. one per machine) into one "
                                "report; sends nothing.")(merge_command)
    app.add_typer(group, name="profile", help=HELP)


# The report options of a run and of a merge.
Format = Annotated[str | None, typer.Option(
    "--format", "-F", metavar="FORMAT", show_default=False,
    help="table|json [default: table on a terminal, json when piped]")]
Percentiles = Annotated[str, typer.Option(
    "--percentiles", "-p", metavar="LIST", help="Comma-separated percentiles; max and min allowed")]
Save = Annotated[Path | None, typer.Option(
    "--save", metavar="FILE", help="Write the result as JSON (a baseline for --compare)", show_default=False)]
Compare = Annotated[Path | None, typer.Option(
    "--compare", metavar="FILE", help="A result saved with --save: show each figure's change in %",
    show_default=False)]
PrometheusFile = Annotated[Path | None, typer.Option(
    "--prometheus-file", metavar="FILE", help="Also write node_exporter textfile format here (0644)",
    show_default=False)]
FailIf = Annotated[list[str] | None, typer.Option(
    "--fail-if", metavar="EXPR", show_default=False,
    help="Exit 1 when EXPR holds: p99>200ms, errors>0.1%, throughput<500, ID:p99>50ms (repeatable)")]
Report = Annotated[Path | None, typer.Option(
    "--report", metavar="FILE", show_default=False,
    help="Write a self-contained HTML report: table, percentile distribution, latency and throughput over "
         "time (with --compare: both runs)")]
Plot = Annotated[bool, typer.Option(
    "--plot", help="Draw a compact latency percentile chart on the terminal (stderr when stdout is JSON)")]
PERCENTILES = "50,90,95,99,99.9,max"


@global_options
def merge_command(
    ctx: typer.Context,
    files: Annotated[list[str], typer.Argument(metavar="FILE", help="Runs saved with --save (RUN.json)")],
    format: Format = None, percentiles: Percentiles = PERCENTILES, save: Save = None, compare: Compare = None,
    prometheus_file: PrometheusFile = None, fail_if: FailIf = None, report: Report = None, plot: Plot = False,
) -> None:
    app = app_context(ctx)
    fmt = report_format(format, app.options.output, app.stdout_is_tty, ("table", "json"), "profile")
    _merge_command(app, files, fmt, percentiles, fail_if or [], save, compare, report, prometheus_file, plot)


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
    slowlog: Annotated[Path | None, typer.Option(
        "--slowlog", metavar="FILE", show_default=False,
        help="Replay Elasticsearch's JSON search slowlog: one query per search, weighted by how often it ran")
    ] = None,
    workers: Annotated[str, typer.Option(
        "--workers", metavar="N|auto", help="Processes sharing the load (auto: one per core); one merged report")
    ] = "1",
    repeat: Annotated[int, typer.Option(
        "--repeat", min=1, metavar="K", help="K runs one after another: each run's figures, median and cv")] = 1,
    find_max: Annotated[bool, typer.Option(
        "--find-max", help="The highest open-loop rate at which every --fail-if holds: from the closed-loop "
                           "capacity (or --rate), up and down, then bisecting; a step runs at least --duration "
                           "and as long as its gates' percentiles need, a failure is tried again")] = False,
    max_step: Annotated[str, typer.Option(
        "--max-step", metavar="DURATION", help="--find-max: the longest a step may run to gather the sample its "
                                               "gates need; a rate that needs more is undecided")] = "60s",
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
    concurrency: Annotated[int | None, concurrency_option(
        "Closed loop: workers; open loop: most requests in flight [default: 1 closed, connections open]",
        show_default=False)] = None,
    rate: Annotated[float | None, typer.Option(
        "--rate", "-r", min=0.001, metavar="PER_SECOND", show_default=False,
        help="Open loop: requests per second on a schedule; latency counts from the intended send time")] = None,
    schedule: Annotated[str, typer.Option(
        "--schedule", metavar="fixed|poisson", help="Open-loop send times: fixed or poisson")] = "fixed",
    percentiles: Percentiles = PERCENTILES,
    seed: Annotated[int | None, typer.Option(
        "--seed", metavar="N", help="Seed for query choice and Poisson gaps", show_default=False)] = None,
    format: Format = None,
    save: Save = None,
    compare: Compare = None,
    shards: Annotated[bool, typer.Option(
        "--shards", help="Run each query once with the Profile API and show the per-shard breakdown as a tree "
                         "(no load)")] = False,
    prometheus_file: PrometheusFile = None,
    fail_if: FailIf = None,
    report: Report = None,
    plot: Plot = False,
    tune: Tune = None,
    stored_fields: Annotated[list[str] | None, typer.Option(
        "--stored-fields", metavar="FIELDS", show_default=False, help="Stored fields instead of _source")] = None,
    batched_reduce_size: BatchedReduceSize = None,
    pre_filter_shard_size: PreFilterShardSize = None,
    max_concurrent_shard_requests: MaxConcurrentShardRequests = None,
) -> None:
    from escli.core.profile import (
        SCHEDULES,
        ProfileOptions,
        ProfileResult,
        Warmup,
        load_baseline,
        load_workload,
        run_profile,
        shard_profiles,
        single_query,
    )
    from escli.durations import parse_duration
    from escli.errors import UsageError
    from escli.es.connect import open_es
    from escli.inputs import numbered_lines, open_input
    from escli.profiler import parse_percentiles

    app = app_context(ctx)
    msgs = app.messages
    fmt = report_format(format, app.options.output, app.stdout_is_tty, ("table", "json"), "profile")
    sources = [name for name, v in (("INDEX/TEXT", index), ("--queries", queries), ("--slowlog", slowlog))
               if v is not None]
    if len(sources) > 1:
        raise UsageError(f"{sources[0]} and {sources[1]}: give one or the other")
    if (queries is not None or slowlog is not None) and (field or size is not None):
        raise UsageError("--field/--size shape the INDEX TEXT query; a --queries or --slowlog file sets its own")
    if not sources:
        raise UsageError("missing INDEX (or --queries FILE, or --slowlog FILE)")
    if iterations is not None and duration is not None:
        raise UsageError("--iterations and --duration: choose one")
    if schedule not in SCHEDULES:
        raise UsageError(f"--schedule {schedule}: choose fixed or poisson")
    if schedule != "fixed" and rate is None and not find_max:
        raise UsageError("--schedule applies to the open loop: add --rate R")
    nworkers = _parse_workers(workers)
    if find_max and not fail_if:
        raise UsageError("--find-max needs at least one --fail-if gate: it finds the highest rate where they hold")
    if find_max and (repeat > 1 or iterations is not None):
        raise UsageError(f"--find-max and {'--repeat' if repeat > 1 else '--iterations'}: each step of --find-max "
                         "is one run of --duration")
    try:
        pcts = parse_percentiles(percentiles)
    except ValueError as exc:
        raise UsageError(f"--percentiles {percentiles}: {exc}") from None
    seconds = parse_duration(duration, "--duration") if duration is not None else None
    if find_max and seconds is None:
        seconds = FIND_MAX_STEP
    warm = Warmup.parse(warmup)
    baseline = load_baseline(str(compare)) if compare is not None else None
    _check_dirs(save, prometheus_file, report)

    if queries is not None:
        with open_input(str(queries)) as fh:
            workload = load_workload(numbered_lines(fh), str(queries))
    elif slowlog is not None:
        from escli.core.slowlog import read_slowlog

        with open_input(str(slowlog)) as fh:
            workload = read_slowlog(numbered_lines(fh), str(slowlog))
        msgs.detail(f"slowlog {slowlog}: {len(workload)} distinct searches, {sum(q.weight for q in workload):g} "
                    "in all")
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
    width = concurrency or (settings.connections if rate or find_max else 1)
    total = None if seconds else (iterations or 1000)
    if total is not None and nworkers > total:
        msgs.detail(f"--workers {nworkers}: only {total} requests to send, so {total} workers")
        nworkers = total
    opts = ProfileOptions(iterations=total, duration=seconds, warmup=warm, concurrency=width, rate=rate,
                          schedule=schedule, percentiles=pcts, seed=seed)

    if shards:
        async def run_shards() -> list[dict[str, Any]]:
            async with open_es(settings, msgs) as client:
                return await shard_profiles(client, workload)

        profiles = run_async(run_shards())
        from escli.output.formats import write_json, write_text

        if fmt == "json":
            write_json(app.stdout, {"profiles": profiles})
        else:
            from escli.output.profile_view import render_shards

            write_text(app.stdout, render_shards(profiles))
        return

    def run_once(o: ProfileOptions) -> ProfileResult:
        what = f"{o.iterations:,} requests" if o.iterations else f"{o.duration:g} s"
        loop = f"open loop at {o.rate:g}/s" if o.rate else f"closed loop, concurrency {o.concurrency}"
        many = f", {nworkers} workers" if nworkers > 1 else ""
        msgs.detail(f"profiling {len(workload)} quer{'y' if len(workload) == 1 else 'ies'}: {what}, {loop}{many}")
        if nworkers > 1:
            from escli.core.profile_workers import run_in_workers

            with msgs.progress("profile", total=o.iterations) as bar:
                return run_in_workers(settings, workload, o, nworkers, msgs, bar.advance)

        async def main() -> ProfileResult:
            # the preflight and the load, on the seam's timed send (Es.send_once); never paced
            async with open_es(settings, msgs, concurrency=o.concurrency) as client:
                with msgs.progress("profile", total=o.iterations) as bar:
                    return await run_profile(client, workload, o, bar.advance)

        return run_async(main(), many_requests=True)

    def finish(r: ProfileResult) -> dict[str, Any]:
        d = r.as_dict()
        if gates:
            d["gates"] = evaluate_gates(d, gates)
        return d

    if find_max:
        from escli.core.profile_scale import find_max_report

        result, doc = find_max_report(run_once, opts, workload, gates, finish, start=rate, step_seconds=seconds or
                                      FIND_MAX_STEP, cap=parse_duration(max_step, "--max-step"),
                                      note=msgs.info, warn=msgs.warn)
    elif repeat > 1:
        from escli.core.profile_scale import run_repeat

        result, doc = run_repeat(run_once, opts, workload, nworkers, repeat, finish)
    else:
        result = run_once(opts)
        doc = finish(result)
    _emit(app, doc, result.state(), fmt, baseline, save, prometheus_file, report, plot, result.interrupted)


FIND_MAX_STEP = 5.0  # seconds per step, when --find-max is given no --duration


def _parse_workers(text: str) -> int:
    from escli.errors import UsageError

    if text.strip().lower() == "auto":
        from escli.core.profile_workers import cores

        return cores()
    raw = text.strip()
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise UsageError(f"--workers {text}: a number of processes (1 or more) or auto")
    return int(raw)


def _check_dirs(*paths: Path | None) -> None:
    from escli.files import require_parent

    for opt, path in zip(("--save", "--prometheus-file", "--report"), paths, strict=True):
        if path is not None:
            require_parent(opt, path)


def _merge_command(app: Any, files: list[str], fmt: str, percentiles: str, fail_if: list[str], save: Path | None,
                   compare: Path | None, report: Path | None, prometheus_file: Path | None, plot: bool) -> None:
    """`escli profile merge RUN.json...`: saved runs (side by side, e.g. one per machine) as one report."""
    from escli.core.gates import evaluate_gates, gate_percentiles, parse_gates
    from escli.core.profile import load_baseline
    from escli.core.profile_scale import load_saved_run, merge_saved
    from escli.errors import UsageError
    from escli.profiler import parse_percentiles

    try:
        pcts = parse_percentiles(percentiles)
    except ValueError as exc:
        raise UsageError(f"--percentiles {percentiles}: {exc}") from None
    _check_dirs(save, prometheus_file, report)
    docs = [(f, load_saved_run(f)) for f in files]
    ids = {q for _, d in docs for q in d.get("queries") or {}}
    gates = parse_gates(fail_if, ids)
    result = merge_saved(docs, (*pcts, *gate_percentiles(gates)))
    doc = result.as_dict()
    doc["merged"] = files
    if gates:
        doc["gates"] = evaluate_gates(doc, gates)
    baseline = load_baseline(str(compare)) if compare is not None else None
    _emit(app, doc, result.state(), fmt, baseline, save, prometheus_file, report, plot, result.interrupted)


def _emit(app: Any, doc: dict[str, Any], state: dict[str, Any], fmt: str, baseline: dict[str, Any] | None,
          save: Path | None, prometheus_file: Path | None, report: Path | None, plot: bool,
          interrupted: bool) -> None:
    """Write what a profile (a run, a merge, a repeat, a find-max) measured, then exit as its outcome says."""
    import orjson

    from escli.core.profile import compare_profiles, nothing_measured
    from escli.errors import ExitCode, PartialFailure, Said
    from escli.files import write_private
    from escli.output.formats import write_json, write_text

    msgs = app.messages
    deltas = compare_profiles(doc, baseline) if baseline is not None else None
    if save is not None:  # with the exact histograms, so that `profile merge` can merge it
        write_private(save, orjson.dumps({**doc, "state": state}, option=orjson.OPT_INDENT_2
                                          | orjson.OPT_APPEND_NEWLINE))
    if prometheus_file is not None:
        from escli.output.profile_view import prometheus_text
        from escli.output.prometheus import write_textfile

        write_textfile(prometheus_file, prometheus_text(doc))
    if report is not None:
        from escli.output.report_html import render_report

        write_private(report, render_report(doc, baseline, deltas).encode("utf-8"))
        msgs.info(f"report: {report}")
    if fmt == "json":
        out = {**doc, "compare": deltas} if deltas is not None else doc
        write_json(app.stdout, out)
    else:
        from escli.output.profile_view import render_profile

        write_text(app.stdout, render_profile(doc, deltas))
    if plot:
        from escli.output.plot import percentile_plot

        chart = percentile_plot(doc, baseline)
        if fmt == "json":  # stdout is for the JSON document
            app.stderr.write(chart)
        else:
            write_text(app.stdout, chart)
    if interrupted:
        raise KeyboardInterrupt
    if (empty := nothing_measured(doc)) is not None:
        raise PartialFailure(empty)
    failed = [g for g in doc.get("gates") or [] if not g["passed"]]
    overall = doc["overall"]
    if doc.get("max_rate") is None and "steps" in doc:
        raise Said(ExitCode.PARTIAL, "find-max: no rate held the gates")  # said on stderr
    if failed:
        from escli.output.profile_view import breach_line

        for g in failed:  # one line per breach, even with -q: it is why the exit code is 1
            app.stderr.write(f"escli: fail-if: {breach_line(g)}\n")
        if not overall["errors"]:
            raise Said(ExitCode.PARTIAL, f"fail-if: {len(failed)} gate(s) failed")
    if overall["errors"]:
        errs = ", ".join(f"{k} ({v})" for k, v in sorted(overall["errors"].items()))
        raise PartialFailure(f"{sum(overall['errors'].values())} of {overall['requests']} requests failed: {errs}")



