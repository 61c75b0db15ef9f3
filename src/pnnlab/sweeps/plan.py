"""Sweep files: an experiment spec plus a ``[sweep]`` table of seeds and settings to vary.

::

    name = "vowels-lr"                 # the ordinary experiment spec ...
    [data]
    name = "vowels"
    [model]
    name = "shg_classifier"
    [method]
    name = "pat"
    [train]
    epochs = 50

    [sweep]                            # ... and what to vary
    seeds = [1, 2, 3]                  # each configuration runs on every seed (the seed also draws the split)
    search = "grid"                    # "grid" (default), "random" or "optuna"
    samples = 8                        # configurations drawn by "random" / tried by "optuna"
    sampler_seed = 0                   # the random draw (and optuna's sampler) is reproducible
    metric = "selected_val_accuracy"   # what "optuna" maximises (validation only: never a test figure)
    max_concurrent = 2                 # trials at once (default: as many as Ray has CPUs)
    device = "lab-bench-1"             # optional: trials hold this device as a Ray resource (one at a time)
    [sweep.grid]
    "train.lr" = [0.003, 0.01, 0.03]
    method = ["pat", "in_silico"]      # the special key "method" replaces the spec's method(s)
    [sweep.random]
    "train.lr" = { loguniform = [1e-3, 1e-1] }
    "model.hidden" = { choice = [8, 16] }

Keys are dotted paths into the experiment spec as written (``"train.lr"``, ``"model.mismatch"``,
``"methods.0.directions"`` for the first ``[[methods]]`` table). Every configuration is resolved against
the registries when the sweep is planned, so a bad name or argument fails before any trial runs.
A spec with a ``[remote]`` table holds the served device (``pnnlab_device:<address>``) automatically.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..experiments.spec import SpecError, load_spec, resolve_spec

__all__ = ["SweepPlan", "Trial", "load_sweep", "apply_overrides", "DISTRIBUTIONS"]

SWEEP_KEYS = {"seeds", "grid", "random", "samples", "search", "metric", "device", "max_concurrent", "sampler_seed"}
SEARCHES = ("grid", "random", "optuna")
DISTRIBUTIONS = ("uniform", "loguniform", "choice", "randint")
METRICS = ("selected_val_accuracy", "final_val_accuracy")


@dataclass(frozen=True)
class Trial:
    """One run of the sweep: a configuration (``overrides``) on one seed, in its own run folder."""

    index: int
    config_id: int
    overrides: dict
    seed: int

    @property
    def name(self) -> str:
        return f"t{self.index:04d}-c{self.config_id:03d}-s{self.seed}"


@dataclass
class SweepPlan:
    name: str
    base: dict  # the experiment spec without [sweep]
    seeds: list[int]
    search: str
    metric: str
    samples: int
    sampler_seed: int
    max_concurrent: int | None
    device: str | None
    grid: dict = field(default_factory=dict)
    random: dict = field(default_factory=dict)
    trials: list[Trial] = field(default_factory=list)  # empty for "optuna" (drawn while it runs)

    @property
    def configs(self) -> dict[int, dict]:
        return {t.config_id: t.overrides for t in self.trials}

    def to_json(self) -> dict:
        return {"name": self.name, "base": self.base, "seeds": self.seeds, "search": self.search,
                "metric": self.metric, "samples": self.samples, "sampler_seed": self.sampler_seed,
                "max_concurrent": self.max_concurrent, "device": self.device, "grid": self.grid,
                "random": self.random,
                "trials": [{"index": t.index, "config_id": t.config_id, "overrides": t.overrides, "seed": t.seed}
                           for t in self.trials]}


def _set(spec: dict, path: str, value: Any) -> None:
    if path == "method":
        spec.pop("methods", None)
        spec["method"] = copy.deepcopy(value)
        return
    parts = path.split(".")
    node: Any = spec
    for depth, part in enumerate(parts[:-1]):
        where = ".".join(parts[:depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise SpecError(f"[sweep] key {path!r}: {where!r} indexes a list of {len(node)} table(s); use "
                                f"0..{len(node) - 1}.")
            node = node[int(part)]
        elif isinstance(node, dict):
            if isinstance(node.get(part), str) and depth == 0:  # data = "iris" short form
                node[part] = {"name": node[part]}
            node = node.setdefault(part, {})
        else:
            raise SpecError(f"[sweep] key {path!r}: {where!r} is a value, not a table.")
    if not isinstance(node, dict):
        raise SpecError(f"[sweep] key {path!r} does not end in a table of the spec.")
    node[parts[-1]] = copy.deepcopy(value)


def apply_overrides(base: dict, overrides: dict, seed: int, name: str) -> dict:
    """The experiment spec of one trial: ``base`` with ``overrides`` set, the seed and the run name."""
    spec = copy.deepcopy(base)
    for path, value in overrides.items():
        _set(spec, path, value)
    spec["seed"] = int(seed)
    spec["name"] = name
    return spec


def _check_key(path: Any) -> str:
    if not isinstance(path, str) or not path or path.startswith(".") or path.endswith("."):
        raise SpecError(f"[sweep] keys must be dotted paths into the spec such as \"train.lr\", got {path!r}.")
    if path.split(".")[0] in ("seed", "name", "sweep"):
        raise SpecError(f"[sweep] cannot vary {path!r}: seeds go in [sweep] seeds, and the name is the sweep's.")
    return path


def _check_distribution(path: str, spec: Any) -> dict:
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise SpecError(f"[sweep.random] {path!r} must be one of {{uniform = [a, b]}}, {{loguniform = [a, b]}}, "
                        f"{{randint = [a, b]}}, {{choice = [...]}}, got {spec!r}.")
    kind, args = next(iter(spec.items()))
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise SpecError(f"[sweep.random] {path!r}: choice needs a non-empty list, got {args!r}.")
        return spec
    if (not isinstance(args, list) or len(args) != 2
            or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args) or not args[0] < args[1]):
        raise SpecError(f"[sweep.random] {path!r}: {kind} needs [low, high] with low < high, got {args!r}.")
    if kind == "loguniform" and args[0] <= 0:
        raise SpecError(f"[sweep.random] {path!r}: loguniform needs low > 0, got {args!r}.")
    if kind == "randint" and not all(isinstance(a, int) for a in args):
        raise SpecError(f"[sweep.random] {path!r}: randint needs integer bounds, got {args!r}.")
    return spec


def sample(spec: dict, rng: np.random.Generator) -> Any:
    kind, args = next(iter(spec.items()))
    if kind == "choice":
        return copy.deepcopy(args[int(rng.integers(len(args)))])
    if kind == "uniform":
        return float(rng.uniform(args[0], args[1]))
    if kind == "loguniform":
        return float(math.exp(rng.uniform(math.log(args[0]), math.log(args[1]))))
    return int(rng.integers(args[0], args[1] + 1))  # randint: both ends included


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"[sweep] {name} must be a positive integer, got {value!r}.")
    return value


def load_sweep(spec: Any) -> SweepPlan:
    """Read and check a sweep (a dict or a TOML path) and list its trials. Every configuration is
    resolved against the registries here, so bad names and arguments fail before anything runs."""
    if isinstance(spec, (str, Path)):
        spec = load_spec(spec)
    if not isinstance(spec, dict) or not isinstance(spec.get("sweep"), dict):
        raise SpecError("a sweep file is an experiment spec with a [sweep] table (seeds, grid or random); "
                        "see `pnnlab sweep --help` and docs/sweeps.md.")
    base = {k: v for k, v in spec.items() if k != "sweep"}
    table = spec["sweep"]
    unknown = sorted(set(table) - SWEEP_KEYS)
    if unknown:
        raise SpecError(f"unknown [sweep] key(s) {unknown}; allowed: {sorted(SWEEP_KEYS)}.")
    seeds = table.get("seeds", [base.get("seed", 0)])
    if (not isinstance(seeds, list) or not seeds or len(set(map(str, seeds))) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise SpecError(f"[sweep] seeds must be a non-empty list of distinct integers, got {seeds!r}.")
    grid = table.get("grid", {})
    random = table.get("random", {})
    if not isinstance(grid, dict) or not isinstance(random, dict):
        raise SpecError("[sweep.grid] and [sweep.random] must be tables of dotted keys.")
    for path, values in grid.items():
        _check_key(path)
        if not isinstance(values, list) or not values:
            raise SpecError(f"[sweep.grid] {path!r} must be a non-empty list of values, got {values!r}.")
    for path, dist in random.items():
        _check_key(path)
        _check_distribution(path, dist)
    overlap = sorted(set(grid) & set(random))
    if overlap:
        raise SpecError(f"[sweep] {overlap} appear in both [sweep.grid] and [sweep.random]; keep each in one.")
    search = table.get("search", "random" if random and not grid else "grid")
    if search not in SEARCHES:
        raise SpecError(f"[sweep] search must be one of {list(SEARCHES)}, got {search!r}.")
    if search == "grid" and random:
        raise SpecError("[sweep] search = \"grid\" with a [sweep.random] table: use search = \"random\" or "
                        "\"optuna\" to draw from distributions.")
    metric = table.get("metric", "selected_val_accuracy")
    if metric not in METRICS:
        raise SpecError(f"[sweep] metric must be a validation figure, one of {list(METRICS)}, got {metric!r} "
                        f"(a sweep never selects on test accuracy).")
    samples = _positive_int("samples", table.get("samples", 8 if search != "grid" else 1))
    sampler_seed = table.get("sampler_seed", 0)
    if isinstance(sampler_seed, bool) or not isinstance(sampler_seed, int):
        raise SpecError(f"[sweep] sampler_seed must be an integer, got {sampler_seed!r}.")
    max_concurrent = table.get("max_concurrent")
    if max_concurrent is not None:
        max_concurrent = _positive_int("max_concurrent", max_concurrent)
    device = table.get("device")
    if device is not None and (not isinstance(device, str) or not device):
        raise SpecError(f"[sweep] device must be a non-empty string naming the instrument, got {device!r}.")
    if device is None and isinstance(base.get("remote"), dict) and "address" in base["remote"]:
        device = str(base["remote"]["address"])
    name = base.get("name", "sweep")
    plan = SweepPlan(name=name, base=base, seeds=list(seeds), search=search, metric=metric, samples=samples,
                     sampler_seed=sampler_seed, max_concurrent=max_concurrent, device=device, grid=grid,
                     random=random)
    if search == "grid":
        keys = list(grid)
        configs = [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]
    elif search == "random":
        rng = np.random.default_rng(sampler_seed)
        space = {**{k: {"choice": v} for k, v in grid.items()}, **random}
        configs = [{k: sample(d, rng) for k, d in space.items()} for _ in range(samples)]
    else:
        methods = base.get("methods")
        if "method" not in grid and isinstance(methods, list) and len(methods) > 1:
            raise SpecError("[sweep] search = \"optuna\" maximises one method's validation accuracy: give a "
                            "single [method] (or vary it with the grid key \"method\").")
        configs = []  # drawn by Optuna while the sweep runs; check the space's bounds now
        rng = np.random.default_rng(sampler_seed)
        space = {**{k: {"choice": v} for k, v in grid.items()}, **random}
        configs_to_check = [{k: sample(d, rng) for k, d in space.items()}]
        for config in configs_to_check:
            _check_resolves(base, config)
    for config_id, config in enumerate(configs):
        _check_resolves(base, config, config_id)
        for seed in seeds:
            plan.trials.append(Trial(index=len(plan.trials), config_id=config_id, overrides=config, seed=int(seed)))
    return plan


def _check_resolves(base: dict, config: dict, config_id: int | None = None) -> None:
    try:
        resolve_spec(apply_overrides(base, config, 0, "check"))
    except SpecError as error:
        which = f"configuration {config_id} " if config_id is not None else ""
        raise SpecError(f"[sweep] {which}{json.dumps(config, default=str)}: {error}") from error
