"""The multimode-fibre plant: ideal limits, speckle statistics, camera noise, drift, crude twin."""

import math

import pytest
import torch

from pnnlab.plants.optics.fibre import SLM, Camera, FibrePlant, TransmissionDrift
from pnnlab.testing import check_plant
from pnnlab.twins.base import twin_gap


def _ideal(**kw):
    return FibrePlant(slm=SLM.ideal(), camera=Camera.ideal(), **kw)


@pytest.mark.parametrize("kwargs", [{}, {"kerr_phase_rad": 1.0},
                                    {"drift": TransmissionDrift(decorrelation_time_s=60.0)}])
def test_fibre_plant_conforms(kwargs):
    check_plant(FibrePlant(in_features=8, out_features=12, n_modes=100, **kwargs))


@pytest.mark.parametrize("kerr", [0.0, 1.5])
def test_noiseless_plant_equals_its_true_twin(kerr):
    plant = _ideal(in_features=10, out_features=20, n_modes=100, kerr_phase_rad=kerr)
    x, c = plant.example_inputs(16), plant.initial_controls()
    torch.testing.assert_close(plant(x, c), plant.true_twin()(x, c), rtol=1e-5, atol=1e-6)


def test_true_twin_is_the_noiseless_plant_with_quantisation_saturation_and_drift():
    """Default SLM (256 levels, 5 % crosstalk) and a camera with a full well and a 10-bit ADC but its
    noise off: the plant is deterministic and its true twin reproduces it, at the current clock."""
    quiet = Camera(shot_noise=False, read_noise_electrons=0.0, signal_electrons=4000.0)
    plant = FibrePlant(in_features=6, out_features=24, n_modes=64, camera=quiet, kerr_phase_rad=0.8,
                       drift=TransmissionDrift(decorrelation_time_s=30.0))
    x, c = plant.example_inputs(20), plant.initial_controls()
    torch.testing.assert_close(plant.true_twin()(x, c), plant(x, c), rtol=1e-5, atol=1e-5)
    plant.advance_time(12.0)  # drift: the true twin follows the fibre's clock
    late_truth = plant.true_twin()
    late = plant(x, c)
    torch.testing.assert_close(late_truth(x, c), late, rtol=1e-5, atol=1e-5)
    assert float((late - plant.nominal_twin()(x, c)).abs().mean()) > 0.1
    assert bool((late <= quiet.full_well_electrons / quiet.signal_electrons + 1e-6).all())
    # differentiable: the roundings pass gradients straight through
    xg = x.clone().requires_grad_(True)
    cg = {"phase": c["phase"].clone().requires_grad_(True)}
    late_truth(xg, cg).sum().backward()
    assert float(xg.grad.abs().max()) > 0 and float(cg["phase"].grad.abs().max()) > 0


def test_slm_crosstalk_mixes_neighbouring_pixels():
    """phi_eff_j = (1 - 2c) phi_j + c (phi_{j-1} + phi_{j+1}) (edges replicated), then |T E|^2, computed
    here independently of the plant's code. Fails if the crosstalk is dropped from the plant."""
    c_x = 0.1
    plant = FibrePlant(in_features=5, out_features=16, n_modes=40, slm=SLM(phase_levels=None, crosstalk=c_x),
                       camera=Camera.ideal())
    x, c = plant.example_inputs(7), plant.initial_controls()
    phi = torch.remainder(torch.cat([x, c["phase"].expand(7, -1)], dim=1), 2 * math.pi)
    padded = torch.cat([phi[:, :1], phi, phi[:, -1:]], dim=1)
    eff = (1 - 2 * c_x) * phi + c_x * (padded[:, :-2] + padded[:, 2:])
    tm = plant._tm_segment(0)  # the hidden matrix, read here only to verify the physics
    expected = (torch.polar(torch.full_like(eff, 40 ** -0.5), eff) @ tm.T).abs().square()
    y = plant(x, c)
    torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-5)
    no_crosstalk = (torch.polar(torch.full_like(phi, 40 ** -0.5), phi) @ tm.T).abs().square()
    assert float((y - no_crosstalk).abs().mean()) > 0.05


def test_speckle_is_fully_developed():
    """|T E|^2 with i.i.d. complex Gaussian T: exponential intensity, mean 1, contrast std/mean = 1
    (Goodman, Speckle Phenomena in Optics)."""
    plant = _ideal(in_features=10, out_features=200, n_modes=128)
    gen = torch.Generator().manual_seed(1)
    y = torch.cat([plant(plant.example_inputs(50, gen), plant.initial_controls(gen)) for _ in range(4)])
    assert abs(float(y.mean()) - 1.0) < 0.05
    assert abs(float(y.std() / y.mean()) - 1.0) < 0.06
    assert abs(float((y > 1.0).float().mean()) - math.exp(-1.0)) < 0.02  # P(I > <I>) = 1/e


