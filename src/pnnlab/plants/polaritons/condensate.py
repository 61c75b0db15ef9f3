"""Exciton-polariton condensate lattice: a pump written by an SLM, a camera image of the emission.

Physics: the driven-dissipative Gross-Pitaevskii equation coupled to an exciton reservoir (Wouters &
Carusotto, PRL 99, 140402 (2007), doi:10.1103/PhysRevLett.99.140402), integrated by :mod:`.dgpe` on a
1D or 2D grid in ps, um and meV. The pump is a lattice of Gaussian spots, one per site, as in the
polariton-condensate lattices of Berloff et al., "Realizing the classical XY Hamiltonian in polariton
simulators", Nat. Mater. 16, 1120 (2017), doi:10.1038/nmat4971, and the polariton neural networks of
Ballarini et al., "Polaritonic neuromorphic computing outperforms linear classifiers", Nano Lett. 20,
3506 (2020), doi:10.1021/acs.nanolett.0c00435 and Opala et al., "Neuromorphic computing in
Ginzburg-Landau polariton-lattice systems", Phys. Rev. Applied 11, 064029 (2019),
doi:10.1103/PhysRevApplied.11.064029. Equations, values and sources: docs/substrates/polaritons.md.

One query (vectorised over the batch):

1. pump (SLM): site s gets the amplitude a_s = max(c_s + e_s(x), 0) in units of the threshold
   P_th = gamma_c gamma_R / R, with c the trainable control (bounded, non-negative) and e(x) the input
   encoding *added* to it (the user's data written into the same pump pattern, as the polariton
   reservoir/network papers above encode their inputs in the pump): :class:`DirectEncoding` (input j on
   site j) or :class:`MaskEncoding` (a fixed random input mask, the input layer of reservoir computing).
   The pump profile is P(x) = P_th sum_s a_s exp(-4 ln 2 |x - x_s|^2 / w^2), w the spot FWHM.
2. evolution: the condensate starts from a weak uniform seed field (|psi|^2 = ``seed_density``, standing
   in for the spontaneous scattering that triggers condensation) and an empty reservoir, and evolves
   for ``duration_ps``; an absorbing layer in the ``margin_sites`` empty cells around the lattice takes
   the polaritons that flow out of the field of view.
3. camera: the emission |psi|^2 is binned over each site's unit cell (one camera pixel per site) and
   returned in units of n_ref = P_th / gamma_c (the homogeneous density at P = 2 P_th), through a
   :class:`pnnlab.plants.optics.fibre.Camera` (shot and read noise, optional full well and ADC).

Hidden truth (:class:`PolaritonMismatch`, every part off by default; :meth:`PolaritonMismatch.typical`
for lab-like values): a smooth random disorder potential (rms meV, correlation length), a pump-shape
error (Gaussian blur of the SLM image and a pump-scale error), relaxation-rate errors of R and gamma_R,
and a random part of the initial field. Camera noise is the ``camera`` argument. Randomness: the
disorder potential is drawn once from a generator the plant owns (seeded by ``seed``: device state);
the initial-field noise and the camera noise come from the per-call generator.

Twins: ``nominal_twin()`` is the design (no disorder, the pump as programmed, design rates, no noise,
a linear camera); ``true_twin()`` the hidden truth with the noise off (disorder, pump error, rate errors,
the camera's saturation and ADC with straight-through rounding). Both integrate the same scheme as the
plant, so the noiseless ideal plant equals its twins to rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ... import devices
from ..._validation import check_finite_float, check_int, check_nonnegative, check_positive, from_preset
from ...metering import CostModel
from ...twins.base import Twin
from ..base import ControlSpec, Plant
from ..capabilities import Simulated
from ..optics.fibre import Camera
from .dgpe import PolaritonParameters, evolve, kinetic_phase

__all__ = ["PumpLattice", "Evolution", "DirectEncoding", "MaskEncoding", "PolaritonMismatch",
           "PolaritonCondensate", "PolaritonTwin", "POLARITON_COST", "LAB_CAMERA", "MISMATCH_PRESETS",
           "CAMERA_PRESETS", "mismatch_from", "camera_from"]

#: ASSUMED (no single cited set-up): one SLM frame per sample at 60 Hz (liquid-crystal SLM writing the
#: pump pattern), 1 ms camera read-out per query, a 50 mW CW pump laser on during the frame.
POLARITON_COST = CostModel(seconds_per_query=1e-3, seconds_per_sample=1.0 / 60.0,
                           joules_per_query=0.0, joules_per_sample=0.050 / 60.0,
                           source="assumed: 60 Hz SLM frame per sample, 1 ms camera read-out per query, "
                                  "50 mW CW pump laser (typical lab values, not from one set-up)")

#: A camera with noise (assumed values): 1000 photo-electrons per pixel at the reference density n_ref,
#: 5 e- rms read noise, shot noise on, no saturation or ADC.
LAB_CAMERA = Camera(signal_electrons=1000.0, full_well_electrons=None, read_noise_electrons=5.0, bit_depth=None)


@dataclass(frozen=True)
class PumpLattice:
    """Geometry: ``shape`` sites ((n,) a chain, (ny, nx) a square lattice) at ``spacing_um``, one Gaussian
    pump spot of FWHM ``spot_fwhm_um`` per site, a grid of step ``grid_step_um`` (the spacing must be a
    whole number of steps), ``margin_sites`` empty cells on every side with an absorbing layer rising to
    ``absorber_rate`` (1/ps) at the edge of the grid (0 switches it off)."""

    shape: tuple[int, ...] = (8,)
    spacing_um: float = 4.0
    spot_fwhm_um: float = 4.0
    grid_step_um: float = 1.0
    margin_sites: int = 2
    absorber_rate: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.shape, tuple) or len(self.shape) not in (1, 2) or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in self.shape):
            raise ValueError(f"PumpLattice.shape must be (n,) for a chain or (ny, nx) for a square lattice of "
                             f"positive ints, got {self.shape!r}; pass e.g. shape=(8,) or shape=(4, 4).")
        check_positive("PumpLattice.spacing_um", self.spacing_um)
        check_positive("PumpLattice.spot_fwhm_um", self.spot_fwhm_um)
        check_positive("PumpLattice.grid_step_um", self.grid_step_um)
        ratio = self.spacing_um / self.grid_step_um
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(f"PumpLattice.spacing_um / grid_step_um must be a whole number (one camera pixel "
                             f"bins whole grid cells), got {self.spacing_um} / {self.grid_step_um} = {ratio:g}; "
                             f"pass e.g. grid_step_um={self.spacing_um / max(1, round(ratio)):g}.")
        check_int("PumpLattice.margin_sites", self.margin_sites, minimum=0)
        check_nonnegative("PumpLattice.absorber_rate", self.absorber_rate)

    @property
    def n_sites(self) -> int:
        return math.prod(self.shape)

    @property
    def points_per_site(self) -> int:
        return round(self.spacing_um / self.grid_step_um)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple((n + 2 * self.margin_sites) * self.points_per_site for n in self.shape)

    def _axis(self, n_cells: int, device=None) -> torch.Tensor:
        """Grid-point positions (um) along one axis; cell i spans [i, i+1) * spacing, centre (i + 1/2) spacing."""
        points = n_cells * self.points_per_site
        return (torch.arange(points, dtype=torch.float64, device=_cpu(device)) + 0.5) * self.grid_step_um

    def spots(self, device=None) -> torch.Tensor:
        """(n_sites, *grid) Gaussian spot profiles of peak 1, sites in row-major order (on ``device``, default
        CPU)."""
        m = self.margin_sites
        axes = [self._axis(n + 2 * m, device) for n in self.shape]
        centres = [(torch.arange(n, dtype=torch.float64, device=_cpu(device)) + m + 0.5) * self.spacing_um
                   for n in self.shape]
        c = -4.0 * math.log(2.0) / self.spot_fwhm_um ** 2
        profiles = [torch.exp(c * (a[None, :] - z[:, None]) ** 2) for a, z in zip(axes, centres)]  # (n_i, points_i)
        if len(profiles) == 1:
            return profiles[0]
        gy, gx = profiles
        return (gy[:, None, :, None] * gx[None, :, None, :]).reshape(self.n_sites, *self.grid_shape)

    def absorber(self, device=None) -> torch.Tensor:
        """(*grid) absorbing rate (1/ps): 0 over the lattice, rising as sin^2 across the margin."""
        out = torch.zeros(self.grid_shape, dtype=torch.float64, device=_cpu(device))
        if self.margin_sites == 0 or self.absorber_rate == 0.0:
            return out
        width = self.margin_sites * self.spacing_um
        for axis, n in enumerate(self.shape):
            x = self._axis(n + 2 * self.margin_sites, device)
            total = x[-1] + 0.5 * self.grid_step_um
            depth = torch.clamp(torch.maximum(width - x, x - (total - width)) / width, 0.0, 1.0)
            ramp = self.absorber_rate * torch.sin(0.5 * math.pi * depth) ** 2
            shape = [1] * len(self.shape)
            shape[axis] = -1
            out = torch.maximum(out, ramp.reshape(shape).expand(self.grid_shape))
        return out

    def bin_sites(self, density: torch.Tensor) -> torch.Tensor:
        """Mean of (batch, *grid) over each site's unit cell -> (batch, n_sites)."""
        m, p = self.margin_sites * self.points_per_site, self.points_per_site
        b = density.shape[0]
        if len(self.shape) == 1:
            inner = density[:, m:density.shape[1] - m]
            return inner.reshape(b, self.shape[0], p).mean(dim=2)
        inner = density[:, m:density.shape[1] - m, m:density.shape[2] - m]
        ny, nx = self.shape
        return inner.reshape(b, ny, p, nx, p).mean(dim=(2, 4)).reshape(b, ny * nx)


