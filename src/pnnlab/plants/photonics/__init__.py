"""Photonic integrated circuits: MZI meshes (engine, plant, SVD layer, decomposition, tolerance
analysis; docs/substrates/mzi_mesh.md) and their kin (microring weight banks, activations, the
adjoint passes: see their own modules)."""

from .decompose import MeshPhases, decompose, random_unitary
from .mesh_engine import MeshEngine, MeshFields, MeshLayout, Rectangular, Triangular, first_half, mzi_transfer
from .mesh_physics import (AmplitudeEncoding, CoherentDetection, Detector, Heaters, MeshFabrication, MeshPhysics,
                           PhaseEncoding, Photodetection)
from .mzi_mesh import MESH_COST, MZIMesh, MZIMeshTwin
from .svd import SVDMesh, SVDMeshTwin, svd_settings
from .tolerance import (LocalCorrection, Reoptimise, ToleranceResult, fidelity, local_correction, predicted_infidelity,
                        tolerance_analysis)

__all__ = ["AmplitudeEncoding", "CoherentDetection", "Detector", "Heaters", "MESH_COST", "MZIMesh", "MZIMeshTwin",
           "MeshEngine", "MeshFabrication", "MeshFields", "MeshLayout", "MeshPhases", "MeshPhysics", "PhaseEncoding",
           "Photodetection", "Rectangular", "Reoptimise", "LocalCorrection", "local_correction", "SVDMesh", "SVDMeshTwin", "ToleranceResult", "Triangular",
           "decompose", "fidelity", "first_half", "mzi_transfer", "predicted_infidelity", "random_unitary",
           "svd_settings", "tolerance_analysis"]
