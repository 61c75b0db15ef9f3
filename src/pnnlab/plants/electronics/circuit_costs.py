"""Energy and time constants of the circuit around a resistive network, and the counters (a ledger)
from which a relaxation's energy is computed for any set of those constants.

The network itself is simulated (:mod:`pnnlab.plants.electronics.resistive_network`); what it costs
to run depends on constants nobody has measured for this exact circuit. Every constant below is
therefore stated with its source or the word "assumed", and comes in three sets (``LOW``,
``NOMINAL``, ``HIGH``: optimistic, central and pessimistic for the physical system) so that a report
can give a range instead of one number. All energies are linear in the constants, so a plant
records constant-free counters (:class:`CircuitLedger`) once and any set evaluates them.

Terms (per relaxation, per sample)
----------------------------------
* **static dissipation while the network is held**: P x t_hold, P = sum_edges G dV^2 + diodes
  (the steady state's power), t_hold = t_settle + t_read (the ADC's sampling time);
* **settling time**: t_settle = n_tau x tau, n_tau = ln(V_range / tolerance_V) time constants to
  come within the solver's tolerance from a step of the full read range, and tau an upper bound of
  the slowest node's RC constant: tau = c_dev max_k(deg_k / T_k) + c_wire max_k(1 / T_k), with
  deg_k the number of devices attached to node k (its conductances and diodes), T_k its total
  conductance, c_dev the parasitic capacitance each attached device adds and c_wire the node's
  wire and ADC-input capacitance. (Each max is taken separately, so tau is conservative; the true
  slowest mode of the coupled RC network is not computed.)
* **capacitive (dynamic) energy**: sum_nodes C_k dV_k^2 for every free node and every driven source
  line (C_k = c_dev deg_k + c_wire), dV the change from the state the relaxation started from (the
  zero state for a free relaxation, the free state for a nudged one; source lines from 0 V);
* **ADC**: one conversion per node voltage that is read (every free node for a relaxation used by a
  local rule, one differential conversion per output for inference), at E_ADC = FOM_W x 2^bits;
* **DAC**: one conversion per driven input (the -x copy by an analog inverter, not charged), per
  clamped output and per injected nudge current;
* **digital work of the local rule** (the per-edge products of measured node voltages), counted in
  FLOPs by the plant and charged by :mod:`pnnlab.energy` at the controller's joules per FLOP.

Programming pulses are charged by the device model (:mod:`pnnlab.plants.electronics.memristor`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..._validation import check_int, check_nonnegative, check_positive

__all__ = ["CircuitConstants", "CircuitLedger", "HIGH", "LOW", "NOMINAL", "MURMANN_ADC_SURVEY"]

#: Murmann, "ADC Performance Survey 1997-2024", https://github.com/bmurmann/ADC-survey (ISSCC and VLSI
#: papers). The Walden figure of merit FOM_W = P / (f_s 2^ENOB) of published converters spans roughly
#: 1 fJ (the best) to well over 100 fJ per conversion step; the three values used here (1, 10,
#: 100 fJ) are our reading of that scatter for ~8-bit converters at 10-1000 MS/s (assumed, not a fit).
MURMANN_ADC_SURVEY = "Murmann ADC Performance Survey 1997-2024 (github.com/bmurmann/ADC-survey), Walden FOM"


@dataclass(frozen=True)
class CircuitConstants:
    """One set of circuit constants (SI units); ``label`` names the set, ``sources`` says where each
    value comes from."""

    label: str
    device_capacitance_F: float
    wire_capacitance_F: float
    adc_bits: int
    adc_fom_J_per_step: float
    adc_time_s: float
    dac_energy_J: float

    def __post_init__(self) -> None:
        check_nonnegative("device_capacitance_F", self.device_capacitance_F)
        check_positive("wire_capacitance_F", self.wire_capacitance_F)
        check_int("adc_bits", self.adc_bits)
        check_positive("adc_fom_J_per_step", self.adc_fom_J_per_step)
        check_positive("adc_time_s", self.adc_time_s)
        check_nonnegative("dac_energy_J", self.dac_energy_J)

    @property
    def adc_energy_J(self) -> float:
        """Energy of one conversion: Walden FOM x 2^bits (ENOB taken equal to the bit depth)."""
        return self.adc_fom_J_per_step * 2 ** self.adc_bits

    def describe(self) -> list[str]:
        return [
            f"[{self.label}] per-device parasitic capacitance {self.device_capacitance_F:.3g} F (assumed: "
            f"1T1R cell junction plus its wire segment)",
            f"[{self.label}] per-node wire + ADC input capacitance {self.wire_capacitance_F:.3g} F (assumed)",
            f"[{self.label}] ADC {self.adc_bits} bit, Walden FOM {self.adc_fom_J_per_step:.3g} J/step -> "
            f"{self.adc_energy_J:.3g} J per conversion ({MURMANN_ADC_SURVEY}; value assumed within its scatter), "
            f"sampling time {self.adc_time_s:.3g} s (assumed)",
            f"[{self.label}] DAC {self.dac_energy_J:.3g} J per conversion (assumed)",
        ]


#: optimistic for the physical system (small parasitics, best-in-survey ADC, fast sampling)
LOW = CircuitConstants("low", device_capacitance_F=0.1e-15, wire_capacitance_F=5e-15, adc_bits=8,
                       adc_fom_J_per_step=1e-15, adc_time_s=1e-9, dac_energy_J=0.1e-12)
#: central values
NOMINAL = CircuitConstants("nominal", device_capacitance_F=1e-15, wire_capacitance_F=20e-15, adc_bits=8,
                           adc_fom_J_per_step=10e-15, adc_time_s=10e-9, dac_energy_J=1e-12)
#: pessimistic for the physical system
HIGH = CircuitConstants("high", device_capacitance_F=5e-15, wire_capacitance_F=100e-15, adc_bits=8,
                        adc_fom_J_per_step=100e-15, adc_time_s=100e-9, dac_energy_J=10e-12)


@dataclass
class CircuitLedger:
    """Constant-free running counters of a resistive network's circuit activity (see the module
    docstring); :meth:`energy` turns them into joules for one :class:`CircuitConstants`."""

    relaxations: int = 0
    samples: int = 0
    power_W_s_per_F: float = 0.0       # sum P * n_tau * max(deg/T): multiply by c_dev -> joules
    power_W_s_per_F_wire: float = 0.0  # sum P * n_tau * max(1/T): multiply by c_wire -> joules
    power_W: float = 0.0               # sum P: multiply by t_read -> joules
    charge_V2_dev: float = 0.0         # sum deg dV^2: multiply by c_dev
    charge_V2_wire: float = 0.0        # sum dV^2: multiply by c_wire
    adc_conversions: int = 0
    dac_conversions: int = 0
    local_rule_flops: float = 0.0      # digital work of energy_gradients (charged by pnnlab.energy)

    def snapshot(self) -> "CircuitLedger":
        return CircuitLedger(**{f.name: getattr(self, f.name) for f in fields(self)})

    def __add__(self, other: "CircuitLedger") -> "CircuitLedger":
        return CircuitLedger(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def __sub__(self, other: "CircuitLedger") -> "CircuitLedger":
        return CircuitLedger(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    def energy(self, c: CircuitConstants) -> dict[str, float]:
        """Joules by term (the digital local rule is not included: it needs a processor's J/FLOP)."""
        return {
            "static (P x settle)": self.power_W_s_per_F * c.device_capacitance_F
            + self.power_W_s_per_F_wire * c.wire_capacitance_F,
            "static (P x ADC sampling)": self.power_W * c.adc_time_s,
            "capacitive (C dV^2)": self.charge_V2_dev * c.device_capacitance_F + self.charge_V2_wire * c.wire_capacitance_F,
            "ADC reads": self.adc_conversions * c.adc_energy_J,
            "DAC drives": self.dac_conversions * c.dac_energy_J,
        }


def settling_time_constants(range_V: float, tolerance_V: float) -> float:
    """Number of RC time constants for a step of ``range_V`` to decay below ``tolerance_V``."""
    return max(1.0, math.log(check_positive("range_V", range_V) / check_positive("tolerance_V", tolerance_V)))
