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
                max_sweeps=20000, diode_low_V=-0.05, diode_high_V=0.1)
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
        kind = OutputForce(1e-5 * torch.randn(7, 2, generator=torch.Generator().manual_seed(2)))
    elif nudge == "clamp":
        kind = OutputClamp(0.05 * torch.randn(7, 2, generator=torch.Generator().manual_seed(2)))
    state = plant.relax(x, controls, nudge=kind)
    V, sources = state.private["V"], state.private["sources"]
    G = _G(plant, controls)
    force = None
    if nudge == "force":
        force = plant.design.nodes_for(2 * kind.force.double())
    residual = kcl_residual(V, sources, G, plant._diodes, bias_V=plant.design.bias_V, force=force)
    free_layers = residual if nudge != "clamp" else residual[:-1]
    scale = 0.2 * max(float(g.max()) for g in G)  # current scale: the read range across the largest conductance
    for r in free_layers:
        assert float(r.abs().max()) < 1e-9 * scale
    if nudge == "clamp":
        assert torch.allclose(plant.design.read_out(V[-1]), kind.value.double(), atol=1e-12)
    # the steady state is the minimum of the co-content: every perturbation of the free nodes raises it
    E0 = co_content(V, sources, G, plant._diodes, bias_V=plant.design.bias_V, force=force)
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        W = [v + 1e-3 * torch.randn(v.shape, generator=g, dtype=v.dtype) for v in V]
        if nudge == "clamp":
            W[-1] = V[-1]
        assert bool((co_content(W, sources, G, plant._diodes, bias_V=plant.design.bias_V, force=force) >= E0 - 1e-18).all())


def test_linear_limit_matches_laplacian_solve():
    """With diodes that never conduct (threshold at the bottom of the read range, which no node of a
    passive network can pass) the network is linear: V_free = -L_ff^{-1} L_fs V_s. The inputs are
    encoded as 0.2 V * clip(x / 3, -1, 1)."""
    plant = ResistiveNetworkPlant(in_features=2, out_features=1, hidden=(3,), dtype=torch.float64,
                                  diode_low_V=-0.2, tolerance_V=1e-14, max_sweeps=50000)
    controls = plant.initial_controls()
    G0, G1 = _G(plant, controls)
    x = torch.tensor([[0.3, -0.7]], dtype=torch.float64)
    v = 0.2 * x[0] / 3
    # nodes: sources (6 = +-v, +-bias for layer 1) + bias for outputs (2), hidden (3), outputs (2)
    vs = torch.tensor([v[0], v[1], -v[0], -v[1], 0.2, -0.2], dtype=torch.float64)
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
        rhs[n_h + o] += G1[o, n_h] * 0.2 + G1[o, n_h + 1] * -0.2
    V = torch.linalg.solve(Lff, rhs)
    expected = V[n_h] - V[n_h + 1]
    y = plant(x, controls)
    assert abs(float(y[0, 0]) - float(expected)) < 1e-12


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
    E = co_content(V, state.private["sources"], G, plant._diodes, bias_V=plant.design.bias_V).mean()
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
    E1 = float(co_content(V, state.private["sources"], _G(plant, controls), plant._diodes, bias_V=plant.design.bias_V).mean())
    E2 = float(co_content(state2.private["V"], state2.private["sources"], G2, plant._diodes, bias_V=plant.design.bias_V).mean())
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
    plant = _plant(device=IDEAL_DEVICE, dtype=torch.float32, tolerance_V=1e-6)
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


# ---- true twin: the hidden truth with the read noise off -------------------------------------------

def _truth_plant(**mismatch):
    return _plant(mismatch=ResistiveMismatch(**mismatch))


def test_noiseless_plant_equals_true_twin_and_differs_from_nominal_under_mismatch():
    plant = _truth_plant(conductance_variation=0.2, diode_threshold_spread_V=0.02, diode_conductance_spread=0.3)
    controls = plant.initial_controls()
    x = torch.randn(9, 3, generator=torch.Generator().manual_seed(7))
    y = plant(x, controls)
    assert torch.allclose(plant.true_twin()(x, controls), y, atol=1e-12)
    assert float((plant.nominal_twin()(x, controls) - y).abs().max()) > 1e-3 * float(y.abs().max())
    # the true twin is differentiable
    c = {k: v.clone().requires_grad_(True) for k, v in controls.items()}
    plant.true_twin()(x, c).sum().backward()
    assert all(float(v.grad.abs().sum()) > 0 for v in c.values())


