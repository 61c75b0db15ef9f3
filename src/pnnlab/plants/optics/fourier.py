"""The lens Fourier transform, 4f imaging and Zernike pupil aberrations, in physical units.

Lens Fourier transform. A field ``u(xi, eta)`` in the front focal plane of a thin lens of focal length
``f`` gives in the back focal plane (Goodman, *Introduction to Fourier Optics*, 3rd ed., eq. 5-19)

    U_f(x, y) = 1 / (i lambda f) \\iint u(xi, eta) exp(-i 2 pi (x xi + y eta) / (lambda f)) d xi d eta,

the Fourier transform of ``u`` at the spatial frequency ``(fx, fy) = (x, y) / (lambda f)``. Sampled on an
``N x N`` grid of pitch ``dx`` the integral is a DFT whose frequency spacing ``1 / (N dx)`` puts the
Fourier-plane samples at the pitch

    du = lambda f / (N dx)                                    (:func:`fourier_pitch`)

and the sampled transform is ``U = -i (dx / du) F[u]`` with ``F`` the *centred, unitary* 2-D DFT
(:func:`centred_fft2`: ``fftshift(fft2(ifftshift(u), norm="ortho"))``; the optical axis is pixel
``(N // 2, N // 2)``, the fftshift convention). With this prefactor power is conserved in physical units,
``sum |U|^2 du^2 = sum |u|^2 dx^2`` (Parseval), which is what :class:`LensFourierTransform` computes.
Padding: the field can be zero padded to a larger grid first (``padded_shape``), which refines ``du``
(a finer sampling of the same continuous spectrum) and, in a 4f system, turns the circular convolution
of the DFT into a linear one (see :mod:`pnnlab.plants.optics.correlator`).

4f imaging. Two lenses of the same focal length, 2 f apart with the Fourier plane between them, apply the
transform twice: ``F[F[u]] (n) = u(-n)`` (on the centred grid, index ``n -> (2 (N // 2) - n) mod N``), so
the back focal plane of the second lens holds the input *inverted* (rotated by 180 degrees about the
axis) and multiplied by ``(-i)^2 = -1`` (Goodman sec. 8.3, the 4f / VanderLugt correlator geometry).
:func:`rotate_180` undoes the inversion (a camera read out in the rotated frame).

Aberrations. The coherent transfer function of the system is the pupil in the Fourier plane
(Goodman sec. 6.4, the generalised pupil function ``P exp(i k W)``). Aberrations are written as a phase
``sum_j a_j Z_j(rho, theta)`` in radians with Noll's normalised Zernike polynomials (Noll, "Zernike
polynomials and atmospheric turbulence", J. Opt. Soc. Am. 66, 207 (1976), doi:10.1364/JOSA.66.000207:
``Z_j = sqrt(n + 1) R_n^m(rho) sqrt(2) cos(m theta)`` for even j, ``... sin(m theta)`` for odd j, and
``sqrt(n + 1) R_n^0`` for m = 0; every ``Z_j`` has rms 1 over the unit disc, so ``a_j`` is the rms phase
of that term). The normalising radius ``rho = 1`` is the edge of the Fourier window along an axis,
``N du / 2``, i.e. the spatial frequency ``1 / (2 dx)`` (the corners reach rho = sqrt 2; the polynomials
are evaluated there too). Defocus (``j = 4``, ``sqrt 3 (2 rho^2 - 1)``) is what an axial error ``dz`` of
the output plane produces: the paraxial transfer function ``exp(-i pi lambda dz (fx^2 + fy^2))``
(Goodman eq. 4-21) is, up to piston, ``a_4 Z_4`` with ``a_4 = -pi lambda dz / (8 sqrt 3 dx^2)``
(:func:`defocus_coefficient`).

Free-space propagation (angular spectrum, Fresnel) lives in :mod:`pnnlab.plants.optics.propagation`;
this module does not duplicate it.

Simplifications: scalar, paraxial, thin lenses with apertures larger than the window (no vignetting),
monochromatic; the aberrations of both lenses are lumped into one pupil phase in the Fourier plane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import torch

from ..._validation import check_finite_float, check_int, check_positive

__all__ = ["LensFourierTransform", "Zernike", "centred_fft2", "centred_ifft2", "centre_pad", "centre_crop",
           "defocus_coefficient", "fourier_pitch", "noll_to_nm", "rotate_180", "zernike_polynomial"]


def fourier_pitch(*, size: int, pitch: float, wavelength: float, focal_length: float) -> float:
    """Sample pitch ``lambda f / (N dx)`` (metres) of the back focal plane for an ``N``-sample input of
    pitch ``dx`` (Goodman eq. 5-19 sampled by a DFT)."""
    check_int("size", size)
    return check_positive("wavelength", wavelength) * check_positive("focal_length", focal_length) / (
        size * check_positive("pitch", pitch))


def centred_fft2(u: torch.Tensor) -> torch.Tensor:
    """Unitary 2-D DFT over the last two axes with the optical axis at pixel ``(N // 2, M // 2)``."""
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(u, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))


