"""Fabrication-error tolerance (issue 12, section 4): every hidden-truth knob of a run's plants scaled by
factors, the trained controls loaded, accuracy on the trained chip and on fresh fabrication draws."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from pnnlab import PhysicalLayer
from pnnlab.cli import main
from pnnlab.execution import OnTrueTwin, OnTwin
from pnnlab.experiments.run import run
from pnnlab.export import discover_knobs, fabrication_tolerance, load_trained_model
from pnnlab.plants.photonics.mzi_mesh import CoherentDetection, Detector, Heaters, MeshFabrication, MZIMesh
from pnnlab.registry import MODELS, register
from pnnlab.train import evaluate


def _test_mesh(*, in_features: int, n_classes: int, seed: int = 0, phase_offset: float = 0.0,
               coupler: float = 0.0, loss_db: float = 0.0) -> nn.Sequential:
    """One 4-port MZI mesh, coherent detection of n_classes ports, a linear read-out of the quadratures
    (a power read-out cannot tell the sign of standardised iris features); hidden truth from float kwargs
    (continuous heaters without crosstalk and a detector without ADC, so that every error of the chip is a
    knob)."""
    detection = CoherentDetection(detector=Detector(bit_depth=None), ports=n_classes)
    mesh = MZIMesh(n_ports=4, in_features=in_features, detection=detection,
                   fabrication=MeshFabrication(coupler_error_std_rad=coupler, phase_offset_std_rad=phase_offset,
                                               insertion_loss_db=loss_db), heaters=Heaters(), seed=seed)
    layer = PhysicalLayer(mesh, twin=mesh.nominal_twin(),
                          initial_controls=mesh.initial_controls(torch.Generator().manual_seed(seed)))
    torch.manual_seed(seed)
    return nn.Sequential(layer, nn.Linear(2 * n_classes, n_classes))


register("model", "test_fabrication_mesh", _test_mesh, replace=True)


def _spec(name, model_args, methods=("ideal",), epochs=6):
    return {"name": name, "seed": 1, "data": {"name": "iris"}, "model": {"name": "test_fabrication_mesh", **model_args},
            "methods": [{"name": m} for m in methods], "train": {"epochs": epochs, "batch_size": 16, "lr": 0.1}}


@pytest.fixture(scope="module")
def mesh_run(tmp_path_factory):
    spec = _spec("fab", {"phase_offset": 0.3, "coupler": 0.02, "loss_db": 0.2}, methods=("ideal", "pat"))
    return run(spec, out_dir=tmp_path_factory.mktemp("runs"), warm_up=False).folder


@pytest.fixture(scope="module")
def offset_run(tmp_path_factory):
    return run(_spec("offset", {"phase_offset": 0.05}), out_dir=tmp_path_factory.mktemp("runs"),
               warm_up=False).folder


def test_knobs_of_a_photonic_mesh_network():
    knobs = {k.name: k for k in discover_knobs(lambda: MODELS.build("photonic_mesh", in_features=4, n_classes=3,
                                                                   layers=2))}
    fab = "mzi_mesh.fabrication."
    for field, value in (("coupler_error_std_rad", 0.02), ("phase_offset_std_rad", math.pi),
                         ("insertion_loss_db", 0.2), ("insertion_loss_std_db", 0.05)):
        assert knobs[fab + field].kind == "hidden truth"
        assert knobs[fab + field].values == (value, value)  # both meshes of the network, scaled together
    for field in ("alpha_rel_sigma", "gain_rel_sigma", "bias_sigma_rad"):
        assert knobs["eo_activation.mismatch." + field].kind == "hidden truth"
    # noise: changes the measurement only (nested dataclass detection.detector found)
    assert knobs["mzi_mesh.detection.detector.thermal_noise_photons"].kind == "measured only"
    assert knobs["eo_activation.mismatch.photodiode_noise"].kind == "measured only"
    # cost figures accept 0 but change no physics; heater P_pi and the encoding scale must stay positive
    assert not [n for n in knobs if ".cost." in n or "p_pi" in n or "encoding" in n]


def test_knobs_of_a_diffractive_network():
    knobs = {k.name: k for k in discover_knobs(lambda: MODELS.build("d2nn_classifier", in_features=16, n_classes=4,
                                                                   grid=28))}
    assert {n for n, k in knobs.items() if k.kind == "hidden truth"} == {
        "d2nn.misalignment.lateral_rms", "d2nn.misalignment.axial_rms", "d2nn.fabrication.phase_rms",
        "d2nn.fabrication.scale_error", "d2nn.slm.crosstalk"}
    assert knobs["d2nn.camera.read_noise_electrons"].kind == "measured only"
    # correlation_px must stay positive (a design length); the field-measurement reference is a design value
    assert "d2nn.fabrication.correlation_px" not in knobs and "d2nn.field_measurement.reference" not in knobs


def test_a_design_value_that_accepts_zero_is_not_a_knob():
    # the polariton model's interaction constants g_c, g_r and encoding gain accept 0 but change the nominal
    # twin (design values); its mismatch is zero here: no knob, and the error names the plant
    with pytest.raises(ValueError, match=r"no fabrication-error knob.*polariton_lattice"):
        discover_knobs(lambda: MODELS.build("polariton_classifier", in_features=3, n_classes=2, sites=4,
                                            duration_ps=10.0))


def test_factor_one_on_the_trained_chip_is_the_trained_accuracy(mesh_run, tmp_path):
    result = fabrication_tolerance(mesh_run, method="ideal", factors=(0.5, 1.0, 2.0), draws=1, out=tmp_path)
    summary = json.loads((mesh_run / "summary.json").read_text())["results"][0]
    assert summary["evaluated_on"] == "true physics (noise off)"
    assert result.reference["trained_accuracy"] == summary["final_test_accuracy"]
    ones = [r for r in result.rows if r["factor"] == 1.0]
    assert {r["knob"] for r in ones} == {"mzi_mesh.fabrication.coupler_error_std_rad",
                                         "mzi_mesh.fabrication.phase_offset_std_rad",
                                         "mzi_mesh.fabrication.insertion_loss_db", "all"}
    assert all(r["accuracy_trained_chip"] == summary["final_test_accuracy"] for r in ones)
    # a knob scaled away from 1 on the trained chip is a different chip: the offsets the network was
    # trained to compensate change
    offset = {r["factor"]: r for r in result.rows if r["knob"].endswith("phase_offset_std_rad")}
    assert offset[2.0]["accuracy_trained_chip"] != offset[1.0]["accuracy_trained_chip"]
    with (tmp_path / "fabrication.csv").open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(result.rows) and float(table[0]["value"]) == pytest.approx(0.01)
    assert (tmp_path / "fabrication.png").stat().st_size > 0


def test_factor_one_for_a_pat_run_on_the_true_twin_and_on_the_plant(mesh_run, tmp_path):
    model, _, _, data = load_trained_model(mesh_run, "pat")
    x, y = data.split("test")
    trained = evaluate(model, x, y, execution=OnTrueTwin())["accuracy"]
    result = fabrication_tolerance(mesh_run, method="pat", factors=(1.0,), knobs="insertion_loss_db", draws=0,
                                   out=tmp_path)
    assert result.rows[0]["accuracy_trained_chip"] == trained
    assert math.isnan(result.rows[0]["accuracy_mean"]) and result.rows[0]["draws"] == 0
    model, _, _, _ = load_trained_model(mesh_run, "pat")
    measured = evaluate(model, x, y, generator=torch.Generator().manual_seed(0))["accuracy"]  # on the plant, noisy
    on_plant = fabrication_tolerance(mesh_run, method="pat", factors=(1.0,), draws=0, on="plant", out=tmp_path)
    assert {r["accuracy_trained_chip"] for r in on_plant.rows} == {measured}
    # on the plant the noise knob is among the defaults (on the true twin it is not: test above)
    assert "mzi_mesh.detection.detector.thermal_noise_photons" in {r["knob"] for r in on_plant.rows}


def test_every_knob_at_zero_is_the_design_chip(mesh_run, tmp_path):
    model, _, _, data = load_trained_model(mesh_run, "ideal")
    x, y = data.split("test")
    nominal = evaluate(model, x, y, execution=OnTwin())["accuracy"]
    result = fabrication_tolerance(mesh_run, method="ideal", factors=(0.0,), knobs="all", draws=2, out=tmp_path)
    (row,) = result.rows
    assert result.reference["nominal_twin_accuracy"] == nominal
    assert row["accuracy_trained_chip"] == nominal  # no error left: the design
    assert row["accuracy_mean"] == nominal and row["accuracy_std"] == 0.0  # every fresh chip is the design too


def test_accuracy_falls_with_the_size_of_a_fresh_chips_phase_errors(offset_run, tmp_path):
    # trained on a chip with 0.05 rad phase offsets; fresh chips with 0, 0.5 and 2.5 rad offsets
    result = fabrication_tolerance(offset_run, factors=(0.0, 10.0, 50.0), draws=4, out=tmp_path)
    (knob,) = result.knobs
    assert knob.name == "mzi_mesh.fabrication.phase_offset_std_rad" and knob.value == 0.05
    mean = {r["factor"]: r["accuracy_mean"] for r in result.rows}
    one_sample = 1 / result.rows[0]["test_samples"]
    assert mean[0.0] >= mean[10.0] - one_sample and mean[10.0] >= mean[50.0] - one_sample
    assert mean[0.0] > mean[50.0] + 0.2  # 2.5 rad offsets scramble the mesh


def test_fresh_chips_are_paired_across_factors(mesh_run, tmp_path):
    # the detector's thermal noise does not touch the true twin: with the same fresh seeds at every factor
    # the fresh chips' accuracies coincide (re-drawn seeds per factor would make them differ)
    result = fabrication_tolerance(mesh_run, method="ideal", factors=(0.0, 1.0, 3.0), draws=3,
                                   knobs="thermal_noise_photons", out=tmp_path)
    assert len({(r["accuracy_mean"], r["accuracy_std"]) for r in result.rows}) == 1
    assert result.rows[0]["accuracy_std"] > 0  # the fresh chips do differ from each other
    assert all("measured-only" in r["note"] for r in result.rows)


def test_a_factor_the_error_model_refuses_gives_a_row_with_the_reason(mesh_run, tmp_path):
    result = fabrication_tolerance(mesh_run, method="ideal", factors=(1.0, 20.0), knobs="coupler_error_std_rad",
                                   draws=1, out=tmp_path)
    refused = result.rows[1]
    assert math.isnan(refused["accuracy_trained_chip"]) and math.isnan(refused["accuracy_mean"])
    assert "coupler_error_std_rad" in refused["note"] and "0.3" in refused["note"]


def test_bad_knob_names_and_arguments(mesh_run):
    listed = r"'coupler' is not a knob.*Knobs of this run: .*mzi_mesh\.fabrication\.coupler_error_std_rad"
    with pytest.raises(ValueError, match=listed):
        fabrication_tolerance(mesh_run, knobs="coupler", draws=0)
    with pytest.raises(ValueError, match=r"'copler_error_std_rad'.*did you mean.*coupler_error_std_rad"):
        fabrication_tolerance(mesh_run, knobs=["copler_error_std_rad"], draws=0)
    with pytest.raises(ValueError, match="factors must be finite numbers >= 0"):
        fabrication_tolerance(mesh_run, factors=(-1.0,), draws=0)
    with pytest.raises(ValueError, match="draws must be an integer >= 0"):
        fabrication_tolerance(mesh_run, draws=-1)
    with pytest.raises(ValueError, match="on must be"):
        fabrication_tolerance(mesh_run, on="twin", draws=0)


def test_a_plant_whose_seed_draws_its_design_refuses_fresh_chips(tmp_path):
    spec = {"name": "fibre", "seed": 0, "data": {"name": "iris"},
            "model": {"name": "fibre_mlp", "encoder_width": 4, "camera_pixels": 8, "n_modes": 16},
            "methods": [{"name": "in_silico"}], "train": {"epochs": 1, "batch_size": 64}}
    folder = run(spec, out_dir=tmp_path, warm_up=False).folder
    with pytest.raises(ValueError, match=r"changes its nominal twin.*pass draws=0"):
        fabrication_tolerance(folder, factors=(1.0,), draws=1)
    result = fabrication_tolerance(folder, factors=(0.0, 1.0), draws=0)  # the trained chip, knobs scaled
    assert [r["knob"] for r in result.rows] == ["fibre.slm.crosstalk"] * 2


_BUILDS = [0]


def _a_new_chip_every_build(*, in_features: int, n_classes: int, seed: int = 0) -> nn.Sequential:
    _BUILDS[0] += 1  # the chip's errors depend on how often the model was built, not on the spec
    return _test_mesh(in_features=in_features, n_classes=n_classes, seed=seed + 10 * _BUILDS[0], phase_offset=1.0)


register("model", "test_fabrication_unreproducible", _a_new_chip_every_build, replace=True)


def test_a_rebuild_that_does_not_reproduce_the_trained_chip_is_refused(tmp_path):
    spec = {"name": "drifting", "seed": 0, "data": {"name": "iris"},
            "model": {"name": "test_fabrication_unreproducible"},
            "methods": [{"name": "ideal"}], "train": {"epochs": 2, "batch_size": 32, "lr": 0.1}}
    folder = run(spec, out_dir=tmp_path, warm_up=False).folder
    with pytest.raises(RuntimeError, match="does not reproduce the trained network"):
        fabrication_tolerance(folder, factors=(1.0,), draws=0)


def test_cli_fabrication_option(mesh_run):
    out = CliRunner().invoke(main, ["export", str(mesh_run), "--method", "ideal", "--fabrication", "0,1",
                                    "--knobs", "insertion_loss_db,all", "--draws", "1"])
    assert out.exit_code == 0, out.output
    assert "mzi_mesh.fabrication.insertion_loss_db" in out.output and "1 fresh chip(s)" in out.output
    assert (mesh_run / "export" / "ideal" / "fabrication.csv").is_file()
    bad = CliRunner().invoke(main, ["export", str(mesh_run), "--fabrication", "0,1", "--knobs", "nope"])
    assert bad.exit_code != 0 and "not a knob" in bad.output
    lone = CliRunner().invoke(main, ["export", str(mesh_run), "--knobs", "all"])
    assert lone.exit_code != 0 and "add --fabrication" in lone.output