def test_diode_threshold_spread_is_part_of_the_truth():
    """Fails if the threshold spread is removed from the plant's truth (the plant would equal its
    nominal twin) or from the true twin (it would no longer equal the noiseless plant)."""
    plant = _truth_plant(diode_threshold_spread_V=0.02)
    controls = plant.initial_controls()
    x = 3 * torch.randn(32, 3, generator=torch.Generator().manual_seed(8))
    y = plant(x, controls)
    gap = float((plant.nominal_twin()(x, controls) - y).abs().max())
    assert gap > 1e-3 * float(y.abs().max())
    assert torch.allclose(plant.true_twin()(x, controls), y, atol=1e-12)
    spread = torch.cat([d.low_V - (-0.05) for d in plant._diodes] + [d.high_V - 0.1 for d in plant._diodes])
    assert 0.01 < float(spread.std()) < 0.04  # the spread drawn is the one requested


def test_memristive_true_twin_reads_the_device_state_at_call_time():
    import dataclasses
    device = dataclasses.replace(TAOX_YI_2023, read_noise=0.0)  # keep write noise, stuck devices, drift
    plant = _plant(device=device, dtype=torch.float64, tolerance_V=1e-12)
    controls = {k: v.double() for k, v in plant.initial_controls().items()}
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    y = plant(x, controls)  # the first write lands within the write noise of the request
    twin = plant.true_twin()
    assert torch.allclose(twin(x, controls), y, atol=1e-12)
    assert float((plant.nominal_twin()(x, controls) - y).abs().max()) > 1e-4
    plant.wait(1e4)  # drift acts on the truth, and the same (cached) twin object follows it
    y_later = plant(x, controls)
    assert float((y_later - y).abs().max()) > 1e-6
    assert torch.allclose(twin(x, controls), y_later, atol=1e-12)
    # a pending change: the true twin predicts what the (cycle-noise-free) devices will hold once pulsed
    quiet = _plant(device=dataclasses.replace(device, cycle_noise=0.0), dtype=torch.float64, tolerance_V=1e-12)
    quiet(x, controls)
    new = {k: v.clone() for k, v in controls.items()}
    new["conductance_0"] = (new["conductance_0"] + 7.3 * TAOX_YI_2023.step_up * TAOX_YI_2023.range_S).clamp(
        max=TAOX_YI_2023.g_max_S)
    predicted = quiet.true_twin()(x, new)
    assert torch.allclose(quiet(x, new), predicted, atol=1e-12)
    assert quiet.pulses > 0


# ---- operating regime: bounded voltages, low dissipation -------------------------------------------

def test_sources_and_free_nodes_stay_in_the_read_range():
    plant = _plant()
    controls = plant.initial_controls()
    x = 100 * torch.randn(16, 3, generator=torch.Generator().manual_seed(10))  # saturates the DAC
    state = plant.relax(x, controls)
    assert float(state.private["sources"].abs().max()) <= 0.2 + 1e-15
    for v in state.private["V"]:  # maximum principle of a passive network
        assert float(v.abs().max()) <= 0.2 + 1e-9
    assert torch.allclose(plant.design.input_voltages(torch.tensor([[1.5, -9.0, 0.0]])).double(),
                          torch.tensor([[0.1, -0.2, 0.0]], dtype=torch.float64))


def test_a_large_network_dissipates_milliwatts_not_watts():
    plant = ResistiveNetworkPlant(in_features=64, out_features=10, hidden=(700,))
    from pnnlab.data.tabular import load_digits
    x = load_digits(seed=0).x_train[:16]
    state = plant.relax(x, plant.initial_controls())
    assert float(state.power_W.max()) < 0.05  # the old +-12 V regime dissipated watts per sample


