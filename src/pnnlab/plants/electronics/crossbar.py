"""Memristor crossbar layer: a matrix-vector multiplier whose weights are differential pairs of
memristors, trained in situ with pulsed, asymmetric, noisy updates.

Physics (Prezioso et al., Nature 521, 61 (2015), doi:10.1038/nature14441; Li et al., Nat. Commun.
9, 2385 (2018), doi:10.1038/s41467-018-04484-2): input voltages ``V_j = V_read x_j`` on the columns,
currents summed on the rows by Kirchhoff's current law, ``I_i = sum_j (G+_ij - G-_ij) V_j``, read by
transimpedance amplifiers with gain ``1 / (V_read (G_max - G_min))``, so that

    y = x W^T,   W = (G+ - G-) / (G_max - G_min)  in [-1, 1].

The conductances are :class:`~pnnlab.plants.electronics.memristor.MemristorArray` s (hidden truth:
soft-bounded asymmetric pulse response, cycle-to-cycle and device-to-device variation, read noise,
drift, stuck devices). Every change of the requested conductances is turned into programming pulses
by :meth:`MemristorCrossbarPlant.program` (called automatically at each query), with the exact
vectorised n-pulse statistics of the device model: a 256 x 256 layer is updated in one pass over the
array, not pulse by pulse.

Energy: a read dissipates ``sum_ij G_ij V_j^2`` for ``read_time_s`` (assumed 10 ns, the order of an
analog crossbar read cycle); programming costs the device's pulse energy per pulse.

Simplifications: no wire resistance (IR drop), sneak paths or ADC quantisation; the TIA is ideal.
"""

from __future__ import annotations

import torch

from ..._validation import check_int, check_positive
from ...metering import CostModel
from ...twins.base import Twin
from ..base import ControlSpec, Plant
from ..capabilities import Simulated
from .memristor import TAOX_YI_2023, MemristorArray, MemristorDevice, program_arrays

__all__ = ["CrossbarTwin", "MemristorCrossbarPlant"]


class CrossbarTwin(Twin):
    """y = x ((G+ - G-) / (G_max - G_min))^T with the requested (nominal) conductances."""

    def __init__(self, *, in_features: int, out_features: int, range_S: float) -> None:
        super().__init__(in_features=in_features, out_features=out_features)
        self.range_S = range_S

    def forward(self, x, controls):
        w = (controls["g_plus"] - controls["g_minus"]) / self.range_S
        return x @ w.T


class MemristorCrossbarPlant(Plant, Simulated):
    """A crossbar of differential memristor pairs computing y = x W^T (see the module docstring)."""

    summary = "memristor crossbar, differential pairs, pulsed asymmetric noisy in-situ updates"

    def __init__(self, *, in_features: int, out_features: int, device: MemristorDevice = TAOX_YI_2023,
                 read_voltage_V: float = 0.2, read_time_s: float = 1e-8,
                 seed: int | torch.Generator | None = 0) -> None:
        in_features = check_int("in_features", in_features)
        out_features = check_int("out_features", out_features)
        if not isinstance(device, MemristorDevice):
            raise TypeError(f"device must be a MemristorDevice such as TAOX_YI_2023, got {type(device).__name__}.")
        self.read_voltage_V = check_positive("read_voltage_V", read_voltage_V)
        self.read_time_s = check_positive("read_time_s", read_time_s)
        super().__init__(in_features=in_features, out_features=out_features,
                         cost=CostModel(seconds_per_sample=read_time_s,
                                        source="read time assumed (10 ns analog read cycle); read energy "
                                               "sum G V^2 t and pulse energy added directly to the meter"),
                         seed=seed)
        self.device = device
        shape = (out_features, in_features)
        self._plus = MemristorArray(shape, device, generator=self._generator)
        self._minus = MemristorArray(shape, device, generator=self._generator)

    def control_specs(self):
        d = self.device
        shape = (self.out_features, self.in_features)
        return {"g_plus": ControlSpec(shape, d.g_min_S, d.g_max_S, "S", "positive device of each pair"),
                "g_minus": ControlSpec(shape, d.g_min_S, d.g_max_S, "S", "negative device of each pair")}

    def initial_controls(self, generator=None):
        gen = generator if generator is not None else self._generator
        d = self.device
        k = 1.0 / self.in_features ** 0.5
        w = k * (2 * torch.rand(self.out_features, self.in_features, generator=gen) - 1)
        mid = 0.5 * (d.g_min_S + d.g_max_S)
        return {"g_plus": mid + 0.5 * d.range_S * w, "g_minus": mid - 0.5 * d.range_S * w}

    def describe(self):
        return f"MemristorCrossbarPlant({self.in_features} -> {self.out_features}, device={self.device.name!r})"

    # ---- hardware operations ---------------------------------------------------------------
    def program(self, controls) -> dict:
        """Pulse both arrays towards the requested conductances; returns this round's pulse counts."""
        controls = self.validate_controls(controls)
        return self._program(controls)

    def _program(self, controls):
        return program_arrays(((self._plus, controls["g_plus"]), (self._minus, controls["g_minus"])),
                              self._generator, self.meter)

    def wait(self, seconds: float) -> None:
        """Let time pass (drift)."""
        self._plus.advance(seconds)
        self._minus.advance(seconds)

    @property
    def pulses(self) -> int:
        return self._plus.pulses + self._minus.pulses

    def _measure(self, x, controls, generator):
        self._program(controls)
        gp, gm = self._plus.read(generator), self._minus.read(generator)
        y = x @ ((gp - gm) / self.device.range_S).T
        v2 = (self.read_voltage_V * x) ** 2
        self.meter.charge(joules=float((v2 @ (gp + gm).sum(0)).sum()) * self.read_time_s)
        return y

    def nominal_twin(self):
        return CrossbarTwin(in_features=self.in_features, out_features=self.out_features,
                            range_S=self.device.range_S)
