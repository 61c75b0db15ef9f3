"""The parameter-shift rule: exact against autograd, unbiased with shots, variance ~ 1/shots, metered cost."""

import math

import pytest
import torch
from torch import nn

from pnnlab import ChannelAffine, PhysicalLayer
from pnnlab.methods.base import MethodRequirementError
from pnnlab.methods.parameter_shift import ParameterShiftRule, parameter_shift_gradients
from pnnlab.methods.physics_aware import PhysicsAwareTraining
from pnnlab.methods.zeroth_order import SPSA
from pnnlab.plants.capabilities import ShiftRule
from pnnlab.plants.quantum import AngleEncoding, Ansatz, CircuitErrors, CNOTRing, QuantumCircuitPlant
from pnnlab.plants.toy.power_law import PowerLawPlant

IDEAL = CircuitErrors.ideal()


def _model(plant, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(PhysicalLayer(plant, twin=plant.nominal_twin()), ChannelAffine(plant.out_features, scale=0.8))


def _autograd_theta_grad(model, twin, x, y):
    """d loss / d theta by backpropagation through the exact circuit (the twin), same loss."""
    layer, affine = model[0], model[1]
    theta = layer.control_values()["theta"].detach().clone().requires_grad_(True)
    out = affine(twin(x, {"theta": theta}))
    nn.functional.mse_loss(out, y).backward()
    return theta.grad


@pytest.mark.parametrize("ansatz, features", [
    (Ansatz(n_qubits=2, layers=2, entangler=CNOTRing(), reupload=True), 2),
    (Ansatz.mitarai2018(layers=2), 1),
])
def test_parameter_shift_is_exact_for_pauli_rotations(ansatz, features):
    """shots=None, no hidden errors: the two-term rule equals autograd to float rounding."""
    plant = QuantumCircuitPlant(in_features=features, ansatz=ansatz, shots=None, errors=IDEAL)
    model = _model(plant)
    x = plant.example_inputs(6)
    y = torch.randn(6, plant.out_features, generator=torch.Generator().manual_seed(1))
    expected = _autograd_theta_grad(model, plant.nominal_twin(), x, y)
    ParameterShiftRule().step(model, x, y, nn.functional.mse_loss)
    got = model[0].control_parameters()["theta"].grad
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert model[1].scale.grad is not None  # digital layers after the circuit: ordinary autograd


def test_queries_per_step_are_metered():
    shots, batch = 50, 5
    plant = QuantumCircuitPlant(in_features=2, ansatz=Ansatz(n_qubits=2, layers=2), shots=shots, errors=IDEAL)
    model = _model(plant)
    x = plant.example_inputs(batch)
    y = torch.randn(batch, 2, generator=torch.Generator().manual_seed(0))
    n_angles = 2 * 2 * 2
    assert ParameterShiftRule.queries_per_step(model) == 1 + 2 * n_angles
    ParameterShiftRule().step(model, x, y, nn.functional.mse_loss)
    assert plant.meter.queries == 1 + 2 * n_angles
    assert plant.meter.samples == (1 + 2 * n_angles) * batch
    assert plant.shots_spent == (1 + 2 * n_angles) * batch * shots


def _single_output_plant(shots):
    ansatz = Ansatz(n_qubits=2, layers=1, encoding=AngleEncoding(axis="X"), entangler=CNOTRing(),
                    rotations=("Y",), readout=(1,))
    return QuantumCircuitPlant(in_features=2, ansatz=ansatz, shots=shots, errors=IDEAL, seed=7)


def test_shot_estimate_is_unbiased_and_its_variance_falls_as_one_over_shots():
    """Each shifted run of a +-1 observable has variance (1 - f^2)/S, so the estimate c (f+ - f-) has variance
    c^2 [(1 - f+^2) + (1 - f-^2)] / S: the measured variance over repetitions matches it at S = 50 and S = 800
    (fixed generator), and the mean matches the exact gradient."""
    x = torch.tensor([[0.7, -0.4]]).repeat(200, 1)
    g = torch.full((200, 1), 1.0 / 200)  # loss = mean output: the gradient is the mean of 200 per-circuit estimates
    theta = {"theta": torch.tensor([[[0.9], [2.1]]])}
    exact_plant = _single_output_plant(None)
    exact = parameter_shift_gradients(exact_plant, x[:1], theta, torch.ones(1, 1))["theta"].reshape(-1)
    predicted = []
    for i in range(2):
        f_plus = exact_plant.shifted(x[:1], theta, control="theta", index=i, shift=math.pi / 2)
        f_minus = exact_plant.shifted(x[:1], theta, control="theta", index=i, shift=-math.pi / 2)
        predicted.append(0.25 * float(2 - f_plus ** 2 - f_minus ** 2))
    predicted = torch.tensor(predicted, dtype=torch.float64) / 200
    measured = {}
    for shots in (50, 800):
        plant = _single_output_plant(shots)
        draws = torch.stack([parameter_shift_gradients(plant, x, theta, g)["theta"].reshape(-1).double()
                             for _ in range(60)])
        ratio = draws.var(0) * shots / predicted
        assert 0.6 < float(ratio.mean()) < 1.5, (shots, ratio)
        assert float((draws.mean(0) - exact).abs().max()) < 4 * float((predicted / shots / 60).sqrt().max())
        measured[shots] = float(draws.var(0).mean())
    assert 9.0 < measured[50] / measured[800] < 28.0  # 16 expected


def test_over_rotation_biases_the_rule_by_sin_s_pi_2_over_s():
    """With every angle scaled by s = 1 + eps, f = A + B cos(s theta + phi); the pi/2 shift then returns
    sin(s pi/2)/s times the true derivative (a hidden error the rule cannot see)."""
    eps = 0.2
    ansatz = Ansatz(n_qubits=1, layers=1, encoding=AngleEncoding(axis="X"), entangler=None, rotations=("Y",))
    plant = QuantumCircuitPlant(in_features=1, ansatz=ansatz, shots=None, errors=CircuitErrors(over_rotation=eps))
    x, theta = torch.tensor([[0.6]]), torch.tensor([[[0.8]]], requires_grad=True)
    shifted = parameter_shift_gradients(plant, x, {"theta": theta.detach()}, torch.ones(1, 1))["theta"]
    plant.true_twin()(x, {"theta": theta}).sum().backward()
    s = 1 + eps
    assert float(shifted) == pytest.approx(float(theta.grad) * math.sin(s * math.pi / 2) / s, rel=1e-5)
    assert abs(float(shifted) - float(theta.grad)) > 1e-3


def test_spsa_and_pat_run_unchanged_on_the_circuit():
    plant = QuantumCircuitPlant(in_features=2, ansatz=Ansatz(n_qubits=2, layers=1), shots=100)
    x = plant.example_inputs(8)
    y = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    for method in (SPSA(n_perturbations=2, epsilon=0.1), PhysicsAwareTraining()):
        model = _model(plant)
        loss = method.step(model, x, y, nn.functional.mse_loss)
        grad = model[0].control_parameters()["theta"].grad
        assert math.isfinite(loss) and grad is not None and float(grad.abs().sum()) > 0


def test_training_with_the_rule_lowers_the_loss_on_the_noisy_plant():
    plant = QuantumCircuitPlant(in_features=2, ansatz=Ansatz(n_qubits=2, layers=1), shots=500)
    model = _model(plant)
    x = plant.example_inputs(16)
    target_plant = QuantumCircuitPlant(in_features=2, ansatz=Ansatz(n_qubits=2, layers=1), shots=None, seed=5)
    y = target_plant(x, target_plant.initial_controls()) * 0.8
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    method = ParameterShiftRule()
    losses = []
    for _ in range(15):
        opt.zero_grad()
        losses.append(method.step(model, x, y, nn.functional.mse_loss))
        opt.step()
    assert sum(losses[-3:]) / 3 < 0.5 * sum(losses[:3]) / 3


def test_method_needs_the_capability_and_refuses_input_gradients():
    toy = PowerLawPlant()
    with pytest.raises(MethodRequirementError, match="ParameterShift"):
        ParameterShiftRule().check(nn.Sequential(PhysicalLayer(toy, twin=toy.nominal_twin())))
    plant = QuantumCircuitPlant(in_features=2, ansatz=Ansatz(n_qubits=2, layers=1), shots=None, errors=IDEAL)
    model = nn.Sequential(nn.Linear(2, 2), PhysicalLayer(plant))
    with pytest.raises(RuntimeError, match="no gradient with respect to the inputs"):
        ParameterShiftRule().step(model, torch.zeros(3, 2), torch.zeros(3, 2), nn.functional.mse_loss)


def test_shifted_call_is_checked():
    plant = QuantumCircuitPlant(in_features=2, ansatz=Ansatz(n_qubits=2, layers=1), shots=None, errors=IDEAL)
    x, c = plant.example_inputs(2), plant.initial_controls()
    with pytest.raises(ValueError, match="no parameter-shift rule"):
        plant.shifted(x, c, control="phase", index=0, shift=1.0)
    with pytest.raises(ValueError, match="index"):
        plant.shifted(x, c, control="theta", index=99, shift=1.0)
    with pytest.raises(ValueError, match="shift"):
        plant.shifted(x, c, control="theta", index=0, shift=float("nan"))
    with pytest.raises(ValueError, match="shift"):
        ShiftRule(shift=0.0)
    # a shift of 2 pi leaves every expectation unchanged (angles are periodic in 4 pi, <Z> in 2 pi)
    torch.testing.assert_close(plant.shifted(x, c, control="theta", index=1, shift=2 * math.pi), plant(x, c))


def test_agrees_with_pennylane_default_qubit():
    """Optional: the same circuit in PennyLane's default.qubit gives the same <Z> and parameter-shift gradients."""
    qml = pytest.importorskip("pennylane")
    import numpy as np
    ansatz = Ansatz(n_qubits=3, layers=2, entangler=CNOTRing(), rotations=("Y", "Z"), reupload=True)
    plant = QuantumCircuitPlant(in_features=3, ansatz=ansatz, shots=None, errors=IDEAL)
    x = plant.example_inputs(1).double()
    theta = plant.initial_controls()["theta"].double()
    dev = qml.device("default.qubit", wires=3)

    @qml.qnode(dev, diff_method="parameter-shift")
    def circuit(weights):
        for layer in range(2):
            for q in range(3):
                qml.RY(float(x[0, q]), wires=q)
            for q in range(3):
                qml.RY(weights[layer, q, 0], wires=q)
                qml.RZ(weights[layer, q, 1], wires=q)
            for q in range(3):
                qml.CNOT(wires=[q, (q + 1) % 3])
        return [qml.expval(qml.PauliZ(q)) for q in range(3)]

    weights = qml.numpy.array(theta.numpy(), requires_grad=True)
    ours = plant(x, {"theta": theta})
    theirs = np.array(circuit(weights))
    np.testing.assert_allclose(ours.numpy()[0], theirs, atol=1e-10)
    jac = qml.jacobian(lambda w: qml.numpy.stack(circuit(w)))(weights)  # (3 outputs, 2, 3, 2)
    for k in range(3):
        g = torch.zeros(1, 3, dtype=torch.float64)
        g[0, k] = 1.0
        grad = parameter_shift_gradients(plant, x, {"theta": theta}, g)["theta"]
        np.testing.assert_allclose(grad.numpy(), np.asarray(jac[k]), atol=1e-10)
