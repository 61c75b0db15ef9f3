"""The diffractive network plant: optics, detectors, and one test per hidden non-ideality (each fails if the
non-ideality is removed from the plant's physics)."""

import math

import pytest
import torch

from pnnlab.plants.optics.diffractive import (DiffractiveNetwork, FabricationError, FieldMeasurement, Misalignment,
                                              SLMPixels, detector_masks)
from pnnlab.plants.optics.fibre import Camera

SMALL = dict(input_shape=(6, 6), grid=24, upsample=2, n_layers=2, n_classes=4, detector_size=3, spacing=3e-3)
PITCH = 0.4e-3


def _ideal(**kw):
    return DiffractiveNetwork.ideal(**(SMALL | kw))


def _inputs(plant, batch=6, seed=0):
    return plant.example_inputs(batch, generator=torch.Generator().manual_seed(seed)).double()


def _smooth_phases(plant, seed=1):
    g = torch.Generator().manual_seed(seed)
    raw = torch.randn(plant.n_layers, plant.grid, plant.grid, generator=g, dtype=torch.float64)
    k = torch.ones(1, 1, 5, 5, dtype=torch.float64) / 25
    smooth = torch.nn.functional.conv2d(raw.unsqueeze(1), k, padding=2).squeeze(1)
    return {"phase": torch.remainder(3.0 * smooth / smooth.std() + 1.0, 2 * math.pi)}


def test_output_is_detected_power_and_energy_is_bounded():
    plant = _ideal()
    x = _inputs(plant)
    c = _smooth_phases(plant)
    y = plant(x, c)
    assert y.shape == (6, 4) and bool((y >= 0).all())
    # lossless phase masks and free space: detected power never exceeds the input power sum(x^2)
    assert bool((y.sum(1) <= x.square().sum(1) * (1 + 1e-9)).all())
    # linear optics in the field: doubling the input amplitude quadruples the detected power
    assert torch.allclose(plant(2 * x, c), 4 * y, rtol=1e-9)
    # the twin of an ideal plant is the plant
    assert torch.allclose(plant.nominal_twin()(x, c), y, rtol=1e-9, atol=1e-15)


def test_detector_layout_is_lin_3_4_3_and_disjoint():
    masks = detector_masks(100, 10, 8)
    assert int(masks.sum()) == 10 * 64
    rows = sorted({int(torch.nonzero(m)[:, 0].min()) for m in masks})
    counts = [sum(int(torch.nonzero(m)[:, 0].min()) == r for m in masks) for r in rows]
    assert counts == [3, 4, 3]


def test_lateral_misalignment_by_one_pixel_equals_the_rolled_mask():
    """Mask 1 displaced by exactly one pixel along x acts like the aligned mask rolled by one pixel."""
    # short spacing: the light stays away from the aperture edges (which move with the mask)
    shifted = _ideal(spacing=1e-3, misalignment=Misalignment(lateral=((0.0, PITCH), (0.0, 0.0))))
    aligned = _ideal(spacing=1e-3)
    x, c = _inputs(aligned), _smooth_phases(aligned)
    rolled = c["phase"].clone()
    rolled[0] = torch.roll(c["phase"][0], shifts=1, dims=-1)
    y_shift = shifted(x, c)
    assert not torch.allclose(y_shift, aligned(x, c), rtol=1e-3)  # misalignment matters
    # rolled mask: same except for the column wrapped round the edge, where light is nearly zero
    # (residual ~0.4 %: the aperture edge moves with the mask, the rolled mask keeps it)
    assert float(((y_shift - aligned(x, {"phase": rolled})).abs() / y_shift).max()) < 1e-2
    wrong_way = c["phase"].clone()
    wrong_way[0] = torch.roll(c["phase"][0], shifts=-1, dims=-1)
    assert float(((y_shift - aligned(x, {"phase": wrong_way})).abs() / y_shift).max()) > 0.2
    # sub-pixel shifts act continuously (Fourier shift, no snapping to the pixel grid)
    tiny = _ideal(spacing=1e-3, misalignment=Misalignment(lateral=((0.0, PITCH / 100), (0.0, 0.0))))(x, c)
    half = _ideal(spacing=1e-3, misalignment=Misalignment(lateral=((0.0, PITCH / 2), (0.0, 0.0))))(x, c)
    base = aligned(x, c)
    assert float(((tiny - base).abs() / base).max()) < 0.05
    assert float(((half - base).abs() / base).max()) > 0.1 and float(((half - y_shift).abs() / base).max()) > 0.1


