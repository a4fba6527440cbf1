"""`escli export` --out-dir, --partition, signals and a PIT lost mid-run, against the real engine."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.integration.test_export import (
    PIT_OPENED,
    N,
    assert_released,
    ctrl_c,
    ids_of,
    ndjson_rows,
    sample_docs,  # noqa: F401  (fixture)
    spawn,
    wait_for_progress,
)


def part_ids(d: Path) -> list[str]:
    ids: list[str] = []
    for p in sorted(d.glob("part-*")):
        raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        if ".csv" in p.name:
            rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
            assert rows[0][0] == "_id"
            ids += [r[0] for r in rows[1:]]
        else:
            ids += ids_of(ndjson_rows(raw))
    return ids


def check_manifest(d: Path, index: str) -> dict[str, Any]:
    manifest: dict[str, Any] = orjson.loads((d / "_manifest.json").read_bytes())
    assert manifest["index"] == index and manifest["escli_version"]
    assert sorted(p["file"] for p in manifest["parts"]) == sorted(p.name for p in d.glob("part-*"))
    for p in manifest["parts"]:
        data = (d / p["file"]).read_bytes()
        assert len(data) == p["bytes"] and hashlib.sha256(data).hexdigest() == p["sha256"]
    assert manifest["documents"] == sum(p["documents"] for p in manifest["parts"])
    assert (d / "_manifest.json").stat().st_mode & 0o777 == 0o600
    return manifest


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
def test_out_dir_parts_and_manifest(cli: Callable[..., Any], sample_index: str,
                                    sample_docs: dict[str, dict[str, Any]], tmp_path: Path,  # noqa: F811
                                    fmt: str) -> None:
    d = tmp_path / "dump"
    args = ["export", sample_index, "--out-dir", str(d), "--format", fmt, "--slices", "3", "--page-size", "500"]
    if fmt == "csv":
        args.append("--gzip")
    r = cli(*args)
    assert r.code == 0, r.stderr
    manifest = check_manifest(d, sample_index)
    assert len(manifest["parts"]) == 3 and manifest["documents"] == N and manifest["format"] == fmt
    ids = part_ids(d)
    assert len(ids) == N and set(ids) == set(sample_docs)
    again = cli(*args)
    assert again.code == 2 and "_manifest.json" in again.stderr and "--force" in again.stderr
    assert cli(*args, "--force").code == 0
    check_manifest(d, sample_index)


def test_partitions_together_hold_the_index_once(cli: Callable[..., Any], isolated_env: dict[str, str],
                                                 es: httpx.Client, sample_index: str,
                                                 sample_docs: dict[str, dict[str, Any]],  # noqa: F811
                                                 tmp_path: Path) -> None:
    for n in (2, 3):
        seen: list[str] = []
        for k in range(1, n + 1):
            out = tmp_path / f"p{k}of{n}.ndjson"
            r = cli("export", sample_index, "--partition", f"{k}/{n}", "--out", str(out), "--page-size", "700")
            assert r.code == 0, r.stderr
            got = ids_of(ndjson_rows(out.read_bytes()))
            assert 0 < len(got) < N
            seen += got
        assert len(seen) == N and set(seen) == set(sample_docs)
    # a partition is resumable on its own: interrupt 1/2, resume it, and the pair is still the index
    out, cp = tmp_path / "r1.ndjson", tmp_path / "r1.ckpt"
    args = ("export", sample_index, "--partition", "1/2", "--out", str(out), "--checkpoint", str(cp))
    proc = spawn(isolated_env, "-v", *args, "--page-size", "20")
    wait_for_progress(cp, proc, at_least=200)
    ctrl_c(proc)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert_released(es, err)
    r = cli("-v", *args, "--resume")
    assert r.code == 0, r.stderr
    other = tmp_path / "p2of2.ndjson"
    ids = ids_of(ndjson_rows(out.read_bytes())) + ids_of(ndjson_rows(other.read_bytes()))
    assert len(ids) == N and set(ids) == set(sample_docs)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_checkpoint_close_the_pit_and_resume(
        cli: Callable[..., Any], isolated_env: dict[str, str], es: httpx.Client, sample_index: str,
        sample_docs: dict[str, dict[str, Any]], tmp_path: Path, sig: signal.Signals, code: int) -> None:  # noqa: F811
    d, cp = tmp_path / "dump", tmp_path / "cp.json"
    args = ("export", sample_index, "--out-dir", str(d), "--checkpoint", str(cp), "--slices", "2")
    proc = spawn(isolated_env, "-v", *args, "--page-size", "20")
    wait_for_progress(cp, proc, at_least=300)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert b"Traceback" not in err and b"--resume" in err
    assert orjson.loads(cp.read_bytes())["status"] == "interrupted"
    assert not (d / "_manifest.json").exists() and not list(d.glob("part-*"))  # parts only under hidden names
    assert_released(es, err)
    r = cli("-v", *args, "--resume")
    assert r.code == 0, r.stderr
    check_manifest(d, sample_index)
    ids = part_ids(d)
    assert len(ids) == N and set(ids) == set(sample_docs)
    assert_released(es, r.stderr)


def test_sigterm_on_stdout_closes_the_pit(isolated_env: dict[str, str], es: httpx.Client,
                                          sample_index: str) -> None:
    proc = spawn(isolated_env, "-v", "export", sample_index, "--page-size", "10")
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(200_000)  # well into the export, and its pipe kept full from here on
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert b"Traceback" not in err and b"SIGTERM" in err
    assert_released(es, err)


@pytest.mark.parametrize("target", ["file", "stdout", "parquet"])
def test_pit_lost_mid_run_still_gives_the_exact_set(isolated_env: dict[str, str], es: httpx.Client,
                                                    sample_index: str, sample_docs: dict[str, dict[str, Any]],  # noqa: F811
                                                    tmp_path: Path, target: str) -> None:
    """The PIT is closed under the running export: units in progress are read again in a new PIT, their output
    cut back (file) or their already written documents left out (stdout)."""
    out = tmp_path / ("dump.parquet" if target == "parquet" else "dump.ndjson")
    args = ["-v", "export", sample_index, "--slices", "3", "--page-size", "25"]
    if target != "stdout":  # parquet: row groups written as units finish, while others are read again
        args += ["--out", str(out), "--checkpoint", str(tmp_path / "cp.json")]
    if target == "parquet":
        args += ["--array-fields", "tags"]
    proc = spawn(isolated_env, *args)
    assert proc.stdout is not None and proc.stderr is not None
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stdout.read(65536), b"")))  # type: ignore[union-attr]
    reader.start()
    first = proc.stderr.readline().decode()
    pit = PIT_OPENED.search(first)
    assert pit, first
    if target != "stdout":
        wait_for_progress(tmp_path / "cp.json", proc, at_least=300)
    while target == "stdout" and sum(map(len, chunks)) < 150_000 and proc.poll() is None:
        time.sleep(0.005)  # some documents written before the PIT goes
    es.request("DELETE", "/_pit", json={"id": pit.group(1)})
    rest = proc.stderr.read()
    proc.wait(timeout=120)
    reader.join()
    err = first + rest.decode()
    assert proc.returncode == 0, err
    if target == "parquet":
        import pyarrow.parquet as pq

        ids = pq.read_table(out, columns=["_id"]).column("_id").to_pylist()
    else:
        ids = ids_of(ndjson_rows(out.read_bytes() if target == "file" else b"".join(chunks)))
    assert len(ids) == N and set(ids) == set(sample_docs), err
    assert "point in time reopened" in err and "read again" in err
    assert_released(es, err)


def test_out_dir_makes_its_missing_parents(cli: Callable[..., Any], sample_index: str, tmp_path: Path) -> None:
    """`--out-dir nightly/$(date +%F)` works on the first night (issue 36), and a parent that cannot be made is
    one line naming the option, exit 2."""
    d = tmp_path / "nightly" / "2026-12-06"
    r = cli("export", sample_index, "--out-dir", str(d), "--max-docs", "5")
    assert r.code == 0, r.stderr
    assert orjson.loads((d / "_manifest.json").read_bytes())["documents"] == 5
    assert d.stat().st_mode & 0o777 == 0o700
    (tmp_path / "file").write_text("")
    r = cli("export", sample_index, "--out-dir", str(tmp_path / "file" / "x"), "--max-docs", "5")
    assert r.code == 2 and r.stderr.strip().startswith(f"escli: error: --out-dir {tmp_path / 'file' / 'x'}: cannot")
