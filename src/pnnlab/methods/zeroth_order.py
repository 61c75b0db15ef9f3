"""Zeroth-order (perturbative) gradient estimators: they only evaluate the loss on the plant.

Every estimator perturbs the model's trainable parameters (for a physical layer, the raw parameters
behind its controls, so the perturbed controls always stay in their physical range), evaluates the
batch loss with every physical layer running *on the plant*, and turns loss differences into a
gradient estimate written to ``.grad``; any ``torch.optim`` optimizer then applies it. No twin and
no derivative of the physics is ever used. One *evaluation* is one forward pass of the model, which
costs one plant query per physical layer.

* :class:`SPSA`: simultaneous-perturbation stochastic approximation, Spall, IEEE Trans. Autom.
  Control 37, 332 (1992), doi:10.1109/9.119632. With Rademacher directions ``Delta_k``:
  ``g = (1/K) sum_k [L(theta + eps Delta_k) - L(theta - eps Delta_k)] / (2 eps) Delta_k``;
  ``E[g] = grad L + O(eps^2)`` because ``E[Delta Delta^T] = I``. 2K evaluations.
* :class:`FiniteDifferences`: one coordinate at a time, central
  ``[L(theta + eps e_i) - L(theta - eps e_i)] / (2 eps)`` (2P evaluations) or forward
  ``[L(theta + eps e_i) - L(theta)] / eps`` (P + 1 evaluations).
* :class:`WeightPerturbation`: Jabri & Flower, IEEE Trans. Neural Netw. 3, 154 (1992),
  doi:10.1109/72.105429, in its stochastic multi-weight form with Gaussian directions ``xi_k``:
  ``g = (1/K) sum_k [L(theta + sigma xi_k) - L(theta)] / sigma xi_k``. K + 1 evaluations.
* :class:`NodePerturbation`: Fiete & Seung, Phys. Rev. Lett. 97, 048104 (2006),
  doi:10.1103/PhysRevLett.97.048104 (see also Williams 1992). The *outputs* of the digital layers
  ("nodes" h) are perturbed by ``sigma xi``; per sample i,
  ``dl_i/dh_i ~ (1/K) sum_k [l_i(h + sigma xi_k) - l_i(h)] / sigma xi_{k,i}``, and the layer's own
  (digital, known) Jacobian maps this node error onto its weights, ``dL/dW = sum_i (dl_i/dh_i)^T
  dh_i/dW / B``. The variance scales with the number of nodes, not of weights. The map from a node
  to a *physical* control is the unknown physics, so node perturbation trains the digital layers
  only and leaves physical controls untouched (use SPSA or MGD for them). K + 1 evaluations.
* multiplexed gradient descent (McCaughan et al. 2023) lives in :mod:`pnnlab.methods.multiplexed`.
"""

from __future__ import annotations

import abc
from typing import Callable

import torch
from torch import nn

from .. import devices
from .._validation import check_int, check_positive, make_generator
from ..execution import OnPlant, executing
from ..layers import physical_layers
from .base import Method, NeedsDigitalModule


# ---- shared helpers ------------------------------------------------------------------------
def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters a method trains (``requires_grad=True``), in ``model.parameters()`` order."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (requires_grad=True); nothing to train.")
    return params


def get_vector(params: list[nn.Parameter]) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params])


def set_vector(params: list[nn.Parameter], vector: torch.Tensor) -> None:
    with torch.no_grad():
        start = 0
        for p in params:
            n = p.numel()
            p.copy_(vector[start:start + n].view_as(p))
            start += n


def write_grad(params: list[nn.Parameter], vector: torch.Tensor) -> None:
    start = 0
    for p in params:
        n = p.numel()
        g = vector[start:start + n].view_as(p).to(p.dtype)
        p.grad = g.clone() if p.grad is None else p.grad + g
        start += n


def plant_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable) -> float:
    """Batch loss with every physical layer on its plant (one query per physical layer)."""
    with torch.no_grad(), executing(OnPlant()):
        return float(loss_fn(model(x), y))


