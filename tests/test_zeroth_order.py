"""Zeroth-order estimators against exact autograd on a tiny differentiable plant."""

import pytest
import torch
from torch import nn

from pnnlab import ChannelAffine, PhysicalLayer
from pnnlab.diagnostics.gradient_fidelity import compare_gradients, estimate_gradients
from pnnlab.methods.ideal import IdealBackprop
from pnnlab.methods.multiplexed import (CodeMultiplexed, FrequencyMultiplexed, MultiplexedGradientDescent,
                                        TimeMultiplexed)
from pnnlab.methods.zeroth_order import SPSA, FiniteDifferences, NodePerturbation, WeightPerturbation
from pnnlab.metering import total_usage
from pnnlab.layers import plants_of
from toy_plants import TanhPlant


def _problem(seed=0, with_linear=False):
    plant = TanhPlant(features_in=3, features_out=3, error_std=0.2, seed=seed)
    torch.manual_seed(seed)  # only for nn.Linear's default initialisation in this test
    layers = [PhysicalLayer(plant, twin=plant.nominal_twin()), ChannelAffine(3, scale=2.0)]
    if with_linear:
        layers = [nn.Linear(4, 3)] + layers
    model = nn.Sequential(*layers)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 4 if with_linear else 3, generator=gen)
    y = torch.randint(0, 3, (16,), generator=gen)
    return model, x, y


def _flat(grads, names=None):
    names = names or sorted(grads)
    return torch.cat([grads[n].flatten() for n in names]), names


def _mean_and_mse(method, model, x, y, true, repeats):
    names = sorted(true)
    t, _ = _flat(true, names)
    est = torch.stack([_flat(estimate_gradients(method, model, x, y), names)[0] for _ in range(repeats)])
    return est.mean(0), float(((est - t) ** 2).sum(1).mean()), t


def test_finite_differences_match_autograd():
    model, x, y = _problem()
    true = estimate_gradients(IdealBackprop(), model, x, y)
    for central in (True, False):
        est = estimate_gradients(FiniteDifferences(epsilon=1e-3, central=central), model, x, y)
        overall = compare_gradients(est, true)["overall"]
        assert overall["cosine"] > 0.9999 and overall["relative_error"] < 5e-3


@pytest.mark.parametrize("make, few", [
    (lambda k: SPSA(n_perturbations=k, epsilon=1e-2, seed=1), 1),
    (lambda k: WeightPerturbation(n_perturbations=k, sigma=1e-2, seed=1), 1),
    (lambda k: MultiplexedGradientDescent(code=TimeMultiplexed(), timesteps=k, amplitude=1e-2, seed=1), 1),
    (lambda k: MultiplexedGradientDescent(code=FrequencyMultiplexed(), timesteps=k, amplitude=1e-2, seed=1), 4)],
    ids=["spsa", "weight_perturbation", "mgd_time", "mgd_frequency"])
def test_perturbative_estimates_are_unbiased_and_variance_falls(make, few):
    """E[g_hat] = grad L + O(eps^2) and the mean squared error falls about as 1/K."""
    model, x, y = _problem()
    true = estimate_gradients(IdealBackprop(), model, x, y)
    mean1, mse1, t = _mean_and_mse(make(few), model, x, y, true, 250)
    cos = float(mean1 @ t / (mean1.norm() * t.norm()))
    assert cos > 0.95, f"mean estimate not aligned with the true gradient (cos={cos:.3f})"
    assert float((mean1 - t).norm() / t.norm()) < 0.3
    _, mse16, _ = _mean_and_mse(make(16 * few), model, x, y, true, 40)
    assert mse16 < mse1 / 3, f"variance did not fall with more perturbations ({mse1:.3g} -> {mse16:.3g})"


def test_mgd_with_orthogonal_codes_recovers_the_gradient():
    model, x, y = _problem()
    true = estimate_gradients(IdealBackprop(), model, x, y)
    n_params = sum(p.numel() for p in model.parameters())
    timesteps = 1 << n_params.bit_length()  # power of two >= P + 1: exactly orthogonal Walsh codes
    est = estimate_gradients(MultiplexedGradientDescent(code=CodeMultiplexed(), timesteps=timesteps,
                                                        amplitude=1e-3), model, x, y)
    assert compare_gradients(est, true)["overall"]["cosine"] > 0.999


def test_node_perturbation_is_unbiased_on_digital_layers():
    model, x, y = _problem(with_linear=True)
    true = estimate_gradients(IdealBackprop(), model, x, y)
    digital = {k: v for k, v in true.items() if not k.startswith("1.")}
    names = sorted(digital)
    t, _ = _flat(digital, names)
    runs = [estimate_gradients(NodePerturbation(n_perturbations=1, sigma=1e-2, seed=s), model, x, y)
            for s in range(150)]
    assert all(not any(k.startswith("1.") for k in r) for r in runs), "physical controls must stay untouched"
    est = torch.stack([_flat(r, names)[0] for r in runs])
    mean = est.mean(0)
    assert float(mean @ t / (mean.norm() * t.norm())) > 0.95
    method16 = NodePerturbation(n_perturbations=16, sigma=1e-2, seed=7)
    est16 = torch.stack([_flat(estimate_gradients(method16, model, x, y), names)[0] for _ in range(30)])
    assert float(((est16 - t) ** 2).sum(1).mean()) < float(((est - t) ** 2).sum(1).mean()) / 3


@pytest.mark.parametrize("method", [SPSA(n_perturbations=3), FiniteDifferences(), FiniteDifferences(central=False),
                                    WeightPerturbation(n_perturbations=4), NodePerturbation(n_perturbations=2),
                                    MultiplexedGradientDescent(timesteps=5)], ids=repr)
def test_query_meter_confirms_the_stated_cost(method):
    model, x, y = _problem(with_linear=True)
    before = total_usage(plants_of(model))["queries"]
    method.step(model, x, y, nn.functional.cross_entropy)
    assert total_usage(plants_of(model))["queries"] - before == method.queries_per_step(model)


def test_parameters_are_restored_after_a_step():
    model, x, y = _problem()
    before = [p.detach().clone() for p in model.parameters()]
    SPSA(n_perturbations=2).step(model, x, y, nn.functional.cross_entropy)
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))


def test_spsa_trains_the_tiny_plant():
    model, x, y = _problem()
    method = SPSA(n_perturbations=2, epsilon=0.05, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    first = None
    for _ in range(80):
        opt.zero_grad()
        loss = method.step(model, x, y, nn.functional.cross_entropy)
        first = loss if first is None else first
        opt.step()
    assert loss < 0.7 * first


@pytest.mark.parametrize("bad", [dict(n_perturbations=0), dict(epsilon=-1.0), dict(epsilon="a")])
def test_bad_arguments_are_explained(bad):
    with pytest.raises((ValueError, TypeError), match=next(iter(bad))):
        SPSA(**bad)


def test_mgd_rejects_a_string_code():
    with pytest.raises(TypeError, match="PerturbationCode"):
        MultiplexedGradientDescent(code="time")
    with pytest.raises(ValueError, match="power of two"):
        CodeMultiplexed().sequences(6, 3, torch.Generator())
