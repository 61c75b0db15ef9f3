"""Model builders around the multimode-fibre plant for the model-free methods.

* :func:`build_fibre_mlp`: ``Linear(d, k) -> fibre (k SLM input pixels, trainable control pixels)
  -> per-sample standardisation -> Linear(camera pixels, n_classes)``. An ``nn.Sequential`` on which every
  gradient estimator of :mod:`pnnlab.methods` runs (PAT with the crude twin, FA, DFA, augmented DFA,
  SPSA, finite differences, weight/node perturbation, MGD, CMA-ES).
* :func:`build_fibre_phyll_net`: the published PhyLL architecture (Momeni et al., Science 382, 1297
  (2023)) with a multimode fibre as each block's physical system: the label-embedded input is shown
  on the SLM, the camera image (standardised per sample) is concatenated with the block input
  (``[Phi(h), h]``, the skip of the authors' acoustic and microwave variants) and fed to a trainable
  ``Linear``; cosine goodness against a fixed random unit vector (:class:`~pnnlab.models.phyll.PhyLLNet`).
* :func:`build_fibre_goodness_net`: a :class:`~pnnlab.models.goodness.GoodnessNet` whose blocks are
  ``phase encoding -> fibre (frozen controls) -> per-sample standardisation -> Linear -> ReLU``, for
  forward-forward and contrastive local learning (Oguz et al. 2023); the label is embedded after the
  fibre front end.

The fibre stands in for the authors' physical systems (their acoustic and microwave cavities, their
fibre's measured transmission matrix); its controls are frozen in the local-learning builders.
"""

from __future__ import annotations

import torch
from torch import nn

from .._validation import check_int, check_positive
from ..layers import PhysicalLayer
from ..plants.optics.fibre import SLM, Camera, FibrePlant, TransmissionDrift
from .goodness import GoodnessNet, PhaseEncoder, Standardise
from .phyll import PhyLLNet, build_phyll_net


def _fibre(in_features, out_features, n_modes, slm, camera, drift, kerr_phase_rad, seed):
    return FibrePlant(in_features=in_features, out_features=out_features,
                      n_modes=max(n_modes, in_features + 1), slm=slm, camera=camera, drift=drift,
                      kerr_phase_rad=kerr_phase_rad, seed=seed)


def build_fibre_mlp(*, in_features: int, n_classes: int, encoder_width: int = 12, camera_pixels: int = 16,
                    n_modes: int = 128, slm: SLM = SLM(), camera: Camera = Camera(),
                    drift: TransmissionDrift | None = None, kerr_phase_rad: float = 0.0,
                    with_twin: bool = True, seed: int = 0) -> nn.Sequential:
    """Digital encoder -> fibre with trainable SLM control phases -> digital linear read-out."""
    in_features = check_int("in_features", in_features)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    encoder_width = check_int("encoder_width", encoder_width)
    camera_pixels = check_int("camera_pixels", camera_pixels)
    torch_gen = torch.Generator().manual_seed(seed)
    plant = _fibre(encoder_width, camera_pixels, n_modes, slm, camera, drift, kerr_phase_rad, seed)
    encoder = nn.Linear(in_features, encoder_width)
    readout = nn.Linear(camera_pixels, n_classes)
    with torch.no_grad():
        for layer in (encoder, readout):
            bound = 1.0 / layer.in_features ** 0.5
            layer.weight.uniform_(-bound, bound, generator=torch_gen)
            layer.bias.uniform_(-bound, bound, generator=torch_gen)
    physical = PhysicalLayer(plant, twin=plant.nominal_twin() if with_twin else None)
    return nn.Sequential(encoder, physical, Standardise(), readout)


def build_fibre_goodness_net(*, in_features: int, n_classes: int, n_blocks: int = 1, hidden: int = 64,
                             camera_pixels: int = 256, n_modes: int = 128, phase_scale_rad: float = 1.0,
                             label_scale: float = 1.0, slm: SLM = SLM(), camera: Camera = Camera(),
                             drift: TransmissionDrift | None = None, kerr_phase_rad: float = 0.0,
                             seed: int = 0) -> GoodnessNet:
    """Fixed fibre transforms + trainable digital layers, for PhyLL and forward-forward.

    The input goes through a fibre front end (phase encoding -> fibre -> per-sample standardisation) once
    per sample; the label is embedded next to the camera image and block 1 is
    ``Linear(camera_pixels + n_classes, hidden) -> ReLU``. Every further block is a physical layer
    again, ``phase encoding -> fibre -> per-sample standardisation -> Linear(camera_pixels, hidden) -> ReLU``.
    Trainable parameters: the digital ``Linear`` layers only; the fibres' control phases are frozen
    (``requires_grad=False``)."""
    in_features = check_int("in_features", in_features)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    n_blocks = check_int("n_blocks", n_blocks)
    hidden = check_int("hidden", hidden)
    camera_pixels = check_int("camera_pixels", camera_pixels)
    check_positive("phase_scale_rad", phase_scale_rad)
    torch_gen = torch.Generator().manual_seed(seed)

    def transform(width, index):
        plant = _fibre(width, camera_pixels, n_modes, slm, camera, drift, kerr_phase_rad, seed + 101 * index)
        physical = PhysicalLayer(plant, twin=plant.nominal_twin())
        for p in physical.parameters():
            p.requires_grad_(False)
        return nn.Sequential(PhaseEncoder(phase_scale_rad), physical, Standardise())

    def linear(width):
        layer = nn.Linear(width, hidden)
        with torch.no_grad():
            bound = 1.0 / width ** 0.5
            layer.weight.uniform_(-bound, bound, generator=torch_gen)
            layer.bias.zero_()
        return layer

    front = transform(in_features, 0)
    blocks = [nn.Sequential(linear(camera_pixels + n_classes), nn.ReLU())]
    for index in range(1, n_blocks):
        blocks.append(nn.Sequential(transform(hidden, index), linear(camera_pixels), nn.ReLU()))
    return GoodnessNet(blocks, n_classes=n_classes, label_scale=label_scale, front=front)


