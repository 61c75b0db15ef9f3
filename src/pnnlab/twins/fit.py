"""Fit any twin (calibrated, learned, residual) to recorded or live plant queries: :func:`fit_twin`.

Data are (x, controls, y) triples: either recorded tensors (``(x, y)`` for a control-free system such
as the measured acoustic pairs, or ``(x, controls, y)`` with per-sample controls of shape
``(N, *spec.shape)``), or :class:`FromPlant`, a live plant and a sampler of (x, controls) queries that
spends at most ``budget`` plant queries, counted by the plant's meter. The records are split into a
training and a validation part (whole queries stay on one side), the twin is trained by Adam on the
relative squared error sum ||y - y_hat||^2 / sum ||y||^2, and training stops when the validation error
has not improved for ``patience`` epochs; the twin returned holds the parameters of its best validation
epoch. Wright et al., Nature 601, 549 (2022) fit their twins the same way (recorded pairs, held-out
error); relative error as reported there is ||y - y_hat|| / ||y||.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch

from .. import devices
from .._validation import check_int, check_positive
from .base import Twin

__all__ = ["FitReport", "FromPlant", "fit_twin", "relative_error"]


@dataclass(frozen=True)
class FromPlant:
    """Live data: ``plant`` and ``sample(generator) -> (x, controls)``, one query per call (a batch of
    inputs and one control setting of the plant's control shapes)."""

    plant: object
    sample: Callable[[torch.Generator], tuple[torch.Tensor, Mapping[str, torch.Tensor]]]

    def __post_init__(self) -> None:
        if not callable(getattr(self.plant, "__call__", None)) or not hasattr(self.plant, "meter"):
            raise TypeError(f"FromPlant.plant must be a pnnlab Plant (callable, with a meter), got "
                            f"{type(self.plant).__name__}.")
        if not callable(self.sample):
            raise TypeError("FromPlant.sample must be a callable generator -> (x, controls).")


@dataclass
class FitReport:
    """What a fit did: relative errors ||y - y_hat|| / ||y|| on the training and validation splits (of
    the best validation epoch), sizes, epochs, and the plant queries/samples it spent (0 for recordings)."""

    train_error: float
    val_error: float
    initial_val_error: float
    n_train: int
    n_val: int
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    queries: int = 0
    samples: int = 0
    history: list[dict] = field(default_factory=list)


def relative_error(twin: Twin, x: torch.Tensor, controls: Mapping[str, torch.Tensor], y: torch.Tensor) -> float:
    """||y - twin(x, controls)|| / ||y|| over a whole data set (no gradient)."""
    with torch.no_grad():
        y_hat = twin(x, dict(controls))
    return float(torch.linalg.vector_norm(y.to(y_hat.dtype) - y_hat)
                 / torch.linalg.vector_norm(y.to(y_hat.dtype)).clamp_min(1e-30))


def _take(controls, index):
    return {k: v[index] for k, v in controls.items()}


def _collect(source: FromPlant, budget: int, seed: int):
    plant = source.plant
    start = plant.meter.queries
    start_samples = plant.meter.samples
    gen = torch.Generator().manual_seed(seed)
    xs, cs, ys, groups = [], {}, [], []
    for q in range(budget):
        if plant.meter.queries - start >= budget:
            break
        x, controls = source.sample(gen)
        y = plant(x, controls)
        xs.append(x)
        ys.append(y.detach())
        groups.append(torch.full((x.shape[0],), q, device=x.device))
        for k, v in controls.items():
            cs.setdefault(k, []).append(v.detach().reshape(1, *v.shape).expand(x.shape[0], *v.shape))
    spent = plant.meter.queries - start
    if spent > budget:
        raise RuntimeError(f"the sampler or plant spent {spent} queries, over the budget of {budget}.")
    return (torch.cat(xs), {k: torch.cat(v) for k, v in cs.items()}, torch.cat(ys), torch.cat(groups),
            spent, plant.meter.samples - start_samples)


def fit_twin(twin: Twin, data, *, budget: int | None = None, val_fraction: float = 0.2, epochs: int = 200,
             lr: float = 1e-2, patience: int = 20, batch_size: int = 256, seed: int = 0,
             weight_decay: float = 0.0, val_data=None, prepare: bool = True) -> tuple[Twin, FitReport]:
    """Fit ``twin`` (in place) to ``data`` and return ``(twin, report)``.

    data: ``(x, y)``, ``(x, controls, y)`` (recorded tensors; controls per sample), a
        :class:`~pnnlab.recording.Recording` of one plant (or its ``to_dataset(plant)``: the split then keeps
        each recorded query whole), or :class:`FromPlant`.
    budget: plant queries to spend (required for, and only for, :class:`FromPlant`); exactly this many
        are made, counted by the plant's meter and reported.
    val_fraction: fraction of the records (of the queries, for live data) held out for early stopping.
    epochs, lr, patience, batch_size, weight_decay: Adam training; stops after ``patience`` epochs
        without a better validation error and restores the best epoch's parameters.
    seed: seeds the data split, the batch order and the live sampler.
    val_data: an explicit validation recording ``(x, y)`` or ``(x, controls, y)`` (e.g. a published
        split); then every record of ``data`` is used for training and ``val_fraction`` is ignored.
    prepare: call the twin's ``prepare`` (input/output normalisation from the training split) first.
        Pass False to continue fitting an already fitted twin with its normalisation unchanged (a warm
        start, as :class:`~pnnlab.methods.twin_refresh.TwinRefresh` does on every refresh after the first).
    """
    if not isinstance(twin, Twin):
        raise TypeError(f"twin must be a pnnlab Twin, got {type(twin).__name__}.")
    epochs = check_int("epochs", epochs)
    patience = check_int("patience", patience)
    batch_size = check_int("batch_size", batch_size)
    lr = check_positive("lr", lr)
    if not 0.0 < float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}; e.g. 0.2.")
    queries = samples = 0
    from ..recording import QueryDataset, Recording
    if isinstance(data, Recording):
        data = data.to_dataset()
    if isinstance(data, QueryDataset):
        if budget is not None:
            raise ValueError("budget applies to live fitting (FromPlant) only; a recording has no queries to spend.")
        x, controls, y, groups = data.x, dict(data.controls), data.y, data.seq
    elif isinstance(data, FromPlant):
        if budget is None:
            raise ValueError("budget is required when fitting live from a plant (the number of plant queries "
                             "to spend), e.g. budget=2000.")
        budget = check_int("budget", budget)
        x, controls, y, groups, queries, samples = _collect(data, budget, seed)
    else:
        if budget is not None:
            raise ValueError("budget applies to live fitting (FromPlant) only; a recording has no queries to spend.")
        if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
            raise TypeError("data must be (x, y), (x, controls, y) or FromPlant(plant, sample); got "
                            f"{type(data).__name__}.")
        x, controls, y = (data[0], {}, data[1]) if len(data) == 2 else data
        controls = dict(controls or {})
        if x.shape[0] != y.shape[0] or any(v.shape[0] != x.shape[0] for v in controls.values()):
            raise ValueError(f"x, controls and y must have the same number of records, got x {tuple(x.shape)}, "
                             f"y {tuple(y.shape)}, controls {({k: tuple(v.shape) for k, v in controls.items()})}.")
        groups = torch.arange(x.shape[0], device=x.device)
    gen = torch.Generator().manual_seed(seed)
    if val_data is not None:
        if not isinstance(val_data, (tuple, list)) or len(val_data) not in (2, 3):
            raise TypeError(f"val_data must be (x, y) or (x, controls, y), got {type(val_data).__name__}.")
        x_va, c_va, y_va = (val_data[0], {}, val_data[1]) if len(val_data) == 2 else val_data
        c_va = dict(c_va or {})
        return _train(twin, x, controls, y, x_va, c_va, y_va, epochs=epochs, lr=lr, patience=patience,
                      batch_size=batch_size, gen=gen, weight_decay=weight_decay, queries=queries, samples=samples,
                      prepare=prepare)
    unique = torch.unique(groups)
    if unique.numel() < 2:
        raise ValueError("need at least two records (queries) to split into training and validation.")
    order = unique[devices.randperm(unique.numel(), generator=gen, device=unique.device)]
    n_val_groups = min(max(1, round(val_fraction * unique.numel())), unique.numel() - 1)
    val_mask = torch.isin(groups, order[:n_val_groups])
    tr, va = (~val_mask).nonzero().squeeze(1), val_mask.nonzero().squeeze(1)
    x_tr, c_tr, y_tr = x[tr], _take(controls, tr), y[tr]
    x_va, c_va, y_va = x[va], _take(controls, va), y[va]
    return _train(twin, x_tr, c_tr, y_tr, x_va, c_va, y_va, epochs=epochs, lr=lr, patience=patience,
                  batch_size=batch_size, gen=gen, weight_decay=weight_decay, queries=queries, samples=samples,
                  prepare=prepare)


