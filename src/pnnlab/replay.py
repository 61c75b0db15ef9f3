"""Replay at the plant boundary: a :class:`ReplayPlant` answers queries from a
:class:`~pnnlab.recording.Recording` instead of a device (tests, debugging, repeating a run without the
hardware). For a plant recorded with ``relax`` queries it is an :class:`EnergyReplayPlant`, an
energy-based plant that serves ``relax`` and ``energy_gradients`` too (equilibrium propagation and
coupled learning replay without the device); see :mod:`pnnlab.recording` for the recording format.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from .metering import CostModel
from .plants.base import ControlSpec, Plant
from .plants.capabilities import EnergyBased, Equilibrium, OutputClamp, OutputForce
from .recording import Recording


class ReplayMismatchError(RuntimeError):
    """A replayed run asked a :class:`ReplayPlant` for a query that differs from the recorded one."""


class ReplayPlant(Plant):
    """A plant that answers from a :class:`Recording` instead of a device.

    It has the recorded plant's control specs and feature counts. Its ``n``-th query must match the
    recorded plant's ``n``-th ``__call__`` query: the same input shape and dtype and the same control
    names and shapes, and values equal within ``atol`` (default ``0.0``: bit-identical, which a
    deterministic training run reproduces exactly); it then returns the recorded output. Anything else
    raises :class:`ReplayMismatchError` naming the sequence number and what differs. A recorded query
    that failed the boundary check fails again with the recorded error.

    Its meter counts the replayed queries and charges the device seconds and joules recorded for
    each, so a replayed run reports the same usage as the recorded one. The per-call ``generator`` is
    ignored: the noise is whatever the device measured.
    """

    summary = "answers queries from a recording (replay, tests, debugging)"

    def __new__(cls, recording: Recording | str | Path, *, plant: str | None = None, atol: float = 0.0):
        if cls is ReplayPlant:  # a plant recorded relaxing replays as an energy-based plant
            opened = recording if isinstance(recording, Recording) else Recording(recording)
            name = opened._plant_name(plant)
            if next(opened.queries(name, kind="relax"), None) is not None:
                cls = EnergyReplayPlant
            if opened is not recording:
                opened.close()
        return super().__new__(cls)

    #: the kinds of recorded query this replay answers, in their recorded order
    _kinds: tuple = ("call",)

    def __init__(self, recording: Recording | str | Path, *, plant: str | None = None, atol: float = 0.0) -> None:
        from ._validation import check_nonnegative
        if not isinstance(recording, Recording):
            recording = Recording(recording)
        self.recording = recording
        self.plant_name = recording._plant_name(plant)
        self.atol = check_nonnegative("atol", atol)
        info = recording.plants[self.plant_name]
        super().__init__(in_features=info["in_features"], out_features=info["out_features"], cost=CostModel(),
                         seed=0)
        self._specs = dict(info["control_specs"])
        self._description = info["description"]
        self._queries = (q for q in recording.queries(self.plant_name) if q.kind in self._kinds)
        self._pending = None
        self.position = 0

    def control_specs(self) -> dict[str, ControlSpec]:
        return dict(self._specs)

    def describe(self) -> str:
        return f"ReplayPlant(of {self._description} from {str(self.recording.path)!r}, plant={self.plant_name!r})"

    def _next(self, kind: str, x, controls, nudge=None, initial=None):
        """The next recorded query, which must be this one (else :class:`ReplayMismatchError`)."""
        if self._pending is None:  # a refused query leaves the recorded one in place
            self._pending = next(self._queries, None)
        q = self._pending
        where = f"replay of plant {self.plant_name!r}, query {self.position}"
        if q is None:
            raise ReplayMismatchError(f"{where}: the recording has only {self.position} {'/'.join(self._kinds)} "
                                      f"queries of this plant; the replayed run asks for more than the recorded "
                                      f"run made.")
        where += f" (recorded seq {q.seq})"
        problem = None if q.kind == kind else f"a {kind} query was asked, the recorded one is a {q.kind}"
        problem = problem or _difference("x", x, q.x, self.atol)
        for name in self._specs:
            problem = problem or _difference(f"controls[{name!r}]", controls[name], q.controls[name], self.atol)
        if problem is None and kind == "relax":
            problem = _nudge_difference(nudge, q, self.atol)
            if problem is None and (initial is not None) != q.info.get("warm_start"):
                problem = (f"the relaxation {'is' if initial is not None else 'is not'} warm-started, the "
                           f"recorded one {'was' if q.info.get('warm_start') else 'was not'}")
        if problem:
            raise ReplayMismatchError(f"{where}: {problem}; the replayed run diverged from the recorded one "
                                      f"(a different seed, model, data order or method?).")
        self.position += 1
        self._pending = None
        self.meter.charge(seconds=q.device_seconds, joules=q.joules)
        if q.output is None:
            raise FloatingPointError(f"{where}: the recorded query failed on the device: {q.error}")
        return q

    def _measure(self, x, controls, generator):
        return self._next("call", x, controls).output.clone()


class EnergyReplayPlant(ReplayPlant, EnergyBased):
    """A :class:`ReplayPlant` of an energy-based plant (what ``ReplayPlant(...)`` returns for a plant
    recorded with ``relax`` queries): ``__call__`` and ``relax`` queries are replayed in their recorded
    order (a relax must match the recorded inputs, controls, nudge kind and value, and whether it was
    warm-started), and ``energy_gradients(state)`` of a replayed state returns the read-out recorded from
    that state. ``force_unit`` is the recorded plant's. The replayed equilibrium carries no private
    plant data (``private`` names the recorded query), so a warm start only has to be asked for, as
    recorded."""

    _kinds = ("call", "relax")

    def __init__(self, recording: Recording | str | Path, *, plant: str | None = None, atol: float = 0.0) -> None:
        super().__init__(recording, plant=plant, atol=atol)
        relax = next(self.recording.queries(self.plant_name, kind="relax"), None)
        self.force_unit = float(relax.info.get("force_unit", 1.0)) if relax is not None else 1.0
        self._gradients: dict[int, dict] = {}

    def _relax(self, x, controls, nudge, initial, generator):
        q = self._next("relax", x, controls, nudge=nudge, initial=initial)
        indices = [int(k.split(".")[1]) for k in q.extra if k.startswith("nodes.")]
        nodes = tuple(q.extra.get(f"nodes.{i}") for i in range(max(indices) + 1)) if indices else ()
        gradients = {k.split(".", 1)[1]: v for k, v in q.extra.items() if k.startswith("energy_gradient.")}
        self._gradients[q.seq] = gradients
        return Equilibrium(output=q.output.clone(), nodes=tuple(n.clone() if n is not None else None for n in nodes),
                           power_W=q.extra.get("power_W"), residual=q.info.get("residual"),
                           private={"replayed_seq": q.seq})

    def energy_gradients(self, state):
        seq = state.private.get("replayed_seq") if isinstance(state, Equilibrium) and isinstance(state.private, dict) \
            else None
        if seq is None:
            raise ReplayMismatchError(f"replay of plant {self.plant_name!r}: energy_gradients() was given a state "
                                      f"this replay did not return; pass an Equilibrium from its relax().")
        gradients = self._gradients.get(seq)
        if not gradients:
            raise ReplayMismatchError(f"replay of plant {self.plant_name!r}: the recorded run never read the energy "
                                      f"gradients of the relaxation recorded as seq {seq} (or the recording predates "
                                      f"format 2); the replayed run diverged from it.")
        return {k: v.clone() for k, v in gradients.items()}


def _nudge_difference(nudge, q, atol: float) -> str | None:
    kind = "free" if nudge is None else "force" if isinstance(nudge, OutputForce) else "clamp"
    if kind != q.info.get("nudge"):
        return f"the relaxation is {kind}, the recorded one {q.info.get('nudge')}"
    if nudge is None:
        return None
    value = nudge.force if isinstance(nudge, OutputForce) else nudge.value
    recorded = q.extra.get(kind)
    return _difference(f"the {kind} nudge", value, recorded, atol) if isinstance(nudge, (OutputForce, OutputClamp)) \
        else None


def _difference(what: str, value: torch.Tensor, recorded: torch.Tensor, atol: float) -> str | None:
    if tuple(value.shape) != tuple(recorded.shape) or value.dtype != recorded.dtype:
        return (f"{what} has shape {tuple(value.shape)} and dtype {value.dtype}, the recorded query "
                f"{tuple(recorded.shape)} and {recorded.dtype}")
    if atol == 0.0:
        if torch.equal(value, recorded):
            return None
    elif bool((value - recorded).abs().le(atol).all()):
        return None
    diff = (value - recorded).abs()
    flat = int(torch.argmax(torch.nan_to_num(diff, nan=math.inf)))
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), diff.shape)) if diff.dim() else ()
    return (f"{what} differs from the recorded query by up to {float(diff.max()):.3g} (at index {index}: "
            f"{float(value.reshape(-1)[flat]):.9g} vs recorded {float(recorded.reshape(-1)[flat]):.9g}; "
            f"tolerance atol={atol})")
