"""Optical substrates: broadband second-harmonic generation, multimode fibre / scattering medium,
free-space optics (the angular-spectrum engine, diffractive networks, the 4f correlator)."""

from .correlator import Correlator4f, Correlator4fTwin
from .diffractive import DiffractiveNetwork, DiffractiveTwin, FabricationError, Misalignment, SLMPixels
from .fibre import SLM, Camera, FibrePlant, FibreTwin, TransmissionDrift
from .fourier import LensFourierTransform, Zernike
from .propagation import AngularSpectrum, Fresnel, Propagation
from .shg import (DetectorNoise, DetectorSaturation, SHGMismatch, SHGPlant, SHGTwin, ShaperError,
                  SpectralPhase)

__all__ = ["AngularSpectrum", "Camera", "Correlator4f", "Correlator4fTwin", "DetectorNoise", "DetectorSaturation",
           "DiffractiveNetwork", "DiffractiveTwin", "FabricationError", "FibrePlant", "FibreTwin", "Fresnel",
           "LensFourierTransform", "Misalignment", "Propagation", "SHGMismatch", "SHGPlant", "SHGTwin", "SLM",
           "SLMPixels", "ShaperError", "SpectralPhase", "TransmissionDrift", "Zernike"]
