"""Memristor crossbar: true twin (noiseless plant == true twin, before and after programming and idle
time; true twin != nominal twin), each periphery non-ideality (DAC step and bound, ADC step and bound,
output noise, abs-max input scaling), the ideal periphery x @ W.T, read energy, pulsed updates."""

import math
from dataclasses import replace

import pytest
import torch

from pnnlab.plants.electronics import IDEAL_DEVICE, TAOX_YI_2023, MemristorCrossbarPlant
from pnnlab.plants.electronics.crossbar import AIHWKIT_PERIPHERY, CrossbarPeriphery
from pnnlab.plants.electronics.memristor import LogTimeRelaxation
from pnnlab.testing import check_plant

torch.set_num_threads(1)

IDEAL = CrossbarPeriphery.ideal()
#: TaOx with every random noise off but every fabrication error, relaxation and stuck device kept
NOISELESS_TAOX = replace(TAOX_YI_2023, cycle_noise=0.0, write_noise=0.0, read_noise=0.0,
                         stuck_fraction=0.05,
                         relaxation=LogTimeRelaxation(mean_shift=0.004, spread_log=0.002, spread_fast=0.01))
NOISELESS_PERIPHERY = replace(AIHWKIT_PERIPHERY, out_noise=0.0)


def _true_weight(plant):
    return ((plant._plus.conductance() - plant._minus.conductance()) / plant.device_model.range_S)


def _shifted(controls, plant, scale, seed):
    d = plant.device_model
    g = torch.Generator().manual_seed(seed)
    return {k: (v + scale * d.range_S * torch.randn(v.shape, generator=g)).clamp(d.g_min_S, d.g_max_S)
            for k, v in controls.items()}


def test_conformance_and_defaults_follow_aihwkit():
    check_plant(MemristorCrossbarPlant(in_features=6, out_features=4, device=TAOX_YI_2023))
    p = MemristorCrossbarPlant(in_features=6, out_features=4)
    assert p.periphery == AIHWKIT_PERIPHERY
    assert (p.periphery.inp_bound, p.periphery.out_bound, p.periphery.out_noise) == (1.0, 12.0, 0.06)
    assert p.periphery.inp_res == pytest.approx(1 / 126) and p.periphery.out_res == pytest.approx(1 / 510)
    assert "aihwkit" in p.periphery.source
    assert p.output_current_bound_A == pytest.approx(12.0 * 0.2 * TAOX_YI_2023.range_S)


def test_noiseless_plant_equals_true_twin_before_and_after_programming_and_idle_time():
    plant = MemristorCrossbarPlant(in_features=12, out_features=7, device=NOISELESS_TAOX,
                                   periphery=NOISELESS_PERIPHERY, seed=3)
    twin = plant.true_twin()
    c = plant.initial_controls()
    x = torch.randn(32, 12, generator=torch.Generator().manual_seed(0))
    predicted = twin(x, c)                       # before the first write
    torch.testing.assert_close(plant(x, c), predicted, rtol=1e-5, atol=1e-5)
    for step in range(3):                        # predicted before the plant programs the new controls
        c = _shifted(c, plant, 0.04, seed=step)
        predicted = twin(x, c)
        torch.testing.assert_close(plant(x, c), predicted, rtol=1e-5, atol=1e-5)
    assert plant.pulses > 0
    plant.advance_time(1e5)                      # relaxation: the true twin follows the device clock
    relaxed = twin(x, c)
    assert float((relaxed - predicted).abs().max()) > 1e-3
    torch.testing.assert_close(plant(x, c), relaxed, rtol=1e-5, atol=1e-5)
    # the nominal twin (requested conductances) does not know any of this
    nominal = plant.nominal_twin()(x, c)
    assert float((nominal - relaxed).norm() / relaxed.norm()) > 0.05


def test_true_twin_gradient_is_the_devices_soft_bounded_response():
    device = replace(NOISELESS_TAOX, relaxation=None)
    plant = MemristorCrossbarPlant(in_features=5, out_features=3, device=device, periphery=IDEAL, seed=1)
    c = plant.initial_controls()
    x = torch.randn(4, 5)
    plant(x, c)                                   # devices written
    cp = {k: v.clone().double().requires_grad_(True) for k, v in c.items()}
    y = plant.true_twin()(x.double(), cp)
    y.sum().backward()
    # d y_b,i / d G+_ij = x_bj * dG/dG_req / range; dG/dG_req towards SET = range_ij * a_up (1 - w) ... / step
    arr = plant._plus
    lo, hi = arr.bounds_S
    w = arr.state().double()
    slope = (hi - lo).double() * (-torch.log1p(-arr._a_up.double())) * (1 - w) / (device.step_up * device.range_S)
    slope = torch.where(arr._stuck, torch.zeros_like(slope), slope)
    expected = slope * x.double().sum(0)[None, :] / device.range_S
    torch.testing.assert_close(cp["g_plus"].grad, expected, rtol=1e-4, atol=1e-9)
    assert bool((cp["g_plus"].grad[arr._stuck] == 0).all())
    nominal_grad = x.sum(0)[None, :].double().expand(3, 5) / device.range_S
    assert float((cp["g_plus"].grad - nominal_grad).abs().max() / nominal_grad.abs().max()) > 0.05