def test_axial_misalignment_moves_the_mask_between_its_neighbours():
    dz = 0.6e-3
    moved = _ideal(misalignment=Misalignment(axial=(dz, 0.0)))
    reference = _ideal(spacing=(3e-3 + dz, 3e-3 - dz, 3e-3))
    x, c = _inputs(moved), _smooth_phases(moved)
    assert torch.allclose(moved(x, c), reference(x, c), rtol=1e-9)
    assert not torch.allclose(moved(x, c), _ideal()(x, c), rtol=1e-3)


def test_fabrication_map_and_scale_error():
    fab = FabricationError(phase_rms=0.3, correlation_px=3.0, scale_error=0.05)
    plant = _ideal(fabrication=fab)
    x, c = _inputs(plant), _smooth_phases(plant)
    m = plant._fab_map  # hidden truth, read by the test only
    assert float(m.square().mean().sqrt()) == pytest.approx(0.3, rel=1e-6)
    # smooth: neighbouring pixels correlate strongly (correlation length 3 pixels)
    corr = float((m[..., :, 1:] * m[..., :, :-1]).mean() / m.square().mean())
    assert corr > 0.8
    expected = _ideal()(x, {"phase": 1.05 * c["phase"] + m})
    assert torch.allclose(plant(x, c), expected, rtol=1e-9)
    no_scale = _ideal(fabrication=FabricationError(phase_rms=0.3, correlation_px=3.0, scale_error=0.0))
    assert not torch.allclose(no_scale(x, c), plant(x, c), rtol=1e-3)
    assert not torch.allclose(no_scale(x, c), _ideal()(x, c), rtol=1e-3)


def test_slm_quantisation_and_crosstalk():
    x = None
    quant = _ideal(slm=SLMPixels(bits=2, crosstalk=0.0))
    x, c = _inputs(quant), _smooth_phases(quant)
    step = 2 * math.pi / 4
    rounded = torch.remainder(torch.round(c["phase"] / step), 4) * step
    assert torch.allclose(quant(x, c), _ideal()(x, {"phase": rounded}), rtol=1e-9)
    assert not torch.allclose(quant(x, c), _ideal()(x, c), rtol=1e-3)
    cross = _ideal(slm=SLMPixels(bits=None, crosstalk=0.1))
    p = c["phase"]
    pad = torch.nn.functional.pad(p.unsqueeze(1), (1, 1, 1, 1), mode="replicate").squeeze(1)
    smoothed = 0.6 * p + 0.1 * (pad[:, :-2, 1:-1] + pad[:, 2:, 1:-1] + pad[:, 1:-1, :-2] + pad[:, 1:-1, 2:])
    assert torch.allclose(cross(x, c), _ideal()(x, {"phase": smoothed}), rtol=1e-9)
    assert not torch.allclose(cross(x, c), _ideal()(x, c), rtol=1e-3)


def test_detector_shot_noise_scales_with_signal_and_true_twin_is_noiseless_truth():
    camera = Camera(signal_electrons=400.0, full_well_electrons=None, read_noise_electrons=0.0, bit_depth=None)
    plant = _ideal(camera=camera)
    x, c = _inputs(plant, batch=1), _smooth_phases(plant)
    xs = x.expand(400, -1).contiguous()
    y = plant(xs, c, generator=torch.Generator().manual_seed(3))
    mean, var = y.mean(0), y.var(0)
    truth = _ideal()(x, c)[0]
    assert torch.allclose(mean, truth, rtol=0.1)
    # Poisson: variance of (electrons / signal) = mean / signal
    assert torch.allclose(var, truth / 400.0, rtol=0.35)
    noisy = DiffractiveNetwork(**SMALL, seed=2)
    xt = noisy.example_inputs(64)
    gap_true = (noisy(xt, c) - noisy.true_twin()(xt, c)).abs().mean()
    gap_nominal = (noisy(xt, c) - noisy.nominal_twin()(xt, c)).abs().mean()
    assert gap_true < 0.5 * gap_nominal  # the default truth (misalignment, fabrication) is far from nominal


