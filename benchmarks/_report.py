"""Machine-readable results for `pnnlab bench`: a benchmark calls :func:`record` for each figure it
prints; when the environment variable ``PNNLAB_BENCH_RESULTS`` names a file, one JSON line per figure
is appended to it (otherwise nothing happens, so running a script by hand is unchanged). Not a
benchmark itself."""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path


def record(name: str, values, *, unit: str = "%", scale: float = 100.0, **extra) -> None:
    """Record one row: ``values`` (one per seed, in the script's own unit; multiplied by ``scale`` for
    display, 100 for fractions shown as %), its name and any extra fields (settings, parameters,
    queries)."""
    path = os.environ.get("PNNLAB_BENCH_RESULTS")
    if not path:
        return
    values = [float(v) * scale for v in values]
    entry = {"script": Path(sys.argv[0]).name, "name": name, "unit": unit, "n": len(values),
             "mean": statistics.fmean(values) if values else None,
             "std": statistics.stdev(values) if len(values) > 1 else 0.0, "values": values, **extra}
    with open(path, "a") as f:
        f.write(json.dumps(entry, default=str) + "\n")
