"""Coupled nonlinear oscillators (Wright et al., Nature 601, 549 (2022)): ideal limits, integrator
accuracy, the mismatch recipe, validation, and PAT == backpropagation with a perfect twin."""

from __future__ import annotations

import math

import pytest
import torch

import pnnlab
from pnnlab.execution import OnTwin, PhysicsAware, executing
from pnnlab.methods.base import BackpropThrough
from pnnlab.models.digital_baselines import build_matched_mlp, trainable_parameter_count
from pnnlab.models.oscillator_classifier import (RECOMMENDED_TRAINING, RandomSineMap, build_oscillator_classifier,
                                                 build_oscillator_random_features)
from pnnlab.plants.mechanics.oscillators import (CoupledOscillatorPlant, CoupledOscillatorTwin,
                                                 OscillatorMismatch, integrate_oscillators, pendulum_energy)
from pnnlab.testing import check_plant

torch.set_num_threads(1)
F64 = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _sym(n, scale, seed):
    c = scale * torch.randn(n, n, generator=_gen(seed), dtype=F64)
    return 0.5 * (c + c.T)


def _controls(n, coupling=None, drive=None):
    return {"coupling": torch.zeros(n, n, dtype=F64) if coupling is None else coupling,
            "drive": torch.zeros(n, dtype=F64) if drive is None else drive}


# ---- ideal limits -------------------------------------------------------------------------
def test_uncoupled_pendulum_conserves_energy_to_rk4_accuracy():
    q0 = torch.tensor([[0.3, 1.0, 2.0, 3.0]], dtype=F64)  # up to near the separatrix
    e0 = pendulum_energy(q0, torch.zeros_like(q0))
    drifts = []
    for n_steps in (100, 200, 400):  # t_end = 10 (about 1.6 small-amplitude periods)
        q, p = integrate_oscillators(q0, torch.zeros(4, 4, dtype=F64), torch.zeros(4, dtype=F64),
                                     t_end=10.0, n_steps=n_steps)
        drifts.append(float((pendulum_energy(q, p) - e0).abs().max() / e0.max()))
    assert drifts[0] < 1e-5
    # RK4 is not symplectic: the energy error is a truncation error and falls at least like h^4
    assert drifts[0] / drifts[1] > 14 and drifts[1] / drifts[2] > 14


def test_small_amplitude_uncoupled_is_harmonic():
    plant = CoupledOscillatorPlant(n_oscillators=5, t_end=0.5, n_steps=5)
    q0 = 1e-4 * torch.randn(7, 5, generator=_gen(), dtype=F64)
    q = plant(q0, _controls(5))
    # q(t) = q0 cos t up to the RK4 error (~h^4 t / 120 with h = 0.1) and O(q0^2) anharmonicity
    assert torch.allclose(q, q0 * math.cos(0.5), rtol=1e-6, atol=0)


def test_small_amplitude_coupled_network_follows_normal_modes():
    """Linearised: q'' = -(I + L) q + e with the graph Laplacian L = diag(sum_j J_ij) - J, so
    q(t) = q_eq + cos(Omega t) (q0 - q_eq) with Omega^2 = I + L and q_eq = (I + L)^-1 e."""
    n, t_end = 6, 2.0
    coupling = _sym(n, 0.3, seed=1)
    drive = 1e-5 * torch.randn(n, generator=_gen(2), dtype=F64)
    plant = CoupledOscillatorPlant(n_oscillators=n, t_end=t_end, n_steps=200)
    q0 = 1e-5 * torch.randn(4, n, generator=_gen(3), dtype=F64)
    q = plant(q0, _controls(n, coupling, drive))
    stiffness = torch.eye(n, dtype=F64) + torch.diag(coupling.sum(1)) - coupling
    evals, evecs = torch.linalg.eigh(stiffness)
    assert bool((evals > 0).all())
    cos_omega_t = evecs @ torch.diag(torch.cos(torch.sqrt(evals) * t_end)) @ evecs.T
    q_eq = torch.linalg.solve(stiffness, drive)
    expected = q_eq + (q0 - q_eq) @ cos_omega_t.T
    assert torch.allclose(q, expected, rtol=0, atol=1e-5 * 1e-5)


