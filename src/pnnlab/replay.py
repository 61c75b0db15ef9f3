"""Replay at the plant boundary: a :class:`ReplayPlant` answers queries from a
:class:`~pnnlab.recording.Recording` instead of a device (tests, debugging, repeating a run without the
hardware). It serves ``__call__`` queries only; see :mod:`pnnlab.recording` for the recording format.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from .metering import CostModel
from .plants.base import ControlSpec, Plant
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
        self._queries = recording.queries(self.plant_name, kind="call")
        self._pending = None
        self.position = 0

    def control_specs(self) -> dict[str, ControlSpec]:
        return dict(self._specs)

    def describe(self) -> str:
        return f"ReplayPlant(of {self._description} from {str(self.recording.path)!r}, plant={self.plant_name!r})"

    def _measure(self, x, controls, generator):
        if self._pending is None:  # a refused query leaves the recorded one in place
            self._pending = next(self._queries, None)
        q = self._pending
        where = f"replay of plant {self.plant_name!r}, query {self.position}"
        if q is None:
            raise ReplayMismatchError(f"{where}: the recording has only {self.position} call queries of this "
                                      f"plant; the replayed run asks for more than the recorded run made.")
        where += f" (recorded seq {q.seq})"
        problem = _difference("x", x, q.x, self.atol)
        for name in self._specs:
            problem = problem or _difference(f"controls[{name!r}]", controls[name], q.controls[name], self.atol)
        if problem:
            raise ReplayMismatchError(f"{where}: {problem}; the replayed run diverged from the recorded one "
                                      f"(a different seed, model, data order or method?).")
        self.position += 1
        self._pending = None
        self.meter.charge(seconds=q.device_seconds, joules=q.joules)
        if q.output is None:
            raise FloatingPointError(f"{where}: the recorded query failed on the device: {q.error}")
        return q.output.clone()


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
