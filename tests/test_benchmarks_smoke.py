"""Every benchmark runs with its fastest settings (``--smoke``), in a subprocess (issue 7, section 7).

Benchmarks print their figures rather than assert them; this only checks that each still runs end to
end and prints a table, so a change in the library cannot silently break a published figure's script.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted((ROOT / "benchmarks").glob("bench_*.py"))
TIMEOUT_S = 90  # a smoke run is meant to take ~15 s; the margin absorbs a loaded 2-core machine


def test_there_are_benchmarks():
    assert BENCHMARKS


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_benchmark_smoke_run(script, tmp_path):
    assert "--smoke" in script.read_text(), (f"{script.name} has no --smoke option: every benchmark accepts "
                                             f"--smoke (tiny settings, under ~15 s, the same table shape)")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH", "")])}
    env["PNNLAB_BENCH_RESULTS"] = str(tmp_path / "results.jsonl")
    result = subprocess.run([sys.executable, str(script), "--smoke"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    if result.stdout.startswith("skipped:"):  # a benchmark of real data in shared/data/, absent here
        pytest.skip(f"{script.name}: {result.stdout.strip()}")
    assert len(result.stdout.strip().splitlines()) >= 3, f"{script.name} --smoke printed no table:\n{result.stdout}"
    ours = CATALOGUED.get(script.name)
    if ours is not None:  # `pnnlab bench` quotes this row as our figure: the script must still record it
        import json
        rows = [json.loads(line)["name"] for line in (tmp_path / "results.jsonl").read_text().splitlines()] \
            if (tmp_path / "results.jsonl").is_file() else []
        assert any(name.startswith(ours) for name in rows), \
            f"{script.name} no longer records the row {ours!r} that benchmarks/catalog.toml quotes; it recorded {rows}"


def _catalogued() -> dict:
    from pnnlab.bench import load_catalog
    return {entry.script: entry.ours for entry in load_catalog(ROOT / "benchmarks") if entry.ours}


CATALOGUED = _catalogued()
