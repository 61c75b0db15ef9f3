"""The quantum-circuit plant: gate physics, channels, shot statistics, hidden errors, twins."""

import math

import pytest
import torch

from pnnlab.plants.quantum import (AngleEncoding, Ansatz, ArcsinEncoding, CircuitErrors, CNOTRing, CZRing,
                                   IsingEvolution, QuantumCircuitPlant)
from pnnlab.plants.quantum.circuit import run_circuit
from pnnlab.plants.quantum.simulator import Register, rotation, sample_counts
from pnnlab.testing import check_plant

IDEAL = CircuitErrors.ideal()


def _one_qubit(errors=IDEAL, shots=None, axis="X", rotations=("Z",)):
    """|0> -> R_axis(x) -> R_Z(theta) -> measure Z: <Z> = cos x for axis X or Y (R_Z leaves <Z> alone)."""
    ansatz = Ansatz(n_qubits=1, layers=1, encoding=AngleEncoding(axis=axis), entangler=None, rotations=rotations)
    return QuantumCircuitPlant(in_features=1, ansatz=ansatz, shots=shots, errors=errors)


def _theta(plant, value=0.0):
    return {"theta": torch.full(plant.ansatz.theta_shape, value)}


ANGLES = torch.linspace(-3.0, 3.0, 13).unsqueeze(1)


@pytest.mark.parametrize("kwargs", [
    {},
    {"shots": None, "errors": IDEAL},
    {"in_features": 1, "ansatz": Ansatz.mitarai2018(layers=2), "shots": 100},
    {"in_features": 6, "ansatz": Ansatz(n_qubits=3, layers=2, entangler=CNOTRing(), reupload=True, readout=(2, 0)),
     "dtype": torch.complex64},
])
def test_quantum_plant_conforms(kwargs):
    check_plant(QuantumCircuitPlant(**kwargs))


def test_single_qubit_rx_gives_cosine():
    plant = _one_qubit()
    torch.testing.assert_close(plant(ANGLES, _theta(plant, 0.7)), torch.cos(ANGLES), atol=1e-6, rtol=0)


def test_norm_is_conserved_pure_and_mixed():
    """Unitaries keep sum |psi|^2 = 1, channels keep Tr rho = 1; the density matrix of a noiseless circuit equals
    |psi><psi| of the statevector."""
    plant = QuantumCircuitPlant(in_features=3, ansatz=Ansatz(n_qubits=3, layers=3, entangler=CNOTRing()),
                                shots=None, errors=IDEAL)
    x, c = plant.example_inputs(6), plant.initial_controls()
    gen = torch.Generator().manual_seed(3)
    pure, mixed = Register(3, 6, mixed=False), Register(3, 6, mixed=True)
    for step in range(12):
        q, axis = step % 3, "XYZ"[step % 3]
        g = rotation(axis, 6 * torch.rand(6, generator=gen, dtype=torch.float64), torch.complex128)
        pure.gate(g, q), mixed.gate(g, q)
        pure.cnot(q, (q + 1) % 3), mixed.cnot(q, (q + 1) % 3)
        pure.cz(q, (q + 2) % 3), mixed.cz(q, (q + 2) % 3)
    torch.testing.assert_close(pure.norm(), torch.ones(6, dtype=torch.float64))
    psi = pure.state
    rho = (psi.unsqueeze(2) * psi.conj().unsqueeze(1)).reshape(6, -1)
    torch.testing.assert_close(mixed.state, rho)
    mixed.depolarise(0.3, 1).damp(0.2, 2)
    torch.testing.assert_close(mixed.norm(), torch.ones(6, dtype=torch.float64))
    assert abs(float(plant.true_twin()(x, c).abs().max())) <= 1.0 + 1e-9


