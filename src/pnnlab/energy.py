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

from ._validation import check_int, check_positive
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
    """Energies per sample (inference) and per training step, physical against digital.

    ``physical`` holds the measured joules (``inference_per_sample``, ``relaxations_per_step``,
    ``programming_per_step``); ``n_weights`` and ``batch`` size the digital estimate.
    """

    physical: dict
    n_weights: int
    batch: int
    reference: DigitalReference
    assumptions: list[str]

    @property
    def rows(self) -> list[dict]:
        ref, N, B, p = self.reference, self.n_weights, self.batch, self.physical
        j = ref.joules_per_flop
        step = p["relaxations_per_step"] + p["programming_per_step"]
        return [
            {"quantity": "inference, per sample", "physical_J": p["inference_per_sample"], "digital_J": 2 * N * j},
            {"quantity": f"training step (batch {B})", "physical_J": step,
             "digital_J": (6 * N * B + ref.optimizer_flops_per_parameter * N) * j},
            {"quantity": "  of which relaxations / fwd+bwd", "physical_J": p["relaxations_per_step"],
             "digital_J": 6 * N * B * j},
            {"quantity": "  of which programming / optimizer", "physical_J": p["programming_per_step"],
             "digital_J": ref.optimizer_flops_per_parameter * N * j},
        ]

    def with_reference(self, reference: DigitalReference) -> "EnergyReport":
        """The same physical measurement compared with another digital reference."""
        assumptions = [a for a in self.assumptions if not a.startswith("digital: ")]
        assumptions.insert(2, _reference_line(reference))
        return EnergyReport(self.physical, self.n_weights, self.batch, reference, assumptions)

    def table(self) -> str:
        lines = [f"{'quantity':<36}{'physical (J)':>14}{'digital (J)':>14}{'digital/physical':>18}"]
        for row in self.rows:
            ratio = row["digital_J"] / row["physical_J"] if row["physical_J"] > 0 else float("inf")
            lines.append(f"{row['quantity']:<36}{row['physical_J']:>14.3e}{row['digital_J']:>14.3e}{ratio:>18.3g}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table() + "\nassumptions:\n" + "\n".join(f"  - {a}" for a in self.assumptions)


def _reference_line(reference: DigitalReference) -> str:
    return f"digital: {reference.name}, {reference.joules_per_flop:.3g} J/FLOP ({reference.source})"


def _n_weights(model: nn.Module) -> int:
    return sum(int(v.numel()) for layer in physical_layers(model) for v in layer.control_values().values())


def measure_energy(model: nn.Module, method, x: torch.Tensor, y: torch.Tensor, *,
                   optimizer: torch.optim.Optimizer | None = None,
                   loss_fn: Callable = nn.functional.cross_entropy,
                   reference: DigitalReference = H100_BF16_PEAK, steps: int = 1) -> EnergyReport:
    """Run one inference pass and ``steps`` training steps of ``method`` on the plants of ``model``
    (batch ``x``, ``y``), read the joules their meters recorded (averaged over the steps), and
    compare with ``reference`` (see :meth:`EnergyReport.with_reference` for others).

    A training step's programming pulses are sent at the next plant query; this function triggers
    it with one more inference pass whose own dissipation is subtracted."""
    if not isinstance(reference, DigitalReference):
        raise TypeError(f"reference must be a DigitalReference such as H100_BF16_PEAK, got {type(reference).__name__}.")
    steps = check_int("steps", steps)
    plants = plants_of(model)
    if not plants:
        raise ValueError("model has no physical layers; there is no physical energy to measure.")
    B = x.shape[0]
    N = _n_weights(model)

    def joules():
        return total_usage(plants)["joules"]

    def infer():
        start = joules()
        with torch.no_grad():
            model(x)
        return joules() - start

    inference = infer() / B
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    relaxations = programming = 0.0
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        start = joules()
        method.step(model, x, y, loss_fn)
        relaxations += joules() - start
        if not method.updates_parameters:
            optimizer.step()
        total = infer()
        programming += max(0.0, total - inference * B)
    physical = {"inference_per_sample": inference, "relaxations_per_step": relaxations / steps,
                "programming_per_step": programming / steps}
    assumptions = [f"network: {', '.join(p.describe() for p in plants)}; {N} trainable conductances/weights",
                   f"method: {method!r}, batch {B}, physical energies averaged over {steps} step(s)",
                   _reference_line(reference),
                   "digital FLOPs: inference 2N per sample; training 6N per sample + "
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
    return EnergyReport(physical=physical, n_weights=N, batch=B, reference=reference, assumptions=assumptions)
