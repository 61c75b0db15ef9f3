"""A small, fast, stateful experiment for the resume tests: two noisy drifting tanh plants in a row.

``LoggedTanhPlant`` appends one line to ``log`` every time its physics runs (``start <i>`` before and
``done <i> <checksum>`` after), so a test counts ``_measure`` executions across processes; the run
numbered ``$RESUME_TEST_HANG_AT`` in a process hangs, so the test kills it *between* two queries (the
previous one answered and recorded, the next not measured). Its hidden truth drifts with its own
query clock (state the default ``Plant.state_dict`` captures: an int) and it has measurement noise
(its generator), so a resumed run is only bit-identical if both are restored.
"""

from __future__ import annotations

import os
import time

import torch
from torch import nn

from pnnlab import ChannelAffine, ControlSpec, PhysicalLayer, Plant, Simulated, Twin
from pnnlab.metering import CostModel


class _Twin(Twin):
    def __init__(self, features_in, features_out):
        super().__init__(in_features=features_in, out_features=features_out)

    def forward(self, x, controls):
        return torch.tanh(x @ controls["weight"].T + controls["bias"])


class LoggedTanhPlant(Plant, Simulated):
    """y = tanh((W + D) x + b + drift * clock) + noise; every physics run is logged to ``log``."""

    def __init__(self, *, features_in, features_out, log="", sleep_s=0.0, noise_std=0.05, drift=0.01,
                 serial="A1", seed=0):
        super().__init__(in_features=features_in, out_features=features_out,
                         cost=CostModel(seconds_per_query=1e-3, seconds_per_sample=1e-5, joules_per_sample=1e-9,
                                        source="test"), seed=seed)
        g = torch.Generator().manual_seed(seed + 1000)
        self._error = 0.2 * torch.randn(features_out, features_in, generator=g)
        self._noise_std, self._drift = noise_std, drift
        self._clock = 0  # queries answered so far: the drift clock
        self.log, self.sleep_s, self.serial = log, sleep_s, serial

    def identity(self):
        return super().identity() | {"serial": self.serial}

    def control_specs(self):
        return {"weight": ControlSpec((self.out_features, self.in_features), -3.0, 3.0),
                "bias": ControlSpec((self.out_features,), -1.0, 1.0)}

    #: physics runs in this process (all instances); the run numbered $RESUME_TEST_HANG_AT hangs
    runs = 0

    def _measure(self, x, controls, generator):
        LoggedTanhPlant.runs += 1
        self._write(f"start {self._clock}")
        if LoggedTanhPlant.runs == int(os.environ.get("RESUME_TEST_HANG_AT", "0")):
            time.sleep(120)  # the parent kills the process here, between two queries
        if self.sleep_s:
            time.sleep(self.sleep_s)
        y = torch.tanh(x @ (controls["weight"] + self._error).T + controls["bias"] + self._drift * self._clock)
        y = y + self._noise_std * torch.randn(y.shape, generator=generator)
        self._clock += 1
        self._write(f"done {self._clock} {float(y.sum()):.17g}")
        return y

    def _write(self, line):
        if self.log:
            with open(self.log, "a") as f:
                f.write(f"{os.getpid()} {self.features_tag} {line}\n")

    @property
    def features_tag(self):
        return f"{self.in_features}x{self.out_features}"

    def nominal_twin(self):
        return _Twin(self.in_features, self.out_features)

    def true_twin(self):
        return _Twin(self.in_features, self.out_features)


def build_logged_tanh(*, in_features, n_classes, seed=0, hidden=5, log="", sleep_s=0.0, serial="A1"):
    first = LoggedTanhPlant(features_in=in_features, features_out=hidden, log=log, sleep_s=sleep_s,
                            serial=serial, seed=seed)
    second = LoggedTanhPlant(features_in=hidden, features_out=n_classes, log=log, sleep_s=sleep_s,
                             serial=serial, seed=seed + 1)
    g = torch.Generator().manual_seed(seed)
    return nn.Sequential(PhysicalLayer(first, twin=first.nominal_twin(), initial_controls=first.initial_controls(g)),
                         PhysicalLayer(second, twin=second.nominal_twin(),
                                       initial_controls=second.initial_controls(g)),
                         ChannelAffine(n_classes))


def register() -> None:
    """Make ``logged_tanh`` a model name a spec can use (in this process only)."""
    from pnnlab import register as register_component

    register_component("model", "logged_tanh", build_logged_tanh,
                       summary="test model: two logged, drifting tanh plants", replace=True)


def spec(log: str, *, methods=("pat",), epochs=3, sleep_s=0.0, name="resume-test", serial="A1") -> dict:
    return {"name": name, "seed": 3, "data": {"name": "iris"},
            "model": {"name": "logged_tanh", "log": log, "sleep_s": sleep_s, "serial": serial},
            "methods": [{"name": m} for m in methods],
            "train": {"epochs": epochs, "batch_size": 16, "lr": 0.05}}
