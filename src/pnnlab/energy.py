"""Energy accounting: what inference and a training step cost a physical network, everything it
needs included, against a digital estimate of the same network.

Physical side (counted while the plants run; see :mod:`pnnlab.plants.electronics.circuit_costs`):

* the circuit: static dissipation of every relaxation over its RC settling time (node capacitance
  growing with the number of attached devices, the conductances actually used, ln(V_range /
  tolerance) time constants) and over the ADC sampling time; the capacitive energy of charging nodes
  and source lines; one ADC conversion per measured node voltage; one DAC conversion per driven
  input, clamp or nudge current;
* programming pulses (number sent x energy per pulse);
* the digital work the method itself does in the controller, in FLOPs: the local rule's per-edge
  products of measured node voltages (counted by the plant), the contrast of two measurements, the
  chain rule to the raw parameters, the optimizer update, the pulse controller, and the digital
  layers of the model (forward and backward), all charged at the controller's joules per FLOP.

Digital side: the same network on a digital processor, counted by *equivalent weights* (a
differential pair of conductances or a conductance pair to +-x is one weight):

* inference: 2 FLOPs per weight per sample; a training step: 6 per weight per sample (forward,
  backward to activations, weight gradients) plus ``optimizer_flops_per_parameter`` per weight (Adam:
  about 10); joules per FLOP from a cited figure (:data:`H100_BF16_PEAK` by default: the best case
  for the GPU, peak throughput at rated power, memory traffic ignored).

Every assumed constant comes in three values (:data:`SCENARIOS`: optimistic, nominal and
pessimistic for the physical system); the report gives the ratio for each, its breakdown and the
dominant term. The claim under test is the "over four orders of magnitude" energy advantage of Yi et
al., Nature Electronics 6, 45 (2023), doi:10.1038/s41928-022-00869-w (a modelled figure).

Simplifications: the digital baseline counts arithmetic only (no memory traffic, no activation
functions); the physical side's digital work is counted in FLOPs of the operations the code performs
(memory traffic likewise ignored); supported methods are equilibrium propagation and coupled
learning on resistive networks (the plants that keep a :class:`CircuitLedger`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ._validation import check_int, check_nonnegative, check_positive
from .layers import PhysicalLayer, physical_layers, plants_of
from .plants.electronics.circuit_costs import HIGH, LOW, NOMINAL, CircuitConstants, CircuitLedger

__all__ = ["DigitalReference", "EnergyReport", "EnergyScenario", "H100_BF16_PEAK", "HOROWITZ_FP32_45NM",
           "HOROWITZ_INT8_45NM", "SCENARIOS", "measure_energy"]


@dataclass(frozen=True)
class DigitalReference:
    """Joules per floating-point operation of a digital processor, with its source."""

    name: str
    joules_per_flop: float
    source: str
    optimizer_flops_per_parameter: float = 10.0

    def __post_init__(self) -> None:
        check_positive("joules_per_flop", self.joules_per_flop)
        check_nonnegative("optimizer_flops_per_parameter", self.optimizer_flops_per_parameter)


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

#: Horowitz 2014, same table: 8-bit integer multiply 0.2 pJ + add 0.03 pJ = 0.23 pJ per MAC = 0.115 pJ/op.
HOROWITZ_INT8_45NM = DigitalReference(
    name="INT8 arithmetic, 45 nm", joules_per_flop=0.23e-12 / 2,
    source="Horowitz, ISSCC 2014, doi:10.1109/ISSCC.2014.6757323: 8-bit int mult 0.2 pJ + add 0.03 pJ at 45 nm; "
           "arithmetic only")


@dataclass(frozen=True)
class EnergyScenario:
    """One set of assumed constants for the physical side: circuit constants, the processor that
    does the method's digital work (the controller), and the energy per programming pulse
    (``pulse_energy_J=None``: the device preset's own value)."""

    label: str
    circuit: CircuitConstants
    controller: DigitalReference
    pulse_energy_J: float | None
    pulse_source: str

    def pulse_energy(self, plant) -> float:
        if self.pulse_energy_J is not None:
            return self.pulse_energy_J
        device = getattr(plant, "device_model", None)  # the memristor model (plant.device: torch)
        return 0.0 if device is None else device.pulse_energy_J


#: optimistic, nominal and pessimistic constants for the physical side
SCENARIOS = (
    EnergyScenario("low", LOW, HOROWITZ_INT8_45NM, 3e-15,
                   "3 fJ per update: the lower figure quoted by Li et al., Nat. Commun. 9, 2385 (2018) (recalled, not verified) "
                   "for memristor conductance updates"),
    EnergyScenario("nominal", NOMINAL, H100_BF16_PEAK, None, "the device preset's pulse energy"),
    EnergyScenario("high", HIGH, HOROWITZ_FP32_45NM, 100e-12,
                   "100 pJ per pulse (assumed: about 1 V x 100 uA x 1 us)"),
)


@dataclass
class _Activity:
    """What the physical side did (per sample for inference, per step for training)."""

    ledger: CircuitLedger
    pulses: float
    pulse_plants: list
    flops: dict = field(default_factory=dict)  # controller FLOPs by purpose (besides the local rule)


_CIRCUIT_TERMS = ("static (P x settle)", "static (P x ADC sampling)", "capacitive (C dV^2)", "ADC reads",
                  "DAC drives")


@dataclass
class EnergyReport:
    """Physical energy by term for every scenario, against the digital estimate (module docstring)."""

    inference: _Activity
    step: _Activity
    n_equivalent_weights: int
    n_conductances: int
    n_digital_parameters: int
    batch: int
    reference: DigitalReference
    scenarios: tuple
    assumptions: list[str]

    # ---- physical ----
    def physical(self, which: str, scenario: EnergyScenario) -> dict[str, float]:
        """Joules by term for ``which`` ("inference": per sample, "training": per step)."""
        act = self.inference if which == "inference" else self.step
        terms = act.ledger.energy(scenario.circuit)
        pulse_J = scenario.pulse_energy(act.pulse_plants[0]) if act.pulse_plants else 0.0
        terms["programming pulses"] = act.pulses * pulse_J
        j = scenario.controller.joules_per_flop
        terms["digital: local rule (per-edge products of measured voltages)"] = act.ledger.local_rule_flops * j
        terms["digital: contrast, chain rule, optimizer, pulse controller"] = sum(
            v for k, v in act.flops.items() if k != "digital layers") * j
        terms["digital: digital layers of the model"] = act.flops.get("digital layers", 0.0) * j
        return terms

    # ---- digital ----
    def digital_flops(self, which: str) -> float:
        N = self.n_equivalent_weights + self.n_digital_parameters
        if which == "inference":
            return 2.0 * N
        return 6.0 * N * self.batch + self.reference.optimizer_flops_per_parameter * N

    def digital(self, which: str) -> float:
        return self.digital_flops(which) * self.reference.joules_per_flop

    def ratio(self, which: str, scenario: EnergyScenario, *, analog_local_rule: bool = False) -> float:
        terms = self.physical(which, scenario)
        if analog_local_rule:
            terms = {k: v for k, v in terms.items() if not k.startswith("digital: local rule")}
        total = sum(terms.values())
        return self.digital(which) / total if total > 0 else float("inf")

    def dominant(self, which: str, scenario: EnergyScenario) -> tuple[str, float]:
        terms = self.physical(which, scenario)
        total = sum(terms.values())
        name = max(terms, key=terms.get)
        return name, (terms[name] / total if total > 0 else 0.0)

    def with_reference(self, reference: DigitalReference) -> "EnergyReport":
        """The same physical measurement compared with another digital reference."""
        assumptions = [a if not a.startswith("digital baseline: ") else _reference_line(reference)
                       for a in self.assumptions]
        return EnergyReport(self.inference, self.step, self.n_equivalent_weights, self.n_conductances,
                            self.n_digital_parameters, self.batch, reference, self.scenarios, assumptions)

    def table(self) -> str:
        names = [s.label for s in self.scenarios]
        width = 14
        lines = []
        for which, title in (("inference", "inference, per sample"),
                             ("training", f"training step (batch {self.batch})")):
            lines.append(f"--- {title} (J); columns: assumed-constant scenario ---")
            lines.append(f"{'term':<62}" + "".join(f"{n:>{width}}" for n in names))
            per = [self.physical(which, s) for s in self.scenarios]
            for term in per[0]:
                lines.append(f"{term:<62}" + "".join(f"{p[term]:>{width}.3e}" for p in per))
            totals = [sum(p.values()) for p in per]
            lines.append(f"{'physical total':<62}" + "".join(f"{t:>{width}.3e}" for t in totals))
            lines.append(f"{'digital baseline (' + self.reference.name + ')':<62}"
                         + "".join(f"{self.digital(which):>{width}.3e}" for _ in names))
            lines.append(f"{'ratio digital / physical':<62}"
                         + "".join(f"{self.ratio(which, s):>{width}.3g}" for s in self.scenarios))
            if which == "training":
                lines.append(f"{'  ratio if the local rule ran in analog at each device':<62}"
                             + "".join(f"{self.ratio(which, s, analog_local_rule=True):>{width}.3g}"
                                       for s in self.scenarios))
            for s in self.scenarios:
                name, share = self.dominant(which, s)
                lines.append(f"  dominant term [{s.label}]: {name} ({100 * share:.0f} % of the physical total)")
            holds = [s.label for s in self.scenarios if self.ratio(which, s) >= 1e4]
            lines.append(f"  ~10^4 advantage (Yi et al. 2023) reached in: "
                         f"{', '.join(holds) if holds else 'none of the scenarios'}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table() + "\nassumptions:\n" + "\n".join(f"  - {a}" for a in self.assumptions)


def _reference_line(reference: DigitalReference) -> str:
    return (f"digital baseline: {reference.name}, {reference.joules_per_flop:.3g} J/FLOP ({reference.source}); "
            f"optimizer {reference.optimizer_flops_per_parameter:g} FLOPs per weight per step (assumed, Adam)")


def _supported(method) -> None:
    from .methods.coupled_learning import CoupledLearning
    from .methods.equilibrium_propagation import EquilibriumPropagation
    if not isinstance(method, (EquilibriumPropagation, CoupledLearning)):
        raise NotImplementedError(
            f"energy accounting counts the digital work of equilibrium propagation and coupled learning only, "
            f"got {type(method).__name__}; a method that evaluates a twin would need that twin's FLOPs counted "
            f"too. Use EquilibriumPropagation(...) or CoupledLearning(...).")


def _digital_parameters(model: nn.Module) -> int:
    physical = {id(p) for layer in physical_layers(model) for p in layer.parameters()}
    return sum(int(p.numel()) for p in model.parameters() if p.requires_grad and id(p) not in physical)


def _ledgers(plants) -> CircuitLedger:
    total = CircuitLedger()
    for plant in plants:
        total = total + plant.ledger
    return total


def measure_energy(model: nn.Module, method, x: torch.Tensor, y: torch.Tensor, *,
                   optimizer: torch.optim.Optimizer | None = None,
                   loss_fn: Callable = nn.functional.cross_entropy,
                   reference: DigitalReference = H100_BF16_PEAK, scenarios=SCENARIOS,
                   steps: int = 1) -> EnergyReport:
    """Run one inference pass and ``steps`` training steps of ``method`` on the plants of ``model``
    (batch ``x``, ``y``), count what the physical side did (averaged over the steps) and compare with
    ``reference`` for every scenario of assumed constants.

    The pulses that program a step's update are sent right after the optimizer step (by
    ``plant.program``), so they are charged to that step, not to the next query."""
    if not isinstance(reference, DigitalReference):
        raise TypeError(f"reference must be a DigitalReference such as H100_BF16_PEAK, got {type(reference).__name__}.")
    scenarios = tuple(scenarios)
    if not scenarios or not all(isinstance(s, EnergyScenario) for s in scenarios):
        raise TypeError("scenarios must be a non-empty sequence of EnergyScenario (default: pnnlab.energy.SCENARIOS).")
    steps = check_int("steps", steps)
    _supported(method)
    layers = [m for m in model.modules() if isinstance(m, PhysicalLayer)]
    plants = plants_of(model)
    if not plants:
        raise ValueError("model has no physical layers; there is no physical energy to measure.")
    for plant in plants:
        if not isinstance(getattr(plant, "ledger", None), CircuitLedger):
            raise TypeError(f"{plant.describe()} keeps no CircuitLedger; energy accounting is implemented for "
                            f"ResistiveNetworkPlant.")
    B = x.shape[0]
    N_raw = sum(p.n_conductances for p in plants)
    N_eq = sum(p.equivalent_weights for p in plants)
    P_d = _digital_parameters(model)
    pulse_plants = [p for p in plants if getattr(p, "device", None) is not None]

    def pulses():
        return float(sum(p.pulses for p in plants))

    def flush():
        # program the current targets; a second round sends the controller's corrections (with
        # unequal up/down steps a rounded step can leave a residue worth one pulse the other way)
        for _ in range(3):
            before = pulses()
            for layer in layers:
                layer.plant.program({k: v.detach() for k, v in layer.control_values().items()})
            if pulses() == before:
                break

    flush()
    start, p0 = _ledgers(plants), pulses()
    with torch.no_grad():
        model(x)
    inf_ledger = _ledgers(plants) - start
    inf_ledger = CircuitLedger(**{k: v / B for k, v in vars(inf_ledger).items()})
    inference = _Activity(inf_ledger, (pulses() - p0) / B, pulse_plants, {"digital layers": 2.0 * P_d})

    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    start, p0 = _ledgers(plants), pulses()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        method.step(model, x, y, loss_fn)
        if not method.updates_parameters:
            optimizer.step()
        flush()
    step_ledger = _ledgers(plants) - start
    step_ledger = CircuitLedger(**{k: v / steps for k, v in vars(step_ledger).items()})
    flops = {"contrast of two measurements": 2.0 * N_raw,
             "chain rule to raw parameters": 4.0 * N_raw,
             "optimizer": reference.optimizer_flops_per_parameter * (N_raw + P_d),
             "pulse controller": 3.0 * N_raw if pulse_plants else 0.0,
             "digital layers": 6.0 * P_d * B}
    step = _Activity(step_ledger, (pulses() - p0) / steps, pulse_plants, flops)

    assumptions = [
        f"network: {', '.join(p.describe() for p in plants)}; {N_raw} conductances = {N_eq} equivalent weights "
        f"(a differential pair is one weight); {P_d} digital parameters",
        f"method: {method!r}, batch {B}, training figures averaged over {steps} step(s); relaxations per step "
        f"{step_ledger.relaxations:g}",
        _reference_line(reference),
        "digital FLOPs: inference 2 per weight per sample; training 6 per weight per sample + optimizer",
        "controller FLOPs per step: local rule as counted by the plant (2 n m B per layer and phase for the "
        "products a^T b); contrast 2 per conductance; chain rule 4 per conductance; optimizer as the digital "
        "baseline's, per raw conductance; pulse controller 3 per conductance; digital layers 6 per parameter "
        "per sample (2 at inference)",
    ]
    for s in scenarios:
        assumptions += s.circuit.describe()
        assumptions.append(f"[{s.label}] controller: {s.controller.name}, {s.controller.joules_per_flop:.3g} J/FLOP "
                           f"({s.controller.source})")
        assumptions.append(f"[{s.label}] programming pulse: "
                           f"{s.pulse_energy(pulse_plants[0]) if pulse_plants else 0.0:.3g} J ({s.pulse_source})")
    for plant in plants:
        assumptions.append(f"{type(plant).__name__}: settling to tolerance_V={plant.tolerance_V:g} from a "
                           f"{plant.read_range_V:g} V step = {plant._n_tau:.1f} RC time constants; node "
                           f"capacitance = c_dev x attached devices + c_wire")
        device = getattr(plant, "device_model", None)
        if device is not None:
            assumptions.append(f"device {device.name}: preset {device.pulse_energy_J:.3g} J per pulse, "
                               f"{device.pulse_duration_s:.3g} s ({device.source})")
        else:
            assumptions.append("no memristor device: conductance writes are exact and free (no programming cost "
                               "modelled)")
    return EnergyReport(inference=inference, step=step, n_equivalent_weights=N_eq, n_conductances=N_raw,
                        n_digital_parameters=P_d, batch=B, reference=reference, scenarios=scenarios,
                        assumptions=assumptions)