def test_field_measurement_by_phase_shifting_holography():
    g = torch.Generator().manual_seed(0)
    field = torch.complex(torch.randn(3, 8, 8, generator=g), torch.randn(3, 8, 8, generator=g))
    exact = FieldMeasurement(frames=4, frame_noise=0.0).measure(field, g)
    assert torch.allclose(exact, field, atol=1e-5)
    noisy = FieldMeasurement(frames=4, frame_noise=0.02).measure(field, g)
    err = float((noisy - field).abs().square().mean() / field.abs().square().mean())
    assert 1e-4 < err < 0.05


def test_ffm_passes_are_metered_per_frame():
    plant = _ideal(field_measurement=FieldMeasurement(frames=4))
    x = plant.example_inputs(5)
    c = plant.initial_controls()
    before = plant.meter.queries
    data = plant.data_pass(x, c)
    assert plant.meter.queries - before == 4
    plant.error_pass(plant.error_source(data, torch.ones(5, 4)), c)
    assert plant.meter.queries - before == 8
    assert plant.meter.samples == 8 * 5


def test_constructor_errors():
    with pytest.raises(ValueError, match="upsample"):
        DiffractiveNetwork(input_shape=(28, 28), grid=50, upsample=2)
    with pytest.raises(ValueError, match="spacing"):
        DiffractiveNetwork(**(SMALL | {"spacing": (1e-3, 2e-3)}))
    with pytest.raises(TypeError, match="misalignment"):
        DiffractiveNetwork(**SMALL, misalignment=0.1)
    with pytest.raises(ValueError, match="bits"):
        SLMPixels(bits=0)


# ---- devices ---------------------------------------------------------------------------------------
def _tensors_of_optics(optics):
    return {"regions": optics.regions, "shifts": optics.shifts, "fabrication_map": optics.fabrication_map}


def test_plant_to_cpu_keeps_results_and_its_twins_live_on_the_plant_device():
    kw = SMALL | dict(slm=SLMPixels(bits=6, crosstalk=0.05), field_measurement=FieldMeasurement(frame_noise=0.02))
    plant, moved = DiffractiveNetwork(**kw), DiffractiveNetwork(**kw).to("cpu")
    x, c = _inputs(plant), plant.initial_controls()
    assert torch.equal(plant(x, c, generator=torch.Generator().manual_seed(3)),
                       moved(x, c, generator=torch.Generator().manual_seed(3)))
    assert torch.equal(plant.true_twin()(x, c), moved.true_twin()(x, c))
    for which in ("nominal_twin", "true_twin"):
        twin = getattr(moved, which)()
        assert all(t.device == moved.device for t in twin.state_dict().values())
        assert all(t is None or t.device == moved.device for t in _tensors_of_optics(twin.optics).values())


def test_plant_to_moves_the_optics_and_a_moved_twin_takes_a_copy_of_them():
    """The optics are plain objects (not nn.Modules): Plant.to must reach them (_device_state), and
    twin.to moves the twin's own copy without touching the plant's (else a CPU plant breaks)."""
    plant = DiffractiveNetwork(**SMALL)
    twin = plant.true_twin()
    twin.to("meta")
    assert all(t.device.type == "meta" for t in _tensors_of_optics(twin.optics).values())
    assert all(t.device.type == "cpu" for t in _tensors_of_optics(plant._true_optics).values())
    assert plant.true_twin()(_inputs(plant, 2), plant.initial_controls()).shape == (2, 4)  # plant still works
    plant.to("meta")
    for optics in (plant._true_optics, plant._nominal_optics, plant.nominal_twin().optics):
        assert all(t is None or t.device.type == "meta" for t in _tensors_of_optics(optics).values())
    assert plant._regions.device.type == "meta" and plant._fab_map.device.type == "meta"


def test_transfer_functions_are_cached_per_device_and_the_audit_does_not_poison_the_cpu_cache():
    from pnnlab.devices import device_audit
    plant = DiffractiveNetwork.ideal(**SMALL)
    optics = plant._nominal_optics
    with device_audit():  # the default device is "meta" in here: device=None must still mean the CPU
        forward, _ = optics.transfers(torch.complex64)
    assert forward[0].device.type == "cpu"
    meta, _ = optics.transfers(torch.complex64, torch.device("meta"))
    assert meta[0].device.type == "meta" and optics.transfers(torch.complex64, "cpu")[0][0].device.type == "cpu"
