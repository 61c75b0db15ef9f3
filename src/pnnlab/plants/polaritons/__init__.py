"""Exciton-polariton condensates: the driven-dissipative GPE with a reservoir (:mod:`.dgpe`) and a
lattice plant with an SLM pump and a camera (:mod:`.condensate`). See docs/substrates/polaritons.md."""

from .condensate import (CAMERA_PRESETS, LAB_CAMERA, MISMATCH_PRESETS, POLARITON_COST, DirectEncoding, Evolution, MaskEncoding, PolaritonCondensate,
                         PolaritonMismatch, PolaritonTwin, PumpLattice, camera_from, disorder_potential,
                         mismatch_from)
from .dgpe import HBAR_MEV_PS, PolaritonParameters, evolve, kinetic_phase

__all__ = ["PolaritonCondensate", "PolaritonTwin", "PolaritonMismatch", "PumpLattice", "Evolution",
           "DirectEncoding", "MaskEncoding", "PolaritonParameters", "evolve", "kinetic_phase",
           "disorder_potential", "HBAR_MEV_PS", "POLARITON_COST", "LAB_CAMERA", "MISMATCH_PRESETS",
           "CAMERA_PRESETS", "mismatch_from", "camera_from"]
