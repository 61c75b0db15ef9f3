"""The wave-optics engine: precision, energy conservation, Gaussian beams, reversibility, padding."""

import math

import pytest
import torch

from pnnlab.plants.optics.propagation import (AngularSpectrum, Fresnel, band_limit_frequency, fresnel_phase_error,
                                              gaussian_beam, grid_coordinates, thin_lens)

LAM = 1.0e-6  # 1 um
DX = 2.0e-6
N = 128
W0 = 30e-6
ZR = math.pi * W0 ** 2 / LAM  # 2.83 mm


def _rel(a, b):
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def _random_field(shape, seed=0, dtype=torch.complex128):
    g = torch.Generator().manual_seed(seed)
    re, im = torch.randn(*shape, generator=g, dtype=torch.float64), torch.randn(*shape, generator=g, dtype=torch.float64)
    return torch.complex(re, im).to(dtype)


def test_complex64_matches_float64_reference_to_1e5():
    prop = AngularSpectrum(shape=(N, N), pitch=DX, wavelength=LAM, distance=1.5e-3)
    u = _random_field((4, N, N))
    ref = prop(u)
    out = prop(u.to(torch.complex64))
    assert out.dtype == torch.complex64
    assert _rel(out.to(torch.complex128), ref) <= 1e-5
    fres = Fresnel(shape=(N, N), pitch=DX, wavelength=LAM, distance=1.5e-3)
    assert _rel(fres(u.to(torch.complex64)).to(torch.complex128), fres(u)) <= 1e-5


def test_parseval_power_conserved_when_band_passes_everything():
    prop = AngularSpectrum(shape=(N, N), pitch=DX, wavelength=LAM, distance=ZR / 4)
    u = gaussian_beam((N, N), pitch=DX, wavelength=LAM, waist=W0, z=0.0)
    assert prop.passes_band(u)
    out = prop(u)
    p_in, p_out = float(u.abs().square().sum()), float(out.abs().square().sum())
    assert abs(p_out - p_in) / p_in < 1e-9
    # and it is not conserved by a transfer function that is wrongly not unit-modulus: the band limit at a
    # distance where it cuts into the spectrum removes power (the check can fail)
    far = AngularSpectrum(shape=(N, N), pitch=DX, wavelength=LAM, distance=2.0)
    assert not far.passes_band(_random_field((N, N)))


