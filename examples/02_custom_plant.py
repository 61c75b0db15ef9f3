"""Bring your own hardware: a bank of Mach-Zehnder modulators written as a pnnlab Plant.

Each channel i transmits P_i = P0 * cos^2((x_i + theta_i + b_i) / 2), where x_i is the drive from the data,
theta_i the trainable phase bias and b_i an unknown fabrication offset the twin does not know. A fixed
random mixing (a multimode coupler, modelled as a fixed non-negative matrix) feeds 6 photodiodes,
read by a small digital linear layer (a hybrid physical-digital model).
Trained on iris with physics-aware training and with in-silico training (under a minute).

    python examples/02_custom_plant.py
"""

import math

import torch
from torch import nn

import pnnlab
import pnnlab.testing
from pnnlab import ControlSpec, CostModel, Plant, Simulated, Twin
from pnnlab.data import load_iris


class MZIBankTwin(Twin):
    def __init__(self, mixing, offset):
        super().__init__(in_features=mixing.shape[1], out_features=mixing.shape[0])
        self.mixing, self.offset = mixing, offset

    def forward(self, x, controls):
        power = torch.cos((x + controls["phase"] + self.offset) / 2) ** 2
        return power @ self.mixing.T


class MZIBankPlant(Plant, Simulated):
    """Modulator bank + fixed coupler + photodiodes with read noise. Offsets are the hidden truth."""

    def __init__(self, *, channels=4, detectors=6, offset_std_rad=0.4, read_noise=0.01, seed=0):
        super().__init__(in_features=channels, out_features=detectors, seed=seed,
                         cost=CostModel(seconds_per_query=1e-3, seconds_per_sample=1e-6,
                                        source="assumed: 1 ms to set heaters, 1 us per sample"))
        g = torch.Generator().manual_seed(seed)
        self._mixing = torch.rand(detectors, channels, generator=g)
        self._offset = offset_std_rad * torch.randn(channels, generator=g)
        self._read_noise = read_noise

    def control_specs(self):
        return {"phase": ControlSpec((self.in_features,), 0.0, 2 * math.pi, unit="rad")}

    def _measure(self, x, controls, generator):
        y = MZIBankTwin(self._mixing, self._offset)(x, controls)
        return y + self._read_noise * torch.randn(y.shape, generator=generator)

    def nominal_twin(self):  # the designer knows the coupler but not the offsets
        return MZIBankTwin(self._mixing, torch.zeros_like(self._offset))

    def ideal_twin(self):
        return MZIBankTwin(self._mixing, self._offset)


torch.set_num_threads(1)
pnnlab.testing.check_plant(MZIBankPlant())  # the public conformance check
data = load_iris()
for method in (pnnlab.InSilico(), pnnlab.PhysicsAwareTraining()):
    plant = MZIBankPlant(seed=0)
    model = nn.Sequential(pnnlab.PhysicalLayer(plant, twin=plant.nominal_twin()), nn.Linear(6, 3))
    history = pnnlab.train(model, method, data, epochs=40, lr=0.05, batch_size=16, seed=0)
    print(f"{method.name:>10}: accuracy on the plant {history.final['test_accuracy']:.1%}, "
          f"{plant.meter.queries} plant queries in total, {plant.meter.device_seconds:.3f} device seconds")
