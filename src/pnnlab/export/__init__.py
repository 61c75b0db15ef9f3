"""Export of trained networks: device settings in the formats labs program (:mod:`.hardware`) and the
tolerance of a trained network to programming error (:mod:`.tolerance`) and to each fabrication error of
its plants (:mod:`.fabrication`). ``pnnlab export RUN_DIR``."""

from .hardware import ExportError, ExportResult, export_run, load_trained_model, phase_levels
from .edge import export_edge
from .fabrication import fabrication_tolerance
from .knobs import discover_knobs
from .tolerance import tolerance_analysis

__all__ = ["discover_knobs", "ExportError", "export_edge", "fabrication_tolerance", "ExportResult", "export_run", "load_trained_model", "phase_levels", "tolerance_analysis"]
