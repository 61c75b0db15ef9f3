"""The twins of the SHG plant (:class:`~pnnlab.plants.optics.shg.SHGPlant`): :class:`SHGTwin`, the
design physics (no dispersion, ideal shaper of nominal resolution, linear noiseless detector), and
:class:`SHGTrueTwin`, one plant's hidden physics with the detector noise off (diagnostics and the ideal
bound only). Both run the forward map of :mod:`pnnlab.plants.optics.shg_physics`: the SHG-PNN of
Wright et al., "Deep physical neural networks trained with backpropagation", Nature 601, 549-555
(2022), doi:10.1038/s41586-021-04223-6.
"""

from __future__ import annotations

from ...twins.base import Twin
from .shg_physics import SpectralPhase, _check_layout, _SHGPhysics

__all__ = ["SHGTrueTwin", "SHGTwin"]


class SHGTwin(Twin):
    """Differentiable SHG model from the design values: no dispersion, ideal shaper of nominal
    resolution, linear noiseless detector. Arguments as for :class:`SHGPlant` (without the truth)."""

    def __init__(self, *, n_inputs: int, n_outputs: int, control_pixels_per_input: int = 2,
                 points_per_pixel: int = 4, shaper_bandwidth_THz: float = 20.0,
                 laser_fwhm_THz: float = 30.0, resolution_pixels: float = 0.3,
                 detector_span: float = 0.5) -> None:
        layout = _check_layout(n_inputs, n_outputs, control_pixels_per_input, points_per_pixel,
                               shaper_bandwidth_THz, laser_fwhm_THz, resolution_pixels, detector_span)
        super().__init__(in_features=layout["n_inputs"], out_features=layout["n_outputs"])
        self.layout = layout
        self._physics = _SHGPhysics(**layout, dispersion=SpectralPhase(), gains=None, phase_scale=1.0,
                                    blur_pixels=0.0, saturation=None)

    def forward(self, x, controls):
        return self._physics.forward(x, controls["amplitude"], controls["phase"])


class SHGTrueTwin(Twin):
    """The hidden physics of one :class:`SHGPlant` with its detector noise off, as returned by
    :meth:`SHGPlant.true_twin` (diagnostics and the ideal upper bound only: no laboratory knows it).
    Differentiable; equal to the noiseless plant to float rounding."""

    def __init__(self, *, physics: "_SHGPhysics", in_features: int, out_features: int) -> None:
        super().__init__(in_features=in_features, out_features=out_features)
        self._physics = physics

    def forward(self, x, controls):
        return self._physics.forward(x, controls["amplitude"], controls["phase"])
