"""How physical layers run while a model is evaluated: on the plant, on its twin, on its true physics
(diagnostics), or physics-aware (plant forward, twin backward).

A model is an ordinary ``nn.Module``; its :class:`~pnnlab.layers.PhysicalLayer` s ask the
*current execution* how to compute. Methods choose the execution by passing an object::

    with executing(PhysicsAware()):
        loss = loss_fn(model(x), y)
    loss.backward()

Outside any ``executing`` block, physical layers run on their plant (the hardware is the truth:
inference and every reported accuracy use it).
"""

from __future__ import annotations

import abc
import contextvars
from contextlib import contextmanager
from typing import Iterator

import torch


class Execution(abc.ABC):
    """Strategy for computing one physical layer's output."""

    label: str = ""

    @abc.abstractmethod
    def run(self, layer, x: torch.Tensor) -> torch.Tensor:
        """Output of ``layer`` (a PhysicalLayer) for input batch ``x``."""

    def with_generator(self, generator: torch.Generator) -> "Execution":
        """This execution drawing plant measurement noise from ``generator`` (used by evaluation, so
        that evaluating never consumes the plant's own noise stream). Executions that never query a
        plant return themselves."""
        return self


class OnPlant(Execution):
    """Query the hardware. The output carries no gradient.

    ``generator`` (optional) is passed to every plant call as ``plant(x, controls, generator=...)``,
    so the measurement noise of these queries comes from it instead of the plant's own generator.
    Evaluation uses this (see :func:`pnnlab.evaluate`): the same training seed then gives the same
    training whatever the evaluation schedule. Device state (drift, device time) still advances with
    every query, as it does on real hardware.
    """

    label = "plant"

    def __init__(self, *, generator: torch.Generator | None = None) -> None:
        from ._validation import check_generator
        self.generator = check_generator("generator", generator)

    def run(self, layer, x):
        return layer.plant(x, layer.control_values(), generator=self.generator)

    def with_generator(self, generator):
        return OnPlant(generator=generator)

    def __repr__(self) -> str:
        return "OnPlant()" if self.generator is None else "OnPlant(generator=...)"


class OnTwin(Execution):
    """Run the layer's twin: fully differentiable, no plant query (in-silico training)."""

    label = "twin"

    def run(self, layer, x):
        return layer.require_twin()(x, layer.control_values())


class MeasuredGradients(Execution):
    """Forward on the plant; under gradient tracking the controls' gradients come from extra hardware
    passes of the plant's ``capability``, done by ``function`` (a ``torch.autograd.Function`` applied as
    ``function.apply(plant, control_names, x, *controls)``). Outside gradient tracking (evaluation) a
    layer is one ordinary plant query. Subclasses set ``label``, ``capability`` and ``function``."""

    capability: type
    function: type

    def run(self, layer, x):
        plant = layer.plant
        controls = layer.control_values()
        if not torch.is_grad_enabled():
            return plant(x, controls)
        if not isinstance(plant, self.capability):
            raise TypeError(f"the {self.label} execution needs a {self.capability.__name__} plant, got "
                            f"{plant.describe()}.")
        names = tuple(controls)
        return self.function.apply(plant, names, x, *[controls[n] for n in names])


class OnTrueTwin(Execution):
    """Run a simulated plant's hidden physics with noise off (``plant.true_twin()``): the ideal upper
    bound and the true gradient of diagnostics. No training method of real hardware can use it."""

    label = "true physics (noise off)"

    def run(self, layer, x):
        return layer.true_twin()(x, layer.control_values())


class PhysicsAware(Execution):
    """Physics-aware training (Wright et al., Nature 601, 549 (2022), doi:10.1038/s41586-021-04223-6).

    Forward: the plant's measured output y_p = f_p(x, theta). Backward: the vector-Jacobian product
    of the twin f_m evaluated at the *measured* input x (in a deep network, the previous layer's
    physical output) and the current controls:  dL/dx = (df_m/dx)^T g,  dL/dtheta = (df_m/dtheta)^T g
    with g = dL/dy_p. Implemented as ``y_m + (y_p - y_m).detach()``, whose value is y_p and whose
    gradient is the twin's. With a perfect twin this is exactly backpropagation.
    """

    label = "physics-aware"

    def run(self, layer, x):
        controls = layer.control_values()
        y_plant = layer.plant(x, controls)
        y_twin = layer.require_twin()(x, controls)
        return y_twin + (y_plant - y_twin).detach()


_CURRENT: contextvars.ContextVar[Execution | None] = contextvars.ContextVar("pnnlab_execution", default=None)
_DEFAULT = OnPlant()


def current_execution() -> Execution:
    """The execution in force (``OnPlant()`` outside any :func:`executing` block)."""
    return _CURRENT.get() or _DEFAULT


@contextmanager
def executing(execution: Execution) -> Iterator[Execution]:
    """Run physical layers with ``execution`` inside the ``with`` block."""
    if not isinstance(execution, Execution):
        raise TypeError(f"executing() takes an Execution such as OnPlant(), OnTwin() or PhysicsAware(), "
                        f"got {type(execution).__name__}.")
    token = _CURRENT.set(execution)
    try:
        yield execution
    finally:
        _CURRENT.reset(token)
