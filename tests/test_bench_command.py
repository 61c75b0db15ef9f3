"""`pnnlab bench` (issue 12, section 3): runs the catalogued benchmarks, each in its own process, and
writes a Markdown and HTML report with the paper's figure, ours, the settings, the wall time and the
plots; a failing benchmark is reported and makes the command fail; bad requests are refused."""

from __future__ import annotations

import json
import textwrap

import pytest
from click.testing import CliRunner

from pnnlab.bench import BenchError, load_catalog, run_bench
from pnnlab.cli import main

SCRIPT = textwrap.dedent('''
    import argparse, sys
    from _report import record
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--plot", default=None)
    parser.add_argument("--fail", action="store_true")
    args = parser.parse_args()
    if args.fail:
        sys.exit("diverged")
    print("table", "smoke" if args.smoke else "full")
    record("ours (on the plant)", [0.91, 0.93, 0.92])
    record("baseline", [0.5])
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        plt.plot([0, 1], [0, 1])
        plt.savefig(args.plot)
''')


@pytest.fixture
def bench_dir(tmp_path):
    d = tmp_path / "benchmarks"
    d.mkdir()
    (d / "_report.py").write_text((__import__("pathlib").Path(__file__).parents[1] / "benchmarks" / "_report.py").read_text())
    (d / "bench_fake.py").write_text(SCRIPT)
    (d / "bench_broken.py").write_text(SCRIPT)
    (d / "catalog.toml").write_text(textwrap.dedent('''
        [[result]]
        script = "bench_fake.py"
        title = "Fake result"
        paper = "92 % on a task"
        source = "Someone et al. (2020)"
        ours = "ours"
        plot = true
        full = ["--plot-free"]

        [[result]]
        script = "bench_broken.py"
        title = "Broken result"
        paper = "1 %"
        source = "Nobody (1999)"
        quick = ["--smoke", "--fail"]
    '''))
    return d


def test_quick_report_quotes_paper_ours_settings_time_and_plots(bench_dir, tmp_path):
    out = tmp_path / "report"
    results = run_bench(directory=bench_dir, out=out, quick=True, only=("bench_fake",))
    (r,) = results
    assert r["status"] == "ok" and r["ours"]["mean"] == pytest.approx(92.0) and r["ours"]["std"] == pytest.approx(1.0)
    md = (out / "report.md").read_text()
    assert "92.0 ± 1.0 % (n = 3; row “ours (on the plant)”)" in md and "92 % on a task (Someone et al. (2020))" in md
    assert "`python benchmarks/bench_fake.py --smoke --plot bench_fake.png`" in md and "NOT the published" in md
    assert "![Fake result](bench_fake.png)" in md and (out / "bench_fake.png").stat().st_size > 1000
    page = (out / "report.html").read_text()
    assert "<img src='bench_fake.png'" in page and "92.0 ± 1.0 %" in page
    assert "table smoke" in (out / "bench_fake.log").read_text()
    assert json.loads((out / "results.json").read_text())["header"]["mode"] == "quick"


def test_a_failing_benchmark_is_reported_and_fails_the_command(bench_dir, tmp_path):
    result = CliRunner().invoke(main, ["bench", "--quick", "--dir", str(bench_dir), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "bench_broken.py" in result.output
    md = (tmp_path / "r" / "report.md").read_text()
    assert "failed (exit 1)" in md and "diverged" in md and "| Fake result |" in md  # the others are kept


def test_bad_requests_are_refused(bench_dir, tmp_path):
    with pytest.raises(BenchError, match="not in the catalogue: \\['bench_nope'\\]"):
        run_bench(directory=bench_dir, out=tmp_path / "r", only=("bench_nope",))
    result = CliRunner().invoke(main, ["bench", "--dir", str(tmp_path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "no benchmark catalogue" in result.output
    (bench_dir / "catalog.toml").write_text('[[result]]\nscript = "bench_fake.py"\ntitle = "t"\n')
    with pytest.raises(BenchError, match="missing keys \\['paper', 'source'\\]"):
        load_catalog(bench_dir)


def test_the_project_catalogue_names_existing_scripts():
    from pathlib import Path

    entries = load_catalog(Path(__file__).parents[1] / "benchmarks")
    assert entries and all(e.source and e.paper for e in entries)
