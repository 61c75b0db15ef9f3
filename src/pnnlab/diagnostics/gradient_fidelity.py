"""Gradient fidelity: how close a method's gradient estimate is to the *true* gradient.

The truth, by default everywhere in this module, is the gradient of the loss on the plant's true
physics: backpropagation through every physical layer's ``plant.true_twin()`` (the hidden physics,
every fabrication error and mismatch included, noise switched off), i.e. one step of
:class:`pnnlab.methods.ideal.IdealBackprop` under :class:`pnnlab.execution.OnTrueTwin`. It is
*not* the nominal twin's gradient: on a mismatched plant the nominal twin is wrong, and measuring
against it would rank in-silico training (which follows the nominal twin exactly) as perfect and
physics-aware training as poor, the opposite of the truth. Pass ``reference=`` only to study a
different question (for example equilibrium propagation against backprop through the same twin).

Simplification: the truth is noise-free, so a noisy estimator's distance to it includes its noise.
It needs a simulated plant (a real device's true physics is unknown).

For every parameter tensor this reports

* cosine similarity  cos = <g_est, g_true> / (|g_est| |g_true|)  (1 = same direction),
* relative error     |g_est - g_true| / |g_true|,
* the angle in degrees, arccos(cos).

:func:`compare_gradients` compares two dicts of tensors; :func:`estimate_gradients` runs one
method step and collects ``.grad``; :func:`true_gradients` gives the truth; :func:`gradient_fidelity`
does both for one batch; :class:`FidelityTracker` logs it over training.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import torch
from torch import nn


def compare_gradients(estimate: Mapping[str, torch.Tensor], true: Mapping[str, torch.Tensor]) -> dict:
    """Per-tensor and overall cosine similarity, relative error and angle between two gradient sets.

    Keys missing from ``estimate`` count as zero gradients. Returns
    ``{"per_tensor": {name: {...}}, "overall": {...}}``.
    """
    if not true:
        raise ValueError("true must hold at least one gradient tensor.")
    per = {}
    est_all, true_all = [], []
    for name, g_true in true.items():
        g_est = estimate.get(name)
        g_est = torch.zeros_like(g_true) if g_est is None else g_est.detach().reshape(g_true.shape)
        per[name] = _stats(g_est.flatten().double(), g_true.detach().flatten().double())
        est_all.append(g_est.flatten().double())
        true_all.append(g_true.detach().flatten().double())
    overall = _stats(torch.cat(est_all), torch.cat(true_all))
    return {"per_tensor": per, "overall": overall}


def _stats(a: torch.Tensor, b: torch.Tensor) -> dict:
    na, nb = float(a.norm()), float(b.norm())
    cos = float(a @ b) / (na * nb) if na > 0 and nb > 0 else float("nan")
    rel = float((a - b).norm()) / nb if nb > 0 else float("nan")
    angle = math.degrees(math.acos(max(-1.0, min(1.0, cos)))) if cos == cos else float("nan")
    return {"cosine": cos, "relative_error": rel, "angle_degrees": angle}


def collect_grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()
            if p.grad is not None}


def estimate_gradients(method, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       loss_fn: Callable = nn.functional.cross_entropy) -> dict[str, torch.Tensor]:
    """Run one ``method.step`` (a gradient estimator) and return the gradients it filled."""
    if getattr(method, "updates_parameters", False):
        raise ValueError(f"{type(method).__name__} updates parameters itself and gives no gradient "
                         f"estimate to compare.")
    model.zero_grad(set_to_none=True)
    method.step(model, x, y, loss_fn)
    grads = collect_grads(model)
    model.zero_grad(set_to_none=True)
    return grads


def _default_reference():
    from ..methods.ideal import IdealBackprop
    return IdealBackprop()


def true_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   loss_fn: Callable = nn.functional.cross_entropy, *, reference=None) -> dict[str, torch.Tensor]:
    """The true gradient of ``loss_fn(model(x), y)``: backpropagation through the plants' true physics
    with noise off (``IdealBackprop()``, see the module docstring). ``reference`` replaces it with
    another gradient estimator taken as truth."""
    return estimate_gradients(reference if reference is not None else _default_reference(), model, x, y, loss_fn)


def gradient_fidelity(method, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                      loss_fn: Callable = nn.functional.cross_entropy, *, reference=None) -> dict:
    """:func:`compare_gradients` of ``method``'s estimate against :func:`true_gradients` on one batch.
    Neither step changes the parameters."""
    estimate = estimate_gradients(method, model, x, y, loss_fn)
    return compare_gradients(estimate, true_gradients(model, x, y, loss_fn, reference=reference))


class FidelityTracker:
    """Records gradient fidelity of ``method`` against the true gradient during training
    (``reference=None``: backprop through the true physics, see :func:`true_gradients`).

    Call :meth:`measure` every few steps (it does not change parameters); ``records`` then holds
    ``{"step", "cosine", "relative_error", "angle_degrees"}`` dicts.
    """

    def __init__(self, method, reference=None, *, loss_fn: Callable = nn.functional.cross_entropy) -> None:
        self.method, self.loss_fn = method, loss_fn
        self.reference = reference if reference is not None else _default_reference()
        self.records: list[dict] = []

    def measure(self, model, x, y, step: int) -> dict:
        est = estimate_gradients(self.method, model, x, y, self.loss_fn)
        ref = estimate_gradients(self.reference, model, x, y, self.loss_fn)
        result = compare_gradients(est, ref)
        record = {"step": step, **result["overall"]}
        self.records.append(record)
        return record
