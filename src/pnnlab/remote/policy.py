"""Stated policies of a remote plant: how transient faults are retried, what counts as a bad reading and
what happens to one, and the device's control limits (checked on the server).

* :class:`RetryPolicy`: transient transport errors (gRPC ``UNAVAILABLE``, ``DEADLINE_EXCEEDED``) are
  retried with capped exponential backoff, bounded in count *and* total time. A retry carries the
  same idempotency key, so a query whose first attempt did execute is answered from the server's log.
* :class:`ReadingCheck` flags a measurement that is saturated or out of range (a NaN or infinite
  measurement is always flagged, by the plant's own boundary check on the server). A flagged reading
  goes to the reading policy: :class:`Retry` (measure again, a new query), :class:`DropBatch` (abandon
  the training step; wrap the method in :class:`DropBadBatches`) or :class:`Stop` (raise
  :class:`~pnnlab.remote.errors.BadReading`).
* :class:`ControlLimit`: a device's safety range and ramp limit (maximum change per query) for one
  control, enforced by the server whatever the client sends.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import torch

from .._validation import check_int, check_nonnegative, check_positive
from ..methods.base import Method
from .errors import BadReading, BatchDropped


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff for transient errors: at most ``attempts`` tries of one call, waiting
    ``min(max_backoff_s, initial_backoff_s * multiplier**k)`` before try ``k + 1``, and no retry that
    would start after ``total_s`` seconds from the first try."""

    attempts: int = 4
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 1.0
    multiplier: float = 2.0
    total_s: float = 20.0

    def __post_init__(self) -> None:
        check_int("RetryPolicy.attempts", self.attempts)
        check_nonnegative("RetryPolicy.initial_backoff_s", self.initial_backoff_s)
        check_nonnegative("RetryPolicy.max_backoff_s", self.max_backoff_s)
        if check_positive("RetryPolicy.multiplier", self.multiplier) < 1:
            raise ValueError(f"RetryPolicy.multiplier must be >= 1 (a backoff that grows), got {self.multiplier}.")
        check_positive("RetryPolicy.total_s", self.total_s)

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        return min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** retry)


@dataclass(frozen=True)
class ReadingCheck:
    """What the client flags in a finite measurement. ``valid_range``: values outside ``(low, high)``
    cannot be real readings (for example a negative optical power). ``saturation_level``: a value at or
    above it means the detector sat at full scale (its reading is clipped, not measured). ``None``
    switches a check off."""

    valid_range: tuple[float, float] | None = None
    saturation_level: float | None = None

    def __post_init__(self) -> None:
        if self.valid_range is not None:
            if not isinstance(self.valid_range, tuple) or len(self.valid_range) != 2:
                raise TypeError(f"ReadingCheck.valid_range must be a (low, high) tuple or None, got "
                                f"{self.valid_range!r}.")
            low, high = (float(v) for v in self.valid_range)
            if not low < high:
                raise ValueError(f"ReadingCheck.valid_range needs low < high, got {self.valid_range!r}.")
        if self.saturation_level is not None and not math.isfinite(float(self.saturation_level)):
            raise ValueError(f"ReadingCheck.saturation_level must be finite or None, got {self.saturation_level!r}.")

    def problem(self, y: torch.Tensor) -> str | None:
        """What is wrong with the reading ``y`` (None if nothing)."""
        if self.saturation_level is not None:
            n = int((y >= self.saturation_level).sum())
            if n:
                return f"{n} of {y.numel()} values are saturated (>= saturation_level={self.saturation_level:g})"
        if self.valid_range is not None:
            low, high = self.valid_range
            n = int(((y < low) | (y > high)).sum())
            if n:
                return (f"{n} of {y.numel()} values lie outside valid_range=({low:g}, {high:g}) "
                        f"(range of the reading [{float(y.min()):.4g}, {float(y.max()):.4g}])")
        return None


class ReadingPolicy:
    """What a remote plant does with a flagged reading (base class)."""


@dataclass(frozen=True)
class Stop(ReadingPolicy):
    """Raise :class:`~pnnlab.remote.errors.BadReading`: training stops (a run folder is marked failed)."""