@dataclass(frozen=True)
class Evolution:
    """The fixed evolution before the camera frame: ``duration_ps`` in Strang steps of ``dt_ps`` (the
    duration must be a whole number of steps), from a uniform seed field of density ``seed_density``
    (um^-d)."""

    duration_ps: float = 40.0
    dt_ps: float = 0.5
    seed_density: float = 0.3

    def __post_init__(self) -> None:
        check_positive("Evolution.duration_ps", self.duration_ps)
        check_positive("Evolution.dt_ps", self.dt_ps)
        check_positive("Evolution.seed_density", self.seed_density)
        ratio = self.duration_ps / self.dt_ps
        if abs(ratio - round(ratio)) > 1e-6:
            raise ValueError(f"Evolution.duration_ps must be a whole number of steps dt_ps, got "
                             f"{self.duration_ps} / {self.dt_ps} = {ratio:g}; change dt_ps or duration_ps.")

    @property
    def steps(self) -> int:
        return round(self.duration_ps / self.dt_ps)


@dataclass(frozen=True)
class DirectEncoding:
    """Input j adds ``gain * x_j`` (units of P_th) to the pump of site j (needs in_features <= sites)."""

    gain: float = 1.0

    def __post_init__(self) -> None:
        check_finite_float("DirectEncoding.gain", self.gain)


