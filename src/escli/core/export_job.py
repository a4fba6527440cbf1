"""`escli export`'s use case around core.export.run_export: the columns (the index mapping read once, or the
checkpoint's), the output and the encoder the command builds from them, the count for a progress bar, the run,
and the commit of the output.

The output and the encoder are output/'s (files, parts, CSV and Parquet encoding): the command hands in
`open_output`, which builds both from the columns, and `schema_of`, which turns the chosen columns and the
mapping into a Parquet schema; this module never imports output/. SIGTERM and SIGHUP (cron, systemd,
Kubernetes) end the run as Ctrl-C does: `signal` then says which one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from escli.core.columns import choose_columns
from escli.core.export_state import OpenParts, PageEncoder

if TYPE_CHECKING:
    from escli.core.export_state import Checkpoint, ExportRequest, ExportResult
    from escli.settings import Settings
    from escli.ui import UI

Schema = tuple[tuple[str, str, bool], ...]  # (column, kind, is a list) per Parquet column


class Output(Protocol):
    bad_values: int
    array_misfits: set[str]
    open_parts: OpenParts

    def commit(self, rows: Sequence[int], manifest: dict[str, Any] | None = None) -> None: ...

    def abort(self, keep: bool) -> None: ...


class Encoder(PageEncoder, Protocol):
    def close(self) -> None: ...


OpenOutput = Callable[[list[str], Schema, int], tuple[Output, Encoder]]  # columns, schema, readers
# the chosen columns, the mapping and the fields that hold arrays -> the Parquet schema (built in output/)
SchemaOf = Callable[[list[str], Mapping[str, Any], Sequence[str]], list[Any]]


class ExportJob:
    """One export run; `output`, `encoder` and `signal` stay readable after a failure, for the command's
    clean-up (abort the output, keep the checkpoint, say which signal stopped it)."""

    def __init__(self, settings: Settings, req: ExportRequest, cp: Checkpoint, fmt: str, ui: UI, *,
                 source_only: bool, open_output: OpenOutput, schema_of: SchemaOf, count_first: bool,
                 version: str, array_fields: Sequence[str] = (), array_sample: int = 0) -> None:
        self.settings, self.req, self.cp, self.fmt, self.ui = settings, req, cp, fmt, ui
        self.source_only, self.open_output, self.schema_of = source_only, open_output, schema_of
        self.count_first, self.version = count_first, version
        self.output: Output | None = None
        self.encoder: Encoder | None = None
        self.signal: int | None = None
        self.bad_values = 0
        self.array_fields, self.array_sample = list(array_fields), array_sample
        self.array_misfits: set[str] = set()  # parquet: fields whose arrays met a scalar column

    async def run(self) -> ExportResult:
        import asyncio
        import signal

        from escli.core.export import count_matching, run_export
        from escli.core.export_plan import AUTO_READERS
        from escli.es.connect import open_es

        req, cp = self.req, self.cp
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def stop(signum: int) -> None:
            self.signal = signum
            task.cancel()

        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop, sig)
        readers = req.slices or AUTO_READERS
        resumed = cp.started and cp.written
        # Paced: as many requests in flight as readers, fewer while the cluster refuses (es/pace.py), said on stderr.
        async with open_es(self.settings, self.ui, concurrency=readers, paced=True) as es:
            columns, schema = await self._columns(es)
            self.output, self.encoder = output, encoder = self.open_output(columns, schema, readers)
            total = await count_matching(es, req) if self.count_first else None
            with self.ui.progress(f"export {req.index}", total=total) as bar:
                if resumed:
                    bar.advance(cp.written)
                result = await run_export(es, req, cp, encoder, output.open_parts, bar.advance, self.ui.detail)
            # Every page is encoded: the workers go before the commit (which for Parquet --out-dir loads pyarrow
            # here; --out has had it in its writer's thread all along), so their memory is gone by then.
            encoder.close()
            self.encoder = None
            output.commit(result.part_rows, {"escli_version": self.version, "index": req.index,
                                             "query": req.search_body(), "format": self.fmt,
                                             "partition": cp.request.get("partition")})
            self.output = None
            self.bad_values, self.array_misfits = output.bad_values, output.array_misfits
            return result

    async def _columns(self, es: Any) -> tuple[list[str], Schema]:
        """CSV: the header's columns; Parquet: the schema. A resumed run keeps the ones its parts began with."""
        req, cp = self.req, self.cp
        columns: list[str] = []
        if self.fmt == "csv":
            if "columns" not in cp.request:
                cp.request["columns"] = choose_columns(await es.mapping(req.index), req.fields)
            columns = list(cp.request["columns"])
            return (columns if self.source_only else ["_id", *[c for c in columns if c != "_id"]]), ()
        if self.fmt == "parquet":
            from escli.core.array_sample import sampled_schema

            if "schema" not in cp.request:
                mapping = await es.mapping(req.index)
                columns = choose_columns(mapping, req.fields)
                cp.request["schema"] = await sampled_schema(
                    es, req.index, req.search_body().get("query"),
                    lambda arrays: self.schema_of(columns, mapping, arrays), self.array_fields, self.array_sample,
                    self.ui.detail)
                columns = []
            return columns, tuple((str(n), str(k), bool(a)) for n, k, a in cp.request["schema"])
        return columns, ()
