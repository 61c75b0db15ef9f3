"""The lens Fourier transform: 4f imaging, point source, Parseval, Fourier-plane pitch, Zernike terms."""

import math

import pytest
import torch

from pnnlab.plants.optics.fourier import (LensFourierTransform, Zernike, centre_crop, centre_pad, centred_fft2,
                                          defocus_coefficient, fourier_pitch, noll_to_nm, rotate_180,
                                          zernike_polynomial)

LAMBDA, F, DX = 532e-9, 0.05, 8e-6


def _field(shape, seed=0, dtype=torch.complex128):
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(shape, generator=g), torch.randn(shape, generator=g)).to(dtype)


@pytest.mark.parametrize("n", [16, 15])
def test_4f_with_all_pass_mask_images_the_input_inverted(n):
    """Two lens transforms: -u(-x, -y) (Goodman sec. 8.3); rotate_180 restores the input. Odd and even
    grids (the optical axis is pixel N // 2)."""
    lens = LensFourierTransform(shape=(n, n), pitch=DX, wavelength=LAMBDA, focal_length=F)
    u = _field((3, n, n))
    out = LensFourierTransform(shape=(n, n), pitch=lens.output_pitch[0], wavelength=LAMBDA, focal_length=F)(lens(u))
    torch.testing.assert_close(rotate_180(out), -u, rtol=1e-10, atol=1e-10)
    # explicit inversion about the axis pixel c = N // 2: out[c + a, c + b] = -u[c - a, c - b]
    c = n // 2
    assert torch.allclose(out[:, c + 2, c - 3], -u[:, c - 2, c + 3])
    assert not torch.allclose(out, -u)  # the image really is inverted


