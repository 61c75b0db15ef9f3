"""Forward-forward training: Hinton, "The forward-forward algorithm: some preliminary
investigations", arXiv:2212.13345 (2022).

Works on a :class:`~pnnlab.models.goodness.GoodnessNet`. Positive data embed the correct label,
negative data a wrong label drawn at random. Each block l has its own objective on its goodness
``G_l = mean(h_l^2)``:

    L_l = mean_i [ softplus(a (theta - G_l(x_i, y_i))) + softplus(a (G_l(x_i, y'_i) - theta)) ]

(``theta`` the threshold, ``a`` a sharpness; Hinton's logistic ``p = sigma(G - theta)``). The input
of every block is detached and length-normalised, so each gradient is *local* to its block;
a physical block is only run forward, so its physics needs no model (Oguz et al., Optics Letters
48, 5249 (2023), doi:10.1364/OL.496884, use a multimode fibre as such a fixed block). Trainable
physical controls inside a block would need a derivative of the physics, so they are not trained
(freeze them; the blocks' digital layers learn).

Plant queries per step: one query per physical block with 2 x batch samples (positive and negative
passes sent together). Inference asks for every label: one query per physical block with
batch x n_classes samples. ``step`` returns the mean of the blocks' local losses (the task loss
function passed by ``train`` is not used for learning).
"""

from __future__ import annotations

import torch
from torch import nn

from .. import devices
from .._validation import check_positive, make_generator
from ..execution import OnPlant, executing
from ..layers import physical_layers
from ..models.goodness import GoodnessNet, goodness
from .base import Method, NeedsModel


class GoodnessMethod(Method):
    """Shared loop of layer-local positive/negative training on a GoodnessNet."""

    requirements = (NeedsModel(GoodnessNet, build="pnnlab.models.fibre_local.build_fibre_goodness_net"),)
    plant_queries_per_step = "1 query per physical block (2 x batch samples: positive and negative)"

    def __init__(self, *, seed: int = 0) -> None:
        self._generator = make_generator(seed)

    def queries_per_step(self, model) -> int:
        return len(physical_layers(model))

    def local_loss(self, g_pos: torch.Tensor, g_neg: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def negative_labels(self, y: torch.Tensor, n_classes: int) -> torch.Tensor:
        shift = devices.randint(1, n_classes, y.shape, generator=self._generator, device=y.device)
        return (y + shift) % n_classes

    def step(self, model, x, y, loss_fn):
        if not isinstance(model, GoodnessNet):
            raise TypeError(f"{type(self).__name__} trains a pnnlab.models.goodness.GoodnessNet (blocks with "
                            f"local goodness objectives), got {type(model).__name__}; build one with "
                            f"pnnlab.models.fibre_local.build_fibre_goodness_net.")
        batch = x.shape[0]
        labels = torch.cat([y, self.negative_labels(y, model.n_classes)])
        total, h = 0.0, None
        with executing(OnPlant()):
            with torch.no_grad():
                f = model.features(x)
            u = model.embed(torch.cat([f, f]), labels)
            for i, block in enumerate(model.blocks):
                h = block(model.block_inputs(u, i, None if h is None else h.detach()))
                g = goodness(h)
                loss = self.local_loss(g[:batch], g[batch:])
                if loss.requires_grad:
                    loss.backward()
                total += float(loss.detach())
        return total / len(model.blocks)


class ForwardForward(GoodnessMethod):
    name = "forward_forward"
    summary = "forward-forward: per-block goodness, positive vs negative (wrong-label) data (Hinton 2022)"

    def __init__(self, *, threshold: float = 2.0, sharpness: float = 1.0, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.threshold = check_positive("threshold", threshold)
        self.sharpness = check_positive("sharpness", sharpness)

    def local_loss(self, g_pos, g_neg):
        a, t = self.sharpness, self.threshold
        return (nn.functional.softplus(a * (t - g_pos)) + nn.functional.softplus(a * (g_neg - t))).mean()

    def __repr__(self):
        return f"ForwardForward(threshold={self.threshold}, sharpness={self.sharpness})"


__all__ = ["ForwardForward", "GoodnessMethod"]
