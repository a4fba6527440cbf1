"""`escli export` against the real engine: exact id sets, formats, resume, interruption, pipes, open PITs."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from escli.output.flatten import cell, flatten
from escli.sample import generate

N = 20_000
EXE = str(Path(sys.executable).parent / "escli")


@pytest.fixture(scope="module")
def sample_docs() -> dict[str, dict[str, Any]]:
    """The sample index's documents, regenerated (deterministic), by id."""
    return {d["id"]: d for d in generate(N, 42)}


PIT_OPENED = re.compile(r"opened point in time (\S+)")
SCROLL_OPENED = re.compile(r"escli: scroll (\S+)")


def assert_released(es: httpx.Client, stderr: str | bytes) -> None:
    """Every PIT and scroll escli opened (it names them with -v) is gone from the cluster.

    (Not the node's open_contexts count: other suites share the engine and keep it moving.)
    """
    text = stderr.decode() if isinstance(stderr, bytes) else stderr
    pits, scrolls = PIT_OPENED.findall(text), SCROLL_OPENED.findall(text)
    assert pits or scrolls, "run escli with -v so that it names what it opens"
    for pit in pits:
        resp = es.post("/_search", json={"pit": {"id": pit}, "size": 0})
        assert resp.status_code == 404, f"point in time still open: {resp.text[:200]}"
    for scroll_id in scrolls:
        resp = es.post("/_search/scroll", json={"scroll_id": scroll_id, "scroll": "1m"})
        assert resp.status_code == 404, f"scroll still open: {resp.text[:200]}"


def ndjson_rows(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in data.splitlines() if line]


def ids_of(rows: list[dict[str, Any]]) -> list[str]:
    return [r["_id"] for r in rows]


@pytest.mark.parametrize("slices", ["1", "3"])
def test_ndjson_holds_every_id_once_with_sources(cli: Callable[..., Any], es: httpx.Client, sample_index: str,
                                                 sample_docs: dict[str, dict[str, Any]], slices: str) -> None:
    r = cli("-v", "export", sample_index, "--slices", slices, "--page-size", "700")
    assert r.code == 0, r.stderr
    rows = ndjson_rows(r.stdout)
    ids = ids_of(rows)
    assert len(ids) == N and set(ids) == set(sample_docs)
    for row in rows[:500] + rows[-500:]:
        assert row["_index"] == sample_index and row["_source"] == sample_docs[row["_id"]]
    assert f"exported {N} documents" in r.stderr and f"{slices} slice" in r.stderr
    assert_released(es, r.stderr)


