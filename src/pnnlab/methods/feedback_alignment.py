"""Feedback alignment (FA), direct feedback alignment (DFA) and augmented DFA.

All three replace the transport of the forward weights in the backward pass by *fixed random*
matrices, so no weight symmetry is needed. Forward passes always run on the plant; accuracy is
measured on the plant.

Model-based or model-free: FA and DFA carry the error *through* a physical layer with the twin's
Jacobian (physics-aware execution), so on a physical model they are **model-based** (they need, and
are only as good as, the twin PAT would use). Augmented DFA never differentiates a physical segment:
it is **model-free** (no twin), and physical controls inside its segments are not trained.

* :class:`FeedbackAlignment`: Lillicrap, Cownden, Tweed & Akerman, Nat. Commun. 7, 13276 (2016),
  doi:10.1038/ncomms13276. For every ``nn.Linear`` layer ``a = W h + b`` the backward pass sends
  ``delta_h = B^T delta_a`` with a fixed random ``B`` (shape of W) instead of ``W^T delta_a``;
  weight gradients stay local, ``dW = delta_a h^T``. Physical layers pass the error backwards
  through their twin's Jacobian at the measured activations (physics-aware execution), so FA needs
  a twin on each physical layer. The forward weights come to *align* with ``B`` and the angle
  between the FA update and the true gradient falls below 90 degrees during training.
* :class:`DirectFeedbackAlignment`: Nokland, NeurIPS 29 (2016), arXiv:1609.01596. For a sequential
  model ``h_l = f_l(W_l h_{l-1})`` with output error ``e = dL/dy``, each hidden layer receives
  ``delta a_l = (B_l e) * f_l'(a_l)`` directly, with a fixed random ``B_l``; the last layer gets the
  true gradient. Here ``B_l e`` is injected at the *output* of the segment ``f_l`` (everything
  between two ``nn.Linear`` s) and back-propagated through it, which is the formula above for an
  elementwise ``f_l`` and its Jacobian-transpose generalisation otherwise; for physical layers the
  Jacobian is the twin's (physics-aware), so DFA needs a twin where physics sits inside a segment.
* :class:`AugmentedDFA`: Nakajima, Inoue, Tanaka, Kuniyoshi, Hashimoto & Nakajima, Nat. Commun.
  13, 7847 (2022), doi:10.1038/s41467-022-35216-2. The derivative ``f'(a)`` is replaced by an
  arbitrary function ``g(a)``: ``delta a_l = (B_l e) * g(a_l)`` with ``B_l`` projecting to the
  width of ``a_l``. No derivative and no model of the physical segment is needed (no twin);
  physical controls inside a segment are therefore not trained (they stay as they are).

Queries per step: one forward pass of the model on the plant (one query per physical layer).
Model structure: FA works on any model built from ``nn.Linear`` and physical layers; DFA and
augmented DFA need an ``nn.Sequential`` whose hidden layers are ``nn.Linear`` s. Modules before the
first ``nn.Linear`` (for example a fixed physical input layer) are run but not trained.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from .. import devices
from .._validation import make_generator
from ..execution import OnPlant, PhysicsAware, executing
from ..layers import physical_layers
from .base import Method, NeedsDigitalModule, NeedsModel, NeedsTwin


class _FeedbackLinear(torch.autograd.Function):
    """y = x W^T + b; backward sends grad_x = grad_y B (B fixed, random) instead of grad_y W."""

    @staticmethod
    def forward(ctx, x, weight, bias, feedback):
        ctx.save_for_backward(x, feedback)
        ctx.has_bias = bias is not None
        out = x @ weight.T
        return out + bias if bias is not None else out

    @staticmethod
    def backward(ctx, grad_out):
        x, feedback = ctx.saved_tensors
        grad_x = grad_out @ feedback
        g2 = grad_out.reshape(-1, grad_out.shape[-1])
        grad_w = g2.T @ x.reshape(-1, x.shape[-1])
        grad_b = g2.sum(0) if ctx.has_bias else None
        return grad_x, grad_w, grad_b, None


class _RandomFeedback:
    """Fixed random matrices, one per key, drawn once from the method's generator."""

    def __init__(self, seed: int) -> None:
        self._generator = make_generator(seed)
        self._matrices: dict = {}

    def get(self, key, shape: tuple[int, int], fan: int, like: torch.Tensor) -> torch.Tensor:
        """The matrix for ``key`` on ``like``'s device and dtype (drawn once, on the generator's device)."""
        matrix = self._matrices.get(key)
        if matrix is None or tuple(matrix.shape) != shape:
            matrix = self._matrices[key] = devices.randn(shape, generator=self._generator,
                                                         device=self._generator.device) / math.sqrt(fan)
        if matrix.device != like.device or matrix.dtype != like.dtype:
            matrix = self._matrices[key] = matrix.to(like)
        return matrix


def _execution(model):
    return PhysicsAware() if physical_layers(model) else OnPlant()


