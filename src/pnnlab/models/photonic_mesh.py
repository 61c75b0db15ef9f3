"""A multi-layer coherent photonic network: MZI meshes with electro-optic activations between them.

The architecture of the in-situ trained photonic networks of Pai et al., Science 380, 398 (2023),
doi:10.1126/science.ade8450 (3 layers of MZI meshes, nonlinearity between them) and Bandyopadhyay et
al., Nat. Photon. (2024), doi:10.1038/s41566-024-01567-z (coherent matrix units with on-chip
nonlinear units, 6 neurons x 3 layers)::

    x --(fixed encoding: amplitude scale/sqrt(in_features), signed (IQ modulator), ports beyond the
         features dark)-->
      MZI mesh 1 (coherent detection of all N output fields)
      --> electro-optic activation (Williamson 2020) of the N fields
      --> |field| re-encoded as the amplitudes driving mesh 2 (an O-E-O link)
      --> ... --> MZI mesh L (read-out recipe ``readout``: :class:`PowerReadout`, photodetection of the
          first n_classes ports and a per-class scale and offset (ChannelAffine), the default; or
          :class:`FieldReadout`, coherent detection of those ports and :class:`CoherentReadout`)
      -> logits

Trainable: every mesh's phases (theta, phi, psi), the activations' bias phases where the activation is
on the chip, and the per-class read-out. Each mesh and on-chip activation is its own plant with its
own hidden truth (``fabrication``, ``heaters``, ``detector``; ``activation`` mismatch) and its nominal
twin as its twin, so in-silico, PAT, the zeroth-order family and the in-situ ``adjoint`` method all
train the same model.

Recipes are objects: ``activation`` is an :class:`EOMismatch` (the activation is an on-chip plant with
that hidden truth; ``EOMismatch.ideal()`` for a perfect one) or None (the controller applies the
design activation digitally to the measured fields, as Pai 2023 did). ``fabrication`` is a
:class:`MeshFabrication` (or the preset names ``"typical"``/``"ideal"`` for experiment files).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .._validation import check_int, check_positive
from ..layers import ChannelAffine, PhysicalLayer
from ..plants.photonics.activation import EODesign, EOMismatch, ElectroOpticActivationPlant, ElectroOpticNonlinearity
from ..plants.photonics.mzi_mesh import (AmplitudeEncoding, CoherentDetection, Detector, Heaters, MeshFabrication,
                                         MZIMesh, Photodetection)

__all__ = ["CoherentReadout", "FieldModulus", "FieldReadout", "PowerReadout", "ReferenceInput", "ReferenceLight",
           "build_photonic_mesh"]

FABRICATION_PRESETS = {"typical": MeshFabrication.typical(), "ideal": MeshFabrication.ideal()}


class FieldModulus(nn.Module):
    """``[Re z, Im z]`` features -> ``|z|`` (the amplitude re-encoded on the next mesh's modulators)."""

    def __init__(self, n_channels: int) -> None:
        super().__init__()
        self.n_channels = check_int("n_channels", n_channels)

    def forward(self, v):
        n = self.n_channels
        return torch.sqrt(v[:, :n].square() + v[:, n:].square() + 1e-12)


class CoherentReadout(nn.Module):
    """Per-class read-out of coherently detected fields ``[Re y, Im y]`` (``n_classes`` ports):
    ``logit_k = a_k Re y_k + b_k |y_k|^2 + c_k``. The in-phase quadrature gives a term linear in the
    input (a linear classifier on the mesh's rows; the output screen psi rotates each y_k), the power
    a quadratic one; the digital part is 3 numbers per class, the same kind of glue as
    :class:`~pnnlab.layers.ChannelAffine`."""

    def __init__(self, n_classes: int, *, linear_scale: float = 50.0, power_scale: float = 250.0) -> None:
        super().__init__()
        self.n_classes = check_int("n_classes", n_classes)
        self.linear = nn.Parameter(torch.full((self.n_classes,), float(linear_scale)))
        self.power = nn.Parameter(torch.full((self.n_classes,), float(power_scale)))
        self.offset = nn.Parameter(torch.zeros(self.n_classes))

    def forward(self, v):
        n = self.n_classes
        re, im = v[:, :n], v[:, n:2 * n]
        return self.linear * re + self.power * (re.square() + im.square()) + self.offset


@dataclass(frozen=True)
class PowerReadout:
    """Last mesh read by photodetection of the first ``n_classes`` ports, then a per-class scale and
    offset (:class:`~pnnlab.layers.ChannelAffine`, initial scale ``scale``: the logits' temperature,
    trained from there). The default read-out of :func:`build_photonic_mesh`."""

    scale: float = 20.0

    def __post_init__(self) -> None:
        check_positive("PowerReadout.scale", self.scale)


@dataclass(frozen=True)
class FieldReadout:
    """Last mesh read by coherent detection (both quadratures) of the first ``n_classes`` ports, then
    :class:`CoherentReadout` ``a_k Re y_k + b_k |y_k|^2 + c_k`` with initial ``a_k = linear_scale``,
    ``b_k = power_scale``, ``c_k = 0`` (trained from there). The in-phase term makes the last mesh's
    rows a linear classifier of its input fields (the output screen psi sets each row's phase)."""

    linear_scale: float = 50.0
    power_scale: float = 250.0

    def __post_init__(self) -> None:
        check_positive("FieldReadout.linear_scale", self.linear_scale)
        check_positive("FieldReadout.power_scale", self.power_scale, allow_zero=True)


@dataclass(frozen=True)
class ReferenceLight:
    """A constant reference field on some input ports of the first mesh: a tap of the laser, those
    ports' modulators held at one fixed setting. The mesh then computes an affine map of the features,
    ``y = U x + U[:, ports] r`` (a bias, as in logistic regression), with no extra port. The features on
    ``ports`` are discarded, so pick ports whose feature is constant on the training split (the
    always-blank pixels of the digits) or ports beyond ``in_features``. ``amplitude`` is in the
    features' units (the first mesh's encoding scale applies to it like to every feature); it is
    fixed, not trained."""

    ports: tuple[int, ...]
    amplitude: float = 1.0

    def __post_init__(self) -> None:
        ports = tuple(self.ports) if isinstance(self.ports, (list, tuple)) else None
        if not ports or any(isinstance(p, bool) or not isinstance(p, int) or p < 0 for p in ports):
            raise ValueError(f"ReferenceLight.ports must be a non-empty tuple of port indices >= 0, got "
                             f"{self.ports!r}; pass e.g. ports=(0, 32, 39).")
        if len(set(ports)) != len(ports):
            raise ValueError(f"ReferenceLight.ports={ports!r} repeats a port; list each port once.")
        object.__setattr__(self, "ports", ports)
        check_positive("ReferenceLight.amplitude", self.amplitude)


class ReferenceInput(nn.Module):
    """Features (batch, in_features) -> the first mesh's port amplitudes (batch, width): the features on
    ports 0..in_features-1, then the constant ``reference.amplitude`` on ``reference.ports`` (replacing
    whatever feature was there). No trainable parameter."""

    def __init__(self, in_features: int, width: int, reference: ReferenceLight) -> None:
        super().__init__()
        self.in_features = check_int("in_features", in_features)
        self.width = check_int("width", width)
        if max(reference.ports) >= self.width or self.width < self.in_features:
            raise ValueError(f"reference ports {reference.ports} and in_features={in_features} do not fit in "
                             f"width={width}; pass width >= max(in_features, max(ports) + 1).")
        self.amplitude = reference.amplitude
        self.register_buffer("ports", torch.tensor(reference.ports, dtype=torch.long), persistent=False)

    def forward(self, x):
        out = x.new_zeros(x.shape[0], self.width)
        out[:, :self.in_features] = x
        out[:, self.ports] = self.amplitude
        return out


def build_photonic_mesh(*, in_features: int, n_classes: int, n_ports: int | None = None, layers: int = 3,
                        fabrication: MeshFabrication | str = "typical", heaters: Heaters = Heaters(),
                        detector: Detector = Detector(), activation: EOMismatch | None = EOMismatch(),
                        activation_gain_rad: float | None = None, relay_gain: float = 1.0,
                        readout_scale: float | None = None, readout: PowerReadout | FieldReadout | None = None,
                        input_scale: float | None = None, reference: ReferenceLight | None = None,
                        dtype: torch.dtype = torch.complex64, seed: int = 0) -> nn.Sequential:
    """Build the network of the module docstring.

    ``n_ports`` defaults to max(in_features, n_classes). ``activation_gain_rad`` is the electro-optic
    phase gain per unit power (default pi, Williamson 2020's range); the activations start at bias 0
    (saturating regime). These defaults were chosen on seed 0's validation split of the vowels with the
    ideal chip (3 layers: 98 % validation accuracy with gain pi and bias 0, 80 % with gain pi N / 2,
    50 % with bias pi / 2), never on test.
    ``relay_gain`` multiplies the amplitudes re-encoded on meshes 2..L (the O-E-O link's modulator
    drive; 1 = the measured |field| as it is). ``readout_scale`` is the per-class read-out's initial
    scale (the logits' temperature, trained from there; 20 by default, the vowels benchmark uses 50,
    chosen on seed 0's validation split).
    ``reference`` (a :class:`ReferenceLight`, or None: the default, every port a feature or dark) puts a
    constant reference field on some of the first mesh's input ports (a :class:`ReferenceInput` module
    in front of it): an affine first mesh.
    ``seed`` seeds every chip's fabrication draw (layer l uses seed + l) and the read-out.
    """
    in_features = check_int("in_features", in_features)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    layers = check_int("layers", layers)
    n = max(in_features, n_classes) if n_ports is None else check_int("n_ports", n_ports, minimum=2)
    if n < max(in_features, n_classes):
        raise ValueError(f"n_ports={n} must be at least in_features={in_features} and n_classes={n_classes}; "
                         f"pass n_ports >= {max(in_features, n_classes)} or leave it None.")
    if isinstance(fabrication, str):
        if fabrication not in FABRICATION_PRESETS:
            raise ValueError(f"fabrication={fabrication!r} is not a preset; use one of {sorted(FABRICATION_PRESETS)} "
                             f"or pass a MeshFabrication(...).")
        fabrication = FABRICATION_PRESETS[fabrication]
    if activation is not None and not isinstance(activation, EOMismatch):
        raise TypeError(f"activation must be an EOMismatch(...) (on-chip activation) or None (digital), got "
                        f"{type(activation).__name__}.")
    gain = math.pi if activation_gain_rad is None else check_positive("activation_gain_rad", activation_gain_rad)
    relay_gain = check_positive("relay_gain", relay_gain)
    if readout is not None and readout_scale is not None:
        raise ValueError(f"pass readout={readout!r} or readout_scale={readout_scale!r}, not both: readout_scale is "
                         f"shorthand for readout=PowerReadout(scale=readout_scale).")
    if readout is None:
        readout = PowerReadout(scale=20.0 if readout_scale is None else check_positive("readout_scale", readout_scale))
    if not isinstance(readout, (PowerReadout, FieldReadout)):
        raise TypeError(f"readout must be PowerReadout(...) (photodetection) or FieldReadout(...) (coherent "
                        f"detection), got {type(readout).__name__}.")
    first_scale = 1.0 / math.sqrt(in_features) if input_scale is None else check_positive("input_scale", input_scale)
    if reference is not None and not isinstance(reference, ReferenceLight):
        raise TypeError(f"reference must be a ReferenceLight(ports=..., amplitude=...) or None, got "
                        f"{type(reference).__name__}.")
    if reference is not None and max(reference.ports) >= n:
        raise ValueError(f"reference ports {reference.ports} do not exist on an n_ports={n} mesh; pass ports < {n}.")
    first_in = in_features if reference is None else max(in_features, max(reference.ports) + 1)
    design = EODesign(gain_rad=gain)
    torch.manual_seed(seed)  # the read-out's initialisation
    modules: list[nn.Module] = [] if reference is None else [ReferenceInput(in_features, first_in, reference)]
    for layer in range(layers):
        last = layer == layers - 1
        if not last:
            detection = CoherentDetection(detector=detector)
        elif isinstance(readout, FieldReadout):
            detection = CoherentDetection(detector=detector, ports=n_classes)
        else:
            detection = Photodetection(detector=detector, ports=n_classes)
        mesh = MZIMesh(n_ports=n, in_features=first_in if layer == 0 else n,
                       encoding=AmplitudeEncoding(scale=first_scale if layer == 0 else relay_gain),
                       detection=detection, fabrication=fabrication, heaters=heaters, dtype=dtype,
                       seed=seed + layer)
        modules.append(PhysicalLayer(mesh, twin=mesh.nominal_twin(),
                                     initial_controls=mesh.initial_controls(torch.Generator().manual_seed(seed + layer))))
        if last:
            break
        if activation is None:
            modules.append(ElectroOpticNonlinearity(n, design=design))
        else:
            plant = ElectroOpticActivationPlant(n_channels=n, design=design, mismatch=activation, seed=seed + 100 + layer)
            modules.append(PhysicalLayer(plant, twin=plant.nominal_twin()))
        modules.append(FieldModulus(n))
    if isinstance(readout, FieldReadout):
        modules.append(CoherentReadout(n_classes, linear_scale=readout.linear_scale, power_scale=readout.power_scale))
    else:
        modules.append(ChannelAffine(n_classes, scale=readout.scale))  # output powers are <= 1: logits of order 10
    return nn.Sequential(*modules)