@pytest.mark.parametrize("kwargs, match", [
    ({"bias_V": 0.5}, "read range|read_range"),
    ({"diode_low_V": -1.0}, "read range"),
    ({"read_range_V": 0.0}, "read_range_V"),
])
def test_voltages_outside_the_read_range_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResistiveNetworkPlant(in_features=3, out_features=2, **kwargs)


# ---- solver: KCL stopping rule, reported residual, no silent exit ------------------------------------

def _slow_network():
    """Weak (random) ties to the sources and biases, strong ones between layers: the block sweeps
    contract slowly (thousands of sweeps to a 1e-9 V residual)."""
    plant = ResistiveNetworkPlant(in_features=3, out_features=2, hidden=(6, 6, 6), dtype=torch.float64,
                                  tolerance_V=1e-9, max_sweeps=200000, conductance_range_S=(1e-9, 1e-3))
    g = torch.Generator().manual_seed(12)
    controls = {k: 1e-3 * (0.2 + 0.8 * torch.rand(s.shape, generator=g, dtype=torch.float64))
                for k, s in plant.control_specs().items()}
    controls["conductance_0"] = 1e-3 * controls["conductance_0"]
    for k in list(controls)[1:]:
        controls[k][:, -2:] = 1e-3 * controls[k][:, -2:]  # bias ties weak too
    return plant, controls


def test_solver_stops_on_the_kcl_residual_and_reports_it():
    plant, controls = _slow_network()
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    state = plant.relax(x, controls)
    G = _G(plant, controls)
    residual = kcl_residual(state.private["V"], state.private["sources"], G, plant._diodes, bias_V=0.2)
    from pnnlab.plants.electronics.resistive_network import _totals
    T = _totals(G)
    for r, t in zip(residual, T):
        assert float((r.abs() / t).max()) <= 1e-9 * (1 + 1e-6)
    assert state.residual == pytest.approx(max(float(r.abs().max()) for r in residual), rel=1e-3, abs=1e-30)
    assert state.private["converged"]


def test_solver_warns_with_the_residual_at_its_sweep_limit():
    from pnnlab.plants.electronics.resistive_network import SteadyStateNotReached
    plant, controls = _slow_network()
    plant.max_sweeps = 3
    with pytest.warns(SteadyStateNotReached, match=r"residual .* A"):
        state = plant.relax(torch.randn(2, 3, dtype=torch.float64), controls)
    assert state.residual > 0 and not state.private["converged"]


def _residual_after(sweeps, sources, G, diodes, tolerance_V):
    """State after exactly ``sweeps`` sweeps (fewer if the solver stops earlier) and its KCL residual
    / T_k computed independently of the solver (from kcl_residual and the node totals)."""
    import warnings
    from pnnlab.plants.electronics.steady_state import _totals, settle
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = settle(sources, G, diodes, bias_V=0.2, tolerance_V=tolerance_V, max_sweeps=sweeps)
    T = _totals(G)
    r = kcl_residual(state.V, sources, G, diodes, bias_V=0.2)
    return state, max(float((ri.abs() / t).max()) for ri, t in zip(r, T))


def _source_tied_network():
    """Hidden nodes tied 100x more strongly to the sources than to the outputs: the sweeps contract
    fast and a hidden node's KCL residual (a conductance-weighted average of its neighbours' last
    changes) is about 1 % of the per-sweep change, so the two stopping rules disagree by ~100x."""
    plant = ResistiveNetworkPlant(in_features=3, out_features=2, hidden=(6,), dtype=torch.float64,
                                  conductance_range_S=(1e-9, 1e-3))
    g = torch.Generator().manual_seed(5)
    controls = {k: 1e-4 * (0.5 + torch.rand(s.shape, generator=g, dtype=torch.float64))
                for k, s in plant.control_specs().items()}
    controls["conductance_1"] = 1e-2 * controls["conductance_1"]
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return plant, _G(plant, controls), plant.design.sources(x)


