"""Multiplexed gradient descent (MGD), a zeroth-order estimator (see :mod:`pnnlab.methods.zeroth_order`).

McCaughan, Oripov, Ganesh, Nam, Dienstfrey & Buckley, "Multiplexed gradient descent: fast online
training of modern datasets on hardware neural networks without backpropagation",
APL Mach. Learn. 1, 026118 (2023), doi:10.1063/5.0157645. All parameters are perturbed at once
with a multiplexing code ``c_i(t)`` (time: random +-1 sequences; frequency: sinusoids of distinct
frequencies; code: Walsh-Hadamard sequences), the cost change is correlated with each parameter's
own code and integrated over ``T`` time steps before one update:
``G_i = (1 / T) sum_t [C(theta + eps c(t)) - C(theta)] c_i(t) / eps`` (codes have unit mean
square). With orthogonal codes (Walsh, T >= P + 1) G is the finite-difference gradient;
random codes make cross-talk zero-mean. This discrete version holds the batch fixed during the T
steps (tau_x = tau_theta in the paper's notation) and subtracts a measured baseline instead of
high-pass filtering the cost. T + 1 evaluations.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import torch

from .._validation import check_int, check_positive, make_generator
from .zeroth_order import (ZerothOrderMethod, _rademacher, get_vector, plant_loss, set_vector,
                           trainable_parameters, write_grad)


class PerturbationCode(abc.ABC):
    """How MGD multiplexes the perturbations of P parameters over T time steps: returns a (T, P)
    tensor of unit-mean-square values."""

    @abc.abstractmethod
    def sequences(self, timesteps: int, n_params: int, generator: torch.Generator) -> torch.Tensor:
        ...


@dataclass(frozen=True)
class TimeMultiplexed(PerturbationCode):
    """Independent random +-1 perturbations at every time step (discrete, time-multiplexed MGD)."""

    def sequences(self, timesteps, n_params, generator):
        return _rademacher(torch.empty(timesteps, n_params, device=generator.device), generator)


@dataclass(frozen=True)
class FrequencyMultiplexed(PerturbationCode):
    """Each parameter oscillates as sqrt(2) cos(2 pi f_i t / T + phi_i); frequencies are spread over
    1..T/2 - 1 and reused when P is large, with random phases so that cross-talk averages out."""

    def sequences(self, timesteps, n_params, generator):
        n_freq = max(1, timesteps // 2 - 1)
        cpu = generator.device
        freqs = 1 + torch.arange(n_params, device=cpu) % n_freq
        phases = 2 * math.pi * torch.rand(n_params, generator=generator, device=cpu)
        t = torch.arange(timesteps, device=cpu).unsqueeze(1)
        return math.sqrt(2.0) * torch.cos(2 * math.pi * freqs * t / timesteps + phases)


@dataclass(frozen=True)
class CodeMultiplexed(PerturbationCode):
    """Walsh-Hadamard codes: parameter i follows row r_i (not the constant row) with a random sign;
    rows are distinct (exactly orthogonal codes) when T is a power of two >= P + 1."""

    def sequences(self, timesteps, n_params, generator):
        if timesteps & (timesteps - 1):
            raise ValueError(f"CodeMultiplexed needs timesteps to be a power of two (Walsh-Hadamard "
                             f"codes), got {timesteps}; use e.g. {1 << (timesteps - 1).bit_length()}.")
        h = torch.ones(1, 1, device=generator.device)
        while h.shape[0] < timesteps:
            h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
        n_rows = timesteps - 1
        offset = int(torch.randint(0, n_rows, (1,), generator=generator, device=generator.device))
        rows = 1 + (torch.arange(n_params, device=generator.device) + offset) % n_rows
        signs = _rademacher(torch.empty(n_params, device=generator.device), generator)
        return (h[rows] * signs.unsqueeze(1)).T


class MultiplexedGradientDescent(ZerothOrderMethod):
    name = "mgd"
    summary = "multiplexed gradient descent: all parameters perturbed at once, T+1 evaluations (McCaughan 2023)"
    plant_queries_per_step = "timesteps + 1 forward passes (each one query per physical layer)"

    def __init__(self, *, code: PerturbationCode = TimeMultiplexed(), amplitude: float = 1e-2,
                 timesteps: int = 8, seed: int = 0) -> None:
        if not isinstance(code, PerturbationCode):
            raise TypeError(f"code must be a PerturbationCode such as TimeMultiplexed(), "
                            f"FrequencyMultiplexed() or CodeMultiplexed(), got {type(code).__name__}.")
        self.code = code
        self.amplitude = check_positive("amplitude", amplitude)
        self.timesteps = check_int("timesteps", timesteps)
        self._generator = make_generator(seed)

    def evaluations(self, n_params):
        return self.timesteps + 1

    def step(self, model, x, y, loss_fn):
        params = trainable_parameters(model)
        theta = get_vector(params)
        # the codes are drawn where the method's generator is (the CPU) and moved to the parameters
        codes = self.code.sequences(self.timesteps, theta.numel(), self._generator).to(theta)
        grad = torch.zeros_like(theta)
        try:
            base = plant_loss(model, x, y, loss_fn)
            for t in range(self.timesteps):
                set_vector(params, theta + self.amplitude * codes[t])
                grad += (plant_loss(model, x, y, loss_fn) - base) * codes[t]
        finally:
            set_vector(params, theta)
        write_grad(params, grad / (self.amplitude * self.timesteps))
        return base

    def __repr__(self):
        return (f"MultiplexedGradientDescent(code={self.code!r}, amplitude={self.amplitude}, "
                f"timesteps={self.timesteps})")




__all__ = ["CodeMultiplexed", "FrequencyMultiplexed", "MultiplexedGradientDescent", "PerturbationCode",
           "TimeMultiplexed"]
