"""The 4f correlator plant: optical convolution = digital convolution, and each hidden non-ideality."""

import math

import pytest
import torch

from pnnlab.plants.optics.correlator import (AmplitudeModulator, Camera, Correlator4f, FourierMask, MaskDevice,
                                             MaskMisalignment, Zernike)
from pnnlab.plants.optics.fourier import centre_pad, centred_fft2
from pnnlab.testing import check_plant

H, K = 8, 5
PAD = K - 1
N = H + PAD


def _plant(**truth):
    kw = dict(input_modulator=AmplitudeModulator.ideal(), mask_device=MaskDevice.ideal(),
              misalignment=MaskMisalignment(), aberration=Zernike(), camera=Camera.ideal())
    kw.update(truth)
    mask = kw.pop("mask", FourierMask())
    channels = kw.pop("channels", 2)
    return Correlator4f(image_shape=(H, H), channels=channels, pad=PAD, mask=mask, **kw)


def _images(batch, seed=0):
    return torch.rand(batch, H * H, generator=torch.Generator().manual_seed(seed))


def _controls(plant, seed=1):
    return plant.initial_controls(torch.Generator().manual_seed(seed))


def test_correlator_conforms_with_and_without_its_hidden_truth():
    check_plant(Correlator4f(image_shape=(6, 6), channels=2, pad=2))
    check_plant(_plant(mask=FourierMask(amplitude=True, phase=False)))
    check_plant(_plant(mask=FourierMask(amplitude=False, phase=True)))


