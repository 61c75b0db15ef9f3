"""Scalar wave-optics engine: free-space propagation of sampled complex fields, in metres.

Band-limited angular spectrum (the default). A field ``u(x, y)`` sampled on an ``H x W`` grid of pitch
``dx`` (metres) propagates a distance ``z`` through a homogeneous medium of wavelength ``lambda`` by

    U(fx, fy) = FFT[u],   u_z = IFFT[ U H ],   H = exp(i 2 pi z sqrt(1/lambda^2 - fx^2 - fy^2))

(Goodman, *Introduction to Fourier Optics*, 3rd ed., eq. 3-74; evanescent components, where the root is
imaginary, are set to zero, so propagation is lossless for every propagating component). Sampling the
transfer function ``H`` on the frequency grid of spacing ``du = 1 / (Np dx)`` aliases its impulse response
once the local chirp frequency of ``H`` exceeds what the grid resolves; Matsushima & Shimobaba, "Band-limited
angular spectrum method for numerical simulation of free-space propagation in far and near fields",
Opt. Express 17, 19662 (2009), doi:10.1364/OE.17.019662, eq. (13) therefore keep only

    |fx| < u_limit = 1 / (lambda sqrt((2 du z)^2 + 1))        (and the same for fy)

which is what :class:`AngularSpectrum` does (``band_limit=True``). The band limit removes energy only
from components that would have left a window of twice the aperture anyway; :meth:`AngularSpectrum.
passes_band` says whether a given field loses any.

Zero padding. The product ``U H`` is a *circular* convolution on the FFT grid; light that leaves one edge
of the window re-enters at the opposite one (wrap-around). The engine transforms on a padded grid of
``Np = H + pad`` rows (the ``pad`` zero rows are appended after the data, which for a circular
convolution is equivalent to centring it) and crops back to ``H x W``: for an output pixel ``n`` and an
input pixel ``m`` both inside the window, ``n - m`` lies in ``(-H, H)``, so with ``Np >= 2H - 1`` no two
distinct offsets share a bin and the crop equals the *linear* convolution. The default ``pad = H`` (aperture
doubling, as in Matsushima & Shimobaba 2009, section 2) satisfies this for every distance, because the
band limit makes the sampled kernel a faithful band-limited version of the true impulse response on the
doubled window. Light that physically leaves the window is lost (the window is an aperture), which is
what a finite optical element does. ``pad=0`` switches padding off (tests show the wrap-around it causes).

Fresnel transfer function (``Fresnel``): ``H = exp(i k z) exp(-i pi lambda z (fx^2 + fy^2))``, the
paraxial expansion of the root above (Goodman eq. 4-21). Valid while the neglected quartic term of the
expansion is small over the spectrum of the field: the phase error is ``pi lambda^3 z f_max^4 / 4``
(``f_max`` the largest spatial frequency carried), see :func:`fresnel_phase_error`; Goodman's sufficient
(overly strict) space-domain condition is ``z^3 >> pi / (4 lambda) max[(x - xi)^2 + (y - eta)^2]^2``
(eq. 4-18). The sampled Fresnel transfer function is itself free of aliasing when ``dx >= lambda z / L``
(``L = Np dx``; Voelz, *Computational Fourier Optics*, SPIE 2011, sec. 5.1), i.e. for short distances;
beyond it the same band limit is applied.

Lenses are thin phase masks: :func:`thin_lens` returns ``exp(-i k (x^2 + y^2) / (2 f))``. The lens Fourier
transform for 4f systems (physical coordinate scaling ``x_f = lambda f fx``) and Zernike aberrations live
in :mod:`pnnlab.plants.optics.fourier` (helper D's module); this engine does not duplicate them.

Engine properties: fields are tensors ``(..., H, W)`` (any leading batch dimensions), complex64 or
complex128; the transfer function is computed once in float64 per (grid, pitch, wavelength, distance,
method, padding, dtype, device) and cached (``AngularSpectrum.transfer``), then cast to the field's dtype,
so complex64 propagation differs from the complex128 one only by FFT rounding (about 1e-7 relative;
tested <= 1e-5). The transform is ``torch.fft.fft2(u, s=(Hp, Wp))`` (padding inside the FFT call), one
complex multiply, ``ifft2`` and a crop: the same operations as a bare angular-spectrum propagation
(benchmarks/bench_optics_speed.py measures it against one). Differentiable (autograd through the FFT).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from ..._validation import check_finite_float, check_int, check_positive

__all__ = ["AngularSpectrum", "Fresnel", "Propagation", "fresnel_phase_error", "grid_coordinates",
           "thin_lens", "band_limit_frequency", "gaussian_beam"]


def band_limit_frequency(*, wavelength: float, distance: float, padded_size: int, pitch: float) -> float:
    """Matsushima & Shimobaba (2009) eq. (13): ``u_limit = 1 / (lambda sqrt((2 du z)^2 + 1))`` with the
    frequency spacing ``du = 1 / (padded_size * pitch)`` (cycles per metre)."""
    du = 1.0 / (padded_size * pitch)
    return 1.0 / (wavelength * math.sqrt((2.0 * du * abs(distance)) ** 2 + 1.0))


def fresnel_phase_error(*, wavelength: float, distance: float, max_frequency: float) -> float:
    """Largest phase error (radians) of the Fresnel transfer function against the exact angular spectrum
    for spatial frequencies up to ``max_frequency`` (cycles per metre): the quartic term of the expansion
    of ``2 pi z sqrt(1/lambda^2 - f^2)``, ``pi lambda^3 z f^4 / 4``. Fresnel is accurate where this is << 1."""
    return math.pi * wavelength ** 3 * abs(distance) * max_frequency ** 4 / 4.0


def grid_coordinates(shape: tuple[int, int], pitch: float, *, dtype=torch.float64, device=None):
    """Centred pixel coordinates (metres) of an ``H x W`` grid: ``(y, x)`` each ``(H, W)``; the centre of
    pixel ``(i, j)`` is at ``((i - (H - 1)/2) dx, (j - (W - 1)/2) dx)``."""
    h, w = shape
    ys = (torch.arange(h, dtype=dtype, device=device) - (h - 1) / 2.0) * pitch
    xs = (torch.arange(w, dtype=dtype, device=device) - (w - 1) / 2.0) * pitch
    return torch.meshgrid(ys, xs, indexing="ij")


def thin_lens(shape: tuple[int, int], *, pitch: float, wavelength: float, focal_length: float,
              dtype: torch.dtype = torch.complex64, device=None) -> torch.Tensor:
    """Transmission ``exp(-i k (x^2 + y^2) / (2 f))`` of a thin lens of focal length ``f`` (metres; negative
    for a diverging lens) centred on the grid (Goodman eq. 5-10, paraxial, aperture = the grid). Sampling
    is alias-free where the local frequency ``r_max / (lambda f)`` stays below ``1 / (2 dx)``."""
    check_positive("pitch", pitch)
    check_positive("wavelength", wavelength)
    f = check_finite_float("focal_length", focal_length)
    if f == 0.0:
        raise ValueError("focal_length must be non-zero (metres; negative for a diverging lens), got 0.")
    y, x = grid_coordinates(shape, pitch, device=device)
    k = 2.0 * math.pi / wavelength
    return torch.polar(torch.ones_like(x), -k * (x ** 2 + y ** 2) / (2.0 * f)).to(dtype)


def gaussian_beam(shape: tuple[int, int], *, pitch: float, wavelength: float, waist: float, z: float,
                  center: tuple[float, float] = (0.0, 0.0), dtype: torch.dtype = torch.complex128,
                  device=None) -> torch.Tensor:
    """Analytic paraxial TEM00 beam (Siegman, *Lasers*, eq. 17.5) at distance ``z`` from its waist ``w0``:
    ``(w0 / w) exp(-r^2 / w^2) exp(i (k z + k r^2 / (2 R) - atan(z / zR)))`` with ``zR = pi w0^2 / lambda``,
    ``w = w0 sqrt(1 + (z/zR)^2)``, ``R = z (1 + (zR/z)^2)``: the carrier ``exp(i k z)`` of the angular
    spectrum convention ``exp(+i kz z)`` is included, as is the Gouy phase. ``center`` = (y0, x0) metres."""
    y, x = grid_coordinates(shape, pitch, device=device)
    r2 = (x - center[1]) ** 2 + (y - center[0]) ** 2
    k = 2.0 * math.pi / wavelength
    zr = math.pi * waist ** 2 / wavelength
    w = waist * math.sqrt(1.0 + (z / zr) ** 2)
    inv_r = z / (z ** 2 + zr ** 2)  # 1 / R, zero at the waist
    phase = k * z + k * r2 * inv_r / 2.0 - math.atan2(z, zr)
    return torch.polar((waist / w) * torch.exp(-r2 / w ** 2), phase).to(dtype)


@dataclass(frozen=True)
class Propagation:
    """Free-space propagation over ``distance`` metres on an ``shape`` grid of pitch ``pitch`` (metres)
    at ``wavelength`` (metres, in the medium). ``pad``: zero rows/columns added before the FFT (``None``
    = the grid size, i.e. a 2x window, enough to avoid wrap-around: see the module docstring; ``0`` = no
    padding). ``band_limit``: apply Matsushima & Shimobaba's band limit. Subclasses give the transfer
    function. Call it on a field ``(..., H, W)``: ``prop(u)``."""

    shape: tuple[int, int]
    pitch: float
    wavelength: float
    distance: float
    pad: int | tuple[int, int] | None = None
    band_limit: bool = True
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    method: ClassVar[str] = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.shape, tuple) and len(self.shape) == 2):
            raise ValueError(f"shape must be a tuple (H, W) of grid sizes, got {self.shape!r}.")
        object.__setattr__(self, "shape", (check_int("shape[0]", self.shape[0]), check_int("shape[1]", self.shape[1])))
        check_positive("pitch", self.pitch)
        check_positive("wavelength", self.wavelength)
        check_finite_float("distance", self.distance)
        if self.pitch < self.wavelength / 2.0 * 0.999999:
            raise ValueError(f"pitch={self.pitch} m is below half the wavelength ({self.wavelength / 2} m): the grid "
                             f"samples frequencies no propagating wave has; use pitch >= wavelength / 2.")
        pad = self.pad
        if pad is None:
            pad = self.shape
        elif isinstance(pad, int) and not isinstance(pad, bool):
            pad = (pad, pad)
        if not (isinstance(pad, tuple) and len(pad) == 2 and all(isinstance(p, int) and not isinstance(p, bool)
                                                               and p >= 0 for p in pad)):
            raise ValueError(f"pad must be None (2x window), a non-negative int or a pair of them, got {self.pad!r}.")
        object.__setattr__(self, "pad", pad)
        if not isinstance(self.band_limit, bool):
            raise TypeError(f"band_limit must be True or False, got {self.band_limit!r}.")

    @property
    def padded_shape(self) -> tuple[int, int]:
        return (self.shape[0] + self.pad[0], self.shape[1] + self.pad[1])

    def frequencies(self, device=None):
        """Frequency grids (fy, fx) of the padded FFT (cycles per metre, FFT order), float64, on ``device``
        (None: the CPU)."""
        device = torch.device("cpu") if device is None else device
        hp, wp = self.padded_shape
        fy = torch.fft.fftfreq(hp, d=self.pitch, dtype=torch.float64, device=device)
        fx = torch.fft.fftfreq(wp, d=self.pitch, dtype=torch.float64, device=device)
        return torch.meshgrid(fy, fx, indexing="ij")

    def _band_mask(self, fy, fx):
        if not self.band_limit or self.distance == 0.0:
            return None
        hp, wp = self.padded_shape
        uy = band_limit_frequency(wavelength=self.wavelength, distance=self.distance, padded_size=hp, pitch=self.pitch)
        ux = band_limit_frequency(wavelength=self.wavelength, distance=self.distance, padded_size=wp, pitch=self.pitch)
        return (fx.abs() < ux) & (fy.abs() < uy)

    def _transfer64(self, fy, fx) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def transfer(self, dtype: torch.dtype = torch.complex64, device=None) -> torch.Tensor:
        """The (cached) transfer function on the padded grid, FFT order, in ``dtype``, on ``device`` (None:
        the CPU). Cached per (dtype, device): computed once per device in float64 on that device."""
        device = torch.device("cpu") if device is None else torch.device(device)
        key = (dtype, device)
        cached = self._cache.get(key)
        if cached is None:
            fy, fx = self.frequencies(device)
            h = self._transfer64(fy, fx)
            mask = self._band_mask(fy, fx)
            if mask is not None:
                h = h * mask
            cached = h.to(dtype)
            self._cache[key] = cached
        return cached

    def passes_band(self, u: torch.Tensor, *, tolerance: float = 1e-10) -> bool:
        """Whether the band limit (and the evanescent cut) keeps all but ``tolerance`` of ``u``'s power."""
        spectrum = torch.fft.fft2(u.to(torch.complex128), s=self.padded_shape)
        kept = self.transfer(torch.complex128, u.device).abs() > 0
        power = spectrum.abs().square()
        return float(power[..., ~kept].sum()) <= tolerance * float(power.sum())

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        if not isinstance(u, torch.Tensor) or not torch.is_complex(u):
            raise TypeError(f"the field must be a complex tensor (..., {self.shape[0]}, {self.shape[1]}), got "
                            f"{getattr(u, 'dtype', type(u).__name__)}.")
        return self.apply(u, self.transfer(u.dtype, u.device))

    def apply(self, u: torch.Tensor, transfer: torch.Tensor) -> torch.Tensor:
        """Propagate ``u`` (..., H, W) with a given transfer function on the padded grid (e.g. this one
        times a phase ramp): pad inside the FFT, multiply, inverse FFT, crop."""
        if not torch.is_complex(u):
            raise TypeError(f"the field must be a complex tensor (..., {self.shape[0]}, {self.shape[1]}), got {u.dtype}.")
        if tuple(u.shape[-2:]) != self.shape:
            raise ValueError(f"the field's last two dimensions must be {self.shape}, got {tuple(u.shape)}.")
        h, w = self.shape
        if self.pad == (0, 0):
            return torch.fft.ifft2(torch.fft.fft2(u) * transfer)
        out = torch.fft.ifft2(torch.fft.fft2(u, s=self.padded_shape) * transfer)
        return out[..., :h, :w]