@dataclass(frozen=True)
class MaskEncoding:
    """Site s gets ``gain * sum_j M_sj x_j`` (units of P_th), M a fixed (n_sites, in_features) mask of
    independent N(0, 1) / sqrt(in_features) entries drawn from ``seed`` (the random input layer of
    reservoir computing; part of the design, known to the twins)."""

    gain: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_finite_float("MaskEncoding.gain", self.gain)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"MaskEncoding.seed must be an int, got {self.seed!r}.")

    def mask(self, n_sites: int, in_features: int, device=None) -> torch.Tensor:
        """The (n_sites, in_features) mask, drawn on the CPU from ``seed`` (the same on every device), on
        ``device`` (default CPU)."""
        g = torch.Generator().manual_seed(self.seed)
        return devices.randn((n_sites, in_features), generator=g, device=_cpu(device),
                             dtype=torch.float64) / math.sqrt(in_features)


@dataclass(frozen=True)
class PolaritonMismatch:
    """What the sample and set-up do that the design does not know; every part off (0) by default.

    disorder_meV, disorder_correlation_um:
        rms and correlation length of a smooth random potential (white noise filtered by a Gaussian of
        that correlation length), drawn once from the plant's own generator: the sample's growth disorder.
    pump_blur_um:
        standard deviation of a Gaussian blur of the pump image (SLM pixel crosstalk, imaging optics).
    pump_scale_error:
        relative error of the pump power (laser power calibration): P -> (1 + e) P.
    r_error, gamma_r_error:
        relative errors of the reservoir rates R and gamma_R (the true sample's relaxation differs
        from the design values).
    initial_noise:
        relative amplitude of a random complex initial field added to the uniform seed on every call
        (per-call generator): the spontaneous scattering that starts condensation.
    """

    disorder_meV: float = 0.0
    disorder_correlation_um: float = 2.0
    pump_blur_um: float = 0.0
    pump_scale_error: float = 0.0
    r_error: float = 0.0
    gamma_r_error: float = 0.0
    initial_noise: float = 0.0

    def __post_init__(self) -> None:
        check_nonnegative("PolaritonMismatch.disorder_meV", self.disorder_meV)
        check_positive("PolaritonMismatch.disorder_correlation_um", self.disorder_correlation_um)
        check_nonnegative("PolaritonMismatch.pump_blur_um", self.pump_blur_um)
        for name in ("pump_scale_error", "r_error", "gamma_r_error"):
            value = check_finite_float(f"PolaritonMismatch.{name}", getattr(self, name))
            if value <= -1.0:
                raise ValueError(f"PolaritonMismatch.{name} is a relative error and must be > -1 (the quantity "
                                 f"is multiplied by 1 + error), got {value!r}; typical values are a few percent.")
        check_nonnegative("PolaritonMismatch.initial_noise", self.initial_noise)

    @classmethod
    def typical(cls) -> "PolaritonMismatch":
        """ASSUMED lab-like values (not from one sample): 0.05 meV rms disorder with a 2 um correlation
        length (GaAs microcavity disorder is of the order of tens to hundreds of ueV), 0.7 um pump blur,
        +8 % pump power, R 15 % higher and gamma_R 10 % lower than designed, 5 % initial-field noise."""
        return cls(disorder_meV=0.05, disorder_correlation_um=2.0, pump_blur_um=0.7, pump_scale_error=0.08,
                   r_error=0.15, gamma_r_error=-0.10, initial_noise=0.05)


