"""MZI mesh plant: coherent light through a programmable mesh of Mach-Zehnder interferometers.

An N-port mesh of 2x2 MZIs in the rectangular (Clements et al., Optica 3, 1460 (2016),
doi:10.1364/OPTICA.3.001460) or triangular (Reck et al., PRL 73, 58 (1994),
doi:10.1103/PhysRevLett.73.58) layout, as used for optical neural networks by Shen et al., Nat. Photon.
11, 441 (2017), doi:10.1038/nphoton.2017.93 and Pai et al., Science 380, 398 (2023),
doi:10.1126/science.ade8450. Equations, conventions and the meaning and typical size of every
non-ideality: docs/substrates/mzi_mesh.md; the engine: :mod:`.mesh_engine`; the hidden physics:
:mod:`.mesh_physics`.

Physics of one query (vectorised over the batch):

1. encoding: inputs x (batch, in_features) become coherent fields on input ports 0..in_features-1
   (:class:`AmplitudeEncoding` ``scale * x`` or :class:`PhaseEncoding` ``a exp(i x)``; other ports dark);
2. the chip: y = U(controls) e with U from the MZI phases theta, phi (one each per MZI) and the output
   phase screen psi (one per port), with the chip's hidden errors (:class:`MeshPhysics`);
3. detection of the first ``ports`` outputs: :class:`Photodetection` (|y|^2, shot/thermal noise, ADC)
   or :class:`CoherentDetection` (Re y, Im y as features, homodyne noise, ADC).

Controls: ``theta`` (n_mzis,), ``phi`` (n_mzis,), ``psi`` (N,), radians, periodic ControlSpecs on
[0, 2 pi): the chip accepts any finite phase and wraps it (2 pi is the phase 0, 2 pi + 0.1 programs
0.1), and :class:`pnnlab.PhysicalLayer` maps its parameters with the same wrap (its ``Periodic`` map,
gradient 1), so a trajectory passes through 2 pi instead of stalling at the edges of a squashed range.

The cost model charges the heaters' electrical power (P = P_pi h / pi per heater) for the query's
duration on top of the per-sample laser energy (see :class:`MZIMesh`).

Simplifications: one wavelength and polarisation, no back-reflections, no phase-dependent loss, static
(not drifting) errors, crosstalk between nearest heaters only and linear in their phase (power),
detector noise independent per port.
"""

from __future__ import annotations

import math

import torch

from ... import devices
from ..._validation import check_int
from ...metering import CostModel
from ...twins.base import Twin
from ..base import ControlSpec, Plant
from ..capabilities import Simulated
from .mesh_engine import MeshEngine, MeshLayout, Rectangular, Triangular
from .mesh_adjoint import ReciprocalMesh  # the Reciprocal capability (in-situ adjoint passes), helper E
from .mesh_physics import (AmplitudeEncoding, CoherentDetection, Detector, Heaters, MeshFabrication, MeshPhysics,
                           PhaseEncoding, Photodetection)

TWO_PI = 2.0 * math.pi

#: ASSUMED (no single cited chip): 10 us to settle the heaters per query (thermo-optic time constants are
#: of order microseconds to tens of microseconds), 1 ns per sample (GHz modulation and detection), a 10 mW
#: laser. The heaters' power is charged on top, per query, from the controls.
MESH_COST = CostModel(seconds_per_query=10e-6, seconds_per_sample=1e-9, joules_per_sample=10e-3 * 1e-9,
                      source="assumed: 10 us heater settling per query, 1 ns and a 10 mW laser per sample; "
                             "heater power P_pi h / pi charged per query (P_pi assumed 25 mW)")


class MZIMeshTwin(Twin):
    """Differentiable mesh model: encoding -> mesh (with the given physics) -> detector response
    (no noise; ADC rounding with straight-through gradients where the detection has an ADC)."""

    def __init__(self, *, physics: MeshPhysics, encoding, detection, in_features: int, ports: int) -> None:
        super().__init__(in_features=in_features, out_features=detection.features(ports))
        self.physics = physics
        self.encoding = encoding
        self.detection = detection
        self.ports = ports

    def fields(self, x, controls):
        """Complex output fields (batch, N) for inputs x (differentiable)."""
        n = self.physics.engine.n_ports
        e = self.encoding.field(x, self.physics.engine.dtype)
        if e.shape[1] < n:
            e = torch.cat([e, e.new_zeros(e.shape[0], n - e.shape[1])], dim=1)
        T, psi = self.physics.transfer(controls)
        return self.physics.engine.apply(e, T, psi)

    def forward(self, x, controls):
        y = self.fields(x, controls)[:, :self.ports]
        return self.detection.response(y).to(x.dtype)