def test_bell_state_correlations():
    """R_Y(pi/2) on qubit 0 then CNOT(0, 1): (|00> + |11>)/sqrt 2, so <Z_0> = <Z_1> = 0 and every shot agrees."""
    ansatz = Ansatz(n_qubits=2, layers=1, encoding=AngleEncoding(axis="Y"), entangler=CNOTRing(), rotations=("Z",))
    x = torch.tensor([[math.pi / 2, 0.0]], dtype=torch.float64)
    p = run_circuit(ansatz, x, torch.zeros(ansatz.theta_shape, dtype=torch.float64), None, torch.complex128, None)
    torch.testing.assert_close(p, torch.tensor([[0.5, 0.0, 0.0, 0.5]], dtype=torch.float64))
    counts = sample_counts(p, 10000, torch.Generator().manual_seed(0))
    assert float(counts[0, 1] + counts[0, 2]) == 0.0 and abs(float(counts[0, 0]) - 5000) < 200
    plant = QuantumCircuitPlant(in_features=2, ansatz=ansatz, shots=None, errors=IDEAL)
    torch.testing.assert_close(plant(x.float(), _theta(plant)), torch.zeros(1, 2), atol=1e-6, rtol=0)


def test_depolarising_shrinks_z_by_one_minus_p_per_gate():
    """D_p after each of the 2 gates: <Z> = (1 - p)^2 cos x. Fails if the depolarising channel is removed."""
    p = 0.1
    plant = _one_qubit(CircuitErrors(depolarising_1q=p))
    torch.testing.assert_close(plant(ANGLES, _theta(plant)), (1 - p) ** 2 * torch.cos(ANGLES), atol=1e-6, rtol=0)


def test_two_qubit_depolarising_acts_after_entanglers():
    ansatz = Ansatz(n_qubits=2, layers=1, encoding=AngleEncoding(axis="X"), entangler=CZRing(), rotations=("Z",))
    plant = QuantumCircuitPlant(in_features=2, ansatz=ansatz, shots=None, errors=CircuitErrors(depolarising_2q=0.2))
    x = torch.tensor([[0.4, 1.1]])
    # CZ commutes with Z, so <Z_q> = cos x_q times 0.8 from the depolarising after the CZ
    torch.testing.assert_close(plant(x, _theta(plant)), 0.8 * torch.cos(x), atol=1e-6, rtol=0)


def test_amplitude_damping_relaxes_towards_ground():
    """|1> (R_X(pi)) decays with gamma after each of the 2 gates: P(1) = (1 - gamma)^2. Fails without damping."""
    gamma = 0.15
    plant = _one_qubit(CircuitErrors(amplitude_damping=gamma))
    z = plant(torch.tensor([[math.pi]]), _theta(plant))
    assert float(z) == pytest.approx(1 - 2 * (1 - gamma) ** 2, abs=1e-6)
    # from |0> nothing happens: damping is not depolarising
    assert float(plant(torch.zeros(1, 1), _theta(plant))) == pytest.approx(1.0, abs=1e-6)


def test_over_rotation_scales_every_angle():
    """<Z> = cos((1 + eps) x). Fails if the over-rotation is dropped."""
    eps = 0.05
    plant = _one_qubit(CircuitErrors(over_rotation=eps))
    torch.testing.assert_close(plant(ANGLES, _theta(plant)), torch.cos((1 + eps) * ANGLES), atol=1e-6, rtol=0)


def test_readout_assignment_error_maps_z_affinely():
    """<Z>_read = (1 - p01 - p10) <Z> + (p10 - p01). Fails if the assignment error is dropped."""
    p01, p10 = 0.03, 0.08
    plant = _one_qubit(CircuitErrors(readout_p01=p01, readout_p10=p10))
    torch.testing.assert_close(plant(ANGLES, _theta(plant)), (1 - p01 - p10) * torch.cos(ANGLES) + (p10 - p01),
                               atol=1e-6, rtol=0)