@dataclass(frozen=True)
class DropBatch(ReadingPolicy):
    """Raise :class:`~pnnlab.remote.errors.BatchDropped`; :class:`DropBadBatches` around the training
    method then abandons the step (no update) and training goes on. Outside such a step (an evaluation,
    a bare call) it stops like :class:`Stop`."""


@dataclass(frozen=True)
class Retry(ReadingPolicy):
    """Measure again, up to ``attempts`` more times (each a new, metered query), then apply ``then``."""

    attempts: int = 2
    then: ReadingPolicy = Stop()

    def __post_init__(self) -> None:
        check_int("Retry.attempts", self.attempts)
        if not isinstance(self.then, (Stop, DropBatch)):
            raise TypeError(f"Retry.then must be Stop() or DropBatch(), got {self.then!r}.")


@dataclass(frozen=True)
class ControlLimit:
    """Device limits of one control, enforced by the server on every query: every element within
    ``[low, high]`` (tighter than, or equal to, the plant's physical range) and, with ``max_step``, no
    element changed by more than ``max_step`` from the settings of the device's previous query (a ramp
    limit; the first query after the server starts sets the reference)."""

    low: float = -math.inf
    high: float = math.inf
    max_step: float | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.low, (int, float)) and isinstance(self.high, (int, float))) or not self.low < self.high:
            raise ValueError(f"ControlLimit needs numbers low < high, got low={self.low!r}, high={self.high!r}.")
        if self.max_step is not None:
            check_positive("ControlLimit.max_step", self.max_step)

    def to_json(self) -> dict:
        return {"low": self.low if math.isfinite(self.low) else None,
                "high": self.high if math.isfinite(self.high) else None, "max_step": self.max_step}


class DropBadBatches(Method):
    """Wrap a training method so that a step whose plant reading was dropped (the :class:`DropBatch`
    policy raised :class:`~pnnlab.remote.errors.BatchDropped`) makes no update: the model's state is
    restored to what it was before the step (a zeroth-order method may have perturbed it), every
    ``.grad`` is cleared (``torch.optim`` optimizers skip parameters without a gradient), and the step
    number goes to :attr:`dropped`. The step reports the previous step's loss (train needs a finite
    number); a drop on the very first step, or more than ``max_dropped`` drops, stops training with
    :class:`~pnnlab.remote.errors.BadReading`.
    """

    def __init__(self, method: Method, *, max_dropped: int = 10) -> None:
        if not isinstance(method, Method):
            raise TypeError(f"method must be a pnnlab Method such as PhysicsAwareTraining(), got "
                            f"{type(method).__name__}.")
        self.method = method
        self.max_dropped = check_int("max_dropped", max_dropped)
        self.name = method.name
        self.summary = method.summary
        self.updates_parameters = method.updates_parameters
        self.upper_bound = method.upper_bound
        self.evaluation = method.evaluation
        self.plant_queries_per_step = method.plant_queries_per_step
        self.dropped: list[int] = []
        self._steps = 0
        self._last_loss: float | None = None

    def check(self, model) -> None:
        self.method.check(model)

    def step(self, model, x, y, loss_fn: Callable) -> float:
        self._steps += 1
        saved = copy.deepcopy(model.state_dict())
        try:
            loss = self.method.step(model, x, y, loss_fn)
        except BatchDropped as error:
            model.load_state_dict(saved)
            for p in model.parameters():
                p.grad = None
            self.dropped.append(self._steps)
            if self._last_loss is None:
                raise BadReading(f"the first training step's reading was dropped ({error}); there is no loss to "
                                 f"report yet. Check the device, or use Retry().") from error
            if len(self.dropped) > self.max_dropped:
                raise BadReading(f"{len(self.dropped)} training steps dropped (more than max_dropped="
                                 f"{self.max_dropped}); the device keeps returning bad readings: {error}") from error
            return self._last_loss
        self._last_loss = float(loss)
        return loss

    def __repr__(self) -> str:
        return f"DropBadBatches({self.method!r}, max_dropped={self.max_dropped})"