@dataclass(frozen=True)
class AngularSpectrum(Propagation):
    """Exact scalar propagation (Rayleigh-Sommerfeld equivalent): the band-limited angular spectrum of
    Matsushima & Shimobaba (2009); evanescent waves dropped. See the module docstring."""

    method: ClassVar[str] = "angular spectrum"

    def _transfer64(self, fy, fx):
        arg = 1.0 / self.wavelength ** 2 - fx ** 2 - fy ** 2
        propagating = arg > 0
        kz = 2.0 * math.pi * torch.sqrt(arg.clamp_min(0.0))
        h = torch.polar(propagating.to(torch.float64), kz * self.distance)
        return h


@dataclass(frozen=True)
class Fresnel(Propagation):
    """Paraxial (Fresnel) transfer function ``exp(i k z) exp(-i pi lambda z (fx^2 + fy^2))`` (Goodman eq.
    4-21); valid where :func:`fresnel_phase_error` << 1 for the field's spectrum. The band limit (on by
    default) also removes the aliased chirp at long distances."""

    method: ClassVar[str] = "Fresnel"

    def _transfer64(self, fy, fx):
        k = 2.0 * math.pi / self.wavelength
        phase = k * self.distance - math.pi * self.wavelength * self.distance * (fx ** 2 + fy ** 2)
        return torch.polar(torch.ones_like(fx), phase)


def shift_ramp(prop: Propagation, dy: float, dx: float, device=None) -> torch.Tensor:
    """Phase ramp ``exp(-i 2 pi (fy dy + fx dx))`` on ``prop``'s padded frequency grid (complex128): times a
    spectrum it shifts the field by (+dy, +dx) metres (Fourier shift theorem; exact and sub-pixel for a
    band-limited field, circular on the padded window)."""
    fy, fx = prop.frequencies(device)
    return torch.polar(torch.ones_like(fx), -2.0 * math.pi * (fy * dy + fx * dx))
