"""Energy accounting: dissipated power obeys Tellegen's theorem; every term of the circuit ledger
(static dissipation over the RC settling time with degree-dependent node capacitance, C dV^2, ADC
and DAC conversions, the local rule's digital work, programming pulses) is counted as stated and
reaches the report, so removing any one changes the breakdown; the digital baseline counts
equivalent weights; the scenarios bracket the nominal figure."""

import math

import pytest
import torch
from torch import nn

from pnnlab import ChannelAffine, PhysicalLayer
from pnnlab.energy import (H100_BF16_PEAK, HOROWITZ_FP32_45NM, HOROWITZ_INT8_45NM, SCENARIOS, DigitalReference,
                           measure_energy)
from pnnlab.methods.coupled_learning import CoupledLearning
from pnnlab.methods.equilibrium_propagation import EquilibriumPropagation
from pnnlab.methods.in_silico import InSilico
from pnnlab.plants.capabilities import OutputClamp, OutputForce
from pnnlab.plants.electronics import IDEAL_DEVICE, MemristorCrossbarPlant, ResistiveNetworkPlant, TAOX_YI_2023
from pnnlab.plants.electronics.circuit_costs import HIGH, LOW, NOMINAL, CircuitConstants
from pnnlab.plants.electronics.resistive_network import _totals, dissipated_power

torch.set_num_threads(1)


def _plant(**kw):
    base = dict(in_features=3, out_features=2, hidden=(5,), dtype=torch.float64, tolerance_V=1e-14,
                max_sweeps=20000, diode_low_V=0.0, diode_high_V=0.1)
    base.update(kw)
    return ResistiveNetworkPlant(**base)


def test_power_delivered_by_sources_equals_power_dissipated():
    """Tellegen's theorem: sum over sources of V_s I_s = sum G dV^2 + diode dissipation."""
    plant = _plant()
    controls = plant.initial_controls()
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    state = plant.relax(x, controls)
    V, sources = state.private["V"], state.private["sources"]
    G0, G1 = (controls[f"conductance_{l}"].double() for l in range(2))
    bias = torch.tensor([0.2, -0.2], dtype=torch.float64)
    h, out = V
    delivered = ((sources[:, None, :] - h[:, :, None]) * G0).sum(1).mul(sources).sum(1)
    delivered += ((bias[None, None, :] - out[:, :, None]) * G1[:, 5:]).sum(1).mul(bias).sum(1)
    d = plant._diodes[0]  # a diode to 0 V delivers no power; the one to 0.1 V absorbs
    delivered += (d.high_V * (-d.conductance_S * torch.relu(h - d.high_V))).sum(1)
    dissipated = dissipated_power(V, sources, [G0, G1], plant._diodes, bias_V=0.2)
    assert torch.allclose(delivered, dissipated, rtol=1e-9)
    assert torch.allclose(state.power_W, dissipated)


def _degrees(plant):
    """Devices at every node, counted by hand for one hidden layer of 5 with two diodes each."""
    n_in = 2 * 3 + 2
    hidden = torch.full((5,), n_in + 4 + 2.0, dtype=torch.float64)  # inputs+bias, 4 output nodes, 2 diodes
    out = torch.full((4,), 5 + 2.0, dtype=torch.float64)            # hidden + bias pair
    lines = torch.full((8,), 5.0, dtype=torch.float64)              # each source line feeds the 5 hidden nodes
    return [hidden, out], lines


def test_ledger_counts_static_capacitive_adc_and_dac_terms_of_a_free_relaxation():
    plant = _plant()
    controls = plant.initial_controls()
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    before = plant.ledger.snapshot()
    state = plant.relax(x, controls)
    led = plant.ledger - before
    V, sources = state.private["V"], state.private["sources"]
    G = [controls[f"conductance_{l}"].double() for l in range(2)]
    T = _totals(G)
    deg, lines = _degrees(plant)
    n_tau = math.log(0.2 / 1e-14)
    P = float(dissipated_power(V, sources, G, plant._diodes, bias_V=0.2).sum())
    # static: P x n_tau x (c_dev max(deg/T) + c_wire max(1/T)), and P x ADC sampling time
    assert led.power_W == pytest.approx(P, rel=1e-12)
    assert led.power_W_s_per_F == pytest.approx(P * n_tau * max(float((d / t).max()) for d, t in zip(deg, T)), rel=1e-9)
    assert led.power_W_s_per_F_wire == pytest.approx(P * n_tau * max(float((1 / t).max()) for t in T), rel=1e-9)
    # capacitive: every free node and source line charged from 0 V
    s2 = sources.double() ** 2
    assert led.charge_V2_wire == pytest.approx(sum(float((v ** 2).sum()) for v in V) + float(s2.sum()), rel=1e-12)
    assert led.charge_V2_dev == pytest.approx(sum(float((v ** 2 @ d).sum()) for v, d in zip(V, deg))
                                              + float((s2 @ lines).sum()), rel=1e-12)
    # converters: every free node read, every input driven
    assert led.adc_conversions == 4 * (5 + 4)
    assert led.dac_conversions == 4 * 3
    # the meter is charged with the nominal constants, time = (settling + sampling) per sample
    energy = led.energy(NOMINAL)
    tau = NOMINAL.device_capacitance_F * max(float((d / t).max()) for d, t in zip(deg, T)) \
        + NOMINAL.wire_capacitance_F * max(float((1 / t).max()) for t in T)
    assert state.private["settling_time_s"] == pytest.approx(n_tau * tau, rel=1e-9)
    assert energy["ADC reads"] == pytest.approx(36 * NOMINAL.adc_fom_J_per_step * 2 ** 8)
    assert plant.meter.joules == pytest.approx(sum(energy.values()), rel=1e-9)
    assert plant.meter.device_seconds == pytest.approx(4 * (n_tau * tau + NOMINAL.adc_time_s), rel=1e-9)


