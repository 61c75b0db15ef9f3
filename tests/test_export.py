"""Export to hardware (issue 12, section 4): the trained settings of a run in the formats labs program
(control tables with units, phase-map PNGs with the SLM's wrap and quantisation, MZI mesh phase tables,
crossbar conductances and pulse programs) reproduce the trained network, and the programming-error
tolerance analysis."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch import nn

import pnnlab
from pnnlab import ChannelAffine, ControlSpec, PhysicalLayer, Plant, Simulated, Twin
from pnnlab.cli import main
from pnnlab.execution import OnTrueTwin
from pnnlab.experiments.run import run
from pnnlab.export import ExportError, export_run, load_trained_model, phase_levels, tolerance_analysis
from pnnlab.metering import CostModel
from pnnlab.registry import MODELS
from pnnlab.train import evaluate

MESH_SPEC = {"name": "mesh", "seed": 1, "data": {"name": "iris"},
             "model": {"name": "photonic_mesh", "layers": 1, "activation": None},
             "methods": [{"name": "in_silico"}, {"name": "pat"}], "train": {"epochs": 2, "batch_size": 32}}


@pytest.fixture(scope="module")
def mesh_run(tmp_path_factory):
    return run(MESH_SPEC, out_dir=tmp_path_factory.mktemp("runs"), warm_up=False).folder


def test_mesh_export_tables_reprogram_the_trained_network(mesh_run):
    result = export_run(mesh_run, method="pat")
    model, _, _, data = load_trained_model(mesh_run, "pat")
    (layer,) = [m for m in model.modules() if isinstance(m, PhysicalLayer)]
    entry = result.manifest["layers"][0]
    here = result.folder / entry["layer"]
    with (here / "mesh_phases.csv").open() as f:
        rows = [r for r in csv.reader(f)]
    n_mzis = layer.plant.layout.n_mzis
    assert rows[0][:6] == ["mzi", "column", "top_mode", "bottom_mode", "theta [rad]", "phi [rad]"]
    table = rows[1:1 + n_mzis]
    theta = np.array([float(r[4]) for r in table])
    assert [int(r[1]) for r in table] == [int(c) for c in layer.plant.layout.mzi_column]
    assert np.all((theta >= 0) & (theta < 2 * math.pi))
    # the exported values, programmed back, give the trained network's outputs on the true physics
    exported = {name: torch.from_numpy(np.load(here / f"{name}.npy")).float() for name in entry["controls"]}
    x = data.x_test[:16]
    twin = layer.true_twin()
    assert torch.allclose(twin(x, exported), twin(x, layer.control_values()), atol=1e-5)
    p_pi = layer.plant.heaters.p_pi_W
    assert float(table[0][6]) == pytest.approx(p_pi * theta[0] / math.pi)  # heater power for that phase
    assert entry["tables"]["dac_bits"] is None and len(rows[0]) == 8  # a continuous drive: no DAC codes
    digital = np.load(result.folder / "digital.npz")
    assert digital.files and not any("controls" in k for k in digital.files)
    assert json.loads((result.folder / "manifest.json").read_text())["method"] == "pat"


def test_phase_levels_wrap_and_quantise_like_an_slm(tmp_path):
    two_pi = 2 * math.pi
    phase = np.array([[0.0, math.pi, two_pi - 1e-9], [two_pi / 256 * 0.49, two_pi / 256 * 0.51, 3 * two_pi / 4]])
    levels = phase_levels(phase, two_pi, 0.0, 8)
    assert levels.dtype == np.uint8 and levels.tolist() == [[0, 128, 0], [0, 1, 192]]
    assert phase_levels(phase, two_pi, 0.0, 16)[0].tolist() == [0, 32768, 0]


class SLMPlant(Plant, Simulated):
    """A 4x4 phase-only SLM followed by a fixed unitary and detectors (a tiny free-space test plant)."""

    def __init__(self, *, features_in=4, features_out=3, seed=0):
        super().__init__(in_features=features_in, out_features=features_out, seed=seed,
                         cost=CostModel(seconds_per_query=1e-3, seconds_per_sample=1e-6, source="test"))
        g = torch.Generator().manual_seed(seed)
        self._mix = torch.randn(features_out, 16, generator=g) / 4
        self._enc = torch.randn(16, features_in, generator=g)

    def control_specs(self):
        return {"mask": ControlSpec((4, 4), 0.0, 2 * math.pi, unit="rad", periodic=True, description="SLM phases")}

    def _measure(self, x, controls, generator):
        return _SLMTwin(self)(x, controls)

    def nominal_twin(self):
        return _SLMTwin(self)

    def true_twin(self):
        return _SLMTwin(self)


class _SLMTwin(Twin):
    def __init__(self, plant):
        super().__init__(in_features=plant.in_features, out_features=plant.out_features)
        self.mix, self.enc = plant._mix, plant._enc

    def forward(self, x, controls):
        field = (x @ self.enc.T) * torch.cos(controls["mask"].reshape(-1))
        return (field @ self.mix.T) ** 2


def build_slm(*, in_features, n_classes, seed=0):
    plant = SLMPlant(features_in=in_features, features_out=n_classes, seed=seed)
    return nn.Sequential(PhysicalLayer(plant, twin=plant.nominal_twin(),
                                       initial_controls=plant.initial_controls(torch.Generator().manual_seed(seed))),
                         ChannelAffine(n_classes))


def test_periodic_2d_controls_export_as_png_phase_maps(tmp_path):
    saved = dict(MODELS._entries)
    try:
        pnnlab.register("model", "slm_test", build_slm)
        folder = run({"name": "slm", "data": {"name": "iris"}, "model": {"name": "slm_test"},
                      "method": {"name": "pat"}, "train": {"epochs": 1}}, out_dir=tmp_path, warm_up=False).folder
        result = export_run(folder)
        info = result.manifest["layers"][0]["controls"]["mask"]
        here = result.folder / result.manifest["layers"][0]["layer"]
        mask = np.load(here / "mask.npy")
        for bits in (8, 16):
            png = np.array(Image.open(here / info["phase_maps"][str(bits)]["png"]))
            assert png.shape == (4, 4) and (png == phase_levels(mask, 2 * math.pi, 0.0, bits)).all()
            assert info["phase_maps"][str(bits)]["rms_quantisation_error"] <= 2 * math.pi / 2 ** bits / 2
        coarse = export_run(folder, out=tmp_path / "coarse", slm_bits=(2,))
        assert coarse.manifest["layers"][0]["controls"]["mask"]["phase_maps"]["2"]["rms_quantisation_error"] > \
            info["phase_maps"]["8"]["rms_quantisation_error"]
    finally:
        MODELS._entries = saved


def test_crossbar_pulse_program_follows_the_controller_step(tmp_path):
    from pnnlab.export.hardware import _crossbar_tables
    from pnnlab.plants.electronics.crossbar import MemristorCrossbarPlant

    plant = MemristorCrossbarPlant(in_features=3, out_features=2)
    d = plant.device_model
    g = {"g_plus": np.full((2, 3), d.g_min_S + 10.4 * d.step_up * d.range_S),
         "g_minus": np.full((2, 3), d.g_min_S)}
    info = _crossbar_tables(tmp_path, plant, g)
    assert info["total_pulses"] == 60 and info["energy_J"] == pytest.approx(60 * d.pulse_energy_J)
    assert info["row_parallel_seconds"] == pytest.approx(2 * 10 * d.pulse_duration_s)
    with (tmp_path / "conductances.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0][2] == "g_plus [S]" and float(rows[1][4]) == pytest.approx(10.4 * d.step_up * d.range_S)


def test_tolerance_analysis_starts_at_the_trained_accuracy_and_falls(mesh_run, tmp_path):
    model, _, _, data = load_trained_model(mesh_run, "pat")
    trained = evaluate(model, *data.split("test"), execution=OnTrueTwin())["accuracy"]
    rows = tolerance_analysis(mesh_run, method="pat", sizes=(0.0, 0.3), draws=3, out=tmp_path)
    assert rows[0]["accuracy_mean"] == pytest.approx(trained) and rows[0]["draws"] == 1
    assert rows[1]["accuracy_mean"] < rows[0]["accuracy_mean"]  # 30 % of 2 pi per phase scrambles the mesh
    again = tolerance_analysis(mesh_run, method="pat", sizes=(0.3,), draws=3, out=tmp_path)
    assert again[0]["accuracy_mean"] == rows[1]["accuracy_mean"]  # paired, seeded draws
    assert (tmp_path / "tolerance.png").is_file() and (tmp_path / "tolerance.csv").is_file()
    with pytest.raises(ValueError, match="sizes must be finite"):
        tolerance_analysis(mesh_run, sizes=(-0.1,))


def test_export_refuses_unfinished_runs_and_unknown_methods(mesh_run, tmp_path):
    with pytest.raises(ExportError, match="no config.json"):
        export_run(tmp_path)
    with pytest.raises(ExportError, match="its methods: in_silico, pat"):
        export_run(mesh_run, method="spsa")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((mesh_run / "config.json").read_text())
    (broken / "status.json").write_text(json.dumps({"status": "failed"}))
    with pytest.raises(ExportError, match="failed, not completed"):
        export_run(broken)


def test_cli_export_with_tolerance(mesh_run, tmp_path):
    result = CliRunner().invoke(main, ["export", str(mesh_run), "--method", "in_silico", "--out", str(tmp_path / "e"),
                                       "--tolerance", "0,0.05", "--draws", "2"])
    assert result.exit_code == 0, result.output
    assert "exported in_silico" in result.output and "0.05" in result.output
    assert (tmp_path / "e" / "manifest.json").is_file() and (tmp_path / "e" / "tolerance.csv").is_file()


def test_mesh_table_carries_dac_codes_when_the_chip_has_a_dac(tmp_path):
    from pnnlab.export.hardware import _mesh_table
    from pnnlab.plants.photonics.mesh_physics import Heaters
    from pnnlab.plants.photonics.mzi_mesh import MZIMesh

    plant = MZIMesh(n_ports=4, heaters=Heaters(dac_bits=12))
    n = plant.layout.n_mzis
    values = {"theta": np.linspace(0, 6, n), "phi": np.full(n, math.pi), "psi": np.zeros(4)}
    info = _mesh_table(tmp_path, plant, values)
    with (tmp_path / "mesh_phases.csv").open() as f:
        rows = list(csv.reader(f))
    assert info["dac_bits"] == 12 and rows[0][-1] == "phi DAC code (12-bit)"
    assert [int(r[8]) for r in rows[1:1 + n]] == [round(t / (2 * math.pi) * 4096) % 4096 for t in values["theta"]]
    assert int(rows[1][9]) == 2048


SHG_SPEC = {"name": "shg", "seed": 2, "data": {"name": "iris"},
            "model": {"name": "shg_classifier", "resolution_pixels": 64, "points_per_pixel": 2, "mismatch": "typical"},
            "method": {"name": "pat"}, "train": {"epochs": 2, "batch_size": 16}}


def test_edge_artefact_runs_without_pnnlab_and_reproduces_the_twin_predictions(tmp_path):
    import subprocess
    import sys

    from pnnlab.export import export_edge

    folder = run(SHG_SPEC, out_dir=tmp_path / "runs", warm_up=False).folder
    report = export_edge(folder)
    edge = folder / "export" / "pat" / "edge"
    assert report["check"]["max_abs_difference"] <= 1e-5 and report["check"]["samples"] > report["check"]["traced_batch"]
    model, _, _, data = load_trained_model(folder, "pat")
    from pnnlab.execution import OnTwin, executing
    with torch.no_grad(), executing(OnTwin()):
        logits = model(data.x_test)
    assert np.allclose(np.load(edge / "expected_logits.npy"), logits.numpy(), atol=1e-6)
    # a fresh process in which importing pnnlab fails: torch and numpy only
    code = ("import runpy, sys; sys.modules['pnnlab'] = None; sys.argv = ['predict.py', 'inputs.npy']; "
            "runpy.run_path('predict.py', run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], cwd=edge, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [int(k) for k in done.stdout.split()] == logits.argmax(dim=1).tolist()
    # the cost figures come from the plants' cost models, with their sources
    (layer,) = [m for m in model.modules() if isinstance(m, PhysicalLayer)]
    physical = report["per_inference"]["physical_part"]
    assert physical["layers"][0]["source"] == layer.plant.cost.source
    assert physical["per_inference_batch_1"]["seconds"] == pytest.approx(
        layer.plant.cost.seconds_per_query + layer.plant.cost.seconds_per_sample)
    cpu = report["per_inference"]["same_network_on_cpu"]
    assert cpu["latency_s_batch_1"] > 0 and cpu["flops"] > 0
    assert report["per_inference"]["same_network_on_gpu"]["latency_note"] == "not measured: no CUDA device here" \
        or report["per_inference"]["same_network_on_gpu"]["latency_s_per_sample_batch_256"] is not None
    # the hidden physics (SHG mismatch) is another network than the twin's
    true = export_edge(folder, physics="true", out=tmp_path / "true_edge")
    assert not np.allclose(np.load(tmp_path / "true_edge" / "expected_logits.npy"), logits.numpy(), atol=1e-4)
    assert true["physics"] == "true"


MESH2_SPEC = {"name": "mesh2", "seed": 3, "data": {"name": "iris"},
              "model": {"name": "photonic_mesh", "layers": 2},  # two meshes, an on-chip EO activation between
              "methods": [{"name": "adjoint"}], "train": {"epochs": 1, "batch_size": 32}}


def test_edge_artefact_of_a_mesh_network_runs_without_pnnlab_and_reproduces_its_twin_predictions(tmp_path):
    """An MZI-mesh network trained in situ (two meshes, an electro-optic activation plant between) exports
    as a torch.export program: the mesh engine records its plain-ops path (its fast custom autograd
    Functions cannot be exported), and in a fresh process without pnnlab the program's logits equal the
    trained model's on its twin (computed here by the fast path) to float tolerance, and predict.py's
    classes equal the model's."""
    import subprocess
    import sys

    from pnnlab.execution import OnTwin, executing
    from pnnlab.export import export_edge
    from pnnlab.plants.photonics.mesh_engine import plain_ops_active

    folder = run(MESH2_SPEC, out_dir=tmp_path / "runs", warm_up=False).folder
    report = export_edge(folder)
    edge = folder / "export" / "adjoint" / "edge"
    assert report["network"] == "network.pt2" and report["format"] == "torch.export", report["format"]
    assert not (edge / "network.ts").exists() and not plain_ops_active()
    model, _, _, data = load_trained_model(folder, "adjoint")
    layers = [m for m in model.modules() if isinstance(m, PhysicalLayer)]
    assert [type(layer.plant).__name__ for layer in layers] == ["MZIMesh", "ElectroOpticActivationPlant", "MZIMesh"]
    with torch.no_grad(), executing(OnTwin()):
        logits = model(data.x_test)  # the fast path (outside any tracer)
    assert np.allclose(np.load(edge / "expected_logits.npy"), logits.numpy(), atol=1e-6)
    code = ("import runpy, sys; sys.modules['pnnlab'] = None; sys.argv = ['predict.py', 'inputs.npy']; "
            "runpy.run_path('predict.py', run_name='__main__'); import numpy as np, torch; "
            "net = torch.export.load('network.pt2').module(); "
            f"np.save({str(tmp_path / 'fresh.npy')!r}, net(torch.from_numpy(np.load('inputs.npy')).float()).detach().numpy())")
    done = subprocess.run([sys.executable, "-c", code], cwd=edge, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [int(k) for k in done.stdout.split()] == logits.argmax(dim=1).tolist()
    fresh = torch.from_numpy(np.load(tmp_path / "fresh.npy"))
    assert fresh.shape == logits.shape and torch.allclose(fresh, logits, atol=1e-5, rtol=1e-5)
    assert len(report["per_inference"]["physical_part"]["layers"]) == 3