def check_chip_arguments(*, n_ports, in_features, encoding, detection, fabrication, heaters, cost, seed):
    """The constructor checks every mesh chip shares (:class:`MZIMesh`, :class:`~.svd.SVDMesh`); returns
    ``(n_ports, in_features, detected ports)``."""
    n_ports = check_int("n_ports", n_ports, minimum=2)
    in_features = n_ports if in_features is None else check_int("in_features", in_features)
    if in_features > n_ports:
        raise ValueError(f"in_features={in_features} exceeds n_ports={n_ports}: a mesh has one input per "
                         f"port; pass in_features <= {n_ports} or a larger mesh.")
    if not isinstance(encoding, (AmplitudeEncoding, PhaseEncoding)):
        raise TypeError(f"encoding must be AmplitudeEncoding(...) or PhaseEncoding(...), got {type(encoding).__name__}.")
    if not isinstance(detection, (Photodetection, CoherentDetection)):
        raise TypeError(f"detection must be Photodetection(...) or CoherentDetection(...), got "
                        f"{type(detection).__name__}.")
    ports = n_ports if detection.ports is None else detection.ports
    if ports > n_ports:
        raise ValueError(f"detection reads {ports} ports but the mesh has {n_ports}; pass ports <= {n_ports}.")
    if not isinstance(fabrication, MeshFabrication):
        raise TypeError(f"fabrication must be a MeshFabrication(...), got {type(fabrication).__name__}.")
    if not isinstance(heaters, Heaters):
        raise TypeError(f"heaters must be a Heaters(...), got {type(heaters).__name__}.")
    if not isinstance(cost, CostModel):
        raise TypeError(f"cost must be a pnnlab CostModel, got {type(cost).__name__}.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}.")
    return n_ports, in_features, ports


