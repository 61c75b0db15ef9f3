"""Parameterised quantum circuits as a plant: angle-encoded inputs, trainable Pauli rotations, <Z_i>
estimated from a finite number of shots.

Sources. Quantum circuit learning: Mitarai, Negoro, Kitagawa & Fujii, Phys. Rev. A 98, 032309 (2018),
doi:10.1103/PhysRevA.98.032309 (inputs encoded by ``R_Z(arccos x^2) R_Y(arcsin x)`` on every qubit,
layers of a fixed transverse-field Ising evolution ``exp(-i H T)`` followed by trainable
``R_X R_Z R_X`` on every qubit, output <Z> of a qubit). Data re-uploading: Pérez-Salinas,
Cervera-Lierta, Gil-Fuster & Latorre, Quantum 4, 226 (2020), doi:10.22331/q-2020-02-06-226 (the
encoding repeated before every trainable layer). Gradients on hardware by the parameter-shift rule:
Schuld, Bergholm, Gogolin, Izaac & Killoran, Phys. Rev. A 99, 032331 (2019),
doi:10.1103/PhysRevA.99.032331 (see :mod:`pnnlab.methods.parameter_shift`).

The circuit (:class:`Ansatz`), for inputs ``x`` (batch, in_features) and the trainable angles
``theta`` (layers, n_qubits, len(rotations)):

    |0...0>  ->  for l in 0..layers-1:  [encoding(x) if l == 0 or reupload]
                                         [entangler, if entangler_first]
                                         R_{rotations[-1]}(theta[l, q, -1]) ... R_{rotations[0]}(theta[l, q, 0]) on every q
                                         [entangler, unless entangler_first]
             ->  measure the ``readout`` qubits in the Z basis, ``shots`` times.

The plant returns the estimated ``<Z_i>`` of each read-out qubit: the mean of +-1 outcomes over
``shots`` repetitions (multinomial sampling of the joint outcome of the read-out qubits), or the exact
expectation with ``shots=None`` (an idealisation: no hardware returns it).

Hidden truth (:class:`CircuitErrors`; all off in ``CircuitErrors.ideal()``):

* coherent over-rotation: every rotation applies ``(1 + over_rotation) * angle`` (a miscalibrated
  pulse amplitude); it also biases the parameter-shift rule, whose shift is then scaled too
  (``sin(s pi / 2) / s`` of the true derivative, ``s = 1 + over_rotation``);
* depolarising noise after every gate on each qubit it touches (``depolarising_1q`` after a rotation,
  ``depolarising_2q`` on both qubits after CNOT/CZ, and on every qubit after a fixed Ising evolution);
* amplitude damping (T1 relaxation) with ``amplitude_damping`` after every gate on each qubit it touches;
* read-out assignment error: ``readout_p01`` = P(read 1 | 0), ``readout_p10`` = P(read 0 | 1), independent per
  qubit (it maps <Z> to ``(1 - p01 - p10) <Z> + (p10 - p01)``).

The gate noise is simulated *exactly* as quantum channels on a density matrix (not by sampling Kraus
trajectories): the plant's only randomness is then shot noise, the true twin is the exact noisy
expectation, and the depolarising factor ``(1 - p)`` per gate is reproduced to float rounding. A
density matrix on ``n`` qubits is a vector of ``4^n`` amplitudes, so gate noise is limited to
``n <= 6`` qubits; without gate noise the circuit runs as a statevector (``n <= 12``).

Simplifications: gates are instantaneous and noise acts after each gate (no idle noise, no crosstalk,
no leakage); the fixed Ising evolution is applied as an exact unitary (not Trotterised); read-out
errors are independent per qubit; the noise rates are the same on every qubit.

Twins: :meth:`QuantumCircuitPlant.nominal_twin` is the noiseless circuit with exact expectations (what
a researcher writes down); :meth:`QuantumCircuitPlant.true_twin` is the circuit with every hidden error
(over-rotation, channels, read-out assignment) and exact expectations (shots off).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..._validation import check_in_range, check_int, check_nonnegative, check_finite_float, from_preset
from ...metering import CostModel
from ...twins.base import Twin
from ..base import ControlSpec, Plant
from ..capabilities import ParameterShift, ShiftRule, Simulated
from .simulator import (Register, assignment_error, damping_channel, depolarising_channel, marginal,
                        pauli_z_expectations, rotation, sample_counts, superoperator)

_AXES = ("X", "Y", "Z")

#: Seconds per shot and per job. ASSUMED (typical superconducting-qubit cloud devices, not one datasheet):
#: 250 us repetition delay per shot (the common default repetition delay of transmon back-ends) and 10 ms
#: of per-query overhead (loading the circuit and its parameters). Energy is not modelled (0 J).
SHOT_SECONDS = 250e-6
QUERY_SECONDS = 10e-3


def _check_axis(name: str, axis) -> str:
    if axis not in _AXES:
        raise ValueError(f"{name} must be one of 'X', 'Y', 'Z' (a Pauli rotation axis), got {axis!r}.")
    return axis


# ---- encodings -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class AngleEncoding:
    """Feature ``j`` is written as the rotation ``R_axis(scale * x_j)`` on qubit ``j mod n_qubits`` (features
    beyond the qubit count wrap around and are applied in turn)."""

    axis: str = "Y"
    scale: float = 1.0

    def __post_init__(self) -> None:
        _check_axis("AngleEncoding.axis", self.axis)
        check_finite_float("AngleEncoding.scale", self.scale)

    def gates(self, x: torch.Tensor, n_qubits: int):
        for j in range(x.shape[1]):
            yield j % n_qubits, self.axis, self.scale * x[:, j]

    def check_inputs(self, x: torch.Tensor) -> None:
        return None


@dataclass(frozen=True)
class ArcsinEncoding:
    """Mitarai et al. (2018): ``R_Z(arccos x^2) R_Y(arcsin x)`` on every qubit q, with ``x = x_{q mod in_features}``
    in [-1, 1]. For one feature this gives the product state rho = prod_q (I + x X_q + sqrt(1 - x^2) Z_q) / 2 up to
    the Z rotation, whose <Z>, <X> and <Y> are polynomials of x and sqrt(1 - x^2)."""

    def gates(self, x: torch.Tensor, n_qubits: int):
        for q in range(n_qubits):
            v = x[:, q % x.shape[1]]
            yield q, "Y", torch.asin(v)
            yield q, "Z", torch.acos(v.square())

    def check_inputs(self, x: torch.Tensor) -> None:
        if bool((x.abs() > 1.0).any()):
            raise ValueError(f"ArcsinEncoding needs inputs in [-1, 1] (it writes arcsin x), got values in "
                             f"[{float(x.min()):.3g}, {float(x.max()):.3g}]; rescale the features to [-1, 1].")


# ---- entanglers ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CNOTRing:
    """CNOT(q, q+1) for q = 0..n-2, and CNOT(n-1, 0) if ``ring`` (n > 2)."""

    ring: bool = True

    def pairs(self, n: int):
        last = n if (self.ring and n > 2) else n - 1
        return [(q, (q + 1) % n) for q in range(last)]


@dataclass(frozen=True)
class CZRing:
    """CZ(q, q+1) for q = 0..n-2, and CZ(n-1, 0) if ``ring`` (n > 2)."""

    ring: bool = True

    def pairs(self, n: int):
        last = n if (self.ring and n > 2) else n - 1
        return [(q, (q + 1) % n) for q in range(last)]


@dataclass(frozen=True)
class IsingEvolution:
    """Mitarai et al. (2018): the fixed evolution ``exp(-i H T)`` of a fully connected transverse-field Ising
    model ``H = sum_j a_j X_j + sum_{j<k} J_jk Z_j Z_k`` with ``a_j``, ``J_jk`` uniform in [-1, 1] (drawn from
    ``seed``) and ``T = time`` (10 in the paper). A design value of the circuit, known to the twin."""

    time: float = 10.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_nonnegative("IsingEvolution.time", self.time)
        check_int("IsingEvolution.seed", self.seed, minimum=0)

    def unitary(self, n: int, dtype: torch.dtype, device=None) -> torch.Tensor:
        """exp(-i H T) as a (2^n, 2^n) matrix: built on the CPU from the CPU generator seeded by ``seed`` (the
        same couplings on every device), then moved to ``device`` (default CPU)."""
        cpu = torch.device("cpu")
        g = torch.Generator().manual_seed(self.seed)
        a = 2 * torch.rand(n, generator=g, dtype=torch.float64, device=cpu) - 1
        couplings = 2 * torch.rand(n, n, generator=g, dtype=torch.float64, device=cpu) - 1
        x = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.complex128, device=cpu)
        z = torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=torch.complex128, device=cpu)
        eye = torch.eye(2, dtype=torch.complex128, device=cpu)

        def op(factors: dict) -> torch.Tensor:
            out = torch.ones(1, 1, dtype=torch.complex128, device=cpu)
            for q in range(n):
                out = torch.kron(out, factors.get(q, eye))
            return out

        h = torch.zeros(2 ** n, 2 ** n, dtype=torch.complex128, device=cpu)
        for j in range(n):
            h = h + a[j] * op({j: x})
            for k in range(j + 1, n):
                h = h + couplings[j, k] * op({j: z, k: z})
        return torch.linalg.matrix_exp(-1j * self.time * h).to(dtype).to(cpu if device is None else device)


# ---- the circuit -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ansatz:
    """The circuit layout (see the module docstring). ``readout``: the measured qubits (their <Z> are the
    outputs, in this order); ``None`` = every qubit."""

    n_qubits: int = 4
    layers: int = 2
    encoding: AngleEncoding | ArcsinEncoding = field(default_factory=AngleEncoding)
    entangler: CNOTRing | CZRing | IsingEvolution | None = field(default_factory=CZRing)
    rotations: tuple[str, ...] = ("Y", "Z")
    reupload: bool = False
    entangler_first: bool = False
    readout: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        check_int("Ansatz.n_qubits", self.n_qubits)
        if self.n_qubits > 12:
            raise ValueError(f"Ansatz.n_qubits must be <= 12 for this statevector simulator, got {self.n_qubits}.")
        check_int("Ansatz.layers", self.layers)
        if not isinstance(self.encoding, (AngleEncoding, ArcsinEncoding)):
            raise TypeError(f"Ansatz.encoding must be AngleEncoding(...) or ArcsinEncoding(), got "
                            f"{type(self.encoding).__name__}.")
        if self.entangler is not None and not isinstance(self.entangler, (CNOTRing, CZRing, IsingEvolution)):
            raise TypeError(f"Ansatz.entangler must be CNOTRing(), CZRing(), IsingEvolution(...) or None, got "
                            f"{type(self.entangler).__name__}.")
        if not isinstance(self.rotations, tuple) or not self.rotations:
            raise TypeError(f"Ansatz.rotations must be a non-empty tuple of axes such as ('Y', 'Z'), got "
                            f"{self.rotations!r}.")
        for axis in self.rotations:
            _check_axis("Ansatz.rotations[...]", axis)
        for name in ("reupload", "entangler_first"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"Ansatz.{name} must be True or False, got {getattr(self, name)!r}.")
        if self.readout is not None:
            if (not isinstance(self.readout, tuple) or not self.readout
                    or len(set(self.readout)) != len(self.readout)
                    or not all(isinstance(q, int) and 0 <= q < self.n_qubits for q in self.readout)):
                raise ValueError(f"Ansatz.readout must be a tuple of distinct qubit indices in [0, {self.n_qubits}), "
                                 f"or None for all qubits; got {self.readout!r}.")

    @property
    def measured(self) -> tuple[int, ...]:
        return tuple(range(self.n_qubits)) if self.readout is None else self.readout

    @property
    def theta_shape(self) -> tuple[int, int, int]:
        return (self.layers, self.n_qubits, len(self.rotations))

    @classmethod
    def mitarai2018(cls, *, n_qubits: int = 3, layers: int = 6, time: float = 10.0, seed: int = 0) -> "Ansatz":
        """Mitarai et al. (2018)'s function-fitting circuit: 3 qubits, depth 6, ``ArcsinEncoding``, Ising
        evolution with T = 10 then ``R_X R_Z R_X`` per qubit in every layer, <Z> of qubit 0 read out."""
        return cls(n_qubits=n_qubits, layers=layers, encoding=ArcsinEncoding(),
                   entangler=IsingEvolution(time=time, seed=seed), rotations=("X", "Z", "X"),
                   entangler_first=True, readout=(0,))


@dataclass(frozen=True)
class CircuitErrors:
    """The hidden truth of a quantum processor (see the module docstring); probabilities per gate."""

    over_rotation: float = 0.0
    depolarising_1q: float = 0.0
    depolarising_2q: float = 0.0
    amplitude_damping: float = 0.0
    readout_p01: float = 0.0
    readout_p10: float = 0.0

    def __post_init__(self) -> None:
        check_in_range("CircuitErrors.over_rotation", self.over_rotation, -0.5, 0.5)
        for name in ("depolarising_1q", "depolarising_2q", "amplitude_damping"):
            check_in_range(f"CircuitErrors.{name}", getattr(self, name), 0.0, 1.0)
        for name in ("readout_p01", "readout_p10"):
            check_in_range(f"CircuitErrors.{name}", getattr(self, name), 0.0, 0.5)

    @classmethod
    def ideal(cls) -> "CircuitErrors":
        return cls()

    @classmethod
    def nisq(cls) -> "CircuitErrors":
        """ASSUMED round numbers of the order reported for superconducting processors around 2020 (not one
        device): 1 % over-rotation, 1e-3 single-qubit and 1e-2 two-qubit depolarising error, damping 1e-3 per
        gate (a ~100 ns gate against T1 ~ 100 us), read-out errors 2 % (0 -> 1) and 4 % (1 -> 0)."""
        return cls(over_rotation=0.01, depolarising_1q=1e-3, depolarising_2q=1e-2, amplitude_damping=1e-3,
                   readout_p01=0.02, readout_p10=0.04)

    @property
    def gate_noise(self) -> bool:
        return bool(self.depolarising_1q or self.depolarising_2q or self.amplitude_damping)


#: preset names an experiment file (or ``pnnlab serve --plant-args``) can give for ``errors``: an explicit
#: map from the name to the recipe, the same way the other plants name their hidden truths
ERROR_PRESETS = {"nisq": CircuitErrors.nisq, "ideal": CircuitErrors.ideal}
#: preset names for ``ansatz``: the default 4-qubit CZ-ring circuit and Mitarai et al. (2018)'s circuit
ANSATZ_PRESETS = {"default": Ansatz, "mitarai2018": Ansatz.mitarai2018}
#: names for ``dtype`` in experiment files (TOML has no torch dtypes)
DTYPE_NAMES = {"complex64": torch.complex64, "complex128": torch.complex128}


def errors_from(value) -> CircuitErrors:
    """A :class:`CircuitErrors` as given, or a preset name (:data:`ERROR_PRESETS`: ``"nisq"`` is
    :meth:`CircuitErrors.nisq`, ``"ideal"`` switches every error off)."""
    return from_preset("errors", value, ERROR_PRESETS, CircuitErrors, "CircuitErrors.nisq() or 'nisq'")


def ansatz_from(value) -> Ansatz:
    """An :class:`Ansatz` as given, or a preset name (:data:`ANSATZ_PRESETS`)."""
    return from_preset("ansatz", value, ANSATZ_PRESETS, Ansatz, "Ansatz.mitarai2018() or 'mitarai2018'")


def dtype_from(value) -> torch.dtype:
    """``torch.complex64`` / ``torch.complex128`` as given, or their names (:data:`DTYPE_NAMES`)."""
    if isinstance(value, str):
        if value not in DTYPE_NAMES:
            raise ValueError(f"dtype={value!r} is not known; write one of {sorted(DTYPE_NAMES)}.")
        return DTYPE_NAMES[value]
    if value not in (torch.complex64, torch.complex128):
        raise TypeError(f"dtype must be torch.complex64 or torch.complex128 (or 'complex64' / 'complex128'), got "
                        f"{value!r}.")
    return value


def run_circuit(ansatz: Ansatz, x: torch.Tensor, theta: torch.Tensor, errors: CircuitErrors | None,
                dtype: torch.dtype, entangler_unitary: torch.Tensor | None) -> torch.Tensor:
    """Outcome probabilities of the measured qubits (batch, 2^r), read-out error included: differentiable in
    ``x`` and ``theta``. Computes on ``x``'s device (``theta`` and ``entangler_unitary`` are expected there)."""
    e = errors if errors is not None else CircuitErrors()
    n = ansatz.n_qubits
    device = x.device
    reg = Register(n, x.shape[0], mixed=e.gate_noise, dtype=dtype, device=device)
    scale = 1.0 + e.over_rotation
    after_1q = after_2q = None  # the noise after every gate, as one superoperator per qubit
    if e.gate_noise:
        damping = damping_channel(e.amplitude_damping, dtype, device)
        after_1q = damping @ depolarising_channel(e.depolarising_1q, dtype, device)
        after_2q = damping @ depolarising_channel(e.depolarising_2q, dtype, device)

    def noise_2q(qubits):
        if after_2q is not None:
            for q in qubits:
                reg.channel(after_2q, q)

    def entangle():
        ent = ansatz.entangler
        if ent is None:
            return
        if isinstance(ent, IsingEvolution):
            reg.unitary(entangler_unitary)
            noise_2q(range(n))
            return
        for a, b in ent.pairs(n):
            reg.cnot(a, b) if isinstance(ent, CNOTRing) else reg.cz(a, b)
            noise_2q((a, b))

    # every trainable rotation matrix at once: trainable[r] has shape (layers, n_qubits, 2, 2)
    trainable = [rotation(axis, scale * theta[..., r], dtype) for r, axis in enumerate(ansatz.rotations)]
    if after_1q is not None:  # as noisy superoperators, (layers, n_qubits, 4, 4), applied with reg.channel
        trainable = [after_1q @ superoperator([u]) for u in trainable]
    put = reg.gate if after_1q is None else reg.channel
    for layer in range(ansatz.layers):
        if layer == 0 or ansatz.reupload:
            for q, axis, angle in ansatz.encoding.gates(x, n):
                reg.gate(rotation(axis, scale * angle, dtype), q, after_1q)
        if ansatz.entangler_first:
            entangle()
        for q in range(n):
            for r in range(len(ansatz.rotations)):
                put(trainable[r][layer, q], q)
        if not ansatz.entangler_first:
            entangle()
    p = marginal(reg.probabilities(), ansatz.measured, n)
    return assignment_error(p, e.readout_p01, e.readout_p10, len(ansatz.measured))


