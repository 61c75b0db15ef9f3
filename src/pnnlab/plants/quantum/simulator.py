"""A small batched quantum-circuit simulator in plain PyTorch (statevector and density matrix).

Conventions. ``n`` qubits, basis index ``k = sum_q b_q 2^(n-1-q)`` (qubit 0 is the most significant
bit), the register starts in ``|0...0>``. A *statevector* is a complex tensor ``(batch, 2^n)``. A
*density matrix* ``rho`` (``(batch, 2^n, 2^n)``) is stored flattened as ``(batch, 4^n)`` with index
``row * 2^n + col``, i.e. as a vector on ``2n`` virtual qubits whose first ``n`` are the row (ket)
qubits and last ``n`` the column (bra) qubits. Then ``U rho U^dagger`` for a one-qubit ``U`` on qubit
``q`` is ``U`` on virtual qubit ``q`` and ``conj(U)`` on virtual qubit ``n + q``, so one routine
(:func:`apply_1q`) serves both representations, and a channel with Kraus operators ``K_m`` is
``sum_m K_m rho K_m^dagger``.

Gates (Nielsen & Chuang, Quantum Computation and Quantum Information, ch. 4):
``R_P(theta) = exp(-i theta P / 2)`` for a Pauli ``P`` in {X, Y, Z}; CNOT and CZ act as a basis
permutation and a sign. Channels (Nielsen & Chuang ch. 8):

* depolarising, ``D_p(rho) = (1 - p) rho + p Tr_q(rho) (x) I/2`` on qubit q, written in Pauli form
  ``(1 - 3p/4) rho + (p/4)(X rho X + Y rho Y + Z rho Z)``; it multiplies every Pauli expectation on
  that qubit by ``(1 - p)``;
* amplitude damping with ``gamma``: ``K0 = [[1, 0], [0, sqrt(1 - gamma)]]``, ``K1 = [[0, sqrt(gamma)],
  [0, 0]]`` (energy relaxation |1> -> |0> with probability gamma; for a gate of duration t and
  relaxation time T1, gamma = 1 - exp(-t / T1)).

Everything is differentiable with respect to the rotation angles and the inputs (autograd through
complex arithmetic), which the twins use; the plant calls the same code under ``torch.no_grad()``.

Devices: every function that creates a tensor takes the ``device`` it is for (the device of the data);
the cached index tables (:func:`cnot_permutation`, :func:`cz_signs`) are kept per device. Shot sampling
draws through :mod:`pnnlab.devices`, so the counts are the same numbers on CPU and CUDA.
"""

from __future__ import annotations

import functools
import math

import torch

from ... import devices


