"""A polariton-condensate lattice as a trained physical layer: the data written into the pump, the
per-site pump amplitudes trainable, the camera image read out by a digital linear layer.

Setting of Ballarini et al., Nano Lett. 20, 3506 (2020), doi:10.1021/acs.nanolett.0c00435 and Opala et
al., Phys. Rev. Applied 11, 064029 (2019), doi:10.1103/PhysRevApplied.11.064029 (inputs in the pump of a
condensate lattice, emission read by a camera, a trained linear read-out); here the pump's own part is
trainable too (PAT / in-silico / ideal), see benchmarks/bench_polariton_digits.py.
"""

from __future__ import annotations

from torch import nn

from .._validation import check_int, check_positive
from ..layers import PhysicalLayer
from ..plants.optics.fibre import Camera
from ..plants.polaritons import (Evolution, MaskEncoding, PolaritonCondensate, PolaritonMismatch, PumpLattice)

__all__ = ["build_polariton_classifier", "polariton_plant"]


def polariton_plant(*, in_features: int, sites: int = 32, duration_ps: float = 40.0, dt_ps: float = 0.5,
                    grid_step_um: float = 2.0, gain: float = 1.5, mismatch: PolaritonMismatch | str | None = None,
                    camera: Camera | str | None = None, seed: int = 0) -> PolaritonCondensate:
    """A 1D chain of ``sites`` condensates (4 um spacing, 4 um spots, 2 margin sites) with a random input
    mask of gain ``gain`` (units of P_th; the mask is drawn from ``seed``), evolved for ``duration_ps``.
    ``mismatch`` / ``camera`` None: the ideal sample and a noiseless camera."""
    sites = check_int("sites", sites)
    lattice = PumpLattice(shape=(sites,), spacing_um=4.0, spot_fwhm_um=4.0, grid_step_um=grid_step_um)
    return PolaritonCondensate(in_features=in_features, lattice=lattice,
                               evolution=Evolution(duration_ps=duration_ps, dt_ps=dt_ps),
                               encoding=MaskEncoding(gain=check_positive("gain", gain), seed=seed),
                               mismatch=mismatch if mismatch is not None else PolaritonMismatch(),
                               camera=camera if camera is not None else Camera.ideal(), seed=seed)


def build_polariton_classifier(*, in_features: int, n_classes: int, seed: int = 0, sites: int = 32,
                               duration_ps: float = 40.0, dt_ps: float = 0.5, grid_step_um: float = 2.0,
                               gain: float = 1.5, mismatch: PolaritonMismatch | str | None = None,
                               camera: Camera | str | None = None) -> nn.Sequential:
    """``PhysicalLayer(polariton chain, twin = nominal)`` -> ``nn.Linear(sites, n_classes)``. Trainable:
    the ``sites`` pump amplitudes (bounded in [0, 3] P_th) and the read-out; the plant's nominal twin is
    attached for PAT and in-silico training."""
    plant = polariton_plant(in_features=in_features, sites=sites, duration_ps=duration_ps, dt_ps=dt_ps,
                            grid_step_um=grid_step_um, gain=gain, mismatch=mismatch, camera=camera, seed=seed)
    readout = nn.Linear(plant.out_features, check_int("n_classes", n_classes, minimum=2))
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bound = 1.0 / plant.out_features ** 0.5
        readout.weight.uniform_(-bound, bound, generator=g)
        readout.bias.zero_()
    return nn.Sequential(PhysicalLayer(plant, twin=plant.nominal_twin()), readout)
