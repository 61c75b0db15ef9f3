"""Toy plant y = c * x^theta: the depth example of the physics-aware-training reference code
(mcmahon-lab/Physics-Aware-Training, example 3; Wright et al., Nature 601, 549 (2022)).

The true coefficient is ``coefficient`` (2.0); the nominal twin uses ``twin_coefficient`` (2.01), a
0.5 % error per layer. Applied n times, the forward error compounds to about 3 % at n = 5 and 30 %
at n = 20. The trainable control is the exponent theta. Inputs must be positive.
"""

from __future__ import annotations

import torch

from ... import devices
from ..._validation import check_finite_float, check_positive
from ...metering import CostModel
from ...twins.base import Twin
from ..base import ControlSpec, Plant
from ..capabilities import Simulated


def _power_law(x: torch.Tensor, coefficient, exponent: torch.Tensor) -> torch.Tensor:
    return coefficient * x.clamp_min(1e-30) ** exponent


class PowerLawTwin(Twin):
    """Differentiable model y = c x^theta with a (possibly wrong) coefficient c."""

    def __init__(self, *, coefficient: float = 2.01, features: int = 1) -> None:
        super().__init__(in_features=features, out_features=features)
        self.coefficient = check_positive("coefficient", coefficient)

    def forward(self, x, controls):
        return _power_law(x, self.coefficient, controls["exponent"])


class PowerLawPlant(Plant, Simulated):
    """y = c x^theta elementwise, with a true coefficient the twin does not know exactly."""

    summary = "toy plant y = c x^theta (PAT reference depth example)"

    def __init__(self, *, features: int = 1, coefficient: float = 2.0, twin_coefficient: float = 2.01,
                 exponent_range: tuple[float, float] = (0.5, 2.0), noise_std: float = 0.0,
                 seed: int | torch.Generator | None = 0) -> None:
        super().__init__(in_features=features, out_features=features,
                         cost=CostModel(seconds_per_query=0.0, seconds_per_sample=0.0,
                                        source="toy system: no physical cost"), seed=seed)
        self._coefficient = check_positive("coefficient", coefficient)
        self.twin_coefficient = check_positive("twin_coefficient", twin_coefficient)
        lo, hi = (check_finite_float("exponent_range[0]", exponent_range[0]),
                  check_finite_float("exponent_range[1]", exponent_range[1]))
        if not lo < hi:
            raise ValueError(f"exponent_range must be (low, high) with low < high, got {exponent_range}.")
        self.exponent_range = (lo, hi)
        from ..._validation import check_nonnegative
        self._noise_std = check_nonnegative("noise_std", noise_std)

    def control_specs(self):
        return {"exponent": ControlSpec((1,), *self.exponent_range, description="exponent theta")}

    def initial_controls(self, generator=None):
        return {"exponent": torch.tensor([1.0]).clamp(*self.exponent_range)}

    def example_inputs(self, batch, generator=None):
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        return 0.5 + torch.rand(batch, self.in_features, generator=gen)

    def _measure(self, x, controls, generator):
        if bool((x <= 0).any()):
            raise ValueError("x must be positive for the power-law plant (x^theta); shift or rescale the inputs.")
        y = _power_law(x, self._coefficient, controls["exponent"])
        if self._noise_std:
            y = y * (1 + self._noise_std * devices.randn(y.shape, generator=generator, device=y.device))
        return y

    def nominal_twin(self):
        return PowerLawTwin(coefficient=self.twin_coefficient, features=self.in_features)

    def true_twin(self):
        return PowerLawTwin(coefficient=self._coefficient, features=self.in_features)
