"""Multimode fibre / scattering medium: a physical layer with no trustworthy model.

Light from a laser is shaped by a phase-only spatial light modulator (SLM), propagates through a
multimode fibre or a scattering medium described by an unknown complex *transmission matrix* (TM),
and a camera measures the output speckle intensity. This is the setting of the optical local-learning
experiments: Oguz, Ke, Wang, ..., Moser & Psaltis, "Forward-forward training of an optical neural
network", Optics Letters 48, 5249 (2023), doi:10.1364/OL.496884, and Momeni, Rahmani, Mallejac,
del Hougne & Fleury, "Backpropagation-free training of deep physical neural networks", Science 382,
1297 (2023), doi:10.1126/science.adi8474. The TM model of a scattering medium follows Popoff, Lerosey,
Carminati, Fink, Boccara & Gigan, Phys. Rev. Lett. 104, 100601 (2010), doi:10.1103/PhysRevLett.104.100601.

Physics (vectorised over the batch; ``N = n_modes`` SLM pixels, ``M = out_features`` camera pixels):

1. SLM. Pixel ``j < in_features`` displays the input phase ``x_j`` (radians); the remaining
   ``N - in_features`` pixels display the trainable control phases ``theta``. The SLM wraps phases
   into [0, 2 pi), quantises them to ``SLM.phase_levels`` grey levels, and the fringing field of
   each pixel leaks into its neighbours (1-D nearest-neighbour crosstalk ``c``):
   ``phi_eff_j = (1 - 2c) phi_j + c (phi_{j-1} + phi_{j+1})`` (edges replicated).
   The field leaving the SLM is ``E_j = exp(i phi_eff_j) / sqrt(N)`` (unit power).
2. Propagation. Linear: ``E_out = T E`` with ``T`` an ``M x N`` matrix of i.i.d. circular complex
   Gaussian entries of unit variance (fully developed speckle, Popoff 2010), so the mean output
   intensity per pixel is 1. Optional Kerr-like step (``kerr_phase_rad = kappa > 0``): the fibre is
   split in two, ``E_mid = U E`` with a random unitary ``U`` (lossless first half), an
   intensity-dependent phase ``E_mid <- E_mid exp(i kappa N |E_mid|^2)`` (``kappa`` is the mean
   nonlinear phase), then ``E_out = T E_mid``.
3. Camera. Intensity ``I = |E_out|^2`` (units of the mean speckle intensity) becomes
   ``I * signal_electrons`` photo-electrons, with Poisson shot noise, Gaussian read noise,
   saturation at the full-well capacity and ``bit_depth``-bit analogue-to-digital conversion of the
   range [0, full well]. The output is returned in units of the mean speckle intensity again.
4. Drift. ``T`` drifts with the plant's own clock ``t`` (``elapsed_seconds``: the device time of every
   query so far, plus idle time added with ``advance_time``; resetting the meter does not reset it): with
   decorrelation time ``tau``, ``T(t) = cos(a) T_k + sin(a) T_{k+1}``, ``k = floor(t / tau)``,
   ``a = (pi / 2)(t / tau - k)``, where the ``T_k`` are independent speckle matrices. The speckle
   statistics stay stationary and the field correlation with ``T(0)`` falls as ``cos(pi t / 2 tau)``
   over the first ``tau`` seconds.

Simplifications: scalar field, one polarisation, no mode-dependent loss; the TM maps SLM pixels
straight to camera pixels (the imaging optics are folded into ``T``); crosstalk is one-dimensional;
the drift is a smooth rotation between independent matrices, not a physical model of temperature or
bending; the Kerr step is a single lumped nonlinear phase between two linear segments.

The crude twin (:meth:`FibrePlant.nominal_twin`) is what a lab would have: the TM measured once at
installation (simulated as ``T(0)`` plus a relative complex-Gaussian error ``twin_tm_error``),
no quantisation, no crosstalk, no Kerr phase, no camera noise, saturation or drift. A scattering
medium has no design values, so this one twin is necessarily derived from the hidden matrix; it
stands in for a TM measurement (Popoff 2010) and carries its error. The true twin
(:meth:`FibrePlant.true_twin`) is the hidden physics at the current clock with the camera noise off
(quantisation, crosstalk, Kerr step, saturation and ADC kept; the roundings pass gradients straight
through): it equals the noiseless plant to float rounding, for diagnostics and the ideal bound only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..._validation import check_int, check_nonnegative, check_positive
from ... import devices
from ...metering import CostModel
from ...twins.base import Twin
from ..base import ControlSpec, Plant
from ..capabilities import Simulated

TWO_PI = 2.0 * math.pi

#: Cost of one query. ASSUMED (no single cited instrument): an LCoS SLM displays one pattern per
#: sample at 60 Hz (typical of liquid-crystal SLMs such as those used by Oguz 2023), plus 1 ms of
#: camera read-out per query; a 10 mW laser is on for the frame (1/60 s x 10 mW per sample).
FIBRE_COST = CostModel(seconds_per_query=1e-3, seconds_per_sample=1.0 / 60.0,
                       joules_per_query=0.0, joules_per_sample=0.010 / 60.0,
                       source="assumed: 60 Hz LCoS SLM frame per sample, 1 ms camera read-out per "
                              "query, 10 mW laser (typical lab values, not from one datasheet)")


@dataclass(frozen=True)
class SLM:
    """Phase-only spatial light modulator.

    ``phase_levels``: number of grey levels over 2 pi (256 for an 8-bit SLM; ``None`` = continuous).
    ``crosstalk``: fraction of each neighbour's phase that leaks into a pixel (fringing field), in
    [0, 1/3).
    """

    phase_levels: int | None = 256
    crosstalk: float = 0.05

    def __post_init__(self) -> None:
        if self.phase_levels is not None:
            check_int("SLM.phase_levels", self.phase_levels, minimum=2)
        c = check_nonnegative("SLM.crosstalk", self.crosstalk)
        if c >= 1.0 / 3.0:
            raise ValueError(f"SLM.crosstalk must be in [0, 1/3) (a pixel keeps most of its own phase), "
                             f"got {c}; typical fringing is 0.02-0.15.")

    @classmethod
    def ideal(cls) -> "SLM":
        """Continuous phase, no crosstalk."""
        return cls(phase_levels=None, crosstalk=0.0)

    def display(self, phases: torch.Tensor) -> torch.Tensor:
        """Phases actually imprinted on the light for requested phases (batch, pixels). The grey-level
        rounding passes gradients straight through (value quantised, derivative 1), so the same code
        serves the plant and its differentiable true twin."""
        phi = torch.remainder(phases, TWO_PI)
        if self.phase_levels is not None:
            step = TWO_PI / self.phase_levels
            phi = _straight_through(phi, torch.remainder(torch.round(phi / step), self.phase_levels) * step)
        return _crosstalk(phi, self.crosstalk)


def _straight_through(value: torch.Tensor, rounded: torch.Tensor) -> torch.Tensor:
    """``rounded`` as the value, the derivative of ``value`` as the gradient (straight-through
    estimator); exactly ``rounded`` where no gradient is needed (the plant's forward pass)."""
    if not value.requires_grad:
        return rounded
    return value + (rounded - value).detach()


def _crosstalk(phi: torch.Tensor, c: float) -> torch.Tensor:
    if c == 0.0:
        return phi
    left = torch.cat([phi[:, :1], phi[:, :-1]], dim=1)
    right = torch.cat([phi[:, 1:], phi[:, -1:]], dim=1)
    return (1.0 - 2.0 * c) * phi + c * (left + right)


@dataclass(frozen=True)
class Camera:
    """Intensity camera.

    ``signal_electrons``: photo-electrons at the mean speckle intensity (sets the shot-noise level).
    ``full_well_electrons``: saturation (``None`` = never saturates). ``read_noise_electrons``: rms
    read noise. ``bit_depth``: ADC bits over [0, full well] (``None`` = no quantisation; needs a
    full well). ``shot_noise``: Poisson photon statistics on or off.
    """

    signal_electrons: float = 2000.0
    full_well_electrons: float | None = 10000.0
    read_noise_electrons: float = 5.0
    bit_depth: int | None = 10
    shot_noise: bool = True

    def __post_init__(self) -> None:
        check_positive("Camera.signal_electrons", self.signal_electrons)
        if self.full_well_electrons is not None:
            check_positive("Camera.full_well_electrons", self.full_well_electrons)
        check_nonnegative("Camera.read_noise_electrons", self.read_noise_electrons)
        if self.bit_depth is not None:
            check_int("Camera.bit_depth", self.bit_depth, minimum=1)
            if self.full_well_electrons is None:
                raise ValueError("Camera.bit_depth needs Camera.full_well_electrons (the ADC range); "
                                 "set full_well_electrons=... or bit_depth=None.")
        if not isinstance(self.shot_noise, bool):
            raise TypeError(f"Camera.shot_noise must be True or False, got {self.shot_noise!r}.")

    @classmethod
    def ideal(cls) -> "Camera":
        """Noiseless, linear, unquantised camera."""
        return cls(full_well_electrons=None, read_noise_electrons=0.0, bit_depth=None, shot_noise=False)

    def measure(self, intensity: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        electrons = intensity * self.signal_electrons
        if self.shot_noise:  # drawn on the generator's device (the same noise on CPU and CUDA)
            electrons = devices.poisson(electrons, generator=generator)
        if self.read_noise_electrons:
            electrons = electrons + self.read_noise_electrons * devices.randn_like(electrons, generator=generator)
        return self._digitise(electrons)

    def response(self, intensity: torch.Tensor) -> torch.Tensor:
        """The camera's deterministic response with its noise off: saturation at the full well and
        ADC rounding (gradient passed straight through the rounding). Used by the true twin."""
        return self._digitise(intensity * self.signal_electrons)

    def _digitise(self, electrons: torch.Tensor) -> torch.Tensor:
        electrons = electrons.clamp_min(0.0)
        if self.full_well_electrons is not None:
            electrons = electrons.clamp_max(self.full_well_electrons)
        if self.bit_depth is not None:
            lsb = self.full_well_electrons / (2 ** self.bit_depth - 1)
            electrons = _straight_through(electrons, torch.round(electrons / lsb) * lsb)
        return electrons / self.signal_electrons


@dataclass(frozen=True)
class TransmissionDrift:
    """Slow drift of the transmission matrix: full decorrelation every ``decorrelation_time_s`` of
    the plant's device time (field correlation ``cos(pi t / 2 tau)`` within the first period)."""

    decorrelation_time_s: float

    def __post_init__(self) -> None:
        check_positive("TransmissionDrift.decorrelation_time_s", self.decorrelation_time_s)


def _speckle_matrix(rows: int, cols: int, seed: int, device=None) -> torch.Tensor:
    """Circular complex Gaussian matrix drawn on the CPU from ``seed`` (the same medium on every device), on
    ``device`` (default CPU)."""
    device = torch.device("cpu") if device is None else device
    g = torch.Generator().manual_seed(seed)
    re = devices.randn((rows, cols), generator=g, device=device)
    im = devices.randn((rows, cols), generator=g, device=device)
    return torch.complex(re, im) / math.sqrt(2.0)


def _random_unitary(n: int, seed: int, device=None) -> torch.Tensor:
    q, r = torch.linalg.qr(_speckle_matrix(n, n, seed, device))
    d = torch.diagonal(r)
    return q * (d / d.abs()).unsqueeze(0)


def _propagate(phi_eff: torch.Tensor, tm: torch.Tensor, unitary: torch.Tensor | None,
               kerr: float) -> torch.Tensor:
    """Output intensity |T NL(U E)|^2 for displayed phases phi_eff (batch, N)."""
    n = phi_eff.shape[1]
    field = torch.polar(torch.full_like(phi_eff, 1.0 / math.sqrt(n)), phi_eff)
    if unitary is not None:
        field = field @ unitary.T
        if kerr:
            field = field * torch.polar(torch.ones_like(phi_eff), kerr * n * field.abs().square())
    out = field @ tm.T
    return out.abs().square()


class FibreTwin(Twin):
    """Differentiable fibre model: a given transmission matrix (and optional unitary + Kerr step).

    ``slm``: the SLM model (quantisation with straight-through gradients, crosstalk); None for
    continuous phases with crosstalk ``crosstalk``. ``camera``: the camera's deterministic response
    (saturation, ADC rounding with straight-through gradients; never its noise); None for a linear
    camera."""

    def __init__(self, *, tm: torch.Tensor, in_features: int, crosstalk: float = 0.0,
                 unitary: torch.Tensor | None = None, kerr_phase_rad: float = 0.0,
                 slm: SLM | None = None, camera: Camera | None = None) -> None:
        if not torch.is_complex(tm) or tm.ndim != 2:
            raise TypeError(f"tm must be a complex matrix (camera pixels, SLM pixels), got {tm.dtype} "
                            f"{tuple(tm.shape)}.")
        if slm is not None and not isinstance(slm, SLM):
            raise TypeError(f"slm must be a pnnlab SLM(...) or None, got {type(slm).__name__}.")
        if camera is not None and not isinstance(camera, Camera):
            raise TypeError(f"camera must be a pnnlab Camera(...) or None, got {type(camera).__name__}.")
        super().__init__(in_features=in_features, out_features=tm.shape[0])
        self.register_buffer("tm", tm.clone())
        self.register_buffer("unitary", None if unitary is None else unitary.clone())
        self.crosstalk = float(crosstalk)
        self.kerr_phase_rad = float(kerr_phase_rad)
        self.slm = slm
        self.camera = camera

    def forward(self, x, controls):
        phases = torch.cat([x, controls["phase"].expand(x.shape[0], -1)], dim=1)
        if self.slm is not None:
            phi = self.slm.display(phases)
        else:
            phi = _crosstalk(torch.remainder(phases, TWO_PI), self.crosstalk)
        intensity = _propagate(phi, self.tm, self.unitary, self.kerr_phase_rad)
        return intensity if self.camera is None else self.camera.response(intensity)


class FibrePlant(Plant, Simulated):
    """SLM -> unknown drifting transmission matrix (optionally Kerr) -> noisy saturating camera.

    Parameters
    ----------
    in_features:
        SLM pixels that display the input phases (radians; any real value, the SLM wraps them).
    out_features:
        camera pixels read out.
    n_modes:
        SLM pixels = input modes of the transmission matrix (default 128; the controls are the
        ``n_modes - in_features`` remaining pixels).
    slm, camera:
        :class:`SLM` and :class:`Camera` non-idealities (``SLM.ideal()``, ``Camera.ideal()`` switch
        them off).
    kerr_phase_rad:
        mean Kerr-like nonlinear phase (0 = linear propagation).
    drift:
        a :class:`TransmissionDrift`, or None for a static medium.
    twin_tm_error:
        relative error of the transmission matrix in the crude twin (0.3 = 30 % rms).
    """

    summary = "multimode fibre / scattering medium: phase-only SLM, unknown drifting TM, noisy camera"

    def __init__(self, *, in_features: int = 16, out_features: int = 32, n_modes: int = 128,
                 slm: SLM = SLM(), camera: Camera = Camera(), kerr_phase_rad: float = 0.0,
                 drift: TransmissionDrift | None = None, twin_tm_error: float = 0.3,
                 cost: CostModel = FIBRE_COST, seed: int = 0) -> None:
        in_features = check_int("in_features", in_features)
        out_features = check_int("out_features", out_features)
        n_modes = check_int("n_modes", n_modes, minimum=2)
        if n_modes <= in_features:
            raise ValueError(f"n_modes must exceed in_features (the SLM needs at least one control "
                             f"pixel), got n_modes={n_modes}, in_features={in_features}; pass "
                             f"n_modes >= {in_features + 1}.")
        if not isinstance(slm, SLM):
            raise TypeError(f"slm must be a pnnlab SLM(...), got {type(slm).__name__}.")
        if not isinstance(camera, Camera):
            raise TypeError(f"camera must be a pnnlab Camera(...), got {type(camera).__name__}.")
        if drift is not None and not isinstance(drift, TransmissionDrift):
            raise TypeError(f"drift must be a TransmissionDrift(decorrelation_time_s=...) or None, got "
                            f"{type(drift).__name__}.")
        if not isinstance(cost, CostModel):
            raise TypeError(f"cost must be a pnnlab CostModel, got {type(cost).__name__}.")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}.")
        super().__init__(in_features=in_features, out_features=out_features, cost=cost, seed=seed)
        self._elapsed_s = 0.0
        self.n_modes = n_modes
        self.slm = slm
        self.camera = camera
        self.kerr_phase_rad = check_nonnegative("kerr_phase_rad", kerr_phase_rad)
        self.drift = drift
        self.twin_tm_error = check_nonnegative("twin_tm_error", twin_tm_error)
        # hidden truth: never read by training methods
        self._tm_seed = 1_000_003 * (seed + 1)
        self._tm_cache: dict[int, torch.Tensor] = {}
        self._unitary = (_random_unitary(n_modes, self._tm_seed - 1) if self.kerr_phase_rad else None)

    # ---- hidden truth ---------------------------------------------------------------------
    def _tm_segment(self, k: int) -> torch.Tensor:
        if k not in self._tm_cache:
            if len(self._tm_cache) > 4:
                self._tm_cache.clear()
            self._tm_cache[k] = _speckle_matrix(self.out_features, self.n_modes, self._tm_seed + 7919 * k,
                                                self.device)
        return self._tm_cache[k]

    def _tm_at(self, seconds: float) -> torch.Tensor:
        if self.drift is None:
            return self._tm_segment(0)
        u = seconds / self.drift.decorrelation_time_s
        k = int(math.floor(u))
        a = 0.5 * math.pi * (u - k)
        return math.cos(a) * self._tm_segment(k) + math.sin(a) * self._tm_segment(k + 1)

    # ---- plant interface ------------------------------------------------------------------
    def control_specs(self):
        return {"phase": ControlSpec((self.n_modes - self.in_features,), 0.0, TWO_PI, unit="rad",
                                     description="SLM phases of the control pixels")}

    def initial_controls(self, generator=None):
        gen = generator if generator is not None else self._generator
        return {"phase": TWO_PI * (0.1 + 0.8 * torch.rand(self.n_modes - self.in_features, generator=gen))}

    def example_inputs(self, batch, generator=None):
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        return TWO_PI * torch.rand(batch, self.in_features, generator=gen)

    def _measure(self, x, controls, generator):
        phases = torch.cat([x, controls["phase"].expand(x.shape[0], -1)], dim=1)
        phi = self.slm.display(phases)
        tm = self._tm_at(self._elapsed_s)
        intensity = _propagate(phi, tm, self._unitary, self.kerr_phase_rad)
        self._elapsed_s += self.cost.seconds(x.shape[0])
        return self.camera.measure(intensity, generator)

    @property
    def elapsed_seconds(self) -> float:
        """The fibre's own clock, which drives the drift of its transmission matrix."""
        return self._elapsed_s

    def advance_time(self, seconds: float) -> None:
        """Let ``seconds`` pass with the plant idle (the fibre keeps drifting)."""
        from ..._validation import check_nonnegative
        self._elapsed_s += check_nonnegative("seconds", seconds)

    def nominal_twin(self) -> FibreTwin:
        """Crude twin: the TM measured once at t = 0 with relative error ``twin_tm_error``; no
        quantisation, crosstalk, Kerr phase, camera noise, saturation or drift."""
        error = _speckle_matrix(self.out_features, self.n_modes, self._tm_seed + 17, self.device)
        tm = (self._tm_segment(0) + self.twin_tm_error * error) / math.sqrt(1.0 + self.twin_tm_error ** 2)
        return FibreTwin(tm=tm, in_features=self.in_features)

    def true_twin(self) -> FibreTwin:
        """The hidden physics with the camera noise off, frozen at the moment of the call: the
        transmission matrix at the fibre's current clock (the one the next query would see), the SLM's
        quantisation and crosstalk, the Kerr step, the camera's saturation and ADC rounding (both
        roundings pass gradients straight through). It does not drift afterwards: call it again for a
        later time. Diagnostics and the ideal bound only."""
        return FibreTwin(tm=self._tm_at(self._elapsed_s), in_features=self.in_features,
                         unitary=self._unitary, kerr_phase_rad=self.kerr_phase_rad,
                         slm=self.slm, camera=self.camera)

    def describe(self):
        return (f"FibrePlant(in_features={self.in_features}, out_features={self.out_features}, "
                f"n_modes={self.n_modes})")
