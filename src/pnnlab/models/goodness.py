"""Networks trained by layer-local goodness objectives (forward-forward, contrastive local learning;
the published PhyLL network, with the label inside the physics, is :class:`pnnlab.models.phyll.PhyLLNet`).

A :class:`GoodnessNet` is an ordinary ``nn.Module`` with an explicit list of blocks. The input is the
sample with its (candidate) label embedded, ``u = [f(x), s * onehot(c)]`` (Hinton 2022 overwrites the
first pixels; concatenating works for any feature count), where ``f`` is an optional fixed,
label-independent front end (a physical layer, as in the optical forward-forward network of
Oguz et al. 2023, which needs the optics once per sample). Block ``l`` maps the length-normalised
output of block ``l - 1`` to its activity ``h_l``; its *goodness* is the mean square activity
``G_l = mean(h_l^2)``. For classification the network scores every label,
``score_c = sum_l G_l(x, c)``, and ``forward(x)`` returns the ``(batch, n_classes)`` scores (so that
``evaluate`` and ``argmax`` work unchanged). All candidate labels go to the hardware in one query
per physical block (``batch * n_classes`` samples).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .._validation import check_int, check_positive


def goodness(h: torch.Tensor) -> torch.Tensor:
    """Mean square activity of each sample."""
    return h.reshape(h.shape[0], -1).square().mean(dim=1)


def normalise_length(h: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Scale each sample to unit root-mean-square, hiding the previous block's goodness (Hinton 2022)."""
    return h / (h.square().mean(dim=1, keepdim=True).sqrt() + eps)


class PhaseEncoder(nn.Module):
    """Fixed map of activities to SLM phases in radians, phi = scale * u (no trainable parameters)."""

    def __init__(self, scale_rad: float = 1.0) -> None:
        super().__init__()
        self.scale_rad = check_positive("scale_rad", scale_rad)

    def forward(self, u):
        return self.scale_rad * u


class Standardise(nn.Module):
    """Per-sample zero mean and unit standard deviation across features (no parameters): removes
    the source power and the speckle background of a camera image."""

    def forward(self, h):
        h = h - h.mean(dim=1, keepdim=True)
        return h / (h.std(dim=1, keepdim=True) + 1e-6)


class GoodnessNet(nn.Module):
    """Blocks trained by local goodness objectives; ``forward`` returns per-label scores."""

    def __init__(self, blocks: Sequence[nn.Module], *, n_classes: int, label_scale: float = 1.0,
                 front: nn.Module | None = None) -> None:
        super().__init__()
        if not blocks or not all(isinstance(b, nn.Module) for b in blocks):
            raise TypeError("blocks must be a non-empty sequence of nn.Module blocks.")
        if front is not None and not isinstance(front, nn.Module):
            raise TypeError(f"front must be an nn.Module (a fixed feature layer) or None, got {type(front).__name__}.")
        self.front = front
        self.blocks = nn.ModuleList(blocks)
        self.n_classes = check_int("n_classes", n_classes, minimum=2)
        self.label_scale = check_positive("label_scale", label_scale)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The label-independent front end (for example a fixed physical layer), applied once per
        sample before the label is embedded; identity when there is none."""
        return x if self.front is None else self.front(x)

    def embed(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        onehot = nn.functional.one_hot(labels, self.n_classes).to(x.dtype)
        return torch.cat([x, self.label_scale * onehot], dim=1)

    def block_inputs(self, u: torch.Tensor, index: int, previous: torch.Tensor | None) -> torch.Tensor:
        return u if index == 0 else normalise_length(previous)

    def activities(self, u: torch.Tensor) -> list[torch.Tensor]:
        """Activity of every block for embedded inputs ``u`` (no gradient between blocks)."""
        out, h = [], None
        for i, block in enumerate(self.blocks):
            h = block(self.block_inputs(u, i, None if h is None else h.detach()))
            out.append(h)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        x = self.features(x)
        labels = torch.arange(self.n_classes, device=x.device).repeat(batch)
        u = self.embed(x.repeat_interleave(self.n_classes, dim=0), labels)
        scores = sum(goodness(h) for h in self.activities(u))
        return scores.view(batch, self.n_classes)
