"""Optical substrates: broadband second-harmonic generation, multimode fibre / scattering medium."""

from .fibre import SLM, Camera, FibrePlant, FibreTwin, TransmissionDrift
from .shg import (DetectorNoise, DetectorSaturation, SHGMismatch, SHGPlant, SHGTwin, ShaperError,
                  SpectralPhase)

__all__ = ["Camera", "DetectorNoise", "DetectorSaturation", "FibrePlant", "FibreTwin", "SHGMismatch",
           "SHGPlant", "SHGTwin", "SLM", "ShaperError", "SpectralPhase", "TransmissionDrift"]
