"""Nonlinear resistive network: Kirchhoff's laws, energy minimum, linear limit, local measurements."""

import pytest
import torch

from pnnlab.plants.capabilities import OutputClamp, OutputForce
from pnnlab.plants.electronics import (IDEAL_DEVICE, ResistiveMismatch, ResistiveNetworkPlant, TAOX_YI_2023)
from pnnlab.plants.electronics.resistive_network import co_content, kcl_residual
from pnnlab.testing import check_plant

torch.set_num_threads(1)


def _plant(**kw):
    base = dict(in_features=3, out_features=2, hidden=(5, 4), dtype=torch.float64, tolerance_V=1e-13,
                max_sweeps=20000, diode_low_V=-0.1, diode_high_V=0.4)
    base.update(kw)
    return ResistiveNetworkPlant(**base)


def _G(plant, controls):
    return [controls[f"conductance_{l}"].double() for l in range(len(controls))]


def test_conforms():
    check_plant(_plant())
    check_plant(_plant(device=TAOX_YI_2023, mismatch=ResistiveMismatch(read_noise_V=1e-3)), batch=3)


@pytest.mark.parametrize("nudge", [None, "force", "clamp"])
def test_steady_state_satisfies_kcl_and_minimises_co_content(nudge):
    plant = _plant(mismatch=ResistiveMismatch(diode_threshold_spread_V=0.05, diode_conductance_spread=0.3))
    controls = plant.initial_controls()
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
    kind = None
    if nudge == "force":
        kind = OutputForce(1e-4 * torch.randn(7, 2, generator=torch.Generator().manual_seed(2)))
    elif nudge == "clamp":
        kind = OutputClamp(0.2 * torch.randn(7, 2, generator=torch.Generator().manual_seed(2)))
    state = plant.relax(x, controls, nudge=kind)
    V, sources = state.private["V"], state.private["sources"]
    G = _G(plant, controls)
    force = None
    if nudge == "force":
        force = plant.design.nodes_for(2 * kind.force.double())
    residual = kcl_residual(V, sources, G, plant._diodes, bias_V=1.0, force=force)
    free_layers = residual if nudge != "clamp" else residual[:-1]
    scale = max(float(g.max()) for g in G)  # current scale: 1 V across the largest conductance
    for r in free_layers:
        assert float(r.abs().max()) < 1e-9 * scale
    if nudge == "clamp":
        assert torch.allclose(plant.design.read_out(V[-1]), kind.value.double(), atol=1e-12)
    # the steady state is the minimum of the co-content: every perturbation of the free nodes raises it
    E0 = co_content(V, sources, G, plant._diodes, bias_V=1.0, force=force)
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        W = [v + 1e-3 * torch.randn(v.shape, generator=g, dtype=v.dtype) for v in V]
        if nudge == "clamp":
            W[-1] = V[-1]
        assert bool((co_content(W, sources, G, plant._diodes, bias_V=1.0, force=force) >= E0 - 1e-18).all())


def test_linear_limit_matches_laplacian_solve():
    """With diodes that never conduct the network is linear: V_free = -L_ff^{-1} L_fs V_s."""
    plant = ResistiveNetworkPlant(in_features=2, out_features=1, hidden=(3,), dtype=torch.float64,
                                  diode_low_V=-100.0, tolerance_V=1e-14, max_sweeps=50000)
    controls = plant.initial_controls()
    G0, G1 = _G(plant, controls)
    x = torch.tensor([[0.3, -0.7]], dtype=torch.float64)
    # nodes: sources (6 = +-x, +-bias for layer 1) + bias for outputs (2), hidden (3), outputs (2)
    vs = torch.tensor([0.3, -0.7, -0.3, 0.7, 1.0, -1.0], dtype=torch.float64)
    n_h, n_o = 3, 2
    Lff = torch.zeros(n_h + n_o, n_h + n_o, dtype=torch.float64)
    rhs = torch.zeros(n_h + n_o, dtype=torch.float64)
    for k in range(n_h):
        Lff[k, k] += G0[k].sum()
        rhs[k] += G0[k] @ vs
    for o in range(n_o):
        for k in range(n_h):
            Lff[n_h + o, n_h + o] += G1[o, k]
            Lff[k, k] += G1[o, k]
            Lff[n_h + o, k] -= G1[o, k]
            Lff[k, n_h + o] -= G1[o, k]
        Lff[n_h + o, n_h + o] += G1[o, n_h:].sum()
        rhs[n_h + o] += G1[o, n_h] * 1.0 + G1[o, n_h + 1] * -1.0
    V = torch.linalg.solve(Lff, rhs)
    expected = V[n_h] - V[n_h + 1]
    y = plant(x, controls)
    assert abs(float(y[0, 0]) - float(expected)) < 1e-10


