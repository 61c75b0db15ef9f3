"""Public conformance checks for plants, twins and methods.

Use them in the tests of any new component; ``tests/test_conformance.py`` runs them over every
registered one. Each check raises ``AssertionError`` with a message saying what is wrong.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .devices import device_audit
from .layers import PhysicalLayer, plants_of
from .plants.base import ControlSpec, Plant
from .plants.capabilities import Simulated
from .twins.base import Twin


def _fail(message: str) -> None:
    raise AssertionError(message)


def check_plant(plant: Plant, *, batch: int = 5) -> None:
    """The plant honours the hardware-boundary contract."""
    name = type(plant).__name__
    if not isinstance(plant, Plant):
        _fail(f"{name} is not a pnnlab Plant")
    specs = plant.control_specs()
    if not specs or not all(isinstance(s, ControlSpec) for s in specs.values()):
        _fail(f"{name}.control_specs() must return a non-empty dict of ControlSpec")
    controls = plant.initial_controls()
    plant.validate_controls(controls)
    x = plant.example_inputs(batch).requires_grad_(True)
    grad_controls = {k: v.clone().requires_grad_(True) for k, v in controls.items()}
    before = plant.meter.snapshot()
    with torch.enable_grad():
        y = plant(x, grad_controls)
    after = plant.meter.snapshot()
    if y.shape != (batch, plant.out_features):
        _fail(f"{name} returned shape {tuple(y.shape)}, expected {(batch, plant.out_features)}")
    if y.requires_grad or y.grad_fn is not None:
        _fail(f"{name} built an autograd graph: a plant is the hardware boundary")
    if not bool(torch.isfinite(y).all()):
        _fail(f"{name} returned non-finite outputs for valid inputs")
    if after["queries"] - before["queries"] != 1 or after["samples"] - before["samples"] != batch:
        _fail(f"{name}'s meter did not count the call (1 query, {batch} samples): {before} -> {after}")
    if after["device_seconds"] < before["device_seconds"] or after["joules"] < before["joules"]:
        _fail(f"{name}'s meter went backwards")
    # a call that brings its own generator (as evaluation does) must leave the plant's own noise stream
    # alone once the controls are set, or evaluating would change the training that follows
    own = plant._generator.get_state()
    plant(plant.example_inputs(batch), controls, generator=torch.Generator().manual_seed(1))
    if not torch.equal(own, plant._generator.get_state()):
        _fail(f"{name} drew from its own generator although the call passed one: measurement noise must "
              f"come from the per-call generator (device state from a generator the plant owns apart)")
    for bad, why in ((torch.full((batch, plant.in_features), float("nan")), "NaN inputs"),
                     (torch.zeros(batch, plant.in_features + 1), "a wrong input width")):
        try:
            plant(bad, controls)
        except (ValueError, TypeError):
            pass
        else:
            _fail(f"{name} accepted {why}")
    for key, spec in specs.items():
        if spec.periodic:  # any finite value is a setting: one period further must act the same
            shifted = dict(controls)
            shifted[key] = controls[key] + (spec.high - spec.low)
            x = plant.example_inputs(batch)
            y_shift = plant(x, shifted, generator=torch.Generator().manual_seed(5))
            y_base = plant(x, controls, generator=torch.Generator().manual_seed(5))
            # float rounding of the wrap may move a DAC/ADC step: tolerate 1 % of the output scale
            if not torch.allclose(y_shift, y_base, atol=1e-2 * float(y_base.abs().max()) + 1e-6, rtol=0.0):
                _fail(f"{name}: controls[{key!r}] is periodic but one period added changed the output")
        elif spec.bounded:
            wrong = dict(controls)
            wrong[key] = torch.full(spec.shape, spec.high + abs(spec.high - spec.low) + 1.0)
            try:
                plant(plant.example_inputs(batch), wrong)
            except ValueError:
                pass
            else:
                _fail(f"{name} accepted controls[{key!r}] outside its physical range")
    if isinstance(plant, Simulated):
        check_twin(plant.nominal_twin(), plant)
        check_twin(plant.true_twin(), plant)
        check_true_twin(plant)


def check_true_twin(plant: Plant, *, batch: int = 64, factor: float = 2.0) -> None:
    """``plant.true_twin()`` is the plant's hidden physics with noise off: it matches the plant's
    output to rounding where the plant is noiseless, and otherwise lies within the plant's own noise.

    Two plant calls with independent generators give y1, y2 and the true twin t. A noiseless plant
    (y1 == y2) must give t == y1 (relative tolerance 1e-4). A noisy one must satisfy
    mean|y1 - t|^2 <= factor * mean|y1 - y2|^2 / 2: for the true physics both sides estimate the
    noise variance, while a twin that misses part of the truth adds its error to the left side.
    The true twin is taken before the calls and compared with the first (on a drifting plant it is
    the state the next query sees; drift between the two calls only makes the check more lenient).
    Only noise that the per-call generator draws can be told apart this way."""
    name = type(plant).__name__
    x = plant.example_inputs(batch, generator=torch.Generator().manual_seed(11))
    controls = plant.initial_controls(generator=torch.Generator().manual_seed(12))
    true = plant.true_twin()  # before the calls: the state the next query sees (drifting plants)
    y1 = plant(x, controls, generator=torch.Generator().manual_seed(13)).double()
    y2 = plant(x, controls, generator=torch.Generator().manual_seed(14)).double()
    with torch.no_grad():
        t = true(x, controls).double()
    scale = float(y1.abs().max()) or 1.0
    if torch.equal(y1, y2):
        error = float((t - y1).abs().max())
        if error > 1e-4 * scale + 1e-12:
            _fail(f"{name}.true_twin() differs from the noiseless plant output by {error:.3g} (output scale "
                  f"{scale:.3g}); true_twin() must be the hidden physics with noise off")
        return
    noise = float((y1 - y2).pow(2).mean()) / 2
    miss = float((y1 - t).pow(2).mean())
    if miss > factor * noise:
        _fail(f"{name}.true_twin() is further from the plant (mean square {miss:.3g}) than the plant's own "
              f"noise explains ({noise:.3g}); true_twin() must be the hidden physics with noise off")


def check_twin(twin: Twin, plant: Plant, *, batch: int = 4) -> None:
    """The twin is a differentiable model with the plant's interface."""
    name = type(twin).__name__
    if not isinstance(twin, Twin):
        _fail(f"{name} is not a pnnlab Twin")
    if (twin.in_features, twin.out_features) != (plant.in_features, plant.out_features):
        _fail(f"{name} has the wrong feature counts for {type(plant).__name__}")
    x = plant.example_inputs(batch).requires_grad_(True)
    controls = {k: v.clone().requires_grad_(True) for k, v in plant.initial_controls().items()}
    y = twin(x, controls)
    if y.shape != (batch, plant.out_features):
        _fail(f"{name} returned shape {tuple(y.shape)}, expected {(batch, plant.out_features)}")
    y.square().sum().backward()
    for key, value in controls.items():
        if value.grad is None or not bool(torch.isfinite(value.grad).all()):
            _fail(f"{name} gives no finite gradient for control {key!r}")
    if x.grad is None or not bool(torch.isfinite(x.grad).all()):
        _fail(f"{name} gives no finite gradient with respect to its input")


