"""``train`` and ``evaluate``: a short loop that users can read and copy.

Plant usage is metered per phase: ``train_queries`` counts only the queries made by training steps,
evaluation queries are reported separately, so accuracy-against-queries plots show the cost of
training alone.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from . import devices
from ._validation import check_generator, check_int, make_generator
from .data.base import TaskData
from .execution import Execution, OnPlant, executing
from .layers import plants_of
from .metering import total_usage
from .methods.base import Method


@dataclass
class History:
    """Per-step and per-evaluation records (plain dicts, written as JSON lines by experiments)."""

    records: list[dict] = field(default_factory=list)

    def steps(self) -> list[dict]:
        return [r for r in self.records if r["kind"] == "step"]

    def evaluations(self) -> list[dict]:
        return [r for r in self.records if r["kind"] == "eval"]

    @property
    def final(self) -> dict:
        """The last evaluation record (after the final epoch)."""
        evals = self.evaluations()
        return evals[-1] if evals else {}

    @property
    def selected(self) -> dict:
        """The evaluation record at the epoch chosen on the *validation* split (highest validation
        accuracy, lowest validation loss on ties, earliest after that). Its ``test_accuracy`` is the
        figure to report for early stopping; the test split never takes part in the choice."""
        evals = self.evaluations()
        if not evals:
            return {}
        return min(evals, key=lambda r: (-r["val_accuracy"], r["val_loss"], r["epoch"]))


#: offset between a training seed and the seed of its evaluation noise generator
EVALUATION_SEED_OFFSET = 7_919


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, execution: Execution | None = None,
             batch_size: int = 512, loss_fn: Callable = nn.functional.cross_entropy,
             generator: torch.Generator | None = None) -> dict:
    """Accuracy and loss of ``model`` on ``(x, y)``, measured on the plant unless ``execution`` says
    otherwise. Returns ``{"accuracy", "loss", "queries"}`` (queries made by this evaluation).

    The measurement noise of the evaluation queries comes from ``generator`` (default: a fresh
    generator seeded 0, so a repeated evaluation sees the same noise), never from the plants' own
    generators: evaluating a model does not change how it trains afterwards. On a drifting plant the
    evaluation queries still take device time and let the device drift, as they would on hardware.
    """
    batch_size = check_int("batch_size", batch_size)
    if execution is not None and not isinstance(execution, Execution):
        raise TypeError(f"execution must be an Execution such as OnPlant() or None, got "
                        f"{type(execution).__name__}.")
    generator = check_generator("generator", generator) or make_generator(0)
    execution = (execution or OnPlant()).with_generator(generator)
    device = devices.model_device(model)
    before = total_usage(plants_of(model))["queries"]
    correct, loss_sum = 0, 0.0
    was_training = model.training
    model.eval()
    with torch.no_grad(), executing(execution):
        for start in range(0, len(y), batch_size):
            xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
            out = model(xb)
            loss_sum += float(loss_fn(out, yb)) * len(yb)
            correct += int((out.argmax(dim=1) == yb).sum())
    model.train(was_training)
    return {"accuracy": correct / len(y), "loss": loss_sum / len(y),
            "queries": total_usage(plants_of(model))["queries"] - before}


@dataclass
class TrainState:
    """Where :func:`train` is, exactly enough to continue bit-identically (checkpoints, ``pnnlab run
    --resume``): what comes *next* is batch ``batch`` of epoch ``epoch`` (``batch == steps per epoch``:
    the epoch's steps are done and its evaluation, if due, comes next); ``order`` is that epoch's
    sample order (``None`` before it is drawn); ``step`` counts the steps taken. The generator states
    are the data-order and evaluation-noise generators of ``train``; ``optimizer`` the state of the
    optimizer ``train`` uses; ``records`` the history so far; ``usage`` the training totals (queries,
    samples, device seconds, joules); ``wall_seconds`` the wall time spent before this state.

    The model, the method, the plants and the torch global generator are not part of it: a checkpoint
    (:mod:`pnnlab.checkpoint`) stores them beside it."""

    epoch: int = 1
    batch: int = 0
    step: int = 0
    order: torch.Tensor | None = None
    data_generator: torch.Tensor | None = None
    evaluation_generator: torch.Tensor | None = None
    optimizer: dict | None = None
    records: list = field(default_factory=list)
    usage: dict = field(default_factory=lambda: {"queries": 0, "samples": 0, "device_seconds": 0.0,
                                                 "joules": 0.0})
    recent_losses: list = field(default_factory=list)
    wall_seconds: float = 0.0

    def finished(self, epochs: int) -> bool:
        return self.epoch > epochs

    def snapshot(self) -> "TrainState":
        """A copy with the generator and optimizer states read now (what a checkpoint stores; ``train``
        passes its live state to ``checkpoint`` and this is called only when a checkpoint is written)."""
        from copy import deepcopy
        live = getattr(self, "_live", None)
        copy = TrainState(epoch=self.epoch, batch=self.batch, step=self.step, order=self.order,
                          data_generator=self.data_generator, evaluation_generator=self.evaluation_generator,
                          optimizer=self.optimizer, records=list(self.records), usage=dict(self.usage),
                          recent_losses=list(self.recent_losses), wall_seconds=self.wall_seconds)
        if live is not None:
            generator, evaluation_generator, optimizer = live
            copy.data_generator = generator.get_state()
            copy.evaluation_generator = evaluation_generator.get_state()
            # state_dict() refers to the live moment tensors, which the next steps change in place
            copy.optimizer = None if optimizer is None else deepcopy(optimizer.state_dict())
        return copy


def train(model: nn.Module, method: Method, data: TaskData, *, epochs: int = 10, batch_size: int = 32,
          optimizer: torch.optim.Optimizer | None = None, lr: float = 1e-2,
          loss_fn: Callable = nn.functional.cross_entropy, seed: int = 0,
          evaluate_every: int = 1, callback: Callable[[dict], None] | None = None,
          progress: bool = False, resume: TrainState | None = None,
          checkpoint: Callable[[TrainState], None] | None = None, device=None) -> History:
    """Train ``model`` on ``data`` with ``method``; evaluate on the validation and test splits every
    ``evaluate_every`` epochs and after the last (on the plant, or where ``method.evaluation`` says for
    the ideal bound). Choose epochs and hyper-parameters on ``val_accuracy`` (see
    :attr:`History.selected`), never on ``test_accuracy``.

    ``optimizer`` defaults to Adam with learning rate ``lr``. ``callback`` receives every record.

    ``seed`` seeds the order of the training samples and, separately, the measurement noise of the
    evaluation queries (a generator of their own, seeded ``seed + EVALUATION_SEED_OFFSET``), so the
    same seed gives the same training whatever ``evaluate_every`` is. On a drifting plant evaluation
    queries still take device time (and the device drifts meanwhile), as on real hardware.

    ``checkpoint`` (optional) is called with the live :class:`TrainState` before the first step and
    after every record (after ``callback``); to keep it, take ``state.snapshot()`` (the generator and
    optimizer states are read then). ``resume`` continues from such a snapshot (with the model, the
    method and the plants restored to the same moment, as :mod:`pnnlab.checkpoint` does), and the
    training then ends exactly as the uninterrupted one. The records before ``resume`` are not sent
    to ``callback`` again; the returned history holds them all.

    ``device`` ("cpu", "cuda", a torch.device; default: where the model already is) moves the model,
    its plants and twins there before training (``model.to(device)``); the batches follow. The data
    order and every plant's noise are drawn on the CPU, so a seed gives the same run on every device
    up to floating-point rounding.

    The optimizer never steps on a non-finite loss (NaN or +-inf) or non-finite gradients: training
    stops with a ``FloatingPointError`` that says where the value most likely came from.
    """
    if not isinstance(method, Method):
        raise TypeError(f"method must be a pnnlab Method instance such as PhysicsAwareTraining(), got "
                        f"{type(method).__name__}.")
    if not isinstance(data, TaskData):
        raise TypeError(f"data must be a TaskData (from pnnlab.data loaders), got {type(data).__name__}.")
    if resume is not None and not isinstance(resume, TrainState):
        raise TypeError(f"resume must be a TrainState (from a checkpoint) or None, got {type(resume).__name__}.")
    if checkpoint is not None and not callable(checkpoint):
        raise TypeError(f"checkpoint must be a function of a TrainState or None, got {type(checkpoint).__name__}.")
    epochs = check_int("epochs", epochs)
    batch_size = check_int("batch_size", batch_size)
    evaluate_every = check_int("evaluate_every", evaluate_every)
    if device is not None:
        model.to(devices.check_available(devices.as_device(device)))
    device = devices.model_device(model)
    method.check(model)
    if optimizer is None and not method.updates_parameters:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}; pass e.g. seed=0.")
    generator = make_generator(seed)
    evaluation_generator = make_generator(seed + EVALUATION_SEED_OFFSET)
    n = len(data.y_train)
    steps_per_epoch = (n + batch_size - 1) // batch_size
    if resume is not None:
        state = resume
        if state.batch > steps_per_epoch or (state.order is not None and len(state.order) != n):
            raise ValueError(f"resume is a TrainState at batch {state.batch} of an epoch of {steps_per_epoch} "
                             f"steps over {n if state.order is None else len(state.order)} samples; it belongs to "
                             f"a run with other data or another batch_size.")
        generator.set_state(state.data_generator)
        evaluation_generator.set_state(state.evaluation_generator)
        if optimizer is not None:
            if state.optimizer is None:
                raise ValueError("resume holds no optimizer state but this training uses an optimizer.")
            optimizer.load_state_dict(state.optimizer)
    else:
        state = TrainState()
    evaluation = method.evaluation
    plants = plants_of(model)
    history = History(records=list(state.records))
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=epochs * steps_per_epoch, initial=min(state.step, epochs * steps_per_epoch),
                   desc=method.name, leave=False, unit="step")
    start = time.perf_counter() - state.wall_seconds

    state._live = (generator, evaluation_generator, optimizer)  # read by state.snapshot()

    def save() -> None:
        if checkpoint is not None:
            state.records = history.records
            state.wall_seconds = time.perf_counter() - start
            checkpoint(state)

    def emit(record: dict) -> None:
        history.records.append(record)
        if callback is not None:
            callback(record)

    if resume is None:
        save()
    model.train()
    while not state.finished(epochs):
        epoch = state.epoch
        if state.order is None:
            state.order = torch.randperm(n, generator=generator)
        while state.batch < steps_per_epoch:
            i = state.batch
            idx = state.order[i * batch_size:(i + 1) * batch_size]
            before = total_usage(plants)
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
            loss = method.step(model, data.x_train[idx].to(device), data.y_train[idx].to(device), loss_fn)
            step = state.step + 1
            problem = _non_finite(loss, model, check_grads=optimizer is not None and not method.updates_parameters)
            if problem is not None:
                if bar is not None:
                    bar.close()
                raise FloatingPointError(_non_finite_message(problem, step, epoch, method, lr, state.recent_losses))
            if optimizer is not None and not method.updates_parameters:
                optimizer.step()
            after = total_usage(plants)
            for key in state.usage:
                state.usage[key] += after[key] - before[key]
            state.recent_losses = (state.recent_losses + [float(loss)])[-20:]
            state.step, state.batch = step, i + 1
            emit({"kind": "step", "step": step, "epoch": epoch, "loss": loss,
                  **{f"train_{k}": v for k, v in state.usage.items()},
                  "wall_seconds": time.perf_counter() - start})
            save()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        due = epoch % evaluate_every == 0 or epoch == epochs
        state.epoch, state.batch, state.order = epoch + 1, 0, None
        if due:
            scores = {}
            for split in ("val", "test"):
                result = evaluate(model, *data.split(split), execution=evaluation, loss_fn=loss_fn,
                                  generator=evaluation_generator)
                scores.update({f"{split}_accuracy": result["accuracy"], f"{split}_loss": result["loss"]})
            emit({"kind": "eval", "step": state.step, "epoch": epoch, **scores,
                  "evaluated_on": evaluation.label,
                  **{f"train_{k}": v for k, v in state.usage.items()},
                  "wall_seconds": time.perf_counter() - start})
            save()
    if bar is not None:
        bar.close()
    return history


def _non_finite(loss, model: nn.Module, *, check_grads: bool) -> str | None:
    """What is non-finite after a step: the loss, a gradient, a parameter; None if all is finite."""
    if isinstance(loss, torch.Tensor):
        loss = float(loss.detach())
    if not isinstance(loss, (int, float)):
        raise TypeError(f"a method's step must return the batch loss as a float, got {type(loss).__name__}.")
    if not math.isfinite(loss):
        return f"the loss is {loss}"
    for name, p in model.named_parameters():
        if not bool(torch.isfinite(p).all()):
            return f"parameter {name!r} is non-finite"
        if check_grads and p.grad is not None and not bool(torch.isfinite(p.grad).all()):
            return f"the gradient of {name!r} is non-finite (loss {loss:.4g})"
    return None


def _non_finite_message(problem: str, step: int, epoch: int, method: Method, lr: float,
                        recent: list[float]) -> str:
    head = (f"{problem} at step {step} (epoch {epoch}) with method {method.name!r}; the optimizer did not "
            f"step. Plant outputs are checked at the hardware boundary (a non-finite measurement raises "
            f"there), so the value arose in the digital part: the loss function (a log of 0, targets "
            f"outside its domain), a digital layer, or a twin's backward pass.")
    if len(recent) >= 2 and max(recent[-5:]) > 10 * max(min(recent), 1e-12):
        return head + (f" The loss rose from {min(recent):.4g} to {recent[-1]:.4g} over the last "
                       f"{len(recent)} steps, which suggests divergence: lower the learning rate (lr={lr}).")
    if recent:
        return head + (f" The loss was finite and not rising before (last value {recent[-1]:.4g}), so the "
                       f"learning rate is an unlikely cause; check the loss function and the model's "
                       f"digital layers on this batch.")
    return head + " It happened on the first step, so the learning rate is not the cause."
