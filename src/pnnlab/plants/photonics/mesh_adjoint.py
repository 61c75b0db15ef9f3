"""The reciprocal passes of an MZI mesh chip: light forwards, backwards and both, with a power monitor
at every phase shifter (the :class:`~pnnlab.plants.capabilities.Reciprocal` capability of
:class:`~pnnlab.plants.photonics.mzi_mesh.MZIMesh`, for the in-situ adjoint gradients of Hughes,
Minkov, Shi & Fan, Optica 5, 864 (2018) and Pai et al., Science 380, 398 (2023)).

What the simulated chip does in each pass (the hidden physics of :mod:`.mesh_physics` throughout:
coupler errors, phase offsets, loss, heater crosstalk, DAC):

* forward: the encoded input e runs through U; the monitors read the power entering every MZI's
  external shifter phi (top arm at the MZI's input, ``MeshFields.inputs[c][:, m]``), at every internal
  shifter theta (top arm between the couplers, :meth:`MeshEngine.internal_fields`) and before every
  output-screen shifter psi; the complex output field is measured by coherent receivers.
* adjoint: the given field enters the *outputs* and runs backwards; by reciprocity it sees U^T (the
  engine's ``reverse=True``: screen, then the columns in reverse with transposed 2x2 matrices). The
  same monitors read its power; the field leaving the input ports is measured coherently. Where an
  MZI has insertion loss it is placed at the MZI's output side (after the second coupler): the field
  at the internal shifter has not yet been attenuated going forwards, and has been going backwards.
* interference: e plus an injected field on every input port (the modulators drive all N inputs),
  forwards; the monitors read the power of the sum.

Monitors and coherent receivers have the noise of the plant's detector (:class:`.mesh_physics.Detector`):
shot noise (Poisson photon counts at ``signal_photons`` per unit power) and thermal noise for
powers; vacuum shot noise and thermal noise per quadrature for fields; no ADC on the monitors.

Simplifications: monitors are ideal taps (they take no power); the adjoint source and time-reversed
field are generated perfectly by the input/output modulators; the monitor sits on the top arm of each
MZI only (both arms carry the information; one suffices).
"""

from __future__ import annotations

import math

import torch

from ... import devices
from ..capabilities import FieldPass, Reciprocal
from .mesh_engine import first_half
from .mesh_physics import CoherentDetection, Photodetection


