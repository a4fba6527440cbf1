"""profile's gates and pictures against the real engine: --fail-if, --plot, and --report looked at as a person
would, in headless Chromium (Debian's chromium, installed by scripts/test-deps.sh), pixels read with Pillow."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Result

Cli = Callable[..., Result]
ROOT = Path(__file__).resolve().parents[2]
WORKLOAD = ROOT / "sample_queries" / "profile.ndjson"
PLOT_BG = (0xFA, 0xFB, 0xFD)  # output/report_html.PLOT_BG: the plot areas, where the charts are
CHARTS = ("chart-distribution", "chart-latency", "chart-throughput")


def queries_file(tmp_path: Path, index: str) -> Path:
    """The demo workload pointed at the test's sample index."""
    out = tmp_path / "queries.ndjson"
    lines = [ln.replace('"index":"products"', f'"index":"{index}"')
             for ln in WORKLOAD.read_text().splitlines() if ln.startswith("{")]
    out.write_text("\n".join(lines) + "\n")
    return out


def test_a_gate_that_must_trip_and_one_that_must_not(cli: Cli, sample_index: str) -> None:
    r = cli("profile", sample_index, "laptop", "-n", "200", "-F", "json",
            "--fail-if", "p50>1us", "--fail-if", "p99<60s", "--fail-if", "errors>0.1%", "--fail-if", "throughput<1")
    assert r.code == 1, r.stderr
    doc = json.loads(r.out)
    gates = {g["expr"]: g for g in doc["gates"]}
    assert not gates["p50>1us"]["passed"] and not gates["p99<60s"]["passed"]
    assert gates["errors>0.1%"]["passed"] and gates["throughput<1"]["passed"]
    assert gates["p50>1us"]["observed"] == doc["overall"]["latency_ms"]["p50"]
    lines = r.stderr.splitlines()
    assert [ln.split(":")[2].strip() for ln in lines if ln.startswith("escli: fail-if:")] == ["p50>1us", "p99<60s"]
    assert len([ln for ln in lines if "fail-if" in ln]) == 2

    r = cli("profile", sample_index, "laptop", "-n", "200", "-F", "table", "--fail-if", "laptop:p99>60s",
            "--fail-if", "p97>60s", "--fail-if", "errors>0")
    assert r.code == 0, r.stderr
    assert "fail-if" not in r.stderr and re.search(r"laptop:p99>60s\s+│ pass", r.out), r.out
    assert "p97" in r.out  # a gated percentile is measured and shown

    r = cli("profile", sample_index, "laptop", "-n", "200", "-F", "table", "--fail-if", "p90>0.001ms")
    assert r.code == 1 and "✗" in r.out and "FAIL" in r.out


def test_bad_gates_are_usage_errors(cli: Cli, sample_index: str) -> None:
    for expr, message in (("p99>fast", "--fail-if p99>fast: expected METRIC OP NUMBER"),
                          ("nope:p99>5ms", "--fail-if nope:p99>5ms: no query with id 'nope'"),
                          ("p99>5GB", "--fail-if p99>5GB: unit 'GB' does not fit p99"),
                          ("latency>5", "--fail-if latency>5: unknown metric 'latency'")):
        r = cli("profile", sample_index, "-n", "5", "--fail-if", expr)
        assert r.code == 2 and message in r.stderr and "Traceback" not in r.stderr, (expr, r.stderr)


def test_plot_draws_the_nines(cli: Cli, sample_index: str) -> None:
    r = cli("profile", sample_index, "laptop", "-n", "300", "-F", "table", "--plot")
    assert r.code == 0, r.stderr
    chart = r.out[r.out.index("latency percentiles, ms"):]
    rows = [ln.split() for ln in chart.splitlines()[1:] if ln.strip()]
    assert [row[0] for row in rows] == ["p0", "p50", "p90", "p99", "max"]  # p99.9 needs 1,000 samples
    # every row has a bar, however far the max (one spike) stretches the scale
    assert all(any(c in ln for c in "█▏▎▍▌▋▊▉") for ln in chart.splitlines()[2:5])
    r = cli("profile", sample_index, "laptop", "-n", "50", "-F", "json", "--plot")
    json.loads(r.out)  # stdout stays one JSON document; the chart went to stderr
    assert "latency percentiles, ms" in r.stderr


