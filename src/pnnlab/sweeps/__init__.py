"""Sweeps over seeds, methods, hyper-parameters and plant settings (``pnnlab sweep``), on Ray Tune.

See :mod:`.plan` (the ``[sweep]`` table), :mod:`.execute` (trials, Ray resources, resume) and
:mod:`.report` (the mean +- std table and the accuracy-against-queries plot); docs/sweeps.md.
"""

from .execute import RAY_INSTALL_HINT, SweepResult, ray_resources, run_sweep
from .plan import SweepPlan, Trial, apply_overrides, load_sweep
from .report import aggregate

__all__ = ["RAY_INSTALL_HINT", "SweepPlan", "SweepResult", "Trial", "aggregate", "apply_overrides", "load_sweep",
           "ray_resources", "run_sweep"]