def per_sample_losses(loss_fn: Callable, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Loss of each sample, from a loss_fn that averages over the batch."""
    try:
        return torch.vmap(lambda o, t: loss_fn(o.unsqueeze(0), t.unsqueeze(0)))(out, y)
    except Exception:  # loss functions vmap cannot trace: fall back to one call per sample
        return torch.stack([loss_fn(out[i:i + 1], y[i:i + 1]) for i in range(out.shape[0])])


class ZerothOrderMethod(Method):
    """Base of the perturbative estimators: ``evaluations(n_params)`` forward passes per step."""

    requirements = ()

    @abc.abstractmethod
    def evaluations(self, n_params: int) -> int:
        """Forward passes of the model per step."""

    def queries_per_step(self, model: nn.Module) -> int:
        """Plant queries one step makes on ``model`` (the meter confirms it in the tests)."""
        n_params = sum(p.numel() for p in self._parameters_of(model))
        return self.evaluations(n_params) * len(physical_layers(model))

    def _parameters_of(self, model):
        return trainable_parameters(model)


def _rademacher(like: torch.Tensor, generator) -> torch.Tensor:
    """+-1 entries with ``like``'s shape, dtype and device."""
    return devices.randint(0, 2, like.shape, generator=generator, device=like.device).to(like.dtype) * 2.0 - 1.0


# ---- SPSA ------------------------------------------------------------------------------------
class SPSA(ZerothOrderMethod):
    name = "spsa"
    summary = "simultaneous-perturbation stochastic approximation, 2 plant evaluations per direction (Spall 1992)"
    plant_queries_per_step = "2 x n_perturbations forward passes (each one query per physical layer)"

    def __init__(self, *, n_perturbations: int = 1, epsilon: float = 1e-2, seed: int = 0) -> None:
        self.n_perturbations = check_int("n_perturbations", n_perturbations)
        self.epsilon = check_positive("epsilon", epsilon)
        self._generator = make_generator(seed)

    def evaluations(self, n_params):
        return 2 * self.n_perturbations

    def step(self, model, x, y, loss_fn):
        params = trainable_parameters(model)
        theta = get_vector(params)
        grad = torch.zeros_like(theta)
        losses = []
        try:
            for _ in range(self.n_perturbations):
                delta = _rademacher(theta, self._generator)
                set_vector(params, theta + self.epsilon * delta)
                plus = plant_loss(model, x, y, loss_fn)
                set_vector(params, theta - self.epsilon * delta)
                minus = plant_loss(model, x, y, loss_fn)
                grad += (plus - minus) / (2 * self.epsilon) * delta
                losses += [plus, minus]
        finally:
            set_vector(params, theta)
        write_grad(params, grad / self.n_perturbations)
        return sum(losses) / len(losses)

    def __repr__(self):
        return f"SPSA(n_perturbations={self.n_perturbations}, epsilon={self.epsilon})"


# ---- finite differences --------------------------------------------------------------------
class FiniteDifferences(ZerothOrderMethod):
    name = "finite_differences"
    summary = "coordinate-wise finite differences: 2P (central) or P+1 (forward) evaluations"
    plant_queries_per_step = "2P (central) or P + 1 (forward) forward passes for P parameters"

    def __init__(self, *, epsilon: float = 1e-3, central: bool = True) -> None:
        self.epsilon = check_positive("epsilon", epsilon)
        if not isinstance(central, bool):
            raise TypeError(f"central must be True or False, got {central!r}.")
        self.central = central

    def evaluations(self, n_params):
        return 2 * n_params if self.central else n_params + 1

    def step(self, model, x, y, loss_fn):
        params = trainable_parameters(model)
        theta = get_vector(params)
        grad = torch.zeros_like(theta)
        losses = []
        try:
            base = None if self.central else plant_loss(model, x, y, loss_fn)
            for i in range(theta.numel()):
                shifted = theta.clone()
                shifted[i] += self.epsilon
                set_vector(params, shifted)
                plus = plant_loss(model, x, y, loss_fn)
                if self.central:
                    shifted[i] -= 2 * self.epsilon
                    set_vector(params, shifted)
                    minus = plant_loss(model, x, y, loss_fn)
                    grad[i] = (plus - minus) / (2 * self.epsilon)
                    losses += [plus, minus]
                else:
                    grad[i] = (plus - base) / self.epsilon
        finally:
            set_vector(params, theta)
        write_grad(params, grad)
        return sum(losses) / len(losses) if self.central else base

    def __repr__(self):
        return f"FiniteDifferences(epsilon={self.epsilon}, central={self.central})"


class _GaussianPerturbation(ZerothOrderMethod):
    """Shared settings of weight and node perturbation: K Gaussian perturbations of size sigma
    against one unperturbed baseline (K + 1 evaluations)."""

    def __init__(self, *, n_perturbations: int = 1, sigma: float = 1e-2, seed: int = 0) -> None:
        self.n_perturbations = check_int("n_perturbations", n_perturbations)
        self.sigma = check_positive("sigma", sigma)
        self._generator = make_generator(seed)

    def evaluations(self, n_params):
        return self.n_perturbations + 1


# ---- weight perturbation -------------------------------------------------------------------
class WeightPerturbation(_GaussianPerturbation):
    name = "weight_perturbation"
    summary = "Gaussian weight perturbation against a measured baseline, K+1 evaluations (Jabri & Flower 1992)"
    plant_queries_per_step = "n_perturbations + 1 forward passes (each one query per physical layer)"


    def step(self, model, x, y, loss_fn):
        params = trainable_parameters(model)
        theta = get_vector(params)
        grad = torch.zeros_like(theta)
        try:
            base = plant_loss(model, x, y, loss_fn)
            for _ in range(self.n_perturbations):
                xi = devices.randn_like(theta, generator=self._generator)
                set_vector(params, theta + self.sigma * xi)
                grad += (plant_loss(model, x, y, loss_fn) - base) / self.sigma * xi
        finally:
            set_vector(params, theta)
        write_grad(params, grad / self.n_perturbations)
        return base

    def __repr__(self):
        return f"WeightPerturbation(n_perturbations={self.n_perturbations}, sigma={self.sigma})"


# ---- node perturbation ---------------------------------------------------------------------
def digital_nodes(model: nn.Module) -> list[nn.Module]:
    """Modules with their own trainable parameters outside any physical layer."""
    inside = set()
    for layer in physical_layers(model):
        inside.update(id(m) for m in layer.modules())
    return [m for m in model.modules() if id(m) not in inside
            and any(p.requires_grad for p in m.parameters(recurse=False))]


class NodePerturbation(_GaussianPerturbation):
    name = "node_perturbation"
    summary = "perturb digital layer outputs, per-sample credit, local weight update (Fiete & Seung 2006)"
    requirements = (NeedsDigitalModule(nn.Module, why="node perturbation trains digital layers only"),)
    plant_queries_per_step = "n_perturbations + 1 forward passes (each one query per physical layer)"


    def _parameters_of(self, model):
        return [p for m in digital_nodes(model) for p in m.parameters(recurse=False) if p.requires_grad]

    def step(self, model, x, y, loss_fn):
        nodes = digital_nodes(model)
        if not nodes:
            raise ValueError("node perturbation needs digital layers with trainable parameters (the map "
                             "from a node to a physical control is the unknown physics); use SPSA, "
                             "weight perturbation or MGD to train physical controls.")
        outputs: dict[int, torch.Tensor] = {}
        noise: dict[int, torch.Tensor] = {}
        mode = {"clean": True}

        def pre_hook(module, args):
            if mode["clean"]:
                return tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)
            return None

        def hook(module, args, output):
            if mode["clean"]:
                outputs[id(module)] = output
                return None
            xi = devices.randn_like(output, generator=self._generator)
            noise[id(module)] = xi
            return output + self.sigma * xi

        handles = [m.register_forward_pre_hook(pre_hook) for m in nodes]
        handles += [m.register_forward_hook(hook) for m in nodes]
        try:
            with executing(OnPlant()), torch.enable_grad():
                out = model(x)
                base = per_sample_losses(loss_fn, out.detach(), y)
            mode["clean"] = False
            deltas = {id(m): torch.zeros_like(outputs[id(m)]) for m in nodes}
            with executing(OnPlant()), torch.no_grad():
                for _ in range(self.n_perturbations):
                    losses = per_sample_losses(loss_fn, model(x), y)
                    credit = (losses - base) / self.sigma
                    for m in nodes:
                        xi = noise[id(m)]
                        deltas[id(m)] += credit.view(-1, *([1] * (xi.ndim - 1))) * xi
        finally:
            for h in handles:
                h.remove()
        batch = x.shape[0]
        tensors = [outputs[id(m)] for m in nodes]
        grads = [deltas[id(m)] / (self.n_perturbations * batch) for m in nodes]
        torch.autograd.backward(tensors, grads)
        return float(base.mean())

    def __repr__(self):
        return f"NodePerturbation(n_perturbations={self.n_perturbations}, sigma={self.sigma})"


__all__ = ["FiniteDifferences", "NodePerturbation", "SPSA", "WeightPerturbation", "ZerothOrderMethod",
           "digital_nodes", "get_vector", "per_sample_losses", "plant_loss", "set_vector", "trainable_parameters",
           "write_grad"]