def test_shot_noise_is_binomial_and_unbiased():
    """S shots of a +-1 observable: mean <Z>, variance (1 - <Z>^2) / S; the estimates are multiples of 2/S."""
    shots = 64
    plant = _one_qubit(shots=shots)
    x = torch.full((8000, 1), 1.0)
    z = plant(x, _theta(plant)).double()
    exact = math.cos(1.0)
    assert float(z.mean()) == pytest.approx(exact, abs=0.005)
    assert float(z.var()) == pytest.approx((1 - exact ** 2) / shots, rel=0.06)
    torch.testing.assert_close(z * shots / 2, torch.round(z * shots / 2))
    assert plant.shots_spent == 8000 * shots
    assert plant.meter.device_seconds == pytest.approx(10e-3 + 8000 * shots * 250e-6)


def test_shots_sample_the_joint_outcome():
    """Two qubits read out from one multinomial draw: in a Bell state the two estimates are identical."""
    ansatz = Ansatz(n_qubits=2, layers=1, encoding=AngleEncoding(axis="Y"), entangler=CNOTRing(), rotations=("Z",))
    plant = QuantumCircuitPlant(in_features=2, ansatz=ansatz, shots=25, errors=IDEAL)
    y = plant(torch.tensor([[math.pi / 2, 0.0]]).repeat(50, 1), _theta(plant))
    torch.testing.assert_close(y[:, 0], y[:, 1])
    assert float(y[:, 0].std()) > 0.05


def test_twins_nominal_is_the_design_true_is_the_noisy_circuit():
    ansatz = Ansatz(n_qubits=3, layers=2, entangler=CNOTRing(), reupload=True)
    errors = CircuitErrors.nisq()
    noisy = QuantumCircuitPlant(in_features=3, ansatz=ansatz, shots=None, errors=errors)
    clean = QuantumCircuitPlant(in_features=3, ansatz=ansatz, shots=None, errors=IDEAL)
    x, c = noisy.example_inputs(10), noisy.initial_controls()
    torch.testing.assert_close(noisy.true_twin()(x, c), noisy(x, c), atol=1e-6, rtol=0)
    torch.testing.assert_close(noisy.nominal_twin()(x, c), clean(x, c), atol=1e-6, rtol=0)
    assert float((noisy(x, c) - clean(x, c)).abs().mean()) > 0.01


