"""``pnnlab bench [--quick]``: the benchmarks that reproduce published results, as one command.

The catalogue (``benchmarks/catalog.toml``) lists, for each result, the script, the published figure
and its source, which of the script's rows is "ours", the arguments of the full run and of the quick
one, and whether the script draws a figure (``--plot PATH``). Each script runs in its own process (one
torch thread) with ``PNNLAB_BENCH_RESULTS`` pointing at a JSON-lines file its ``_report.record`` calls
append to; its output goes to a log. The report (``report.md`` and ``report.html``, figures beside
them) gives, per result: the paper's figure and source, ours (mean ± std over the seeds the script
ran, with the row it comes from), the command (the settings), the wall time, every recorded row and
the end of the log.

``--quick`` runs every script with its quick arguments (by default ``--smoke``): a few minutes on two
cores, a check that everything still runs, NOT the published comparison (the report says so on top).
The full suite is for machines with time.
"""

from __future__ import annotations

import html
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BenchEntry", "load_catalog", "run_bench"]

ENTRY_KEYS = {"script", "title", "paper", "source", "ours", "quick", "full", "plot", "timeout_s"}


class BenchError(ValueError):
    """A catalogue that cannot be read, or a request naming no catalogued benchmark."""


@dataclass
class BenchEntry:
    script: str
    title: str
    paper: str
    source: str
    ours: str | None = None
    quick: list[str] = field(default_factory=lambda: ["--smoke"])
    full: list[str] = field(default_factory=list)
    plot: bool = False
    timeout_s: float = 7200.0

    @property
    def stem(self) -> str:
        return Path(self.script).stem


def load_catalog(directory: str | Path) -> list[BenchEntry]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = Path(directory) / "catalog.toml"
    if not path.is_file():
        raise BenchError(f"no benchmark catalogue at {str(path)!r}: run pnnlab bench from the repository root "
                         f"(where benchmarks/ is) or pass --dir the folder holding catalog.toml.")
    raw = tomllib.loads(path.read_text()).get("result", [])
    entries = []
    for i, item in enumerate(raw):
        unknown = sorted(set(item) - ENTRY_KEYS)
        missing = sorted({"script", "title", "paper", "source"} - set(item))
        if unknown or missing:
            raise BenchError(f"{path}: [[result]] {i} ({item.get('script', '?')}): unknown keys {unknown}, "
                             f"missing keys {missing}; allowed: {sorted(ENTRY_KEYS)}.")
        entry = BenchEntry(**item)
        if not (Path(directory) / entry.script).is_file():
            raise BenchError(f"{path}: [[result]] {i} names {entry.script!r}, which is not in {str(directory)!r}.")
        entries.append(entry)
    return entries


def _ours(entry: BenchEntry, rows: list[dict]) -> dict | None:
    if entry.ours is None:
        return None
    for row in rows:
        if row["name"] == entry.ours:
            return row
    for row in rows:
        if row["name"].startswith(entry.ours):
            return row
    return None


def _figure(row: dict | None) -> str:
    if row is None or row.get("mean") is None:
        return "see the log"
    spec = ".1f" if row["unit"] == "%" else ".3g"
    return (f"{row['mean']:{spec}} ± {row['std']:{spec}} {row['unit']} (n = {row['n']}; "
            f"row “{row['name']}”)")