def test_gaussian_beam_waist_gouy_phase_and_curvature():
    z = ZR
    prop = AngularSpectrum(shape=(N, N), pitch=DX, wavelength=LAM, distance=z)
    u0 = gaussian_beam((N, N), pitch=DX, wavelength=LAM, waist=W0, z=0.0)
    out = prop(u0)
    analytic = gaussian_beam((N, N), pitch=DX, wavelength=LAM, waist=W0, z=z)
    assert _rel(out, analytic) < 2e-3  # non-paraxial corrections ~ (lambda / pi w0)^2 ~ 1e-4
    # waist from the second moment: w^2 = 2 <r^2> for |E|^2 ~ exp(-2 r^2 / w^2)... per axis w^2 = 4 <x^2>
    y, x = grid_coordinates((N, N), DX)
    i = out.abs().square()
    w_meas = math.sqrt(4.0 * float((i * x ** 2).sum() / i.sum()))
    assert abs(w_meas / (W0 * math.sqrt(2.0)) - 1.0) < 1e-3
    # Gouy phase: on axis the phase is k z - atan(z / zR) = k z - pi / 4 at z = zR
    k = 2 * math.pi / LAM
    centre = out[N // 2 - 1:N // 2 + 1, N // 2 - 1:N // 2 + 1].mean()  # 4 pixels around the axis
    gouy = math.remainder(k * z - float(torch.angle(centre)), 2 * math.pi)
    r2c = (DX / 2) ** 2 * 2  # their mean r^2 adds a small curvature phase
    gouy += k * r2c / (2 * (z + ZR ** 2 / z))
    assert abs(gouy - math.pi / 4) < 5e-3
    # radius of curvature: phase(r) - phase(0) = k r^2 / (2 R), R = 2 zR at z = zR
    row = torch.angle(out[N // 2, :] * out[N // 2, N // 2].conj())
    xs = x[N // 2, :]
    sel = xs.abs() < 1.5 * W0
    slope = float((row[sel] * xs[sel] ** 2).sum() / (xs[sel] ** 4).sum())  # least squares phi = a x^2
    r_meas = k / (2 * slope)
    assert abs(r_meas / (2 * ZR) - 1.0) < 1e-2


def test_fresnel_agrees_with_angular_spectrum_for_a_paraxial_beam():
    u0 = gaussian_beam((N, N), pitch=DX, wavelength=LAM, waist=W0, z=0.0)
    asm = AngularSpectrum(shape=(N, N), pitch=DX, wavelength=LAM, distance=ZR)(u0)
    fre = Fresnel(shape=(N, N), pitch=DX, wavelength=LAM, distance=ZR)(u0)
    # the beam's spectrum reaches ~ 3 / (pi w0): quartic phase error tiny, the two agree
    assert fresnel_phase_error(wavelength=LAM, distance=ZR, max_frequency=3 / (math.pi * W0)) < 1e-2
    assert _rel(fre, asm) < 2e-3
    # for a field with high frequencies (pixel-scale speckle) Fresnel fails: the error is large
    speckle = _random_field((N, N))
    a = AngularSpectrum(shape=(N, N), pitch=DX, wavelength=LAM, distance=1e-3)(speckle)
    f = Fresnel(shape=(N, N), pitch=DX, wavelength=LAM, distance=1e-3)(speckle)
    assert fresnel_phase_error(wavelength=LAM, distance=1e-3, max_frequency=1 / (2 * DX)) > 1
    assert _rel(f, a) > 0.1


def test_propagating_back_recovers_the_field():
    u0 = gaussian_beam((N, N), pitch=DX, wavelength=LAM, waist=W0, z=0.0)
    forward = AngularSpectrum(shape=(N, N), pitch=DX, wavelength=LAM, distance=ZR / 2)
    back = AngularSpectrum(shape=(N, N), pitch=DX, wavelength=LAM, distance=-ZR / 2)
    # the crop loses the beam's tails beyond the window (amplitude ~3e-7 of the peak there)
    assert _rel(back(forward(u0)), u0) < 1e-6
    # and a wrong sign of the back-propagation does not recover it
    assert _rel(forward(forward(u0)), u0) > 0.1


def test_padding_prevents_wrap_around():
    """A diverging beam next to the window's edge: padded, the result matches the analytic beam (light leaving
    the window is lost); without padding it re-enters at the opposite edge."""
    w0 = 6e-6
    zr = math.pi * w0 ** 2 / LAM
    z = 4 * zr  # the beam grows to ~25 um radius
    centre = (0.0, -(N // 2 - 12) * DX)  # 12 pixels from the left edge
    u0 = gaussian_beam((N, N), pitch=DX, wavelength=LAM, waist=w0, z=0.0, center=centre)
    analytic = gaussian_beam((N, N), pitch=DX, wavelength=LAM, waist=w0, z=z, center=centre)
    padded = AngularSpectrum(shape=(N, N), pitch=DX, wavelength=LAM, distance=z)(u0)
    unpadded = AngularSpectrum(shape=(N, N), pitch=DX, wavelength=LAM, distance=z, pad=0)(u0)
    right = slice(N // 2, N)  # far from the beam: the analytic field there is ~0
    assert _rel(padded, analytic) < 2e-2
    assert float(padded[:, right].abs().max()) < 1e-3 * float(analytic.abs().max())
    assert float(unpadded[:, right].abs().max()) > 1e-2 * float(analytic.abs().max())
    assert _rel(unpadded, analytic) > 5 * _rel(padded, analytic)


def test_band_limit_formula_and_cache():
    u = band_limit_frequency(wavelength=LAM, distance=0.01, padded_size=256, pitch=DX)
    du = 1 / (256 * DX)
    assert u == pytest.approx(1 / (LAM * math.sqrt((2 * du * 0.01) ** 2 + 1)))
    prop = AngularSpectrum(shape=(16, 16), pitch=DX, wavelength=LAM, distance=0.01)
    h1 = prop.transfer(torch.complex64)
    assert prop.transfer(torch.complex64) is h1  # cached
    assert int((h1.abs() > 0).sum()) < h1.numel()  # the band limit cut something at 1 cm


def test_thin_lens_focuses_a_plane_wave_to_the_diffraction_limit():
    f = 2e-3
    n = 128
    lens = thin_lens((n, n), pitch=DX, wavelength=LAM, focal_length=f, dtype=torch.complex128)
    y, x = grid_coordinates((n, n), DX)
    aperture = ((x ** 2 + y ** 2) < (60e-6) ** 2).to(torch.complex128)
    focus = AngularSpectrum(shape=(n, n), pitch=DX, wavelength=LAM, distance=f)(aperture * lens)
    i = focus.abs().square()
    peak = torch.nonzero(i == i.max())[0].tolist()
    assert abs(peak[0] - (n // 2 - 0.5)) <= 1 and abs(peak[1] - (n // 2 - 0.5)) <= 1
    # Airy radius 1.22 lambda f / D = 1.22 * 1e-6 * 2e-3 / 120e-6 = 20 um = 10 px: 84 % within it
    r = torch.sqrt(x ** 2 + y ** 2)
    assert float(i[r < 20.3e-6].sum() / i.sum()) > 0.75
    with pytest.raises(ValueError, match="focal_length"):
        thin_lens((4, 4), pitch=DX, wavelength=LAM, focal_length=0.0)


def test_constructor_errors_name_the_argument():
    with pytest.raises(ValueError, match="pitch"):
        AngularSpectrum(shape=(8, 8), pitch=0.1e-6, wavelength=LAM, distance=1e-3)
    with pytest.raises(ValueError, match="pad"):
        AngularSpectrum(shape=(8, 8), pitch=DX, wavelength=LAM, distance=1e-3, pad=-1)
    prop = AngularSpectrum(shape=(8, 8), pitch=DX, wavelength=LAM, distance=1e-3)
    with pytest.raises(TypeError, match="complex"):
        prop(torch.zeros(8, 8))


def test_transfer_cache_is_keyed_on_the_device_and_none_means_the_cpu():
    """Under the device audit the default device is "meta": an engine that built ``device=None`` tensors
    on the default device would cache a meta transfer function for every later CPU call."""
    from pnnlab.devices import device_audit
    prop = AngularSpectrum(shape=(8, 8), pitch=DX, wavelength=LAM, distance=0.01)
    with device_audit():
        h = prop.transfer(torch.complex64)
        fy, _ = prop.frequencies()
    assert h.device.type == "cpu" and fy.device.type == "cpu"
    assert prop.transfer(torch.complex64, "cpu") is h and prop.transfer(torch.complex64, torch.device("cpu")) is h
    meta = prop.transfer(torch.complex64, torch.device("meta"))
    assert meta.device.type == "meta" and prop.transfer(torch.complex64) is h