def test_mitarai_circuit_and_encoding():
    ansatz = Ansatz.mitarai2018()
    assert ansatz.theta_shape == (6, 3, 3) and ansatz.measured == (0,)
    u = IsingEvolution().unitary(3, torch.complex128)
    torch.testing.assert_close(u @ u.conj().T, torch.eye(8, dtype=torch.complex128))
    # the encoding alone: R_Z(arccos x^2) R_Y(arcsin x)|0> has <Z> = cos(arcsin x) = sqrt(1 - x^2)
    enc = Ansatz(n_qubits=1, layers=1, encoding=ArcsinEncoding(), entangler=None, rotations=("Z",))
    plant = QuantumCircuitPlant(in_features=1, ansatz=enc, shots=None, errors=IDEAL)
    x = torch.linspace(-1, 1, 9).unsqueeze(1)
    torch.testing.assert_close(plant(x, _theta(plant)), torch.sqrt(1 - x ** 2), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        plant(torch.full((1, 1), 1.5), _theta(plant))


def test_complex64_agrees_with_complex128():
    kwargs = dict(in_features=4, ansatz=Ansatz(layers=2, reupload=True), shots=None)
    a, b = QuantumCircuitPlant(**kwargs), QuantumCircuitPlant(dtype=torch.complex64, **kwargs)
    x, c = a.example_inputs(7), a.initial_controls()
    torch.testing.assert_close(a(x, c), b(x, c), atol=1e-5, rtol=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"shots": 0}, "shots"),
    ({"ansatz": "ring"}, "ansatz"),
    ({"errors": 0.1}, "errors"),
    ({"ansatz": Ansatz(n_qubits=7, layers=1)}, "n_qubits <= 6"),
    ({"dtype": torch.float32}, "dtype"),
])
def test_bad_arguments_are_explained(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        QuantumCircuitPlant(**kwargs)


def test_bad_components_are_explained():
    with pytest.raises(ValueError, match="depolarising_1q"):
        CircuitErrors(depolarising_1q=1.5)
    with pytest.raises(ValueError, match="readout_p01"):
        CircuitErrors(readout_p01=0.7)
    with pytest.raises(ValueError, match="axis"):
        AngleEncoding(axis="W")
    with pytest.raises(ValueError, match="readout"):
        Ansatz(n_qubits=2, readout=(0, 2))
    with pytest.raises(TypeError, match="entangler"):
        Ansatz(entangler="cnot")


def test_presets_build_the_same_objects_as_the_recipes():
    """Experiment files and `pnnlab serve --plant-args` name presets; each maps to the recipe object (a wrong map,
    e.g. 'nisq' -> ideal, changes the hidden truth and fails here)."""
    from pnnlab.plants.quantum import ERROR_PRESETS
    named = QuantumCircuitPlant(in_features=1, ansatz="mitarai2018", errors="nisq", shots="exact", dtype="complex64")
    assert named._errors == CircuitErrors.nisq() and named.ansatz == Ansatz.mitarai2018()
    assert named.shots is None and named.dtype == torch.complex64
    assert QuantumCircuitPlant(errors="ideal")._errors == IDEAL and set(ERROR_PRESETS) == {"nisq", "ideal"}
    x = torch.tensor([[0.3], [-0.6]])
    theta = {"theta": torch.full(Ansatz.mitarai2018().theta_shape, 0.4)}
    obj = QuantumCircuitPlant(in_features=1, ansatz=Ansatz.mitarai2018(), errors=CircuitErrors.nisq(), shots=None,
                              dtype=torch.complex64)
    torch.testing.assert_close(named(x, theta), obj(x, theta))
    for kwargs, match in (({"errors": "noisy"}, "presets are"), ({"ansatz": "deep"}, "presets are"),
                          ({"dtype": "float32"}, "complex64"), ({"shots": "many"}, "exact"),
                          ({"errors": 0.1}, "preset name")):
        with pytest.raises((ValueError, TypeError), match=match):
            QuantumCircuitPlant(**kwargs)


def test_quantum_classifier_model_from_an_experiment_table():
    """The registered model builder: one <Z> per class, ideal/nisq presets reach the plant, trainable count."""
    from pnnlab.layers import physical_layers
    from pnnlab.models.quantum_classifier import build_quantum_classifier
    model = build_quantum_classifier(in_features=4, n_classes=3, seed=2, n_qubits=4, layers=2, shots="exact",
                                     errors="ideal", entangler="cnot_ring")
    (layer,) = physical_layers(model)
    assert layer.plant.ansatz.readout == (0, 1, 2) and isinstance(layer.plant.ansatz.entangler, CNOTRing)
    assert layer.plant._errors == IDEAL
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 2 * 4 * 2 + 2 * 3
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # ideal plant with exact expectations = its nominal twin, scaled by the logit scale 3
        z = layer.twin(x, layer.control_values())
    torch.testing.assert_close(model(x), 3.0 * z)
    with pytest.raises(ValueError, match="n_qubits >= 5"):
        build_quantum_classifier(in_features=4, n_classes=5, n_qubits=4)
    with pytest.raises(ValueError, match="presets are"):
        build_quantum_classifier(in_features=4, n_classes=3, entangler="all_to_all")


@pytest.mark.parametrize("kwargs", [
    {"in_features": 1, "ansatz": Ansatz.mitarai2018(layers=1), "shots": 50},          # Ising unitary, gate noise
    {"in_features": 3, "ansatz": Ansatz(n_qubits=3, layers=1, entangler=CNOTRing(), readout=(1, 0)), "shots": 20,
     "errors": CircuitErrors(readout_p01=0.1)},                                          # statevector, CNOT, read-out
])
def test_circuit_and_parameter_shift_are_device_clean(kwargs):
    """Under the device audit (tensors made without device= go to 'meta'; draws off their generator's device raise):
    a tensor of the simulator, a channel, the cached CNOT/CZ tables, the Ising unitary or the shot sampling made
    without the data's device fails here, and so does the parameter-shift gradient buffer."""
    from torch import nn

    from pnnlab import ChannelAffine, PhysicalLayer
    from pnnlab.methods.parameter_shift import ParameterShiftRule
    from pnnlab.testing import check_method_device, check_plant_device
    plant = QuantumCircuitPlant(**kwargs)
    check_plant_device(plant)
    model = nn.Sequential(PhysicalLayer(plant, twin=plant.nominal_twin()), ChannelAffine(plant.out_features))
    y = torch.zeros(4, plant.out_features)
    check_method_device(ParameterShiftRule(), model, plant.example_inputs(4), y, loss_fn=nn.functional.mse_loss)


def test_twin_constants_move_with_the_model():
    """The Ising unitary is a buffer of the twin (model.to moves it) and an attribute of the plant (Plant.to)."""
    from torch import nn

    from pnnlab import PhysicalLayer
    plant = QuantumCircuitPlant(in_features=1, ansatz=Ansatz.mitarai2018(layers=1), shots=10)
    layer = PhysicalLayer(plant, twin=plant.nominal_twin())
    nn.Sequential(layer).to("meta")
    assert plant.device.type == "meta" and plant._unitary.device.type == "meta"
    assert layer.twin.entangler_unitary.device.type == "meta"


def test_mitarai_circuit_agrees_with_pennylane():
    """Optional: Mitarai et al.'s circuit (arcsin/arccos encoding, exp(-iHT) of the fully connected transverse
    Ising model, R_X R_Z R_X layers) built independently in PennyLane (its Hamiltonian from qml operators, the
    evolution by scipy's expm) gives the same <Z_0>: checks the encoding, the Hamiltonian's terms and qubit order."""
    qml = pytest.importorskip("pennylane")
    import numpy as np
    from scipy.linalg import expm
    n, layers, time = 3, 2, 10.0
    ansatz = Ansatz.mitarai2018(n_qubits=n, layers=layers, time=time, seed=0)
    plant = QuantumCircuitPlant(in_features=1, ansatz=ansatz, shots=None, errors=IDEAL)
    g = torch.Generator().manual_seed(0)  # the design couplings, drawn as IsingEvolution documents
    a = (2 * torch.rand(n, generator=g, dtype=torch.float64) - 1).numpy()
    j = (2 * torch.rand(n, n, generator=g, dtype=torch.float64) - 1).numpy()
    terms = [float(a[q]) * qml.PauliX(q) for q in range(n)]
    terms += [float(j[p, q]) * qml.PauliZ(p) @ qml.PauliZ(q) for p in range(n) for q in range(p + 1, n)]
    u = expm(-1j * time * qml.matrix(qml.sum(*terms), wire_order=range(n)))
    theta = torch.rand(ansatz.theta_shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 6
    dev = qml.device("default.qubit", wires=n)

    @qml.qnode(dev)
    def circuit(x):
        for q in range(n):
            qml.RY(np.arcsin(x), wires=q)
            qml.RZ(np.arccos(x ** 2), wires=q)
        for layer in range(layers):
            qml.QubitUnitary(u, wires=range(n))
            for q in range(n):
                qml.RX(float(theta[layer, q, 0]), wires=q)
                qml.RZ(float(theta[layer, q, 1]), wires=q)
                qml.RX(float(theta[layer, q, 2]), wires=q)
        return qml.expval(qml.PauliZ(0))

    xs = torch.tensor([[-0.8], [-0.1], [0.35], [0.9]], dtype=torch.float64)
    ours = plant(xs, {"theta": theta}).numpy()[:, 0]
    theirs = np.array([float(circuit(float(v))) for v in xs[:, 0]])
    np.testing.assert_allclose(ours, theirs, atol=1e-9)