def test_rk4_global_error_falls_as_h_to_the_fourth():
    n = 5
    coupling, drive = _sym(n, 0.5, seed=4), 0.3 * torch.randn(n, generator=_gen(5), dtype=F64)
    q0 = 1.2 * torch.randn(3, n, generator=_gen(6), dtype=F64)
    reference, _ = integrate_oscillators(q0, coupling, drive, t_end=2.0, n_steps=2048)
    errors = [float((integrate_oscillators(q0, coupling, drive, t_end=2.0, n_steps=s)[0] - reference).abs().max())
              for s in (5, 10, 20, 40)]
    orders = [math.log2(a / b) for a, b in zip(errors, errors[1:])]
    assert all(3.6 < order < 4.6 for order in orders), (errors, orders)


def test_mismatch_free_noiseless_plant_equals_twin():
    plant = CoupledOscillatorPlant(n_oscillators=12, seed=3)
    twin = plant.nominal_twin()
    assert isinstance(twin, CoupledOscillatorTwin)
    controls = plant.initial_controls()
    controls["drive"] = 0.3 * torch.randn(12, generator=_gen(1))
    x = plant.example_inputs(16)
    assert torch.allclose(plant(x, controls), twin(x, controls), rtol=1e-5, atol=1e-6)
    x64 = x.double()
    c64 = {k: v.double() for k, v in controls.items()}
    assert torch.allclose(plant(x64, c64), twin(x64, c64), rtol=1e-13, atol=1e-13)


# ---- symmetry and the mismatch recipe -------------------------------------------------------
def test_couplings_must_be_symmetric_and_layers_keep_them_symmetric():
    plant = CoupledOscillatorPlant(n_oscillators=4)
    assert plant.control_specs()["coupling"].symmetric
    bad = plant.initial_controls()
    bad["coupling"] = bad["coupling"].clone()
    bad["coupling"][0, 1] += 0.3
    with pytest.raises(ValueError, match="symmetric"):
        plant(plant.example_inputs(2), bad)
    model = build_oscillator_classifier(in_features=6, n_classes=3, mismatch=OscillatorMismatch.wright2022(), seed=1)
    data_x = torch.randn(16, 6, generator=_gen())
    data_y = torch.randint(0, 3, (16,), generator=_gen())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        pnnlab.PhysicsAwareTraining().step(model, data_x, data_y, torch.nn.functional.cross_entropy)
        optimizer.step()
    for layer in pnnlab.physical_layers(model):
        j = layer.control_values()["coupling"].detach()
        assert torch.allclose(j, j.T, rtol=0, atol=1e-6)  # exact up to vectorised-sigmoid rounding
        assert float(j.abs().max()) <= layer.plant.coupling_limit


