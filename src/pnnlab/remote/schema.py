"""The wire format of the plant service (schema version 1; docs/remote.md).

Every request and every reply is one byte string::

    uint32 little-endian  N          length of the header
    N bytes               header     a UTF-8 JSON object
    the rest              payload    raw little-endian tensor bytes

The header always holds ``"schema": SCHEMA_VERSION`` and ``"tensors"``: a list of
``{"name", "dtype", "shape", "offset", "nbytes"}`` entries locating each tensor in the payload
(``offset`` counted from the start of the payload). Tensor bytes are the tensor's contiguous
memory, so a round trip is bit-identical (float64 stays float64, a NaN keeps its bits). Nothing is
ever pickled: a message decodes to a JSON dict and tensors of the listed dtypes, nothing else.

The decoder checks everything a hostile or broken peer could get wrong (sizes, offsets, dtypes,
shapes) and raises :class:`SchemaError` naming the problem.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from typing import Mapping

import torch

#: version of the message schema; a peer speaking another version is refused with a clear error
SCHEMA_VERSION = 1
#: gRPC service name; the schema version is part of it, so incompatible peers fail to find methods
SERVICE = "pnnlab.remote.v1.PlantService"
#: largest message accepted by either side (bytes); gRPC's own limit is raised to match
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_MAX_HEADER_BYTES = 1024 * 1024

_DTYPES = {str(d).removeprefix("torch."): d for d in (torch.float16, torch.bfloat16, torch.float32,
                                                       torch.float64, torch.int64, torch.int32, torch.uint8,
                                                       torch.bool, torch.complex64, torch.complex128)}

if sys.byteorder != "little":  # pragma: no cover - every supported host is little-endian
    raise ImportError("pnnlab.remote sends raw little-endian tensor bytes and needs a little-endian host.")


class SchemaError(ValueError):
    """A message that does not follow the schema (truncated, wrong version, bad tensor table)."""


def encode(header: Mapping, tensors: Mapping[str, torch.Tensor] | None = None) -> bytes:
    """One message: ``header`` (JSON-serialisable dict, without ``schema``/``tensors``) and named tensors."""
    table, chunks, offset = [], [], 0
    for name, tensor in (tensors or {}).items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"tensor {name!r} must be a torch.Tensor, got {type(tensor).__name__}.")
        t = tensor.detach().cpu().contiguous()
        dtype = str(t.dtype).removeprefix("torch.")
        if dtype not in _DTYPES:
            raise TypeError(f"tensor {name!r} has dtype {t.dtype}, which the schema does not carry; "
                            f"supported: {sorted(_DTYPES)}.")
        flat = t.reshape(-1)
        raw = (flat.to(torch.uint8) if t.dtype == torch.bool else flat.view(torch.uint8)).numpy().tobytes()
        table.append({"name": name, "dtype": dtype, "shape": list(t.shape), "offset": offset, "nbytes": len(raw)})
        chunks.append(raw)
        offset += len(raw)
    head = dict(header)
    head["schema"] = SCHEMA_VERSION
    head["tensors"] = table
    text = json.dumps(head, allow_nan=False, separators=(",", ":")).encode("utf-8")
    return struct.pack("<I", len(text)) + text + b"".join(chunks)


def decode(message: bytes) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(header, tensors)`` of a message written by :func:`encode`; :class:`SchemaError` if malformed."""
    if not isinstance(message, (bytes, bytearray, memoryview)):
        raise SchemaError(f"a message must be bytes, got {type(message).__name__}.")
    message = bytes(message)
    if len(message) < 4:
        raise SchemaError(f"a message of {len(message)} bytes is too short to hold its header length.")
    (n,) = struct.unpack("<I", message[:4])
    if n > _MAX_HEADER_BYTES or 4 + n > len(message):
        raise SchemaError(f"the header length {n} does not fit the message of {len(message)} bytes.")
    try:
        header = json.loads(message[4:4 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SchemaError(f"the header is not UTF-8 JSON ({error}).") from None
    if not isinstance(header, dict):
        raise SchemaError(f"the header must be a JSON object, got {type(header).__name__}.")
    if header.get("schema") != SCHEMA_VERSION:
        raise SchemaError(f"the peer speaks message schema {header.get('schema')!r}; this pnnlab speaks schema "
                          f"{SCHEMA_VERSION}. Install the same pnnlab version on both sides.")
    payload = memoryview(message)[4 + n:]
    tensors: dict[str, torch.Tensor] = {}
    table = header.pop("tensors", None)
    if not isinstance(table, list):
        raise SchemaError("the header has no 'tensors' list.")
    for entry in table:
        if not isinstance(entry, dict) or set(entry) != {"name", "dtype", "shape", "offset", "nbytes"}:
            raise SchemaError(f"a tensor entry must have exactly name, dtype, shape, offset, nbytes; got {entry!r}.")
        name, dtype, shape = entry["name"], entry["dtype"], entry["shape"]
        offset, nbytes = entry["offset"], entry["nbytes"]
        if not isinstance(name, str) or name in tensors:
            raise SchemaError(f"tensor name {name!r} is not a string or appears twice.")
        if dtype not in _DTYPES:
            raise SchemaError(f"tensor {name!r} has unknown dtype {dtype!r}; supported: {sorted(_DTYPES)}.")
        if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                  for s in shape):
            raise SchemaError(f"tensor {name!r} has a bad shape {shape!r}.")
        target = _DTYPES[dtype]
        itemsize = 1 if target == torch.bool else torch.empty((), dtype=target).element_size()
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (offset, nbytes)):
            raise SchemaError(f"tensor {name!r} has a bad offset or size.")
        if nbytes != math.prod(shape) * itemsize or offset + nbytes > len(payload):
            raise SchemaError(f"tensor {name!r} ({dtype}, shape {shape}) does not match its {nbytes} bytes at "
                              f"offset {offset} of a {len(payload)}-byte payload.")
        raw = torch.frombuffer(bytearray(payload[offset:offset + nbytes]), dtype=torch.uint8) if nbytes else \
            torch.empty(0, dtype=torch.uint8)
        t = raw.to(torch.bool) if target == torch.bool else raw.view(target)
        tensors[name] = t.reshape(shape)
    header.pop("schema")
    return header, tensors


# ---- JSON forms of the plant's description ---------------------------------------------------------
def spec_to_json(spec) -> dict:
    """A :class:`~pnnlab.plants.base.ControlSpec` as JSON (an infinite bound becomes ``null``)."""
    return {"shape": list(spec.shape), "low": spec.low if math.isfinite(spec.low) else None,
            "high": spec.high if math.isfinite(spec.high) else None, "unit": spec.unit,
            "description": spec.description, "symmetric": spec.symmetric, "periodic": spec.periodic}


def spec_from_json(data: Mapping):
    from ..plants.base import ControlSpec
    return ControlSpec(shape=tuple(data["shape"]), low=-math.inf if data["low"] is None else float(data["low"]),
                       high=math.inf if data["high"] is None else float(data["high"]), unit=data["unit"],
                       description=data["description"], symmetric=bool(data["symmetric"]),
                       periodic=bool(data.get("periodic", False)))