def rotation(axis: str, angle: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``R_axis(angle) = exp(-i angle P / 2)``: a ``(2, 2)`` matrix for a scalar angle, ``(batch, 2, 2)``
    for a vector of angles."""
    half = angle.to(torch.float64 if dtype == torch.complex128 else torch.float32) / 2
    c = torch.cos(half).to(dtype)
    s = torch.sin(half).to(dtype)
    zero = torch.zeros_like(c)
    if axis == "X":
        rows = [[c, -1j * s], [-1j * s, c]]
    elif axis == "Y":
        rows = [[c, -s], [s, c]]
    elif axis == "Z":
        rows = [[c - 1j * s, zero], [zero, c + 1j * s]]
    else:
        raise ValueError(f"axis must be 'X', 'Y' or 'Z', got {axis!r}.")
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def apply_1q(state: torch.Tensor, gate: torch.Tensor, qubit: int, n: int) -> torch.Tensor:
    """Apply a one-qubit ``gate`` ((2, 2), or (batch, 2, 2) for per-sample gates) to ``qubit`` of an
    ``n``-qubit vector ``state`` (batch, 2^n)."""
    batch = state.shape[0]
    s = state.reshape(batch, 2 ** qubit, 2, 2 ** (n - qubit - 1))
    if gate.ndim == 2:
        out = torch.einsum("ij,bajc->baic", gate, s)
    else:
        out = torch.einsum("bij,bajc->baic", gate, s)
    return out.reshape(batch, 2 ** n)


def _bits(n: int, device=None) -> torch.Tensor:
    """(2^n, n) table of basis bits, qubit 0 most significant."""
    device = torch.device("cpu") if device is None else device
    k = torch.arange(2 ** n, device=device)
    return ((k.unsqueeze(1) >> torch.arange(n - 1, -1, -1, device=device)) & 1)


@functools.lru_cache(maxsize=512)
def cnot_permutation(control: int, target: int, n: int, device: torch.device | None = None) -> torch.Tensor:
    """Index map of CNOT: ``new[k] = old[perm[k]]`` (an involution), on ``device`` (default CPU)."""
    k = torch.arange(2 ** n, device=torch.device("cpu") if device is None else device)
    flip = ((k >> (n - 1 - control)) & 1) << (n - 1 - target)
    return k ^ flip


@functools.lru_cache(maxsize=512)
def cz_signs(a: int, b: int, n: int, device: torch.device | None = None) -> torch.Tensor:
    """Diagonal of CZ: -1 where both qubits are 1, on ``device`` (default CPU)."""
    bits = _bits(n, device)
    return 1.0 - 2.0 * (bits[:, a] * bits[:, b]).double()


def z_signs(n: int, device=None) -> torch.Tensor:
    """(2^n, n): the eigenvalue of Z_q (+1 for bit 0, -1 for bit 1) in every basis state."""
    return 1.0 - 2.0 * _bits(n, device).double()


def pauli_matrices(dtype: torch.dtype, device=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """I, X, Y, Z (on ``device``, default CPU)."""
    device = torch.device("cpu") if device is None else device
    return (torch.eye(2, dtype=dtype, device=device), torch.tensor([[0, 1], [1, 0]], dtype=dtype, device=device),
            torch.tensor([[0, -1j], [1j, 0]], dtype=dtype, device=device),
            torch.tensor([[1, 0], [0, -1]], dtype=dtype, device=device))


def superoperator(kraus: list[torch.Tensor], weights: list[float] | None = None) -> torch.Tensor:
    """The one-qubit channel ``rho -> sum_m w_m K_m rho K_m^dagger`` as a (4, 4) matrix acting on the
    vectorised ``rho`` (index ``2 i + k`` for ``rho[i, k]``); Kraus operators of shape (..., 2, 2) give (..., 4, 4)."""
    out = None
    for m, k in enumerate(kraus):
        w = 1.0 if weights is None else weights[m]
        term = torch.einsum("...ij,...kl->...ikjl", k, k.conj()).reshape(*k.shape[:-2], 4, 4) * w
        out = term if out is None else out + term
    return out


def depolarising_channel(p: float, dtype: torch.dtype, device=None) -> torch.Tensor:
    """``D_p(rho) = (1 - p) rho + p Tr(rho) I / 2`` = ``(1 - 3p/4) rho + (p/4) sum_P P rho P`` (4, 4)."""
    eye, x, y, z = pauli_matrices(dtype, device)
    return superoperator([eye, x, y, z], [1 - 0.75 * p, p / 4, p / 4, p / 4])


def damping_channel(gamma: float, dtype: torch.dtype, device=None) -> torch.Tensor:
    """Amplitude damping: ``K0 = [[1, 0], [0, sqrt(1 - gamma)]]``, ``K1 = [[0, sqrt(gamma)], [0, 0]]`` (4, 4)."""
    device = torch.device("cpu") if device is None else device
    k0 = torch.tensor([[1, 0], [0, math.sqrt(1 - gamma)]], dtype=dtype, device=device)
    k1 = torch.tensor([[0, math.sqrt(gamma)], [0, 0]], dtype=dtype, device=device)
    return superoperator([k0, k1])


class Register:
    """A batch of ``n``-qubit states, pure (statevector) or mixed (density matrix, see the module
    docstring). Each operation replaces the state by a new tensor (autograd-friendly) and returns self.

    Consecutive one-qubit operations on the same qubit (gates and channels) are fused exactly before they
    touch the state: their 2x2 matrices (pure) or 4x4 superoperators (mixed) are multiplied and applied once,
    when a two-qubit gate, a full unitary or a read-out needs the qubit."""

    def __init__(self, n: int, batch: int, *, mixed: bool, dtype: torch.dtype = torch.complex128,
                 device: torch.device | str | None = None) -> None:
        self.n, self.mixed, self.dtype = n, mixed, dtype
        self.device = torch.device("cpu") if device is None else torch.device(device)
        size = 4 ** n if mixed else 2 ** n
        state = torch.zeros(batch, size, dtype=dtype, device=self.device)
        state[:, 0] = 1.0
        self._state = state
        self._pending: dict[int, torch.Tensor] = {}

    @property
    def state(self) -> torch.Tensor:
        """The state with every pending operation applied: (batch, 2^n) or (batch, 4^n)."""
        self._flush(range(self.n))
        return self._state

    def _push(self, op: torch.Tensor, qubit: int) -> None:
        before = self._pending.get(qubit)
        self._pending[qubit] = op if before is None else op @ before

    def _flush(self, qubits) -> None:
        for q in qubits:
            op = self._pending.pop(q, None)
            if op is None:
                continue
            if self.mixed:
                self._apply_superoperator(op, q)
            else:
                self._state = apply_1q(self._state, op, q, self.n)

    def _apply_superoperator(self, op: torch.Tensor, q: int) -> None:
        n, batch = self.n, self._state.shape[0]
        s = self._state.reshape(batch, 2 ** q, 2, 2 ** (n - q - 1), 2 ** q, 2, 2 ** (n - q - 1))
        if op.ndim == 2:
            out = torch.einsum("ikjl,bajcdle->baicdke", op.reshape(2, 2, 2, 2), s)
        else:
            out = torch.einsum("bikjl,bajcdle->baicdke", op.reshape(-1, 2, 2, 2, 2), s)
        self._state = out.reshape(batch, 4 ** n)

    # ---- unitaries ---------------------------------------------------------------------------
    def gate(self, matrix: torch.Tensor, qubit: int, channel: torch.Tensor | None = None) -> "Register":
        """The one-qubit unitary ``matrix`` ((2, 2) or per-sample (batch, 2, 2)) on ``qubit``, followed by the
        noise ``channel`` (a (4, 4) :func:`superoperator`, mixed registers only; None = no noise)."""
        if not self.mixed:
            if channel is not None:
                self._require_mixed("gate noise")
            self._push(matrix, qubit)
            return self
        op = superoperator([matrix])  # U (x) conj(U)
        if channel is not None:
            op = channel @ op
        self._push(op, qubit)
        return self

    def channel(self, op: torch.Tensor, qubit: int) -> "Register":
        """A one-qubit channel given as a (4, 4) (or (batch, 4, 4)) superoperator on ``qubit`` (mixed only)."""
        self._require_mixed("a noise channel")
        self._push(op, qubit)
        return self

    def cnot(self, control: int, target: int) -> "Register":
        self._flush((control, target))
        if self.mixed:
            n2 = 2 * self.n
            perm = cnot_permutation(control, target, n2, self.device)
            perm = perm[cnot_permutation(self.n + control, self.n + target, n2, self.device)]
        else:
            perm = cnot_permutation(control, target, self.n, self.device)
        self._state = self._state[:, perm]
        return self

    def cz(self, a: int, b: int) -> "Register":
        self._flush((a, b))
        signs = cz_signs(a, b, self.n, self.device)
        if self.mixed:
            signs = (signs.unsqueeze(1) * signs.unsqueeze(0)).reshape(-1)
        self._state = self._state * signs.to(self.dtype)
        return self

    def unitary(self, matrix: torch.Tensor) -> "Register":
        """A fixed ``(2^n, 2^n)`` unitary on the whole register."""
        d = 2 ** self.n
        state = self.state
        if self.mixed:
            rho = state.reshape(-1, d, d)
            self._state = (matrix @ rho @ matrix.conj().T).reshape(-1, d * d)
        else:
            self._state = state @ matrix.T
        return self

    def depolarise(self, p: float, qubit: int) -> "Register":
        """The depolarising channel D_p on ``qubit``."""
        return self.channel(depolarising_channel(p, self.dtype, self.device), qubit) if p else self

    def damp(self, gamma: float, qubit: int) -> "Register":
        """Amplitude damping with ``gamma`` on ``qubit``."""
        return self.channel(damping_channel(gamma, self.dtype, self.device), qubit) if gamma else self

    def _require_mixed(self, what: str) -> None:
        if not self.mixed:
            raise RuntimeError(f"{what} needs a density-matrix register (Register(..., mixed=True)).")

    # ---- read-out -----------------------------------------------------------------------------
    def probabilities(self) -> torch.Tensor:
        """Born probabilities of the 2^n basis states, real (batch, 2^n)."""
        d = 2 ** self.n
        state = self.state
        if self.mixed:
            return state.reshape(-1, d, d).diagonal(dim1=1, dim2=2).real
        return state.real.square() + state.imag.square()

    def norm(self) -> torch.Tensor:
        """sum |psi|^2 (pure) or Tr rho (mixed), per sample."""
        return self.probabilities().sum(1)


def marginal(probabilities: torch.Tensor, qubits: tuple[int, ...], n: int) -> torch.Tensor:
    """Probabilities of the 2^r outcomes of the measured ``qubits`` (in that order), (batch, 2^r)."""
    p = probabilities.reshape((-1,) + (2,) * n)
    keep = [q + 1 for q in qubits]
    others = [d for d in range(1, n + 1) if d not in keep]
    if others:
        p = p.sum(dim=others)
    # the summed tensor keeps the measured axes in increasing qubit order: reorder to ``qubits``
    order = sorted(qubits)
    p = p.permute([0] + [order.index(q) + 1 for q in qubits])
    return p.reshape(p.shape[0], 2 ** len(qubits))


def assignment_error(probabilities: torch.Tensor, p01: float, p10: float, r: int) -> torch.Tensor:
    """Apply an independent read-out assignment error to every one of the ``r`` measured qubits:
    ``p01`` = P(read 1 | state 0), ``p10`` = P(read 0 | state 1)."""
    if not (p01 or p10):
        return probabilities
    confusion = torch.tensor([[1 - p01, p10], [p01, 1 - p10]], dtype=probabilities.dtype,
                             device=probabilities.device)
    p = probabilities
    batch = p.shape[0]
    for q in range(r):
        s = p.reshape(batch, 2 ** q, 2, 2 ** (r - q - 1))
        p = torch.einsum("ij,bajc->baic", confusion, s).reshape(batch, 2 ** r)
    return p


def sample_counts(probabilities: torch.Tensor, shots: int, generator: torch.Generator) -> torch.Tensor:
    """Multinomial counts of ``shots`` measurements per row (batch, K), drawn as a chain of binomials
    (exact multinomial law, any number of shots, vectorised over the batch), through
    :func:`pnnlab.devices.binomial` (drawn on the generator's device: the same counts on every device)."""
    p = probabilities.double().clamp_min(0.0)
    p = p / p.sum(1, keepdim=True)
    remaining = torch.full((p.shape[0],), float(shots), dtype=torch.float64, device=p.device)
    left = torch.ones(p.shape[0], dtype=torch.float64, device=p.device)
    counts = torch.zeros_like(p)
    for k in range(p.shape[1] - 1):
        prob = (p[:, k] / left.clamp_min(1e-300)).clamp(0.0, 1.0)
        c = devices.binomial(remaining, prob, generator=generator)
        counts[:, k] = c
        remaining = remaining - c
        left = (left - p[:, k]).clamp_min(0.0)
    counts[:, -1] = remaining
    return counts


def pauli_z_expectations(probabilities: torch.Tensor, r: int) -> torch.Tensor:
    """<Z_i> for each of the r qubits from outcome probabilities (or frequencies) (batch, 2^r)."""
    return probabilities @ z_signs(r, probabilities.device).to(probabilities.dtype)