def test_json_array_is_valid_and_exact(cli: Callable[..., Any], sample_index: str,
                                       sample_docs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    out = tmp_path / "all.json"
    r = cli("export", sample_index, "--out", str(out), "--slices", "2")
    assert r.code == 0, r.stderr
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert isinstance(rows, list) and len(rows) == N
    assert {x["_id"] for x in rows} == set(sample_docs)
    assert all(x["_source"] == sample_docs[x["_id"]] for x in rows)
    assert out.stat().st_mode & 0o777 == 0o600
    # an empty result is still a valid array
    r = cli("export", sample_index, "--format", "json", "--query", "id:nope-nothing")
    assert r.code == 0 and json.loads(r.stdout) == []


def expected_csv_row(doc: dict[str, Any], columns: list[str], excel_safe: bool = False) -> list[str]:
    flat = flatten({"_id": doc["id"], **doc})
    return [cell(flat.get(c), excel_safe) for c in columns]


@pytest.mark.parametrize("slices", ["1", "4"])
def test_csv_parses_back_to_flattened_documents(cli: Callable[..., Any], es: httpx.Client, sample_index: str,
                                                sample_docs: dict[str, dict[str, Any]], tmp_path: Path,
                                                slices: str) -> None:
    out = tmp_path / "all.csv"
    r = cli("-v", "export", sample_index, "--out", str(out), "--slices", slices)
    assert r.code == 0, r.stderr
    raw = out.read_bytes()
    assert b"\r\n" in raw  # RFC 4180 line ends
    reader = csv.reader(io.StringIO(raw.decode("utf-8"), newline=""))
    header = next(reader)
    assert header[0] == "_id"
    # the header comes from the mapping: fields that appear late (clearance) or only in some categories are there
    assert {"clearance", "specs.cpu", "specs.isbn_prefix", "specs.wireless", "name", "tags"} <= set(header)
    rows = list(reader)
    assert len(rows) == N and {row[0] for row in rows} == set(sample_docs)
    awkward = 0
    for row in rows:
        doc = sample_docs[row[0]]
        assert row == expected_csv_row(doc, header), row[0]
        awkward += doc["name"].startswith(("=", "+", '"', "Caf"))
    assert awkward > 100  # the quotes/commas/newlines/unicode/formula documents were among them
    clearance = header.index("clearance")
    assert sum(1 for row in rows if row[clearance]) == N // 20
    assert_released(es, r.stderr)


def test_excel_safe_neutralises_formulas(cli: Callable[..., Any], sample_index: str,
                                         sample_docs: dict[str, dict[str, Any]]) -> None:
    r = cli("export", sample_index, "--format", "csv", "--excel-safe", "--fields", "name,description,tags,price")
    assert r.code == 0, r.stderr
    rows = list(csv.reader(io.StringIO(r.out, newline="")))
    assert rows[0] == ["_id", "name", "description", "tags", "price"]
    by_id = {row[0]: row for row in rows[1:]}
    assert len(by_id) == N
    formula = [i for i, d in sample_docs.items() if d["name"] == "=SUM(A1:A9)"]
    plus = [i for i, d in sample_docs.items() if d["name"].startswith("+plus")]
    assert formula and plus
    for i in formula:
        assert by_id[i][1] == "'=SUM(A1:A9)" and by_id[i][2].startswith("'-starts with a minus")
    for i in plus:
        assert by_id[i][1].startswith("'+plus, @at")
    for i in list(by_id)[:50]:
        assert by_id[i] == expected_csv_row(sample_docs[i], rows[0], excel_safe=True)
        assert not by_id[i][4].startswith("'")  # numbers are left alone


@pytest.mark.parametrize(("max_docs", "slices"), [(1234, "3"), (1, "2"), (0, "1"), (25_000, "2")])
def test_max_docs_is_exact(cli: Callable[..., Any], es: httpx.Client, sample_index: str,
                           sample_docs: dict[str, dict[str, Any]], max_docs: int, slices: str) -> None:
    r = cli("-v", "export", sample_index, "--max-docs", str(max_docs), "--slices", slices, "--page-size", "500")
    assert r.code == 0, r.stderr
    ids = ids_of(ndjson_rows(r.stdout))
    assert len(ids) == min(max_docs, N) == len(set(ids))
    assert set(ids) <= set(sample_docs)
    assert_released(es, r.stderr)


def test_fields_and_query(cli: Callable[..., Any], es: httpx.Client, sample_index: str,
                          sample_docs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    r = cli("export", sample_index, "--fields", "name, specs.cpu", "--query", "category:laptops")
    assert r.code == 0, r.stderr
    rows = ndjson_rows(r.stdout)
    laptops = {i for i, d in sample_docs.items() if d["category"] == "laptops"}
    assert set(ids_of(rows)) == laptops and len(rows) == len(laptops)
    for row in rows:
        doc = sample_docs[row["_id"]]
        want: dict[str, Any] = {"name": doc["name"]}
        if "cpu" in doc.get("specs", {}):
            want["specs"] = {"cpu": doc["specs"]["cpu"]}
        assert row["_source"] == want
    # CSV header from --fields; --body adds a query and a sort that is honoured
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"query": {"range": {"price": {"gte": 100}}}, "sort": [{"price": "desc"}]}))
    r = cli("export", sample_index, "--body", str(body), "--fields", "price,name", "--format", "csv",
            "--source-only", "--query", "category:books")
    assert r.code == 0, r.stderr
    rows2 = list(csv.reader(io.StringIO(r.out, newline="")))
    assert rows2[0] == ["price", "name"]
    prices = [float(row[0]) for row in rows2[1:]]
    want_n = sum(1 for d in sample_docs.values() if d["category"] == "books" and d["price"] >= 100)
    assert len(prices) == want_n and prices == sorted(prices, reverse=True)


