"""``train`` and ``evaluate``: a short loop that users can read and copy.

Plant usage is metered per phase: ``train_queries`` counts only the queries made by training steps,
evaluation queries are reported separately, so accuracy-against-queries plots show the cost of
training alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ._validation import check_int, make_generator
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


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, execution: Execution | None = None,
             batch_size: int = 512,
             loss_fn: Callable = nn.functional.cross_entropy) -> dict:
    """Accuracy and loss of ``model`` on ``(x, y)``, measured on the plant unless ``execution`` says
    otherwise. Returns ``{"accuracy", "loss", "queries"}`` (queries made by this evaluation)."""
    batch_size = check_int("batch_size", batch_size)
    before = total_usage(plants_of(model))["queries"]
    correct, loss_sum = 0, 0.0
    was_training = model.training
    model.eval()
    with torch.no_grad(), executing(execution or OnPlant()):
        for start in range(0, len(y), batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            out = model(xb)
            loss_sum += float(loss_fn(out, yb)) * len(yb)
            correct += int((out.argmax(dim=1) == yb).sum())
    model.train(was_training)
    return {"accuracy": correct / len(y), "loss": loss_sum / len(y),
            "queries": total_usage(plants_of(model))["queries"] - before}


def train(model: nn.Module, method: Method, data: TaskData, *, epochs: int = 10, batch_size: int = 32,
          optimizer: torch.optim.Optimizer | None = None, lr: float = 1e-2,
          loss_fn: Callable = nn.functional.cross_entropy, seed: int = 0,
          evaluate_every: int = 1, callback: Callable[[dict], None] | None = None,
          progress: bool = False) -> History:
    """Train ``model`` on ``data`` with ``method``; evaluate on the validation and test splits every
    ``evaluate_every`` epochs and after the last (on the plant, or where ``method.evaluation`` says for
    the ideal bound). Choose epochs and hyper-parameters on ``val_accuracy`` (see
    :attr:`History.selected`), never on ``test_accuracy``.

    ``optimizer`` defaults to Adam with learning rate ``lr``. ``callback`` receives every record.
    """
    if not isinstance(method, Method):
        raise TypeError(f"method must be a pnnlab Method instance such as PhysicsAwareTraining(), got "
                        f"{type(method).__name__}.")
    if not isinstance(data, TaskData):
        raise TypeError(f"data must be a TaskData (from pnnlab.data loaders), got {type(data).__name__}.")
    epochs = check_int("epochs", epochs)
    batch_size = check_int("batch_size", batch_size)
    evaluate_every = check_int("evaluate_every", evaluate_every)
    method.check(model)
    if optimizer is None and not method.updates_parameters:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = make_generator(seed)
    plants = plants_of(model)
    history = History()
    usage = {"queries": 0, "samples": 0, "device_seconds": 0.0, "joules": 0.0}
    n = len(data.y_train)
    steps_per_epoch = (n + batch_size - 1) // batch_size
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=epochs * steps_per_epoch, desc=method.name, leave=False, unit="step")
    step = 0
    start = time.perf_counter()

    def emit(record: dict) -> None:
        history.records.append(record)
        if callback is not None:
            callback(record)

    model.train()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(n, generator=generator)
        for i in range(steps_per_epoch):
            idx = order[i * batch_size:(i + 1) * batch_size]
            before = total_usage(plants)
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
            loss = method.step(model, data.x_train[idx], data.y_train[idx], loss_fn)
            if optimizer is not None and not method.updates_parameters:
                optimizer.step()
            after = total_usage(plants)
            for key in usage:
                usage[key] += after[key] - before[key]
            step += 1
            if loss != loss:  # NaN
                raise FloatingPointError(f"loss became NaN at step {step} (epoch {epoch}) with method "
                                         f"{method.name!r}; lower the learning rate (lr={lr}).")
            emit({"kind": "step", "step": step, "epoch": epoch, "loss": loss,
                  **{f"train_{k}": v for k, v in usage.items()},
                  "wall_seconds": time.perf_counter() - start})
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        if epoch % evaluate_every == 0 or epoch == epochs:
            scores = {}
            for split in ("val", "test"):
                result = evaluate(model, *data.split(split), execution=method.evaluation, loss_fn=loss_fn)
                scores.update({f"{split}_accuracy": result["accuracy"], f"{split}_loss": result["loss"]})
            emit({"kind": "eval", "step": step, "epoch": epoch, **scores,
                  "evaluated_on": method.evaluation.label,
                  **{f"train_{k}": v for k, v in usage.items()},
                  "wall_seconds": time.perf_counter() - start})
    if bar is not None:
        bar.close()
    return history