def test_extra_coupling_is_fixed_symmetric_seeded_and_of_the_stated_size():
    recipe = OscillatorMismatch(extra_coupling_std=0.2)
    a = CoupledOscillatorPlant(n_oscillators=80, mismatch=recipe, coupling_limit=1.0, seed=5)
    b = CoupledOscillatorPlant(n_oscillators=80, mismatch=recipe, coupling_limit=1.0, seed=5)
    c = CoupledOscillatorPlant(n_oscillators=80, mismatch=recipe, coupling_limit=1.0, seed=6)
    extra = a._extra_coupling  # the hidden truth, read here only to verify the recipe
    assert torch.equal(extra, extra.T)
    assert torch.equal(extra, b._extra_coupling) and not torch.equal(extra, c._extra_coupling)
    off = extra[~torch.eye(80, dtype=torch.bool)]
    assert abs(float(off.std()) - 0.2 / math.sqrt(2)) < 0.01  # (C + C^T)/2 halves the variance
    # fixed: two calls without input noise give identical outputs
    x = a.example_inputs(3)
    controls = a.initial_controls()
    assert torch.equal(a(x, controls), a(x, controls))
    # and twice the std doubles the effect: small-time expansion dq = t^2/2 dJ (sin q_j - sin q_i)
    ideal = CoupledOscillatorPlant(n_oscillators=80, t_end=0.1, n_steps=2)
    small = CoupledOscillatorPlant(n_oscillators=80, t_end=0.1, n_steps=2, mismatch=recipe, seed=5)
    s = torch.sin(x)
    # (the diagonal of dJ is an on-site stiffness: -dJ_ii sin q_i)
    e32 = extra.float()
    predicted = 0.5 * 0.1 ** 2 * (s @ e32.T - s * e32.sum(1) - s * torch.diagonal(e32))
    measured = small(x, controls) - ideal(x, controls)
    assert float((measured - predicted).norm() / predicted.norm()) < 0.05
    diag = torch.diagonal(extra)
    assert abs(float(diag.std()) - 0.2) < 0.05  # (C_ii + C_ii)/2 = C_ii: std s * coupling_limit


def test_diagonal_of_the_extra_coupling_is_an_onsite_stiffness():
    """One oscillator has no neighbours, so only the on-site term can act: q'' = -(1 + dJ_00) sin(k q),
    a small-amplitude frequency sqrt((1 + dJ_00) k). Fails if the diagonal of the recipe is dropped."""
    plant = CoupledOscillatorPlant(n_oscillators=1, t_end=2.0, n_steps=400,
                                   mismatch=OscillatorMismatch(extra_coupling_std=0.2), seed=3)
    d = float(plant._extra_coupling[0, 0])  # the hidden truth, read here only to verify the recipe
    assert abs(d) > 0.05
    q0 = 1e-5 * torch.ones(2, 1, dtype=F64)
    q = plant(q0, _controls(1))
    assert torch.allclose(q, q0 * math.cos(math.sqrt(1.0 + d) * 2.0), rtol=1e-6, atol=0)
    assert not torch.allclose(q, q0 * math.cos(2.0), rtol=1e-3, atol=0)


def _reference_recipe_output(x, coupling, drive, q_noise, eta, t_end=0.5, n_t=5):
    """Example 2 of mcmahon-lab/Physics-Aware-Training (the notebook's C2Q, ode_exp_small and
    ode_utils.rk_loop), written out here from its equations: state z = (q, p), RK4 on z,
    p' = -sin((1+eta) q) + e + sin_q @ C2Q(C) + sin_q @ Q_noise, with C2Q(C) = Q = (C + C^T)/2 and
    its diagonal replaced by minus its column sums."""
    def c2q(c):
        q = (c + c.T) / 2
        q = q.clone()
        q[range(q.shape[0]), range(q.shape[0])] = -q.sum(0)
        return q

    qc = c2q(coupling)

    def ode(z):
        q, p = z[..., 0], z[..., 1]
        s = torch.sin((1 + eta) * q)
        return torch.stack([p, -s + drive + s @ qc + s @ q_noise], dim=-1)

    dt = t_end / n_t
    z = torch.stack([x, torch.zeros_like(x)], dim=-1)
    for _ in range(n_t):
        k1 = ode(z)
        k2 = ode(z + dt * k1 / 2)
        k3 = ode(z + dt * k2 / 2)
        k4 = ode(z + dt * k3)
        z = z + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return z[..., 0]


