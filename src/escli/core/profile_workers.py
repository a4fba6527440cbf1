"""`escli profile --workers N`: one profile run by N processes, merged exactly into one result.

One Python process runs out of CPU long before a cluster of many nodes does (about 19k requests/s here against a
trivial server, where wrk drives 65k). Each worker is a process of its own (the spawn context: nothing of the
parent's event loop, sockets or threads is inherited), builds its own settings, Es and event loop from picklable
inputs, and runs `run_profile` on its share of the load:

* closed loop: the concurrency C split as evenly as it goes, each worker at least 1;
* open loop: each worker at rate R/N on a schedule of its own; with the fixed schedule worker k starts k/R after
  the common start, so the N schedules interleave into one at rate R (a Poisson process at R/N from each is a
  Poisson process at R). Each send is still timed from its own intended start.

--iterations and warm-up requests are split exactly (the counts add up to what was asked); --duration and a
warm-up by time apply to every worker, and all workers start together: the parent waits until each one is ready
(connections may be opened, modules imported), then gives them one start time on the machine's monotonic clock.
Each worker hands back `ProfileResult.state()`, the exact histograms, which add into one result: never an average
of percentiles.

Ctrl-C: the workers ignore SIGINT (a terminal sends it to the whole process group; a second one inside a worker
would break its clean stop); the parent, on SIGINT, sends each worker SIGTERM, which cancels its run as Ctrl-C
cancels a run in one process, and the worker hands back what it measured.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from escli.core.profile import ProfileOptions, Warmup, encode_query, preflight, run_profile
from escli.core.profile_result import ProfileResult
from escli.profiler import RequestStats

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from escli.es.queries import QuerySpec
    from escli.settings import Settings
    from escli.ui import UI

PROGRESS_EVERY = 0.2  # seconds between a worker's progress reports: a shared counter per request would cost more
START_MARGIN = 0.05  # the common start is this far after the last worker is ready: every one is asleep by then


def cores() -> int:
    """`--workers auto`: one per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def split_even(total: int, parts: int) -> list[int]:
    """`total` in `parts` shares that differ by at most one and add up to `total`."""
    return [total // parts + (1 if k < total % parts else 0) for k in range(parts)]


def plan(opts: ProfileOptions, workers: int) -> list[ProfileOptions]:
    """Each worker's options; together they are `opts`."""
    conc = [max(1, c) for c in split_even(opts.concurrency, workers)]
    iters: list[int | None] = list(split_even(opts.iterations, workers)) if opts.iterations is not None \
        else [None] * workers
    warm = split_even(opts.warmup.requests, workers)
    out: list[ProfileOptions] = []
    for k in range(workers):
        rate = opts.rate / workers if opts.rate else None
        offset = k / opts.rate if opts.rate and opts.schedule == "fixed" else 0.0
        out.append(replace(opts, concurrency=conc[k], iterations=iters[k], rate=rate, offset=offset,
                           warmup=Warmup(requests=warm[k], seconds=opts.warmup.seconds),
                           # worker 0 keeps the seed, so a run with one worker picks as it always did
                           seed=None if opts.seed is None else opts.seed + 7919 * k))
    return out


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def _worker_main(settings: Settings, queries: Sequence[QuerySpec], opts: ProfileOptions, conn: Connection,
                       start: Any, progress: Any) -> dict[str, Any]:
    from escli.es.connect import open_es

    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    pending = 0
    last = time.perf_counter()

    def on_progress(n: int) -> None:
        nonlocal pending, last
        pending += n
        now = time.perf_counter()
        if now - last >= PROGRESS_EVERY:
            with progress.get_lock():
                progress.value += pending
            pending, last = 0, now

    async def wait_for_start() -> None:
        conn.send(("ready", None))
        # Polled, not waited for in a thread: a cancelled wait must not leave a thread blocked behind.
        while start.value == 0.0:
            await asyncio.sleep(0.005)
        await asyncio.sleep(max(start.value - time.perf_counter(), 0.0))

    async with open_es(settings, _WorkerUI(conn), concurrency=opts.concurrency) as client:
        result = await run_profile(client, queries, opts, on_progress, check_first=False,
                                   before_start=wait_for_start)
    with progress.get_lock():
        progress.value += pending
    return result.state()


class _WorkerUI:
    """A worker's UI: the server's warnings go to the parent, which shows each text once for the whole run;
    nothing else is said from a worker."""

    def __init__(self, conn: Connection) -> None:
        from escli.ui import SILENT

        self.conn = conn
        self.verbose = 0
        self.error = self.warn = self.info = self.detail = SILENT.info
        self.progress = SILENT.progress

    def server_warning(self, text: str) -> None:
        self.conn.send(("warning", text))


class _OnceUI:
    """The parent's UI, each server warning once: the preflight and every worker hear the same texts."""

    def __init__(self, ui: UI) -> None:
        self.seen: set[str] = set()
        self.server_warnings = ui.server_warning
        self.verbose = ui.verbose
        self.error, self.warn, self.info, self.detail, self.progress = ui.error, ui.warn, ui.info, ui.detail, \
            ui.progress

    def server_warning(self, text: str) -> None:
        if text not in self.seen:
            self.seen.add(text)
            self.server_warnings(text)


def worker_entry(settings: Settings, queries: Sequence[QuerySpec], opts: ProfileOptions, conn: Connection,
                 start: Any, progress: Any) -> None:
    """A worker process: run its share and send ("done", state), ("interrupted", None) or ("error", exc)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us (SIGTERM); see the module's docstring
    try:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            state = runner.run(_worker_main(settings, queries, opts, conn, start, progress))
        conn.send(("done", state))
    except (asyncio.CancelledError, KeyboardInterrupt):
        conn.send(("interrupted", None))
    except Exception as exc:  # handed to the parent, which reports it as a run in one process would
        import pickle

        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        conn.send(("error", exc))
    finally:
        conn.close()


def run_in_workers(settings: Settings, queries: Sequence[QuerySpec], opts: ProfileOptions, workers: int, ui: UI,
                   on_progress: Callable[[int], None] = lambda n: None) -> ProfileResult:
    """The whole run in `workers` processes, merged; Ctrl-C (KeyboardInterrupt here) stops every worker and the
    result says `interrupted`. A worker's error is raised here once every worker has stopped."""
    import multiprocessing as mp
    from multiprocessing.connection import Connection, wait

    from escli.es.connect import open_es

    once = _OnceUI(ui)

    async def check() -> None:  # each query once, here, before any worker starts (they skip it)
        async with open_es(settings, once) as client:
            await preflight(client, [encode_query(q) for q in queries])

    asyncio.run(check())
    ctx = mp.get_context("spawn")
    start = ctx.Value("d", 0.0)
    progress = ctx.Value("q", 0)
    procs: list[Any] = []
    conns: dict[Connection, int] = {}
    early = False  # Ctrl-C while the workers were being started
    try:
        for k, wopts in enumerate(plan(opts, workers)):
            mine, theirs = ctx.Pipe(duplex=False)
            p = ctx.Process(target=worker_entry, args=(settings, list(queries), wopts, theirs, start, progress),
                            name=f"escli-profile-{k}", daemon=True)
            # SIGINT blocked while the worker is made: it inherits the blocked signal through exec, so a Ctrl-C
            # while it imports cannot kill it half-way (it ignores SIGINT once running); here the Ctrl-C stays
            # pending and arrives as KeyboardInterrupt once unblocked, instead of being ignored and lost.
            old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            try:
                p.start()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
            theirs.close()
            procs.append(p)
            conns[mine] = k
    except KeyboardInterrupt:
        early = True
    result = ProfileResult(opts, list(queries), per_query={q.id: RequestStats() for q in queries},
                           workers=workers)
    ready: set[int] = set()
    error: BaseException | None = None
    stopping = False
    shown = 0

    def stop() -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)

    if early:
        result.interrupted = True
        stop()
    try:
        while conns:
            try:
                for c in wait(list(conns), timeout=0.1):
                    assert isinstance(c, Connection)
                    k = conns[c]
                    payload: Any
                    try:
                        kind, payload = c.recv()
                    except EOFError:  # gone without a word (killed): nothing of it to merge
                        kind, payload = "interrupted", None
                    if kind == "warning":
                        once.server_warning(payload)
                        continue
                    if kind == "ready":
                        ready.add(k)
                        if len(ready) == workers and not stopping:
                            start.value = time.perf_counter() + START_MARGIN
                        continue
                    del conns[c]
                    if kind == "done":
                        result.absorb(payload)
                    elif kind == "interrupted":
                        result.interrupted = True
                    elif error is None:
                        error = payload
                        stop()  # one worker failed: the run is over for all of them
                n = progress.value
                if n > shown:
                    on_progress(n - shown)
                    shown = n
            except KeyboardInterrupt:
                result.interrupted = True
                stop()
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join()
    if error is not None:
        raise error
    if stopping and error is None:
        result.interrupted = True
    result.workers = workers
    return result
