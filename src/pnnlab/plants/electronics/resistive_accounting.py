"""Energy and time of one relaxation of a resistive network: the constant-free counters recorded in a
:class:`~.circuit_costs.CircuitLedger` and the charge to the plant's meter for one set of circuit
constants (the terms and their sources are listed in :mod:`.circuit_costs`)."""

from __future__ import annotations

import torch

from .steady_state import _totals

__all__ = ["node_degrees", "record_relaxation"]


def node_degrees(shapes, design):
    """Devices attached to every free node (conductances + diodes) and to every source line."""
    L = len(shapes) - 1
    deg = []
    for l, (rows, cols) in enumerate(shapes):
        d = torch.full((rows,), float(cols), dtype=torch.float64, device="cpu")  # moved with the plant
        if l < L:
            d = d + shapes[l + 1][0]
            d = d + (design.diode_low_V is not None) + (design.diode_high_V is not None)
        deg.append(d)
    lines = torch.full((shapes[0][1],), float(shapes[0][0]), dtype=torch.float64, device="cpu")
    return deg, lines


def record_relaxation(ledger, meter, circuit, *, n_tau, degrees, power, G, V, sources, init, adc_reads,
                      dac_drives):
    """Add one relaxation (``power`` per sample, steady state ``V`` reached from ``init``, None = the
    zero state) to ``ledger`` and charge ``meter`` with ``circuit``'s constants; returns (settling time,
    device seconds of the relaxation for the whole batch)."""
    B = sources.shape[0]
    T = [t.double() for t in _totals(G)]
    deg, lines = degrees
    a = max(float((dk / tk.clamp_min(1e-300)).max()) for dk, tk in zip(deg, T))
    b = max(float((1 / tk.clamp_min(1e-300)).max()) for tk in T)
    p_sum = float(power.sum())
    ledger.relaxations += 1
    ledger.samples += B
    ledger.power_W_s_per_F += p_sum * n_tau * a
    ledger.power_W_s_per_F_wire += p_sum * n_tau * b
    ledger.power_W += p_sum
    before = [torch.zeros_like(v) for v in V] if init is None else init
    dv2 = [((v - w) ** 2).double() for v, w in zip(V, before)]
    charge_dev = sum(float((x @ dk).sum()) for x, dk in zip(dv2, deg))
    charge_wire = sum(float(x.sum()) for x in dv2)
    if init is None:  # source lines charge from 0 V (a nudged phase keeps them where they are)
        s2 = sources[:, :lines.shape[0]].double() ** 2
        charge_dev += float((s2 @ lines).sum())
        charge_wire += float(s2.sum())
    ledger.charge_V2_dev += charge_dev
    ledger.charge_V2_wire += charge_wire
    ledger.adc_conversions += int(adc_reads) * B
    ledger.dac_conversions += int(dac_drives) * B
    c = circuit
    tau = c.device_capacitance_F * a + c.wire_capacitance_F * b
    t_settle = n_tau * tau
    t_hold = t_settle + c.adc_time_s
    joules = (p_sum * t_hold + c.device_capacitance_F * charge_dev + c.wire_capacitance_F * charge_wire
              + int(adc_reads) * B * c.adc_energy_J + int(dac_drives) * B * c.dac_energy_J)
    meter.charge(seconds=t_hold * B, joules=joules)
    return t_settle, t_hold * B
