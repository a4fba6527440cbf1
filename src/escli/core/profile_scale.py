"""Profile past one run: saved runs merged (`profile merge`), `--repeat K` and its spread, `--find-max`.

Functions over results and their JSON form; the runs themselves are the caller's (`run_once` callables), so the
same code drives a run in one process or in workers.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from escli.core.gates import Gate
from escli.core.profile import ProfileOptions, Warmup
from escli.core.profile_result import FIGURES, STATE_VERSION, ProfileResult, read_saved
from escli.errors import UsageError
from escli.es.queries import QuerySpec
from escli.profiler import RequestStats, min_samples, parse_percentiles

# --------------------------------------------------------------------------------------------------------------
# escli profile merge RUN.json...


def load_saved_run(path: str) -> dict[str, Any]:
    """A run saved with --save that carries the exact histograms ("state"); one clear line otherwise."""
    doc = read_saved(path, path)
    state = doc.get("state")
    if not isinstance(state, dict):
        raise UsageError(f"{path}: saved without its histograms (by an older escli, or not with --save): "
                         "percentiles cannot be merged exactly; run it again with --save")
    if state.get("version") != STATE_VERSION:
        raise UsageError(f"{path}: saved histograms of version {state.get('version')}, this escli reads "
                         f"{STATE_VERSION}")
    return doc


def merge_saved(docs: Sequence[tuple[str, dict[str, Any]]], extra_percentiles: Sequence[float] = ()
                ) -> ProfileResult:
    """Runs that ran side by side (N machines, each at --rate R/N) as one result: their histograms add."""
    modes = {d["mode"] for _, d in docs}
    if len(modes) > 1:
        raise UsageError(f"{docs[-1][0]}: open-loop and closed-loop runs do not merge into one load")
    pcts: set[float] = set(extra_percentiles)
    queries: dict[str, QuerySpec] = {}
    for _, d in docs:
        pcts |= set(parse_percentiles(",".join(d.get("percentiles") or ["max"])))
        for qid, q in (d.get("queries") or {}).items():
            queries.setdefault(qid, QuerySpec(qid, str(q.get("index", "")), {}, weight=float(q.get("weight", 1))))
    rates = [d.get("rate") for _, d in docs]
    iterations = [d.get("iterations") for _, d in docs]
    first = docs[0][1]
    opts = ProfileOptions(
        iterations=sum(int(i) for i in iterations if i) if all(isinstance(i, int) for i in iterations) else None,
        duration=max((d.get("duration") or 0.0 for _, d in docs), default=0.0) or None,
        warmup=Warmup(requests=sum(int((d.get("warmup") or {}).get("requests") or 0) for _, d in docs),
                      seconds=float((first.get("warmup") or {}).get("seconds") or 0.0)),
        concurrency=sum(int(d.get("concurrency") or 1) for _, d in docs),
        rate=sum(float(r) for r in rates if r) or None, schedule=first.get("schedule") or "fixed",
        percentiles=tuple(sorted(pcts)))
    result = ProfileResult(opts, list(queries.values()), per_query={q: RequestStats() for q in queries})
    result.workers = 0
    for _, d in docs:
        result.absorb(d["state"])
        result.workers += int(d.get("workers") or 1)
    return result


# --------------------------------------------------------------------------------------------------------------
# --repeat K: the spread of every figure across runs


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Median and coefficient of variation (sample standard deviation / mean) of one figure across runs; cv is
    None for a single run or a mean of 0 (no spread to speak of)."""
    med = statistics.median(values)
    mean = statistics.fmean(values)
    cv = statistics.stdev(values) / mean if len(values) > 1 and mean else None
    return {"median": round(med, 6), "cv": None if cv is None else round(cv, 6), "values": list(values)}