class QuantumCircuitTwin(Twin):
    """Exact expectations <Z_i> of the circuit (differentiable), with the given errors (None: noiseless)."""

    def __init__(self, *, ansatz: Ansatz, in_features: int, errors: CircuitErrors | None = None,
                 dtype: torch.dtype = torch.complex128, device: torch.device | str | None = None) -> None:
        if not isinstance(ansatz, Ansatz):
            raise TypeError(f"ansatz must be a pnnlab Ansatz(...), got {type(ansatz).__name__}.")
        if errors is not None and not isinstance(errors, CircuitErrors):
            raise TypeError(f"errors must be CircuitErrors(...) or None, got {type(errors).__name__}.")
        super().__init__(in_features=in_features, out_features=len(ansatz.measured))
        self.ansatz, self.errors, self.dtype = ansatz, errors, dtype
        ent = ansatz.entangler
        # a buffer, so that model.to(device) moves it with the twin
        self.register_buffer("entangler_unitary", ent.unitary(ansatz.n_qubits, dtype, device)
                             if isinstance(ent, IsingEvolution) else None)

    def forward(self, x, controls):
        self.ansatz.encoding.check_inputs(x.detach())
        p = run_circuit(self.ansatz, x, controls["theta"], self.errors, self.dtype, self.entangler_unitary)
        return pauli_z_expectations(p.to(torch.float64), len(self.ansatz.measured)).to(x.dtype)


