"""Experiments: a TOML spec names registered components; ``run`` writes a run folder."""

from .demo import demo_spec
from .report import format_table, plot_accuracy_vs_queries
from .run import RunResult, resume, run
from .spec import SpecError, load_spec, resolve_spec

__all__ = ["RunResult", "SpecError", "demo_spec", "format_table", "load_spec", "plot_accuracy_vs_queries",
           "resolve_spec", "resume", "run"]
