"""A single spin-torque nano-oscillator as a time-multiplexed reservoir (Torrejon et al. 2017).

Source: J. Torrejon, M. Riou, F. Abreu Araujo, S. Tsunegi, G. Khalsa, D. Querlioz, P. Bortolotti, V. Cros,
K. Yakushiji, A. Fukushima, H. Kubota, S. Yuasa, M. D. Stiles & J. Grollier, "Neuromorphic computing with
nanoscale spintronic oscillators", Nature 547, 428-431 (2017), doi:10.1038/nature23011. One vortex STNO; the
input is multiplied by a fixed random binary mask and applied as an amplitude-modulated DC current, one
mask value per interval theta (the *virtual nodes*); the oscillator's amplitude (its rectified microwave
voltage) at the end of every interval is a node state. Its amplitude relaxes with a time constant of the
order of theta, so every node also remembers the previous ones: the non-linearity and memory of the
reservoir are those of the oscillator's power, p0(I) = (I/I_th - 1)/(I/I_th + Q) and its relaxation.
Only a linear read-out of the node states is trained (ridge regression, in the benchmark).

Plant: input ``x`` (batch, n_inputs) (features, e.g. z-scored); the current of virtual node k is
``I_k = I_bias + scale * (M x)_k / sqrt(n_inputs)`` clipped to the physical current range (M: a fixed
+-1 mask of shape (n_virtual, n_inputs) drawn from ``mask_seed``; the experimenter's choice, known to the
twin). Controls: ``bias`` (the DC bias current, mA) and ``scale`` (the modulation depth, mA). Output: the
power p of the oscillator at the end of each of the n_virtual intervals (dimensionless, 1 = saturation).

Hidden truth (:class:`~pnnlab.plants.spintronics.stno_array.STNOMismatch`; only ``threshold_spread`` and
``thermal_noise`` act on one free-running oscillator): the device's spin-torque efficiency differs from the
design by a fixed relative error (so does its threshold current), and thermal noise is drawn on every call.
Simplifications: the output is the power p itself (no detector non-linearity or amplifier noise); the input
is one static vector spread over the virtual nodes (no speech time series, see the benchmark).
"""

from __future__ import annotations

import math

import torch

from ..._validation import check_int, check_nonnegative, check_positive
from ...metering import CostModel
from ...twins.base import Twin
from ..base import ControlSpec, Plant
from ..capabilities import Simulated
from .auto_oscillator import TWO_PI, simulate_reservoir
from .stno_array import STNOMismatch, _check_pair

__all__ = ["STNOReservoir", "STNOReservoirTwin"]


def _node_currents(x, bias, scale, mask, low, high):
    drive = (x @ mask.T.to(x.dtype)) / math.sqrt(mask.shape[1])
    return (bias.to(x.dtype) + scale.to(x.dtype) * drive).clamp(low, high)


class STNOReservoirTwin(Twin):
    """Differentiable single-oscillator reservoir with given constants (no noise)."""

    def __init__(self, *, mask: torch.Tensor, sigma: float, damping: float, nonlinear_damping: float,
                 shift: float, current_range: tuple[float, float], node_ns: float, step_ns: float) -> None:
        super().__init__(in_features=mask.shape[1], out_features=mask.shape[0])
        self.register_buffer("mask", mask.clone())
        self.sigma, self.damping, self.nonlinear_damping, self.shift = sigma, damping, nonlinear_damping, shift
        self.current_range = current_range
        self.node_ns, self.step_ns = node_ns, step_ns

    def forward(self, x, controls):
        return self.simulate(x, controls, noise=0.0, generator=None)

    def simulate(self, x, controls, *, noise, generator):
        current = _node_currents(x, controls["bias"], controls["scale"], self.mask, *self.current_range)
        return simulate_reservoir(current, omega0=0.0, shift=self.shift, sigma=self.sigma, damping=self.damping,
                                  nonlinear_damping=self.nonlinear_damping, node_ns=self.node_ns,
                                  step_ns=self.step_ns, noise=noise, generator=generator)