#: preset names an experiment file (or ``pnnlab serve --plant-args``) can give for ``mismatch`` and ``camera``:
#: explicit maps from the name to the object, the way the other plants name their hidden truths
MISMATCH_PRESETS = {"typical": PolaritonMismatch.typical, "ideal": PolaritonMismatch}
CAMERA_PRESETS = {"lab": lambda: LAB_CAMERA, "ideal": Camera.ideal}
PARAMS_PRESETS = {"gaas": PolaritonParameters.gaas}


def mismatch_from(value) -> PolaritonMismatch:
    """:data:`MISMATCH_PRESETS`: ``"typical"`` is :meth:`PolaritonMismatch.typical`, ``"ideal"`` no error."""
    return from_preset("mismatch", value, MISMATCH_PRESETS, PolaritonMismatch,
                       "PolaritonMismatch.typical() or 'typical'", tables=True)


def camera_from(value) -> Camera:
    """:data:`CAMERA_PRESETS`: ``"lab"`` is :data:`LAB_CAMERA` (shot and read noise), ``"ideal"`` noiseless."""
    return from_preset("camera", value, CAMERA_PRESETS, Camera, "LAB_CAMERA or 'lab'", tables=True)


def _cpu(device) -> torch.device:
    """``device``, or the CPU when None (design constants are built where they are asked for)."""
    return torch.device("cpu") if device is None else torch.device(device)


def _gaussian_filter(shape: tuple[int, ...], step_um: float, sigma_um: float, device=None) -> torch.Tensor:
    """FFT transfer function of a unit-area Gaussian blur of standard deviation sigma (periodic grid)."""
    ks = [2 * math.pi * torch.fft.fftfreq(n, d=step_um, dtype=torch.float64, device=_cpu(device)) for n in shape]
    k2 = ks[0] ** 2 if len(ks) == 1 else ks[0][:, None] ** 2 + ks[1][None, :] ** 2
    return torch.exp(-0.5 * sigma_um ** 2 * k2)