class ReciprocalMesh(Reciprocal):
    """Mixin implementing :class:`Reciprocal` for :class:`~.mzi_mesh.MZIMesh` (which sets
    ``engine``, ``encoding``, ``detection``, ``ports`` and the hidden ``_physics``)."""

    @property
    def n_input_ports(self) -> int:
        return self.n_ports

    @property
    def n_output_ports(self) -> int:
        return self.n_ports

    # ---- physics -------------------------------------------------------------------------------
    def _encoded(self, x: torch.Tensor) -> torch.Tensor:
        e = self.encoding.field(x, self.engine.dtype)
        if e.shape[1] < self.n_ports:
            e = torch.cat([e, e.new_zeros(e.shape[0], self.n_ports - e.shape[1])], dim=1)
        return e

    def _powers(self, fields, controls, *, reverse: bool) -> dict[str, torch.Tensor]:
        """Optical power at every phase shifter (noise-free), by control name."""
        physics, lay = self._physics, self.layout
        theta, phi, _ = physics.effective_phases(controls)
        errors = physics.coupler_errors if physics.fabrication.coupler_error_std_rad else None
        if not reverse:
            at_theta = self.engine.internal_fields(fields, first_half(phi, coupler_errors=errors,
                                                                      dtype=self.engine.dtype))
        else:
            a2 = torch.zeros_like(theta) if errors is None else errors[:, 1].to(theta.dtype)
            c, s = torch.cos(a2 + math.pi / 4), torch.sin(a2 + math.pi / 4)
            zero = torch.zeros_like(c)
            # transposed second coupler B(a2)^T = B(a2) (symmetric), times the MZI's loss (at its output)
            amp = physics.amplitude.to(theta.dtype)
            half = torch.stack([torch.stack([torch.complex(c, zero), torch.complex(zero, s)], -1),
                                torch.stack([torch.complex(zero, s), torch.complex(c, zero)], -1)], -2)
            half = half * amp.reshape(-1, 1, 1)
            at_theta = self.engine.internal_fields(fields, half.to(self.engine.dtype))
        column, top = self.engine.positions(fields.inputs.device)
        at_phi = fields.inputs[column, :, top].T  # (batch, n_mzis)
        at_psi = fields.inputs[lay.n_columns]  # before the screen (forward) / after it (reverse): same power
        real = torch.float64 if self.engine.dtype == torch.complex128 else torch.float32
        return {"theta": at_theta.abs().square().to(real), "phi": at_phi.abs().square().to(real),
                "psi": at_psi.abs().square().to(real)}

    def _monitor_noise(self, powers: dict, generator) -> dict:
        d = self.detection.detector
        out = {}
        for name, p in powers.items():
            photons = p * d.signal_photons
            if d.shot_noise:
                photons = devices.poisson(photons, generator=generator)
            if d.thermal_noise_photons:
                photons = photons + d.thermal_noise_photons * devices.randn(
                    photons.shape, generator=generator, device=photons.device, dtype=photons.dtype)
            out[name] = photons / d.signal_photons
        return out

    def _field_noise(self, field: torch.Tensor, generator) -> torch.Tensor:
        d = self.detection.detector
        std = math.sqrt((0.5 / math.sqrt(d.signal_photons) if d.shot_noise else 0.0) ** 2
                        + (d.thermal_noise_photons / d.signal_photons) ** 2)
        if not std:
            return field
        real = field.real.dtype
        noise = torch.complex(devices.randn(field.shape, generator=generator, device=field.device, dtype=real),
                              devices.randn(field.shape, generator=generator, device=field.device, dtype=real))
        return field + std * noise

    def _charge_heaters(self, controls, batch: int) -> None:
        self.meter.charge(joules=self._physics.heater_power_W(controls) * self.cost.seconds(batch))

    def _forward_pass(self, x, controls, generator):
        T, psi = self._physics.transfer(controls)
        y, fields = self.engine.apply(self._encoded(x), T, psi, monitor=True)
        powers = self._monitor_noise(self._powers(fields, controls, reverse=False), generator)
        output = self.detection.measure(y[:, :self.ports], generator).to(x.dtype)
        measured = self._field_noise(y, generator)
        measured[:, self.ports:] = 0  # only the detected ports have receivers
        self._charge_heaters(controls, x.shape[0])
        return FieldPass(intensities={k: v.to(x.dtype) for k, v in powers.items()}, output=output,
                         port_field=measured)

    def _adjoint_pass(self, adjoint, controls, generator):
        T, psi = self._physics.transfer(controls)
        a_in, fields = self.engine.apply(adjoint.to(self.engine.dtype), T, psi, reverse=True, monitor=True)
        powers = self._monitor_noise(self._powers(fields, controls, reverse=True), generator)
        self._charge_heaters(controls, adjoint.shape[0])
        return FieldPass(intensities=powers, port_field=self._field_noise(a_in, generator))

    def _interference_pass(self, x, injected, controls, generator):
        T, psi = self._physics.transfer(controls)
        _, fields = self.engine.apply(self._encoded(x) + injected.to(self.engine.dtype), T, psi, monitor=True)
        powers = self._monitor_noise(self._powers(fields, controls, reverse=False), generator)
        self._charge_heaters(controls, x.shape[0])
        return FieldPass(intensities={k: v.to(x.dtype) for k, v in powers.items()})

    # ---- controller arithmetic -----------------------------------------------------------------
    def adjoint_source(self, forward, grad_output):
        """conj(dL/dy*) on the detected output ports (zero elsewhere). Photodetection: I = |y|^2, so
        dL/dy* = 2 y dL/dI (a saturated ADC reading passes no gradient); coherent detection:
        dL/dy* = dL/dRe + i dL/dIm."""
        y = forward.port_field
        g = grad_output.to(y.real.dtype)
        p = self.ports
        grad_field = torch.zeros_like(y)
        if isinstance(self.detection, Photodetection):
            d = self.detection.detector
            if d.bit_depth is not None:
                g = torch.where(forward.output.to(g.dtype) >= d.full_scale, torch.zeros_like(g), g)
            grad_field[:, :p] = 2 * y[:, :p] * g
        elif isinstance(self.detection, CoherentDetection):
            grad_field[:, :p] = torch.complex(g[:, :p], g[:, p:])
        else:  # pragma: no cover - MZIMesh validates its detection
            raise TypeError(f"unknown detection {type(self.detection).__name__}")
        return grad_field.conj()

    def input_gradient(self, x, adjoint):
        """dL/dx = Re(a_in de/dx) for the encoding e(x) (amplitude: de/dx = scale; phase:
        de/dx = i e)."""
        a = adjoint.port_field[:, :self.in_features]
        if hasattr(self.encoding, "scale"):
            return (self.encoding.scale * a.real).to(x.dtype)
        e = self.encoding.field(x, a.dtype)
        return (-(e * a).imag).to(x.dtype)
