"""Memristor device model: bounds, soft-bounds asymmetry, both cycle-to-cycle noise forms against their
formulas, vectorised pulse statistics against an independent pulse-by-pulse simulation, device-to-device
variation of steps and bounds, RRAM relaxation and PCM drift laws, the device clock, device-owned
programming randomness, stuck devices, the programming controller."""

import math
from dataclasses import replace

import pytest
import torch

from pnnlab.plants.electronics import (HFOX_LI_2018, IDEAL_DEVICE, TAOX_YI_2023, MemristorArray,
                                       MemristorCrossbarPlant, MemristorDevice)
from pnnlab.plants.electronics.crossbar import CrossbarPeriphery
from pnnlab.plants.electronics.memristor import LogTimeRelaxation, soft_bounds_after

torch.set_num_threads(1)


def _array(device, shape=(2000,), seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    a = MemristorArray(shape, device, generator=g, dtype=dtype)
    return a, g


def _write_w(array, w):
    """Write normalised states ``w`` (per device's own bounds) with the array's write-verify."""
    lo, hi = array.bounds_S
    array.write(lo + (hi - lo) * w)


def test_presets_are_valid_and_cite_their_sources():
    for device in (TAOX_YI_2023, HFOX_LI_2018, IDEAL_DEVICE):
        assert device.g_min_S < device.g_max_S
        assert device.source
    assert "10.1038/s41928-022-00869-w" in TAOX_YI_2023.source
    assert "10.1038/s41467-018-04484-2" in HFOX_LI_2018.source
    for rram in (TAOX_YI_2023, HFOX_LI_2018):  # RRAM presets relax; the PCM power law is off
        assert rram.relaxation is not None and rram.drift_nu == 0 and rram.drift_nu_spread == 0
        assert "2502.04524" in rram.relaxation.source
        assert rram.multiplicative_cycle_noise
        assert rram.step_spread > 0 and rram.up_down_spread > 0 and rram.g_min_spread > 0 and rram.g_max_spread > 0


def test_conductance_stays_within_each_devices_bounds_under_any_pulse_train():
    device = replace(HFOX_LI_2018, read_noise=0.0)
    a, g = _array(device)
    lo, hi = a.bounds_S
    assert float(lo.std() / lo.mean()) > 0.05 and float(hi.std() / hi.mean()) > 0.05  # bounds vary
    a.write(torch.full((2000,), 0.5 * (device.g_min_S + device.g_max_S), dtype=torch.float64))
    for _ in range(30):
        n = torch.randint(-200, 200, (2000,), generator=g)
        a.apply_pulses(n)
        G = a.conductance()
        assert bool((G >= lo - 1e-18).all()) and bool((G <= hi + 1e-18).all())
    a.advance(1e6)
    G = a.conductance()
    assert bool((G >= lo - 1e-18).all()) and bool((G <= hi + 1e-18).all())


def test_soft_bounds_make_updates_nonlinear_and_asymmetric():
    device = MemristorDevice(step_up=0.02, step_down=0.01)
    a, g = _array(device, shape=(3,))
    a.write(torch.tensor([device.g_min_S, 0.5 * (device.g_min_S + device.g_max_S), device.g_max_S * 0.99],
                         dtype=torch.float64))
    before = a.conductance().clone()
    a.apply_pulses(torch.ones(3))
    up = a.conductance() - before
    assert float(up[0]) > float(up[1]) > float(up[2]) > 0  # SET steps shrink towards G_max
    assert math.isclose(float(up[1]) / device.range_S, device.step_up, rel_tol=1e-9)  # mid-range step
    a2, g2 = _array(device, shape=(1,))
    mid = torch.tensor([0.5 * (device.g_min_S + device.g_max_S)], dtype=torch.float64)
    a2.write(mid)
    a2.apply_pulses(torch.tensor([20]))
    a2.apply_pulses(torch.tensor([-20]))
    assert float(a2.conductance()[0]) > float(mid[0])  # 20 SET + 20 RESET does not return: asymmetric
    w0 = torch.tensor([0.5], dtype=torch.float64)
    assert torch.allclose((a2.conductance() - device.g_min_S) / device.range_S,
                          soft_bounds_after(soft_bounds_after(w0, 20, 0.04, 0.02), -20, 0.04, 0.02))


@pytest.mark.parametrize("multiplicative", [True, False])
def test_single_pulse_cycle_to_cycle_noise_matches_its_formula(multiplicative):
    """One pulse from w0: mean a(1 - w0) (SET) / -a w0 (RESET); standard deviation sigma * (that mean
    step) for multiplicative noise, sigma * step (independent of w0) for additive noise (aihwkit's
    LinearStepDevice/SoftBoundsDevice update with and without mult_noise)."""
    sigma, su, sd = 0.4, 0.03, 0.02
    device = MemristorDevice(step_up=su, step_down=sd, cycle_noise=sigma, multiplicative_cycle_noise=multiplicative)
    N = 40000
    for w0 in (0.15, 0.5, 0.85):
        for sign in (1, -1):
            a, _ = _array(device, shape=(N,), seed=3)
            _write_w(a, torch.full((N,), w0, dtype=torch.float64))
            a.apply_pulses(torch.full((N,), sign))
            dw = a.state() - w0
            mean_step = 2 * su * (1 - w0) if sign > 0 else -2 * sd * w0
            expected_std = sigma * abs(mean_step) if multiplicative else sigma * (su if sign > 0 else sd)
            assert abs(float(dw.mean()) - mean_step) < 5 * expected_std / math.sqrt(N)
            assert float(dw.std()) == pytest.approx(expected_std, rel=0.03)


def _pulse_by_pulse(w0, n, a, sigma, step, multiplicative, generator):
    """Independent reference: n sequential single pulses of the soft-bounds model (SET if n > 0)."""
    w = w0.clone()
    for _ in range(abs(n)):
        xi = torch.randn(w.shape, generator=generator, dtype=w.dtype)
        mean = a * (1 - w) if n > 0 else -a * w
        w = w + (mean * (1 + sigma * xi) if multiplicative else mean + sigma * step * xi)
    return w


@pytest.mark.parametrize("multiplicative", [True, False])
def test_n_pulse_draw_matches_pulse_by_pulse_reference_and_closed_form(multiplicative):
    sigma, su, sd, n, N = 0.5, 0.03, 0.02, 15, 40000
    device = MemristorDevice(step_up=su, step_down=sd, cycle_noise=sigma, multiplicative_cycle_noise=multiplicative)
    w0 = torch.full((N,), 0.3, dtype=torch.float64)
    ref_gen = torch.Generator().manual_seed(11)
    for sign, a_, step in ((1, 2 * su, su), (-1, 2 * sd, sd)):
        fast, _ = _array(device, shape=(N,), seed=1)
        _write_w(fast, w0)
        fast.apply_pulses(torch.full((N,), sign * n))
        w_fast = fast.state()
        w_ref = _pulse_by_pulse(w0, sign * n, a_, sigma, step, multiplicative, ref_gen)
        assert abs(float(w_fast.mean() - w_ref.mean())) < 5 * float(w_ref.std()) * math.sqrt(2.0 / N)
        assert float(w_fast.std() / w_ref.std()) == pytest.approx(1.0, abs=0.04)
        # closed form of the recurrence
        fixed = 1.0 if sign > 0 else 0.0
        u0 = abs(fixed - 0.3)
        mean = fixed + (0.3 - fixed) * (1 - a_) ** n
        if multiplicative:
            var = u0 ** 2 * (((1 - a_) ** 2 + (a_ * sigma) ** 2) ** n - (1 - a_) ** (2 * n))
        else:
            var = (sigma * step) ** 2 * (1 - (1 - a_) ** (2 * n)) / (1 - (1 - a_) ** 2)
        assert float(w_fast.mean()) == pytest.approx(mean, abs=5 * math.sqrt(var / N))
        assert float(w_fast.var()) == pytest.approx(var, rel=0.05)


def test_device_to_device_variation_of_step_sizes_and_up_down_balance():
    su, sd, spread, ud = 0.02, 0.01, 0.25, 0.1
    device = MemristorDevice(step_up=su, step_down=sd, step_spread=spread, up_down_spread=ud)
    N = 30000
    a, _ = _array(device, shape=(N,))
    _write_w(a, torch.full((N,), 0.5, dtype=torch.float64))
    a.apply_pulses(torch.ones(N))
    w1 = a.state()
    a_up = (w1 - 0.5) / 0.5
    a.apply_pulses(-torch.ones(N))
    a_down = (w1 - a.state()) / w1
    scale = torch.sqrt(a_up * a_down / (4 * su * sd))          # = LN(spread) * sqrt(1 - beta^2)
    beta = (a_up / (2 * su) - a_down / (2 * sd)) / (a_up / (2 * su) + a_down / (2 * sd))
    assert float(torch.log(scale).std()) == pytest.approx(spread, rel=0.05)
    assert float(scale.mean()) == pytest.approx(1.0, abs=0.02)
    assert float(beta.std()) == pytest.approx(ud, rel=0.05)
    assert abs(float(beta.mean())) < 0.01
    same, _ = _array(MemristorDevice(step_up=su, step_down=sd), shape=(100,))
    _write_w(same, torch.full((100,), 0.5, dtype=torch.float64))
    same.apply_pulses(torch.ones(100))
    assert float(same.state().std()) < 1e-12                      # no spread: identical devices


def test_device_to_device_variation_of_the_bounds():
    device = MemristorDevice(g_min_S=1e-5, g_max_S=1e-4, step_up=0.02, step_down=0.02,
                             g_min_spread=0.2, g_max_spread=0.1)
    N = 30000
    a, _ = _array(device, shape=(N,))
    a.write(torch.full((N,), device.g_max_S, dtype=torch.float64))
    a.apply_pulses(torch.full((N,), 2000))                        # saturate: every device at its own G_max
    g_hi = a.conductance()
    assert float(torch.log(g_hi / device.g_max_S).std()) == pytest.approx(0.1, rel=0.05)
    assert float(g_hi.mean()) == pytest.approx(device.g_max_S, rel=0.01)
    a.apply_pulses(torch.full((N,), -4000))
    g_lo = a.conductance()
    assert float(torch.log(g_lo / device.g_min_S).std()) == pytest.approx(0.2, rel=0.05)
    assert float(g_lo.mean()) == pytest.approx(device.g_min_S, rel=0.01)
    # a write-verify lands on the target where the device can hold it
    b, _ = _array(device, shape=(N,))
    b.write(torch.full((N,), 5e-5, dtype=torch.float64))
    assert torch.allclose(b.conductance(), torch.full((N,), 5e-5, dtype=torch.float64), rtol=1e-12)


def test_rram_relaxation_follows_its_log_time_law():
    law = LogTimeRelaxation(mean_shift=0.01, spread_log=0.004, spread_fast=0.02, t0_s=2.0)
    device = MemristorDevice(step_up=0.01, step_down=0.01, relaxation=law)
    N = 40000
    a, _ = _array(device, shape=(N,))
    _write_w(a, torch.full((N,), 0.5, dtype=torch.float64))
    assert torch.allclose(a.state(), torch.full((N,), 0.5, dtype=torch.float64))  # continuous at t_p
    trajectories = []
    for t in (1.0, 60.0, 3600.0, 86400.0):
        a.advance(t - a.clock_s)
        dw = a.state() - 0.5
        L = math.log(1 + t / 2.0)
        mean, std = -0.01 * L, 0.02 * (1 - math.exp(-t / 2.0)) + 0.004 * L
        assert float(dw.mean()) == pytest.approx(mean, abs=5 * std / math.sqrt(N))
        assert float(dw.std()) == pytest.approx(std, rel=0.03)
        trajectories.append((dw - mean) / std)
    # each device relaxes along its own trajectory (one draw per programming event)
    assert torch.allclose(trajectories[0], trajectories[-1], atol=1e-9)
    # pulses restart the relaxation of the devices they move, not of the others
    n = torch.zeros(N)
    n[: N // 2] = 1
    before = a.state()
    a.apply_pulses(n)
    a.advance(1e-9)
    assert torch.allclose(a.state()[N // 2:], before[N // 2:], atol=1e-12)
    assert float((a.state()[: N // 2] - before[: N // 2]).mean()) > 0


def test_falcone_constants_match_the_aihwkit_cmo_fit():
    law = LogTimeRelaxation.falcone2025(range_uS=82.0)
    t = torch.tensor([3600.0 * 24], dtype=torch.float64)
    # aihwkit ReRamCMONoiseModel: mean -0.08900206 ln t uS, std 0.04201137 ln t + 0.41183342 uS
    assert float(law.mean(t)) * 82.0 == pytest.approx(-0.08900206 * math.log(3600 * 24), rel=1e-4)
    assert float(law.spread(t)) * 82.0 == pytest.approx(0.04201137 * math.log(3600 * 24) + 0.41183342, rel=1e-4)


def test_power_law_drift():
    device = MemristorDevice(drift_nu=0.05, drift_t0_s=1.0)
    a, g = _array(device, shape=(5,))
    a.write(torch.linspace(2e-5, 9e-5, 5, dtype=torch.float64))
    g0 = a.conductance() - device.g_min_S
    for t in (10.0, 1000.0, 1e5):
        a.advance(t - a.clock_s)
        ratio = (a.conductance() - device.g_min_S) / g0
        assert torch.allclose(ratio, torch.full_like(ratio, (1 + t) ** -0.05), rtol=1e-12)
    a.advance(1e7)
    late = (a.conductance() - device.g_min_S) / g0
    slope = math.log(float(late[0]) / float(ratio[0])) / math.log((1 + 1e7 + 1e5) / (1 + 1e5))
    assert abs(slope + 0.05) < 1e-3


def test_device_clock_follows_plant_device_time_and_idle_periods():
    law = LogTimeRelaxation(mean_shift=0.01, spread_log=0.0, t0_s=1e-6)
    device = MemristorDevice(g_min_S=1e-6, g_max_S=1e-4, step_up=0.01, step_down=0.01, relaxation=law)
    plant = MemristorCrossbarPlant(in_features=8, out_features=4, device=device, periphery=CrossbarPeriphery.ideal())
    c = plant.initial_controls()
    x = torch.randn(64, 8)
    plant(x, c)
    for _ in range(3):
        plant(x, c)
    new = {k: v.clone() for k, v in c.items()}
    new["g_plus"] = (new["g_plus"] + 0.03 * device.range_S).clamp(max=device.g_max_S)
    plant.program(new)
    assert plant.elapsed_seconds == pytest.approx(plant.meter.device_seconds, rel=1e-12)
    assert plant.elapsed_seconds > 4 * 64 * plant.read_time_s  # the programming round's time counts
    assert plant._plus.clock_s == pytest.approx(plant.elapsed_seconds)
    assert plant._minus.clock_s == pytest.approx(plant.elapsed_seconds)
    # the queries' and the programming round's device time made the unmoved devices relax
    gm_written = c["g_minus"].double()
    assert torch.allclose(plant._minus.conductance().double(),
                          gm_written - device.range_S * 0.01 * math.log1p(plant.elapsed_seconds / 1e-6), rtol=1e-5)
    # idle time: advance_time moves the clock and the devices relax further; a meter reset does not reset it
    plant.meter.reset()
    t_before = plant.elapsed_seconds
    plant.advance_time(3600.0)
    assert plant.elapsed_seconds == pytest.approx(t_before + 3600.0)
    assert torch.allclose(plant._minus.conductance().double(),
                          gm_written - device.range_S * 0.01 * math.log1p((t_before + 3600.0) / 1e-6), rtol=1e-5)
    with pytest.raises(ValueError, match="seconds"):
        plant.advance_time(-1.0)


def test_programming_noise_uses_the_devices_generator_not_the_measurements():
    """Evaluation passes its own generator; it must not change what the devices hold afterwards."""
    device = replace(TAOX_YI_2023, read_noise=0.02)
    plants = [MemristorCrossbarPlant(in_features=6, out_features=5, device=device, seed=4) for _ in range(2)]
    c = plants[0].initial_controls()
    x = torch.randn(16, 6)
    ys = [p(x, c, generator=torch.Generator().manual_seed(100 + i)) for i, p in enumerate(plants)]
    assert not torch.equal(ys[0], ys[1])                 # measurement noise follows the call's generator
    new = {k: v + 0.05 * device.range_S * torch.randn(v.shape, generator=torch.Generator().manual_seed(1))
           for k, v in c.items()}
    new = {k: v.clamp(device.g_min_S, device.g_max_S) for k, v in new.items()}
    for i, p in enumerate(plants):
        p(x, new, generator=torch.Generator().manual_seed(200 + i))
    assert plants[0].pulses == plants[1].pulses > 0
    assert torch.equal(plants[0]._plus.conductance(), plants[1]._plus.conductance())
    assert torch.equal(plants[0]._minus.conductance(), plants[1]._minus.conductance())


def test_stuck_devices_ignore_pulses():
    device = MemristorDevice(stuck_fraction=0.3, g_min_spread=0.1, g_max_spread=0.1)
    a, g = _array(device, shape=(1000,))
    a.write(torch.full((1000,), 5e-5, dtype=torch.float64))
    stuck = a._stuck.clone()
    assert 0.2 < float(stuck.double().mean()) < 0.4
    before = a.conductance().clone()
    a.apply_pulses(torch.full((1000,), 10))
    after = a.conductance()
    assert torch.equal(after[stuck], before[stuck])
    assert bool((after[~stuck] > before[~stuck]).all())
    lo, hi = a.bounds_S
    at_bound = (torch.isclose(after[stuck], lo[stuck], rtol=1e-12, atol=0)
                | torch.isclose(after[stuck], hi[stuck], rtol=1e-12, atol=0))
    assert bool(at_bound.all())


def test_controller_accumulates_sub_step_requests():
    device = IDEAL_DEVICE
    a, g = _array(device, shape=(1,))
    target = torch.tensor([5e-5], dtype=torch.float64)
    a.write(target)
    step = device.step_up * device.range_S
    sent = [a.program(target + k * 0.3 * step)["pulses"] for k in range(1, 5)]
    assert sent == [0, 1, 0, 0]  # 0.3, 0.6 -> 1 pulse, 0.9, 1.2 -> still 1 in total
    assert a.programming_energy_J == pytest.approx(device.pulse_energy_J)


def test_read_noise_is_fresh_and_unbiased():
    device = MemristorDevice(read_noise=0.05)
    a, g = _array(device, shape=(20000,))
    a.write(torch.full((20000,), 5e-5, dtype=torch.float64))
    r1, r2 = a.read(g), a.read(g)
    assert not torch.equal(r1, r2)
    assert abs(float(r1.mean()) / 5e-5 - 1) < 3e-3
    assert abs(float((r1 / 5e-5).std()) - 0.05) < 3e-3


def test_device_validation():
    with pytest.raises(ValueError, match="g_min_S must be < g_max_S"):
        MemristorDevice(g_min_S=1e-4, g_max_S=1e-5)
    with pytest.raises(ValueError, match="step_up"):
        MemristorDevice(step_up=0.7)
    with pytest.raises(ValueError, match="stuck_fraction"):
        MemristorDevice(stuck_fraction=1.5)
    with pytest.raises(ValueError, match="up_down_spread"):
        MemristorDevice(up_down_spread=0.6)
    with pytest.raises(ValueError, match="g_max_spread"):
        MemristorDevice(g_max_spread=-0.1)
    with pytest.raises(TypeError, match="multiplicative_cycle_noise"):
        MemristorDevice(multiplicative_cycle_noise="yes")
    with pytest.raises(TypeError, match="LogTimeRelaxation"):
        MemristorDevice(relaxation=0.01)
    with pytest.raises(ValueError, match="mean_shift"):
        LogTimeRelaxation(mean_shift=-1.0, spread_log=0.0)
    with pytest.raises(TypeError, match="MemristorDevice"):
        MemristorCrossbarPlant(in_features=2, out_features=2, device="HfOx")
    ideal = TAOX_YI_2023.ideal()
    assert ideal.relaxation is None and ideal.up_down_spread == 0 and ideal.g_max_spread == 0


def test_write_verify_lands_within_the_write_noise():
    device = MemristorDevice(write_noise=0.02)
    N = 30000
    a, _ = _array(device, shape=(N,))
    _write_w(a, torch.full((N,), 0.5, dtype=torch.float64))
    err = a.state() - 0.5
    assert float(err.std()) == pytest.approx(0.02, rel=0.03)
    assert abs(float(err.mean())) < 5 * 0.02 / math.sqrt(N)


def test_array_is_device_state_its_model_is_device_model_and_moving_keeps_its_draws():
    """MemristorArray keeps its technology as ``device_model`` (the constructor keyword stays
    ``device=``); ``to`` moves every state tensor and not its own generator, so programming on an
    array moved to the CPU draws exactly what an unmoved one draws."""
    a, _ = _array(TAOX_YI_2023, shape=(6, 5))
    assert a.device_model is TAOX_YI_2023 and not hasattr(a, "device")
    assert a._device_state and a.torch_device == torch.device("cpu")
    b, _ = _array(TAOX_YI_2023, shape=(6, 5))
    assert b.to("cpu") is b
    target = 0.5 * (TAOX_YI_2023.g_min_S + TAOX_YI_2023.g_max_S) * torch.ones(6, 5, dtype=torch.float64)
    for array in (a, b):
        array.write(target)
        array.program(target * 1.1)
        array.advance(50.0)
    assert torch.equal(a.conductance(), b.conductance())
    assert torch.equal(a.read(torch.Generator().manual_seed(3)), b.read(torch.Generator().manual_seed(3)))
    a.to("meta")
    assert all(t.device.type == "meta" for t in vars(a).values() if isinstance(t, torch.Tensor))
    assert a.nominal.device.type == "meta" and a._own_generator.device.type == "cpu"