def centred_ifft2(u: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`centred_fft2`."""
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(u, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))


def rotate_180(u: torch.Tensor) -> torch.Tensor:
    """Rotation by 180 degrees about the optical axis of the centred grid: ``n -> (2 (N // 2) - n) mod N``
    on each of the last two axes (what a 4f system does to its input)."""
    h, w = u.shape[-2:]
    return torch.roll(torch.flip(u, dims=(-2, -1)), shifts=(1 - h % 2, 1 - w % 2), dims=(-2, -1))


def centre_pad(u: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Zero pad the last two axes to ``shape``, keeping the optical axis pixel (``N // 2``) on the axis."""
    h, w = u.shape[-2:]
    ph, pw = shape
    if ph < h or pw < w:
        raise ValueError(f"centre_pad: target shape {shape} is smaller than the field {(h, w)}; pass a shape "
                         f">= {(h, w)} (use centre_crop to cut).")
    top, left = ph // 2 - h // 2, pw // 2 - w // 2
    return torch.nn.functional.pad(u, (left, pw - w - left, top, ph - h - top))


def centre_crop(u: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """The ``shape`` window around the optical axis (inverse of :func:`centre_pad`)."""
    ph, pw = u.shape[-2:]
    h, w = shape
    if h > ph or w > pw:
        raise ValueError(f"centre_crop: window {shape} is larger than the field {(ph, pw)}.")
    top, left = ph // 2 - h // 2, pw // 2 - w // 2
    return u[..., top:top + h, left:left + w]


@dataclass(frozen=True)
class LensFourierTransform:
    """The thin-lens Fourier transform (Goodman eq. 5-19) of fields on an ``shape`` grid of ``pitch``.

    ``padded_shape`` (default ``shape``): the grid the field is zero padded to (centred) before the
    transform; the output is sampled on it at ``output_pitch = lambda f / (N_padded dx)``. Calling it
    returns ``U = -i (dx / du) F[u]`` (power conserved in physical units); :meth:`inverse` undoes it
    exactly (and crops back to ``shape``).
    """

    shape: tuple[int, int]
    pitch: float
    wavelength: float
    focal_length: float
    padded_shape: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.shape, tuple) and len(self.shape) == 2):
            raise ValueError(f"LensFourierTransform.shape must be (rows, cols), got {self.shape!r}.")
        for s in self.shape:
            check_int("LensFourierTransform.shape", s)
        check_positive("LensFourierTransform.pitch", self.pitch)
        check_positive("LensFourierTransform.wavelength", self.wavelength)
        check_positive("LensFourierTransform.focal_length", self.focal_length)
        if self.padded_shape is not None:
            if not (isinstance(self.padded_shape, tuple) and len(self.padded_shape) == 2) or any(
                    int(p) < s for p, s in zip(self.padded_shape, self.shape)):
                raise ValueError(f"LensFourierTransform.padded_shape must be (rows, cols) >= shape {self.shape}, "
                                 f"got {self.padded_shape!r}.")

    @property
    def grid(self) -> tuple[int, int]:
        return self.shape if self.padded_shape is None else tuple(int(p) for p in self.padded_shape)

    @property
    def output_pitch(self) -> tuple[float, float]:
        """Fourier-plane pitch (rows, cols) in metres."""
        return tuple(fourier_pitch(size=n, pitch=self.pitch, wavelength=self.wavelength,
                                   focal_length=self.focal_length) for n in self.grid)

    def _gain(self) -> float:
        dy, dx = self.output_pitch
        return math.sqrt(self.pitch ** 2 / (dy * dx))  # dx / du (geometric mean for rectangular grids)

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        if tuple(u.shape[-2:]) != self.shape:
            raise ValueError(f"LensFourierTransform: field has shape {tuple(u.shape[-2:])} on its last axes, "
                             f"expected {self.shape}.")
        if self.grid != self.shape:
            u = centre_pad(u, self.grid)
        return (-1j * self._gain()) * centred_fft2(u.to(torch.complex64) if not u.is_complex() else u)

    def inverse(self, big_u: torch.Tensor) -> torch.Tensor:
        u = centred_ifft2(big_u) * (1j / self._gain())
        return centre_crop(u, self.shape) if self.grid != self.shape else u

    def frequencies(self, *, dtype=torch.float64, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Spatial frequencies ``(fy, fx)`` (cycles per metre, each ``grid``-shaped) of the Fourier-plane
        samples: ``x / (lambda f)`` at the sample positions."""
        h, w = self.grid
        fy = (torch.arange(h, dtype=dtype, device=device) - h // 2) / (h * self.pitch)
        fx = (torch.arange(w, dtype=dtype, device=device) - w // 2) / (w * self.pitch)
        return torch.meshgrid(fy, fx, indexing="ij")


def noll_to_nm(j: int) -> tuple[int, int]:
    """Radial order ``n`` and signed azimuthal frequency ``m`` of Noll's index ``j >= 1`` (Noll 1976,
    Table 1: j = 1 piston, 2/3 tilts, 4 defocus, 5/6 astigmatism, 7/8 coma, 11 spherical)."""
    j = check_int("j", j)
    n = 0
    while (n + 1) * (n + 2) // 2 < j:
        n += 1
    k = j - n * (n + 1) // 2  # position within order n, 1..n+1
    # |m| values of order n in Noll order: n % 2, n % 2 (+2 pairs) ...
    ms = [m for m in range(n % 2, n + 1, 2) for _ in ((0,) if m == 0 else (0, 1))]
    m = ms[k - 1]
    sign = 1 if (j % 2 == 0) else -1  # even j: cos term (m > 0), odd j: sin term (m < 0)
    return n, (0 if m == 0 else sign * m)


def _radial(n: int, m: int, rho: torch.Tensor) -> torch.Tensor:
    m = abs(m)
    out = torch.zeros_like(rho)
    for s in range((n - m) // 2 + 1):
        c = (-1) ** s * math.factorial(n - s) / (
            math.factorial(s) * math.factorial((n + m) // 2 - s) * math.factorial((n - m) // 2 - s))
        out = out + c * rho ** (n - 2 * s)
    return out


def zernike_polynomial(j: int, rho: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Noll-normalised Zernike polynomial ``Z_j(rho, theta)`` (rms 1 over the unit disc, Noll 1976)."""
    n, m = noll_to_nm(j)
    r = _radial(n, m, rho)
    if m == 0:
        return math.sqrt(n + 1) * r
    trig = torch.cos(m * theta) if m > 0 else torch.sin(-m * theta)
    return math.sqrt(2 * (n + 1)) * r * trig


@dataclass(frozen=True)
class Zernike:
    """A pupil phase ``sum_j a_j Z_j`` (radians rms per term, Noll indices ``j``): e.g.
    ``Zernike({4: 0.5, 6: 0.2})`` = 0.5 rad rms of defocus and 0.2 rad of astigmatism. ``Zernike()`` is
    aberration-free."""

    coefficients: Mapping[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.coefficients, Mapping):
            raise TypeError(f"Zernike.coefficients must be a mapping {{noll_index: radians}}, got "
                            f"{type(self.coefficients).__name__}.")
        clean = {}
        for j, a in self.coefficients.items():
            if isinstance(j, bool) or not isinstance(j, int) or j < 1:
                raise ValueError(f"Zernike: Noll indices are ints >= 1 (4 = defocus), got {j!r}.")
            clean[j] = check_finite_float(f"Zernike.coefficients[{j}]", a)
        object.__setattr__(self, "coefficients", dict(sorted(clean.items())))

    def __hash__(self) -> int:
        return hash(tuple(self.coefficients.items()))

    @property
    def is_zero(self) -> bool:
        return all(a == 0.0 for a in self.coefficients.values())

    def phase(self, shape: tuple[int, int], *, dtype=torch.float64, device=None) -> torch.Tensor:
        """The phase (radians) on a centred ``shape`` Fourier grid, rho = 1 at the window's half-width
        along each axis."""
        h, w = shape
        y = (torch.arange(h, dtype=dtype, device=device) - h // 2) / (h / 2)
        x = (torch.arange(w, dtype=dtype, device=device) - w // 2) / (w / 2)
        yy, xx = torch.meshgrid(y, x, indexing="ij")
        rho, theta = torch.sqrt(xx ** 2 + yy ** 2), torch.atan2(yy, xx)
        out = torch.zeros(shape, dtype=dtype, device=device)
        for j, a in self.coefficients.items():
            if a:
                out = out + a * zernike_polynomial(j, rho, theta)
        return out

    def pupil(self, shape: tuple[int, int], *, dtype=torch.complex64, device=None) -> torch.Tensor:
        """``exp(i phase)`` on the grid (complex ``dtype``)."""
        return torch.polar(torch.ones(shape, dtype=torch.float64, device=device),
                           self.phase(shape, device=device)).to(dtype)


def defocus_coefficient(*, axial_error: float, wavelength: float, pitch: float) -> float:
    """Noll defocus coefficient ``a_4`` (radians rms) equivalent, up to piston, to an axial error
    ``axial_error`` (metres, + = output plane moved away from the lens) of the output plane of a 4f
    system with input pitch ``pitch``: ``-pi lambda dz / (8 sqrt 3 dx^2)`` (module docstring)."""
    dz = check_finite_float("axial_error", axial_error)
    return -math.pi * check_positive("wavelength", wavelength) * dz / (
        8.0 * math.sqrt(3.0) * check_positive("pitch", pitch) ** 2)