@pytest.mark.parametrize("case", ["source_tied", "weakly_tied"])
def test_solver_stops_at_the_first_sweep_whose_kcl_residual_meets_the_tolerance(case):
    """Catches a reversion to stopping on the per-sweep change: on the source-tied network that rule
    would sweep on (the change of the stopping sweep is still far above tolerance_V), and on either
    network a stop later than the first sweep meeting the KCL tolerance fails the minimality check."""
    from pnnlab.plants.electronics.steady_state import kcl_residual_V, settle
    if case == "source_tied":
        plant, G, sources = _source_tied_network()
        tol = 1e-10
    else:
        plant, controls = _slow_network()
        G = _G(plant, controls)
        sources = plant.design.sources(torch.randn(4, 3, generator=torch.Generator().manual_seed(11),
                                                   dtype=torch.float64))
        tol = 1e-9
    state = settle(sources, G, plant._diodes, bias_V=0.2, tolerance_V=tol, max_sweeps=200000)
    n = state.sweeps
    assert state.converged and n >= 2
    last, res_last = _residual_after(n, sources, G, plant._diodes, tol)
    before, res_before = _residual_after(n - 1, sources, G, plant._diodes, tol)
    assert last.sweeps == n and before.sweeps == n - 1
    assert res_last <= tol < res_before                        # stops at the FIRST sweep meeting the rule
    assert state.residual_V == pytest.approx(res_last, rel=1e-9, abs=1e-300)
    assert kcl_residual_V(state.V, sources, G, plant._diodes, bias_V=0.2)[1] == pytest.approx(res_last, rel=1e-9)
    change = max(float((a - b).abs().max()) for a, b in zip(last.V, before.V))
    if case == "source_tied":
        assert change > 30 * tol                               # a per-sweep-change rule would not stop here
        assert res_last < 0.05 * change


# ---- device clock: RRAM relaxation acts during queries and idle time ---------------------------------

def _relaxing_plant(relaxation):
    import dataclasses
    device = dataclasses.replace(IDEAL_DEVICE, relaxation=relaxation)  # no read noise: outputs are exact
    return _plant(hidden=(5,), device=device, tolerance_V=1e-12)


def test_memristor_relaxation_acts_during_training_queries_and_idle_time():
    from pnnlab.plants.electronics.memristor import LogTimeRelaxation
    # t0 of a nanosecond so that the device time of a few relaxations (tens of ns each) matters
    fast = LogTimeRelaxation(mean_shift=0.02, spread_log=0.01, t0_s=1e-9)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(20), dtype=torch.float64)
    outputs = {}
    for name, relaxation in (("relaxing", fast), ("stable", None)):
        plant = _relaxing_plant(relaxation)
        controls = plant.initial_controls()
        y0 = plant(x, controls)
        assert plant.elapsed_seconds > 0                      # the query's own time passed
        for _ in range(20):                                   # training queries, no idle call
            plant.relax(x, controls, nudge=OutputForce(1e-6 * torch.ones(4, 2, dtype=torch.float64)))
        assert plant.pulses == 0                              # same targets: nothing reprogrammed
        assert plant.elapsed_seconds == pytest.approx(plant.meter.device_seconds, rel=1e-12)
        for array in plant._arrays:                           # every device follows the plant clock
            assert array.clock_s == pytest.approx(plant.elapsed_seconds, rel=1e-12)
        y1 = plant(x, controls)
        plant.meter.reset()
        t = plant.elapsed_seconds
        assert t > 0                                          # resetting the meter keeps the clock
        plant.advance_time(1e-3)
        plant.wait(1e-3)                                      # the alias
        assert plant.elapsed_seconds == pytest.approx(t + 2e-3, rel=1e-12)
        predicted = plant.true_twin()(x, controls)            # the truth at this instant of the clock
        y2 = plant(x, controls)
        assert torch.allclose(predicted, y2, atol=1e-12)
        outputs[name] = (y0, y1, y2)
    y0, y1, y2 = outputs["relaxing"]
    scale = float(y0.abs().max())
    assert float((y1 - y0).abs().max()) > 1e-2 * scale        # relaxed during the queries alone
    assert float((y2 - y1).abs().max()) > 1e-2 * scale        # and further while idle
    y0, y1, y2 = outputs["stable"]                            # control: without relaxation nothing moves
    assert torch.equal(y0, y1) and torch.equal(y1, y2)


