"""Per-sample controls for a twin that takes one control setting per call: :class:`GroupedControls`.

Recorded data give every sample the controls it was measured with (``(N, *shape)``, see
:func:`pnnlab.twins.fit_twin`), but some twins, like the plants they model, take a single setting for a
whole batch (the coupled-oscillator twins integrate one coupling matrix). ``GroupedControls(twin,
control_shapes=...)`` groups the samples whose controls are identical (one group per recorded query) and
calls the wrapped twin once per group; a batch with one shared setting is passed straight through.
Gradients flow to the twin's own parameters (e.g. the constants of a :class:`CalibratedTwin` wrapped
around it) and to the controls.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch

from .base import Twin

__all__ = ["GroupedControls"]


class GroupedControls(Twin):
    """``twin`` evaluated group by group when the controls are given per sample.

    ``control_shapes``: name -> shape of each control (``{k: s.shape for k, s in plant.control_specs().items()}``).
    Calibrate a constant of the wrapped twin through the path ``"twin.<name>"``, e.g.
    ``CalibratedTwin(GroupedControls(design, control_shapes=...), constants=["twin.extra_coupling"])``.
    The groups are evaluated in one ``torch.func.vmap`` call, each padded to the largest group by repeating
    its own samples (the padding is computed and dropped); if the twin cannot be vmapped, one call per
    distinct setting.
    """

    def __init__(self, twin: Twin, *, control_shapes: Mapping[str, Sequence[int]]) -> None:
        if not isinstance(twin, Twin):
            raise TypeError(f"twin must be a pnnlab Twin, got {type(twin).__name__}; pass e.g. plant.nominal_twin().")
        if not isinstance(control_shapes, Mapping) or not control_shapes:
            raise ValueError(f"control_shapes must be a non-empty mapping name -> shape, got {control_shapes!r}; "
                             f"write {{k: s.shape for k, s in plant.control_specs().items()}}.")
        super().__init__(in_features=twin.in_features, out_features=twin.out_features)
        self.twin = twin
        self.control_shapes = {k: tuple(int(d) for d in v) for k, v in control_shapes.items()}

    def forward(self, x, controls):
        batch = x.shape[0]
        shared = all(tuple(controls[k].shape) == shape for k, shape in self.control_shapes.items())
        if shared:
            return self.twin(x, controls)
        for k, shape in self.control_shapes.items():
            if tuple(controls[k].shape) != (batch, *shape):
                raise ValueError(f"control {k!r} has shape {tuple(controls[k].shape)}; expected {shape} (shared) "
                                 f"or {(batch, *shape)} (one per sample), the same form for every control.")
        flat = torch.cat([controls[k].detach().reshape(batch, -1) for k in self.control_shapes], dim=1)
        _, inverse = torch.unique(flat, dim=0, return_inverse=True)
        groups = [(inverse == g).nonzero().squeeze(1) for g in torch.unique(inverse)]
        order = torch.cat(groups)
        if len(groups) > 1:
            # one vectorised call over the groups, each padded to the largest by repeating its samples
            # (the padding is computed and dropped): fit_twin's shuffled batches mix many queries
            size = max(len(idx) for idx in groups)
            lengths = torch.tensor([len(idx) for idx in groups], device=x.device)
            index = torch.stack([idx[torch.arange(size, device=x.device) % len(idx)] for idx in groups])  # (G, size)
            cs = {k: controls[k][index[:, 0]] for k in self.control_shapes}
            try:
                out = torch.func.vmap(lambda xg, cg: self.twin(xg, cg))(x[index], cs)
            except RuntimeError:  # the twin does something vmap cannot batch: fall back to the loop
                out = None
            if out is not None:
                valid = torch.arange(size, device=x.device)[None, :] < lengths[:, None]
                return out[valid][torch.argsort(order)]
        parts = [self.twin(x[idx], {k: controls[k][idx[0]] for k in self.control_shapes}) for idx in groups]
        return torch.cat(parts)[torch.argsort(order)]
