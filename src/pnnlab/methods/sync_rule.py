"""The synchronisation learning rule of Romera et al. (2018) for coupled spin-torque nano-oscillators.

M. Romera et al., "Vowel recognition with four coupled spin-torque nano-oscillators", Nature 563, 230-234
(2018), doi:10.1038/s41586-018-0632-y. The network is trained "by tuning their frequencies according to an
automatic real-time learning rule": each training vowel is presented (the two sources at its formant
frequencies), the synchronisation pattern is measured, compared with the vowel's target pattern, and the
DC current of every oscillator whose state is wrong is changed so that its frequency moves toward the
source it should follow, or away from the source it should not follow.

As implemented here (our reading; step sizes are ours), for a batch, with the model's code book giving the
target pattern T_k of class k (which oscillators should lock to A, which to B; all other pairs unlocked; where a
look-up code gives a class several patterns, the one nearest the measurement, ``SyncReadout.targets``):

* measure the frequencies f_i of all oscillators once for the batch (one plant query);
* for every sample n and every (oscillator i, source d) whose lock state is wrong (locked: |f_i - f_d| <
  ``tolerance_ghz``, 1 MHz as in :func:`~pnnlab.plants.spintronics.synchronisation_pattern`):

  - should lock but does not:  df_i += lr * (f_d - f_i^design)
  - locks but should not:      df_i += repel_ghz * sign(f_i^design - f_d)

  where f_i^design is the oscillator's design free-running frequency at its present current. The measured
  frequency cannot give the direction: a locked oscillator measures f_d itself, and near the edge of the
  locking band a strongly non-isochronous oscillator (nu ~ 10) is pulled, its power and so its frequency
  shifted by the drive, so its measured frequency can sit on the far side of the source from its free-running
  one (moving the current by the measured error then walks it out of the band);

* average df_i over the batch and convert it into a current change with the design tunability,
  dI_i = df_i / (df/dI)(I_i), clipped to the physical current range.

It updates the currents itself (no gradient) and uses no model of the physics beyond the design frequency
curve f(I) (the tunability that a lab measures once per device). The returned loss is the model's
cross-entropy on the same measurement (no extra query).
"""

from __future__ import annotations

import torch

from .._validation import check_positive
from .base import Method


class SynchronisationRule(Method):
    name = "stno_sync_rule"
    summary = ("Romera et al. 2018: shift each STNO's DC current toward the source it should lock to (away from "
               "one it should not), from measured synchronisation patterns")
    plant_queries_per_step = "1 forward query per batch"
    updates_parameters = True

    def __init__(self, *, lr: float = 0.3, repel_ghz: float = 2e-3, tolerance_ghz: float = 1e-3) -> None:
        self.lr = check_positive("lr", lr)
        self.repel_ghz = check_positive("repel_ghz", repel_ghz)
        self.tolerance_ghz = check_positive("tolerance_ghz", tolerance_ghz)

    @classmethod
    def missing_for(cls, model):  # the model as a whole must be an STNOClassifier (imported lazily)
        from ..models.stno_classifier import STNOClassifier
        if isinstance(model, STNOClassifier):
            return []
        return [f"the model needs to be a STNOClassifier (got {type(model).__name__}); build one with "
                f"pnnlab.models.stno_classifier.build_stno_classifier(...)"]

    def step(self, model, x, y, loss_fn):
        layer = model.physical
        plant = layer.plant
        drives = model.drives(x).detach()
        current = layer.control_values()["current"].detach()
        with torch.no_grad():
            freq = plant(drives, {"current": current})
            locked = (freq.unsqueeze(2) - drives.unsqueeze(1)).abs() < self.tolerance_ghz  # (B, N, D)
            target = model.readout.targets(freq, drives, y).to(locked.device)              # (B, N, D)
            n = freq.shape[1]
            design = plant.design_frequency_ghz(current.double()).to(freq.dtype)          # (N,)
            toward = (drives.unsqueeze(1) - design.view(1, n, 1)) * self.lr                # (B, N, D)
            away = self.repel_ghz * torch.sign(design.view(1, n, 1) - drives.unsqueeze(1))
            df = torch.where(target & ~locked, toward, torch.zeros_like(toward))
            df = df + torch.where(~target & locked, away.expand_as(toward), torch.zeros_like(toward))
            df = df.sum(dim=2).mean(dim=0)
            new = current + df / plant.tunability_ghz_per_mA(current.double()).to(df.dtype)
            low, high = plant.current_range_mA
            new = new.clamp(low + 1e-4 * (high - low), high - 1e-4 * (high - low))
            loss = loss_fn(model.readout(freq, drives), y)
            setattr(layer.controls, "current", new.to(current.dtype))  # float64 inputs keep a float32 control
        return float(loss)

    def __repr__(self):
        return f"SynchronisationRule(lr={self.lr}, repel_ghz={self.repel_ghz}, tolerance_ghz={self.tolerance_ghz})"