def _run_one(entry: BenchEntry, directory: Path, out: Path, quick: bool) -> dict:
    args = list(entry.quick if quick else entry.full)
    figure = None
    if entry.plot:
        figure = f"{entry.stem}.png"
        args += ["--plot", str(out / figure)]
    results = out / f"{entry.stem}.jsonl"
    results.unlink(missing_ok=True)
    env = {**os.environ, "PNNLAB_BENCH_RESULTS": str(results), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join([str(directory), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(directory / entry.script), *args]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=out,
                              timeout=300 if quick else entry.timeout_s)
        status = "ok" if done.returncode == 0 else f"failed (exit {done.returncode})"
        log = done.stdout + ("\n[stderr]\n" + done.stderr if done.stderr.strip() else "")
    except subprocess.TimeoutExpired as error:
        status = f"timed out after {error.timeout:.0f} s"
        log = (error.stdout or b"").decode() if isinstance(error.stdout, bytes) else (error.stdout or "")
    wall = time.perf_counter() - started
    (out / f"{entry.stem}.log").write_text(log)
    rows = [json.loads(line) for line in results.read_text().splitlines()] if results.is_file() else []
    if figure is not None and not (out / figure).is_file():
        figure = None
    display = " ".join(["python", f"benchmarks/{entry.script}", *[a if not a.startswith(str(out)) else Path(a).name
                                                                   for a in args]])
    return {"script": entry.script, "title": entry.title, "paper": entry.paper, "source": entry.source,
            "ours": _ours(entry, rows), "ours_row": entry.ours, "rows": rows, "command": display,
            "wall_seconds": wall, "status": status, "figure": figure, "log_tail": log.splitlines()[-60:]}


def _markdown(results: list[dict], header: dict) -> str:
    lines = ["# pnnlab benchmark report", "",
             f"{header['date']} · {header['machine']} · torch {header['torch']} · pnnlab {header['pnnlab']} · "
             f"mode: **{header['mode']}**", ""]
    if header["mode"] == "quick":
        lines += ["> Quick mode runs every benchmark with its smoke settings (tiny data, few epochs, one seed): a "
                  "check that each still runs end to end. Its numbers are NOT the published comparison; run "
                  "`pnnlab bench` (full) for those.", ""]
    lines += ["| result | paper | ours | settings | wall s | status |", "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['title']} | {r['paper']} ({r['source']}) | {_figure(r['ours'])} | `{r['command']}` | "
                     f"{r['wall_seconds']:.0f} | {r['status']} |")
    for r in results:
        lines += ["", f"## {r['title']}", "", f"- paper: {r['paper']} — {r['source']}", f"- ours: {_figure(r['ours'])}",
                  f"- command: `{r['command']}` ({r['wall_seconds']:.1f} s, {r['status']})"]
        if r["rows"]:
            lines += ["", "| row | mean | std | n | unit |", "|---|---|---|---|---|"]
            lines += [f"| {row['name']} | {row['mean']:.2f} | {row['std']:.2f} | {row['n']} | {row['unit']} |"
                      for row in r["rows"] if row.get("mean") is not None]
        if r["figure"]:
            lines += ["", f"![{r['title']}]({r['figure']})"]
        lines += ["", "<details><summary>end of the log</summary>", "", "```", *r["log_tail"], "```", "", "</details>"]
    return "\n".join(lines) + "\n"


def _html(results: list[dict], header: dict) -> str:
    e = html.escape
    parts = ["<!doctype html><meta charset='utf-8'><title>pnnlab benchmark report</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}pre{background:#f6f6f6;padding:8px;"
             "overflow:auto}.warn{background:#fff3cd;padding:8px}</style>",
             "<h1>pnnlab benchmark report</h1>",
             f"<p>{e(header['date'])} · {e(header['machine'])} · torch {e(header['torch'])} · pnnlab "
             f"{e(header['pnnlab'])} · mode: <b>{e(header['mode'])}</b></p>"]
    if header["mode"] == "quick":
        parts.append("<p class='warn'>Quick mode runs every benchmark with its smoke settings: a check that each "
                     "still runs. Its numbers are NOT the published comparison.</p>")
    parts.append("<table><tr><th>result</th><th>paper</th><th>ours</th><th>settings</th><th>wall s</th>"
                 "<th>status</th></tr>")
    for r in results:
        parts.append(f"<tr><td>{e(r['title'])}</td><td>{e(r['paper'])}<br><small>{e(r['source'])}</small></td>"
                     f"<td>{e(_figure(r['ours']))}</td><td><code>{e(r['command'])}</code></td>"
                     f"<td>{r['wall_seconds']:.0f}</td><td>{e(r['status'])}</td></tr>")
    parts.append("</table>")
    for r in results:
        parts.append(f"<h2>{e(r['title'])}</h2><p>paper: {e(r['paper'])} — {e(r['source'])}<br>ours: "
                     f"{e(_figure(r['ours']))}<br>command: <code>{e(r['command'])}</code> "
                     f"({r['wall_seconds']:.1f} s, {e(r['status'])})</p>")
        if r["rows"]:
            parts.append("<table><tr><th>row</th><th>mean</th><th>std</th><th>n</th><th>unit</th></tr>" + "".join(
                f"<tr><td>{e(row['name'])}</td><td>{row['mean']:.2f}</td><td>{row['std']:.2f}</td><td>{row['n']}</td>"
                f"<td>{e(row['unit'])}</td></tr>" for row in r["rows"] if row.get("mean") is not None) + "</table>")
        if r["figure"]:
            parts.append(f"<p><img src='{e(r['figure'])}' style='max-width:100%'></p>")
        parts.append("<details><summary>end of the log</summary><pre>" + e("\n".join(r["log_tail"])) + "</pre></details>")
    return "\n".join(parts) + "\n"


def run_bench(*, directory: str | Path = "benchmarks", out: str | Path = "bench-report", quick: bool = False,
              only: tuple[str, ...] = (), echo=None) -> list[dict]:
    """Run the catalogued benchmarks (all, or those whose script stem is in ``only``) and write
    ``report.md`` / ``report.html`` into ``out``. Returns one result dict per benchmark."""
    import torch

    from . import __version__

    directory = Path(directory).resolve()
    entries = load_catalog(directory)
    if only:
        wanted = {Path(o).stem for o in only}
        unknown = sorted(wanted - {e.stem for e in entries})
        if unknown:
            raise BenchError(f"not in the catalogue: {unknown}; catalogued: {', '.join(e.stem for e in entries)}.")
        entries = [e for e in entries if e.stem in wanted]
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    header = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPU(s), {platform.python_implementation()} "
                         f"{platform.python_version()}", "torch": torch.__version__, "pnnlab": __version__,
              "mode": "quick" if quick else "full"}
    results = []
    for entry in entries:
        if echo is not None:
            echo(f"{entry.stem} ...")
        results.append(_run_one(entry, directory, out, quick))
        if echo is not None:
            echo(f"  {results[-1]['status']}, {results[-1]['wall_seconds']:.0f} s: {_figure(results[-1]['ours'])}")
        (out / "report.md").write_text(_markdown(results, header))  # written as it goes: a stop keeps the rest
        (out / "report.html").write_text(_html(results, header))
    (out / "results.json").write_text(json.dumps({"header": header, "results": results}, indent=2, default=str))
    return results
