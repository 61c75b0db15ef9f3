"""Device placement of the model builders of the smaller families (issue 12, section 6): each registered model
of the quantum, polariton, oscillator, SHG and fibre families runs forward on its plant and forward + backward on
its twin under the CPU-side device audit (tensors made without ``device=`` land on "meta" and break; draws off
their generator's device raise), and ``model.to`` carries its plant, its twin and its frozen buffers along."""

import pytest
import torch

from pnnlab.devices import device_audit
from pnnlab.execution import OnTwin, executing
from pnnlab.layers import physical_layers
from pnnlab.registry import DATASETS, MODELS

NAMES = ["quantum_classifier", "polariton_classifier", "oscillator_classifier", "oscillator_random_features",
         "shg_classifier", "shg_random_features", "fibre_mlp", "fibre_goodness_net"]


def _build(name):
    data = DATASETS.load("iris")()
    entry = MODELS.get(name)
    return entry.load()(in_features=data.in_features, n_classes=data.n_classes, seed=0, **entry.example), data


@pytest.mark.parametrize("name", NAMES)
def test_model_runs_under_the_device_audit(name):
    model, data = _build(name)
    x = data.x_test[:3]
    with device_audit():
        assert torch.isfinite(model(x)).all()
        if all(layer.twin is not None for layer in physical_layers(model)):
            with executing(OnTwin()):
                model(x).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(g.device.type == "cpu" for g in grads)


@pytest.mark.parametrize("name", NAMES)
def test_model_to_moves_plants_twins_and_buffers(name):
    model, _ = _build(name)
    model.to("meta")
    assert all(t.device.type == "meta" for t in model.state_dict().values())
    for layer in physical_layers(model):
        assert layer.plant.device.type == "meta"
        if layer.twin is not None:
            assert all(t.device.type == "meta" for t in layer.twin.state_dict().values())