class MZIMesh(Plant, Simulated, ReciprocalMesh):
    """A programmable N-port MZI mesh with a hidden truth.

    Parameters
    ----------
    n_ports:
        N (2 ... 256 and more).
    in_features:
        input ports driven (default N); the others are dark.
    layout:
        ``Rectangular`` (Clements, default) or ``Triangular`` (Reck): the class or an instance for N.
    encoding:
        :class:`AmplitudeEncoding` (default) or :class:`PhaseEncoding`.
    detection:
        :class:`Photodetection` (default) or :class:`CoherentDetection`; ``ports`` of it = outputs read.
    fabrication:
        :class:`MeshFabrication` (static chip errors; ``MeshFabrication.ideal()`` for none).
    heaters:
        :class:`Heaters` (P_pi, thermal crosstalk, DAC bits).
    dtype:
        ``torch.complex64`` (default) or ``torch.complex128`` for the simulation.
    seed:
        seeds the chip's fabrication draw (its own generator) and the measurement-noise generator.
    """

    summary = ("programmable MZI mesh (Clements/Reck), coherent inputs, photodetection or coherent detection, "
               "hidden coupler/phase/loss errors, heater crosstalk, DAC, detector noise")

    def __init__(self, *, n_ports: int = 8, in_features: int | None = None,
                 layout: type[MeshLayout] | MeshLayout = Rectangular,
                 encoding: AmplitudeEncoding | PhaseEncoding = AmplitudeEncoding(),
                 detection: Photodetection | CoherentDetection = Photodetection(),
                 fabrication: MeshFabrication = MeshFabrication.typical(),
                 heaters: Heaters = Heaters(crosstalk=0.02, dac_bits=12),
                 dtype: torch.dtype = torch.complex64, cost: CostModel = MESH_COST, seed: int = 0) -> None:
        n_ports, in_features, ports = check_chip_arguments(
            n_ports=n_ports, in_features=in_features, encoding=encoding, detection=detection,
            fabrication=fabrication, heaters=heaters, cost=cost, seed=seed)
        if isinstance(layout, type) and issubclass(layout, MeshLayout):
            layout = layout(n_ports)
        if not isinstance(layout, MeshLayout):
            raise TypeError(f"layout must be Rectangular or Triangular (the class or an instance), got {layout!r}.")
        if layout.n_ports != n_ports:
            raise ValueError(f"layout has {layout.n_ports} ports but n_ports={n_ports}; pass "
                             f"layout={type(layout).__name__} (the class) or {type(layout).__name__}({n_ports}).")
        super().__init__(in_features=in_features, out_features=detection.features(ports), cost=cost, seed=seed)
        self.n_ports = n_ports
        self.ports = ports
        self.layout = layout
        self.encoding = encoding
        self.detection = detection
        self.engine = MeshEngine(layout, dtype=dtype)
        self.fabrication = fabrication
        self.heaters = heaters
        # hidden truth: the chip's static errors, drawn from a generator the chip owns
        self._physics = MeshPhysics(self.engine, fabrication=fabrication, heaters=heaters,
                                    generator=torch.Generator().manual_seed(7_919 * (seed + 1) + n_ports))
        self._design = MeshPhysics(self.engine, fabrication=MeshFabrication.ideal(), heaters=Heaters.ideal())

    # ---- plant interface ----------------------------------------------------------------------
    def control_specs(self):
        n_m = self.layout.n_mzis
        return {"theta": ControlSpec((n_m,), 0.0, TWO_PI, unit="rad", periodic=True,
                                      description="internal MZI phases (column-major)"),
                "phi": ControlSpec((n_m,), 0.0, TWO_PI, unit="rad", periodic=True,
                                    description="external MZI phases (column-major)"),
                "psi": ControlSpec((self.n_ports,), 0.0, TWO_PI, unit="rad", periodic=True,
                                    description="output phase screen")}

    def initial_controls(self, generator=None):
        gen = generator if generator is not None else self._generator
        return {name: TWO_PI * (0.1 + 0.8 * devices.rand(spec.shape, generator=gen, device=self.device))
                for name, spec in self.control_specs().items()}

    def example_inputs(self, batch, generator=None):
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        x = torch.rand(batch, self.in_features, generator=gen)
        if isinstance(self.encoding, PhaseEncoding):
            return TWO_PI * x
        return x / math.sqrt(self.in_features)  # total input power <= 1

    def _twin(self, physics: MeshPhysics, detection) -> MZIMeshTwin:
        return MZIMeshTwin(physics=physics, encoding=self.encoding, detection=detection,
                           in_features=self.in_features, ports=self.ports)

    def _measure(self, x, controls, generator):
        truth = self._twin(self._physics, self.detection)
        y = truth.fields(x, controls)[:, :self.ports]
        seconds = self.cost.seconds(x.shape[0])
        self.meter.charge(joules=self._physics.heater_power_W(controls) * seconds)
        return self.detection.measure(y, generator).to(x.dtype)

    def nominal_twin(self) -> MZIMeshTwin:
        """The ideal mesh (design values): 50:50 couplers, no phase offsets, lossless, no crosstalk, no
        DAC, a noiseless detector without ADC."""
        return self._twin(self._design, self.detection.ideal())

    def true_twin(self) -> MZIMeshTwin:
        """The chip's hidden physics with the detector noise off (coupler errors, phase offsets, loss,
        crosstalk, DAC and ADC rounding with straight-through gradients). Diagnostics and the ideal
        bound only."""
        return self._twin(self._physics, self.detection)

    def heater_power_W(self, controls) -> float:
        """Electrical power of all heaters for these controls (what a query is charged for)."""
        return self._physics.heater_power_W(self.validate_controls(controls))

    def describe(self):
        return (f"MZIMesh(n_ports={self.n_ports}, layout={type(self.layout).__name__}, in_features={self.in_features}, "
                f"out_features={self.out_features})")


__all__ = ["MZIMesh", "MZIMeshTwin", "MESH_COST", "Rectangular", "Triangular", "AmplitudeEncoding", "PhaseEncoding",
           "Photodetection", "CoherentDetection", "Detector", "Heaters", "MeshFabrication"]