def check_method(method, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                 loss_fn=nn.functional.cross_entropy) -> None:
    """One step of ``method`` on ``model`` produces finite gradients (or changes parameters) and the
    model's physical layers stay within their controls' physical ranges."""
    name = type(method).__name__
    method.check(model)
    params = [p for p in model.parameters() if p.requires_grad]
    snapshot = copy.deepcopy([p.detach().clone() for p in params])
    for p in params:
        p.grad = None
    loss = method.step(model, x, y, loss_fn)
    if not isinstance(loss, float) or not math.isfinite(loss):
        _fail(f"{name}.step must return the batch loss as a finite float, got {loss!r}")
    if method.updates_parameters:
        if all(torch.equal(a, p.detach()) for a, p in zip(snapshot, params)):
            _fail(f"{name} says it updates parameters but changed none")
    else:
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            _fail(f"{name}.step filled no .grad")
        if not all(bool(torch.isfinite(g).all()) for g in grads):
            _fail(f"{name}.step produced non-finite gradients")
        if all(float(g.abs().sum()) == 0.0 for g in grads):
            _fail(f"{name}.step produced all-zero gradients")
    for layer in model.modules():
        if isinstance(layer, PhysicalLayer):
            layer.plant.validate_controls(layer.control_values())
    _ = plants_of(model)


def check_plant_device(plant: Plant, *, batch: int = 4) -> None:
    """The plant computes on the device its data is on: a query, and for a simulated plant its nominal
    and true twins' forward and backward, run under :func:`pnnlab.devices.device_audit` (tensors made
    without ``device=`` go to "meta" and break the computation; draws off their generator's device
    raise). Passing on CPU this way means the code makes no stray CPU tensor on CUDA."""
    name = type(plant).__name__
    x = plant.example_inputs(batch)
    controls = plant.initial_controls()
    try:
        with device_audit():
            y = plant(x, controls)
            if y.device != x.device:
                _fail(f"{name} answered on {y.device} for inputs on {x.device}")
            if isinstance(plant, Simulated):
                for which in ("nominal_twin", "true_twin"):
                    twin = getattr(plant, which)()
                    grads = {k: v.clone().requires_grad_(True) for k, v in controls.items()}
                    xg = x.clone().requires_grad_(True)
                    with torch.enable_grad():
                        out = twin(xg, grads)
                        out.float().abs().sum().backward() if out.is_complex() else out.sum().backward()
    except AssertionError:
        raise
    except Exception as error:  # the audit's failures and the meta/CPU mixes it provokes
        raise AssertionError(f"{name} is not device-clean: {type(error).__name__}: {error}. Give every tensor it "
                             f"creates the device of the data it works with and draw through pnnlab.devices "
                             f"(see the module docstring).") from error


def check_method_device(method, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                        loss_fn=nn.functional.cross_entropy) -> None:
    """One step of ``method`` on ``model`` under :func:`pnnlab.devices.device_audit` (see
    :func:`check_plant_device`): the method and the plant capabilities it uses make every tensor on the
    data's device."""
    name = type(method).__name__
    method.check(model)
    try:
        with device_audit():
            loss = method.step(model, x, y, loss_fn)
    except Exception as error:
        raise AssertionError(f"{name} is not device-clean on {plants_of(model)}: {type(error).__name__}: {error}. "
                             f"Give every tensor it creates the device of the data it works with and draw "
                             f"through pnnlab.devices.") from error
    if not math.isfinite(loss):
        _fail(f"{name}.step under the device audit returned a non-finite loss {loss!r}")