def test_wright2022_recipe_equals_the_reference_code_recipe():
    n = 9
    recipe = OscillatorMismatch(extra_coupling_std=0.2, nonlinearity_error=0.1)  # noise off: deterministic
    plant = CoupledOscillatorPlant(n_oscillators=n, mismatch=recipe, seed=4)
    extra = plant._extra_coupling  # dJ = 0.2 (C + C^T)/2: the reference's Q_noise = C2Q(0.2 C) is C2Q(dJ)
    # reference C2Q of a symmetric matrix: its diagonal becomes minus the column sums
    q_noise = extra.clone()
    q_noise[range(n), range(n)] = -extra.sum(0)
    coupling = _sym(n, 0.3, seed=8)
    coupling.fill_diagonal_(0.0)  # the trainable diagonal has no effect in pnnlab (documented)
    drive = 0.2 * torch.randn(n, generator=_gen(9), dtype=F64)
    x = 0.8 * torch.randn(6, n, generator=_gen(10), dtype=F64)
    expected = _reference_recipe_output(x, coupling, drive, q_noise, eta=0.1)
    torch.testing.assert_close(plant(x, _controls(n, coupling, drive)), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(plant.true_twin()(x, _controls(n, coupling, drive)), expected,
                               rtol=1e-12, atol=1e-12)
    full = OscillatorMismatch.wright2022()
    assert (full.extra_coupling_std, full.nonlinearity_error, full.input_noise_std) == (0.2, 0.1, 0.02)


def test_true_twin_is_the_noiseless_truth_and_differs_from_the_nominal_twin():
    recipe = OscillatorMismatch.wright2022()
    noisy = CoupledOscillatorPlant(n_oscillators=7, mismatch=recipe, seed=2)
    quiet = CoupledOscillatorPlant(n_oscillators=7, seed=2,
                                   mismatch=OscillatorMismatch(extra_coupling_std=0.2, nonlinearity_error=0.1))
    controls = noisy.initial_controls(_gen(1))
    controls["drive"] = 0.3 * torch.randn(7, generator=_gen(2))
    x = noisy.example_inputs(12)
    truth = noisy.true_twin()
    # same seed, same fabrication draw: the true twin of the noisy plant is the noise-free plant
    torch.testing.assert_close(truth(x, controls), quiet(x, controls), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(noisy(x, controls), quiet(x, controls), atol=1e-4)  # the input noise is real
    gap = (truth(x, controls) - noisy.nominal_twin()(x, controls)).abs().max()
    assert float(gap) > 1e-2
    x64, c64 = x.double().requires_grad_(True), {k: v.double() for k, v in controls.items()}
    truth.double()(x64, c64).sum().backward()
    assert x64.grad is not None and bool(torch.isfinite(x64.grad).all())


def test_nonlinearity_error_shifts_the_frequency_by_sqrt_one_plus_eta():
    plant = CoupledOscillatorPlant(n_oscillators=3, t_end=2.0, n_steps=200,
                                   mismatch=OscillatorMismatch(nonlinearity_error=0.1))
    q0 = 1e-5 * torch.randn(5, 3, generator=_gen(), dtype=F64)
    q = plant(q0, _controls(3))
    assert torch.allclose(q, q0 * math.cos(math.sqrt(1.1) * 2.0), rtol=1e-5, atol=0)


def test_input_noise_has_the_stated_std_and_is_fresh_each_call():
    plant = CoupledOscillatorPlant(n_oscillators=4, mismatch=OscillatorMismatch(input_noise_std=0.02), seed=2)
    twin = plant.nominal_twin()
    x = 1e-3 * torch.randn(4000, 4, generator=_gen(), dtype=F64)
    controls = _controls(4)
    d1 = plant(x, controls) - twin(x, controls)
    d2 = plant(x, controls) - twin(x, controls)
    # at small amplitude the noise propagates linearly, dq(t) = cos(t) dq(0)
    assert abs(float(d1.std()) / (0.02 * math.cos(0.5)) - 1) < 0.05
    assert not torch.allclose(d1, d2)


def test_reference_recipe_values_and_default_off():
    recipe = OscillatorMismatch.wright2022()
    assert (recipe.extra_coupling_std, recipe.nonlinearity_error, recipe.input_noise_std) == (0.2, 0.1, 0.02)
    assert OscillatorMismatch().is_off and not recipe.is_off
    plant = CoupledOscillatorPlant(n_oscillators=4)
    assert plant._mismatch.is_off


# ---- validation -----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, word", [
    ({"n_oscillators": 0}, ValueError, "n_oscillators"),
    ({"n_oscillators": 2.5}, TypeError, "n_oscillators"),
    ({"n_oscillators": 4, "t_end": -1.0}, ValueError, "t_end"),
    ({"n_oscillators": 4, "n_steps": 0}, ValueError, "n_steps"),
    ({"n_oscillators": 4, "coupling_limit": 0.0}, ValueError, "coupling_limit"),
    ({"n_oscillators": 4, "mismatch": "wright2022"}, TypeError, "OscillatorMismatch"),
    ({"n_oscillators": 4, "cost": 1.0}, TypeError, "cost"),
])
def test_constructor_rejects_bad_arguments(kwargs, error, word):
    with pytest.raises(error, match=word):
        CoupledOscillatorPlant(**kwargs)


