"""Twins learned from recorded plant queries: :class:`LearnedTwin`, a neural surrogate, and
:class:`ResidualTwin`, nominal physics plus a learned correction.

A learned twin is the differentiable model that in-silico training and physics-aware training (PAT)
need when no trustworthy physics exists: Wright et al., "Deep physical neural networks trained with
backpropagation", Nature 601, 549 (2022), doi:10.1038/s41586-021-04223-6, fit theirs (a neural network)
to 10^3-10^4 recorded input-output pairs of each device; Momeni et al., Science 382, 1297 (2023) fit a
small MLP to the measured pairs of their acoustic cavity (the ``phyll_acoustic`` data). A residual twin
keeps the nominal physics and learns only what it misses, which usually needs fewer queries.

Both take the controls as a mapping of tensors of the plant's control shapes, either one setting for
the whole batch (shape ``spec.shape``) or one per sample (shape ``(B, *spec.shape)``). Fit them with
:func:`pnnlab.twins.fit.fit_twin`, which calls :meth:`prepare` first (input/output normalisation from
the training split). Simplifications: a plain fully-connected network; no uncertainty estimate.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import nn

from .._validation import check_int
from .base import Twin

__all__ = ["LearnedTwin", "ResidualTwin", "flatten_controls"]


def flatten_controls(controls: Mapping[str, torch.Tensor], shapes: Mapping[str, tuple[int, ...]],
                     batch: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Concatenate the controls (in the order of ``shapes``) into a (batch, total) tensor; a control of
    exactly ``shapes[name]`` is shared by the batch, one of ``(batch, *shape)`` is per sample."""
    parts = []
    for name, shape in shapes.items():
        if name not in controls:
            raise KeyError(f"the twin expects a control {name!r} (shape {tuple(shape)}), got only "
                           f"{sorted(controls)}; pass every control the twin was built with.")
        value = controls[name]
        size = math.prod(shape)
        if tuple(value.shape) == tuple(shape):
            parts.append(value.reshape(1, size).expand(batch, size))
        elif tuple(value.shape) == (batch, *shape):
            parts.append(value.reshape(batch, size))
        else:
            raise ValueError(f"control {name!r} has shape {tuple(value.shape)}; expected {tuple(shape)} "
                             f"(shared by the batch) or {(batch, *shape)} (one per sample).")
    if not parts:
        return torch.empty(batch, 0, device=device)
    return torch.cat(parts, dim=1)


class LearnedTwin(Twin):
    """Neural surrogate y = MLP([x, flattened controls]) with fixed (buffer) input and output
    normalisation, set from data by :meth:`prepare`.

    Parameters
    ----------
    in_features, out_features: the plant's input and output widths.
    control_shapes: name -> shape of every control the plant takes (``{}`` for a control-free system
        such as the measured acoustic pairs); e.g. ``{k: s.shape for k, s in plant.control_specs().items()}``.
    hidden: widths of the hidden layers (default two layers of 64).
    activation: a ``torch.nn.Module`` class (default ``nn.SiLU``: smooth, so the twin's gradients are).
    zero_output: zero-initialise the output layer (the twin then starts by predicting the output mean;
        :class:`ResidualTwin` uses it so that it starts equal to its nominal twin).
    seed: seeds the weight initialisation.
    """

    def __init__(self, *, in_features: int, out_features: int,
                 control_shapes: Mapping[str, Sequence[int]] | None = None,
                 hidden: Sequence[int] = (64, 64), activation: type[nn.Module] = nn.SiLU,
                 zero_output: bool = False, seed: int = 0) -> None:
        super().__init__(in_features=check_int("in_features", in_features),
                         out_features=check_int("out_features", out_features))
        if control_shapes is None:
            control_shapes = {}
        if not isinstance(control_shapes, Mapping):
            raise TypeError(f"control_shapes must be a mapping name -> shape, got {type(control_shapes).__name__}; "
                            f"write {{k: s.shape for k, s in plant.control_specs().items()}}.")
        self.control_shapes = {str(k): tuple(int(d) for d in v) for k, v in control_shapes.items()}
        hidden = tuple(check_int("hidden[i]", h) for h in hidden)
        if not (isinstance(activation, type) and issubclass(activation, nn.Module)):
            raise TypeError(f"activation must be a torch.nn.Module class such as nn.SiLU, got {activation!r}.")
        n_in = self.in_features + sum(math.prod(s) for s in self.control_shapes.values())
        self.n_inputs_total = n_in
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(int(seed))
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h), activation()]
            width = h
        out = nn.Linear(width, self.out_features)
        if zero_output:
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)
        layers.append(out)
        torch.random.set_rng_state(generator_state)
        self.net = nn.Sequential(*layers).to(torch.float64)
        self.register_buffer("in_mean", torch.zeros(n_in, dtype=torch.float64))
        self.register_buffer("in_scale", torch.ones(n_in, dtype=torch.float64))
        self.register_buffer("out_mean", torch.zeros(self.out_features, dtype=torch.float64))
        self.register_buffer("out_scale", torch.ones(self.out_features, dtype=torch.float64))
        self.zero_output = bool(zero_output)
        #: True once :meth:`prepare` has set the normalisation from data (a refresh then warm-starts)
        self.prepared = False

    def features(self, x: torch.Tensor, controls: Mapping[str, torch.Tensor]) -> torch.Tensor:
        c = flatten_controls(controls, self.control_shapes, x.shape[0], x.device).to(torch.float64)
        return torch.cat([x.to(torch.float64), c], dim=1)

    def forward(self, x, controls):
        z = (self.features(x, controls) - self.in_mean) / self.in_scale
        return (self.net(z) * self.out_scale + self.out_mean).to(x.dtype)

    @torch.no_grad()
    def prepare(self, x: torch.Tensor, controls: Mapping[str, torch.Tensor], y: torch.Tensor) -> None:
        """Set the normalisation from training data: inputs to zero mean and unit spread (the spread
        floored at 10 % of the feature's mean magnitude and at 1e-3), outputs to the
        training targets' mean and standard deviation (a zero-initialised output keeps predicting 0, not
        the mean, so that a residual correction starts at exactly zero)."""
        f = self.features(x, controls)
        self.in_mean.copy_(f.mean(0))
        spread = f.std(0) if f.shape[0] > 1 else torch.zeros_like(f[0])
        # a feature that barely varies in the data (a control held nearly fixed, as during training) is
        # not blown up: its scale is floored at 10 % of its magnitude (and 1e-3), so a later move of
        # the control stays an O(1) change of the network's input
        self.in_scale.copy_(torch.maximum(spread, 0.1 * f.mean(0).abs()).clamp_min(1e-3))
        y = y.to(torch.float64)
        if not self.zero_output:
            self.out_mean.copy_(y.mean(0))
        self.out_scale.copy_(y.std(0).clamp_min(1e-12) if y.shape[0] > 1 else torch.ones_like(y[0]))
        self.prepared = True