def test_gzip_output_and_source_only(cli: Callable[..., Any], sample_index: str,
                                     sample_docs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    out = tmp_path / "all.ndjson.gz"
    r = cli("export", sample_index, "--out", str(out), "--source-only", "--page-size", "3000")
    assert r.code == 0, r.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    with gzip.open(out, "rb") as fh:
        docs = [orjson.loads(line) for line in fh]
    assert len(docs) == N and {d["id"]: d for d in docs} == sample_docs
    assert not list(tmp_path.glob(".*escli-partial"))
    # the gzip is a standard one: the gzip tool reads it too
    listed = subprocess.run(["gzip", "-t", str(out)], capture_output=True, check=False)
    assert listed.returncode == 0, listed.stderr


def test_export_then_import_gives_the_same_documents(cli: Callable[..., Any], es: httpx.Client,
                                                     sample_index: str, index_name: Callable[[str], str],
                                                     tmp_path: Path) -> None:
    out = tmp_path / "dump.ndjson"
    r = cli("export", sample_index, "--out", str(out))
    assert r.code == 0, r.stderr
    target = index_name("copy")
    mapping = es.get(f"/{sample_index}/_mapping").json()[sample_index]["mappings"]
    mfile = tmp_path / "mapping.json"
    mfile.write_text(json.dumps(mapping))
    r = cli("import", target, str(out), "--mapping", str(mfile))
    assert r.code == 0, r.stderr
    r2 = cli("export", target, "--source-only")
    r1 = cli("export", sample_index)
    copied = {row["_id"]: row["_source"] for row in ndjson_rows(cli("export", target).stdout)}
    original = {row["_id"]: row["_source"] for row in ndjson_rows(r1.stdout)}
    assert len(copied) == N and copied == original
    assert len(ndjson_rows(r2.stdout)) == N


def test_scroll_method_is_exact_and_cleared(cli: Callable[..., Any], es: httpx.Client, sample_index: str,
                                            sample_docs: dict[str, dict[str, Any]]) -> None:
    r = cli("-v", "export", sample_index, "--method", "scroll", "--slices", "2", "--max-docs", "15000")
    assert r.code == 0, r.stderr
    ids = ids_of(ndjson_rows(r.stdout))
    assert len(ids) == 15000 == len(set(ids)) and set(ids) <= set(sample_docs)
    assert "scroll)" in r.stderr and len(SCROLL_OPENED.findall(r.stderr)) == 2
    assert_released(es, r.stderr)
    r = cli("-v", "export", sample_index, "--method", "scroll", "--slices", "3")
    ids = ids_of(ndjson_rows(r.stdout))
    assert len(ids) == N and set(ids) == set(sample_docs)
    assert_released(es, r.stderr)


def test_errors_are_one_line_with_exit_codes(cli: Callable[..., Any], sample_index: str, tmp_path: Path) -> None:
    r = cli("export", "no-such-index-xyz")
    assert r.code == 4 and "no-such-index-xyz" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = cli("export", sample_index, "--checkpoint", str(tmp_path / "cp.json"))
    assert r.code == 2 and "--checkpoint needs --out" in r.stderr
    r = cli("export", sample_index, "--slices", "zero")
    assert r.code == 2 and "--slices zero" in r.stderr
    r = cli("export", sample_index, "--format", "table")
    assert r.code == 2 and "--format table" in r.stderr
    body = tmp_path / "b.json"
    body.write_text('{"size": 5, "query": {"match_all": {}}}')
    r = cli("export", sample_index, "--body", str(body))
    assert r.code == 2 and f"--body {body}: size" in r.stderr
    body.write_text("{nope")
    r = cli("export", sample_index, "--body", str(body))
    assert r.code == 2 and f"--body {body}: invalid JSON" in r.stderr
    r = cli("export", sample_index, "--out", str(tmp_path / "x.ndjson"), "--checkpoint", str(tmp_path / "cp.json"),
            "--resume")
    assert r.code == 2 and "nothing to resume" in r.stderr
    for option in ("--out", "--checkpoint"):  # refused before anything is asked (it used to leave a PIT open)
        args = {"--out": str(tmp_path / "x.ndjson"), option: str(tmp_path / "missing" / "f.json")}
        r = cli("-v", "export", sample_index, *[x for kv in args.items() for x in kv])
        assert r.code == 2 and f"{option} {tmp_path / 'missing' / 'f.json'}: directory" in r.stderr, r.stderr
        assert "point in time" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = cli("export", sample_index, "--query", "name:(unclosed AND")
    assert r.code == 4 and "Traceback" not in r.stderr
    r = cli("--url", "http://127.0.0.1:9", "--max-retries", "0", "--timeout", "2", "export", sample_index)
    assert r.code == 3 and "cluster unreachable" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob(".*escli-partial"))