class FeedbackAlignment(Method):
    name = "fa"
    summary = ("feedback alignment (model-based on physics: twin Jacobian): fixed random feedback weights "
               "replace W^T in the backward pass (Lillicrap 2016)")
    requirements = (NeedsTwin(), NeedsDigitalModule(nn.Linear, why="whose W^T the random feedback replaces"))
    plant_queries_per_step = "1 forward query per physical layer per batch"

    def __init__(self, *, seed: int = 0) -> None:
        self._feedback = _RandomFeedback(seed)

    def queries_per_step(self, model) -> int:
        return len(physical_layers(model))

    def feedback_matrix(self, linear: nn.Linear) -> torch.Tensor:
        """The fixed random matrix B used in place of ``linear.weight`` in the backward pass."""
        return self._feedback.get(id(linear), tuple(linear.weight.shape), linear.in_features, linear.weight)

    def step(self, model, x, y, loss_fn):
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]

        def hook(module, args, output):
            return _FeedbackLinear.apply(args[0], module.weight, module.bias, self.feedback_matrix(module))

        handles = [m.register_forward_hook(hook) for m in linears]
        try:
            with executing(_execution(model)):
                loss = loss_fn(model(x), y)
        finally:
            for h in handles:
                h.remove()
        loss.backward()
        return float(loss.detach())


def _sequential_parts(model: nn.Module, method: str):
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"{method} needs an nn.Sequential model (hidden layers nn.Linear, nonlinear or "
                        f"physical segments between them), got {type(model).__name__}; build the model "
                        f"as nn.Sequential(...) or use FeedbackAlignment.")
    children = list(model)
    idx = [i for i, m in enumerate(children) if isinstance(m, nn.Linear)]
    if not idx:
        raise ValueError(f"{method} needs at least one nn.Linear layer in the nn.Sequential model; "
                         f"for models of physical layers only use SPSA, MGD or CMA-ES.")
    return children, idx


class _DirectFeedbackBase(Method):
    plant_queries_per_step = "1 forward query per physical layer per batch"

    def __init__(self, *, seed: int = 0) -> None:
        self._feedback = _RandomFeedback(seed)

    def queries_per_step(self, model) -> int:
        return len(physical_layers(model))

    def _project(self, key, error: torch.Tensor, width: int) -> torch.Tensor:
        b = self._feedback.get(key, (width, error.shape[1]), error.shape[1], error)
        return error @ b.T

    def step(self, model, x, y, loss_fn):
        children, idx = _sequential_parts(model, type(self).__name__)
        execution = self._segment_execution(model)
        h = x
        with torch.no_grad(), executing(OnPlant()):
            for m in children[:idx[0]]:
                h = m(h)
        hidden = []
        for n, i in enumerate(idx[:-1]):
            a = children[i](h.detach())
            segment = children[i + 1: idx[n + 1]]
            h = self._run_segment(segment, a, execution)
            hidden.append((i, a, h))
        with executing(execution):
            out = children[idx[-1]](h.detach())
            for m in children[idx[-1] + 1:]:
                out = m(out)
        loss = loss_fn(out, y)
        error, = torch.autograd.grad(loss, out, retain_graph=True)
        loss.backward()
        error = error.detach().reshape(error.shape[0], -1)
        for i, a, h_out in hidden:
            self._inject(i, a, h_out, error)
        return float(loss.detach())


class DirectFeedbackAlignment(_DirectFeedbackBase):
    name = "dfa"
    summary = ("direct feedback alignment (model-based on physics: twin Jacobian): output error sent by fixed "
               "random matrices to every layer (Nokland 2016)")
    requirements = (NeedsTwin(), NeedsModel(nn.Sequential, build="nn.Sequential(...)"), NeedsDigitalModule(nn.Linear))

    def _segment_execution(self, model):
        return _execution(model)

    def _run_segment(self, segment, a, execution):
        with executing(execution):
            h = a
            for m in segment:
                h = m(h)
        return h

    def _inject(self, i, a, h_out, error):
        if not h_out.requires_grad:
            return
        delta = self._project(("dfa", i), error, h_out.reshape(h_out.shape[0], -1).shape[1])
        torch.autograd.backward(h_out, delta.reshape(h_out.shape))


class AugmentedDFA(_DirectFeedbackBase):
    name = "aug_dfa"
    summary = ("augmented DFA (model-free): random error projection times an arbitrary g(a), no model of the "
               "physics; physical controls not trained (Nakajima 2022)")
    requirements = (NeedsModel(nn.Sequential, build="nn.Sequential(...)"), NeedsDigitalModule(nn.Linear))

    def __init__(self, *, derivative: Callable[[torch.Tensor], torch.Tensor] = torch.cos, seed: int = 0) -> None:
        if not callable(derivative):
            raise TypeError(f"derivative must be a function of the pre-activation such as torch.cos, "
                            f"got {type(derivative).__name__}.")
        super().__init__(seed=seed)
        self.derivative = derivative

    def _segment_execution(self, model):
        return OnPlant()

    def _run_segment(self, segment, a, execution):
        with torch.no_grad(), executing(execution):
            h = a.detach()
            for m in segment:
                h = m(h)
        return h

    def _inject(self, i, a, h_out, error):
        delta = self._project(("aug", i), error, a.reshape(a.shape[0], -1).shape[1]).reshape(a.shape)
        torch.autograd.backward(a, delta * self.derivative(a.detach()))

    def __repr__(self):
        return f"AugmentedDFA(derivative={getattr(self.derivative, '__name__', self.derivative)!r})"


__all__ = ["AugmentedDFA", "DirectFeedbackAlignment", "FeedbackAlignment"]
