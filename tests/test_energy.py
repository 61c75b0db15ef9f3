"""Energy accounting: dissipated power obeys Tellegen's theorem (power delivered by the sources equals
power dissipated), the meter records P x t_settle and pulse energies, and the report compares with a
cited digital figure."""

import math

import pytest
import torch
from torch import nn

from pnnlab import ChannelAffine, PhysicalLayer
from pnnlab.energy import H100_BF16_PEAK, HOROWITZ_FP32_45NM, DigitalReference, measure_energy
from pnnlab.methods.equilibrium_propagation import EquilibriumPropagation
from pnnlab.plants.electronics import IDEAL_DEVICE, MemristorCrossbarPlant, ResistiveNetworkPlant
from pnnlab.plants.electronics.resistive_network import dissipated_power

torch.set_num_threads(1)


def _plant(**kw):
    return ResistiveNetworkPlant(in_features=3, out_features=2, hidden=(5,), dtype=torch.float64,
                                 tolerance_V=1e-14, max_sweeps=20000, diode_low_V=0.0, diode_high_V=0.5, **kw)


def test_power_delivered_by_sources_equals_power_dissipated():
    """Tellegen's theorem: sum over sources of V_s I_s = sum G dV^2 + diode dissipation."""
    plant = _plant()
    controls = plant.initial_controls()
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    state = plant.relax(x, controls)
    V, sources = state.private["V"], state.private["sources"]
    G0, G1 = (controls[f"conductance_{l}"].double() for l in range(2))
    bias = torch.tensor([1.0, -1.0], dtype=torch.float64)
    h, out = V
    # current leaving every input/bias source of layer 0 into the hidden nodes
    delivered = ((sources[:, None, :] - h[:, :, None]) * G0).sum(1).mul(sources).sum(1)
    # bias sources of the output layer
    delivered += ((bias[None, None, :] - out[:, :, None]) * G1[:, 5:]).sum(1).mul(bias).sum(1)
    # diode threshold sources (0 V and 0.5 V): a diode to 0 V delivers no power; the 0.5 V one absorbs
    d = plant._diodes[0]
    delivered += (d.high_V * (-d.conductance_S * torch.relu(h - d.high_V))).sum(1)
    dissipated = dissipated_power(V, sources, [G0, G1], plant._diodes, bias_V=1.0)
    assert torch.allclose(delivered, dissipated, rtol=1e-9)
    assert torch.allclose(state.power_W, dissipated)


def test_meter_records_power_times_settling_time():
    plant = _plant()
    controls = plant.initial_controls()
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    before = plant.meter.joules
    state = plant.relax(x, controls)
    t = state.private["settling_time_s"]
    Gmin = min(float(controls["conductance_0"].double().sum(1).add(controls["conductance_1"].double().sum(0)[:5]).min()),
               float(controls["conductance_1"].double().sum(1).min()))
    assert t == pytest.approx(math.log(1e3) * 1e-14 / Gmin, rel=1e-9)
    assert plant.meter.joules - before == pytest.approx(float(state.power_W.sum()) * t, rel=1e-12)


def test_programming_pulses_are_charged_at_the_device_pulse_energy():
    plant = MemristorCrossbarPlant(in_features=4, out_features=3, device=IDEAL_DEVICE)
    controls = plant.initial_controls()
    plant(torch.randn(2, 4), controls)
    before = plant.meter.joules
    new = {k: v.clone() for k, v in controls.items()}
    new["g_minus"] -= 3 * IDEAL_DEVICE.step_down * IDEAL_DEVICE.range_S
    stats = plant.program(new)
    assert stats["pulses"] == 36
    assert plant.meter.joules - before == pytest.approx(36 * IDEAL_DEVICE.pulse_energy_J)


def test_report_compares_with_the_cited_digital_figure():
    plant = ResistiveNetworkPlant(in_features=4, out_features=3, hidden=(6,), device=IDEAL_DEVICE)
    model = nn.Sequential(PhysicalLayer(plant, twin=plant.nominal_twin()), ChannelAffine(3, scale=5.0))
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    model(x)
    report = measure_energy(model, EquilibriumPropagation(beta=0.05), x, y,
                            optimizer=torch.optim.SGD(model.parameters(), lr=100.0))
    N = plant.n_conductances
    rows = {r["quantity"]: r for r in report.rows}
    assert rows["inference, per sample"]["digital_J"] == pytest.approx(2 * N * H100_BF16_PEAK.joules_per_flop)
    assert all(r["physical_J"] > 0 for r in report.rows)
    text = str(report)
    for needle in ("J/FLOP", "assumed", "per pulse", "H100", "digital/physical"):
        assert needle in text
    assert H100_BF16_PEAK.joules_per_flop == pytest.approx(700 / 989.4e12)
    assert HOROWITZ_FP32_45NM.joules_per_flop == pytest.approx(2.3e-12)
    with pytest.raises(ValueError, match="joules_per_flop"):
        DigitalReference(name="x", joules_per_flop=-1.0, source="none")
