"""Microring weight bank: ideal physics, and one failing-if-removed test per hidden-truth element."""

import math

import pytest
import torch
from torch import nn

from pnnlab import ChannelAffine, PhysicalLayer
from pnnlab.plants.photonics.microring import (ChipTemperatureDrift, MicroringMismatch, MicroringWeightBank,
                                               RingDesign, bank_weights)
from pnnlab.testing import check_plant

IDEAL = MicroringMismatch.ideal()


def _weights(plant, heater):
    """Read the weight matrix off the plant: one-hot inputs, one query per channel."""
    eye = torch.eye(plant.in_features)
    return plant(eye, {"heater_mW": heater}).T  # (out, in)


def _peak_heater(plant, bank, ring, channel=None, base=None, points=2001):
    """Heater power of ``ring`` at which the weight of ``channel`` (default: its own) peaks."""
    channel = ring if channel is None else channel
    base = torch.zeros(plant.out_features, plant.in_features) if base is None else base
    powers = torch.linspace(0, plant.design.max_heater_mW, points)
    heaters = base.repeat(points, 1, 1)
    heaters[:, bank, ring] = powers
    x = torch.zeros(1, plant.in_features)
    x[0, channel] = 1.0
    with torch.no_grad():
        twin = plant.true_twin()
        values = torch.stack([twin(x, {"heater_mW": h})[0, bank] for h in heaters])
    return float(powers[values.argmax()])


def test_conforms_typical_and_ideal():
    check_plant(MicroringWeightBank(in_features=3, out_features=2))
    check_plant(MicroringWeightBank(in_features=3, out_features=2, mismatch=IDEAL, detector_noise=0.0))


def test_ideal_bank_is_the_lorentzian_weight_and_spans_minus_one_to_one():
    design = RingDesign()
    plant = MicroringWeightBank(in_features=3, out_features=1, mismatch=IDEAL, detector_noise=0.0)
    heater = torch.tensor([[0.0, design.rest_detuning_nm / design.tuning_nm_per_mW, 0.6]])
    w = _weights(plant, heater)[0]
    detuning = -design.rest_detuning_nm + design.tuning_nm_per_mW * heater[0]
    expected = 2.0 / (1.0 + (2 * detuning / design.fwhm_nm) ** 2) - 1.0
    torch.testing.assert_close(w, expected.float(), rtol=0, atol=1e-6)
    assert float(w[1]) == pytest.approx(1.0, abs=1e-6)  # on resonance: all light dropped
    assert float(w[0]) < -0.94  # at rest, 0.3 nm = 3 FWHM off: mostly through
    # nominal twin == ideal plant
    x = plant.example_inputs(5)
    torch.testing.assert_close(plant.nominal_twin()(x, {"heater_mW": heater}), plant(x, {"heater_mW": heater}))


def test_fabrication_offsets_move_each_resonance_by_its_offset():
    """Mutation: without offsets the peak heater power is the design value for every ring."""
    mismatch = MicroringMismatch(offset_sigma_nm=0.05, thermal_crosstalk=0.0, neighbour_resonances=False, drift=None)
    plant = MicroringWeightBank(in_features=3, out_features=2, mismatch=mismatch, detector_noise=0.0, seed=3)
    d = plant.design
    design_peak = d.rest_detuning_nm / d.tuning_nm_per_mW
    shifts = []
    for bank in range(2):
        for ring in range(3):
            peak = _peak_heater(plant, bank, ring)
            offset = float(plant._offsets_nm[bank, ring])
            assert peak == pytest.approx(design_peak - offset / d.tuning_nm_per_mW, abs=2e-3)
            shifts.append(abs(peak - design_peak))
    assert max(shifts) > 0.05  # offsets of 0.05 nm rms move peaks by ~0.2 mW: really there


