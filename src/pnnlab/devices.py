"""Torch devices: random draws that give the same numbers on every device, moving a plant's state, and
a CPU-side audit that finds device-unaware code without a GPU.

**Random draws.** A plant owns CPU ``torch.Generator`` s (its measurement noise, its device state), and
methods own theirs. A CUDA tensor cannot be drawn from a CPU generator, so every draw that takes a
generator goes through the functions here: the numbers are drawn on the *generator's* device and then
moved to the target device. A run therefore produces the same noise, the same perturbations and the
same fabrication draws on CPU and on CUDA (tested on CPU; ``benchmarks/gpu_check.py`` compares the two
on a machine with a GPU). The price is one host-to-device copy per draw, small next to the physics
for the measurement-sized draws plants make; a caller that wants device-side draws passes a generator
created on that device (``torch.Generator(device="cuda")``) and the copy disappears.

    noise = devices.randn(y.shape, generator=gen, device=y.device, dtype=y.dtype)
    counts = devices.poisson(rate, generator=gen)             # on rate's device
    mask = devices.randint(0, 2, (n,), generator=gen, device=x.device)

**Moving state.** :func:`move` moves an object's tensor attributes (and those inside dicts, lists,
tuples, frozen or plain dataclasses, and nested ``nn.Module`` s or objects with a ``to`` method) to a
device; :meth:`pnnlab.Plant.to` uses it. Generators are never moved (see above).

**Auditing without a GPU.** :func:`device_audit` is a context manager under which tensors made without
an explicit ``device=`` land on the "meta" device, so code that would create a CPU tensor beside CUDA
data fails on CPU exactly where it would fail on CUDA (mixing devices raises). It also checks that
every draw with a generator is made on that generator's device (what CUDA enforces). Every plant and
method of the library passes :func:`pnnlab.testing.check_plant_device` and
:func:`pnnlab.testing.check_method_device`, which run under it (tests/test_devices.py). What the audit
cannot see: ``.numpy()`` on a tensor that would be on the GPU (call ``.cpu()`` first) and Python
numbers read back with ``.item()`` (correct on CUDA, just slower).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterator, Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

__all__ = ["as_device", "check_available", "model_device", "randn", "rand", "randint", "randperm", "normal", "poisson", "bernoulli", "binomial",
           "multinomial", "randn_like", "rand_like", "move", "device_audit", "DeviceAuditError"]


def as_device(device: Any, name: str = "device") -> torch.device:
    """``device`` (a string such as "cpu" or "cuda:0", or a torch.device) as a torch.device, with an error
    that names the argument when it is not one."""
    if isinstance(device, torch.device):
        return device
    if isinstance(device, str):
        try:
            return torch.device(device)
        except RuntimeError as error:
            raise ValueError(f"{name}={device!r} is not a torch device ({error}); use 'cpu', 'cuda' or "
                             f"'cuda:<index>'.") from None
    raise TypeError(f"{name} must be a torch.device or a string such as 'cpu' or 'cuda', got "
                    f"{type(device).__name__}.")


def check_available(device: torch.device, name: str = "device") -> torch.device:
    """``device`` itself, or an error naming ``name`` when this machine cannot compute there (no CUDA)."""
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name}={str(device)!r} but this machine has no usable CUDA device (torch "
                         f"{torch.__version__}, CUDA build: {torch.version.cuda is not None}); use 'cpu', or install "
                         f"a CUDA build of torch on a machine with a GPU.")
    return device


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter or buffer, else of its first plant, else the CPU."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    for module in model.modules():
        plant = getattr(module, "plant", None)
        if plant is not None and hasattr(plant, "device"):
            return plant.device
    return torch.device("cpu")


def _size(size) -> tuple[int, ...]:
    if isinstance(size, int):
        return (size,)
    return tuple(int(s) for s in size)


def _check_gen(generator) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}; create one "
                        f"with torch.Generator().manual_seed(0).")
    return generator


def _target(device, like: torch.Tensor | None = None) -> torch.device:
    if device is not None:
        return as_device(device)
    if like is not None:
        return like.device
    raise TypeError("a draw needs its target device: pass device=... (the device of the tensor the "
                    "draw is for), so the code works on CUDA as on CPU.")


def randn(size, *, generator: torch.Generator, device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Standard normal draws of shape ``size`` on ``device``, drawn on ``generator``'s device (complex
    dtypes: unit variance, as :func:`torch.randn`)."""
    gen = _check_gen(generator)
    return torch.randn(_size(size), generator=gen, device=gen.device, dtype=dtype).to(_target(device))


