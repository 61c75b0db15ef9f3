"""The depth toy of the PAT reference code (example 3): plant y = 2 x^theta, twin y = 2.01 x^theta.

Forward error compounding with depth (0.5 % at n = 1, ~3 % at n = 5, ~30 % at n = 20) and physics-
aware training recovering the exponent where in-silico training does not.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import pnnlab
from pnnlab.plants.toy.power_law import PowerLawPlant, PowerLawTwin
from pnnlab.testing import check_plant

torch.set_num_threads(1)
FIXED_POINT = 2.0 ** -10  # 2 x^1.1 = x


class Repeated(nn.Module):
    def __init__(self, layer, depth):
        super().__init__()
        self.layer, self.depth = layer, depth

    def forward(self, x):
        for _ in range(self.depth):
            x = self.layer(x)
        return x


def _model(depth, theta):
    plant = PowerLawPlant()
    layer = pnnlab.PhysicalLayer(plant, twin=plant.nominal_twin(),
                                 initial_controls={"exponent": torch.tensor([theta])})
    return Repeated(layer, depth).double()


def _inputs(batch, seed):
    gen = torch.Generator().manual_seed(seed)
    return FIXED_POINT * torch.exp(torch.rand(batch, 1, generator=gen, dtype=torch.float64) - 0.5)


def test_plant_and_twin_are_the_power_law():
    plant = PowerLawPlant(features=3)
    x = plant.example_inputs(4).double()
    theta = torch.tensor([1.3], dtype=torch.float64)
    assert torch.allclose(plant(x, {"exponent": theta}), 2.0 * x ** 1.3, rtol=1e-12)
    assert torch.allclose(plant.nominal_twin()(x, {"exponent": theta}), 2.01 * x ** 1.3, rtol=1e-12)
    assert torch.allclose(plant.true_twin()(x, {"exponent": theta}), 2.0 * x ** 1.3, rtol=1e-12)
    check_plant(plant)


def test_true_twin_is_the_noiseless_plant_and_differs_from_the_nominal_twin():
    noisy = PowerLawPlant(features=2, noise_std=0.05, seed=1)
    quiet = PowerLawPlant(features=2)
    x = noisy.example_inputs(64).double()
    theta = {"exponent": torch.tensor([1.2], dtype=torch.float64)}
    torch.testing.assert_close(noisy.true_twin()(x, theta), quiet(x, theta), rtol=1e-12, atol=0.0)
    assert not torch.allclose(noisy(x, theta), quiet(x, theta), rtol=1e-3)  # the noise is real
    ratio = noisy.nominal_twin()(x, theta) / noisy.true_twin()(x, theta)
    torch.testing.assert_close(ratio, torch.full_like(ratio, 2.01 / 2.0), rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("depth, low, high", [(1, 0.0049, 0.0051), (5, 0.025, 0.035), (20, 0.25, 0.40)])
def test_forward_error_compounds_with_depth_as_in_the_reference(depth, low, high):
    """log y_n = log c (theta^n - 1)/(theta - 1) + theta^n log x, so a coefficient error c'/c gives a
    relative error (c'/c)^((theta^n - 1)/(theta - 1)) - 1 whatever the input."""
    model = _model(depth, 1.1)
    x = _inputs(64, seed=0)
    with torch.no_grad():
        y_plant = model(x)
        with pnnlab.executing(pnnlab.OnTwin()):
            y_twin = model(x)
    error = (y_twin - y_plant).abs() / y_plant
    analytic = (2.01 / 2.0) ** ((1.1 ** depth - 1) / 0.1) - 1
    assert torch.allclose(error, torch.full_like(error, analytic), rtol=1e-6)
    assert low < analytic < high
    # inputs near the fixed point stay in a sane range through 20 applications
    assert float(y_plant.max()) < 1.0 and float(y_plant.min()) > 1e-6


def _train(method, steps=200, depth=10, start=1.0, lr=0.01):
    targets = _model(depth, 1.1)
    model = _model(depth, start)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def log_mse(prediction, target):
        return (torch.log(prediction) - torch.log(target)).square().mean()

    for step in range(steps):
        x = _inputs(32, seed=step)
        with torch.no_grad():
            y = targets(x)
        optimizer.zero_grad()
        method.step(model, x, y, log_mse)
        optimizer.step()
    return float(model.layer.control_values()["exponent"].detach()), model


def test_pat_recovers_the_exponent_where_in_silico_training_does_not():
    theta_pat, model_pat = _train(pnnlab.PhysicsAwareTraining())
    theta_sim, _ = _train(pnnlab.InSilico())
    assert abs(theta_pat - 1.1) < 2e-5
    # in silico the twin's 0.5 % coefficient error is absorbed into a wrong exponent
    assert abs(theta_sim - 1.1) > 5e-4
    assert model_pat.layer.plant.meter.queries == 200 * 10  # one plant query per layer per step


def test_twin_validation():
    with pytest.raises(ValueError, match="coefficient"):
        PowerLawTwin(coefficient=-1.0)
    with pytest.raises(ValueError, match="exponent_range"):
        PowerLawPlant(exponent_range=(2.0, 1.0))
    assert math.isclose(PowerLawPlant().twin_coefficient, 2.01)