def _train(twin, x_tr, c_tr, y_tr, x_va, c_va, y_va, *, epochs, lr, patience, batch_size, gen, weight_decay,
           queries, samples, prepare=True):
    if prepare and hasattr(twin, "prepare"):
        twin.prepare(x_tr, c_tr, y_tr)
    params = [p for p in twin.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(twin).__name__} has no trainable parameters to fit.")
    optimiser = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    y_power = float((y_tr.to(torch.float64) ** 2).sum(1).mean()) or 1.0
    initial_val = best_val = relative_error(twin, x_va, c_va, y_va)
    best_state = {k: v.detach().clone() for k, v in twin.state_dict().items()}
    best_epoch, history, since_best, epoch = 0, [], 0, 0
    for epoch in range(1, epochs + 1):
        perm = devices.randperm(len(x_tr), generator=gen, device=x_tr.device)
        for start in range(0, len(x_tr), batch_size):
            idx = perm[start:start + batch_size]
            y_hat = twin(x_tr[idx], _take(c_tr, idx))
            loss = ((y_hat.to(torch.float64) - y_tr[idx].to(torch.float64)) ** 2).sum(1).mean() / y_power
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        val = relative_error(twin, x_va, c_va, y_va)
        history.append({"epoch": epoch, "val_error": val})
        if val < best_val:
            best_val, best_epoch, since_best = val, epoch, 0
            best_state = {k: v.detach().clone() for k, v in twin.state_dict().items()}
        else:
            since_best += 1
            if since_best >= patience:
                break
    twin.load_state_dict(best_state)
    report = FitReport(train_error=relative_error(twin, x_tr, c_tr, y_tr), val_error=best_val,
                       initial_val_error=initial_val, n_train=len(x_tr), n_val=len(x_va), epochs_run=epoch,
                       best_epoch=best_epoch, stopped_early=epoch < epochs, queries=queries, samples=samples,
                       history=history)
    return twin, report