def _figures(stats: dict[str, Any]) -> dict[str, float]:
    """The numbers of one stats block that are figures: throughput, error rate, each time's percentiles and mean."""
    out: dict[str, float] = {}
    for key in ("throughput", "error_rate"):
        if isinstance(stats.get(key), (int, float)):
            out[key] = float(stats[key])
    for fig in FIGURES:
        for label, v in (stats.get(fig) or {}).items():
            if label not in ("count", "not_shown") and isinstance(v, (int, float)):
                out[f"{fig}.{label}"] = float(v)
    return out


def repeat_spread(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per figure (overall and per query): median and cv across runs, from each run's own figures. A figure
    some run could not show (too few samples) is left out rather than computed on fewer runs."""
    def block(pick: Callable[[dict[str, Any]], dict[str, Any] | None]) -> dict[str, Any]:
        per_run = [_figures(pick(r) or {}) for r in runs]
        names = [n for n in per_run[0] if all(n in f for f in per_run)]
        out: dict[str, Any] = {}
        for n in names:
            fig, _, label = n.partition(".")
            s = spread([f[n] for f in per_run])
            if label:
                out.setdefault(fig, {})[label] = s
            else:
                out[fig] = s
        return out

    def query(q: str) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
        return lambda r: (r.get("queries") or {}).get(q)

    return {"runs": len(runs), "overall": block(lambda r: r.get("overall")),
            "queries": {q: block(query(q)) for q in runs[0].get("queries") or {}}}


RUN_KEYS = ("started_at", "seconds", "interrupted", "overall", "queries", "client", "gates")


def run_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """One run of a --repeat as JSON "runs" holds it: its figures, without the pictures' data."""
    return {k: v for k, v in doc.items() if k in RUN_KEYS}


# --repeat K: the runs one after another, one merged result


def run_repeat(run_once: Callable[[ProfileOptions], ProfileResult], opts: ProfileOptions,
               workload: Sequence[QuerySpec], workers: int, repeat: int,
               finish: Callable[[ProfileResult], dict[str, Any]]) -> tuple[ProfileResult, dict[str, Any]]:
    """K runs of `opts`; the merged result (histograms added) and its JSON with "runs" and "spread"."""
    result = ProfileResult(opts, list(workload), per_query={q.id: RequestStats() for q in workload},
                           workers=workers)
    runs: list[dict[str, Any]] = []
    for _ in range(repeat):
        one = run_once(opts)
        runs.append(finish(one))
        result.absorb(one.state(), after=True)
        if one.interrupted:
            break
    doc = {**finish(result), "repeat": repeat, "runs": [run_summary(d) for d in runs],
           "spread": repeat_spread(runs)}
    return result, doc


# --------------------------------------------------------------------------------------------------------------
# --find-max: the highest open-loop rate at which every gate holds, decided only on samples that support it

PRECISION = 0.05  # bisect until the lowest failing rate is within 5 % of the highest passing one
MAX_STEPS = 24  # rates tried (a rate's confirmation is not another step)
MIN_RATE = 0.01
MAX_HALVINGS = 64  # below start/64 the gates are not about the rate
CLIENT_BOUND = 0.9
STEP_CAP = 60.0  # seconds: the longest a step may run to gather the sample its gates need (--max-step)
HEADROOM = 1.25  # a step is planned for 25 % more requests than its gates need (errors, a query's share)
PASS, FAIL, UNDECIDED = "pass", "fail", "undecided"


def gate_needs(gate: Gate) -> int:
    """Successful requests a gate needs before it can be read: its percentile's support (p99: 100, p99.9: 1,000;
    max and mean: 1); an error-rate gate of L needs 1/L requests (errors>0.1%: 1,000), so one error is not read
    as a breach of a rate it cannot resolve; throughput and error counts: one request."""
    r = gate.rule
    if r.metric == "errors":
        return max(1, math.ceil(1.0 / r.value - 1e-9)) if r.kind == "rate" and r.value > 0 else 1
    p = gate.percentile
    return min_samples(p) if p is not None else 1


def sample_shortfall(doc: Mapping[str, Any], gates: Sequence[Gate]) -> int:
    """How many more requests the run behind `doc` needed for its least supported gate (0: every gate can be
    read). A gate on one query counts that query's samples; scaled by the query's share of the load."""
    short = 0
    total = (doc.get("overall") or {}).get("requests") or 0
    for g in gates:
        scope = g.rule.scope
        stats = doc["overall"] if scope is None else (doc.get("queries") or {}).get(scope) or {}
        have = stats.get("requests") if g.rule.metric == "errors" else (stats.get("latency_ms") or {}).get("count")
        missing = gate_needs(g) - int(have or 0)
        if missing > 0:
            share = (int(have or 0) / total) if scope is not None and total and have else 1.0
            short = max(short, math.ceil(missing / max(share, 0.01)))
    return short


def planned_requests(gates: Sequence[Gate], workload: Sequence[QuerySpec]) -> int:
    """Requests a step at any rate must measure so that each gate can be read, with HEADROOM."""
    weights = {q.id: q.weight for q in workload}
    whole = sum(weights.values()) or 1.0
    need = 1
    for g in gates:
        share = weights.get(g.rule.scope, whole) / whole if g.rule.scope is not None else 1.0
        need = max(need, math.ceil(gate_needs(g) / max(share, 1e-6)))
    return math.ceil(need * HEADROOM)


@dataclass
class Try:
    """One run at a step's rate: its own warm-up, then as long as its sample needs (within the cap)."""
    doc: dict[str, Any]
    result: ProfileResult
    outcome: str  # pass | fail | undecided

    def as_dict(self) -> dict[str, Any]:
        o = self.doc["overall"]
        return {"outcome": self.outcome, "requests": o["requests"], "seconds": self.doc.get("seconds"),
                "warmup_sent": (self.doc.get("warmup") or {}).get("sent"), "throughput": o["throughput"],
                "error_rate": o["error_rate"], "latency_ms": o["latency_ms"], "gates": self.doc.get("gates") or []}


@dataclass
class Step:
    rate: float
    tries: list[Try]
    needed: int  # requests its gates need to be read

    @property
    def outcome(self) -> str:
        """A pass on its first try; a fail only when confirmed (two failing tries, the majority of at most
        three); undecided when a try could not gather the sample its gates need within the cap."""
        outcomes = [t.outcome for t in self.tries]
        if UNDECIDED in outcomes or not outcomes:
            return UNDECIDED
        return FAIL if outcomes.count(FAIL) * 2 > len(outcomes) else PASS

    @property
    def passed(self) -> bool:
        return self.outcome == PASS

    @property
    def decisive(self) -> Try | None:
        """The try whose figures stand for the step: the last one agreeing with its outcome."""
        agree = [t for t in self.tries if t.outcome == self.outcome]
        return agree[-1] if agree else (self.tries[-1] if self.tries else None)

    @property
    def client_bound(self) -> bool:
        """escli itself was busy (each worker on at least 90 % of a core): a higher rate would measure the client.
        Late sends or a falling throughput alone would not say it: a slow cluster causes those too."""
        t = self.decisive
        if t is None:
            return False
        cpu = (t.doc.get("client") or {}).get("cpu_percent") or 0.0
        return bool(cpu >= CLIENT_BOUND * 100.0 * (t.doc.get("workers") or 1))

    @property
    def interrupted(self) -> bool:
        return any(t.result.interrupted for t in self.tries)

    def as_dict(self) -> dict[str, Any]:
        t = self.decisive
        figures = t.as_dict() if t is not None else {"requests": 0, "seconds": 0.0, "throughput": 0.0,
                                                     "error_rate": 0.0, "latency_ms": {}, "gates": []}
        figures.pop("outcome", None)
        return {"rate": self.rate, "outcome": self.outcome, "passed": self.passed, "needed": self.needed,
                "client_bound": self.client_bound, **figures, "tries": [x.as_dict() for x in self.tries]}


@dataclass
class FindMax:
    start: float
    capacity: dict[str, Any] | None = None  # the closed-loop run the search started from
    steps: list[Step] = field(default_factory=list)
    interrupted: bool = False
    client_bound: bool = False  # stopped because the client could not send faster, not at a failing gate

    @property
    def best(self) -> Step | None:
        passing = [s for s in self.steps if s.passed]
        return max(passing, key=lambda s: s.rate) if passing else None

    @property
    def max_rate(self) -> float | None:
        b = self.best
        return b.rate if b is not None else None

    @property
    def min_failing_rate(self) -> float | None:
        failing = [s.rate for s in self.steps if s.outcome == FAIL]
        return min(failing) if failing else None

    def as_dict(self) -> dict[str, Any]:
        return {"max_rate": self.max_rate, "min_failing_rate": self.min_failing_rate,
                "undecided_rates": [s.rate for s in self.steps if s.outcome == UNDECIDED],
                "start_rate": self.start, "capacity": self.capacity, "client_bound": self.client_bound,
                "steps": [s.as_dict() for s in self.steps]}


def _round_rate(r: float) -> float:
    """Three significant digits: a rate a person can read and type again."""
    if r <= 0:
        return r
    digits = 2 - math.floor(math.log10(r))
    return round(r, max(digits, 0)) if digits > 0 else float(round(r, digits))


def search_max(step: Callable[[float], Step], start: float, precision: float = PRECISION,
               max_steps: int = MAX_STEPS, out: FindMax | None = None) -> FindMax:
    """From `start`, double the rate while steps pass (halve while they fail), then bisect between the highest
    passing and the lowest failing rate until they are within `precision`. An undecided step moves no bound and
    ends the search in its direction (a lower rate would need a longer step still)."""
    out = out if out is not None else FindMax(start)

    def run(rate: float) -> Step:
        s = step(rate)
        out.steps.append(s)
        out.interrupted = s.interrupted
        return s

    lo: float | None = None
    hi: float | None = None
    rate = _round_rate(start)
    while len(out.steps) < max_steps and not out.interrupted:
        s = run(rate)
        if s.outcome == UNDECIDED:
            return out
        if s.passed:
            lo = rate
            if hi is not None:
                break
            if s.client_bound:  # the gates hold but escli cannot send faster: more steps would measure escli
                out.client_bound = True
                return out
            rate = _round_rate(rate * 2)
        else:
            hi = rate
            if lo is not None:
                break
            rate = _round_rate(rate / 2)
            if rate < max(MIN_RATE, start / MAX_HALVINGS):  # far below the start: say so rather than crawl
                return out
    while (lo is not None and hi is not None and hi - lo > precision * lo and len(out.steps) < max_steps
           and not out.interrupted):
        mid = _round_rate((lo + hi) / 2)
        if mid in (lo, hi):
            break
        s = run(mid)
        if s.outcome == UNDECIDED:
            break
        if s.passed:
            lo = mid
        else:
            hi = mid
    return out


def find_max(run_once: Callable[[ProfileOptions], ProfileResult], opts: ProfileOptions,
             workload: Sequence[QuerySpec], gates: Sequence[Gate], finish: Callable[[ProfileResult], dict[str, Any]],
             *, start: float | None = None, step_seconds: float, cap: float = STEP_CAP,
             note: Callable[[str], None] = lambda s: None) -> FindMax:
    """profile --find-max: measure the closed-loop capacity (unless `start` is given), then search the open-loop
    rate. Each try of a step is its own run with its own warm-up, at least `step_seconds` long and as long as
    its gates need (up to `cap`, else undecided); a failing try is tried again before it counts."""
    needed = planned_requests(gates, workload)
    out = FindMax(start or 0.0)
    if start is None:
        closed = run_once(replace(opts, rate=None, iterations=None, duration=step_seconds))
        cap_doc = closed.as_dict()
        out.capacity = {"concurrency": opts.concurrency, "throughput": cap_doc["overall"]["throughput"],
                        "requests": cap_doc["overall"]["requests"], "seconds": cap_doc["seconds"]}
        if closed.interrupted:
            out.interrupted = True
            return out
        out.start = start = max(_round_rate(float(cap_doc["overall"]["throughput"])), MIN_RATE)
        note(f"find-max: closed-loop capacity {cap_doc['overall']['throughput']:g}/s at concurrency "
             f"{opts.concurrency}: the search starts there")

    def one_try(rate: float) -> Try:
        seconds = max(step_seconds, needed / rate)
        res: ProfileResult | None = None
        while True:
            part = run_once(replace(opts, rate=rate, iterations=None, duration=min(seconds, cap)))
            if res is None:
                res = part
            else:  # the same try, run on: its samples add (a fresh warm-up first: new connections)
                res.absorb(part.state(), after=True)
            doc = finish(res)
            short = sample_shortfall(doc, gates)
            used = res.seconds
            if res.interrupted or not short or used >= cap * 0.999:
                break
            seconds = min(cap - used, max(1.0, short * HEADROOM / rate))
        if short:
            outcome = UNDECIDED
        else:
            outcome = PASS if all(g["passed"] for g in doc["gates"]) and not res.interrupted else FAIL
        return Try(doc, res, outcome)

    def step(rate: float) -> Step:
        s = Step(rate, [], needed)
        if needed / rate > cap:  # an open loop sends `rate` a second: the cap cannot hold the sample
            note(f"find-max: {rate:g}/s undecided: its gates need {needed:,} requests, {needed / rate:,.0f} s at "
                 f"that rate (--max-step {cap:g}s)")
            return s
        s.tries.append(one_try(rate))
        # a failure is confirmed before the bound moves: the majority of at most three tries
        while [t.outcome for t in s.tries].count(FAIL) == 1 and len(s.tries) < 3 and not s.interrupted:
            s.tries.append(one_try(rate))
        note(f"find-max: {rate:g}/s {s.outcome} ({', '.join(str(t.doc['overall']['requests']) for t in s.tries)}"
             " requests)")
        return s

    return search_max(step, start, out=out)


def find_max_report(run_once: Callable[[ProfileOptions], ProfileResult], opts: ProfileOptions,
                    workload: Sequence[QuerySpec], gates: Sequence[Gate],
                    finish: Callable[[ProfileResult], dict[str, Any]], *, start: float | None, step_seconds: float,
                    cap: float, note: Callable[[str], None], warn: Callable[[str], None]
                    ) -> tuple[ProfileResult, dict[str, Any]]:
    """--find-max as the command reports it: the highest passing step's figures (or the last step's), with
    "max_rate", "min_failing_rate", "capacity" and every step's tries and sample sizes."""
    found = find_max(run_once, opts, workload, gates, finish, start=start, step_seconds=step_seconds, cap=cap,
                     note=note)
    chosen = found.best or (found.steps[-1] if found.steps else None)
    tried = chosen.decisive if chosen is not None else None
    if tried is None:  # nothing ran past the capacity (interrupted, or the first step undecided before running)
        result = run_once(replace(opts, rate=start or found.start or MIN_RATE, iterations=None,
                                  duration=step_seconds)) if not found.interrupted else None
        if result is None:
            raise KeyboardInterrupt
        result_doc = finish(result)
    else:
        result, result_doc = tried.result, tried.doc
    doc = {**result_doc, **found.as_dict()}
    if found.client_bound:
        warn(f"find-max: every gate held at {found.max_rate:g}/s but escli fell behind its schedule: "
             "this is the client's limit, not the cluster's (add --workers, or machines and merge)")
    if found.max_rate is None and not result.interrupted:
        why = ("the lowest rate tried was undecided: its gates need more requests than --max-step allows"
               if found.steps and found.steps[-1].outcome == UNDECIDED
               else f"lowest tried {found.steps[-1].rate:g}/s" if found.steps else "nothing was decided")
        warn(f"find-max: no rate passed every gate ({why})")
    elif found.steps and found.steps[-1].outcome == UNDECIDED:
        warn(f"find-max: {found.steps[-1].rate:g}/s was undecided (its gates need more requests than --max-step "
             "allows): the search stopped there")
    return result, doc