class QuantumCircuitPlant(Plant, Simulated, ParameterShift):
    """A parameterised quantum circuit measured with finite shots (see the module docstring).

    Parameters
    ----------
    in_features:
        input features (angles for ``AngleEncoding``; values in [-1, 1] for ``ArcsinEncoding``).
    ansatz:
        the circuit layout (:class:`Ansatz`), or a preset name (:data:`ANSATZ_PRESETS`: ``"default"``,
        ``"mitarai2018"``); its read-out qubits set ``out_features``.
    shots:
        measurements per circuit per query (``None``, or ``"exact"`` in experiment files: exact
        expectations, an idealisation).
    errors:
        the hidden truth (:class:`CircuitErrors`) or a preset name (:data:`ERROR_PRESETS`: ``"nisq"``, the
        default, or ``"ideal"``); ``CircuitErrors.ideal()`` switches it off. Gate noise
        (depolarising, amplitude damping) needs ``ansatz.n_qubits <= 6`` (density matrix).
    dtype:
        ``torch.complex128`` (default) or ``torch.complex64`` (or their names, for experiment files).
    cost:
        the query cost model; default: 10 ms per query plus 250 us per shot of every circuit (ASSUMED,
        :data:`SHOT_SECONDS`), so a query of ``B`` inputs costs ``0.01 + B * shots * 250e-6`` s.

    Controls: ``theta`` (layers, n_qubits, len(rotations)), rotation angles in radians, unbounded (angles are
    periodic); each entry drives exactly one gate, so each obeys the parameter-shift rule with shift pi/2
    (:meth:`shift_rules`). ``shots_spent`` counts every shot the plant has fired.
    """

    summary = ("parameterised quantum circuit (angle encoding, data re-uploading, Pauli rotations, CNOT/CZ or Ising "
               "evolution), <Z> from finite shots; hidden gate noise, over-rotation, read-out error")

    def __init__(self, *, in_features: int = 4, ansatz: Ansatz | str | None = None, shots: int | None = 1000,
                 errors: CircuitErrors | str | None = None, dtype: torch.dtype | str = torch.complex128,
                 cost: CostModel | None = None, seed: int = 0) -> None:
        in_features = check_int("in_features", in_features)
        ansatz = Ansatz() if ansatz is None else ansatz_from(ansatz)
        errors = CircuitErrors.nisq() if errors is None else errors_from(errors)
        if errors.gate_noise and ansatz.n_qubits > 6:
            raise ValueError(f"gate noise (depolarising, amplitude damping) is simulated on a density matrix, "
                             f"limited to n_qubits <= 6; got n_qubits={ansatz.n_qubits}. Use fewer qubits or "
                             f"CircuitErrors(depolarising_1q=0, depolarising_2q=0, amplitude_damping=0, ...).")
        if shots == "exact":  # experiment files cannot write None
            shots = None
        if isinstance(shots, str):
            raise ValueError(f"shots must be a positive int, None or 'exact' (exact expectations), got {shots!r}.")
        if shots is not None:
            shots = check_int("shots", shots)
        dtype = dtype_from(dtype)
        if cost is None:
            per_circuit = SHOT_SECONDS * (shots if shots is not None else 1)
            cost = CostModel(seconds_per_query=QUERY_SECONDS, seconds_per_sample=per_circuit,
                             source=f"assumed: {QUERY_SECONDS * 1e3:g} ms per query, {SHOT_SECONDS * 1e6:g} us "
                                    f"per shot x {shots if shots is not None else 1} shots per circuit "
                                    f"(typical transmon repetition delay; energy not modelled)")
        if not isinstance(cost, CostModel):
            raise TypeError(f"cost must be a pnnlab CostModel, got {type(cost).__name__}.")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}.")
        super().__init__(in_features=in_features, out_features=len(ansatz.measured), cost=cost, seed=seed)
        self.ansatz = ansatz
        self.shots = shots
        self.dtype = dtype
        self.shots_spent = 0
        self._errors = errors  # hidden truth: never read by training methods
        ent = ansatz.entangler
        # design constant on the plant's device (Plant.to moves it)
        self._unitary = ent.unitary(ansatz.n_qubits, dtype) if isinstance(ent, IsingEvolution) else None

    # ---- plant interface -------------------------------------------------------------------------
    def control_specs(self):
        return {"theta": ControlSpec(self.ansatz.theta_shape, unit="rad",
                                     description="trainable rotation angles (layer, qubit, rotation)")}

    def initial_controls(self, generator=None):
        gen = generator if generator is not None else self._generator
        return {"theta": 2 * math.pi * torch.rand(self.ansatz.theta_shape, generator=gen)}

    def example_inputs(self, batch, generator=None):
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        return 1.8 * torch.rand(batch, self.in_features, generator=gen) - 0.9

    def shift_rules(self):
        return {"theta": ShiftRule(shift=math.pi / 2, coefficient=0.5)}

    def _measure(self, x, controls, generator):
        self.ansatz.encoding.check_inputs(x)
        p = run_circuit(self.ansatz, x, controls["theta"], self._errors, self.dtype, self._unitary)
        r = len(self.ansatz.measured)
        p = p.to(torch.float64)
        if self.shots is None:
            return pauli_z_expectations(p, r).to(x.dtype)
        counts = sample_counts(p, self.shots, generator)
        self.shots_spent += self.shots * x.shape[0]
        return pauli_z_expectations(counts / self.shots, r).to(x.dtype)

    def nominal_twin(self) -> QuantumCircuitTwin:
        """The noiseless circuit with exact expectations (the design)."""
        return QuantumCircuitTwin(ansatz=self.ansatz, in_features=self.in_features, dtype=self.dtype,
                                  device=self.device)

    def true_twin(self) -> QuantumCircuitTwin:
        """The circuit with every hidden error (over-rotation, gate channels, read-out assignment) and exact
        expectations (shots off). Diagnostics and the ideal bound only."""
        return QuantumCircuitTwin(ansatz=self.ansatz, in_features=self.in_features, errors=self._errors,
                                  dtype=self.dtype, device=self.device)

    def describe(self):
        return (f"QuantumCircuitPlant(n_qubits={self.ansatz.n_qubits}, layers={self.ansatz.layers}, "
                f"in_features={self.in_features}, shots={self.shots})")
