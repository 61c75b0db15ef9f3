"""Energy accounting: what inference and a training step cost a physical network, against a digital
estimate for the same network on a GPU.

Physical side (measured by the plants' meters while they run):

* every relaxation of a resistive network dissipates P = sum_edges G dV^2 + sum_diodes g_d dV^2
  for its settling time t = ln(1/precision) C_node / min_k G_k (RC estimate, node capacitance
  assumed, see :mod:`pnnlab.plants.electronics.resistive_network`): E = P t per sample;
* every programming pulse costs the device's ``pulse_energy_J`` (see the device presets in
  :mod:`pnnlab.plants.electronics.memristor`, where each value's status is stated).

Digital side (operations x joules per operation):

* inference of a dense network with N weights: 2 N FLOPs per sample (one multiply-accumulate per
  weight);
* a training step: 6 N FLOPs per sample (forward, backward to activations, weight gradients) plus
  ``optimizer_flops_per_parameter`` x N per step (Adam: about 10);
* joules per FLOP from a cited figure (:data:`H100_BF16_PEAK` by default: the best case for the GPU,
  because it assumes peak throughput at the board's rated power and ignores memory traffic).

The comparison this enables is the one behind the claim of roughly four orders of magnitude less
energy than digital hardware (Yi et al., Nature Electronics 6, 45 (2023),
doi:10.1038/s41928-022-00869-w, a modelled figure). The functions print every assumption with the
numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ._validation import check_positive
from .layers import physical_layers, plants_of
from .metering import total_usage

__all__ = ["DigitalReference", "EnergyReport", "H100_BF16_PEAK", "HOROWITZ_FP32_45NM", "measure_energy"]


@dataclass(frozen=True)
class DigitalReference:
    """Joules per floating-point operation of a digital processor, with its source."""

    name: str
    joules_per_flop: float
    source: str
    optimizer_flops_per_parameter: float = 10.0

    def __post_init__(self) -> None:
        check_positive("joules_per_flop", self.joules_per_flop)


#: NVIDIA H100 SXM5: 989.4 TFLOP/s dense BF16 tensor-core throughput at a 700 W board power
#: (NVIDIA H100 Tensor Core GPU datasheet, 2023): 700 / 989.4e12 = 0.71 pJ/FLOP. Best case for the GPU.
H100_BF16_PEAK = DigitalReference(
    name="H100 SXM BF16 peak", joules_per_flop=700.0 / 989.4e12,
    source="NVIDIA H100 Tensor Core GPU datasheet (2023): 989.4 TFLOP/s dense BF16 at 700 W TDP; "
           "peak throughput at rated power, memory traffic ignored (best case for the GPU)")

#: Horowitz, "Computing's energy problem", ISSCC 2014, doi:10.1109/ISSCC.2014.6757323: 45 nm, 32-bit
#: float multiply 3.7 pJ + add 0.9 pJ = 4.6 pJ per multiply-accumulate = 2.3 pJ/FLOP (arithmetic only).
HOROWITZ_FP32_45NM = DigitalReference(
    name="FP32 arithmetic, 45 nm", joules_per_flop=4.6e-12 / 2,
    source="Horowitz, ISSCC 2014, doi:10.1109/ISSCC.2014.6757323: fp32 mult 3.7 pJ + add 0.9 pJ at 45 nm; "
           "arithmetic only, no memory access")


@dataclass
class EnergyReport:
    """Energies per sample (inference) and per training step, physical against digital."""

    rows: list[dict]
    assumptions: list[str]

    def table(self) -> str:
        lines = [f"{'quantity':<34}{'physical (J)':>14}{'digital (J)':>14}{'digital/physical':>18}"]
        for row in self.rows:
            ratio = row["digital_J"] / row["physical_J"] if row["physical_J"] > 0 else float("inf")
            lines.append(f"{row['quantity']:<34}{row['physical_J']:>14.3e}{row['digital_J']:>14.3e}{ratio:>18.3g}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table() + "\nassumptions:\n" + "\n".join(f"  - {a}" for a in self.assumptions)


def _n_weights(model: nn.Module) -> int:
    return sum(int(v.numel()) for layer in physical_layers(model) for v in layer.control_values().values())


def measure_energy(model: nn.Module, method, x: torch.Tensor, y: torch.Tensor, *,
                   optimizer: torch.optim.Optimizer | None = None,
                   loss_fn: Callable = nn.functional.cross_entropy,
                   reference: DigitalReference = H100_BF16_PEAK) -> EnergyReport:
    """Run one inference pass and one training step of ``method`` on the plants of ``model`` (batch
    ``x``, ``y``), read the joules their meters recorded, and compare with ``reference``.

    The training step includes the programming pulses that the optimizer's update causes (sent at
    the next plant query, which this function triggers with one more inference pass whose own
    dissipation is subtracted)."""
    if not isinstance(reference, DigitalReference):
        raise TypeError(f"reference must be a DigitalReference such as H100_BF16_PEAK, got {type(reference).__name__}.")
    plants = plants_of(model)
    if not plants:
        raise ValueError("model has no physical layers; there is no physical energy to measure.")
    B = x.shape[0]
    N = _n_weights(model)

    def joules():
        return total_usage(plants)["joules"]

    with torch.no_grad():
        start = joules()
        model(x)
        inference = (joules() - start) / B
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    optimizer.zero_grad(set_to_none=True)
    start = joules()
    method.step(model, x, y, loss_fn)
    relaxations = joules() - start
    if not method.updates_parameters:
        optimizer.step()
    start = joules()
    with torch.no_grad():
        model(x)
    programming = max(0.0, joules() - start - inference * B)
    step = relaxations + programming
    digital_inf = 2 * N * reference.joules_per_flop
    digital_step = (6 * N * B + reference.optimizer_flops_per_parameter * N) * reference.joules_per_flop
    rows = [
        {"quantity": "inference, per sample", "physical_J": inference, "digital_J": digital_inf},
        {"quantity": f"training step (batch {B})", "physical_J": step, "digital_J": digital_step},
        {"quantity": "  of which relaxations", "physical_J": relaxations, "digital_J": 6 * N * B * reference.joules_per_flop},
        {"quantity": "  of which programming pulses", "physical_J": programming,
         "digital_J": reference.optimizer_flops_per_parameter * N * reference.joules_per_flop},
    ]
    assumptions = [f"network: {', '.join(p.describe() for p in plants)}; {N} trainable conductances/weights",
                   f"method: {method!r}, batch {B}",
                   f"digital: {reference.name}, {reference.joules_per_flop:.3g} J/FLOP ({reference.source})",
                   f"digital FLOPs: inference 2N per sample; training 6N per sample + "
                   f"{reference.optimizer_flops_per_parameter:g}N per step (optimizer)"]
    for plant in plants:
        assumptions.append(f"{type(plant).__name__}: {plant.cost.source}")
        if getattr(plant, "node_capacitance_F", None) is not None:
            assumptions.append(f"node capacitance {plant.node_capacitance_F:.3g} F (assumed), settling to "
                               f"precision {plant.settling_precision:g} (t = ln(1/precision) C / min G)")
        device = getattr(plant, "device", None)
        if device is not None:
            assumptions.append(f"device {device.name}: {device.pulse_energy_J:.3g} J per pulse, "
                               f"{device.pulse_duration_s:.3g} s ({device.source})")
    return EnergyReport(rows=rows, assumptions=assumptions)
