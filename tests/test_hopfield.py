"""Continuous Hopfield network: relaxation is an energy minimum, local measurements are dE/dtheta,
the twin's gradient matches finite differences of the relaxed output."""

import pytest
import torch

from pnnlab.plants.capabilities import OutputClamp, OutputForce
from pnnlab.plants.hopfield import HopfieldPlant, hopfield_energy
from pnnlab.testing import check_plant

torch.set_num_threads(1)


def _plant():
    return HopfieldPlant(sizes=(3, 6, 5, 2), dtype=torch.float64, tolerance=1e-13, max_sweeps=20000, seed=1)


def _params(plant, controls):
    n = len(plant.sizes) - 1
    return ([controls[f"weight_{l}"].double() for l in range(n)], [controls[f"bias_{l}"].double() for l in range(n)])


def test_conforms():
    check_plant(HopfieldPlant(sizes=(3, 4, 2)))


@pytest.mark.parametrize("nudge", [None, "force", "clamp"])
def test_relaxed_state_is_a_constrained_energy_minimum(nudge):
    plant = _plant()
    controls = {k: 2 * v for k, v in plant.initial_controls().items()}  # strong enough to saturate some units
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    force = clamp = None
    if nudge == "force":
        force = 0.3 * torch.randn(8, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    if nudge == "clamp":
        clamp = torch.randn(8, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    state = plant.relax(x, controls, nudge=None if nudge is None else
                        (OutputForce(force) if force is not None else OutputClamp(clamp)))
    W, b = _params(plant, controls)
    s = [v.clone().requires_grad_(True) for v in state.nodes]
    E = hopfield_energy(s, x, W, b, force).sum()
    E.backward()
    hidden = range(len(s) - 1)
    for l in hidden:  # KKT conditions of min E on the box [0, 1]
        grad, v = s[l].grad, s[l].detach()
        inside = (v > 1e-9) & (v < 1 - 1e-9)
        assert float(torch.where(inside, grad, torch.zeros_like(grad)).abs().max()) < 1e-9
        assert bool((grad[v <= 1e-9] >= -1e-9).all()) and bool((grad[v >= 1 - 1e-9] <= 1e-9).all())
    if nudge == "clamp":
        assert torch.allclose(state.output.double(), clamp)
    else:
        assert float(s[-1].grad.abs().max()) < 1e-9
    assert any(float(((v == 0) | (v == 1)).double().mean()) > 0 for v in state.nodes[:-1])


def test_local_measurements_are_energy_derivatives():
    plant = _plant()
    controls = plant.initial_controls()
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    state = plant.relax(x, controls)
    W, b = _params(plant, controls)
    W = [w.clone().requires_grad_(True) for w in W]
    b = [v.clone().requires_grad_(True) for v in b]
    hopfield_energy(list(state.nodes), x, W, b).mean().backward()
    measured = plant.energy_gradients(state)
    for l in range(len(W)):
        assert torch.allclose(measured[f"weight_{l}"], W[l].grad, atol=1e-12)
        assert torch.allclose(measured[f"bias_{l}"], b[l].grad, atol=1e-12)


def test_twin_gradient_matches_finite_differences_of_the_plant():
    plant = _plant()
    controls = {k: v.double() for k, v in plant.initial_controls().items()}
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    twin = plant.nominal_twin(backward_sweeps=300)
    c = {k: v.clone().requires_grad_(True) for k, v in controls.items()}
    twin(x, c)[:, 0].sum().backward()
    eps = 1e-6
    for name, index in (("weight_0", (2, 1)), ("weight_2", (1, 3)), ("bias_1", (0,))):
        plus = {k: v.clone() for k, v in controls.items()}
        minus = {k: v.clone() for k, v in controls.items()}
        plus[name][index] += eps
        minus[name][index] -= eps
        fd = (plant.relax(x, plus).output[:, 0].sum() - plant.relax(x, minus).output[:, 0].sum()) / (2 * eps)
        assert abs(float(fd) - float(c[name].grad[index])) < 1e-6 * max(1.0, abs(float(fd)))


def test_validation():
    with pytest.raises(ValueError, match="at least one hidden layer"):
        HopfieldPlant(sizes=(3, 2))
    with pytest.raises(TypeError, match="dtype"):
        HopfieldPlant(sizes=(3, 4, 2), dtype=torch.int32)


def test_true_twin_is_the_design_model_and_equals_the_plant():
    """The abstract Hopfield plant has no hidden truth and no noise: true and nominal twins agree with it."""
    plant = _plant()
    controls = {k: v.double() for k, v in plant.initial_controls().items()}
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    y = plant(x, controls)
    assert torch.allclose(plant.true_twin()(x, controls), y, atol=1e-9)
    assert torch.allclose(plant.nominal_twin()(x, controls), y, atol=1e-9)


def test_relaxation_reports_its_residual_and_warns_at_the_sweep_limit():
    from pnnlab.plants.hopfield import RelaxationNotConverged
    plant = _plant()
    controls = {k: 2 * v for k, v in plant.initial_controls().items()}
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    state = plant.relax(x, controls)
    assert state.residual < 1e-13
    plant.max_sweeps = 1
    with pytest.warns(RelaxationNotConverged, match="residual"):
        short = plant.relax(x, controls)
    assert short.residual > 1e-13