def rand(size, *, generator: torch.Generator, device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Uniform draws in [0, 1) of shape ``size`` on ``device`` (drawn on the generator's device)."""
    gen = _check_gen(generator)
    return torch.rand(_size(size), generator=gen, device=gen.device, dtype=dtype).to(_target(device))


def randint(low: int, high: int, size, *, generator: torch.Generator, device,
            dtype: torch.dtype = torch.int64) -> torch.Tensor:
    """Integers uniform in [low, high) of shape ``size`` on ``device``."""
    gen = _check_gen(generator)
    return torch.randint(int(low), int(high), _size(size), generator=gen, device=gen.device,
                         dtype=dtype).to(_target(device))


def randperm(n: int, *, generator: torch.Generator, device) -> torch.Tensor:
    """A random permutation of range(n) on ``device``."""
    gen = _check_gen(generator)
    return torch.randperm(int(n), generator=gen, device=gen.device).to(_target(device))


def randn_like(x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Standard normal draws with ``x``'s shape, dtype and device."""
    return randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def rand_like(x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Uniform [0, 1) draws with ``x``'s shape, dtype and device."""
    return rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def normal(mean, std, *, generator: torch.Generator, size: Sequence[int] | None = None, device=None,
           dtype: torch.dtype | None = None) -> torch.Tensor:
    """Gaussian draws ``mean + std * z`` (``mean``/``std`` tensors or numbers, broadcast with ``size``), on
    the device of the tensor arguments (or ``device``)."""
    tensors = [t for t in (mean, std) if isinstance(t, torch.Tensor)]
    shape = torch.broadcast_shapes(*(t.shape for t in tensors), *(() if size is None else (_size(size),)))
    target = _target(device, tensors[0] if tensors else None)
    if dtype is None:
        dtype = tensors[0].dtype if tensors and tensors[0].is_floating_point() else torch.get_default_dtype()
    z = randn(shape, generator=generator, device=target, dtype=dtype)
    return mean + std * z


def _on_gen(t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return t if t.device == gen.device else t.to(gen.device)


def poisson(rate: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Poisson counts with the given rates (float tensor), on ``rate``'s device."""
    gen = _check_gen(generator)
    return torch.poisson(_on_gen(rate, gen), generator=gen).to(rate.device)


def bernoulli(p: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """0/1 draws with probabilities ``p`` (float tensor), on ``p``'s device and dtype."""
    gen = _check_gen(generator)
    return torch.bernoulli(_on_gen(p, gen), generator=gen).to(p.device)


def binomial(count: torch.Tensor, prob: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Binomial draws (float tensors ``count`` and ``prob`` of one shape), on ``prob``'s device."""
    gen = _check_gen(generator)
    return torch.binomial(_on_gen(count, gen), _on_gen(prob, gen), generator=gen).to(prob.device)


def multinomial(probs: torch.Tensor, num_samples: int, *, replacement: bool = False,
                generator: torch.Generator) -> torch.Tensor:
    """Indices drawn from the rows of ``probs`` (as :func:`torch.multinomial`), on ``probs``' device."""
    gen = _check_gen(generator)
    return torch.multinomial(_on_gen(probs, gen), int(num_samples), replacement=replacement,
                             generator=gen).to(probs.device)


# ---- moving state ----------------------------------------------------------------------------------
def _moved(value: Any, device: torch.device, seen: set) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (torch.Generator, str, bytes, int, float, bool, complex, type(None), type)):
        return value
    if id(value) in seen:
        return value
    if isinstance(value, nn.Module):
        seen.add(id(value))
        return value.to(device)
    if isinstance(value, dict):
        return type(value)((k, _moved(v, device, seen)) for k, v in value.items()) \
            if type(value) is dict else _moved_in_place_dict(value, device, seen)
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_moved(v, device, seen) for v in value)
    if isinstance(value, list):
        return [_moved(v, device, seen) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _moved(getattr(value, f.name), device, seen) for f in dataclasses.fields(value)
                   if f.init and _holds_tensor(getattr(value, f.name))}
        return dataclasses.replace(value, **changes) if changes else value
    to = getattr(value, "to", None)
    if callable(to) and hasattr(value, "_device_state"):
        seen.add(id(value))
        result = to(device)
        return value if result is None else result
    return value


def _moved_in_place_dict(value: dict, device, seen) -> dict:
    for key in list(value):
        value[key] = _moved(value[key], device, seen)
    return value


def _holds_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_tensor(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_tensor(v) for v in value.values())
    return dataclasses.is_dataclass(value) and not isinstance(value, type) and any(
        _holds_tensor(getattr(value, f.name)) for f in dataclasses.fields(value))


def move(obj: Any, device, *, exclude: frozenset | set = frozenset()) -> None:
    """Move ``obj``'s tensor attributes to ``device`` in place (also inside dicts, lists, tuples and
    dataclasses; nested ``nn.Module`` s with ``.to``; nested objects that define ``_device_state`` (a
    marker: "I hold device state") with their own ``to``). Attributes named in ``exclude`` and every
    ``torch.Generator`` stay where they are. Objects met twice are moved once."""
    device = as_device(device)
    seen = {id(obj)}
    for name, value in list(vars(obj).items()):
        if name in exclude:
            continue
        new = _moved(value, device, seen)
        if new is not value:
            object.__setattr__(obj, name, new)


# ---- the audit ----------------------------------------------------------------------------------
class DeviceAuditError(RuntimeError):
    """Raised under :func:`device_audit` for a draw made off its generator's device."""


def _devices_of(args, kwargs) -> Iterator[torch.device]:
    stack = list(args) + [v for k, v in kwargs.items() if k != "generator"]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            yield item.device
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


class _GeneratorDeviceCheck(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        gen = kwargs.get("generator")
        if isinstance(gen, torch.Generator):
            targets = list(_devices_of(args, kwargs))
            if "device" in kwargs and kwargs["device"] is not None:
                targets.append(torch.device(kwargs["device"]))
            elif not targets:
                targets.append(torch.get_default_device())
            for target in targets:
                if target.type != gen.device.type:
                    name = getattr(func, "__name__", repr(func))
                    raise DeviceAuditError(
                        f"{name}(generator=<{gen.device}>) draws for a tensor on {target}; on CUDA this fails "
                        f"(a generator draws on its own device). Draw through pnnlab.devices (e.g. "
                        f"devices.randn(shape, generator=gen, device=x.device)), which draws on the "
                        f"generator's device and moves the result.")
        return func(*args, **kwargs)


@contextlib.contextmanager
def device_audit() -> Iterator[None]:
    """Within this block, tensors created without an explicit ``device=`` go to "meta" (so mixing them
    with real data raises, as a stray CPU tensor beside CUDA data would), and a draw made for a device
    other than its generator's raises :class:`DeviceAuditError`. For tests: run CPU data through a
    plant or a method step inside it."""
    previous = torch.get_default_device()
    torch.set_default_device("meta")
    try:
        with _GeneratorDeviceCheck():
            yield
    finally:
        torch.set_default_device(previous)
