"""SVD layer: an arbitrary matrix on chip as two MZI meshes and a column of attenuators.

Shen et al., "Deep learning with coherent nanophotonic circuits", Nat. Photon. 11, 441 (2017),
doi:10.1038/nphoton.2017.93: write M = U S V^H (singular value decomposition); V^H and U are
realised by unitary meshes, S by one attenuating MZI per mode. A passive chip cannot amplify, so it
realises M / g with the gain g = max singular value (the electronics after the detectors multiply
by g).

Plant physics: e (encoded inputs on ports 0..in_features-1) -> mesh V (controls ``v_theta``,
``v_phi``, ``v_psi``) -> attenuators (``att``: the internal phase t of an MZI whose top output is kept,
field transmission T11 = i exp(i t/2) sin(t/2) for ideal couplers, so |T11| = |sin(t/2)|) -> mesh U
(``u_theta``, ``u_phi``, ``u_psi``) -> detection, every element with its own hidden errors
(the same :class:`MeshFabrication` / :class:`Heaters` recipes as :class:`MZIMesh`; the attenuators
share the couplers' errors and the heaters' DAC).

:func:`svd_settings` computes the controls realising a given matrix on the ideal chip: the phases of
T11 (which vary with t) are compensated in V's output screen.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ... import devices
from ...metering import CostModel
from ...twins.base import Twin
from ..base import ControlSpec, Plant
from ..capabilities import Simulated
from .decompose import decompose
from .mesh_engine import MeshEngine, MeshLayout, Rectangular, mzi_transfer
from .mesh_physics import (AmplitudeEncoding, CoherentDetection, Heaters, MeshFabrication, MeshPhysics, PhaseEncoding,
                           Photodetection)
from .mzi_mesh import MESH_COST, check_chip_arguments

TWO_PI = 2.0 * math.pi
_MESH_KEYS = ("theta", "phi", "psi")


class _Attenuators:
    """One attenuating MZI per mode: field transmission T11(t) with the chip's coupler errors and loss."""

    def __init__(self, physics: MeshPhysics, n: int, generator: torch.Generator) -> None:
        f = physics.fabrication
        self.physics = physics
        self.coupler_errors = f.coupler_error_std_rad * torch.randn(n, 2, generator=generator, dtype=torch.float64)
        self.offsets = f.phase_offset_std_rad * torch.randn(n, generator=generator, dtype=torch.float64)
        loss_db = (f.insertion_loss_db + f.insertion_loss_std_db * torch.randn(n, generator=generator,
                                                                                dtype=torch.float64)).clamp_min(0.0)
        self.amplitude = 10.0 ** (-loss_db / 20.0)
        self.ideal = f == MeshFabrication.ideal()

    #: moved with the plant that holds it (pnnlab.devices.move calls to())
    _device_state = True

    def to(self, device) -> "_Attenuators":
        """Move the attenuators' draws (and the physics whose heaters they share) to ``device``."""
        self.physics.to(device)
        self.coupler_errors, self.offsets, self.amplitude = (t.to(device) for t in
                                                             (self.coupler_errors, self.offsets, self.amplitude))
        return self

    def transmission(self, att: torch.Tensor, dtype) -> torch.Tensor:
        real = torch.float64 if dtype == torch.complex128 else torch.float32
        h = self.physics.heater_phases(att.to(real)) + self.offsets.to(real)
        T = mzi_transfer(h, torch.zeros_like(h), coupler_errors=None if self.ideal else self.coupler_errors,
                         amplitude=None if self.ideal else self.amplitude, dtype=dtype)
        return T[:, 0, 0]


