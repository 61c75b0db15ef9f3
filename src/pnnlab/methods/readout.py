"""Trained read-outs of a fixed physical system: reservoir computing and extreme learning machines.

The physics is not trained: a reservoir (a delay line, an oscillator network) or any plant used as a
fixed random feature map (an extreme learning machine) turns every input into features, and only the
model's digital read-out, its last ``nn.Linear``, is fitted, in closed form:

* :class:`RidgeReadout` (``ridge_readout``): ridge regression W = argmin ||Y - X W - b||^2 + alpha ||W||^2
  (intercept not penalised), solved for every alpha of a grid at once from one SVD of the centred
  features (Jaeger 2001; Lukosevicius & Jaeger, Comput. Sci. Rev. 3, 127 (2009),
  doi:10.1016/j.cosrev.2009.03.005). Integer class labels become one-hot targets (a ridge classifier,
  the prediction is the arg-max).
* :class:`LogisticReadout` (``logistic_readout``): multinomial logistic regression on the same fixed
  features with an L2 penalty alpha ||W||^2 / 2 on z-scored features, fitted by L-BFGS (not closed form,
  but it needs no further plant queries: the features are measured once).

Query cost: :meth:`ReadoutMethod.fit` spends exactly one pass of the plant over the training split and
one over the validation split (``ceil(n / batch_size)`` queries each, ``n_train + n_val`` samples), then
chooses alpha on the validation split and writes the read-out's weight and bias (the method updates
the parameters itself). :meth:`ReadoutMethod.step` (what :func:`pnnlab.train` calls per batch) spends one
pass over the batch and, having no validation split, chooses alpha on every fifth row of the batch held
out, then refits on all rows; use :meth:`fit` to choose on the validation split.

Model structure: the read-out is the model's last ``nn.Linear`` outside its physical layers, and only
reshaping may follow it (``nn.Flatten``); its input rows are the features. For a time series (a
read-out input of shape (batch, T, features), e.g. a :class:`~pnnlab.plants.capabilities.Dynamical`
plant's states unflattened per step) each step is one row and the first ``washout`` steps of every
series are dropped (the reservoir's transient). :func:`readout_model` builds such models.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .._validation import check_int, check_positive
from ..execution import Execution, OnPlant, executing
from ..layers import PhysicalLayer, physical_layers, plants_of
from ..metering import total_usage
from .base import Method, NeedsDigitalModule

__all__ = ["LogisticReadout", "ReadoutFit", "ReadoutMethod", "RidgeReadout", "readout_model"]

#: default regularisation grid (sum-of-squares convention, as scikit-learn's Ridge alpha)
DEFAULT_ALPHAS = tuple(10.0 ** k for k in range(-14, 3))


@dataclass
class ReadoutFit:
    """What :meth:`ReadoutMethod.fit` did: the alpha chosen on validation, the validation score of every
    alpha (``val_scores[alpha] = (accuracy or None, loss)``; loss = MSE for ridge, cross-entropy for
    logistic), the training and validation loss at the chosen alpha, and the plant usage of the fit."""

    alpha: float
    val_scores: dict = field(default_factory=dict)
    train_loss: float = math.nan
    val_loss: float = math.nan
    val_accuracy: float | None = None
    usage: dict = field(default_factory=dict)


def readout_model(plant, out_features: int, *, twin=None) -> nn.Sequential:
    """A fixed plant followed by a trainable linear read-out. For a plant with ``steps`` and ``n_state``
    (a :class:`~pnnlab.plants.capabilities.Dynamical` plant) the flat output is unflattened per input
    step and the read-out maps each step's state to ``out_features`` values (model output (batch,
    steps * out_features)); otherwise the read-out maps the plant's ``out_features`` (an extreme
    learning machine)."""
    from ..plants.capabilities import Dynamical
    out_features = check_int("out_features", out_features)
    layer = PhysicalLayer(plant, twin=twin)
    if isinstance(plant, Dynamical):
        return nn.Sequential(layer, nn.Unflatten(1, (plant.steps, plant.n_state)),
                             nn.Linear(plant.n_state, out_features), nn.Flatten(1))
    return nn.Sequential(layer, nn.Linear(plant.out_features, out_features))


def _readout_of(model: nn.Module) -> nn.Linear:
    inside = {id(m) for layer in physical_layers(model) for m in layer.modules()}
    found = [m for m in model.modules() if isinstance(m, nn.Linear) and id(m) not in inside]
    if not found:
        raise ValueError("the model has no nn.Linear read-out outside its physical layers; build it with "
                         "pnnlab.methods.readout.readout_model(plant, out_features).")
    return found[-1]


class ReadoutMethod(Method):
    """Shared machinery of the closed-form read-outs (see the module docstring)."""

    requirements = (NeedsDigitalModule(nn.Linear, why="the read-out the method fits"),)
    plant_queries_per_step = "1 pass over the batch (ceil(batch / batch_size) queries); fit(): 1 pass over train + val"
    updates_parameters = True

    def __init__(self, *, alphas=DEFAULT_ALPHAS, washout: int = 0, batch_size: int = 256) -> None:
        alphas = tuple(alphas)
        if not alphas:
            raise ValueError("alphas must hold at least one regularisation strength, e.g. alphas=(1e-6, 1e-3).")
        self.alphas = tuple(sorted(check_positive("alphas[i]", a) for a in alphas))
        self.washout = check_int("washout", washout, minimum=0)
        self.batch_size = check_int("batch_size", batch_size)

    # ---- features (the only plant queries) ------------------------------------------------
    def features(self, model: nn.Module, x: torch.Tensor, *, execution: Execution | None = None):
        """Run ``model`` on ``x`` (one pass, batches of ``batch_size``) and return the read-out's input,
        ``(batch, features)`` or ``(batch, T, features)``, detached."""
        readout = _readout_of(model)
        captured = []
        hook = readout.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0].detach()))
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), executing(execution or OnPlant()):
                for start in range(0, x.shape[0], self.batch_size):
                    model(x[start:start + self.batch_size])
        finally:
            hook.remove()
            model.train(was_training)
        return torch.cat(captured, dim=0)

    def _rows(self, z: torch.Tensor, y: torch.Tensor, out_features: int):
        """Feature rows (n, F) and target rows: (n, out) floats, or (n,) int64 labels for classification."""
        if z.ndim == 3:
            if self.washout >= z.shape[1]:
                raise ValueError(f"washout={self.washout} drops every one of the {z.shape[1]} steps of the series.")
            if not y.is_floating_point():
                raise ValueError("a series read-out (read-out input (batch, T, features)) fits real-valued "
                                 "targets (batch, T); class labels need a (batch, features) read-out input.")
            z = z[:, self.washout:]
            y = y.reshape(y.shape[0], -1, out_features)[:, self.washout:]
            return z.reshape(-1, z.shape[-1]).double(), y.reshape(-1, out_features).double()
        if z.ndim != 2:
            raise ValueError(f"the read-out's input must be (batch, features) or (batch, T, features), got "
                             f"{tuple(z.shape)}.")
        if y.is_floating_point():
            return z.double(), y.reshape(z.shape[0], out_features).double()
        return z.double(), y.long().reshape(-1)

    # ---- the method ---------------------------------------------------------------------
    def fit(self, model: nn.Module, data, *, execution: Execution | None = None) -> ReadoutFit:
        """Measure the features of the training and validation splits (one plant pass each), choose alpha
        on validation, write the read-out. ``data`` has ``x_train``/``y_train``/``x_val``/``y_val``
        (a :class:`~pnnlab.data.TaskData` or a :class:`~pnnlab.data.narma.SeriesTask`). ``execution``
        (default :class:`~pnnlab.execution.OnPlant`) may be ``OnTrueTwin()`` for an upper bound."""
        self.check(model)
        readout = _readout_of(model)
        before = total_usage(plants_of(model))
        z_train = self.features(model, data.x_train, execution=execution)
        z_val = self.features(model, data.x_val, execution=execution)
        after = total_usage(plants_of(model))
        x_tr, y_tr = self._rows(z_train, data.y_train, readout.out_features)
        x_va, y_va = self._rows(z_val, data.y_val, readout.out_features)
        result = self._solve(x_tr, y_tr, x_va, y_va, readout.out_features)
        self._write(readout, result.pop("weight"), result.pop("bias"))
        return ReadoutFit(usage={k: after[k] - before[k] for k in after}, **result)

    def step(self, model, x, y, loss_fn):
        readout = _readout_of(model)
        x_all, y_all = self._rows(self.features(model, x), y, readout.out_features)
        if x_all.shape[0] < 5:
            raise ValueError(f"{self.name} needs at least 5 feature rows in a batch to hold out a fifth for "
                             f"choosing alpha, got {x_all.shape[0]}; use a larger batch or fit(model, data).")
        held = torch.zeros(x_all.shape[0], dtype=torch.bool, device=x_all.device)
        held[4::5] = True
        chosen = self._solve(x_all[~held], y_all[~held], x_all[held], y_all[held], readout.out_features)["alpha"]
        result = self._solve(x_all, y_all, x_all, y_all, readout.out_features, alphas=(chosen,))
        self._write(readout, result["weight"], result["bias"])
        return float(result["train_loss"])

    @staticmethod
    def _write(readout: nn.Linear, weight: torch.Tensor, bias: torch.Tensor) -> None:
        with torch.no_grad():
            readout.weight.copy_(weight.to(readout.weight.dtype))
            if readout.bias is not None:
                readout.bias.copy_(bias.to(readout.bias.dtype))

    @abc.abstractmethod
    def _solve(self, x_tr, y_tr, x_va, y_va, out_features, alphas=None) -> dict:
        """Fit on the training rows for every alpha (default ``self.alphas``), choose on the validation
        rows; returns alpha, val_scores, train_loss, val_loss, val_accuracy, weight (out, in), bias."""


def _one_hot(labels: torch.Tensor, classes: int) -> torch.Tensor:
    return nn.functional.one_hot(labels, classes).double()


class RidgeReadout(ReadoutMethod):
    """Closed-form ridge regression read-out, alpha chosen on validation (see the module docstring).

    ``alphas``: the grid (scikit-learn's convention, sum of squares); ``washout``: leading steps of every
    series not fitted; ``batch_size``: samples per plant query of the feature pass."""

    name = "ridge_readout"
    summary = ("closed-form ridge read-out of a fixed plant (reservoir / extreme learning machine), alpha "
               "chosen on validation; one plant pass over train + val")

    @staticmethod
    def solve_ridge(x: torch.Tensor, y: torch.Tensor, alphas) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(W (in, out), b (out,)) minimising ||y - x W - b||^2 + alpha ||W||^2 for every alpha, from one
        SVD of the centred features (float64)."""
        x_mean, y_mean = x.mean(dim=0), y.mean(dim=0)
        u, s, vh = torch.linalg.svd(x - x_mean, full_matrices=False)
        uty = u.T @ (y - y_mean)
        out = []
        for alpha in alphas:
            w = vh.T @ ((s / (s * s + alpha)).unsqueeze(1) * uty)
            out.append((w, y_mean - x_mean @ w))
        return out

    def _solve(self, x_tr, y_tr, x_va, y_va, out_features, alphas=None):
        alphas = self.alphas if alphas is None else alphas
        classify = not y_tr.is_floating_point()
        t_tr = _one_hot(y_tr, out_features) if classify else y_tr
        t_va = _one_hot(y_va, out_features) if classify else y_va
        scores, best = {}, None
        for alpha, (w, b) in zip(alphas, self.solve_ridge(x_tr, t_tr, alphas)):
            pred = x_va @ w + b
            loss = float((pred - t_va).pow(2).mean())
            acc = float((pred.argmax(dim=1) == y_va).double().mean()) if classify else None
            scores[alpha] = (acc, loss)
            key = ((-acc if classify else 0.0), loss)
            if best is None or key < best[0]:
                best = (key, alpha, w, b, loss, acc)
        _, alpha, w, b, loss, acc = best
        train_loss = float((x_tr @ w + b - t_tr).pow(2).mean())
        return {"alpha": alpha, "val_scores": scores, "train_loss": train_loss, "val_loss": loss,
                "val_accuracy": acc, "weight": w.T, "bias": b}


class LogisticReadout(ReadoutMethod):
    """Multinomial logistic-regression read-out for classification on fixed plant features, alpha chosen
    on validation accuracy (ties: validation cross-entropy). Features are z-scored with the training
    rows' statistics before the L2 penalty alpha ||W||^2 / 2 (sum of the cross-entropies), and the
    weights are mapped back to raw features before they are written. L-BFGS, at most ``max_iter``
    iterations per alpha, warm-started from the next larger alpha."""

    name = "logistic_readout"
    summary = ("logistic-regression read-out of a fixed plant for classification (L-BFGS on the measured "
               "features), alpha chosen on validation; one plant pass over train + val")

    def __init__(self, *, alphas=tuple(10.0 ** k for k in range(-4, 4)), washout: int = 0,
                 batch_size: int = 256, max_iter: int = 200) -> None:
        super().__init__(alphas=alphas, washout=washout, batch_size=batch_size)
        self.max_iter = check_int("max_iter", max_iter)

    def _fit_one(self, x, y, classes, alpha, init):
        w = init[0].clone().requires_grad_(True)
        b = init[1].clone().requires_grad_(True)
        opt = torch.optim.LBFGS([w, b], max_iter=self.max_iter, line_search_fn="strong_wolfe",
                                tolerance_grad=1e-9, tolerance_change=1e-12)

        def closure():
            opt.zero_grad()
            loss = nn.functional.cross_entropy(x @ w + b, y, reduction="sum") + 0.5 * alpha * w.pow(2).sum()
            loss.backward()
            return loss
        opt.step(closure)
        return w.detach(), b.detach()

    def _solve(self, x_tr, y_tr, x_va, y_va, out_features, alphas=None):
        if y_tr.is_floating_point():
            raise ValueError("logistic_readout fits class labels (int64); for real-valued targets use "
                             "ridge_readout.")
        alphas = self.alphas if alphas is None else alphas
        mean, std = x_tr.mean(dim=0), x_tr.std(dim=0, unbiased=False).clamp_min(1e-12)
        z_tr, z_va = (x_tr - mean) / std, (x_va - mean) / std
        init = (torch.zeros(x_tr.shape[1], out_features, dtype=torch.float64, device=x_tr.device),
                torch.zeros(out_features, dtype=torch.float64, device=x_tr.device))
        scores, best = {}, None
        for alpha in sorted(alphas, reverse=True):
            init = self._fit_one(z_tr, y_tr, out_features, alpha, init)
            w, b = init
            logits = z_va @ w + b
            loss = float(nn.functional.cross_entropy(logits, y_va))
            acc = float((logits.argmax(dim=1) == y_va).double().mean())
            scores[alpha] = (acc, loss)
            if best is None or (-acc, loss) < best[0]:
                best = ((-acc, loss), alpha, w, b, loss, acc)
        _, alpha, w, b, loss, acc = best
        train_loss = float(nn.functional.cross_entropy(z_tr @ w + b, y_tr))
        w_raw = w / std.unsqueeze(1)
        return {"alpha": alpha, "val_scores": scores, "train_loss": train_loss, "val_loss": loss,
                "val_accuracy": acc, "weight": w_raw.T, "bias": b - mean @ w_raw}


def conformance_example():
    """A tiny extreme learning machine (a delay reservoir of 6 virtual nodes over 3 input steps) with a
    linear read-out, 10 samples of 3 classes, for the conformance suite."""
    from ..plants.reservoirs import DelayReservoirPlant
    plant = DelayReservoirPlant(n_virtual=6, steps=3, seed=0)
    model = nn.Sequential(PhysicalLayer(plant), nn.Linear(plant.out_features, 3))
    x = plant.example_inputs(10)
    y = torch.arange(10, device=x.device) % 3
    return model, x, y