def test_point_source_gives_a_flat_fourier_plane():
    """A point on the axis: |U| = (dx / du) / N everywhere, phase -pi/2 (the 1 / (i lambda f) factor)."""
    n = 32
    lens = LensFourierTransform(shape=(n, n), pitch=DX, wavelength=LAMBDA, focal_length=F)
    u = torch.zeros(n, n, dtype=torch.complex128)
    u[n // 2, n // 2] = 1.0
    big_u = lens(u)
    du = lens.output_pitch[0]
    torch.testing.assert_close(big_u.abs(), torch.full((n, n), DX / du / n, dtype=torch.float64))
    torch.testing.assert_close(torch.angle(big_u), torch.full((n, n), -math.pi / 2, dtype=torch.float64))
    # an off-axis point: flat modulus, linear phase ramp exp(-i 2 pi fx x0) (shift theorem)
    u = torch.zeros(n, n, dtype=torch.complex128)
    u[n // 2, n // 2 + 3] = 1.0
    fy, fx = lens.frequencies()
    expected = (DX / du / n) * torch.polar(torch.ones(n, n, dtype=torch.float64),
                                           -math.pi / 2 - 2 * math.pi * fx * 3 * DX)
    torch.testing.assert_close(lens(u), expected)


def test_energy_is_conserved_in_physical_units_and_inverse_is_exact():
    """sum |U|^2 du^2 = sum |u|^2 dx^2 (Parseval), padded or not; inverse() recovers the field."""
    u = _field((2, 20, 20), seed=3)
    for padded in (None, (36, 36)):
        lens = LensFourierTransform(shape=(20, 20), pitch=DX, wavelength=LAMBDA, focal_length=F, padded_shape=padded)
        big_u = lens(u)
        du = lens.output_pitch[0]
        torch.testing.assert_close((big_u.abs() ** 2).sum((-2, -1)) * du ** 2, (u.abs() ** 2).sum((-2, -1)) * DX ** 2)
        torch.testing.assert_close(lens.inverse(big_u), u)


def test_fourier_plane_pitch_scaling_law():
    """du = lambda f / (N dx): doubling f doubles it, doubling N (padding) or dx halves it; and the sample
    at pixel k of the Fourier plane is the spatial frequency k du / (lambda f) = k / (N dx): a grating of
    period p lands at x = lambda f / p."""
    base = fourier_pitch(size=64, pitch=DX, wavelength=LAMBDA, focal_length=F)
    assert base == pytest.approx(LAMBDA * F / (64 * DX))
    assert fourier_pitch(size=64, pitch=DX, wavelength=LAMBDA, focal_length=2 * F) == pytest.approx(2 * base)
    assert fourier_pitch(size=128, pitch=DX, wavelength=LAMBDA, focal_length=F) == pytest.approx(base / 2)
    assert fourier_pitch(size=64, pitch=2 * DX, wavelength=LAMBDA, focal_length=F) == pytest.approx(base / 2)
    # a cosine grating of period 8 pixels: peaks at x = +- lambda f / (8 dx), i.e. pixel N//2 +- N/8
    n = 64
    lens = LensFourierTransform(shape=(n, n), pitch=DX, wavelength=LAMBDA, focal_length=F)
    cols = torch.arange(n, dtype=torch.float64)
    u = torch.cos(2 * math.pi * cols / 8).expand(n, n).to(torch.complex128)
    intensity = lens(u).abs() ** 2
    peaks = (intensity > 0.25 * intensity.max()).nonzero().tolist()
    x_peaks = sorted((c - n // 2) * lens.output_pitch[1] for r, c in peaks)
    assert len(peaks) == 2 and all(r == n // 2 for r, _ in peaks)
    assert x_peaks == pytest.approx([-LAMBDA * F / (8 * DX), LAMBDA * F / (8 * DX)])
    # padding the same field to 2N samples it twice as finely in the Fourier plane
    padded = LensFourierTransform(shape=(n, n), pitch=DX, wavelength=LAMBDA, focal_length=F, padded_shape=(2 * n, 2 * n))
    assert padded.output_pitch[0] == pytest.approx(lens.output_pitch[0] / 2)


def test_padding_helpers_keep_the_axis_pixel():
    u = _field((5, 6))
    p = centre_pad(u, (9, 10))
    assert p[9 // 2, 10 // 2] == u[5 // 2, 6 // 2]
    torch.testing.assert_close(centre_crop(p, (5, 6)), u)
    with pytest.raises(ValueError, match="smaller"):
        centre_pad(u, (4, 6))


def test_noll_indices_and_zernike_normalisation():
    """Noll 1976 Table 1 ordering, and every Z_j has rms 1 over the unit disc (orthonormal)."""
    table = {1: (0, 0), 2: (1, 1), 3: (1, -1), 4: (2, 0), 5: (2, -2), 6: (2, 2), 7: (3, -1), 8: (3, 1),
             9: (3, -3), 10: (3, 3), 11: (4, 0), 12: (4, 2), 13: (4, -2), 14: (4, 4), 15: (4, -4)}
    assert {j: noll_to_nm(j) for j in table} == table
    m = 801
    r = torch.linspace(-1, 1, m, dtype=torch.float64)
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    rho, theta = torch.sqrt(xx ** 2 + yy ** 2), torch.atan2(yy, xx)
    disc = rho <= 1.0
    zs = torch.stack([zernike_polynomial(j, rho, theta)[disc] for j in range(1, 12)])
    gram = zs @ zs.T / disc.sum()
    torch.testing.assert_close(gram, torch.eye(11, dtype=torch.float64), atol=0.02, rtol=0)
    torch.testing.assert_close(zernike_polynomial(4, rho, theta), math.sqrt(3) * (2 * rho ** 2 - 1))
    torch.testing.assert_close(zernike_polynomial(11, rho, theta), math.sqrt(5) * (6 * rho ** 4 - 6 * rho ** 2 + 1))


def test_defocus_zernike_equals_an_axial_shift_of_the_output_plane():
    """a_4 Z_4 from defocus_coefficient equals the paraxial transfer function exp(-i pi lambda dz f^2) of
    a small axial shift dz (Goodman eq. 4-21) up to a constant (piston) phase."""
    n, dz = 32, 100e-6
    lens = LensFourierTransform(shape=(n, n), pitch=DX, wavelength=LAMBDA, focal_length=F)
    fy, fx = lens.frequencies()
    fresnel = -math.pi * LAMBDA * dz * (fx ** 2 + fy ** 2)
    zern = Zernike({4: defocus_coefficient(axial_error=dz, wavelength=LAMBDA, pitch=DX)}).phase((n, n))
    diff = zern - fresnel
    torch.testing.assert_close(diff, torch.full_like(diff, float(diff[0, 0])))
    assert float(fresnel.abs().max()) > 1.0  # a real aberration, not a no-op
    assert Zernike().is_zero and not Zernike({4: 0.1}).is_zero
    with pytest.raises(ValueError, match="Noll"):
        Zernike({0: 0.1})


def test_lens_transform_validates_shapes():
    lens = LensFourierTransform(shape=(8, 8), pitch=DX, wavelength=LAMBDA, focal_length=F)
    with pytest.raises(ValueError, match="expected"):
        lens(torch.zeros(7, 8, dtype=torch.complex64))
    with pytest.raises(ValueError, match="padded_shape"):
        LensFourierTransform(shape=(8, 8), pitch=DX, wavelength=LAMBDA, focal_length=F, padded_shape=(4, 4))
    with pytest.raises(ValueError):
        LensFourierTransform(shape=(8, 8), pitch=-DX, wavelength=LAMBDA, focal_length=F)
    # complex64 agrees with complex128
    u = _field((8, 8))
    torch.testing.assert_close(lens(u.to(torch.complex64)).to(torch.complex128), lens(u), rtol=1e-5, atol=1e-6)
    assert torch.allclose(centred_fft2(u).abs().square().sum(), u.abs().square().sum())