def test_mismatch_and_builder_validation():
    with pytest.raises(ValueError, match="input_noise_std"):
        OscillatorMismatch(input_noise_std=-0.1)
    with pytest.raises(ValueError, match="nonlinearity_error"):
        OscillatorMismatch(nonlinearity_error=-1.0)
    with pytest.raises(TypeError, match="OscillatorMismatch"):
        build_oscillator_classifier(in_features=4, n_classes=2, mismatch={"noise": 0.1})
    with pytest.raises(TypeError, match="booleans are no longer accepted"):
        build_oscillator_classifier(in_features=4, n_classes=2, mismatch=True)
    with pytest.raises(ValueError, match="not a preset"):
        build_oscillator_classifier(in_features=4, n_classes=2, mismatch="yes")
    preset = pnnlab.physical_layers(build_oscillator_classifier(in_features=4, n_classes=2,
                                                                mismatch="wright2022"))[0].plant
    assert preset._mismatch == OscillatorMismatch.wright2022()
    assert pnnlab.physical_layers(build_oscillator_classifier(in_features=4, n_classes=2))[0].plant._mismatch.is_off
    with pytest.raises(ValueError, match="n_classes"):
        build_oscillator_classifier(in_features=4, n_classes=1)
    plant = CoupledOscillatorPlant(n_oscillators=3)
    with pytest.raises(ValueError, match="range"):
        plant(plant.example_inputs(2), {"coupling": torch.full((3, 3), 2.0), "drive": torch.zeros(3)})
    with pytest.raises(ValueError, match="shape"):
        plant(torch.zeros(2, 4), plant.initial_controls())


def test_conformance():
    check_plant(CoupledOscillatorPlant(n_oscillators=4))
    check_plant(CoupledOscillatorPlant(n_oscillators=5, mismatch=OscillatorMismatch.wright2022(), seed=1))
    plant = pnnlab.PLANTS.build("coupled_oscillators", **pnnlab.PLANTS.get("coupled_oscillators").example)
    check_plant(plant)


# ---- the model and physics-aware training ---------------------------------------------------
class _Backprop(BackpropThrough):
    name = "backprop_twin"
    execution = OnTwin()


def _grads(model, method, x, y):
    model.zero_grad(set_to_none=True)
    method.step(model, x, y, torch.nn.functional.cross_entropy)
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def test_pat_with_perfect_twin_equals_backpropagation_on_two_layers():
    model = build_oscillator_classifier(in_features=8, n_classes=3, mismatch=None, seed=2).double()
    x = torch.randn(20, 8, generator=_gen(), dtype=F64)
    y = torch.randint(0, 3, (20,), generator=_gen())
    pat = _grads(model, pnnlab.PhysicsAwareTraining(), x, y)
    bp = _grads(model, _Backprop(), x, y)
    assert set(pat) == set(bp) and len(pat) == 6  # 2 x (coupling, drive) + scale + offset
    for name in pat:
        assert torch.allclose(pat[name], bp[name], rtol=1e-10, atol=1e-12), name
        assert float(bp[name].abs().max()) > 0