class ResidualTwin(Twin):
    """Nominal physics plus a learned correction: y = nominal(x, c) + correction(x, c).

    ``nominal``: any :class:`Twin` (e.g. ``plant.nominal_twin()``, or a :class:`CalibratedTwin`; its
    own parameters, if any, are fitted too). ``correction``: a :class:`LearnedTwin` with
    ``zero_output=True`` (checked), so that the residual twin starts exactly equal to the nominal one.
    Build one with :meth:`around`.
    """

    def __init__(self, nominal: Twin, correction: LearnedTwin) -> None:
        if not isinstance(nominal, Twin):
            raise TypeError(f"nominal must be a pnnlab Twin, got {type(nominal).__name__}; pass plant.nominal_twin().")
        if not isinstance(correction, LearnedTwin):
            raise TypeError(f"correction must be a LearnedTwin, got {type(correction).__name__}.")
        if not correction.zero_output:
            raise ValueError("correction must be built with zero_output=True so that the residual twin starts "
                             "equal to its nominal twin; use ResidualTwin.around(nominal, control_shapes=...).")
        if (correction.in_features, correction.out_features) != (nominal.in_features, nominal.out_features):
            raise ValueError(f"correction maps {correction.in_features} -> {correction.out_features} but the "
                             f"nominal twin maps {nominal.in_features} -> {nominal.out_features}; build both "
                             f"for the same plant.")
        super().__init__(in_features=nominal.in_features, out_features=nominal.out_features)
        self.nominal = nominal
        self.correction = correction

    @classmethod
    def around(cls, nominal: Twin, *, control_shapes: Mapping[str, Sequence[int]] | None = None,
               hidden: Sequence[int] = (64, 64), seed: int = 0) -> "ResidualTwin":
        return cls(nominal, LearnedTwin(in_features=nominal.in_features, out_features=nominal.out_features,
                                        control_shapes=control_shapes, hidden=hidden, zero_output=True,
                                        seed=seed))

    def forward(self, x, controls):
        return self.nominal(x, controls) + self.correction(x, controls)

    @property
    def prepared(self) -> bool:
        """True once :meth:`prepare` has normalised the correction on data."""
        return self.correction.prepared

    @torch.no_grad()
    def prepare(self, x, controls, y) -> None:
        """Normalise the correction on the residuals y - nominal(x, c) of the training data."""
        if hasattr(self.nominal, "prepare"):
            self.nominal.prepare(x, controls, y)
        self.correction.prepare(x, controls, y - self.nominal(x, controls))