def test_nonlinearity_diode_clamps_hidden_nodes():
    plant = _plant(diode_low_V=0.0, diode_high_V=None, diode_on_conductance_S=1e3)  # nearly ideal diodes
    state = plant.relax(torch.randn(20, 3, generator=torch.Generator().manual_seed(0)), plant.initial_controls())
    for v in state.private["V"][:-1]:
        assert float(v.min()) > -1e-5  # hidden nodes cannot go (noticeably) below the diode threshold
    assert any(float((v < 1e-4).float().mean()) > 0 for v in state.private["V"][:-1])


def test_local_measurements_are_the_exact_energy_derivatives():
    """dE/dG_kj = 1/2 (V_k - V_j)^2, and by the envelope theorem it is the derivative of the minimum
    energy with respect to the conductance."""
    plant = _plant()
    controls = plant.initial_controls()
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(4))
    state = plant.relax(x, controls)
    measured = plant.energy_gradients(state)
    G = [g.clone().requires_grad_(True) for g in _G(plant, controls)]
    V = state.private["V"]
    E = co_content(V, state.private["sources"], G, plant._diodes, bias_V=1.0).mean()
    E.backward()
    for l, g in enumerate(G):
        assert torch.allclose(measured[f"conductance_{l}"], g.grad, atol=1e-12, rtol=1e-9)
    # envelope theorem: finite difference of the minimum energy
    name, (i, j) = "conductance_0", (1, 2)
    eps = 1e-9
    bumped = dict(controls)
    bumped[name] = controls[name].clone().double()
    bumped[name][i, j] += eps
    state2 = plant.relax(x, {k: v.double() for k, v in bumped.items()})
    G2 = _G(plant, {k: v.double() for k, v in bumped.items()})
    E1 = float(co_content(V, state.private["sources"], _G(plant, controls), plant._diodes, bias_V=1.0).mean())
    E2 = float(co_content(state2.private["V"], state2.private["sources"], G2, plant._diodes, bias_V=1.0).mean())
    assert abs((E2 - E1) / eps - float(measured[name][i, j])) < 1e-5 * abs(float(measured[name][i, j])) + 1e-12


def test_twin_matches_ideal_plant_and_mismatch_is_hidden():
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(5))
    ideal = _plant()
    controls = ideal.initial_controls()
    assert torch.allclose(ideal.nominal_twin()(x, controls), ideal(x, controls), atol=1e-9)
    real = _plant(mismatch=ResistiveMismatch(conductance_variation=0.2, diode_threshold_spread_V=0.05))
    gap = (real.nominal_twin()(x, controls) - real(x, controls)).abs().max()
    assert float(gap) > 1e-4


def test_read_noise_is_fresh_each_query():
    plant = _plant(mismatch=ResistiveMismatch(read_noise_V=1e-3))
    controls = plant.initial_controls()
    x = torch.randn(4, 3)
    a, b = plant(x, controls), plant(x, controls)
    assert 1e-5 < float((a - b).abs().max()) < 1e-2


def test_memristive_conductances_are_programmed_with_pulses():
    plant = _plant(device=IDEAL_DEVICE, dtype=torch.float32)
    controls = plant.initial_controls()
    x = torch.randn(4, 3)
    plant(x, controls)
    assert plant.pulses == 0  # initial write-verify
    plant(x, controls)
    assert plant.pulses == 0  # unchanged targets: nothing to send
    step = IDEAL_DEVICE.step_up * IDEAL_DEVICE.range_S
    new = {k: v.clone() for k, v in controls.items()}
    new["conductance_0"][0, 0] += 10 * step
    before = plant.meter.joules
    plant(x, new)
    assert plant.pulses == 10
    assert plant.meter.joules - before >= 10 * IDEAL_DEVICE.pulse_energy_J


@pytest.mark.parametrize("kwargs, match", [
    ({"hidden": 5}, "hidden"),
    ({"diode_low_V": None, "diode_high_V": None}, "linear"),
    ({"diode_low_V": 0.5, "diode_high_V": 0.1}, "below"),
    ({"conductance_range_S": (1e-4, 1e-6)}, "G_min < G_max"),
    ({"device": "TaOx"}, "MemristorDevice"),
])
def test_validation(kwargs, match):
    base = dict(in_features=3, out_features=2)
    base.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        ResistiveNetworkPlant(**base)