def test_pat_forward_is_the_plant_and_differs_from_backprop_under_mismatch():
    recipe = OscillatorMismatch(extra_coupling_std=0.2, nonlinearity_error=0.1)  # deterministic: no input noise
    model = build_oscillator_classifier(in_features=8, n_classes=3, mismatch=recipe, seed=2).double()
    x = torch.randn(20, 8, generator=_gen(), dtype=F64)
    layer = pnnlab.physical_layers(model)[0]
    q0 = model[0](x)
    with torch.no_grad():
        controls = layer.control_values()
        with executing(PhysicsAware()):
            out_pat = layer(q0)
        assert torch.allclose(out_pat, layer.plant(q0, controls), rtol=0, atol=1e-12)
        assert float((out_pat - layer.twin(q0, controls)).abs().max()) > 1e-3
    y = torch.randint(0, 3, (20,), generator=_gen())
    pat = _grads(model, pnnlab.PhysicsAwareTraining(), x, y)
    bp = _grads(model, _Backprop(), x, y)
    assert any(not torch.allclose(pat[n], bp[n], rtol=1e-3) for n in pat)


def test_model_architecture_and_digital_baseline():
    model = build_oscillator_classifier(in_features=10, n_classes=4, mismatch=None)
    layers = pnnlab.physical_layers(model)
    assert [lay.plant.n_oscillators for lay in layers] == [10, 14]
    x = torch.randn(5, 10, generator=_gen())
    assert model(x).shape == (5, 4)
    # couplings count n (n + 1) / 2 (symmetric), drives n, read-out 2 n_classes
    assert trainable_parameter_count(model) == 55 + 10 + 105 + 14 + 8
    control = build_oscillator_random_features(in_features=10, n_classes=4, seed=1)
    assert not pnnlab.physical_layers(control)
    assert trainable_parameter_count(control) == 8
    # unlike wires, the frozen map carries the input to the class channels
    assert not torch.allclose(control(x), control(torch.randn(5, 10, generator=_gen(1))))
    mlp = build_matched_mlp(in_features=10, n_classes=4, parameters=trainable_parameter_count(model))
    assert abs(trainable_parameter_count(mlp) - trainable_parameter_count(model)) <= 15 // 2 + 1
    assert set(RECOMMENDED_TRAINING) == {"epochs", "lr", "batch_size"}


def test_random_sine_map_is_the_small_time_oscillator_map():
    """For small t the oscillator network started at rest moves by (t^2/2) (K sin q0): the frozen
    control has that form, with its own fixed random couplings."""
    rmap = RandomSineMap(6, t_end=0.05, seed=2)
    plant = CoupledOscillatorPlant(n_oscillators=6, t_end=0.05, n_steps=4)
    coupling = rmap.weight.double().clone()
    coupling.fill_diagonal_(0.0)
    q0 = 1e-3 * torch.randn(3, 6, generator=_gen(), dtype=F64)
    # linearised network: q(t) - q0 ~ t^2/2 (J - diag(1 + sum J)) q0; the map: t^2/2 W sin q0
    moved = plant(q0, _controls(6, coupling)) - q0 * math.cos(0.05)
    predicted = 0.5 * 0.05 ** 2 * (torch.sin(q0) @ coupling.T - q0 * coupling.sum(1))
    assert float((moved - predicted).norm() / predicted.norm()) < 0.02
    assert not any(p.requires_grad for p in rmap.parameters())


def test_registered_model_builds_and_classifier_amplitudes_stay_bounded():
    model = pnnlab.MODELS.build("oscillator_classifier", in_features=6, n_classes=3, seed=0)
    x = 100 * torch.randn(8, 6, generator=_gen())
    q0 = model[0](x)
    assert float(q0.abs().max()) <= math.pi / 2 + 1e-6
