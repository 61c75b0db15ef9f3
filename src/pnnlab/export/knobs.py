"""The fabrication-error knobs of a model's plants: which float fields of the dataclasses given to plant
constructors are hidden-truth errors (see :mod:`pnnlab.export.fabrication` for the rule and its use).

``discover_knobs(build)`` calls ``build()`` (a function that builds the model) with every plant constructor
intercepted (:func:`_intercept`), reads each plant's arguments (defaults included) and keeps the fields the
documented rule accepts: non-zero in the run, accepted as 0 by the dataclass's own validation, leaving the
nominal twin unchanged and changing the true twin ("hidden truth") or the measurement ("measured only").
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from ..plants.base import Plant
from ..plants.capabilities import Simulated

__all__ = ["Knob", "discover_knobs"]

#: one interception at a time (plant constructors are patched for the duration)
_LOCK = threading.Lock()

@dataclass(frozen=True)
class Knob:
    """One fabrication-error knob: the field ``path[-1]`` of the dataclass argument ``path[0]`` (through
    nested dataclasses ``path[1:-1]``) of every plant of class ``plant_class`` in the model."""

    name: str
    plant: str
    plant_class: type
    path: tuple[str, ...]
    #: the field's value in the run, one per plant of that class that has it
    values: tuple[float, ...]
    #: "hidden truth" (changes the true twin) or "measured only" (changes only the measured output: noise,
    #: or an effect the true twin does not model)
    kind: str

    @property
    def value(self) -> float:
        """The run's value when every plant of the class has the same, else NaN."""
        return self.values[0] if len(set(self.values)) == 1 else math.nan



def _plant_classes() -> list[type]:
    """Every Plant subclass defining its own ``__init__`` (the built-in registered plants imported)."""
    from ..registry import PLANTS

    for entry in PLANTS.entries():
        if entry.origin == "pnnlab":
            entry.load()
    seen, stack = [], [Plant]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in seen:
                seen.append(sub)
                stack.append(sub)
    return [c for c in seen if "__init__" in vars(c)]


@dataclass
class _Call:
    cls: type
    arguments: dict  # the constructor's bound arguments, defaults applied, after any change
    #: the state of every generator argument when the constructor was called
    generator_states: dict = dataclasses.field(default_factory=dict)


@contextmanager
def _intercept(change: Callable[[type, dict], dict] | None = None) -> Iterator[list[_Call]]:
    """Record every plant constructed inside the block (class and bound constructor arguments);
    ``change(cls, arguments)`` may return changed arguments, which the constructor then receives. Only
    outermost constructions are intercepted: neither a subclass's ``super().__init__`` nor a plant built
    inside another plant's constructor (a part of it, which receives its arguments from the outer one).
    One analysis at a time per process (plants other threads build meanwhile are intercepted too)."""
    calls: list[_Call] = []
    active: set[int] = set()
    patched: list[tuple[type, Callable]] = []

    def wrap(original):
        signature = inspect.signature(original)

        @functools.wraps(original)
        def init(self, *args, **kwargs):
            if active:  # inside another plant's constructor (or this one's super().__init__)
                return original(self, *args, **kwargs)
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments = {}
            for name, value in list(bound.arguments.items())[1:]:
                if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                    arguments.update(value)  # extra keyword arguments passed on (e.g. to a parent class)
                else:
                    arguments[name] = value
            if change is not None:
                arguments = change(type(self), dict(arguments))
            call = _Call(type(self), arguments, {k: v.get_state() for k, v in arguments.items()
                                                 if isinstance(v, torch.Generator)})
            active.add(id(self))
            try:
                original(self, **arguments)
            finally:
                active.discard(id(self))
            calls.append(call)
        return init

    if not _LOCK.acquire(blocking=False):
        raise RuntimeError("fabrication tolerance: plant construction is already being intercepted (one analysis "
                           "at a time per process).")
    try:
        for cls in _plant_classes():
            original = vars(cls)["__init__"]
            kinds = {p.kind for p in inspect.signature(original).parameters.values()}
            if kinds & {inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL}:
                continue  # only keyword-callable constructors (pnnlab's style) are intercepted
            patched.append((cls, original))
            cls.__init__ = wrap(original)
        yield calls
    finally:
        for cls, original in patched:
            cls.__init__ = original
        _LOCK.release()


# ---- knob discovery ----------------------------------------------------------------------------------
def _is_instance(value) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _float_field(field, value) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    annotation = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
    return "float" in annotation and math.isfinite(value) and value != 0