class SVDMeshTwin(Twin):
    """Differentiable SVD chip: encoding -> V mesh -> attenuators -> U mesh -> detector response."""

    def __init__(self, *, v: MeshPhysics, u: MeshPhysics, att: _Attenuators, encoding, detection,
                 in_features: int, ports: int) -> None:
        super().__init__(in_features=in_features, out_features=detection.features(ports))
        self.v, self.u, self.att = v, u, att
        self.encoding, self.detection, self.ports = encoding, detection, ports

    @staticmethod
    def _part(controls, prefix):
        return {k: controls[f"{prefix}_{k}"] for k in _MESH_KEYS}

    def matrix(self, controls) -> torch.Tensor:
        """The realised N x N matrix (differentiable)."""
        engine = self.v.engine
        Tv, pv = self.v.transfer(self._part(controls, "v"))
        Tu, pu = self.u.transfer(self._part(controls, "u"))
        V = engine.matrix(Tv, pv)
        U = engine.matrix(Tu, pu)
        return U @ (self.att.transmission(controls["att"], engine.dtype).unsqueeze(1) * V)

    def fields(self, x, controls):
        engine = self.v.engine
        n = engine.n_ports
        e = self.encoding.field(x, engine.dtype)
        if e.shape[1] < n:
            e = torch.cat([e, e.new_zeros(e.shape[0], n - e.shape[1])], dim=1)
        Tv, pv = self.v.transfer(self._part(controls, "v"))
        Tu, pu = self.u.transfer(self._part(controls, "u"))
        y = engine.apply(e, Tv, pv) * self.att.transmission(controls["att"], engine.dtype)
        return engine.apply(y, Tu, pu)

    def forward(self, x, controls):
        return self.detection.response(self.fields(x, controls)[:, :self.ports]).to(x.dtype)


class SVDMesh(Plant, Simulated):
    """Two MZI meshes and a column of attenuators realising an arbitrary N x N matrix up to a gain
    (Shen 2017). Parameters as for :class:`MZIMesh`; the two meshes and the attenuators draw
    independent fabrication errors from the chip's seed."""

    summary = "SVD layer: MZI mesh V, attenuator column, MZI mesh U (Shen 2017): any matrix up to a gain"

    def __init__(self, *, n_ports: int = 4, in_features: int | None = None,
                 layout: type[MeshLayout] = Rectangular,
                 encoding: AmplitudeEncoding | PhaseEncoding = AmplitudeEncoding(),
                 detection: Photodetection | CoherentDetection = Photodetection(),
                 fabrication: MeshFabrication = MeshFabrication.typical(),
                 heaters: Heaters = Heaters(crosstalk=0.02, dac_bits=12),
                 dtype: torch.dtype = torch.complex64, cost: CostModel = MESH_COST, seed: int = 0) -> None:
        n_ports, in_features, ports = check_chip_arguments(
            n_ports=n_ports, in_features=in_features, encoding=encoding, detection=detection,
            fabrication=fabrication, heaters=heaters, cost=cost, seed=seed)
        if not (isinstance(layout, type) and issubclass(layout, MeshLayout)):
            raise TypeError(f"layout must be the class Rectangular or Triangular, got {layout!r}.")
        super().__init__(in_features=in_features, out_features=detection.features(ports), cost=cost, seed=seed)
        self.n_ports, self.ports, self.layout = n_ports, ports, layout(n_ports)
        self.encoding, self.detection = encoding, detection
        self.engine = MeshEngine(self.layout, dtype=dtype)
        chip = torch.Generator().manual_seed(104_729 * (seed + 1) + n_ports)
        self._v = MeshPhysics(self.engine, fabrication=fabrication, heaters=heaters, generator=chip)
        self._u = MeshPhysics(self.engine, fabrication=fabrication, heaters=heaters, generator=chip)
        self._att = _Attenuators(self._v, n_ports, chip)
        ideal = MeshPhysics(self.engine, fabrication=MeshFabrication.ideal(), heaters=Heaters.ideal())
        self._design = (ideal, ideal, _Attenuators(ideal, n_ports, torch.Generator().manual_seed(0)))

    def control_specs(self):
        n_m, n = self.layout.n_mzis, self.n_ports
        specs = {}
        for prefix, what in (("v", "input mesh V"), ("u", "output mesh U")):
            specs[f"{prefix}_theta"] = ControlSpec((n_m,), 0.0, TWO_PI, unit="rad", periodic=True,
                                                   description=f"{what}: internal phases")
            specs[f"{prefix}_phi"] = ControlSpec((n_m,), 0.0, TWO_PI, unit="rad", periodic=True,
                                                   description=f"{what}: external phases")
            specs[f"{prefix}_psi"] = ControlSpec((n,), 0.0, TWO_PI, unit="rad", periodic=True,
                                                   description=f"{what}: output screen")
        specs["att"] = ControlSpec((n,), 0.0, TWO_PI, unit="rad", periodic=True,
                                   description="attenuator MZI internal phases (|transmission| = |sin(t/2)|)")
        return specs

    def initial_controls(self, generator=None):
        gen = generator if generator is not None else self._generator
        return {name: TWO_PI * (0.1 + 0.8 * devices.rand(spec.shape, generator=gen, device=self.device))
                for name, spec in self.control_specs().items()}

    def example_inputs(self, batch, generator=None):
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        x = torch.rand(batch, self.in_features, generator=gen)
        return TWO_PI * x if isinstance(self.encoding, PhaseEncoding) else x / math.sqrt(self.in_features)

    def _twin(self, parts, detection) -> SVDMeshTwin:
        v, u, att = parts
        return SVDMeshTwin(v=v, u=u, att=att, encoding=self.encoding, detection=detection,
                           in_features=self.in_features, ports=self.ports)

    def heater_power_W(self, controls) -> float:
        c = self.validate_controls(controls)
        p = self._v.heater_power_W(SVDMeshTwin._part(c, "v")) + self._u.heater_power_W(SVDMeshTwin._part(c, "u"))
        return p + self._v.heaters.p_pi_W * float(self._v.heater_phases(c["att"]).sum()) / math.pi

    def _measure(self, x, controls, generator):
        y = self._twin((self._v, self._u, self._att), self.detection).fields(x, controls)[:, :self.ports]
        self.meter.charge(joules=self.heater_power_W(controls) * self.cost.seconds(x.shape[0]))
        return self.detection.measure(y, generator).to(x.dtype)

    def nominal_twin(self) -> SVDMeshTwin:
        """The ideal chip (design values, noiseless detector without ADC)."""
        return self._twin(self._design, self.detection.ideal())

    def true_twin(self) -> SVDMeshTwin:
        """The hidden physics with detector noise off (diagnostics and the ideal bound only)."""
        return self._twin((self._v, self._u, self._att), self.detection)

    def describe(self):
        return f"SVDMesh(n_ports={self.n_ports}, in_features={self.in_features}, out_features={self.out_features})"


