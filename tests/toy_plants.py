"""A tiny differentiable plant for core tests: y = tanh(W_true x + b) with a hidden weight error."""

from __future__ import annotations

import torch

from pnnlab import ControlSpec, Plant, Simulated, Twin
from pnnlab.metering import CostModel


class TanhTwin(Twin):
    def __init__(self, features_in, features_out, offset=None):
        super().__init__(in_features=features_in, out_features=features_out)
        self.offset = offset

    def forward(self, x, controls):
        w = controls["weight"] if self.offset is None else controls["weight"] + self.offset
        return torch.tanh(x @ w.T + controls["bias"])


class TanhPlant(Plant, Simulated):
    """Physics y = tanh((W + D) x + b) + noise, where D (hidden) is a fabrication error."""

    def __init__(self, *, features_in=3, features_out=2, error_std=0.0, noise_std=0.0, seed=0):
        super().__init__(in_features=features_in, out_features=features_out,
                         cost=CostModel(seconds_per_query=1e-3, seconds_per_sample=1e-6,
                                        joules_per_sample=1e-9, source="test"), seed=seed)
        g = torch.Generator().manual_seed(seed + 1000)
        self._error = error_std * torch.randn(features_out, features_in, generator=g)
        self._noise_std = noise_std

    def control_specs(self):
        return {"weight": ControlSpec((self.out_features, self.in_features), -3.0, 3.0),
                "bias": ControlSpec((self.out_features,), -1.0, 1.0)}

    def _measure(self, x, controls, generator):
        y = torch.tanh(x @ (controls["weight"] + self._error).T + controls["bias"])
        if self._noise_std:
            y = y + self._noise_std * torch.randn(y.shape, generator=generator)
        return y

    def nominal_twin(self):
        return TanhTwin(self.in_features, self.out_features)

    def true_twin(self):
        return TanhTwin(self.in_features, self.out_features, offset=self._error.clone())