def _candidates(obj, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], float]]:
    """Rule 1: non-zero finite float fields (nested dataclasses included) that the dataclass accepts as 0."""
    for field in dataclasses.fields(obj):
        if not field.init:
            continue
        value = getattr(obj, field.name)
        if _is_instance(value):
            yield from _candidates(value, path + (field.name,))
        elif _float_field(field, value):
            try:
                dataclasses.replace(obj, **{field.name: 0.0})
            except (ValueError, TypeError):
                continue
            yield path + (field.name,), float(value)


def _fresh_arguments(call: _Call) -> dict:
    """The call's arguments with every generator replaced by a new one in the state it had then."""
    out = dict(call.arguments)
    for name, state in call.generator_states.items():
        g = torch.Generator()
        g.set_state(state)
        out[name] = g
    return out


def _outputs(plant, x, controls) -> tuple:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        return (plant.nominal_twin()(x, controls), plant.true_twin()(x, controls), plant(x, controls, generator=g))


def _kind(call: _Call, path: tuple[str, ...], baseline: dict) -> str | None:
    """Rule 2: what setting the field to 0 does to a plant built standalone with the call's arguments:
    None when it changes the nominal twin (a design value) or nothing (a cost figure); "hidden truth"
    when it changes the true twin; "measured only" when it changes only the measured output."""
    if not issubclass(call.cls, Simulated):
        return None
    try:
        if id(call) not in baseline:
            plant = call.cls(**_fresh_arguments(call))
            g = torch.Generator().manual_seed(0)
            x, controls = plant.example_inputs(8, g), plant.initial_controls(torch.Generator().manual_seed(0))
            baseline[id(call)] = (x, controls, _outputs(plant, x, controls))
        x, controls, (nominal, true, measured) = baseline[id(call)]
        arguments = _fresh_arguments(call)
        arguments[path[0]] = _scaled(arguments[path[0]], path[1:], 0.0)
        zero = _outputs(call.cls(**arguments), x, controls)
    except Exception:  # a plant that cannot be built or queried standalone with that field at 0: no knob
        return None
    if not torch.equal(nominal, zero[0]):
        return None
    if not torch.equal(true, zero[1]):
        return "hidden truth"
    if not torch.equal(measured, zero[2]):
        return "measured only"
    return None


def _plant_names() -> dict[type, str]:
    from ..registry import PLANTS

    names = {}
    for entry in PLANTS.entries():
        try:
            names.setdefault(entry.load(), entry.name)
        except ImportError:
            continue
    return names


def _knobs_of(calls: list[_Call]) -> list[Knob]:
    names = _plant_names()
    found: dict[tuple[type, tuple[str, ...]], dict] = {}
    baseline: dict = {}
    for call in calls:
        for argument, value in call.arguments.items():
            if not _is_instance(value):
                continue
            for path, v in _candidates(value, (argument,)):
                key = (call.cls, path)
                if key not in found:
                    found[key] = {"values": [], "kind": _kind(call, path, baseline)}
                found[key]["values"].append(v)
    knobs = []
    for (cls, path), slot in found.items():
        if slot["kind"] is None:
            continue
        plant = names.get(cls, cls.__name__)
        knobs.append(Knob(name=".".join((plant, *path)), plant=plant, plant_class=cls, path=path,
                          values=tuple(slot["values"]), kind=slot["kind"]))
    return knobs


def _no_knobs(calls: list[_Call], where: str) -> ValueError:
    described = ", ".join(sorted({_plant_names().get(c.cls, c.cls.__name__) for c in calls})) or "none"
    return ValueError(f"{where}: no fabrication-error knob in its plants ({described}): no constructor argument of "
                      f"theirs is a dataclass with a non-zero float field that, set to 0, leaves the nominal twin "
                      f"unchanged and changes the true twin or the measurement (pnnlab.export.fabrication). Their "
                      f"hidden truth is not reachable through constructor arguments; use the programming-error "
                      f"tolerance (tolerance_analysis, pnnlab export --tolerance) instead.")


def discover_knobs(build: Callable[[], object]) -> list[Knob]:
    """The fabrication-error knobs of the plants that ``build()`` (a model builder, no arguments)
    constructs, by the rule of the module docstring. Raises ``ValueError`` naming the plants when none
    has a knob."""
    with _intercept() as calls:
        build()
    knobs = _knobs_of(calls)
    if not knobs:
        raise _no_knobs(calls, "this model")
    return knobs


def _scaled(obj, path: tuple[str, ...], factor: float):
    name = path[0]
    value = getattr(obj, name)
    new = _scaled(value, path[1:], factor) if len(path) > 1 else float(value) * factor
    return dataclasses.replace(obj, **{name: new})