class RMSPhaseEncoder(nn.Module):
    """SLM phases ``phi = scale_rad * h / rms(h)`` per sample (no parameters). The authors' acoustic
    layer normalises its drive, ``|h| / ||h||`` (``Acoustic/acoustics_pnn.py`` l. 174), because an
    amplitude is non-negative; a phase-only SLM takes signed values, so only the scale is removed."""

    def __init__(self, scale_rad: float = 1.0) -> None:
        super().__init__()
        self.scale_rad = check_positive("scale_rad", scale_rad)

    def forward(self, h):
        return self.scale_rad * h / (h.square().mean(dim=1, keepdim=True).sqrt() + 1e-6)


def fibre_physics(*, camera_pixels: int = 256, n_modes: int = 128, phase_scale_rad: float = 1.0,
                  slm: SLM = SLM(), camera: Camera = Camera(), drift: TransmissionDrift | None = None,
                  kerr_phase_rad: float = 0.0, seed: int = 0):
    """A factory ``(width_in, index) -> fixed fibre block`` for :func:`~pnnlab.models.phyll.build_phyll_net`:
    ``RMSPhaseEncoder -> PhysicalLayer(FibrePlant, frozen controls) -> Standardise`` with
    ``camera_pixels`` outputs; block ``index`` gets its own fibre (seed ``seed + 101 index``)."""
    camera_pixels = check_int("camera_pixels", camera_pixels)
    check_positive("phase_scale_rad", phase_scale_rad)

    def make(width: int, index: int) -> nn.Module:
        plant = _fibre(width, camera_pixels, n_modes, slm, camera, drift, kerr_phase_rad, seed + 101 * index)
        physical = PhysicalLayer(plant, twin=None)
        for p in physical.parameters():
            p.requires_grad_(False)
        return nn.Sequential(RMSPhaseEncoder(phase_scale_rad), physical, Standardise())

    return make


def build_fibre_phyll_net(*, in_features: int, n_classes: int, n_blocks: int = 2, hidden: int = 64,
                          camera_pixels: int = 256, n_modes: int = 128, phase_scale_rad: float = 1.0,
                          skip: bool = True, label_value: float | None = None, slm: SLM = SLM(),
                          camera: Camera = Camera(), drift: TransmissionDrift | None = None,
                          kerr_phase_rad: float = 0.0, seed: int = 0) -> PhyLLNet:
    """PhyLL blocks ``[fibre(h), h] -> Linear(camera_pixels + width(h), hidden)`` (Momeni 2023), the
    fibre's controls frozen and no twin attached (PhyLL needs none). Trainable parameters: the
    ``Linear`` layers only, ``sum_l (camera_pixels + width_l + 1) hidden`` with ``skip``."""
    physics = fibre_physics(camera_pixels=camera_pixels, n_modes=n_modes, phase_scale_rad=phase_scale_rad,
                            slm=slm, camera=camera, drift=drift, kerr_phase_rad=kerr_phase_rad, seed=seed)
    return build_phyll_net(in_features=in_features, n_classes=n_classes, physics=physics,
                           physical_width=camera_pixels, n_blocks=n_blocks, hidden=hidden, skip=skip,
                           label_value=label_value, seed=seed)


def conformance_phyll():
    """(model, x, y) for the conformance check of the published PhyLL."""
    model = build_fibre_phyll_net(in_features=5, n_classes=3, hidden=8, camera_pixels=12, n_modes=16)
    gen = torch.Generator().manual_seed(0)
    return model, torch.randn(8, 5, generator=gen), torch.randint(0, 3, (8,), generator=gen)


def conformance_mlp():
    """(model, x, y) for the conformance check of FA / DFA / augmented DFA / node perturbation."""
    model = build_fibre_mlp(in_features=5, n_classes=3, encoder_width=4, camera_pixels=6, n_modes=12)
    gen = torch.Generator().manual_seed(0)
    return model, torch.randn(8, 5, generator=gen), torch.randint(0, 3, (8,), generator=gen)


def conformance_goodness():
    """(model, x, y) for the conformance check of forward-forward and contrastive local learning."""
    model = build_fibre_goodness_net(in_features=5, n_classes=3, hidden=8, camera_pixels=12, n_modes=16)
    gen = torch.Generator().manual_seed(0)
    return model, torch.randn(8, 5, generator=gen), torch.randint(0, 3, (8,), generator=gen)
