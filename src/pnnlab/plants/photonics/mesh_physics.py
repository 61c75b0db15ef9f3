"""Hidden physics of an MZI mesh chip: fabrication errors, heaters, DAC, detectors, encodings.

Every element is a small frozen dataclass; each is off (ideal) with its ``ideal()`` preset.
:class:`MeshPhysics` turns requested phases into the 2x2 matrices of every MZI and the output
screen, applying, in this order:

1. wrap: requested phases are taken modulo 2 pi (a heater phase of 2 pi is the phase 0);
2. DAC: the heater drive is quantised to ``2^bits`` levels over one 2 pi period (``dac_bits``);
3. heater power P = P_pi * h / pi for the quantised heater phase h in [0, 2 pi) (thermo-optic shift
   linear in power);
4. thermal crosstalk: every heater shifts its neighbours (the heaters of the same kind, theta or phi,
   of the MZIs directly above and below in the same column; adjacent output-screen heaters) by
   ``crosstalk * h_neighbour``;
5. fabrication phase offsets (static path-length errors), added to every effective phase;
6. couplers with angle errors (a1, a2) per MZI and an insertion loss per MZI (amplitude
   10^(-dB/20)), see :func:`pnnlab.plants.photonics.mesh_engine.mzi_transfer`.

The DAC rounding passes gradients straight through (value quantised, derivative 1), so the same code
serves the plant and its differentiable true twin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ... import devices
from ..._validation import check_int, check_nonnegative, check_positive
from .mesh_engine import MeshEngine, MeshLayout, mzi_transfer

TWO_PI = 2.0 * math.pi


def _straight_through(value: torch.Tensor, rounded: torch.Tensor) -> torch.Tensor:
    if not value.requires_grad:
        return rounded
    return value + (rounded - value).detach()


@dataclass(frozen=True)
class MeshFabrication:
    """Static errors of a fabricated mesh (drawn once per chip from the plant's own seed).

    ``coupler_error_std_rad``: std of the coupler angle error a (power splitting cos^2(pi/4 + a)
    ~ 1/2 - a, so it is also the std of the splitting-ratio deviation from 50 %).
    ``phase_offset_std_rad``: std of the static phase offset of every phase shifter (path-length
    errors; ``math.pi`` or more is effectively a uniformly random offset, as on uncalibrated silicon).
    ``insertion_loss_db``: mean insertion loss per MZI; ``insertion_loss_std_db`` its chip-to-chip
    spread per MZI (clipped at 0 dB).
    """

    coupler_error_std_rad: float = 0.0
    phase_offset_std_rad: float = 0.0
    insertion_loss_db: float = 0.0
    insertion_loss_std_db: float = 0.0

    def __post_init__(self) -> None:
        for name in ("coupler_error_std_rad", "phase_offset_std_rad", "insertion_loss_db", "insertion_loss_std_db"):
            check_nonnegative(f"MeshFabrication.{name}", getattr(self, name))
        if self.coupler_error_std_rad > 0.3:
            raise ValueError(f"MeshFabrication.coupler_error_std_rad={self.coupler_error_std_rad} would make "
                             f"couplers far from 50:50 (the model is meant for errors of a few percent); pass <= 0.3.")

    @classmethod
    def ideal(cls) -> "MeshFabrication":
        return cls()

    @classmethod
    def typical(cls) -> "MeshFabrication":
        """Values of the order quoted for silicon meshes, ASSUMED (not one cited chip): 2 % coupler
        splitting error (Bandyopadhyay, Hamerly & Englund, Optica 8, 1247 (2021) study errors of this
        order), random static phase offsets (std pi: an uncalibrated chip), 0.2 dB per MZI with 0.05 dB
        spread (low-loss silicon MZIs are of order 0.1-0.5 dB)."""
        return cls(coupler_error_std_rad=0.02, phase_offset_std_rad=math.pi, insertion_loss_db=0.2,
                   insertion_loss_std_db=0.05)


@dataclass(frozen=True)
class Heaters:
    """Thermo-optic phase shifters: ``p_pi_W`` power for a pi shift (ASSUMED 25 mW, typical of metal
    heaters on silicon; see the review Liu et al., Front. Optoelectron. 15, 9 (2022),
    doi:10.1007/s12200-022-00012-9), ``crosstalk`` the fraction of a neighbouring heater's phase
    induced in a heater (0 = none; a few percent without isolation trenches), ``dac_bits`` the
    resolution of the drive over one 2 pi period (None = continuous)."""

    p_pi_W: float = 0.025
    crosstalk: float = 0.0
    dac_bits: int | None = None

    def __post_init__(self) -> None:
        check_positive("Heaters.p_pi_W", self.p_pi_W)
        c = check_nonnegative("Heaters.crosstalk", self.crosstalk)
        if c >= 0.5:
            raise ValueError(f"Heaters.crosstalk must be < 0.5 (a heater shifts itself most), got {c}; typical 0.01-0.1.")
        if self.dac_bits is not None:
            check_int("Heaters.dac_bits", self.dac_bits, minimum=1)

    @classmethod
    def ideal(cls) -> "Heaters":
        return cls()


@dataclass(frozen=True)
class Detector:
    """Photodetector / coherent receiver at every output port.

    Fields are in units where |E|^2 = 1 is ``signal_photons`` photons per sample. Photodetection:
    Poisson shot noise on the photon count (``shot_noise``), Gaussian thermal (Johnson) noise of
    ``thermal_noise_photons`` rms, an ADC of ``bit_depth`` bits over [0, ``full_scale``] (clipped).
    Coherent detection (balanced homodyne with a strong local oscillator, both quadratures): shot
    noise of variance 1/4 photon per quadrature (vacuum), i.e. std 1/(2 sqrt(signal_photons)) in field
    units, the thermal noise (in field units std thermal_noise_photons / signal_photons), and an ADC
    over [-full_scale, full_scale]. ``Detector.ideal()`` has no noise and no ADC."""

    signal_photons: float = 1.0e4
    shot_noise: bool = True
    thermal_noise_photons: float = 10.0
    bit_depth: int | None = 12
    full_scale: float = 1.0

    def __post_init__(self) -> None:
        check_positive("Detector.signal_photons", self.signal_photons)
        if not isinstance(self.shot_noise, bool):
            raise TypeError(f"Detector.shot_noise must be True or False, got {self.shot_noise!r}.")
        check_nonnegative("Detector.thermal_noise_photons", self.thermal_noise_photons)
        if self.bit_depth is not None:
            check_int("Detector.bit_depth", self.bit_depth, minimum=1)
        check_positive("Detector.full_scale", self.full_scale)

    @classmethod
    def ideal(cls) -> "Detector":
        return cls(shot_noise=False, thermal_noise_photons=0.0, bit_depth=None)

    def _adc(self, value: torch.Tensor, signed: bool) -> torch.Tensor:
        if self.bit_depth is None:
            return value
        low = -self.full_scale if signed else 0.0
        value = value.clamp(low, self.full_scale)
        lsb = (self.full_scale - low) / (2 ** self.bit_depth - 1)
        return _straight_through(value, torch.round((value - low) / lsb) * lsb + low)


@dataclass(frozen=True)
class Photodetection:
    """Measure the output intensities |y_m|^2 of the first ``ports`` outputs (None = all)."""

    detector: Detector = Detector()
    ports: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.detector, Detector):
            raise TypeError(f"Photodetection.detector must be a Detector(...), got {type(self.detector).__name__}.")
        if self.ports is not None:
            check_int("Photodetection.ports", self.ports)

    def features(self, ports: int) -> int:
        return ports

    def response(self, field: torch.Tensor) -> torch.Tensor:
        """Noise-off response (ADC kept): the true twin's detector."""
        return self.detector._adc(field.abs().square(), signed=False)

    def measure(self, field: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        d = self.detector
        photons = field.abs().square() * d.signal_photons
        if d.shot_noise:
            photons = devices.poisson(photons, generator=generator)
        if d.thermal_noise_photons:
            photons = photons + d.thermal_noise_photons * devices.randn(photons.shape, generator=generator,
                                                                          device=photons.device, dtype=photons.dtype)
        return d._adc(photons / d.signal_photons, signed=False)

    def ideal(self) -> "Photodetection":
        return Photodetection(detector=Detector.ideal(), ports=self.ports)


@dataclass(frozen=True)
class CoherentDetection:
    """Measure the complex output fields of the first ``ports`` outputs (None = all) as features
    ``[Re y_0..Re y_{P-1}, Im y_0..Im y_{P-1}]``."""

    detector: Detector = Detector()
    ports: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.detector, Detector):
            raise TypeError(f"CoherentDetection.detector must be a Detector(...), got {type(self.detector).__name__}.")
        if self.ports is not None:
            check_int("CoherentDetection.ports", self.ports)

    def features(self, ports: int) -> int:
        return 2 * ports

    def response(self, field: torch.Tensor) -> torch.Tensor:
        return self.detector._adc(torch.cat([field.real, field.imag], dim=1), signed=True)

    def measure(self, field: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        d = self.detector
        quad = torch.cat([field.real, field.imag], dim=1)
        std = 0.0
        if d.shot_noise:
            std = 0.5 / math.sqrt(d.signal_photons)
        std = math.sqrt(std ** 2 + (d.thermal_noise_photons / d.signal_photons) ** 2)
        if std:
            quad = quad + std * devices.randn(quad.shape, generator=generator, device=quad.device, dtype=quad.dtype)
        return d._adc(quad, signed=True)

    def ideal(self) -> "CoherentDetection":
        return CoherentDetection(detector=Detector.ideal(), ports=self.ports)


@dataclass(frozen=True)
class AmplitudeEncoding:
    """Input x_j -> field ``scale * x_j`` on input port j (real, signed: an IQ/push-pull modulator)."""

    scale: float = 1.0

    def __post_init__(self) -> None:
        check_positive("AmplitudeEncoding.scale", self.scale)

    def field(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return (self.scale * x).to(dtype)


@dataclass(frozen=True)
class PhaseEncoding:
    """Input x_j (radians) -> field ``amplitude * exp(i x_j)`` on input port j."""

    amplitude: float = 1.0

    def __post_init__(self) -> None:
        check_positive("PhaseEncoding.amplitude", self.amplitude)

    def field(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        real = torch.float64 if dtype == torch.complex128 else torch.float32
        x = x.to(real)
        return torch.polar(torch.full_like(x, self.amplitude), x).to(dtype)


def _neighbour_pairs(layout: MeshLayout) -> torch.Tensor:
    """(2, P) indices (i, j): MZI j is directly above or below MZI i in the same column."""
    index = {(int(c), int(m)): k for k, (c, m) in enumerate(zip(layout.mzi_column, layout.mzi_top))}
    pairs = []
    for (c, m), k in index.items():
        for dm in (-2, 2):
            other = index.get((c, m + dm))
            if other is not None:
                pairs.append((k, other))
    if not pairs:
        return torch.zeros(2, 0, dtype=torch.long, device="cpu")
    return torch.tensor(pairs, dtype=torch.long, device="cpu").T


class MeshPhysics:
    """Requested phases -> MZI matrices of one chip (see the module docstring). ``draws`` are the
    chip's static errors (drawn by :meth:`draw`); ``MeshPhysics.ideal(engine)`` is the design."""

    def __init__(self, engine: MeshEngine, *, fabrication: MeshFabrication, heaters: Heaters,
                 generator: torch.Generator | None = None) -> None:
        self.engine = engine
        self.fabrication = fabrication
        self.heaters = heaters
        lay = engine.layout
        real = torch.float64
        n_m, n_p = lay.n_mzis, lay.n_ports
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        f = fabrication
        # draw everything in a fixed order so that one element's size never changes another's draw
        self.coupler_errors = f.coupler_error_std_rad * torch.randn(n_m, 2, generator=gen, dtype=real)
        self.theta_offsets = f.phase_offset_std_rad * torch.randn(n_m, generator=gen, dtype=real)
        self.phi_offsets = f.phase_offset_std_rad * torch.randn(n_m, generator=gen, dtype=real)
        self.psi_offsets = f.phase_offset_std_rad * torch.randn(n_p, generator=gen, dtype=real)
        loss_db = (f.insertion_loss_db + f.insertion_loss_std_db * torch.randn(n_m, generator=gen, dtype=real)).clamp_min(0.0)
        self.amplitude = 10.0 ** (-loss_db / 20.0)
        self._pairs = _neighbour_pairs(lay)
        self._screen_pairs = torch.tensor([[i, i + d] for i in range(n_p) for d in (-1, 1) if 0 <= i + d < n_p],
                                          dtype=torch.long, device="cpu").T
        self._lossless = bool((self.amplitude == 1.0).all())  # fixed with the draw (no device sync per query)

    #: moved with the plant that holds it (pnnlab.devices.move calls to())
    _device_state = True

    def to(self, device) -> "MeshPhysics":
        """Move the chip's draws and index tensors (and its engine) to ``device``; returns the physics."""
        self.engine.to(device)
        for name in ("coupler_errors", "theta_offsets", "phi_offsets", "psi_offsets", "amplitude", "_pairs",
                     "_screen_pairs"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    @property
    def lossless(self) -> bool:
        return self._lossless

    def heater_phases(self, value: torch.Tensor) -> torch.Tensor:
        """Requested phase -> heater phase h in [0, 2 pi): wrapped, then DAC-quantised."""
        h = torch.remainder(value, TWO_PI)
        bits = self.heaters.dac_bits
        if bits is not None:
            step = TWO_PI / 2 ** bits
            h = _straight_through(h, torch.remainder(torch.round(h / step), 2 ** bits) * step)
        return h

    def heater_power_W(self, controls: dict[str, torch.Tensor]) -> float:
        """Total electrical power of all heaters for these controls (P = P_pi h / pi per heater)."""
        total = sum(float(self.heater_phases(controls[k].detach()).sum()) for k in ("theta", "phi", "psi"))
        return self.heaters.p_pi_W * total / math.pi

    def _crosstalk(self, h: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        kappa = self.heaters.crosstalk
        if kappa == 0.0 or pairs.shape[1] == 0:
            return h
        return h + kappa * torch.zeros_like(h).index_add(0, pairs[0], h.index_select(0, pairs[1]))

    def effective_phases(self, controls: dict[str, torch.Tensor]):
        """Optical phases (theta, phi, psi) the light sees for the requested controls."""
        real = torch.float64 if self.engine.dtype == torch.complex128 else torch.float32
        th = self._crosstalk(self.heater_phases(controls["theta"].to(real)), self._pairs)
        ph = self._crosstalk(self.heater_phases(controls["phi"].to(real)), self._pairs)
        ps = self._crosstalk(self.heater_phases(controls["psi"].to(real)), self._screen_pairs)
        return (th + self.theta_offsets.to(real), ph + self.phi_offsets.to(real), ps + self.psi_offsets.to(real))

    def transfer(self, controls: dict[str, torch.Tensor]):
        """(T, psi): the MZI matrices (n_mzis, 2, 2) and effective screen phases (N,)."""
        th, ph, ps = self.effective_phases(controls)
        f = self.fabrication
        T = mzi_transfer(th, ph, coupler_errors=self.coupler_errors if f.coupler_error_std_rad else None,
                         amplitude=None if self.lossless else self.amplitude, dtype=self.engine.dtype)
        return T, ps

    def matrix(self, controls: dict[str, torch.Tensor]) -> torch.Tensor:
        """The realised transfer matrix of the chip (N, N) for these controls."""
        T, ps = self.transfer(controls)
        return self.engine.matrix(T, ps)