def test_ideal_periphery_computes_x_times_true_weights():
    plant = MemristorCrossbarPlant(in_features=9, out_features=4, device=replace(TAOX_YI_2023, read_noise=0.0),
                                   periphery=IDEAL)
    c = plant.initial_controls()
    x = 3.0 * torch.randn(6, 9)                   # far beyond the DAC range: no bound in the ideal periphery
    y = plant(x, c)
    torch.testing.assert_close(y, x @ _true_weight(plant).T, rtol=1e-5, atol=1e-6)


def _linear_plant(periphery):
    return MemristorCrossbarPlant(in_features=10, out_features=6, device=IDEAL_DEVICE, periphery=periphery)


def test_dac_quantises_inputs_to_its_step():
    plant = _linear_plant(replace(IDEAL, inp_bound=1.0, inp_res=1 / 6))   # step 1/3
    c = plant.initial_controls()
    x = 2 * torch.rand(40, 10) - 1
    y = plant(x, c)
    W = _true_weight(plant)
    torch.testing.assert_close(y, (torch.round(3 * x) / 3) @ W.T, rtol=1e-5, atol=1e-6)
    assert float((y - x @ W.T).abs().max()) > 1e-2


def test_dac_bounds_inputs():
    plant = _linear_plant(replace(IDEAL, inp_bound=0.5))
    c = plant.initial_controls()
    x = 2 * torch.randn(40, 10)
    y = plant(x, c)
    W = _true_weight(plant)
    torch.testing.assert_close(y, x.clamp(-0.5, 0.5) @ W.T, rtol=1e-5, atol=1e-6)
    assert float((y - x @ W.T).abs().max()) > 1e-2


def test_adc_quantises_outputs_to_its_step():
    plant = _linear_plant(replace(IDEAL, out_bound=2.0, out_res=1 / 20))   # step 0.2
    c = plant.initial_controls()
    x = torch.randn(40, 10)
    y = plant(x, c)
    k = y / 0.2
    torch.testing.assert_close(k, torch.round(k), rtol=0, atol=1e-4)
    exact = (x @ _true_weight(plant).T).clamp(-2.0, 2.0)
    assert float((y - exact).abs().max()) <= 0.1 + 1e-5                  # within half a step
    assert float((y - exact).abs().mean()) > 0.02                        # and really rounded


def test_adc_bounds_the_output_current():
    plant = _linear_plant(replace(IDEAL, out_bound=0.05))
    c = plant.initial_controls()
    x = torch.randn(40, 10)
    y = plant(x, c)
    exact = x @ _true_weight(plant).T
    assert float(exact.abs().max()) > 0.1
    torch.testing.assert_close(y, exact.clamp(-0.05, 0.05), rtol=1e-5, atol=1e-6)


def test_output_noise_has_its_stated_size_and_scales_with_the_input_scale():
    plant = _linear_plant(replace(IDEAL, out_noise=0.1))
    c = plant.initial_controls()
    x = torch.randn(4000, 10)
    y = plant(x, c)
    residual = y - x @ _true_weight(plant).T
    assert float(residual.std()) == pytest.approx(0.1, rel=0.03)
    assert abs(float(residual.mean())) < 0.01
    managed = _linear_plant(replace(IDEAL, out_noise=0.1, noise_management=True))
    xs = x / x.abs().amax(1, keepdim=True) * 5.0                         # max |x| = 5 in every sample
    y = managed(xs, c)
    res = y - xs @ _true_weight(managed).T
    assert float(res.std()) == pytest.approx(0.5, rel=0.03)               # noise referred back by the scale


def test_abs_max_input_scaling_avoids_dac_clipping():
    x = 10 * torch.randn(30, 10)
    clipped = _linear_plant(replace(IDEAL, inp_bound=1.0))
    managed = _linear_plant(replace(IDEAL, inp_bound=1.0, noise_management=True))
    c = clipped.initial_controls()
    y_clipped, y_managed = clipped(x, c), managed(x, c)
    exact = x @ _true_weight(clipped).T
    torch.testing.assert_close(_true_weight(managed), _true_weight(clipped))
    assert float((y_clipped - exact).abs().max()) > 1.0
    torch.testing.assert_close(y_managed, exact, rtol=1e-4, atol=1e-4)