def svd_settings(M, *, layout: type[MeshLayout] = Rectangular) -> tuple[dict[str, torch.Tensor], float]:
    """Controls of an ideal :class:`SVDMesh` realising ``M / gain`` (returned with ``gain`` = the
    largest singular value of M). ``M``: a real or complex N x N matrix."""
    if isinstance(M, torch.Tensor):
        M = M.detach().cpu().numpy()
    M = np.asarray(M, dtype=np.complex128)
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape[0] < 2:
        raise ValueError(f"M must be a square matrix of size >= 2 (pad a rectangular one with zeros), got {M.shape}.")
    n = M.shape[0]
    Uo, s, Vh = np.linalg.svd(M)
    gain = float(s[0])
    if gain == 0.0:
        raise ValueError("M is the zero matrix; there is nothing to realise (every attenuator closed).")
    t = 2.0 * np.arcsin(np.clip(s / gain, 0.0, 1.0))  # |sin(t/2)| = s / gain, t in [0, pi]
    # T11(t) = i exp(i t/2) sin(t/2): compensate its phase i exp(i t/2) in V's output screen
    Vh_comp = np.diag(np.exp(-1j * (math.pi / 2 + t / 2))) @ Vh
    lay = layout(n)
    pv = decompose(Vh_comp, layout=lay)
    pu = decompose(Uo, layout=lay)
    controls = {"v_theta": pv.theta, "v_phi": pv.phi, "v_psi": pv.psi, "u_theta": pu.theta, "u_phi": pu.phi,
                "u_psi": pu.psi, "att": torch.from_numpy(np.mod(t, TWO_PI))}
    return controls, gain
