"""Every example runs (issue 7, section 7): the scripts with their epochs capped, the experiment files
through the command line with ``--epochs 1``. Each script runs in its own process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pnnlab.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "examples").glob("*.py"))
SPECS = sorted((ROOT / "examples").glob("*.toml"))
MAX_EPOCHS = 2

# runs an example with pnnlab.train capped at MAX_EPOCHS epochs (the examples' own settings take minutes)
RUNNER = f"""
import runpy, sys
import torch
torch.set_num_threads(1)
import pnnlab
_train = pnnlab.train
def capped(*args, **kwargs):
    kwargs["epochs"] = min(kwargs.get("epochs", 10), {MAX_EPOCHS})
    kwargs["progress"] = False
    return _train(*args, **kwargs)
pnnlab.train = capped
sys.argv = [sys.argv[1]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def test_there_are_examples():
    assert SCRIPTS and SPECS


#: what a script must print besides its results
EXPECTED = {"02_custom_plant.py": "rejected: read_noise must be a finite zero or positive number, got -0.01"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_example_script_runs(script, tmp_path):
    result = subprocess.run([sys.executable, "-c", RUNNER, str(script)], cwd=tmp_path, env=_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert result.stdout.strip(), f"{script.name} printed nothing"
    assert EXPECTED.get(script.name, "") in result.stdout


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_example_experiment_file_runs(spec, tmp_path):
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["run", str(spec), "--epochs", "1", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    (folder,) = list(out.iterdir())
    assert json.loads((folder / "status.json").read_text())["status"] == "completed"
    assert json.loads((folder / "config.json").read_text())["train"]["epochs"] == 1
    assert "test (final)" in result.output


SWEEPS = sorted((ROOT / "examples" / "sweeps").glob("*.toml"))


@pytest.mark.parametrize("sweep", SWEEPS, ids=lambda p: p.name)
def test_example_sweep_runs(sweep, tmp_path):
    """Each example sweep, serially, with one epoch and its first two seeds and configurations."""
    from pnnlab.experiments.spec import load_spec

    spec = load_spec(sweep)
    spec["train"] = {**spec.get("train", {}), "epochs": 1}
    spec["sweep"]["seeds"] = spec["sweep"].get("seeds", [0])[:2]
    spec["sweep"]["grid"] = {k: v[:2] for k, v in spec["sweep"].get("grid", {}).items()}
    small = tmp_path / sweep.name
    small.write_text(_toml(spec))
    result = CliRunner().invoke(main, ["sweep", str(small), "--serial", "--out", str(tmp_path / "sweeps")])
    assert result.exit_code == 0, result.output
    assert "test @ val-chosen %" in result.output
    (folder,) = list((tmp_path / "sweeps").iterdir())
    assert (folder / "table.md").is_file() and (folder / "accuracy_vs_queries.png").is_file()


def _toml(spec: dict) -> str:
    """A minimal TOML writer for example specs (tables of scalars and lists; one level of sub-tables)."""
    def value(v):
        return json.dumps(v)

    lines = [f"{k} = {value(v)}" for k, v in spec.items() if not isinstance(v, dict)]
    for name, table in spec.items():
        if not isinstance(table, dict):
            continue
        lines.append(f"[{name}]")
        lines += [f"{json.dumps(k)} = {value(v)}" for k, v in table.items() if not isinstance(v, dict)]
        for sub, inner in table.items():
            if isinstance(inner, dict):
                lines.append(f"[{name}.{sub}]")
                lines += [f"{json.dumps(k)} = {value(v)}" for k, v in inner.items()]
    return "\n".join(lines) + "\n"
