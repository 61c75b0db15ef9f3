"""What ``pnnlab serve`` needs before it serves: the plant (a registered name or ``module:Class``), the
token file and the device limits. Kept here so the command line stays a thin wrapper."""

from __future__ import annotations

import importlib
import json
import math
import os
import secrets
from pathlib import Path

from ..plants.base import Plant
from .policy import ControlLimit


def load_plant(name: str, arguments: str | dict = "{}") -> Plant:
    """Build the plant to serve: ``name`` is a registered plant (``pnnlab list plants``) or
    ``"package.module:Class"`` (a user's instrument, a :class:`~pnnlab.plants.base.Plant` subclass);
    ``arguments`` its keyword arguments as a JSON object (or a dict)."""
    from ..experiments.spec import call_with_kwargs
    from ..registry import PLANTS
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as error:
            raise ValueError(f"--plant-args must be a JSON object such as '{{\"seed\": 0}}', got {arguments!r} "
                             f"({error}).") from None
    if not isinstance(arguments, dict):
        raise ValueError(f"--plant-args must be a JSON object of keyword arguments, got {arguments!r}.")
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            target = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"--plant {name!r}: cannot import {attribute!r} from module {module_name!r} ({error}); "
                             f"is the package installed or on PYTHONPATH?") from None
        if not (isinstance(target, type) and issubclass(target, Plant)):
            raise ValueError(f"--plant {name!r} is not a pnnlab Plant subclass (got {target!r}).")
        plant = call_with_kwargs(target, arguments, where=f"plant {name!r}")
    else:
        plant = PLANTS.build(name, **arguments)
    if not isinstance(plant, Plant):
        raise ValueError(f"--plant {name!r} built {type(plant).__name__}, not a Plant.")
    return plant


def read_token_file(path: str | Path) -> tuple[str, bool]:
    """The shared secret in ``path`` (stripped); a missing file gets a new random token, written with
    permissions 0600. Returns ``(token, created)``."""
    path = Path(path)
    if not path.exists():
        token = secrets.token_urlsafe(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
        return token, True
    token = path.read_text().strip()
    if len(token) < 8:
        raise ValueError(f"--token-file {str(path)!r} holds {len(token)} characters; a token needs at least 8. "
                         f"Delete the file to have a new random token written there.")
    return token, False


def parse_limits(text: str | None) -> dict[str, ControlLimit]:
    """``--limits '{"weight": {"low": -1, "high": 1, "max_step": 0.1}}'`` as ControlLimit objects."""
    if text is None:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"--limits must be a JSON object, got {text!r} ({error}).") from None
    if not isinstance(data, dict):
        raise ValueError(f"--limits must be a JSON object name -> {{low, high, max_step}}, got {text!r}.")
    out = {}
    for name, entry in data.items():
        if not isinstance(entry, dict) or not set(entry) <= {"low", "high", "max_step"}:
            raise ValueError(f"--limits[{name!r}] must be an object with keys among low, high, max_step; got {entry!r}.")
        out[name] = ControlLimit(low=-math.inf if entry.get("low") is None else entry["low"],
                                 high=math.inf if entry.get("high") is None else entry["high"],
                                 max_step=entry.get("max_step"))
    return out
