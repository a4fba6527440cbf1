"""Profile past one run: saved runs merged (`profile merge`), `--repeat K` and its spread, `--find-max`.

Pure functions over results and their JSON form; the runs themselves are the caller's (`run` callables), so the
same code drives a run in one process or in workers.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from escli.core.profile import FIGURES, STATE_VERSION, ProfileOptions, ProfileResult, Warmup
from escli.errors import UsageError
from escli.es.queries import QuerySpec
from escli.profiler import RequestStats, parse_percentiles

# --------------------------------------------------------------------------------------------------------------
# escli profile merge RUN.json...


def load_saved_run(path: str) -> dict[str, Any]:
    """A run saved with --save that carries the exact histograms ("state"); one clear line otherwise."""
    try:
        with open(path, "rb") as fh:
            doc = orjson.loads(fh.read())
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON ({exc.args[0] if exc.args else exc})") from None
    if not isinstance(doc, dict) or doc.get("escli_profile") != 1 or not isinstance(doc.get("overall"), dict):
        raise UsageError(f"{path}: not a profile saved by `escli profile --save`")
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


# --------------------------------------------------------------------------------------------------------------
# --find-max: the highest open-loop rate at which every gate holds

PRECISION = 0.05  # bisect until the failing rate is within 5 % of the passing one
MAX_STEPS = 24
MIN_RATE = 0.01
MAX_HALVINGS = 64  # below start/64 the gates are not about the rate
CLIENT_BOUND = 0.9


@dataclass
class Step:
    rate: float
    passed: bool
    doc: dict[str, Any]
    result: ProfileResult

    @property
    def client_bound(self) -> bool:
        """escli itself was busy (each worker on at least 90 % of a core): a higher rate would measure the client.
        Late sends or a falling throughput alone would not say it: a slow cluster causes those too."""
        cpu = (self.doc.get("client") or {}).get("cpu_percent") or 0.0
        return bool(cpu >= CLIENT_BOUND * 100.0 * (self.doc.get("workers") or 1))

    def as_dict(self) -> dict[str, Any]:
        o = self.doc["overall"]
        return {"rate": self.rate, "passed": self.passed, "client_bound": self.client_bound,
                "requests": o["requests"], "throughput": o["throughput"],
                "error_rate": o["error_rate"], "latency_ms": o["latency_ms"], "gates": self.doc.get("gates") or []}


@dataclass
class FindMax:
    start: float
    steps: list[Step] = field(default_factory=list)
    interrupted: bool = False
    client_bound: bool = False  # stopped because the client fell behind its schedule, not at a failing gate

    @property
    def best(self) -> Step | None:
        passing = [s for s in self.steps if s.passed]
        return max(passing, key=lambda s: s.rate) if passing else None

    @property
    def max_rate(self) -> float | None:
        b = self.best
        return b.rate if b is not None else None


def _round_rate(r: float) -> float:
    """Three significant digits: a rate a person can read and type again."""
    if r <= 0:
        return r
    digits = 2 - math.floor(math.log10(r))
    return round(r, max(digits, 0)) if digits > 0 else float(round(r, digits))


def find_max(run: Callable[[float], Step], start: float, precision: float = PRECISION,
             max_steps: int = MAX_STEPS) -> FindMax:
    """Double the rate from `start` while every gate holds (halve while none does), then bisect between the last
    passing and the first failing rate until they are within `precision` of each other."""
    out = FindMax(start)

    def step(rate: float) -> Step:
        s = run(rate)
        out.steps.append(s)
        out.interrupted = s.result.interrupted
        return s

    lo: float | None = None
    hi: float | None = None
    rate = _round_rate(start)
    while len(out.steps) < max_steps and not out.interrupted:
        s = step(rate)
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
        if step(mid).passed:
            lo = mid
        else:
            hi = mid
    return out
