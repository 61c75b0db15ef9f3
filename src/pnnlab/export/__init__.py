"""Export of trained networks: device settings in the formats labs program (:mod:`.hardware`) and the
tolerance of a trained network to programming error (:mod:`.tolerance`). ``pnnlab export RUN_DIR``."""

from .hardware import ExportError, ExportResult, export_run, load_trained_model, phase_levels
from .edge import export_edge
from .tolerance import tolerance_analysis

__all__ = ["ExportError", "export_edge", "ExportResult", "export_run", "load_trained_model", "phase_levels", "tolerance_analysis"]
