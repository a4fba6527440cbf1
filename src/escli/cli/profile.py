"""`escli profile INDEX [TEXT]` or `--queries FILE`: latency, service time and took percentiles under load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from escli.cli.common import app_context, global_options
from escli.cli.options import (
    BatchedReduceSize,
    MaxConcurrentShardRequests,
    PreFilterShardSize,
    Tune,
    concurrency_option,
    option,
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


# The run's own options (the report's are above; the search tuning group is cli/options.py's).
IndexArg = Annotated[str | None, typer.Argument(
    metavar="INDEX", help="Index to query (not with --queries)", show_default=False)]
TextArg = Annotated[str | None, typer.Argument(
    metavar="TEXT", help="Query text (multi_match); empty for match_all", show_default=False)]
Queries = Annotated[Path | None, option(
    "--queries", "-Q", metavar="FILE", help='Query file (NDJSON; "weight" sets how often each query is picked)')]
Slowlog = Annotated[Path | None, option(
    "--slowlog", metavar="FILE",
    help="Replay Elasticsearch's JSON search slowlog: one query per search, weighted by how often it ran")]
Workers = Annotated[str, typer.Option(
    "--workers", metavar="N|auto", help="Processes sharing the load (auto: one per core); one merged report")]
Repeat = Annotated[int, typer.Option(
    "--repeat", min=1, metavar="K", help="K runs one after another: each run's figures, median and cv")]
FindMax = Annotated[bool, typer.Option(
    "--find-max", help="The highest open-loop rate at which every --fail-if holds: from the closed-loop capacity "
                       "(or --rate), up and down, then bisecting; a step runs at least --duration and as long as "
                       "its gates' percentiles need, a failure is tried again")]
MaxStep = Annotated[str, typer.Option(
    "--max-step", metavar="DURATION", help="--find-max: the longest a step may run to gather the sample its gates "
                                           "need; a rate that needs more is undecided")]
Field = Annotated[list[str] | None, option(
    "--field", "-f", metavar="FIELD", help="Field to match, name^boost (repeatable)")]
Size = Annotated[int | None, option("--size", min=0, metavar="N", help="Hits per request")]
Iterations = Annotated[int | None, option(
    "--iterations", "-n", min=1, metavar="N", help="Requests to measure [default: 1000 unless --duration]")]
Duration = Annotated[str | None, option(
    "--duration", "-d", metavar="DURATION", help="Measure for this long (30s, 2m)")]
WarmupOpt = Annotated[str, typer.Option(
    "--warmup", metavar="N|DURATION", help="Requests (50) or time (5s) sent first and not counted")]
Concurrency = Annotated[int | None, concurrency_option(
    "Closed loop: workers; open loop: most requests in flight [default: 1 closed, connections open]",
    show_default=False)]
Rate = Annotated[float | None, option(
    "--rate", "-r", min=0.001, metavar="PER_SECOND",
    help="Open loop: requests per second on a schedule; latency counts from the intended send time")]
Schedule = Annotated[str, typer.Option(
    "--schedule", metavar="fixed|poisson", help="Open-loop send times: fixed or poisson")]
Seed = Annotated[int | None, option("--seed", metavar="N", help="Seed for query choice and Poisson gaps")]
Shards = Annotated[bool, typer.Option(
    "--shards", help="Run each query once with the Profile API and show the per-shard breakdown as a tree "
                     "(no load)")]
StoredFields = Annotated[list[str] | None, option(
    "--stored-fields", metavar="FIELDS", help="Stored fields instead of _source")]


@global_options
def profile_command(
    ctx: typer.Context, index: IndexArg = None, text: TextArg = None, queries: Queries = None,
    slowlog: Slowlog = None, workers: Workers = "1", repeat: Repeat = 1, find_max: FindMax = False,
    max_step: MaxStep = "60s", field: Field = None, size: Size = None, iterations: Iterations = None,
    duration: Duration = None, warmup: WarmupOpt = "10", concurrency: Concurrency = None, rate: Rate = None,
    schedule: Schedule = "fixed", percentiles: Percentiles = PERCENTILES, seed: Seed = None, format: Format = None,
    save: Save = None, compare: Compare = None, shards: Shards = False, prometheus_file: PrometheusFile = None,
    fail_if: FailIf = None, report: Report = None, plot: Plot = False, tune: Tune = None,
    stored_fields: StoredFields = None, batched_reduce_size: BatchedReduceSize = None,
    pre_filter_shard_size: PreFilterShardSize = None,
    max_concurrent_shard_requests: MaxConcurrentShardRequests = None,
) -> None:
    from escli.core.profile_result import load_baseline
    from escli.core.profile_run import ProfileRequest, profile

    app = app_context(ctx)
    fmt = report_format(format, app.options.output, app.stdout_is_tty, ("table", "json"), "profile")
    req = ProfileRequest(
        index=index, text=text, queries=queries, slowlog=slowlog, fields=field or [], size=size, workers=workers,
        repeat=repeat, find_max=find_max, max_step=max_step, iterations=iterations, duration=duration,
        warmup=warmup, concurrency=concurrency, rate=rate, schedule=schedule, percentiles=percentiles, seed=seed,
        fail_if=fail_if or [], tune=tune, stored_fields=stored_fields or [], batched_reduce_size=batched_reduce_size,
        pre_filter_shard_size=pre_filter_shard_size, max_concurrent_shard_requests=max_concurrent_shard_requests,
        shards=shards)
    baseline = load_baseline(str(compare)) if compare is not None else None
    _check_dirs(save, prometheus_file, report)
    outcome = profile(app.settings, req, app.messages)
    if outcome.shards is not None:
        _emit_shards(app, fmt, outcome.shards)
        return
    result = outcome.result
    assert result is not None
    _emit(app, outcome.doc, result.state(), fmt, baseline, save, prometheus_file, report, plot, result.interrupted)


def _emit_shards(app: Any, fmt: str, profiles: list[dict[str, Any]]) -> None:
    """--shards: each query's per-shard breakdown, as JSON or a tree."""
    from escli.output.formats import write_json, write_text

    if fmt == "json":
        write_json(app.stdout, {"profiles": profiles})
    else:
        from escli.output.profile_view import render_shards

        write_text(app.stdout, render_shards(profiles))


def _check_dirs(*paths: Path | None) -> None:
    from escli.files import require_parent

    for opt, path in zip(("--save", "--prometheus-file", "--report"), paths, strict=True):
        if path is not None:
            require_parent(opt, path)


def _merge_command(app: Any, files: list[str], fmt: str, percentiles: str, fail_if: list[str], save: Path | None,
                   compare: Path | None, report: Path | None, prometheus_file: Path | None, plot: bool) -> None:
    """`escli profile merge RUN.json...`: saved runs (side by side, e.g. one per machine) as one report."""
    from escli.core.gates import evaluate_gates, gate_percentiles, parse_gates
    from escli.core.profile_result import load_baseline
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

    from escli.core.profile_result import compare_profiles, nothing_measured
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



