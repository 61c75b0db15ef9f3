"""The plant: the physical system as a training method sees it.

``plant(x, controls) -> y`` sends a batch of inputs ``x`` (shape ``(batch, in_features)``) and the
control settings (a dict of physical values, one tensor per :class:`ControlSpec`) to the hardware
and returns the measured outputs ``(batch, out_features)``.

A plant is the hardware boundary:

* no autograd graph is ever built through it, even when it is called under gradient tracking
  (inputs and controls are detached and the physics runs under ``torch.no_grad()``);
* every call is validated both ways: what goes in (input shape, dtype, finiteness, controls inside
  their physical range) and what comes back from ``_measure`` (shape ``(batch, out_features)``, the
  input's dtype, every value finite: a NaN or infinite measurement raises ``FloatingPointError``
  naming the plant class instead of turning into a silent accuracy), and
  counted by the plant's :class:`~pnnlab.metering.Meter` according to its
  :class:`~pnnlab.metering.CostModel`;
* simulated plants keep a hidden *truth* (fabrication errors, noise, drift, model mismatch) in
  private attributes. Training methods must reach the physics only through ``__call__`` and the
  capabilities the plant declares (see :mod:`pnnlab.plants.capabilities`).

A real instrument implements a plant by subclassing :class:`Plant` and writing ``_measure``.
"""

from __future__ import annotations

import abc
import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import torch

from .. import devices as _devices
from .._validation import check_batch, check_generator, check_output, make_generator
from ..metering import CostModel, Meter


@dataclass(frozen=True)
class ControlSpec:
    """A group of hardware settings: its shape, physical range, unit and meaning.

    ``low``/``high`` bound the physical value (use ``-inf``/``inf`` for an unbounded side).
    ``symmetric`` marks a square matrix that the hardware realises symmetrically (for example the
    couplings J_ij = J_ji of a reciprocal network).
    ``periodic`` marks a setting whose effect repeats with period ``high - low`` (a phase in
    [0, 2 pi)): the plant accepts any finite value and takes it modulo the period (``low +
    remainder(value - low, high - low)``), and :class:`pnnlab.PhysicalLayer` maps its parameter with
    that wrap (identity gradient) instead of squashing it into the range. Needs finite ``low``/``high``.
    """

    shape: tuple[int, ...]
    low: float = -math.inf
    high: float = math.inf
    unit: str = ""
    description: str = ""
    symmetric: bool = False
    periodic: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.shape, tuple) or not all(isinstance(s, int) and s > 0 for s in self.shape):
            raise ValueError(f"ControlSpec.shape must be a tuple of positive ints, got {self.shape!r}.")
        if not self.low < self.high:
            raise ValueError(f"ControlSpec needs low < high, got low={self.low}, high={self.high}.")
        if self.symmetric and (len(self.shape) != 2 or self.shape[0] != self.shape[1]):
            raise ValueError(f"A symmetric ControlSpec must be a square matrix, got shape {self.shape}.")
        if self.periodic and not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"A periodic ControlSpec needs finite low and high (one period), got low={self.low}, "
                             f"high={self.high}; pass e.g. low=0.0, high=2 * math.pi for a phase.")

    def wrap(self, value: torch.Tensor) -> torch.Tensor:
        """``value`` taken into [low, high) modulo the period (periodic specs; identity gradient)."""
        return self.low + torch.remainder(value - self.low, self.high - self.low)

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)