class STNOReservoir(Plant, Simulated):
    """One STNO, time-multiplexed into ``n_virtual`` virtual nodes (see the module docstring).

    Parameters: ``n_inputs`` features per sample; ``n_virtual`` virtual nodes; ``node_ns`` theta, the
    duration of one node; ``step_ns`` the RK4 step; ``threshold_mA``, ``nonlinear_damping`` (Q),
    ``damping_ghz`` (G_G / 2 pi), ``nonlinear_shift_ghz`` as in
    :class:`~pnnlab.plants.spintronics.stno_array.STNOArray`; ``current_range_mA`` the range of the bias
    and of every node current; ``max_scale_mA`` the largest modulation depth; ``mask_seed`` the seed of the
    input mask; ``mismatch`` an STNOMismatch or None; ``seed`` the device's fabrication draw and noise.
    """

    summary = "single spin-torque oscillator as a time-multiplexed reservoir: virtual nodes from a modulated current"

    def __init__(self, *, n_inputs: int, n_virtual: int = 50, node_ns: float = 20.0, step_ns: float = 2.0,
                 threshold_mA: float = 3.0, nonlinear_damping: float = 1.0, damping_ghz: float = 0.005,
                 nonlinear_shift_ghz: float = 0.1, current_range_mA: tuple[float, float] = (3.3, 9.0),
                 max_scale_mA: float = 4.0, mask_seed: int = 0, mismatch: STNOMismatch | None = None,
                 cost: CostModel | None = None, seed: int = 0) -> None:
        n_inputs = check_int("n_inputs", n_inputs)
        n_virtual = check_int("n_virtual", n_virtual)
        self.node_ns = check_positive("node_ns", node_ns)
        self.step_ns = check_positive("step_ns", step_ns)
        if self.step_ns > self.node_ns:
            raise ValueError(f"step_ns must not exceed node_ns (at least one RK4 step per virtual node), got "
                             f"step_ns={step_ns}, node_ns={node_ns}.")
        self.threshold_mA = check_positive("threshold_mA", threshold_mA)
        self.nonlinear_damping = check_nonnegative("nonlinear_damping", nonlinear_damping)
        self.damping_ghz = check_positive("damping_ghz", damping_ghz)
        self.nonlinear_shift_ghz = check_nonnegative("nonlinear_shift_ghz", nonlinear_shift_ghz)
        low, high = _check_pair("current_range_mA", current_range_mA)
        if low <= self.threshold_mA:
            raise ValueError(f"current_range_mA must start above threshold_mA={self.threshold_mA:g} (below it the "
                             f"oscillator stops and loses its state), got {current_range_mA!r}.")
        self.current_range_mA = (low, high)
        self.max_scale_mA = check_positive("max_scale_mA", max_scale_mA)
        if mismatch is None:
            mismatch = STNOMismatch()
        if not isinstance(mismatch, STNOMismatch):
            raise TypeError(f"mismatch must be an STNOMismatch or None, got {type(mismatch).__name__}.")
        if cost is not None and not isinstance(cost, CostModel):
            raise TypeError(f"cost must be a pnnlab CostModel or None, got {type(cost).__name__}.")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {seed!r}.")
        per_sample = n_virtual * self.node_ns * 1e-9
        mid = 0.5 * (low + high)
        cost = cost or CostModel(
            seconds_per_query=1e-3, seconds_per_sample=per_sample, joules_per_sample=(mid * 1e-3) ** 2 * 100.0 * per_sample,
            source=f"assumed: 1 ms to program the current waveform per query, {n_virtual} x {self.node_ns:g} ns per "
                   f"sample, Joule power I^2 R at {mid:g} mA with R = 100 ohm")
        super().__init__(in_features=n_inputs, out_features=n_virtual, cost=cost, seed=seed)
        self.n_virtual = n_virtual
        self.mask_seed = check_int("mask_seed", mask_seed, minimum=0)
        self._mask = (torch.randint(0, 2, (n_virtual, n_inputs), generator=torch.Generator().manual_seed(mask_seed))
                      * 2.0 - 1.0)
        self._specs = {"bias": ControlSpec((1,), low, high, unit="mA", description="DC bias current"),
                       "scale": ControlSpec((1,), 0.0, self.max_scale_mA, unit="mA", description="modulation depth")}
        damping = TWO_PI * self.damping_ghz
        self._design_sigma = damping / self.threshold_mA
        fab = torch.Generator().manual_seed(104729 * (seed + 1))
        error = float(torch.randn(1, generator=fab, dtype=torch.float64))
        self._true_sigma = self._design_sigma * max(0.5, 1.0 + mismatch.threshold_spread * error)
        self._noise = damping * mismatch.thermal_noise
        self._mismatch = mismatch
        self._true = self._twin(self._true_sigma)

    def control_specs(self):
        return dict(self._specs)

    def initial_controls(self, generator=None):
        low, high = self.current_range_mA
        return {"bias": torch.tensor([0.5 * (low + high)], device=self.device),
                "scale": torch.tensor([0.5 * self.max_scale_mA], device=self.device)}

    def _measure(self, x, controls, generator):
        return self._true.simulate(x, controls, noise=self._noise, generator=generator)

    def _twin(self, sigma):
        return STNOReservoirTwin(mask=self._mask, sigma=sigma, damping=TWO_PI * self.damping_ghz,
                                 nonlinear_damping=self.nonlinear_damping, shift=TWO_PI * self.nonlinear_shift_ghz,
                                 current_range=self.current_range_mA, node_ns=self.node_ns, step_ns=self.step_ns)

    def nominal_twin(self):
        """The design threshold current, no noise."""
        return self._twin(self._design_sigma)

    def true_twin(self):
        """This device's spin-torque efficiency (threshold), noise off."""
        return self._twin(self._true_sigma)

    def describe(self):
        return f"STNOReservoir(n_inputs={self.in_features}, n_virtual={self.n_virtual}, node_ns={self.node_ns:g})"
