"""Small helpers that turn bad user input into errors naming the argument, the value, the
reason and the fix. Used by every constructor and every plant call."""

from __future__ import annotations

import math
from typing import Any

import torch


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float, or raise naming ``name`` if it is not a (strictly) positive number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {_show(value)} of type {type(value).__name__}; "
                        f"pass a float such as {name}=1.0.")
    value = float(value)
    bad = (value < 0) if allow_zero else (value <= 0)
    if math.isnan(value) or math.isinf(value) or bad:
        need = "zero or positive" if allow_zero else "strictly positive"
        raise ValueError(f"{name} must be a finite {need} number, got {value!r}; "
                         f"{'use 0 to switch it off' if allow_zero else 'pass a value > 0'}.")
    return value


def check_nonnegative(name: str, value: Any) -> float:
    """Noise levels and similar: finite and >= 0 (0 switches the effect off)."""
    return check_positive(name, value, allow_zero=True)


def check_int(name: str, value: Any, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {_show(value)} of type {type(value).__name__}; "
                        f"pass e.g. {name}={max(minimum, 1)}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}; pass an integer >= {minimum}.")
    return value


def check_finite_float(name: str, value: Any) -> float:
    """Return ``value`` as a float, or raise naming ``name`` if it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {_show(value)}.")
    return float(value)


def check_in_range(name: str, value: Any, low: float, high: float, *, inclusive: bool = True) -> float:
    """Return ``value`` as a float, or raise naming ``name`` if it lies outside ``[low, high]``
    (``(low, high)`` with ``inclusive=False``); for fractions, efficiencies, probabilities."""
    value = check_finite_float(name, value)
    inside = (low <= value <= high) if inclusive else (low < value < high)
    if not inside:
        interval = f"[{low}, {high}]" if inclusive else f"({low}, {high})"
        raise ValueError(f"{name} must lie in {interval}, got {value!r}; pass a value in {interval}.")
    return value


def check_output(owner: str, y: Any, *, batch: int, features: int, dtype: torch.dtype,
                 what: str = "output") -> torch.Tensor:
    """Validate what a plant hands back at the hardware boundary: a floating-point tensor of shape
    ``(batch, features)`` and dtype ``dtype`` (the input's), every value finite. ``owner`` names the
    plant class and the call (for example ``"TanhPlant._measure"``) in the error."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{owner} returned {type(y).__name__} as its {what}, not a torch.Tensor of shape "
                        f"({batch}, {features}); return a tensor.")
    if tuple(y.shape) != (batch, features):
        raise ValueError(f"{owner} returned an {what} of shape {tuple(y.shape)} for a batch of {batch}; "
                         f"a plant must return shape (batch, out_features) = ({batch}, {features}).")
    if y.dtype != dtype:
        raise TypeError(f"{owner} returned an {what} of dtype {y.dtype} for inputs of dtype {dtype}; "
                        f"return the input's dtype (for example y.to(x.dtype)).")
    if not bool(torch.isfinite(y).all()):
        n_nan = int(torch.isnan(y).sum())
        n_inf = int(torch.isinf(y).sum())
        raise FloatingPointError(f"{owner} returned {n_nan} NaN and {n_inf} infinite values in its {what} "
                                 f"(batch of {batch}); the plant failed at the hardware boundary (a "
                                 f"diverged solver, an overflow, a detector out of range), not the training "
                                 f"method. Fix or bound the physics; no accuracy is computed from it.")
    return y


def check_batch(name: str, x: Any, features: int) -> torch.Tensor:
    """Validate a batch of inputs ``x`` of shape (batch, features), floating point, finite."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (batch, {features}), got "
                        f"{type(x).__name__}; convert with torch.as_tensor({name}, dtype=torch.float32).")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}; "
                        f"convert with {name}.float().")
    if x.ndim != 2 or x.shape[1] != features:
        raise ValueError(f"{name} must have shape (batch, {features}), got {tuple(x.shape)}; "
                         f"reshape to (batch, {features}) (a single sample is {name}.reshape(1, -1)).")
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} NaN or infinite values; clean or impute the data "
                         f"before sending it to the hardware.")
    return x


def check_generator(name: str, generator: Any) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(generator).__name__}; "
                        f"create one with torch.Generator().manual_seed(0).")
    return generator


def make_generator(seed: int | torch.Generator | None) -> torch.Generator:
    """A per-instance generator from a seed (int), an existing generator, or None (seed 0)."""
    if isinstance(seed, torch.Generator):
        return seed
    if seed is None:
        seed = 0
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, a torch.Generator or None, got {_show(seed)}.")
    return torch.Generator().manual_seed(seed)


def from_preset(name: str, value: Any, presets: dict, kind: type | tuple, example: str, *,
                tables: bool = False) -> Any:
    """An experiment file's way of naming an object: ``value`` as given if it is a ``kind`` (a class or a
    tuple of classes), the preset's object (``presets[value]()``) for a preset name, and, with
    ``tables=True``, ``kind(**value)`` for a table of keyword arguments (a TOML table). Errors name
    ``name``, list the presets and show ``example``."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    what = " / ".join(f"{k.__name__}(...)" for k in kinds)
    if isinstance(value, kinds):
        return value
    if isinstance(value, str):
        if value not in presets:
            extra = " or a table of its arguments" if tables else ""
            raise ValueError(f"{name}={value!r} is not a preset; the presets are {sorted(presets)} (or pass a "
                             f"{what} object{extra}).")
        return presets[value]()
    if tables and isinstance(value, dict):
        try:
            return kinds[0](**value)
        except TypeError as error:
            raise TypeError(f"{name}: the table {value!r} is not valid {kinds[0].__name__} arguments ({error}).") from None
    extra = " or a table of its arguments" if tables else ""
    raise TypeError(f"{name} must be a {what}, a preset name {sorted(presets)}{extra}, got "
                    f"{type(value).__name__}; write {name}={example}.")
