"""Bring your own hardware: a bank of Mach-Zehnder modulators written as a pnnlab Plant.

Each channel i transmits P_i = P0 * cos^2((x_i + theta_i + b_i) / 2), where x_i is the drive from the data,
theta_i the trainable phase bias and b_i an unknown fabrication offset the twin does not know. A fixed
random mixing (a multimode coupler, modelled as a fixed non-negative matrix) feeds 6 photodiodes,
read by a small digital linear layer (a hybrid physical-digital model).
Trained on iris with physics-aware training and with in-silico training (under a minute).

What a plant of your own needs:
* validate constructor arguments with ``pnnlab.validation`` (a negative noise level must fail at
  construction, as it does for the built-in plants);
* ``_measure`` returns a tensor of shape (batch, out_features) with the input's dtype; the plant
  boundary checks this, and finiteness, for you on every call;
* measurement noise uses the ``generator`` passed to ``_measure`` (evaluation passes its own);
* a simulated plant offers ``nominal_twin()`` (design values only) and ``true_twin()`` (the hidden
  physics with noise off: for diagnostics and the ideal bound, never for training).

    python examples/02_custom_plant.py
"""

import math

import torch
from torch import nn

import pnnlab
import pnnlab.testing
from pnnlab import ControlSpec, CostModel, Plant, Simulated, Twin
from pnnlab.data import load_iris
from pnnlab.validation import check_int, check_nonnegative


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
        channels, detectors = check_int("channels", channels), check_int("detectors", detectors)
        offset_std_rad = check_nonnegative("offset_std_rad", offset_std_rad)
        read_noise = check_nonnegative("read_noise", read_noise)  # 0 switches the noise off
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

    def true_twin(self):  # the hidden physics with the read noise off (diagnostics, ideal bound)
        return MZIBankTwin(self._mixing, self._offset)


torch.set_num_threads(1)
pnnlab.testing.check_plant(MZIBankPlant())  # the public conformance check
try:
    MZIBankPlant(read_noise=-0.01)
except ValueError as error:  # rejected at construction, with the argument, the value and the fix
    print(f"rejected: {error}")
data = load_iris()
print(f"{data.summary()}\nreported: test accuracy at the last epoch, and at the epoch chosen on validation")
for method in (pnnlab.InSilico(), pnnlab.PhysicsAwareTraining()):
    plant = MZIBankPlant(seed=0)
    model = nn.Sequential(pnnlab.PhysicalLayer(plant, twin=plant.nominal_twin()), nn.Linear(6, 3))
    history = pnnlab.train(model, method, data, epochs=40, lr=0.05, batch_size=16, seed=0)
    final, chosen = history.final, history.selected
    print(f"{method.name:>10}: test accuracy on the plant {final['test_accuracy']:.1%} (last epoch), "
          f"{chosen['test_accuracy']:.1%} (epoch {chosen['epoch']}, chosen on validation: "
          f"{chosen['val_accuracy']:.1%}); {plant.meter.queries} plant queries in total, "
          f"{plant.meter.device_seconds:.3f} device seconds")
