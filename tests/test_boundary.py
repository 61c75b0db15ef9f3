"""The hardware boundary checks what comes back as strictly as what goes in (issue 7, section 5)."""

import pytest
import torch

import pnnlab
from pnnlab import ControlSpec, Plant
from pnnlab.plants.capabilities import EnergyBased, Equilibrium
from pnnlab.validation import (check_in_range, check_int, check_nonnegative, check_output, check_positive)

from toy_plants import TanhPlant


class BrokenPlant(TanhPlant):
    """A TanhPlant whose measurement is corrupted by ``corrupt`` (a function of the good output)."""

    def __init__(self, corrupt, **kwargs):
        super().__init__(**kwargs)
        self._corrupt = corrupt

    def _measure(self, x, controls, generator):
        return self._corrupt(super()._measure(x, controls, generator))


def _with_nan(y):
    y = y.clone()
    y[0, 0] = float("nan")
    return y


def _with_inf(y):
    y = y.clone()
    y[-1, -1] = float("inf")
    return y


@pytest.mark.parametrize("corrupt, error, words", [
    (_with_nan, FloatingPointError, "1 NaN and 0 infinite"),
    (_with_inf, FloatingPointError, "0 NaN and 1 infinite"),
    (lambda y: y[:, :1], ValueError, "shape (4, 1)"),
    (lambda y: y.T, ValueError, "shape (2, 4)"),
    (lambda y: y.double(), TypeError, "dtype torch.float64"),
    (lambda y: y.numpy(), TypeError, "ndarray"),
])
def test_a_bad_measurement_fails_at_the_boundary_naming_the_plant(corrupt, error, words):
    plant = BrokenPlant(corrupt)
    with pytest.raises(error) as info:
        plant(torch.randn(4, 3), plant.initial_controls())
    message = str(info.value)
    assert "BrokenPlant._measure" in message and words in message, message


def test_a_good_measurement_passes_unchanged():
    plant = TanhPlant()
    x, controls = torch.randn(4, 3), plant.initial_controls()
    torch.testing.assert_close(plant(x, controls), plant.true_twin()(x, controls))


def test_a_nan_measurement_never_becomes_an_accuracy():
    plant = BrokenPlant(_with_nan)
    model = torch.nn.Sequential(pnnlab.PhysicalLayer(plant, twin=plant.nominal_twin()), pnnlab.ChannelAffine(2))
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    with pytest.raises(FloatingPointError, match="BrokenPlant"):
        pnnlab.evaluate(model, x, y)
    with pytest.raises(FloatingPointError, match="BrokenPlant"):
        pnnlab.PhysicsAwareTraining().step(model, x, y, torch.nn.functional.cross_entropy)


class ToyEnergyPlant(Plant, EnergyBased):
    """y = W x relaxes in one step; ``corrupt`` spoils the reported equilibrium."""

    def __init__(self, corrupt=None):
        super().__init__(in_features=3, out_features=2)
        self._corrupt = corrupt or (lambda state: state)

    def control_specs(self):
        return {"weight": ControlSpec((2, 3), -1.0, 1.0)}

    def _measure(self, x, controls, generator):
        return x @ controls["weight"].T

    def _relax(self, x, controls, nudge, initial, generator):
        y = x @ controls["weight"].T
        return self._corrupt(Equilibrium(output=y, nodes=(x, y), power_W=(y ** 2).sum(1)))

    def energy_gradients(self, state):
        return {"weight": torch.zeros(2, 3)}


def _spoil(field, value_fn):
    def corrupt(state):
        values = {"output": state.output, "nodes": state.nodes, "power_W": state.power_W}
        values[field] = value_fn(values[field])
        return Equilibrium(**values)
    return corrupt


@pytest.mark.parametrize("corrupt, error, words", [
    (_spoil("output", _with_nan), FloatingPointError, "ToyEnergyPlant._relax returned 1 NaN"),
    (_spoil("output", lambda y: y[:, :1]), ValueError, "ToyEnergyPlant._relax returned an output of shape"),
    (_spoil("output", lambda y: y.double()), TypeError, "dtype torch.float64"),
    (_spoil("nodes", lambda n: (n[0], _with_inf(n[1]))), FloatingPointError, "nodes[1]"),
    (_spoil("power_W", lambda p: p * float("nan")), FloatingPointError, "power_W"),
    (lambda state: state.output, TypeError, "not an Equilibrium"),
])
def test_relax_checks_the_equilibrium_it_reports(corrupt, error, words):
    plant = ToyEnergyPlant(corrupt)
    with pytest.raises(error) as info:
        plant.relax(torch.randn(4, 3), plant.initial_controls())
    assert words in str(info.value), str(info.value)


def test_a_good_equilibrium_passes():
    plant = ToyEnergyPlant()
    x, controls = torch.randn(4, 3), plant.initial_controls()
    state = plant.relax(x, controls)
    torch.testing.assert_close(state.output, x @ controls["weight"].T)
    assert plant.meter.queries == 1


def test_public_validation_helpers_name_argument_value_and_fix():
    assert check_nonnegative("read_noise", 0) == 0.0 and check_positive("gain", 2) == 2.0
    assert check_int("channels", 4) == 4 and check_in_range("efficiency", 0.5, 0.0, 1.0) == 0.5
    with pytest.raises(ValueError, match=r"read_noise must be a finite zero or positive number, got -0.1"):
        check_nonnegative("read_noise", -0.1)
    with pytest.raises(TypeError, match="gain must be a number"):
        check_positive("gain", "2")
    with pytest.raises(ValueError, match=r"efficiency must lie in \[0.0, 1.0\], got 1.5"):
        check_in_range("efficiency", 1.5, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"must lie in \(0.0, 1.0\)"):
        check_in_range("fraction", 1.0, 0.0, 1.0, inclusive=False)
    with pytest.raises(FloatingPointError, match="MyPlant._measure returned 1 NaN"):
        check_output("MyPlant._measure", torch.tensor([[float("nan")]]), batch=1, features=1, dtype=torch.float32)
    assert pnnlab.validation.check_positive is check_positive
