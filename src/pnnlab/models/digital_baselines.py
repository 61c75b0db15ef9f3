"""Fair digital baselines for the physical classifiers, and an honest count of trainable parameters.

A physical neural network's accuracy means little without the controls a referee asks for: a digital
network with the *same number of trainable parameters* (:func:`build_matched_mlp`), a *fixed random
feature map* of the same width in place of the physics with the same trainable read-out (built next
to each physical model, e.g. :func:`pnnlab.models.shg_classifier.build_shg_random_features`), and the
plain digital ceilings (logistic regression, a wide MLP) run by the benchmarks.

:func:`trainable_parameter_count` counts independent trainable numbers: a control constrained to be
symmetric (an n x n coupling matrix, parametrised as (J + J^T)/2) counts n (n + 1) / 2, not n^2.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from .._validation import check_int

__all__ = ["build_matched_mlp", "matched_hidden_width", "trainable_parameter_count"]


def trainable_parameter_count(model: nn.Module) -> int:
    """Independent trainable numbers of ``model``: every trainable parameter's size, except that a
    parameter behind the library's symmetric parametrisation (:class:`pnnlab.layers.Symmetric`)
    counts n (n + 1) / 2 for an n x n matrix."""
    from ..layers import Symmetric

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    symmetric: dict[int, int] = {}
    for module in model.modules():
        if not parametrize.is_parametrized(module):
            continue
        for plist in module.parametrizations.values():
            if any(isinstance(p, Symmetric) for p in plist):
                raw = plist.original
                n = raw.shape[-1]
                symmetric[id(raw)] = (raw.numel() // (n * n)) * n * (n + 1) // 2
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        total += symmetric.get(id(p), p.numel())
    return total


def matched_hidden_width(*, in_features: int, n_classes: int, parameters: int) -> int:
    """The hidden width h of an ``in_features -> h -> n_classes`` MLP (biases in both layers) whose
    h (in_features + 1 + n_classes) + n_classes trainable parameters come closest to ``parameters``
    (at least 1)."""
    in_features = check_int("in_features", in_features)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    parameters = check_int("parameters", parameters)
    per_unit = in_features + 1 + n_classes
    h = max(1, round((parameters - n_classes) / per_unit))
    return h


def build_matched_mlp(*, in_features: int, n_classes: int, parameters: int, seed: int = 0) -> nn.Sequential:
    """A digital ``in_features -> h -> n_classes`` network (tanh hidden units) with h chosen so that its
    trainable parameter count is as close as possible to ``parameters`` (pass the physical model's
    :func:`trainable_parameter_count`); the benchmark prints both counts. ``seed`` seeds the
    initialisation (PyTorch's default Linear initialisation, from a generator of its own)."""
    h = matched_hidden_width(in_features=in_features, n_classes=n_classes, parameters=parameters)
    seed = check_int("seed", seed, minimum=0)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(20_000 + seed)  # nn.Linear initialises from the global generator
        model = nn.Sequential(nn.Linear(in_features, h), nn.Tanh(), nn.Linear(h, n_classes))
    finally:
        torch.random.set_rng_state(state)
    return model