def test_neighbouring_resonance_tails_cross_talk_into_other_channels():
    """Mutation: without inter-channel crosstalk, tuning ring 0 leaves channel 1's weight alone."""
    d = RingDesign()
    lor = lambda det: 1.0 / (1.0 + (2 * det / d.fwhm_nm) ** 2)
    base = torch.zeros(1, 3)
    tuned = base.clone()
    tuned[0, 0] = d.rest_detuning_nm / d.tuning_nm_per_mW  # ring 0 moved onto lambda_0
    for tails in (True, False):
        mismatch = MicroringMismatch(offset_sigma_nm=0.0, thermal_crosstalk=0.0, neighbour_resonances=tails, drift=None)
        plant = MicroringWeightBank(in_features=3, out_features=1, mismatch=mismatch, detector_noise=0.0)
        w_base, w_tuned = float(_weights(plant, base)[0, 1]), float(_weights(plant, tuned)[0, 1])
        if tails:
            # channel 1 (at 1.6 nm) passes ring 0 (at -0.3 or 0 nm), ring 1 (1.3 nm), ring 2 (2.9 nm)
            def expected(ring0):
                through = (1 - lor(1.6 - ring0)) * (1 - lor(0.3)) * (1 - lor(1.6 - 2.9))
                return 1 - 2 * through
            assert w_base == pytest.approx(expected(-0.3), abs=1e-6)
            assert w_tuned == pytest.approx(expected(0.0), abs=1e-6)
            assert w_tuned - w_base > 2e-4  # small at 16 linewidths of spacing, but there
        else:
            assert abs(w_tuned - w_base) < 1e-7


def test_thermal_crosstalk_shifts_the_neighbouring_ring():
    """Mutation: without thermal crosstalk, heating ring 0 does not move ring 1's resonance."""
    c = 0.1
    for crosstalk in (c, 0.0):
        mismatch = MicroringMismatch(offset_sigma_nm=0.0, thermal_crosstalk=crosstalk, neighbour_resonances=False,
                                     drift=None)
        plant = MicroringWeightBank(in_features=3, out_features=1, mismatch=mismatch, detector_noise=0.0)
        base = torch.zeros(1, 3)
        base[0, 0] = 1.0  # 1 mW on ring 0
        peak = _peak_heater(plant, 0, 1, base=base)
        design_peak = plant.design.rest_detuning_nm / plant.design.tuning_nm_per_mW
        assert peak == pytest.approx(design_peak - crosstalk * 1.0, abs=2e-3)


def test_chip_temperature_drift_follows_device_time():
    """Mutation: without drift the weights are the same after a quarter period of idling."""
    drift = ChipTemperatureDrift(amplitude_K=0.5, period_s=100.0)
    for d, moves in ((drift, True), (None, False)):
        mismatch = MicroringMismatch(offset_sigma_nm=0.0, thermal_crosstalk=0.0, neighbour_resonances=False, drift=d)
        plant = MicroringWeightBank(in_features=3, out_features=1, mismatch=mismatch, detector_noise=0.0)
        peak0 = _peak_heater(plant, 0, 1)
        plant.advance_time(25.0)  # a quarter period: dT = +0.5 K, resonance +0.04 nm
        assert plant.elapsed_seconds >= 25.0
        peak1 = _peak_heater(plant, 0, 1)
        if moves:
            assert peak1 - peak0 == pytest.approx(-0.08 * 0.5 / plant.design.tuning_nm_per_mW, abs=2e-3)
        else:
            assert peak1 == peak0
    # queries advance the clock too
    plant = MicroringWeightBank(in_features=3, out_features=1)
    plant(plant.example_inputs(100), plant.initial_controls())
    assert plant.elapsed_seconds == pytest.approx(10e-6 + 100e-9)