def test_node_capacitance_grows_with_the_number_of_attached_devices():
    """Same conductance per device, wider layer above: the hidden nodes carry more devices, their RC
    constant (c_dev x degree + c_wire) / T changes accordingly."""
    def settle_time(hidden, c):
        plant = ResistiveNetworkPlant(in_features=3, out_features=2, hidden=(hidden,), dtype=torch.float64,
                                      circuit=c)
        controls = {k: torch.full(s.shape, 5e-5, dtype=torch.float64) for k, s in plant.control_specs().items()}
        return plant.relax(torch.randn(2, 3, dtype=torch.float64), controls).private["settling_time_s"]

    only_devices = CircuitConstants("test", device_capacitance_F=1e-15, wire_capacitance_F=1e-30, adc_bits=8,
                                    adc_fom_J_per_step=1e-15, adc_time_s=1e-9, dac_energy_J=0.0)
    # per-device capacitance only: tau -> c_dev / G per device whatever the degree
    assert settle_time(4, only_devices) == pytest.approx(settle_time(40, only_devices), rel=1e-6)
    only_wire = CircuitConstants("test", device_capacitance_F=0.0, wire_capacitance_F=1e-14, adc_bits=8,
                                 adc_fom_J_per_step=1e-15, adc_time_s=1e-9, dac_energy_J=0.0)
    # a fixed node capacitance settles faster when more devices (more conductance) are attached: the
    # slowest node goes from an output node with 4 + 2 devices to a hidden node with 8 + 4 devices
    assert settle_time(40, only_wire) == pytest.approx(0.5 * settle_time(4, only_wire), rel=1e-9)
    # both terms together: c_dev deg / T + c_wire / T at the slowest node
    both = CircuitConstants("test", device_capacitance_F=1e-15, wire_capacitance_F=1e-14, adc_bits=8,
                            adc_fom_J_per_step=1e-15, adc_time_s=1e-9, dac_energy_J=0.0)
    assert settle_time(4, both) == pytest.approx(settle_time(4, only_devices) + settle_time(4, only_wire), rel=1e-6)


def test_nudged_and_clamped_relaxations_read_and_drive_what_they_use():
    plant = _plant(tolerance_V=1e-12)
    controls = plant.initial_controls()
    x = torch.randn(3, 3, generator=torch.Generator().manual_seed(2))
    free = plant.relax(x, controls)
    before = plant.ledger.snapshot()
    plant.relax(x, controls, nudge=OutputForce(1e-7 * torch.ones(3, 2)), initial=free)
    led = plant.ledger - before
    assert led.adc_conversions == 3 * 9 and led.dac_conversions == 3 * (3 + 4)
    before = plant.ledger.snapshot()
    plant.relax(x, controls, nudge=OutputClamp(free.output + 0.001), initial=free)
    led = plant.ledger - before
    assert led.adc_conversions == 3 * 5  # clamped outputs are known, not read
    before = plant.ledger.snapshot()
    plant(x, controls)
    led = plant.ledger - before
    assert led.adc_conversions == 3 * 2 and led.dac_conversions == 3 * 3  # inference: differential outputs


def test_local_rule_flops_are_counted_when_the_rule_runs():
    plant = _plant()
    state = plant.relax(torch.randn(8, 3), plant.initial_controls())
    before = plant.ledger.local_rule_flops
    plant.energy_gradients(state)
    n_m = [(5, 8), (4, 7)]
    expected = sum(2 * n * m * 8 + 2 * (n + m) * 8 + 4 * n * m for n, m in n_m)
    assert plant.ledger.local_rule_flops - before == pytest.approx(expected)


def test_equivalent_weights_count_a_differential_pair_once():
    assert ResistiveNetworkPlant(in_features=64, out_features=10, hidden=(700,)).equivalent_weights == 700 * 65 + 10 * 701
    assert ResistiveNetworkPlant(in_features=3, out_features=2, hidden=(5, 4)).equivalent_weights == 5 * 4 + 4 * 6 + 2 * 5


