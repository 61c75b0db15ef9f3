"""Experiment specifications: a TOML file names registered components and their keyword arguments."""

from __future__ import annotations

import inspect
from typing import Any, Callable


class SpecError(ValueError):
    """An experiment file names something unknown or passes a bad argument."""


def call_with_kwargs(target: Callable, kwargs: dict[str, Any], *, where: str) -> Any:
    """Call ``target(**kwargs)``, turning unknown or missing keyword arguments into a SpecError that
    lists the accepted ones."""
    if not isinstance(kwargs, dict):
        raise SpecError(f"arguments of {where} must be a table of keyword arguments, got {type(kwargs).__name__}.")
    signature = inspect.signature(target)
    params = signature.parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    accepted = [n for n, p in params.items()
                if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                and n != "self"]
    unknown = [k for k in kwargs if k not in accepted]
    if unknown and not accepts_any:
        raise SpecError(f"{where} has no argument(s) {', '.join(map(repr, unknown))}; "
                        f"accepted: {', '.join(accepted) or 'none'}.")
    try:
        return target(**kwargs)
    except TypeError as error:
        raise SpecError(f"{where}: {error}") from error


SECTIONS = {"name", "seed", "data", "model", "method", "methods", "train", "remote", "tracking"}
TRAIN_KEYS = {"epochs", "lr", "batch_size", "evaluate_every", "device"}


def load_spec(path) -> dict:
    """Read an experiment TOML file into a dict (errors name the file and the problem)."""
    from pathlib import Path
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"experiment file {str(path)!r} does not exist; pass the path of a TOML file "
                        f"(see examples/*.toml).")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{str(path)!r} is not valid TOML: {error}") from error


def _component(spec: dict, section: str, registry) -> dict:
    table = spec[section]
    if isinstance(table, str):
        table = {"name": table}
    if not isinstance(table, dict) or "name" not in table:
        raise SpecError(f"[{section}] must be a table with a 'name' key naming a registered {registry.kind} "
                        f"({', '.join(registry.names())}), got {table!r}.")
    name = table["name"]
    if name not in registry:
        try:
            registry.get(name)
        except KeyError as error:
            raise SpecError(f"[{section}] {error.args[0]}") from None
    return {"name": name, "args": {k: v for k, v in table.items() if k != "name"}}


def resolve_spec(spec: dict) -> dict:
    """Check an experiment spec and return it in canonical form:
    ``{name, seed, data: {name, args}, model: {name, args}, methods: [{name, args}], train: {...}}``,
    plus ``remote: {address, token_file, timeout, wait_for_device_s}`` when the spec has a ``[remote]``
    table (train against a device served by ``pnnlab serve``; see :mod:`.remote_spec`).

    ``seed`` seeds the plants, the model, training and the data split: it is passed to the dataset
    loader as ``seed`` when the loader accepts one and ``[data]`` does not set it itself.

    Unknown sections, unknown component names and bad training settings raise :class:`SpecError`.
    Component arguments are checked when the components are built.
    """
    from ..registry import DATASETS, METHODS, MODELS
    if not isinstance(spec, dict):
        raise SpecError(f"an experiment spec must be a table (dict), got {type(spec).__name__}.")
    unknown = sorted(set(spec) - SECTIONS)
    if unknown:
        raise SpecError(f"unknown section(s) {unknown} in the experiment spec; allowed: {sorted(SECTIONS)}.")
    for required in ("data", "model"):
        if required not in spec:
            raise SpecError(f"the experiment spec needs a [{required}] table with a 'name' key.")
    if ("method" in spec) == ("methods" in spec):
        raise SpecError("give exactly one of [method] (one method) or [[methods]] (a comparison).")
    methods_raw = [spec["method"]] if "method" in spec else spec["methods"]
    if not isinstance(methods_raw, list) or not methods_raw:
        raise SpecError("[[methods]] must be a non-empty array of tables, each with a 'name'.")
    methods = [_component({"method": m}, "method", METHODS) for m in methods_raw]
    train = dict(spec.get("train", {}))
    bad = sorted(set(train) - TRAIN_KEYS)
    if bad:
        raise SpecError(f"unknown [train] key(s) {bad}; allowed: {sorted(TRAIN_KEYS)}.")
    resolved_train = {"epochs": 10, "lr": 1e-2, "batch_size": 32, "evaluate_every": 1}
    resolved_train.update(train)
    for key in ("epochs", "batch_size", "evaluate_every"):
        value = resolved_train[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(f"[train] {key} must be a positive integer, got {value!r}.")
    lr = resolved_train["lr"]
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise SpecError(f"[train] lr must be a positive number, got {lr!r}.")
    if "device" in resolved_train:  # torch device of the model, its plants and the batches
        from ..devices import as_device  # availability is checked where the run trains (a sweep's head
        try:                             # node may have no GPU while its workers do)
            as_device(resolved_train["device"], "[train] device")
        except (TypeError, ValueError) as error:
            raise SpecError(str(error)) from None
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SpecError(f"seed must be an integer, got {seed!r}.")
    name = spec.get("name", "experiment")
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        raise SpecError(f"name must be letters, digits, '-' or '_', got {name!r}.")
    data = _component(spec, "data", DATASETS)
    if "seed" not in data["args"] and _accepts(DATASETS.load(data["name"]), "seed"):
        data["args"]["seed"] = seed  # the experiment's seed reaches the data split
    resolved = {"name": name, "seed": seed, "data": data,
                "model": _component(spec, "model", MODELS), "methods": methods, "train": resolved_train}
    if "remote" in spec:  # train against a served device (experiments/remote_spec.py)
        from .remote_spec import resolve_remote
        resolved["remote"] = resolve_remote(spec["remote"])
    if "tracking" in spec:  # TensorBoard / MLflow mirrors of the metrics (pnnlab.tracking)
        from ..tracking import TrackingError, resolve_tracking
        try:
            resolved["tracking"] = resolve_tracking(spec["tracking"])
        except TrackingError as error:
            raise SpecError(str(error)) from error
    return resolved


def _accepts(target: Callable, argument: str) -> bool:
    params = inspect.signature(target).parameters
    return argument in params and params[argument].kind in (inspect.Parameter.KEYWORD_ONLY,
                                                             inspect.Parameter.POSITIONAL_OR_KEYWORD)