def test_ideal_correlator_is_the_digital_convolution():
    """The mask t = N F[k] (centred DFT of a K x K kernel padded to the N x N grid) makes the camera
    record |u (*) k|^2: a LINEAR convolution of the image with k (torch conv2d, kernel flipped), since
    pad = K - 1 leaves room for the whole support; equivalently the circular convolution over the
    padded grid. The 4f inversion is undone by the camera's frame."""
    gen = torch.Generator().manual_seed(3)
    kernels = torch.complex(torch.randn(2, K, K, generator=gen), torch.randn(2, K, K, generator=gen))
    t = N * centred_fft2(centre_pad(kernels.to(torch.complex128), (N, N)))
    scale = float(t.abs().max())  # the mask is passive: |t| <= 1
    t, kernels = t / scale, kernels / scale
    plant = _plant()
    controls = {"amplitude": t.abs().float(), "phase": torch.remainder(torch.angle(t), 2 * math.pi).float()}
    x = _images(5)
    y = plant(x, controls).reshape(5, 2, N, N)
    image = centre_pad(x.reshape(5, 1, H, H).to(torch.complex128), (N, N))
    expected = torch.stack([
        torch.complex(torch.nn.functional.conv2d(image.real, kernels[c].real.flip(-2, -1)[None, None].double(), padding=K // 2)
                      - torch.nn.functional.conv2d(image.imag, kernels[c].imag.flip(-2, -1)[None, None].double(), padding=K // 2),
                      torch.nn.functional.conv2d(image.real, kernels[c].imag.flip(-2, -1)[None, None].double(), padding=K // 2))
        [:, 0] for c in range(2)], dim=1)
    torch.testing.assert_close(y.double(), expected.abs().square(), rtol=1e-4, atol=1e-5 * float(expected.abs().square().max()))
    assert float(y.std()) > 0.01  # a real, non-trivial output
    # an all-pass mask images the input (intensity = amplitude^2 inside the window, dark padding)
    y_pass = plant(x, {"amplitude": torch.ones(2, N, N), "phase": torch.zeros(2, N, N)}).reshape(5, 2, N, N)
    torch.testing.assert_close(y_pass[:, 0], centre_pad(x.reshape(5, H, H), (N, N)).square(), rtol=1e-4, atol=1e-5)


def test_ideal_plant_equals_its_nominal_twin_and_noiseless_plant_its_true_twin():
    ideal = _plant()
    x, c = _images(4), _controls(ideal)
    torch.testing.assert_close(ideal(x, c), ideal.nominal_twin()(x, c), rtol=1e-5, atol=1e-6)
    quiet = Camera(shot_noise=False, read_noise_electrons=0.0, signal_electrons=1000.0, full_well_electrons=4000.0,
                   bit_depth=10)
    real = Correlator4f(image_shape=(H, H), channels=2, pad=PAD, camera=quiet)
    torch.testing.assert_close(real(x, c), real.true_twin()(x, c), rtol=1e-5, atol=1e-5)
    assert float((real(x, c) - real.nominal_twin()(x, c)).abs().mean()) > 1e-3
    cg = {k: v.clone().requires_grad_(True) for k, v in c.items()}
    real.true_twin()(x, cg).sum().backward()
    assert all(float(v.grad.abs().max()) > 0 for v in cg.values())


def test_aberration_adds_the_zernike_pupil_phase_to_the_mask():
    """Defocus + astigmatism (Noll 4, 6): the aberrated plant with phases phi equals the perfect plant
    with phases phi + a_4 Z_4 + a_6 Z_6. Fails if the aberration is dropped."""
    ab = Zernike({4: 0.8, 6: 0.5})
    plant, ideal = _plant(aberration=ab), _plant()
    x, c = _images(4), _controls(ideal)
    shifted = {"amplitude": c["amplitude"], "phase": c["phase"] + ab.phase((N, N)).float()}
    torch.testing.assert_close(plant(x, c), ideal(x, shifted), rtol=1e-4, atol=1e-5)
    assert float((plant(x, c) - ideal(x, c)).abs().mean()) > 0.05 * float(ideal(x, c).abs().mean())


def test_mask_misalignment_shifts_the_mask_by_its_pixel_pitch():
    """A lateral offset of one mask pixel (du = lambda f / N dx) along x equals the aligned plant with the
    mask rolled by one column and the entering column opaque; half a pixel = the average of neighbours.
    Fails if the misalignment is dropped."""
    ideal = _plant()
    du = ideal.mask_pitch[1]
    x, c = _images(4), _controls(ideal)
    t = torch.polar(c["amplitude"], c["phase"])
    rolled = torch.roll(t, 1, dims=-1)
    rolled[..., 0] = 0
    whole = _plant(misalignment=MaskMisalignment(dx=du))
    as_controls = lambda tt: {"amplitude": tt.abs(), "phase": torch.remainder(torch.angle(tt), 2 * math.pi)}
    torch.testing.assert_close(whole(x, c), ideal(x, as_controls(rolled)), rtol=1e-4, atol=1e-5)
    half = _plant(misalignment=MaskMisalignment(dy=0.5 * ideal.mask_pitch[0]))
    down = torch.roll(t, 1, dims=-2)
    down[..., 0, :] = 0
    torch.testing.assert_close(half(x, c), ideal(x, as_controls(0.5 * (t + down))), rtol=1e-4, atol=1e-5)
    assert float((half(x, c) - ideal(x, c)).abs().mean()) > 0.02 * float(ideal(x, c).abs().mean())


def test_input_modulator_contrast_and_bit_depth():
    """Contrast ratio CR: off pixels keep amplitude CR^-1/2; ``levels`` grey levels round the image.
    Fails if either is dropped."""
    ideal = _plant()
    x, c = _images(4), _controls(ideal)
    leaky = _plant(input_modulator=AmplitudeModulator(contrast_ratio=100.0, levels=None))
    torch.testing.assert_close(leaky(x, c), ideal(0.1 + 0.9 * x, c), rtol=1e-4, atol=1e-5)
    coarse = _plant(input_modulator=AmplitudeModulator(contrast_ratio=None, levels=4))
    torch.testing.assert_close(coarse(x, c), ideal(torch.round(3 * x) / 3, c), rtol=1e-4, atol=1e-5)
    for p in (leaky, coarse):
        assert float((p(x, c) - ideal(x, c)).abs().mean()) > 0.01 * float(ideal(x, c).abs().mean())


def test_mask_device_contrast_and_grey_levels():
    """The Fourier mask's amplitude floor CR^-1/2, amplitude levels and phase levels. Fails if any is dropped."""
    ideal = _plant()
    x, c = _images(4), _controls(ideal)
    dev = _plant(mask_device=MaskDevice(contrast_ratio=25.0, amplitude_levels=5, phase_levels=8))
    t0 = 0.2
    expected = {"amplitude": t0 + (1 - t0) * torch.round(4 * c["amplitude"]) / 4,
                "phase": torch.remainder(torch.round(c["phase"] / (math.pi / 4)), 8) * (math.pi / 4)}
    torch.testing.assert_close(dev(x, c), ideal(x, expected), rtol=1e-4, atol=1e-5)
    for partial in ({"amplitude": expected["amplitude"], "phase": c["phase"]},
                    {"amplitude": c["amplitude"], "phase": expected["phase"]}):
        assert float((dev(x, c) - ideal(x, partial)).abs().mean()) > 0.01 * float(ideal(x, c).abs().mean())


def test_camera_shot_and_read_noise_and_adc():
    """Photo-electron statistics: mean = ideal intensity, variance = I / s + (r / s)^2 (Poisson shot noise
    with s electrons per unit intensity, Gaussian read noise r); a quiet camera returns multiples of its
    LSB. Fails if shot or read noise or the ADC is dropped."""
    s, r = 200.0, 4.0
    noisy = _plant(camera=Camera(signal_electrons=s, full_well_electrons=None, read_noise_electrons=r, bit_depth=None))
    ideal = _plant()
    x = _images(1).expand(400, -1).contiguous()
    c = {"amplitude": torch.ones(2, N, N), "phase": torch.zeros(2, N, N)}  # imaging: I = x^2
    y = noisy(x, c, generator=torch.Generator().manual_seed(0))
    i = ideal(x[:1], c)[0]
    bright = i > 0.3
    mean, var = y.mean(0), y.var(0)
    assert float((mean - i).abs()[bright].max()) < 0.03
    predicted = i / s + (r / s) ** 2
    ratio = (var[bright] / predicted[bright]).mean()
    assert abs(float(ratio) - 1.0) < 0.08
    dark = i < 1e-9
    # read noise alone in the dark padding, rectified at 0 electrons: var = r^2 (1/2 - 1/(2 pi))
    assert abs(float(var[dark].mean()) / ((r / s) ** 2 * (0.5 - 0.5 / math.pi)) - 1.0) < 0.1
    lsb = 4000.0 / (2 ** 8 - 1)
    adc = _plant(camera=Camera(signal_electrons=s, full_well_electrons=4000.0, read_noise_electrons=0.0, bit_depth=8,
                               shot_noise=False))
    electrons = adc(x[:3], c) * s
    torch.testing.assert_close(electrons / lsb, torch.round(electrons / lsb), atol=1e-3, rtol=0)
    assert float((adc(x[:3], c) - ideal(x[:3], c)).abs().max()) > 1e-4


def test_amplitude_only_and_phase_only_masks_and_validation():
    amp = _plant(mask=FourierMask(amplitude=True, phase=False))
    assert set(amp.control_specs()) == {"amplitude"}
    ph = _plant(mask=FourierMask(amplitude=False, phase=True))
    assert set(ph.control_specs()) == {"phase"} and ph.control_specs()["phase"].periodic
    x = _images(3)
    # phase-only with a flat phase is an all-pass mask: the image is reproduced
    y = ph(x, {"phase": torch.zeros(2, N, N)}).reshape(3, 2, N, N)
    torch.testing.assert_close(y[:, 1], centre_pad(x.reshape(3, H, H), (N, N)).square(), rtol=1e-4, atol=1e-5)
    # energy: a passive mask never adds light
    full = _plant()
    y = full(x, _controls(full)).reshape(3, 2, N, N).sum((-2, -1))
    assert bool((y <= x.square().sum(1, keepdim=True) * (1 + 1e-4)).all())
    with pytest.raises(ValueError, match="amplitude=True or phase=True"):
        FourierMask(amplitude=False, phase=False)
    with pytest.raises(ValueError, match="contrast_ratio"):
        AmplitudeModulator(contrast_ratio=0.5)
    with pytest.raises(TypeError, match="camera"):
        Correlator4f(image_shape=(4, 4), camera="ideal")
    # matched focal length: the mask pitch equals the input pitch
    assert full.mask_pitch[0] == pytest.approx(8e-6)


def test_hybrid_cnn_builders_share_the_read_out_shape_and_freeze_the_random_mask():
    from pnnlab import OnTwin, executing
    from pnnlab.models.digital_baselines import trainable_parameter_count
    from pnnlab.models.hybrid_cnn import CorrelatorTruth, build_digital_cnn, build_optical_cnn, build_random_mask_cnn

    kw = dict(in_features=H * H, n_classes=3, channels=2, pad=PAD, pool=3, seed=0)
    optical = build_optical_cnn(truth=CorrelatorTruth.ideal(), **kw)
    x = _images(4)
    with executing(OnTwin()):
        on_twin = optical(x)
    torch.testing.assert_close(optical(x), on_twin, rtol=1e-4, atol=1e-5)  # design plant = its twin
    grid_features = 2 * math.ceil(N / 3) ** 2
    assert trainable_parameter_count(optical) == 2 * N * N + grid_features * 3 + 3
    frozen = build_random_mask_cnn(**kw)
    assert trainable_parameter_count(frozen) == grid_features * 3 + 3
    digital = build_digital_cnn(kernel_size=5, **kw)
    assert trainable_parameter_count(digital) == 2 * 25 + grid_features * 3 + 3
    assert digital(x).shape == optical(x).shape == (4, 3)


# ---- devices ---------------------------------------------------------------------------------------
def test_plant_to_cpu_keeps_results_and_twins_are_made_on_the_plant_device():
    truth = dict(aberration=Zernike({4: 0.5, 6: 0.3}), misalignment=MaskMisalignment(dy=-1e-6, dx=2e-6),
                 camera=Camera(signal_electrons=1000.0, read_noise_electrons=5.0, bit_depth=12))
    plant, moved = _plant(**truth), _plant(**truth).to("cpu")
    x, c = _images(3), _controls(plant)
    assert torch.equal(plant(x, c, generator=torch.Generator().manual_seed(2)),
                       moved(x, c, generator=torch.Generator().manual_seed(2)))
    # the plant's measurement and its true twin use the same pupil (the true twin is the noiseless plant)
    quiet = _plant(**(truth | dict(camera=Camera.ideal())))
    assert torch.equal(quiet(x, c), quiet.true_twin()(x, c))
    plant.to("meta")
    assert plant._pupil.device.type == "meta"
    for which in ("nominal_twin", "true_twin"):
        twin = getattr(plant, which)()
        assert all(t.device.type == "meta" for t in twin.state_dict().values())
    assert plant.true_twin().pupil is not None