def test_read_energy_is_charged_as_sum_g_v2_t():
    plant = MemristorCrossbarPlant(in_features=7, out_features=5, device=replace(TAOX_YI_2023, read_noise=0.0),
                                   periphery=NOISELESS_PERIPHERY)
    c = plant.initial_controls()
    x = torch.randn(9, 7)
    plant(x, c)                                   # first write
    before = plant.meter.joules
    plant(x, c)                                   # same controls: no pulses, only the read
    u, _ = plant.periphery.encode(x)
    G = (plant._plus.conductance() + plant._minus.conductance()).double()
    V = plant.read_voltage_V * u.double()
    expected = sum(float((G * V[b][None, :] ** 2).sum()) for b in range(9)) * plant.read_time_s
    assert expected > 0
    assert plant.meter.joules - before == pytest.approx(expected, rel=1e-5)


def test_crossbar_ideal_limit_and_pulsed_update():
    plant = MemristorCrossbarPlant(in_features=6, out_features=4, device=IDEAL_DEVICE, periphery=IDEAL)
    controls = plant.initial_controls()
    x = torch.randn(5, 6)
    twin = plant.nominal_twin()
    assert torch.allclose(plant(x, controls), twin(x, controls), atol=1e-6)
    new = {k: v.clone() for k, v in controls.items()}
    new["g_plus"] += 0.05 * IDEAL_DEVICE.range_S
    stats = plant.program(new)
    assert stats["pulses"] == pytest.approx(24 * 50, abs=24)  # 50 pulses per device
    realised = plant._plus.conductance().double() - controls["g_plus"].double()
    requested = 0.05 * IDEAL_DEVICE.range_S
    assert float((realised / requested - 1).abs().max()) < 0.6  # soft bounds: step x 2(1 - w)
    assert float((realised / requested - 1).abs().max()) > 1e-4
    assert plant.elapsed_seconds == pytest.approx(plant.meter.device_seconds)


def test_nominal_twin_uses_the_design_periphery_without_noise():
    plant = MemristorCrossbarPlant(in_features=6, out_features=4, device=IDEAL_DEVICE,
                                   periphery=replace(IDEAL, out_bound=2.0, out_res=1 / 20))
    c = plant.initial_controls()
    x = torch.randn(8, 6)
    y = plant.nominal_twin()(x, c)
    torch.testing.assert_close(y / 0.2, torch.round(y / 0.2), rtol=0, atol=1e-4)


def test_periphery_validation():
    with pytest.raises(ValueError, match="inp_res"):
        CrossbarPeriphery(inp_res=1.5)
    with pytest.raises(ValueError, match="out_bound"):
        CrossbarPeriphery(out_bound=-1.0)
    with pytest.raises(ValueError, match="finite bound"):
        CrossbarPeriphery(out_bound=math.inf, out_res=0.01)
    with pytest.raises(ValueError, match="out_noise"):
        CrossbarPeriphery(out_noise=-0.1)
    with pytest.raises(TypeError, match="periphery"):
        MemristorCrossbarPlant(in_features=2, out_features=2, periphery={"out_noise": 0.0})


# ---- torch device placement ---------------------------------------------------------------------------
def _array_tensors(array):
    return {name: t for name, t in vars(array).items() if isinstance(t, torch.Tensor)}


def test_to_moves_both_arrays_and_a_plant_moved_to_the_cpu_gives_the_same_numbers():
    """plant.to(device) moves both memristor arrays (conductance states, per-device constants, the
    controller's nominal copy) and leaves the generators on the CPU; the same-seeded plant moved to the
    CPU answers exactly as one never moved, through programming rounds and idle time; the twins
    answer on the inputs' device and hold no tensor off the plant's device."""
    plant = MemristorCrossbarPlant(in_features=4, out_features=3)
    plant(torch.ones(1, 4), plant.initial_controls())        # a first write: the nominal copy exists
    assert plant._plus.device_model is TAOX_YI_2023 and plant._plus.nominal is not None
    plant.to("meta")
    for array in (plant._plus, plant._minus):
        off = [n for n, t in _array_tensors(array).items() if t.device.type != "meta"]
        assert not off and array.torch_device.type == "meta", off
        assert array._own_generator.device.type == "cpu"
    assert plant.initial_controls()["g_plus"].device.type == "meta"

    a, b = MemristorCrossbarPlant(in_features=4, out_features=3), MemristorCrossbarPlant(in_features=4, out_features=3)
    b.to("cpu")
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    controls, same = a.initial_controls(), b.initial_controls()
    assert all(torch.equal(v, same[k]) for k, v in controls.items())
    for step in range(3):
        assert torch.equal(a(x, controls), b(x, controls))
        a.advance_time(100.0), b.advance_time(100.0)
        controls = _shifted(controls, a, 0.05, seed=step)
    assert torch.equal(a.true_twin()(x, controls), b.true_twin()(x, controls))
    for twin in (b.nominal_twin(), b.true_twin()):
        assert all(t.device == b.device for t in twin.state_dict().values())
        assert twin(x, controls).device == x.device
