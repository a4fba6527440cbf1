"""`escli profile run`'s use case: what the command line asked (ProfileRequest, checked as it is built), the
workload (INDEX TEXT, --queries or --slowlog, with the search tuning under each query's own params), the gates,
then one run, --repeat or --find-max (core/profile_scale.py), in this process or in --workers; or --shards.

Nothing here prints: the command renders the ProfileOutcome (cli/profile.py, output/profile_view.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from escli.core.profile import SCHEDULES, ProfileOptions, Warmup
from escli.durations import parse_duration
from escli.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from escli.core.profile_result import ProfileResult
    from escli.es.queries import QuerySpec
    from escli.settings import Settings
    from escli.ui import UI

FIND_MAX_STEP = 5.0  # seconds per step, when --find-max is given no --duration


@dataclass
class ProfileRequest:
    """The options of `escli profile run` as given; building one checks them (a UsageError naming the option)
    and parses the durations, the warm-up, the percentiles and --workers into the fields after `shards`."""

    index: str | None
    text: str | None
    queries: Path | None
    slowlog: Path | None
    fields: list[str]
    size: int | None
    workers: str
    repeat: int
    find_max: bool
    max_step: str
    iterations: int | None
    duration: str | None
    warmup: str
    concurrency: int | None
    rate: float | None
    schedule: str
    percentiles: str
    seed: int | None
    fail_if: list[str]
    tune: str | None
    stored_fields: list[str]
    batched_reduce_size: int | None
    pre_filter_shard_size: int | None
    max_concurrent_shard_requests: int | None
    shards: bool
    # parsed from the above by __post_init__
    pcts: tuple[float, ...] = field(init=False, default=())
    seconds: float | None = field(init=False, default=None)
    warm: Warmup = field(init=False, default_factory=Warmup)
    nworkers: int = field(init=False, default=1)

    def __post_init__(self) -> None:
        from escli.profiler import parse_percentiles

        sources = [name for name, v in (("INDEX/TEXT", self.index), ("--queries", self.queries),
                                        ("--slowlog", self.slowlog)) if v is not None]
        if len(sources) > 1:
            raise UsageError(f"{sources[0]} and {sources[1]}: give one or the other")
        if (self.queries is not None or self.slowlog is not None) and (self.fields or self.size is not None):
            raise UsageError("--field/--size shape the INDEX TEXT query; a --queries or --slowlog file sets its own")
        if not sources:
            raise UsageError("missing INDEX (or --queries FILE, or --slowlog FILE)")
        if self.iterations is not None and self.duration is not None:
            raise UsageError("--iterations and --duration: choose one")
        if self.schedule not in SCHEDULES:
            raise UsageError(f"--schedule {self.schedule}: choose fixed or poisson")
        if self.schedule != "fixed" and self.rate is None and not self.find_max:
            raise UsageError("--schedule applies to the open loop: add --rate R")
        self.nworkers = parse_workers(self.workers)
        if self.find_max and not self.fail_if:
            raise UsageError("--find-max needs at least one --fail-if gate: it finds the highest rate where they "
                             "hold")
        if self.find_max and (self.repeat > 1 or self.iterations is not None):
            raise UsageError(f"--find-max and {'--repeat' if self.repeat > 1 else '--iterations'}: each step of "
                             "--find-max is one run of --duration")
        try:
            self.pcts = parse_percentiles(self.percentiles)
        except ValueError as exc:
            raise UsageError(f"--percentiles {self.percentiles}: {exc}") from None
        self.seconds = parse_duration(self.duration, "--duration") if self.duration is not None else None
        if self.find_max and self.seconds is None:
            self.seconds = FIND_MAX_STEP
        self.warm = Warmup.parse(self.warmup)


def parse_workers(text: str) -> int:
    """`--workers N|auto`."""
    if text.strip().lower() == "auto":
        from escli.core.profile_workers import cores

        return cores()
    raw = text.strip()
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise UsageError(f"--workers {text}: a number of processes (1 or more) or auto")
    return int(raw)


@dataclass
class ProfileOutcome:
    """A run's (or a --repeat's, a --find-max's) result and its JSON form with the gates' verdicts; or, with
    --shards, each query's Profile API breakdown (and no result)."""

    result: ProfileResult | None = None
    doc: dict[str, Any] = field(default_factory=dict)
    shards: list[dict[str, Any]] | None = None


