"""Memristor device model: bounds, soft-bounds asymmetry, exact vectorised pulse statistics, drift law,
stuck devices, the programming controller, and the crossbar built from it."""

import math
from dataclasses import replace

import pytest
import torch

from pnnlab.plants.electronics import (HFOX_LI_2018, IDEAL_DEVICE, TAOX_YI_2023, MemristorArray,
                                       MemristorCrossbarPlant, MemristorDevice)
from pnnlab.plants.electronics.memristor import soft_bounds_after
from pnnlab.testing import check_plant

torch.set_num_threads(1)


def _array(device, shape=(2000,), seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    a = MemristorArray(shape, device, generator=g, dtype=dtype)
    return a, g


def test_presets_are_valid_and_cite_their_sources():
    for device in (TAOX_YI_2023, HFOX_LI_2018, IDEAL_DEVICE):
        assert device.g_min_S < device.g_max_S
        assert device.source
    assert "10.1038/s41928-022-00869-w" in TAOX_YI_2023.source
    assert "10.1038/s41467-018-04484-2" in HFOX_LI_2018.source


def test_conductance_stays_within_bounds_under_any_pulse_train():
    device = replace(HFOX_LI_2018, read_noise=0.0)
    a, g = _array(device)
    a.write(torch.full((2000,), 0.5 * (device.g_min_S + device.g_max_S), dtype=torch.float64), g)
    for _ in range(30):
        n = torch.randint(-200, 200, (2000,), generator=g)
        a.apply_pulses(n, g)
        G = a.conductance()
        assert float(G.min()) >= device.g_min_S - 1e-18 and float(G.max()) <= device.g_max_S + 1e-18
    a.advance(1e6)
    G = a.conductance()
    assert float(G.min()) >= device.g_min_S - 1e-18 and float(G.max()) <= device.g_max_S + 1e-18


def test_soft_bounds_make_updates_nonlinear_and_asymmetric():
    device = MemristorDevice(step_up=0.02, step_down=0.01)
    a, g = _array(device, shape=(3,))
    a.write(torch.tensor([device.g_min_S, 0.5 * (device.g_min_S + device.g_max_S), device.g_max_S * 0.99],
                         dtype=torch.float64), g)
    before = a.conductance().clone()
    a.apply_pulses(torch.ones(3), g)
    up = a.conductance() - before
    assert float(up[0]) > float(up[1]) > float(up[2]) > 0  # SET steps shrink towards G_max
    assert math.isclose(float(up[1]) / device.range_S, device.step_up, rel_tol=1e-9)  # mid-range step
    a2, g2 = _array(device, shape=(1,))
    mid = torch.tensor([0.5 * (device.g_min_S + device.g_max_S)], dtype=torch.float64)
    a2.write(mid, g2)
    a2.apply_pulses(torch.tensor([20]), g2)
    a2.apply_pulses(torch.tensor([-20]), g2)
    assert float(a2.conductance()[0]) > float(mid[0])  # 20 SET + 20 RESET does not return: asymmetric
    w0 = torch.tensor([0.5], dtype=torch.float64)
    assert torch.allclose((a2.conductance() - device.g_min_S) / device.range_S,
                          soft_bounds_after(soft_bounds_after(w0, 20, 0.04, 0.02), -20, 0.04, 0.02))


def test_vectorised_n_pulse_statistics_equal_pulse_by_pulse_simulation():
    """The O(1) draw of n pulses has the mean and variance of n sequential noisy pulses."""
    device = MemristorDevice(step_up=0.03, step_down=0.02, cycle_noise=0.5)
    n_dev, n_pulses = 4000, 15
    start = torch.full((n_dev,), device.g_min_S + 0.3 * device.range_S, dtype=torch.float64)
    for sign in (1, -1):
        fast, g1 = _array(device, shape=(n_dev,), seed=1)
        fast.write(start, g1)
        fast.apply_pulses(torch.full((n_dev,), sign * n_pulses), g1)
        slow, g2 = _array(device, shape=(n_dev,), seed=2)
        slow.write(start, g2)
        for _ in range(n_pulses):
            slow.apply_pulses(torch.full((n_dev,), sign), g2)
        a, b = fast.conductance() / device.range_S, slow.conductance() / device.range_S
        assert abs(float(a.mean() - b.mean())) < 4 * float(b.std()) / math.sqrt(n_dev) + 1e-4
        assert 0.85 < float(a.std() / b.std()) < 1.15


def test_power_law_drift():
    device = MemristorDevice(drift_nu=0.05, drift_t0_s=1.0)
    a, g = _array(device, shape=(5,))
    a.write(torch.linspace(2e-5, 9e-5, 5, dtype=torch.float64), g)
    g0 = a.conductance() - device.g_min_S
    for t in (10.0, 1000.0, 1e5):
        a.advance(t - a.clock_s)
        ratio = (a.conductance() - device.g_min_S) / g0
        assert torch.allclose(ratio, torch.full_like(ratio, (1 + t) ** -0.05), rtol=1e-12)
    # log-log slope of (G - G_min) against time approaches -nu
    a.advance(1e7)
    late = (a.conductance() - device.g_min_S) / g0
    slope = math.log(float(late[0]) / float(ratio[0])) / math.log((1 + 1e7 + 1e5) / (1 + 1e5))
    assert abs(slope + 0.05) < 1e-3


def test_stuck_devices_ignore_pulses():
    device = MemristorDevice(stuck_fraction=0.3)
    a, g = _array(device, shape=(1000,))
    a.write(torch.full((1000,), 5e-5, dtype=torch.float64), g)
    stuck = a._stuck.clone()
    assert 0.2 < float(stuck.double().mean()) < 0.4
    before = a.conductance().clone()
    a.apply_pulses(torch.full((1000,), 10), g)
    after = a.conductance()
    assert torch.equal(after[stuck], before[stuck])
    assert bool((after[~stuck] > before[~stuck]).all())
    assert set(torch.unique(after[stuck]).tolist()) <= {device.g_min_S, device.g_max_S}


def test_controller_accumulates_sub_step_requests():
    device = IDEAL_DEVICE
    a, g = _array(device, shape=(1,))
    target = torch.tensor([5e-5], dtype=torch.float64)
    a.write(target, g)
    step = device.step_up * device.range_S
    sent = []
    for k in range(1, 5):
        sent.append(a.program(target + k * 0.3 * step, g)["pulses"])
    assert sent == [0, 1, 0, 0] or sum(sent) == 1  # 0.3, 0.6 -> 1 pulse, 0.9, 1.2 -> still 1 in total
    assert sum(sent) == 1
    assert a.programming_energy_J == pytest.approx(device.pulse_energy_J)


def test_read_noise_is_fresh_and_unbiased():
    device = MemristorDevice(read_noise=0.05)
    a, g = _array(device, shape=(20000,))
    a.write(torch.full((20000,), 5e-5, dtype=torch.float64), g)
    r1, r2 = a.read(g), a.read(g)
    assert not torch.equal(r1, r2)
    assert abs(float(r1.mean()) / 5e-5 - 1) < 3e-3
    assert abs(float((r1 / 5e-5).std()) - 0.05) < 3e-3


def test_crossbar_ideal_limit_and_pulsed_update():
    check_plant(MemristorCrossbarPlant(in_features=6, out_features=4, device=TAOX_YI_2023))
    plant = MemristorCrossbarPlant(in_features=6, out_features=4, device=IDEAL_DEVICE)
    controls = plant.initial_controls()
    x = torch.randn(5, 6)
    twin = plant.nominal_twin()
    assert torch.allclose(plant(x, controls), twin(x, controls), atol=1e-6)
    new = {k: v.clone() for k, v in controls.items()}
    new["g_plus"] += 0.05 * IDEAL_DEVICE.range_S
    stats = plant.program(new)
    assert stats["pulses"] == pytest.approx(24 * 50, abs=24)  # 50 pulses per device
    # soft bounds: the realised step is close to, but not exactly, the requested one
    realised = plant._plus.conductance().double() - controls["g_plus"].double()
    requested = 0.05 * IDEAL_DEVICE.range_S
    assert float((realised / requested - 1).abs().max()) < 0.6  # soft bounds: step x 2(1 - w)
    assert float((realised / requested - 1).abs().max()) > 1e-4


def test_device_validation():
    with pytest.raises(ValueError, match="g_min_S must be < g_max_S"):
        MemristorDevice(g_min_S=1e-4, g_max_S=1e-5)
    with pytest.raises(ValueError, match="step_up"):
        MemristorDevice(step_up=0.7)
    with pytest.raises(ValueError, match="stuck_fraction"):
        MemristorDevice(stuck_fraction=1.5)
    with pytest.raises(TypeError, match="MemristorDevice"):
        MemristorCrossbarPlant(in_features=2, out_features=2, device="HfOx")