def test_detector_noise_uses_the_per_call_generator_and_has_its_rms():
    plant = MicroringWeightBank(in_features=3, out_features=2, mismatch=IDEAL, detector_noise=0.01)
    x, c = plant.example_inputs(2000), plant.initial_controls()
    y1 = plant(x, c, generator=torch.Generator().manual_seed(1))
    y2 = plant(x, c, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(y1, y2)
    residual = y1 - plant.true_twin()(x, c)
    assert float(residual.std()) == pytest.approx(0.01, rel=0.1)


def test_heater_energy_is_charged():
    plant = MicroringWeightBank(in_features=2, out_features=1, mismatch=IDEAL)
    heater = torch.full((1, 2), 2.0)
    plant(plant.example_inputs(10), {"heater_mW": heater})
    seconds = plant.cost.seconds(10)
    assert plant.meter.joules == pytest.approx(4e-3 * seconds)


def test_validation_names_the_argument():
    with pytest.raises(TypeError, match="mismatch"):
        MicroringWeightBank(mismatch="typical")
    with pytest.raises(ValueError, match="thermal_crosstalk"):
        MicroringMismatch(thermal_crosstalk=0.9)
    with pytest.raises(ValueError, match="channel_spacing_nm"):
        RingDesign(channel_spacing_nm=0.4)


def test_pat_and_in_silico_train_a_bank():
    """A 4-channel, 2-output bank learns a signed linear map. Fabrication offsets of half a linewidth
    make in-silico training on the ideal twin miss on the plant; PAT, which queries the plant, fits."""
    from pnnlab.registry import METHODS
    target_w = torch.tensor([[0.8, -0.5, 0.2, -0.9], [-0.3, 0.6, -0.7, 0.4]])
    x = torch.rand(256, 4, generator=torch.Generator().manual_seed(1))
    y = x @ target_w.T
    losses = {}
    for method_name in ("pat", "in_silico"):
        torch.manual_seed(0)
        plant = MicroringWeightBank(in_features=4, out_features=2,
                                    mismatch=MicroringMismatch(offset_sigma_nm=0.05, drift=None), detector_noise=1e-3)
        model = nn.Sequential(PhysicalLayer(plant, twin=plant.nominal_twin()))
        method = METHODS.build(method_name)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(150):
            opt.zero_grad()
            method.step(model, x, y, nn.functional.mse_loss)
            opt.step()
        losses[method_name] = float(nn.functional.mse_loss(model(x), y))
    assert losses["pat"] < 0.06, losses
    assert losses["in_silico"] > 5 * losses["pat"], losses


def test_bank_weights_are_differentiable():
    heater = torch.full((2, 3), 1.0, requires_grad=True)
    bank_weights(heater, RingDesign(), offsets_nm=torch.zeros(2, 3), thermal_crosstalk=0.05,
                 neighbour_resonances=True).sum().backward()
    assert torch.isfinite(heater.grad).all() and float(heater.grad.abs().sum()) > 0



def test_bank_keeps_its_results_on_to_cpu_and_moves_every_tensor_with_to():
    """plant.to("cpu") changes nothing (same generator, same noise; both twins); plant.to(device) moves
    the fabrication offsets, and the twins it builds afterwards hold them on that device ("meta")."""
    from photonic_devices import off_device

    plant = MicroringWeightBank(in_features=4, out_features=3)
    x, controls = plant.example_inputs(5), plant.initial_controls()

    def results():
        return [plant(x, controls, generator=torch.Generator().manual_seed(2)), plant.nominal_twin()(x, controls),
                plant.true_twin()(x, controls)]

    before = results()
    plant._elapsed_s = 0.0  # the drift follows the chip clock: rewind it for the second round
    assert plant.to("cpu") is plant
    assert all(torch.equal(a, b) for a, b in zip(before, results()))
    plant.to("meta")
    for name, obj in (("plant", plant), ("nominal twin", plant.nominal_twin()), ("true twin", plant.true_twin())):
        assert off_device(obj, "meta") == [], name
    assert plant.true_twin().offsets_nm.device.type == "meta"
