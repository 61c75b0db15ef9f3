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
