"""Fully forward mode: exact on an ideal system, follows the true hardware on a misaligned one, metered."""

import math

import pytest
import torch
from torch import nn

from pnnlab import PhysicalLayer
from pnnlab.methods.fully_forward import FullyForward, fully_forward_gradients
from pnnlab.plants.optics.diffractive import (DiffractiveNetwork, FabricationError, FieldMeasurement, Misalignment,
                                              SLMPixels)
from pnnlab.plants.optics.fibre import Camera

SMALL = dict(input_shape=(6, 6), grid=24, upsample=2, n_layers=3, n_classes=4, detector_size=3, spacing=3e-3)


def _autograd(twin, x, controls, grad_output):
    c = {k: v.clone().requires_grad_(True) for k, v in controls.items()}
    xr = x.clone().requires_grad_(True)
    (twin(xr, c) * grad_output).sum().backward()
    return {k: v.grad for k, v in c.items()} | {"input": xr.grad}


def _ffm(plant, x, controls, grad_output):
    data = plant.data_pass(x, controls)
    return fully_forward_gradients(plant, x, controls, data, grad_output)


def _cos(a, b):
    return float(nn.functional.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


def _batch(plant, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = plant.example_inputs(8, generator=g).double()
    controls = {"phase": plant.initial_controls(generator=g)["phase"].double()}
    grad_output = torch.randn(8, plant.out_features, generator=g, dtype=torch.float64)
    return x, controls, grad_output


@pytest.mark.parametrize("frames", [1, 4])
def test_ffm_equals_autograd_on_an_ideal_system(frames):
    plant = DiffractiveNetwork.ideal(**SMALL, field_measurement=FieldMeasurement(frames=frames))
    x, controls, g = _batch(plant)
    ref = _autograd(plant.nominal_twin(), x, controls, g)
    got = _ffm(plant, x, controls, g)
    for key in ("phase", "input"):
        err = float((got[key] - ref[key]).abs().max() / ref[key].abs().max())
        assert err < 1e-9, (key, err)


def test_ffm_amplitude_gradient_on_a_complex_modulation_system():
    plant = DiffractiveNetwork.ideal(**SMALL, complex_modulation=True)
    x, controls, g = _batch(plant)
    controls["amplitude"] = 0.3 + 0.7 * torch.rand(controls["phase"].shape, generator=torch.Generator().manual_seed(2),
                                                   dtype=torch.float64)
    ref = _autograd(plant.nominal_twin(), x, controls, g)
    got = _ffm(plant, x, controls, g)
    assert _cos(got["amplitude"], ref["amplitude"]) > 1 - 1e-9
    assert _cos(got["phase"], ref["phase"]) > 1 - 1e-9


def test_ffm_follows_the_true_gradient_on_a_misaligned_system():
    misaligned = Misalignment(lateral_rms=0.6e-3, axial_rms=1.0e-3)  # 1.5 pixels, a third of a spacing
    plant = DiffractiveNetwork(**SMALL, misalignment=misaligned, fabrication=FabricationError(phase_rms=0.5),
                               slm=None, camera=Camera.ideal(), field_measurement=FieldMeasurement(frames=4),
                               seed=3)
    x, controls, g = _batch(plant, seed=1)
    true = _autograd(plant.true_twin(), x, controls, g)["phase"]
    nominal = _autograd(plant.nominal_twin(), x, controls, g)["phase"]
    ffm = _ffm(plant, x, controls, g)["phase"]
    assert _cos(ffm, true) > 1 - 1e-6  # misalignment and the fabrication map are inside the measured fields
    assert _cos(nominal, true) < 0.8  # the design model's gradient points elsewhere


def test_ffm_is_biased_but_close_under_crosstalk_and_noise():
    plant = DiffractiveNetwork(**SMALL, misalignment=Misalignment(lateral_rms=0.4e-3), fabrication=None,
                               slm=SLMPixels(bits=None, crosstalk=0.05),
                               camera=Camera.ideal(), field_measurement=FieldMeasurement(frames=4, frame_noise=0.01),
                               seed=4)
    x, controls, g = _batch(plant, seed=2)
    true = _autograd(plant.true_twin(), x, controls, g)["phase"]
    ffm = _ffm(plant, x, controls, g)["phase"]
    nominal = _autograd(plant.nominal_twin(), x, controls, g)["phase"]
    c = _cos(ffm, true)
    assert 0.8 < c < 1 - 1e-6  # the unknown crosstalk Jacobian and holography noise: close, not exact
    assert c > _cos(nominal, true) + 0.1


def test_ffm_training_step_queries_and_descent():
    plant = DiffractiveNetwork(**SMALL, misalignment=Misalignment(lateral_rms=0.4e-3), fabrication=None, slm=None,
                               camera=Camera.ideal(), field_measurement=FieldMeasurement(frames=4), seed=5)
    torch.manual_seed(0)
    model = nn.Sequential(PhysicalLayer(plant))
    method = FullyForward()
    method.check(model)
    x = plant.example_inputs(16, generator=torch.Generator().manual_seed(0))
    y = torch.arange(16) % 4

    def loss_fn(out, target):
        return nn.functional.cross_entropy(20 * out / out.sum(1, keepdim=True), target)

    before = plant.meter.queries
    loss0 = method.step(model, x, y, loss_fn)
    assert plant.meter.queries - before == 8  # data pass + error pass, 4 phase-shifting frames each
    layer = model[0]
    grad = next(iter(layer.control_parameters().values())).grad
    assert grad is not None and torch.isfinite(grad).all()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.0)
    # the measured gradient is a descent direction of the TRUE loss
    true = plant.true_twin()
    c = {k: v.detach().clone().requires_grad_(True) for k, v in layer.control_values().items()}
    loss_fn(true(x, c), y).backward()
    assert _cos(grad, c["phase"].grad) > 0.99
    del optimiser, loss0


@pytest.mark.parametrize("frames", [1, 4])
def test_ffm_step_is_device_clean_with_noisy_field_measurement_and_amplitude_controls(frames):
    """The registry's d2nn measures fields without frame noise; here every draw of the two passes (the
    holography frames' noise, the camera's) runs under the device audit, with amplitude controls too."""
    from pnnlab.testing import check_method_device
    plant = DiffractiveNetwork(**SMALL, complex_modulation=True,
                               field_measurement=FieldMeasurement(frames=frames, frame_noise=0.02))
    model = nn.Sequential(PhysicalLayer(plant))
    x = plant.example_inputs(4, generator=torch.Generator().manual_seed(0))
    before = plant.meter.queries
    check_method_device(FullyForward(), model, x, torch.arange(4) % 4)
    assert plant.meter.queries - before == 2 * frames
    grads = [p.grad for p in model.parameters()]
    assert len(grads) == 2 and all(g is not None and bool(torch.isfinite(g).all()) and g.abs().sum() > 0 for g in grads)