def test_programming_rounds_advance_the_device_clock():
    plant = _relaxing_plant(None)
    controls = plant.initial_controls()
    x = torch.randn(2, 3, dtype=torch.float64)
    plant(x, controls)
    new = {k: v.clone() for k, v in controls.items()}
    new["conductance_0"][0, :3] += 5 * IDEAL_DEVICE.step_up * IDEAL_DEVICE.range_S
    t = plant.elapsed_seconds
    stats = plant.program(new)
    assert stats["pulses"] == 15 and stats["seconds"] > 0
    assert plant.elapsed_seconds == pytest.approx(t + stats["seconds"], rel=1e-12)
    with pytest.raises(ValueError, match="seconds"):
        plant.advance_time(-1.0)


# ---- torch device placement ---------------------------------------------------------------------------
def _state_tensors(obj, seen=None):
    """Every tensor reachable from ``obj``'s attributes (lists, tuples, dicts, dataclasses, nested
    objects), with its path."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    items = (obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple))
             else vars(obj).items() if hasattr(obj, "__dict__") and not isinstance(obj, type) else ())
    for key, value in items:
        if isinstance(value, torch.Tensor):
            yield str(key), value
        elif not isinstance(value, (torch.Generator, str, bytes, int, float, bool, type(None), torch.dtype)):
            for path, t in _state_tensors(value, seen):
                yield f"{key}.{path}", t


def test_to_moves_every_state_tensor_including_the_memristor_arrays_and_keeps_results():
    """plant.to(device) moves conductance gains, diode draws, node degrees and every memristor array's
    state (MemristorArray is device state: without its to() the arrays would stay behind); the
    generators stay on the CPU; a plant moved to the CPU gives the same numbers as one never moved."""
    from pnnlab.plants.electronics import TYPICAL_MISMATCH

    plant = _plant(device=TAOX_YI_2023, mismatch=TYPICAL_MISMATCH, tolerance_V=1e-9)
    assert len(plant._arrays) == 3 and plant._arrays[0].device_model is TAOX_YI_2023
    paths = dict(_state_tensors(plant))
    assert any(p.startswith("_arrays.") for p in paths) and any(p.startswith("_diodes.") for p in paths)
    plant.to("meta")
    off = [p for p, t in _state_tensors(plant) if t.device.type != "meta"]
    assert not off, f"left on the CPU after to('meta'): {off}"
    assert plant._generator.device.type == "cpu" and plant._arrays[0]._own_generator.device.type == "cpu"

    a, b = (_plant(device=TAOX_YI_2023, mismatch=TYPICAL_MISMATCH, tolerance_V=1e-9) for _ in range(2))
    assert b.to("cpu") is b and b.device == torch.device("cpu")
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for step in range(3):
        controls = a.initial_controls(torch.Generator().manual_seed(step))
        assert torch.equal(a(x, controls), b(x, controls))
        sa, sb = a.relax(x, controls), b.relax(x, controls)
        assert torch.equal(sa.output, sb.output)
        assert all(torch.equal(a.energy_gradients(sa)[k], v) for k, v in b.energy_gradients(sb).items())


def test_twins_compute_on_the_device_of_their_inputs():
    """The nominal twin holds no tensor of its own (its design diodes are made on the input's device);
    the true twin reads the plant's state on the plant's device; both answer on x's device."""
    plant = _plant(device=TAOX_YI_2023)
    nominal = plant.nominal_twin()
    assert all(t.device == plant.device for t in nominal.state_dict().values())
    assert all(t.device == plant.device for _, t in _state_tensors(nominal))
    diodes = nominal.physics.diodes(torch.device("meta"))
    assert all(d.low_V.device.type == "meta" and d.conductance_S.device.type == "meta" for d in diodes)
    x = torch.randn(3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for twin in (nominal, plant.true_twin()):
        assert twin(x, plant.initial_controls()).device == x.device