def test_the_result_carries_a_timeline_and_a_distribution(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    r = cli("profile", "--queries", str(queries_file(tmp_path, sample_index)), "-d", "2s", "-j", "2", "-F", "json")
    doc = json.loads(r.out)
    tl = doc["timeline"]
    assert tl["interval_s"] == 1 and sum(row["ok"] for row in tl["overall"]) == doc["overall"]["ok"]
    for qid, rows in tl["queries"].items():
        assert sum(row["ok"] for row in rows) == doc["queries"][qid]["ok"]
    assert [row["t"] for row in tl["overall"]] == list(range(len(tl["overall"])))
    dist = doc["distribution"]["overall"]
    assert dist[0][0] == 0 and dist[-1] == [100.0, doc["overall"]["latency_ms"]["max"]]
    assert [p for p, _ in dist] == sorted(p for p, _ in dist) and [v for _, v in dist] == sorted(v for _, v in dist)
    p50 = next(v for p, v in dist if p == 50.0)
    assert p50 == doc["overall"]["latency_ms"]["p50"]


def chromium(html: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={out.parent / 'chromium-profile'}", *args, html.as_uri()],
        capture_output=True, text=True, check=True)


def chart_bands(png: Path) -> list[tuple[int, int, Any]]:
    """(top, bottom, image) of each horizontal band whose rows are mostly the plot background: one per chart."""
    from PIL import Image

    img = Image.open(png).convert("RGB")
    w, h = img.size
    px = img.load()
    rows = [sum(1 for x in range(0, w, 4) if px[x, y] == PLOT_BG) / (w / 4) > 0.25 for y in range(h)]
    spans: list[list[int]] = []
    for y, inside in enumerate(rows):
        if not inside:
            continue
        if spans and y - spans[-1][1] <= 4:  # a grid line crossing the plot area is not the chart's end
            spans[-1][1] = y
        else:
            spans.append([y, y])
    out = []
    for a, b in spans:
        if b - a > 50:
            xs = [x for x in range(w) for y in range(a, b, 7) if px[x, y] == PLOT_BG]  # the plot area's columns
            out.append((a, b, img.crop((min(xs), a, max(xs) + 1, b + 1))))
    return out


def test_report_is_self_contained_and_its_charts_render(cli: Cli, sample_index: str, tmp_path: Path) -> None:
    queries = str(queries_file(tmp_path, sample_index))
    base = tmp_path / "base.json"
    assert cli("profile", "--queries", queries, "-d", "3s", "-j", "2", "--save", str(base), "-F", "json").code == 0
    report = tmp_path / "report.html"
    r = cli("profile", "--queries", queries, "-d", "3s", "--rate", "80", "--compare", str(base),
            "--report", str(report), "--fail-if", "p50>1us", "-F", "json")
    assert r.code == 1 and f"report: {report}" in r.stderr, r.stderr
    html = report.read_text()
    # self-contained: nothing to fetch when it is opened
    assert not re.search(r"<script|<link|<img|@import|url\(|src=", html)
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html
    for chart in CHARTS:
        assert f'id="{chart}"' in html
    assert "(baseline)" in html and "stroke-dasharray" in html and "FAIL ✗" in html

    # The page as a browser lays it out: axis titles and tick labels are there ...
    dom = chromium(report, tmp_path / "x", "--dump-dom").stdout
    for label in ("latency (ms)", "percentile (log scale of 1/(1-p); last point: max)", "90%", "99%",
                  "seconds since measuring began", "latency per second (ms)", "answered requests per second",
                  "text-laptop", "agg-categories (baseline)"):
        assert label in dom, label
    # ... and in the screenshot each chart's plot area has lines drawn in it, not an empty frame.
    png = tmp_path / "report.png"
    chromium(report, tmp_path / "x", f"--screenshot={png}", "--window-size=1280,2600", "--hide-scrollbars")
    bands = chart_bands(png)
    assert len(bands) == 3, [(a, b) for a, b, _ in bands]
    from PIL import ImageStat

    for top, bottom, img in bands:
        stat = ImageStat.Stat(img)
        assert max(stat.stddev) > 5, (top, bottom, stat.stddev)  # not a flat area (grid lines alone: ~2)
        colours = img.getcolors(maxcolors=1 << 20) or []
        ink = sum(n for n, (r_, g, b) in colours if max(r_, g, b) - min(r_, g, b) > 80)  # saturated: the lines
        assert ink > 300, (top, bottom, ink)


@pytest.mark.parametrize("flag", ["--report", "--save"])
def test_report_and_save_need_an_existing_directory(cli: Cli, sample_index: str, tmp_path: Path,
                                                    flag: str) -> None:
    r = cli("profile", sample_index, "-n", "5", flag, str(tmp_path / "nope" / "r.html"))
    assert r.code == 2 and f"{flag} " in r.stderr and "does not exist" in r.stderr
