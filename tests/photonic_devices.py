"""Test helper for the photonics family's device placement: every tensor an object holds."""

import torch

from pnnlab.plants.photonics.mesh_engine import MeshLayout

#: plant attributes that are not device state (Plant.to leaves them where they are)
NOT_MOVED = frozenset({"meter", "cost", "_recorders", "_generator"})


def reachable_tensors(root):
    """(path, tensor) for every tensor reachable from ``root`` through attributes, dicts, lists, tuples,
    dataclasses and modules (parameters and buffers included). Skipped: generators, the attributes a
    plant does not move, and a mesh layout's integer geometry (CPU by design: the engine keeps device
    copies of what it indexes with)."""
    found, seen, stack = [], set(), [("root", root)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, torch.Tensor):
            found.append((path, value))
            continue
        if isinstance(value, (torch.Generator, MeshLayout, str, bytes, int, float, bool, complex, type(None), type)) \
                or id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, dict):
            items = list(value.items())
        elif isinstance(value, (list, tuple, set, frozenset)):
            items = list(enumerate(value))
        elif hasattr(value, "__dict__"):
            items = [(k, v) for k, v in vars(value).items() if k not in NOT_MOVED]
        else:
            continue
        stack.extend((f"{path}.{k}", v) for k, v in items)
    return found


def off_device(root, device):
    """Paths of the tensors reachable from ``root`` that are not on ``device``."""
    device = torch.device(device)
    return [path for path, t in reachable_tensors(root) if t.device.type != device.type]