def _report(method=None, steps=1, device=TAOX_YI_2023):
    plant = ResistiveNetworkPlant(in_features=4, out_features=3, hidden=(6,), device=device)
    model = nn.Sequential(PhysicalLayer(plant, twin=plant.nominal_twin()), ChannelAffine(3, scale=25.0))
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)
    model(x)
    method = method or EquilibriumPropagation(beta=0.001)
    report = measure_energy(model, method, x, y, optimizer=torch.optim.SGD(model.parameters(), lr=3e4), steps=steps)
    return report, plant


def test_every_term_reaches_the_report_and_matches_its_count():
    report, plant = _report()
    nominal = SCENARIOS[1]
    terms = report.physical("training", nominal)
    step = report.step
    # centred EP: 3 relaxations, every free node read in each, the local rule run twice
    assert step.ledger.relaxations == 3
    assert step.ledger.adc_conversions == 3 * 8 * (6 + 6)
    assert terms["ADC reads"] == pytest.approx(3 * 8 * 12 * NOMINAL.adc_energy_J)
    assert terms["DAC drives"] == pytest.approx((3 * 8 * 4 + 2 * 8 * 6) * NOMINAL.dac_energy_J)
    assert step.pulses > 0
    assert terms["programming pulses"] == pytest.approx(step.pulses * TAOX_YI_2023.pulse_energy_J)
    local = 2 * sum(2 * n * m * 8 + 2 * (n + m) * 8 + 4 * n * m for n, m in [(6, 10), (6, 8)])
    assert terms["digital: local rule (per-edge products of measured voltages)"] == pytest.approx(
        local * H100_BF16_PEAK.joules_per_flop)
    N = plant.n_conductances
    other = 2 * N + 4 * N + 10 * (N + 6) + 3 * N
    assert terms["digital: contrast, chain rule, optimizer, pulse controller"] == pytest.approx(
        other * H100_BF16_PEAK.joules_per_flop)
    assert terms["digital: digital layers of the model"] == pytest.approx(6 * 6 * 8 * H100_BF16_PEAK.joules_per_flop)
    for name, value in terms.items():  # removing any term would change the breakdown
        assert value > 0, name
    total = sum(terms.values())
    assert report.ratio("training", nominal) == pytest.approx(report.digital("training") / total)
    # the analog-local-rule line drops exactly the local rule
    assert report.ratio("training", nominal, analog_local_rule=True) == pytest.approx(
        report.digital("training") / (total - terms["digital: local rule (per-edge products of measured voltages)"]))
    inference = report.physical("inference", nominal)
    assert inference["ADC reads"] == pytest.approx(3 * NOMINAL.adc_energy_J)  # 3 differential outputs
    assert inference["programming pulses"] == 0.0


def test_digital_baseline_counts_equivalent_weights():
    report, plant = _report()
    N = plant.equivalent_weights + 6  # + the digital read-out's gain and offset
    assert report.digital("inference") == pytest.approx(2 * N * H100_BF16_PEAK.joules_per_flop)
    assert report.digital("training") == pytest.approx((6 * N * 8 + 10 * N) * H100_BF16_PEAK.joules_per_flop)
    assert report.with_reference(HOROWITZ_FP32_45NM).digital("inference") == pytest.approx(
        2 * N * HOROWITZ_FP32_45NM.joules_per_flop)


def test_scenarios_bracket_the_nominal_figure_and_the_table_states_its_sources():
    report, _ = _report(CoupledLearning(eta=0.001))
    low, nominal, high = SCENARIOS
    for which in ("inference", "training"):
        totals = [sum(report.physical(which, s).values()) for s in (low, nominal, high)]
        assert totals[0] < totals[1] < totals[2]
    text = str(report)
    for needle in ("J/FLOP", "assumed", "Murmann", "Horowitz", "H100", "dominant term", "equivalent weights",
                   "ratio digital / physical", "10^4", "time constants", "low", "high"):
        assert needle in text, needle
    assert LOW.adc_energy_J < NOMINAL.adc_energy_J < HIGH.adc_energy_J
    assert HOROWITZ_INT8_45NM.joules_per_flop == pytest.approx(0.115e-12)
    assert H100_BF16_PEAK.joules_per_flop == pytest.approx(700 / 989.4e12)
    assert HOROWITZ_FP32_45NM.joules_per_flop == pytest.approx(2.3e-12)


def test_validation():
    with pytest.raises(ValueError, match="joules_per_flop"):
        DigitalReference(name="x", joules_per_flop=-1.0, source="none")
    with pytest.raises(NotImplementedError, match="EquilibriumPropagation"):
        _report(InSilico())
    crossbar = MemristorCrossbarPlant(in_features=3, out_features=2, device=IDEAL_DEVICE)
    model = nn.Sequential(PhysicalLayer(crossbar, twin=crossbar.nominal_twin()))
    with pytest.raises(TypeError, match="CircuitLedger"):
        measure_energy(model, EquilibriumPropagation(), torch.randn(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="adc_bits|must be"):
        CircuitConstants("x", device_capacitance_F=1e-15, wire_capacitance_F=1e-15, adc_bits=0,
                         adc_fom_J_per_step=1e-15, adc_time_s=1e-9, dac_energy_J=0.0)