def load_queries(req: ProfileRequest, ui: UI) -> list[QuerySpec]:
    """The workload, each query's own params over the search tuning (a query file's value wins)."""
    from escli.core.profile import load_workload, single_query
    from escli.es.query_builder import tuning_params
    from escli.inputs import numbered_lines, open_input

    if req.queries is not None:
        with open_input(str(req.queries)) as fh:
            workload = load_workload(numbered_lines(fh), str(req.queries))
    elif req.slowlog is not None:
        from escli.core.slowlog import read_slowlog

        with open_input(str(req.slowlog)) as fh:
            workload = read_slowlog(numbered_lines(fh), str(req.slowlog))
        ui.detail(f"slowlog {req.slowlog}: {len(workload)} distinct searches, "
                  f"{sum(q.weight for q in workload):g} in all")
    else:
        assert req.index is not None
        workload = [single_query(req.index, req.text, req.fields, req.size)]
    tuned: dict[str, Any] = {}
    for note in tuning_params(tuned, req.tune, req.stored_fields, batched_reduce_size=req.batched_reduce_size,
                              pre_filter_shard_size=req.pre_filter_shard_size,
                              max_concurrent_shard_requests=req.max_concurrent_shard_requests):
        ui.detail(note)
    return [replace(q, params={**tuned, **q.params}) for q in workload] if tuned else workload


def profile(settings: Settings, req: ProfileRequest, ui: UI) -> ProfileOutcome:
    """The workload measured as `req` asks (or, with --shards, profiled once per query with no load)."""
    import asyncio

    from escli.core.gates import gate_percentiles, parse_gates
    from escli.es.connect import open_es

    workload = load_queries(req, ui)
    gates = parse_gates(req.fail_if, {q.id for q in workload})
    # A gate on p97 needs p97 measured and shown: the gated percentiles join the table's.
    pcts = tuple(sorted(set(req.pcts) | set(gate_percentiles(gates))))
    # Never a retry (--max-retries does not apply): it would hide an error inside a longer latency; profile
    # counts each failure by type instead.
    settings = settings.with_(max_retries=0)
    if req.shards:
        from escli.core.profile import shard_profiles

        async def run_shards() -> list[dict[str, Any]]:
            async with open_es(settings, ui) as client:
                return await shard_profiles(client, workload)

        return ProfileOutcome(shards=asyncio.run(run_shards()))
    width = req.concurrency or (settings.connections if req.rate or req.find_max else 1)
    total = None if req.seconds else (req.iterations or 1000)
    nworkers = req.nworkers
    if total is not None and nworkers > total:
        ui.detail(f"--workers {nworkers}: only {total} requests to send, so {total} workers")
        nworkers = total
    opts = ProfileOptions(iterations=total, duration=req.seconds, warmup=req.warm, concurrency=width,
                          rate=req.rate, schedule=req.schedule, percentiles=pcts, seed=req.seed)
    run_once = _run_once(settings, workload, nworkers, ui)

    def finish(r: ProfileResult) -> dict[str, Any]:
        from escli.core.gates import evaluate_gates

        d = r.as_dict()
        if gates:
            d["gates"] = evaluate_gates(d, gates)
        return d

    if req.find_max:
        from escli.core.profile_scale import find_max_report

        result, doc = find_max_report(run_once, opts, workload, gates, finish, start=req.rate,
                                      step_seconds=req.seconds or FIND_MAX_STEP,
                                      cap=parse_duration(req.max_step, "--max-step"), note=ui.info, warn=ui.warn)
    elif req.repeat > 1:
        from escli.core.profile_scale import run_repeat

        result, doc = run_repeat(run_once, opts, workload, nworkers, req.repeat, finish)
    else:
        result = run_once(opts)
        doc = finish(result)
    return ProfileOutcome(result=result, doc=doc)


def _run_once(settings: Settings, workload: list[QuerySpec], nworkers: int, ui: UI
              ) -> Callable[[ProfileOptions], ProfileResult]:
    """One run of the workload with the options given (what --repeat and --find-max call again and again)."""

    def run_once(o: ProfileOptions) -> ProfileResult:
        import asyncio

        from escli.core.profile import run_profile
        from escli.core.profile_workers import new_loop, run_in_workers
        from escli.es.connect import open_es

        what = f"{o.iterations:,} requests" if o.iterations else f"{o.duration:g} s"
        loop = f"open loop at {o.rate:g}/s" if o.rate else f"closed loop, concurrency {o.concurrency}"
        many = f", {nworkers} workers" if nworkers > 1 else ""
        ui.detail(f"profiling {len(workload)} quer{'y' if len(workload) == 1 else 'ies'}: {what}, {loop}{many}")
        if nworkers > 1:
            with ui.progress("profile", total=o.iterations) as bar:
                return run_in_workers(settings, workload, o, nworkers, ui, bar.advance)

        async def main() -> ProfileResult:
            # the preflight and the load, on the seam's timed send (Es.send_once); never paced
            async with open_es(settings, ui, concurrency=o.concurrency) as client:
                with ui.progress("profile", total=o.iterations) as bar:
                    return await run_profile(client, workload, o, bar.advance)

        with asyncio.Runner(loop_factory=new_loop) as runner:  # uvloop where installed: less CPU per request
            return runner.run(main())

    return run_once
