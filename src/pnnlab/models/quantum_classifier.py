"""A parameterised quantum circuit as a trained physical classifier, buildable from experiment files.

The circuit of benchmarks/bench_quantum_circuits.py part (b): features angle-encoded by ``R_axis(x_j)`` on
qubit ``j mod n_qubits`` (re-uploaded before every trainable layer by default: Pérez-Salinas,
Cervera-Lierta, Gil-Fuster & Latorre, Quantum 4, 226 (2020), doi:10.22331/q-2020-02-06-226), layers of
trainable ``R_Y R_Z`` on every qubit and an entangler, ``<Z>`` of the first ``n_classes`` qubits estimated
from ``shots`` measurements, then a digital per-class scale and offset (:class:`~pnnlab.layers.ChannelAffine`)
as the logits. Train it with ``parameter_shift`` (model-free), ``spsa``, ``pat`` or ``in_silico`` (the
noiseless nominal twin is attached), ``ideal`` for the upper bound.

Experiment files name the options by preset (``errors = "nisq"`` or ``"ideal"``, :data:`ERROR_PRESETS`;
``entangler = "cz_ring"``, :data:`ENTANGLER_PRESETS`; ``shots = 500`` or ``"exact"``), e.g.
examples/iris_quantum_ps.toml.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .. import devices
from .._validation import check_finite_float, check_int, from_preset
from ..layers import ChannelAffine, PhysicalLayer
from ..plants.quantum import AngleEncoding, Ansatz, CircuitErrors, CNOTRing, CZRing, IsingEvolution, QuantumCircuitPlant
from ..plants.quantum.circuit import ERROR_PRESETS

__all__ = ["ENTANGLER_PRESETS", "ERROR_PRESETS", "build_quantum_classifier", "entangler_from"]

#: names an experiment file can give for ``entangler`` (explicit map to the entangler objects)
ENTANGLER_PRESETS = {"cz_ring": CZRing, "cnot_ring": CNOTRing, "ising": IsingEvolution, "none": lambda: None}


def entangler_from(value):
    """A CZRing / CNOTRing / IsingEvolution object or None as given, or a name of :data:`ENTANGLER_PRESETS`."""
    if value is None:
        return None
    return from_preset("entangler", value, ENTANGLER_PRESETS, (CZRing, CNOTRing, IsingEvolution), "'cz_ring'")


def build_quantum_classifier(*, in_features: int, n_classes: int, seed: int = 0, n_qubits: int = 4,
                             layers: int = 2, shots: int | str | None = 500,
                             errors: CircuitErrors | str | None = "nisq", entangler="cz_ring",
                             encoding_axis: str = "Y", reupload: bool = True,
                             logit_scale: float = 3.0) -> nn.Sequential:
    """``PhysicalLayer(QuantumCircuitPlant, twin = nominal)`` -> ``ChannelAffine(n_classes)``.

    Trainable: ``layers * n_qubits * 2`` rotation angles (initialised uniform in [0, 2 pi) from ``seed``) and
    ``2 * n_classes`` digital scale/offset parameters (scale initialised to ``logit_scale``). The read-out
    qubits are 0..n_classes-1, so ``n_classes <= n_qubits``. ``errors``: the processor's hidden truth
    (``"nisq"``: :meth:`CircuitErrors.nisq`, assumed round numbers; ``"ideal"``; or a :class:`CircuitErrors`;
    ``None`` is the plant's default, ``"nisq"``)."""
    in_features = check_int("in_features", in_features)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    n_qubits = check_int("n_qubits", n_qubits)
    if n_classes > n_qubits:
        raise ValueError(f"the classifier reads <Z> of one qubit per class, so n_classes={n_classes} needs "
                         f"n_qubits >= {n_classes}, got n_qubits={n_qubits}; pass n_qubits={n_classes} (or more).")
    if not isinstance(reupload, bool):
        raise TypeError(f"reupload must be True or False, got {reupload!r}.")
    ansatz = Ansatz(n_qubits=n_qubits, layers=check_int("layers", layers), encoding=AngleEncoding(axis=encoding_axis),
                    entangler=entangler_from(entangler), rotations=("Y", "Z"), reupload=reupload,
                    readout=tuple(range(n_classes)))
    plant = QuantumCircuitPlant(in_features=in_features, ansatz=ansatz, shots=shots,
                                errors=errors, seed=seed)
    g = torch.Generator().manual_seed(2000 + seed)
    theta = {"theta": 2 * math.pi * devices.rand(ansatz.theta_shape, generator=g, device="cpu")}
    return nn.Sequential(PhysicalLayer(plant, twin=plant.nominal_twin(), initial_controls=theta),
                         ChannelAffine(n_classes, scale=check_finite_float("logit_scale", logit_scale)))