def disorder_potential(lattice: PumpLattice, rms_meV: float, correlation_um: float,
                       generator: torch.Generator) -> torch.Tensor:
    """Smooth random potential (meV) on the lattice's grid: white noise filtered by exp(-k^2 l^2 / 4)
    (a Gaussian correlation exp(-r^2 / 2 l^2) of the potential), shifted to zero mean and scaled to rms. Drawn
    and returned on the generator's device (device state: the same sample on every device)."""
    shape = lattice.grid_shape
    white = devices.randn(shape, generator=generator, device=generator.device, dtype=torch.float64)
    dims = tuple(range(len(shape)))
    ks = [2 * math.pi * torch.fft.fftfreq(n, d=lattice.grid_step_um, dtype=torch.float64, device=generator.device)
          for n in shape]
    k2 = ks[0] ** 2 if len(ks) == 1 else ks[0][:, None] ** 2 + ks[1][None, :] ** 2
    smooth = torch.fft.ifftn(torch.fft.fftn(white, dim=dims) * torch.exp(-0.25 * correlation_um ** 2 * k2),
                             dim=dims).real
    smooth = smooth - smooth.mean()
    return rms_meV * smooth / smooth.square().mean().sqrt()


class PolaritonTwin(Twin):
    """Differentiable condensate model: pump -> (optional blur and scale) -> dGPE -> binned |psi|^2
    (-> the camera's deterministic response, when ``camera`` is given). Built by the plant's
    ``nominal_twin()`` (design) and ``true_twin()`` (hidden truth, noise off)."""

    def __init__(self, *, lattice: PumpLattice, evolution: Evolution, params: PolaritonParameters,
                 encoding: DirectEncoding | MaskEncoding, in_features: int,
                 potential_meV: torch.Tensor | None = None, pump_blur_um: float = 0.0, pump_scale: float = 1.0,
                 camera: Camera | None = None, device: torch.device | str | None = None) -> None:
        super().__init__(in_features=in_features, out_features=lattice.n_sites)
        self.lattice, self.evolution, self.params, self.encoding = lattice, evolution, params, encoding
        self.camera = camera
        self.pump_scale = float(pump_scale)
        self.dims = len(lattice.shape)
        self.reference_density = params.threshold / params.gamma_c
        # design constants as buffers, built on ``device`` (model.to(device) moves them with the twin)
        device = _cpu(device)
        self.register_buffer("spots", lattice.spots(device))
        self.register_buffer("loss", params.gamma_c + lattice.absorber(device))
        self.register_buffer("kinetic", kinetic_phase(lattice.grid_shape, lattice.grid_step_um, params,
                                                      evolution.dt_ps, dtype=torch.complex128, device=device))
        self.register_buffer("potential", None if potential_meV is None else potential_meV.to(device).clone())
        self.register_buffer("blur", None if not pump_blur_um else
                             _gaussian_filter(lattice.grid_shape, lattice.grid_step_um, pump_blur_um, device))
        self.register_buffer("mask", encoding.mask(lattice.n_sites, in_features, device)
                             if isinstance(encoding, MaskEncoding) else None)

    def site_amplitudes(self, x: torch.Tensor, pump: torch.Tensor) -> torch.Tensor:
        """a_s = max(c_s + e_s(x), 0) in units of P_th, (batch, n_sites)."""
        if self.mask is not None:
            drive = self.encoding.gain * (x @ self.mask.to(x.dtype).T)
        else:
            drive = self.encoding.gain * x
            if x.shape[1] < self.lattice.n_sites:
                drive = torch.cat([drive, drive.new_zeros(x.shape[0], self.lattice.n_sites - x.shape[1])], dim=1)
        return torch.clamp_min(pump.to(x.dtype) + drive, 0.0)

    def pump_profile(self, x: torch.Tensor, pump: torch.Tensor) -> torch.Tensor:
        """P(x) (batch, *grid) in excitons per um^d per ps, as it reaches the sample."""
        amplitudes = self.site_amplitudes(x, pump)
        spots = self.spots.to(x.dtype)
        profile = (amplitudes @ spots.reshape(spots.shape[0], -1)).reshape(x.shape[0], *self.lattice.grid_shape)
        profile = self.params.threshold * profile
        if self.blur is not None:
            dims = tuple(range(1, 1 + self.dims))
            profile = torch.fft.ifftn(torch.fft.fftn(profile, dim=dims) * self.blur.to(x.dtype), dim=dims).real
            profile = profile.clamp_min(0.0)
        if self.pump_scale != 1.0:
            profile = self.pump_scale * profile
        return profile

    def emission(self, x: torch.Tensor, controls, *, initial_noise: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Binned |psi|^2 per site in units of n_ref = P_th / gamma_c, before the camera."""
        pump = self.pump_profile(x, controls["pump"])
        cdtype = torch.complex64 if x.dtype == torch.float32 else torch.complex128
        grid = (x.shape[0], *self.lattice.grid_shape)
        amplitude = math.sqrt(self.evolution.seed_density)
        psi = torch.full(grid, amplitude, dtype=cdtype, device=x.device)
        if initial_noise:
            noise = devices.randn(grid, generator=generator, device=x.device, dtype=cdtype)  # unit complex variance
            psi = psi + (initial_noise * amplitude) * noise
        n_r = torch.zeros(grid, dtype=x.dtype, device=x.device)
        potential = None if self.potential is None else self.potential.to(x.dtype)
        psi, _ = evolve(psi, n_r, pump=pump, params=self.params, kinetic=self.kinetic.to(cdtype),
                        dt_ps=self.evolution.dt_ps, steps=self.evolution.steps, potential_meV=potential,
                        loss=self.loss.to(x.dtype), dims=self.dims)
        density = psi.real.square() + psi.imag.square()
        return self.lattice.bin_sites(density) / self.reference_density

    def forward(self, x, controls):
        y = self.emission(x, controls)
        return y if self.camera is None else self.camera.response(y)


class PolaritonCondensate(Plant, Simulated):
    """A lattice of exciton-polariton condensates driven by an SLM-shaped pump (see the module docstring).

    Parameters
    ----------
    in_features:
        input features added to the pump (DirectEncoding: at most the number of sites).
    lattice:
        :class:`PumpLattice` (sites, spacing, spot size, grid, absorbing margin), or just its shape
        (``(8,)``, ``(4, 4)``) for the default geometry, or a table of its arguments (experiment files);
        ``out_features`` = its number of sites (one camera pixel per site).
    evolution:
        :class:`Evolution` (duration, step, seed density), or a table of its arguments.
    params:
        :class:`~.dgpe.PolaritonParameters` design values (``PolaritonParameters.gaas()``, or ``"gaas"``).
    encoding:
        :class:`DirectEncoding` or :class:`MaskEncoding` (how the data enter the pump).
    pump_max:
        upper bound of the trainable pump amplitudes, units of P_th (lower bound 0).
    mismatch:
        :class:`PolaritonMismatch` hidden truth (off by default; ``PolaritonMismatch.typical()``), or a
        preset name (:data:`MISMATCH_PRESETS`: ``"typical"``, ``"ideal"``) or a table of its arguments.
    camera:
        :class:`~pnnlab.plants.optics.fibre.Camera`; ``Camera.ideal()`` (default) has no noise,
        :data:`LAB_CAMERA` shot and read noise; or a preset name (:data:`CAMERA_PRESETS`: ``"lab"``,
        ``"ideal"``) or a table of its arguments.
    seed:
        seeds the plant's noise generator and, separately, the disorder draw.
    """

    summary = ("exciton-polariton condensate lattice: dGPE + reservoir (Wouters-Carusotto), SLM pump "
               "(trainable + input), camera; hidden disorder, pump error, rate errors, camera noise")

    def __init__(self, *, in_features: int = 8, lattice: PumpLattice | tuple[int, ...] | dict = PumpLattice(),
                 evolution: Evolution | dict = Evolution(), params: PolaritonParameters | str = PolaritonParameters(),
                 encoding: DirectEncoding | MaskEncoding = DirectEncoding(), pump_max: float = 3.0,
                 mismatch: PolaritonMismatch | str = PolaritonMismatch(), camera: Camera | str = Camera.ideal(),
                 cost: CostModel = POLARITON_COST, seed: int = 0) -> None:
        in_features = check_int("in_features", in_features)
        if isinstance(lattice, (tuple, list)):  # shorthand for experiment files: the shape, default geometry
            lattice = PumpLattice(shape=tuple(lattice))
        if isinstance(lattice, dict):  # a TOML table of PumpLattice arguments
            lattice = from_preset("lattice", {**lattice, "shape": tuple(lattice.get("shape", (8,)))}, {},
                                  PumpLattice, "PumpLattice(shape=(8,))", tables=True)
        if isinstance(evolution, dict):
            evolution = from_preset("evolution", evolution, {}, Evolution, "Evolution(duration_ps=40.0)", tables=True)
        if isinstance(params, (str, dict)):
            params = from_preset("params", params, PARAMS_PRESETS, PolaritonParameters, "'gaas'", tables=True)
        mismatch, camera = mismatch_from(mismatch), camera_from(camera)
        for name, value, kind in (("lattice", lattice, PumpLattice), ("evolution", evolution, Evolution),
                                  ("params", params, PolaritonParameters), ("mismatch", mismatch, PolaritonMismatch),
                                  ("camera", camera, Camera), ("cost", cost, CostModel)):
            if not isinstance(value, kind):
                raise TypeError(f"{name} must be a pnnlab {kind.__name__}(...), got {type(value).__name__}.")
        if not isinstance(encoding, (DirectEncoding, MaskEncoding)):
            raise TypeError(f"encoding must be DirectEncoding(...) or MaskEncoding(...), got "
                            f"{type(encoding).__name__}.")
        if isinstance(encoding, DirectEncoding) and in_features > lattice.n_sites:
            raise ValueError(f"DirectEncoding puts input j on site j, but in_features={in_features} exceeds the "
                             f"lattice's {lattice.n_sites} sites; pass a larger lattice or MaskEncoding(...).")
        self.pump_max = check_positive("pump_max", pump_max)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}.")
        super().__init__(in_features=in_features, out_features=lattice.n_sites, cost=cost, seed=seed)
        self.lattice, self.evolution, self.params, self.encoding = lattice, evolution, params, encoding
        self.mismatch, self.camera = mismatch, camera
        # hidden truth, drawn from a generator the sample owns (device state, not per-call noise)
        potential = None
        if mismatch.disorder_meV:
            sample = torch.Generator().manual_seed(104_729 * (seed + 1) + lattice.n_sites)
            potential = disorder_potential(lattice, mismatch.disorder_meV, mismatch.disorder_correlation_um, sample)
        self._potential = potential
        self._true_params = PolaritonParameters(
            mass_ratio=params.mass_ratio, gamma_c=params.gamma_c, gamma_r=params.gamma_r * (1 + mismatch.gamma_r_error),
            r=params.r * (1 + mismatch.r_error), g_c=params.g_c, g_r=params.g_r)
        self._truth = self._build_true_twin()

    def _build_true_twin(self) -> PolaritonTwin:
        return PolaritonTwin(lattice=self.lattice, evolution=self.evolution, params=self._true_params,
                             encoding=self.encoding, in_features=self.in_features, potential_meV=self._potential,
                             pump_blur_um=self.mismatch.pump_blur_um, pump_scale=1.0 + self.mismatch.pump_scale_error,
                             camera=self.camera, device=self.device)

    # ---- plant interface ------------------------------------------------------------------
    def control_specs(self):
        return {"pump": ControlSpec((self.lattice.n_sites,), 0.0, self.pump_max, unit="P_th",
                                    description="trainable pump amplitude of each lattice site (SLM), "
                                                "units of the condensation threshold")}

    def initial_controls(self, generator=None):
        """Pump amplitudes uniform in [1.2, 1.8] P_th: every site above the homogeneous threshold."""
        gen = generator if generator is not None else self._generator
        return {"pump": (1.2 + 0.6 * torch.rand(self.lattice.n_sites, generator=gen)).clamp_max(self.pump_max)}

    def example_inputs(self, batch, generator=None):
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        return torch.rand(batch, self.in_features, generator=gen)

    def _measure(self, x, controls, generator):
        y = self._truth.emission(x, controls, initial_noise=self.mismatch.initial_noise, generator=generator)
        return self.camera.measure(y, generator).to(x.dtype)

    def nominal_twin(self) -> PolaritonTwin:
        """The design: no disorder, the pump as programmed, the design rates, no noise, a linear camera."""
        return PolaritonTwin(lattice=self.lattice, evolution=self.evolution, params=self.params,
                             encoding=self.encoding, in_features=self.in_features, device=self.device)

    def true_twin(self) -> PolaritonTwin:
        """The hidden truth with the noise off: disorder, pump blur and scale, rate errors, and the camera's
        saturation/ADC (if any). Diagnostics and the ideal bound only."""
        return self._build_true_twin()

    def describe(self):
        return (f"PolaritonCondensate(in_features={self.in_features}, sites={self.lattice.shape}, "
                f"grid={self.lattice.grid_shape}, steps={self.evolution.steps}x{self.evolution.dt_ps} ps)")