def test_phase_wrapping_and_quantisation():
    plant = FibrePlant(in_features=4, out_features=8, n_modes=100, slm=SLM(phase_levels=4, crosstalk=0.0),
                       camera=Camera.ideal())
    c = plant.initial_controls()
    x = torch.full((1, 4), 0.3)
    # wrapped by 2 pi, and 0.3 rad rounds to level 0 on a 4-level SLM
    torch.testing.assert_close(plant(x + 2 * math.pi, c), plant(x, c))
    torch.testing.assert_close(plant(x, c), plant(torch.zeros(1, 4), c))


def test_camera_shot_noise_saturation_and_bits():
    cam = Camera(signal_electrons=1000.0, full_well_electrons=4000.0, read_noise_electrons=0.0, bit_depth=8)
    intensity = torch.full((20000, 1), 0.5)
    y = cam.measure(intensity, torch.Generator().manual_seed(0))
    # Poisson: variance of electrons = mean = 500 -> variance of y = 500 / 1000^2 (plus 8-bit rounding)
    lsb = 4000.0 / 255 / 1000.0
    expected = 500.0 / 1000.0 ** 2 + lsb ** 2 / 12
    assert abs(float(y.var()) / expected - 1.0) < 0.06
    assert torch.allclose(y / lsb, torch.round(y / lsb), atol=1e-3)
    bright = cam.measure(torch.full((10, 1), 100.0), torch.Generator().manual_seed(0))
    assert float(bright.max()) <= 4.0 + 1e-6  # full well / signal electrons


def test_drift_follows_its_correlation_law():
    """Field correlation cos(pi t / 2 tau) -> intensity correlation cos^2 for circular Gaussian speckle."""
    tau = 1000.0
    plant = FibrePlant(in_features=8, out_features=400, n_modes=100, slm=SLM.ideal(), camera=Camera.ideal(),
                       drift=TransmissionDrift(decorrelation_time_s=tau))
    x, c = plant.example_inputs(5), plant.initial_controls()
    first = plant(x, c)
    plant.advance_time(tau / 3.0 - plant.elapsed_seconds)  # as if the plant had been used for tau / 3
    later = plant(x, c)
    plant.advance_time(tau - plant.elapsed_seconds)
    decorrelated = plant(x, c)

    def corr(a, b):
        a, b = a - a.mean(), b - b.mean()
        return float((a * b).sum() / (a.norm() * b.norm()))

    assert abs(corr(first, later) - math.cos(math.pi / 6) ** 2) < 0.08
    assert abs(corr(first, decorrelated)) < 0.12


def test_device_time_advances_with_queries():
    plant = FibrePlant(in_features=8, out_features=8, n_modes=100)
    plant(plant.example_inputs(60), plant.initial_controls())
    assert plant.meter.device_seconds == pytest.approx(1e-3 + 60 / 60.0)
    assert plant.elapsed_seconds == pytest.approx(plant.meter.device_seconds)
    plant.meter.reset()  # accounting can be reset; the fibre's own clock (and its drift) cannot
    assert plant.elapsed_seconds == pytest.approx(1e-3 + 60 / 60.0)
    with pytest.raises(ValueError, match="seconds"):
        plant.advance_time(-1.0)


def test_crude_twin_has_the_stated_error():
    plant = FibrePlant(in_features=8, out_features=64, n_modes=100, twin_tm_error=0.3)
    x, c = plant.example_inputs(64), plant.initial_controls()
    gap = twin_gap(plant, plant.nominal_twin(), x, c)
    assert 0.15 < gap < 0.6
    exact = FibrePlant(in_features=8, out_features=64, n_modes=100, twin_tm_error=0.0,
                       slm=SLM.ideal(), camera=Camera.ideal())
    assert twin_gap(exact, exact.nominal_twin(), x, c) < 1e-5


@pytest.mark.parametrize("kwargs, match", [
    ({"n_modes": 8, "in_features": 8}, "n_modes"),
    ({"slm": "slm"}, "slm"),
    ({"drift": 5.0}, "drift"),
    ({"kerr_phase_rad": -1.0}, "kerr_phase_rad"),
])
def test_bad_arguments_are_explained(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        FibrePlant(**kwargs)


def test_bad_components_are_explained():
    with pytest.raises(ValueError, match="crosstalk"):
        SLM(crosstalk=0.5)
    with pytest.raises(ValueError, match="full_well"):
        Camera(full_well_electrons=None, bit_depth=8)
    with pytest.raises(ValueError, match="decorrelation_time_s"):
        TransmissionDrift(decorrelation_time_s=0.0)
