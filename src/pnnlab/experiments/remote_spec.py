"""The ``[remote]`` section of an experiment file: train against a plant served by ``pnnlab serve``.

```toml
[remote]
address = "127.0.0.1:50051"      # what `pnnlab serve` printed
token_file = "token.txt"         # the server's --token-file (the token itself never enters the run folder)
timeout = 30.0                   # optional: deadline of every call, seconds
wait_for_device_s = 60.0         # optional: how long a lost device may be away before the run stops
```

The model is built as the ``[model]`` section says, locally, and its one physical layer is then
pointed at the served device (:class:`~pnnlab.remote.RemotePlant`). The locally built plant is
thrown away; only its *design* is kept: the layer's starting controls and its nominal twin (the design
values, which a laboratory knows before it measures anything). The served device must have the
same interface (features and controls) as the model's plant, or the run is refused before it
starts. The device's own hidden truth is whatever the server runs, and the ``ideal`` bound cannot
be trained against it (a remote plant is not simulated).

The client id is fixed per run folder (``remote.json``), so a resumed run (``pnnlab run --resume``)
takes over the device's lease at once and continues the idempotency-key numbers where the recording
stopped: a query the device executed but the killed trainer never recorded is answered from the
server's reply log, not executed again (docs/remote.md, docs/recording.md).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from torch import nn

from .spec import SpecError

REMOTE_KEYS = {"address", "token_file", "timeout", "wait_for_device_s"}


def resolve_remote(table) -> dict:
    """Check a ``[remote]`` table; return it with defaults filled in."""
    if not isinstance(table, dict):
        raise SpecError(f"[remote] must be a table with 'address' and 'token_file', got {table!r}.")
    unknown = sorted(set(table) - REMOTE_KEYS)
    if unknown:
        raise SpecError(f"unknown [remote] key(s) {unknown}; allowed: {sorted(REMOTE_KEYS)}.")
    for key in ("address", "token_file"):
        if not isinstance(table.get(key), str) or not table[key]:
            raise SpecError(f"[remote] needs {key} = \"...\" (a string; address is what `pnnlab serve` printed, "
                            f"token_file the server's --token-file), got {table.get(key)!r}.")
    out = {"address": table["address"], "token_file": table["token_file"],
           "timeout": table.get("timeout", 30.0), "wait_for_device_s": table.get("wait_for_device_s", 60.0)}
    for key in ("timeout", "wait_for_device_s"):
        value = out[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise SpecError(f"[remote] {key} must be a positive number of seconds, got {value!r}.")
    return out


def read_token(remote: dict) -> str:
    path = Path(remote["token_file"])
    if not path.is_file():
        raise SpecError(f"[remote] token_file={str(path)!r} does not exist; pass the file the server was started "
                        f"with (`pnnlab serve --token-file {path}`).")
    token = path.read_text().strip()
    if not token:
        raise SpecError(f"[remote] token_file={str(path)!r} is empty.")
    return token


def new_client_id(folder: Path) -> str:
    """A client id for a new run folder, written to ``remote.json`` there."""
    client_id = f"run-{folder.name}-{uuid.uuid4().hex[:8]}".replace(":", "-")
    (folder / "remote.json").write_text(json.dumps({"client_id": client_id}))
    return client_id


def saved_client_id(folder: Path) -> str:
    path = folder / "remote.json"
    if not path.is_file():
        raise SpecError(f"run folder {str(folder)!r} has a [remote] configuration but no remote.json (its client "
                        f"id); it cannot continue the device's idempotency keys. Start a new run.")
    return json.loads(path.read_text())["client_id"]


def attach_remote(model: nn.Module, remote: dict, *, client_id: str | None):
    """Point the model's one physical layer at the served device; returns the :class:`RemotePlant`."""
    from ..layers import PhysicalLayer
    from ..remote import RemotePlant
    layers = [m for m in model.modules() if isinstance(m, PhysicalLayer)]
    if len(layers) != 1:
        raise SpecError(f"[remote] serves one device, but the model has {len(layers)} physical layers; use a model "
                        f"with one physical layer, or build the model in Python with one RemotePlant per layer.")
    layer = layers[0]
    local = layer.plant
    plant = RemotePlant(remote["address"], token=read_token(remote), timeout=float(remote["timeout"]),
                        wait_for_device_s=float(remote["wait_for_device_s"]), client_id=client_id)
    mine = (local.in_features, local.out_features, local.control_specs())
    theirs = (plant.in_features, plant.out_features, plant.control_specs())
    if mine != theirs:
        plant.close()
        raise SpecError(f"the device at {remote['address']} ({plant.server_info['description']}: "
                        f"{theirs[0]} -> {theirs[1]} features, controls {sorted(theirs[2])}) does not have the "
                        f"interface of the model's plant ({local.describe()}: {mine[0]} -> {mine[1]}, controls "
                        f"{sorted(mine[2])}); serve the plant the model was built for.")
    if layer.twin is None and hasattr(local, "nominal_twin"):
        layer.set_twin(local.nominal_twin())
    layer.plant = plant
    return plant


def close_remote(model: nn.Module) -> None:
    """Release the lease and close the connection of every remote plant of ``model``."""
    from ..layers import plants_of
    for plant in plants_of(model):  # without importing pnnlab.remote (and grpc) for a local run
        if type(plant).__module__.startswith("pnnlab.remote."):
            plant.close()
