"""benchmarks/gpu_check.py --smoke: the CPU-vs-CUDA comparison code run CPU against CPU (the second copy
of every registered plant and model moved with ``.to("cpu")``), where every difference must be exactly
0: the registry's plants and methods are deterministic from their seeds, so that on a GPU the only
differences left are those of floating-point arithmetic. Also runs the two-size scale ladder."""

import json
import os
import subprocess
import sys
from pathlib import Path

from pnnlab.registry import METHODS, PLANTS

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_smoke_compares_every_plant_and_method_and_finds_no_difference(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-W", "ignore", str(ROOT / "benchmarks" / "gpu_check.py"), "--smoke",
                           "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    rows = {(r["kind"], r["name"]): r for r in results["checks"]}
    expected = {("plant", e.name) for e in PLANTS.entries()} | {("method", e.name) for e in METHODS.entries()}
    assert set(rows) == expected
    bad = {name: r["failures"] for (_, name), r in rows.items() if not r["passed"] or r["max_abs"] != 0.0}
    assert not bad, f"not identical after .to('cpu'): {bad}"
    assert rows[("plant", "resistive_network")]["twins"] and rows[("plant", "memristor_crossbar")]["twins"]
    assert rows[("method", "equilibrium_propagation")]["on"] == "resistive_network"
    scale = results["scale"]
    assert [r["hidden"] for r in scale] == [8, 32]
    assert scale[1]["params"] > scale[0]["params"] > 1e4 and all(r["seconds"] > 0 for r in scale)
    assert "Scellier 2024" in done.stdout and "agree within tolerance" in done.stdout