def test_failed_export_leaves_no_partial_file(cli: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    r = cli("export", "no-such-index-xyz", "--out", str(out))
    assert r.code == 4
    assert not out.exists() and not list(tmp_path.iterdir())


# --- real processes: signals, pipes -------------------------------------------------------------------------------

def spawn(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    """In a process group of its own, so a test can signal it the way a terminal does (`ctrl_c`)."""
    return subprocess.Popen([EXE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)


def ctrl_c(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to the whole group, as a terminal's Ctrl-C: the export's encoder workers get it too."""
    os.killpg(proc.pid, signal.SIGINT)


def wait_for_progress(cp: Path, proc: subprocess.Popen[bytes], at_least: int = 1) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"export ended before it could be interrupted: {proc.stderr.read()!r}"  # type: ignore[union-attr]
                        , pytrace=False)
        try:
            state = orjson.loads(cp.read_bytes())
            if state.get("written", 0) >= at_least:
                return state  # type: ignore[no-any-return]
        except (FileNotFoundError, orjson.JSONDecodeError):
            pass
        time.sleep(0.01)
    pytest.fail("no progress recorded in the checkpoint", pytrace=False)


@pytest.mark.parametrize("fmt", ["ndjson.gz", "csv", "json", "parquet"])
def test_sigint_then_resume_gives_the_exact_set(isolated_env: dict[str, str], cli: Callable[..., Any],
                                                es: httpx.Client, sample_index: str,
                                                sample_docs: dict[str, dict[str, Any]], tmp_path: Path,
                                                fmt: str) -> None:
    out = tmp_path / f"dump.{fmt}"
    cp = tmp_path / "export.checkpoint"
    args = ("export", sample_index, "--out", str(out), "--checkpoint", str(cp), "--slices", "3",
            *(("--array-fields", "tags") if fmt == "parquet" else ()))
    proc = spawn(isolated_env, "-v", *args, "--page-size", "20")
    wait_for_progress(cp, proc, at_least=200)
    ctrl_c(proc)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err and b"--resume" in err
    # one error line, the checkpoint's (issue 36: a second "escli: error: interrupted" followed it)
    assert [x for x in err.decode().splitlines() if x.startswith("escli: error:")] == [
        next(x for x in err.decode().splitlines() if x.startswith("escli: error: interrupted after "))]
    state = orjson.loads(cp.read_bytes())
    assert 0 < state["written"] < N and state["status"] == "interrupted"
    assert cp.stat().st_mode & 0o777 == 0o600
    assert not out.exists()  # only the partial file, under its temporary name
    assert_released(es, err)  # Ctrl-C closed our PIT
    r = cli("-v", *args, "--resume")
    assert r.code == 0, r.stderr
    assert not cp.exists() and out.exists()
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
        assert rows[0][0] == "_id" and rows.count(rows[0]) == 1
        ids = [row[0] for row in rows[1:]]
    elif fmt == "json":
        ids = [x["_id"] for x in json.loads(out.read_bytes())]
    elif fmt == "parquet":  # the first run wrote row groups as units finished; the resumed one, from the spools
        import pyarrow.parquet as pq

        ids = pq.read_table(out, columns=["_id"]).column("_id").to_pylist()
    else:
        with gzip.open(out, "rb") as fh:
            ids = [orjson.loads(line)["_id"] for line in fh]
    assert len(ids) == N and set(ids) == set(sample_docs)
    assert_released(es, r.stderr)


def test_resume_after_the_pit_is_gone(isolated_env: dict[str, str], cli: Callable[..., Any], es: httpx.Client,
                                      sample_index: str, sample_docs: dict[str, dict[str, Any]],
                                      tmp_path: Path) -> None:
    """A killed export (no chance to close anything) whose PIT then expired: --resume opens a new one."""
    out = tmp_path / "dump.ndjson"
    cp = tmp_path / "cp.json"
    args = ("export", sample_index, "--out", str(out), "--checkpoint", str(cp), "--slices", "2",
            "--keep-alive", "1s")
    proc = spawn(isolated_env, *args, "--page-size", "25")
    wait_for_progress(cp, proc, at_least=300)
    proc.kill()
    proc.wait(timeout=30)
    state = orjson.loads(cp.read_bytes())
    assert state["pit_id"] and 0 < state["written"] < N
    # The keep-alive was 1s; the server reaps expired contexts once a minute, so expire it now, as the reaper would
    # (deleting it is the event the resume must cope with; no waiting for the keep-alive to pass).
    es.request("DELETE", "/_pit", json={"id": state["pit_id"]})
    assert es.post("/_search", json={"pit": {"id": state["pit_id"]}, "size": 1}).status_code == 404
    r = cli("-v", *args, "--resume", "--page-size", "500")
    assert r.code == 0, r.stderr
    rows = ndjson_rows(out.read_bytes())
    assert len(rows) == N and set(ids_of(rows)) == set(sample_docs)
    assert all(row["_source"] == sample_docs[row["_id"]] for row in rows)
    assert "opened point in time" in r.stderr  # the recorded one was gone: a new one, closed at the end
    assert_released(es, r.stderr)


def test_closed_stdout_is_quiet(isolated_env: dict[str, str], es: httpx.Client, sample_index: str) -> None:
    for fmt in ("ndjson", "csv"):
        proc = subprocess.run(f"set -o pipefail; '{EXE}' export {sample_index} --format {fmt} | head -1",
                              shell=True, executable="/bin/bash", capture_output=True, env=isolated_env,
                              timeout=120, check=False)
        assert proc.stdout.count(b"\n") == 1
        assert proc.stderr == b"", proc.stderr
        assert proc.returncode in (0, 141)
        # the same with -v (stderr to a file) names the PIT, which must be closed although stdout went away
        log = subprocess.run(f"'{EXE}' -v export {sample_index} --format {fmt} | head -1 >/dev/null",
                             shell=True, executable="/bin/bash", capture_output=True, env=isolated_env,
                             timeout=120, check=False)
        assert b"Traceback" not in log.stderr
        assert_released(es, log.stderr)


@pytest.mark.parametrize("fmt", ["ndjson", "parquet"])
def test_a_file_that_cannot_be_written_is_named_and_nothing_is_kept(isolated_env: dict[str, str], es: httpx.Client,
                                                                     sample_index: str, tmp_path: Path,
                                                                     fmt: str) -> None:
    """A write that fails half-way (here a file size limit: EFBIG, as a full disk gives ENOSPC) is one line that
    names the output and how far the run got; the partial file is removed and the PIT closed."""
    out = tmp_path / f"x.{fmt}"
    runs = [(f"--out '{out}'", f"--out {out}: file too large after ")]
    if fmt == "ndjson":  # parquet is written to a file only
        runs.append((f"> '{tmp_path / 'stdout.ndjson'}'", "stdout: file too large after "))
    for target, shown in runs:
        proc = subprocess.run(f"ulimit -f 256; exec '{EXE}' -v export {sample_index} --format {fmt} {target}",
                              shell=True, executable="/bin/bash", capture_output=True, env=isolated_env,
                              timeout=120, check=False)
        errors = [line for line in proc.stderr.decode().splitlines() if line.startswith("escli: error")]
        assert proc.returncode == 1 and len(errors) == 1 and shown in errors[0], proc.stderr
        assert "Traceback" not in proc.stderr.decode()
        assert ("what came out is incomplete" if target.startswith(">") else "nothing was kept") in errors[0]
        assert_released(es, proc.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["stdout.ndjson"] if fmt == "ndjson" else [])


def test_progress_stays_off_when_stderr_is_not_a_terminal(escli_proc: Callable[..., Any],
                                                          sample_index: str) -> None:
    p = escli_proc("export", sample_index, "--max-docs", "3000", "--page-size", "100")
    assert p.returncode == 0
    assert p.stderr.decode().strip().splitlines() == [line for line in p.stderr.decode().strip().splitlines()
                                                      if line.startswith("escli: exported 3000")]
    assert "\r" not in p.stderr.decode() and "\x1b" not in p.stderr.decode()


@pytest.mark.es8
def test_exports_from_elasticsearch_8(cli: Callable[..., Any], es8: httpx.Client, index_name: Callable[[str], str],
                                      tmp_path: Path) -> None:
    index = index_name("es8")
    es8.put(f"/{index}", json={"settings": {"number_of_shards": 2, "number_of_replicas": 0}}).raise_for_status()
    lines = b"".join(b'{"index":{"_id":"d%d"}}\n{"n":%d,"s":"x,\\"y\\""}\n' % (i, i) for i in range(2500))
    es8.post(f"/{index}/_bulk", params={"refresh": "true"}, content=lines,
             headers={"content-type": "application/x-ndjson"}).raise_for_status()
    from tests.conftest import ES8_URL

    try:
        r = cli("--url", ES8_URL, "export", index, "--page-size", "300", "--format", "csv")
        assert r.code == 0, r.stderr
        rows = list(csv.reader(io.StringIO(r.out, newline="")))
        assert rows[0] == ["_id", "n", "s"] and len(rows) == 2501
        assert {row[0] for row in rows[1:]} == {f"d{i}" for i in range(2500)}
        assert all(row[2] == 'x,"y"' for row in rows[1:])
    finally:
        es8.delete(f"/{index}")


def test_export_leaves_the_process_as_it_found_it(cli: Callable[..., Any], sample_index: str) -> None:
    """In-process runs (these tests, an embedding program): export's gc thresholds end with the command."""
    import gc
    import warnings

    before, shown = gc.get_threshold(), warnings.showwarning
    r = cli("export", sample_index, "--max-docs", "10")
    assert r.code == 0, r.stderr
    assert gc.get_threshold() == before and warnings.showwarning is shown