class Plant(abc.ABC):
    """Base class of every physical system (simulated or real).

    Subclasses set ``in_features``, ``out_features``, ``cost`` and implement
    :meth:`control_specs` and :meth:`_measure`. ``seed`` seeds the plant's own generator, used for
    its measurement noise whenever a call passes no ``generator``. Device *state* (programming-pulse
    noise, drift draws) must come from a generator the plant owns, never the per-call one, so that an
    evaluation (which passes its own generator) cannot change training.

    Validate constructor arguments with the helpers of :mod:`pnnlab.validation`
    (``check_nonnegative("read_noise", read_noise)``...), so a user's plant rejects a negative noise
    level the way the built-in ones do.
    """

    #: short description used by ``pnnlab list``
    summary: str = ""

    def __init__(self, *, in_features: int, out_features: int, cost: CostModel | None = None,
                 seed: int | torch.Generator | None = 0) -> None:
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.cost = cost if cost is not None else CostModel()
        self.meter = Meter()
        self._generator = make_generator(seed)

    # ---- to implement -------------------------------------------------------------------
    @abc.abstractmethod
    def control_specs(self) -> dict[str, ControlSpec]:
        """The settings this plant accepts, by name."""

    @abc.abstractmethod
    def _measure(self, x: torch.Tensor, controls: dict[str, torch.Tensor],
                 generator: torch.Generator) -> torch.Tensor:
        """Run the physics on validated, detached inputs. Called under ``torch.no_grad()``."""

    # ---- provided -----------------------------------------------------------------------
    def initial_controls(self, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Reasonable starting settings: uniform over the middle half of a bounded range, small
        Gaussian values for an unbounded one. Plants override this where the physics suggests better."""
        gen = generator if generator is not None else self._generator
        out = {}
        for name, spec in self.control_specs().items():
            if spec.bounded:
                span = spec.high - spec.low
                value = spec.low + span * (0.25 + 0.5 * torch.rand(spec.shape, generator=gen))
            else:
                value = 0.1 * torch.randn(spec.shape, generator=gen)
            if spec.symmetric:
                value = 0.5 * (value + value.T)
            out[name] = value
        return out

    def example_inputs(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Valid inputs for checks and demos (standard normal unless the physics needs otherwise)."""
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        return torch.randn(batch, self.in_features, generator=gen)

    # ---- torch device ------------------------------------------------------------------
    _device = torch.device("cpu")
    #: marks an object whose tensors move with its owner (pnnlab.devices.move)
    _device_state = True

    @property
    def device(self) -> torch.device:
        """The torch device this (simulated) plant computes on; its queries return tensors there."""
        return self._device

    def to(self, device) -> "Plant":
        """Move the plant's tensor state (fabrication draws, conductances, cached operators) to
        ``device`` ("cpu", "cuda", a torch.device) and compute there from now on; returns the plant.
        Its generators stay on the CPU, so its noise and state draws are the same numbers on every
        device (see :mod:`pnnlab.devices`). A :class:`~pnnlab.PhysicalLayer` moves its plant with
        ``model.to(device)``. Subclasses holding state the generic move cannot see (caches keyed on
        the device) extend :meth:`_moved_to`."""
        device = _devices.check_available(_devices.as_device(device))
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        _devices.move(self, device, exclude=_NOT_MOVED)
        self._device = device
        self._moved_to(device)
        return self

    def _moved_to(self, device: torch.device) -> None:
        """Hook after :meth:`to` moved the tensor attributes (default: nothing more to do)."""

    def __call__(self, x: torch.Tensor, controls: Mapping[str, torch.Tensor], *,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        x = check_batch("x", x, self.in_features).detach().to(self._device)
        controls = self.validate_controls(controls)
        gen = check_generator("generator", generator) or self._generator
        return self._query("call", x, controls, lambda: self._measure(x, controls, gen),
                           lambda y: self.check_measurement(_on(y, self._device), x).detach(), generator=generator)

    def _query(self, kind: str, x: torch.Tensor, controls: dict, run, check, *,
               generator: torch.Generator | None = None, **extra):
        """One metered query at the hardware boundary (``__call__`` and the capabilities' extra
        operations): with recorders attached it is reported through :meth:`_recorded_query`; otherwise
        ``run()`` under no_grad, the meter charged for ``x``'s batch (the query happened, even if its
        result is unusable), then ``check(result)``."""
        if self._recorders:  # see pnnlab.recording: every query is reported at the boundary
            return self._recorded_query(kind, x, controls, run, check, generator=generator, **extra)
        with torch.no_grad():
            result = run()
        self.meter.record(self.cost, x.shape[0])
        return check(result)

    # ---- state and identity (checkpoints, pnnlab.checkpoint) -------------------------------
    def identity(self) -> dict:
        """What identifies the device a run talks to: stored with a recording and compared when a run
        resumes (a different device is refused). Default: the class, ``describe()``, the feature counts,
        the control specs and the cost model. A real instrument adds its serial number and calibration
        state (``return super().identity() | {"serial": ..., "calibrated": ...}``)."""
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}", "description": self.describe(),
                "in_features": self.in_features, "out_features": self.out_features,
                "control_specs": {k: asdict(v) | {"shape": list(v.shape)} for k, v in self.control_specs().items()},
                "cost": asdict(self.cost)}

    def state_dict(self) -> dict:
        """The plant's state that changes while it is used, for checkpoints (``pnnlab run --resume``):
        restoring it into a freshly built plant of the same kind makes that plant answer the next
        queries exactly as this one would.

        Default: every ``torch.Generator`` attribute of the instance (its state) and every ``int``,
        ``float`` and ``bool`` attribute (device clocks, counters), see :func:`object_state`. That
        covers a plant whose only changing state is its noise generator and scalar clocks. A plant
        with more device state (conductance arrays, wear, ledgers) overrides this and extends the
        dict; the meter is saved apart, by the checkpoint. A real instrument holds its own state: it
        may return ``{}`` (its identity and calibration go in :meth:`identity`). The conformance check
        (``pnnlab.testing.check_plant_state``) fails for a plant whose state is not fully captured."""
        return object_state(self, exclude=_NOT_STATE)

    def load_state_dict(self, state: Mapping) -> None:
        """Restore what :meth:`state_dict` returned (into a plant built with the same arguments)."""
        load_object_state(self, state)
        _devices.move(self, self._device, exclude=_NOT_MOVED)  # a checkpoint's tensors come back on the CPU

    # ---- recording hook (pnnlab.recording) ----------------------------------------------
    #: recorders told about every query; empty unless :meth:`attach_recorder` was called
    _recorders: tuple = ()

    def attach_recorder(self, recorder) -> None:
        """Report every query of this plant (``__call__`` and capability queries such as ``relax``)
        to ``recorder.on_query(plant, kind=, x=, controls=, result=, error=, device_seconds=, joules=,
        metered=, generator=, ...)`` (see :class:`pnnlab.recording.PlantRecorder`).

        Optional recorder hooks: ``recorder.answer(plant, kind=, x=, controls=, generator=, ...)``
        may answer a query instead of the device (a resumed run replaying recorded queries) by
        returning ``(result, device_seconds, joules)``, or ``None`` to let the device measure; and
        ``recorder.on_energy_gradients(plant, state, gradients)`` is told every
        ``energy_gradients(state)`` read-out of an energy-based plant."""
        if not callable(getattr(recorder, "on_query", None)):
            raise TypeError(f"recorder must have an on_query(plant, ...) method (a pnnlab.recording."
                            f"PlantRecorder), got {type(recorder).__name__}.")
        if recorder not in self._recorders:
            self._recorders = self._recorders + (recorder,)
        self._wrap_energy_gradients()

    def detach_recorder(self, recorder) -> None:
        """Stop reporting queries to ``recorder`` (no error if it was not attached)."""
        self._recorders = tuple(r for r in self._recorders if r is not recorder)
        self._wrap_energy_gradients()

    def _wrap_energy_gradients(self) -> None:
        """While a recorder wants them, ``energy_gradients`` read-outs are reported too (an instance
        attribute shadows the class's method; it is removed with the last such recorder)."""
        listeners = [r for r in self._recorders if callable(getattr(r, "on_energy_gradients", None))]
        wrapped = "energy_gradients" in self.__dict__
        if listeners and not wrapped and callable(getattr(type(self), "energy_gradients", None)):
            method = type(self).energy_gradients.__get__(self)

            def energy_gradients(state):
                gradients = method(state)
                for r in self._recorders:
                    hook = getattr(r, "on_energy_gradients", None)
                    if callable(hook):
                        hook(self, state, gradients)
                return gradients
            energy_gradients.__doc__ = method.__doc__
            self.__dict__["energy_gradients"] = energy_gradients
        elif not listeners and wrapped:
            del self.__dict__["energy_gradients"]

    def _recorded_query(self, kind: str, x: torch.Tensor, controls: dict, run, check, *,
                        generator: torch.Generator | None = None, **extra):
        """Run one metered query (``run()`` under no_grad, then ``check(result)``) and report it to
        every attached recorder with the meter delta it caused (time and energy charged inside the
        query included); a query whose result fails ``check`` is reported with its error, then raised.
        ``generator`` is the per-call generator (None: the plant's own). A recorder's ``answer`` hook
        may serve the query instead (replay); the other recorders are then told as usual."""
        for answering in self._recorders:
            answer = getattr(answering, "answer", None)
            replayed = answer(self, kind=kind, x=x, controls=controls, generator=generator, **extra) \
                if callable(answer) else None
            if replayed is not None:
                result, seconds, joules = replayed
                for recorder in self._recorders:
                    if recorder is not answering:
                        recorder.on_query(self, kind=kind, x=x, controls=controls, result=result, error=None,
                                          device_seconds=seconds, joules=joules, metered=True,
                                          generator=generator, **extra)
                return result
        seconds0, joules0 = self.meter.device_seconds, self.meter.joules
        try:
            with torch.no_grad():
                result = run()
        except Exception as error:  # nothing was measured: not a query, but the recorder is told
            for recorder in self._recorders:
                recorder.on_query(self, kind=kind, x=x, controls=controls, result=None, error=error,
                                  device_seconds=self.meter.device_seconds - seconds0,
                                  joules=self.meter.joules - joules0, metered=False, generator=generator,
                                  **extra)
            raise
        self.meter.record(self.cost, x.shape[0])  # the query happened, even if its result is unusable
        try:
            checked = check(result)
        except Exception as error:
            checked, failure = None, error
        else:
            failure = None
        for recorder in self._recorders:
            recorder.on_query(self, kind=kind, x=x, controls=controls, result=checked, error=failure,
                              device_seconds=self.meter.device_seconds - seconds0,
                              joules=self.meter.joules - joules0, metered=True, generator=generator, **extra)
        if failure is not None:
            raise failure
        return checked

    def check_measurement(self, y, x: torch.Tensor, *, call: str = "_measure") -> torch.Tensor:
        """Check what came back from the hardware for the batch ``x``: a tensor of shape
        ``(batch, out_features)`` with ``x``'s dtype and only finite values. Errors name the plant."""
        return check_output(f"{type(self).__name__}.{call}", y, batch=x.shape[0],
                            features=self.out_features, dtype=x.dtype)

    def validate_controls(self, controls: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Check names, shapes, finiteness, range and symmetry; return detached copies (a periodic
        setting is accepted at any finite value and returned wrapped into [low, high))."""
        specs = self.control_specs()
        if not isinstance(controls, Mapping):
            raise TypeError(f"controls must be a dict of tensors with keys {sorted(specs)}, "
                            f"got {type(controls).__name__}.")
        missing = sorted(set(specs) - set(controls))
        extra = sorted(set(controls) - set(specs))
        if missing or extra:
            raise ValueError(f"controls for {type(self).__name__} must have exactly the keys "
                             f"{sorted(specs)}; missing {missing}, unknown {extra}.")
        out = {}
        for name, spec in specs.items():
            value = controls[name]
            if not isinstance(value, torch.Tensor) or not torch.is_floating_point(value):
                raise TypeError(f"controls[{name!r}] must be a floating-point tensor, got "
                                f"{type(value).__name__}{'' if not isinstance(value, torch.Tensor) else ' ' + str(value.dtype)}.")
            if tuple(value.shape) != spec.shape:
                raise ValueError(f"controls[{name!r}] must have shape {spec.shape}, got {tuple(value.shape)}.")
            value = value.detach().to(self._device)
            # one pass for range and finiteness: min/max propagate NaN and keep +-inf (every plant
            # call runs this, so it is kept lean; see benchmarks/bench_pat_step_time.py)
            lo_t, hi_t = torch.aminmax(value)
            lo, hi = float(lo_t), float(hi_t)
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"controls[{name!r}] contains NaN or infinite values; the hardware "
                                 f"cannot be set to them (check the learning rate and the loss).")
            tol = 1e-6 * max(1.0, abs(spec.low) if math.isfinite(spec.low) else 1.0,
                             abs(spec.high) if math.isfinite(spec.high) else 1.0)
            if spec.periodic:
                if lo < spec.low or hi >= spec.high:
                    value = spec.wrap(value)
            elif lo < spec.low - tol or hi > spec.high + tol:
                raise ValueError(f"controls[{name!r}] must lie in [{spec.low}, {spec.high}] {spec.unit}".rstrip()
                                 + f" (its physical range), got values in [{lo:.4g}, {hi:.4g}]; clamp them, "
                                 f"or let PhysicalLayer map its parameters into the range.")
            # allclose(value, value.T, atol=1e-5, rtol=1e-5) for finite values, in fewer operations
            if spec.symmetric and not bool(((value - value.T).abs_() <= value.T.abs().mul_(1e-5).add_(1e-5)).all()):
                raise ValueError(f"controls[{name!r}] must be a symmetric matrix (the hardware realises "
                                 f"J_ij = J_ji); symmetrise it with 0.5 * (J + J.T).")
            out[name] = value
        return out

    def describe(self) -> str:
        return f"{type(self).__name__}(in_features={self.in_features}, out_features={self.out_features})"

    def __repr__(self) -> str:
        return self.describe()


#: instance attributes that are not device state (the meter is checkpointed apart; recorders and the
#: recording wrapper of energy_gradients belong to the session, not the device)
def _on(value, device: torch.device):
    """A measured tensor on the plant's device (an instrument or a replay answers on the CPU)."""
    return value.to(device) if isinstance(value, torch.Tensor) and value.device != device else value


_NOT_STATE = frozenset({"meter", "_recorders", "energy_gradients"})
#: attributes Plant.to leaves alone
_NOT_MOVED = frozenset({"meter", "cost", "_recorders", "_generator"})

_SCALARS = (bool, int, float)


def object_state(obj: Any, *, exclude: frozenset | set = frozenset(), tensors: bool = False) -> dict:
    """The changing state of a plain Python object, for a plant's :meth:`Plant.state_dict`: the state of
    every ``torch.Generator`` attribute, the value of every ``int``/``float``/``bool`` attribute and, with
    ``tensors=True``, a copy of every tensor attribute (for device arrays whose conductances, clocks
    and wear live in tensors). Attributes named in ``exclude`` are left out. Restore with
    :func:`load_object_state`."""
    state = {}
    for name, value in vars(obj).items():
        if name in exclude:
            continue
        if isinstance(value, torch.Generator):
            state[name] = ("generator", value.get_state())
        elif isinstance(value, _SCALARS):
            state[name] = ("value", value)
        elif tensors and isinstance(value, torch.Tensor):
            state[name] = ("tensor", value.detach().clone())
    return state


def load_object_state(obj: Any, state: Mapping) -> None:
    """Restore what :func:`object_state` returned. Generators are restored in place (an object that
    shares a generator with another keeps sharing it); tensors are copied in place where shapes allow,
    so views and aliases of them stay valid."""
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a dict returned by state_dict(), got {type(state).__name__}.")
    for name, entry in state.items():
        if not (isinstance(entry, tuple) and len(entry) == 2):
            raise ValueError(f"state[{name!r}] is not an entry of object_state(); load a state_dict() of the "
                             f"same kind of {type(obj).__name__}.")
        kind, value = entry
        current = getattr(obj, name, None)
        if kind == "generator":
            if not isinstance(current, torch.Generator):
                raise ValueError(f"{type(obj).__name__}.{name} is not a generator here; the state belongs to a "
                                 f"different kind of object.")
            current.set_state(value)
        elif kind == "tensor":
            if isinstance(current, torch.Tensor) and current.shape == value.shape and current.dtype == value.dtype:
                with torch.no_grad():
                    current.copy_(value)
            else:
                setattr(obj, name, value.clone())
        elif kind == "value":
            setattr(obj, name, value)
        else:
            raise ValueError(f"state[{name!r}] has unknown kind {kind!r}.")
