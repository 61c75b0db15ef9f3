"""Checkpoints of a training run and replay of the queries after them (issue 11, section 3:
``pnnlab run --resume RUN_DIR``).

A run's ``queries.sqlite`` (:class:`RunRecorder`, a :class:`~pnnlab.recording.PlantRecorder` with three
more tables) holds, in one SQLite file:

* every plant query (the recording format of :mod:`pnnlab.recording`), committed before its result
  goes back to the trainer;
* ``query_state``: for each query since the newest checkpoint, the plant's state right after it
  (:meth:`~pnnlab.plants.base.Plant.state_dict` and the meter), the state of the per-call generator it
  drew from (evaluation noise) and the full result object (an ``Equilibrium`` with its private warm
  start data, for example);
* ``checkpoints``: the newest checkpoint (one row, replaced): the model's ``state_dict``, the method's
  and the layers' twins' state (:func:`dumps_with_references`), each plant's state and meter, the
  torch, numpy and Python global generators, :class:`~pnnlab.train.TrainState` (epoch, batch,
  sample order, data-order and evaluation generators, optimizer, usage totals), the results of the
  methods already finished, and the recording position ``seq``;
* ``records``: the metrics records up to the newest checkpoint (appended with it, in its transaction,
  so a checkpoint never refers to records that are not on file).

Resume, not repeat: a resumed run is rebuilt from the configuration, restored from the checkpoint, and
every query recorded after the checkpoint is *answered from the file* (:meth:`RunRecorder.answer`: the
query must match the recorded one exactly, as :class:`~pnnlab.replay.ReplayPlant` requires), with the
plant and the per-call generator set to their recorded state after that query, so the device is never
asked twice and a simulated plant continues bit-identically; the queries after the last recorded one
go to the device.

Checkpoints are written at the start of every method's training and then at the first record after
``checkpoint_every_s`` seconds of wall time. How often does not change the result (every query after
the checkpoint is replayed); it only bounds the digital work redone on resume and what a checkpoint
costs (measured in ``docs/recording.md``).

Checkpoints are pickles (``torch.load(weights_only=False)``): load only run folders you wrote yourself.
"""

from __future__ import annotations

import io
import json
import pickle
import random
import sqlite3
import time
from dataclasses import replace
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch import nn

from .layers import physical_layers
from .plants.base import Plant
from .recording import _SCHEMA, FORMAT_VERSION, PlantRecorder, _decode, _identity
from .replay import ReplayMismatchError, _difference
from .train import TrainState

#: version of the checkpoint payload
CHECKPOINT_FORMAT = 1

_RUN_SCHEMA = _SCHEMA + """
CREATE TABLE IF NOT EXISTS query_state (seq INTEGER PRIMARY KEY REFERENCES queries(seq), data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (id INTEGER PRIMARY KEY CHECK (id = 0), seq INTEGER NOT NULL,
    method_index INTEGER NOT NULL, step INTEGER NOT NULL, written REAL NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS records (id INTEGER PRIMARY KEY, method_index INTEGER NOT NULL, data TEXT NOT NULL);
"""


class ResumeError(ValueError):
    """A run folder cannot be resumed (no checkpoint, a changed configuration, another device...)."""


class PlantIdentityError(ResumeError):
    """The plant of a resumed run is not the device the run recorded."""


# ---- pickling with references to the live model ----------------------------------------------------

def _model_objects(model: nn.Module) -> dict[int, tuple]:
    """id -> reference for every object of ``model`` a method may hold: modules, parameters, buffers
    (by name) and plants (by position)."""
    refs: dict[int, tuple] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        refs.setdefault(id(module), ("module", name))
    for name, p in model.named_parameters(remove_duplicate=False):
        refs.setdefault(id(p), ("parameter", name))
    for name, b in model.named_buffers(remove_duplicate=False):
        refs.setdefault(id(b), ("buffer", name))
    for i, plant in enumerate(_unique_plants(model)):
        refs.setdefault(id(plant), ("plant", i))
    return refs


def _resolve(model: nn.Module, ref: tuple):
    kind, key = ref
    if kind == "module":
        return model.get_submodule(key) if key else model
    if kind == "parameter":
        return dict(model.named_parameters(remove_duplicate=False))[key]
    if kind == "buffer":
        return dict(model.named_buffers(remove_duplicate=False))[key]
    if kind == "plant":
        return _unique_plants(model)[key]
    raise ValueError(f"unknown reference {ref!r} in a checkpoint.")


def dumps_with_references(obj, model: nn.Module) -> bytes:
    """Pickle ``obj`` (a method's state, twins) with every reference to ``model``'s modules, parameters,
    buffers and plants stored as a reference (never by value), and every ``int`` equal to the ``id()``
    of one of them (caches keyed by ``id(module)``) stored as "the id of" that object.

    The ``id()`` rule assumes no other integer of the state equals an object's memory address (ids are
    addresses above 2**16 here; counters and sizes do not reach them in practice)."""
    refs = _model_objects(model)

    class Pickler(pickle.Pickler):
        def persistent_id(self, value):
            if type(value) is int:
                return ("id",) + refs[value] if value > 2 ** 16 and value in refs else None
            ref = refs.get(id(value))
            return ref if ref is not None and not isinstance(value, (int, str, bytes, tuple)) else None

    buffer = io.BytesIO()
    try:
        Pickler(buffer, protocol=5).dump(obj)
    except (pickle.PicklingError, TypeError, AttributeError) as error:
        raise TypeError(f"cannot checkpoint {type(obj).__name__}: {error}. A method or twin holding state that "
                        f"pickle cannot carry (an open file, a lambda, a device handle) must define "
                        f"state_dict()/load_state_dict() returning picklable data.") from error
    return buffer.getvalue()


def loads_with_references(data: bytes, model: nn.Module):
    """Unpickle what :func:`dumps_with_references` wrote, resolving the references against ``model``
    (the rebuilt model of a resumed run)."""

    class Unpickler(pickle.Unpickler):
        def persistent_load(self, ref):
            if ref[0] == "id":
                return id(_resolve(model, ref[1:]))
            return _resolve(model, ref)

    return Unpickler(io.BytesIO(data)).load()


def _unique_plants(model: nn.Module) -> list[Plant]:
    seen, out = set(), []
    for layer in physical_layers(model):
        if id(layer.plant) not in seen:
            seen.add(id(layer.plant))
            out.append(layer.plant)
    return out


# ---- checkpoint payload ---------------------------------------------------------------------------

def capture(*, method_index: int, state: TrainState, model: nn.Module, method, results: list) -> bytes:
    """The checkpoint of a run at ``state`` (see the module docstring), as bytes."""
    layers = physical_layers(model)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "method_index": method_index,
        "train": replace(state.snapshot(), records=[]),
        "records": len(state.records),
        "model": model.state_dict(),
        "objects": dumps_with_references({"method": method.state_dict(), "twins": [l.twin for l in layers]}, model),
        "plants": [{"state": p.state_dict(), "meter": dict(vars(p.meter))} for p in _unique_plants(model)],
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        "results": list(results),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def read(data: bytes) -> dict:
    """The payload of a checkpoint (a pickle: load only checkpoints you wrote)."""
    payload = torch.load(io.BytesIO(data), weights_only=False, map_location="cpu")
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise ResumeError(f"the checkpoint has format {payload.get('format')!r}; this pnnlab reads format "
                          f"{CHECKPOINT_FORMAT}. Resume it with the pnnlab version that wrote it.")
    return payload


def restore(payload: dict, *, model: nn.Module, method, records: list[dict]) -> TrainState:
    """Load a checkpoint payload into the rebuilt ``model``, ``method`` and plants; returns the
    :class:`TrainState` to pass to ``train(resume=...)``. The global generators are restored last."""
    model.load_state_dict(payload["model"])
    objects = loads_with_references(payload["objects"], model)
    method.load_state_dict(objects["method"])
    for layer, twin in zip(physical_layers(model), objects["twins"], strict=True):
        layer.set_twin(twin)
    plants = _unique_plants(model)
    if len(plants) != len(payload["plants"]):
        raise ResumeError(f"the checkpoint holds {len(payload['plants'])} plants, the rebuilt model "
                          f"{len(plants)}; the model changed since the run was written.")
    for plant, saved in zip(plants, payload["plants"]):
        plant.load_state_dict(saved["state"])
        vars(plant.meter).update(saved["meter"])
    if len(records) != payload["records"]:
        raise ResumeError(f"the run file holds {len(records)} records of this method, the checkpoint "
                          f"{payload['records']}; the file is inconsistent.")
    state = replace(payload["train"], records=list(records))
    restore_rng(payload["rng"])
    return state


def restore_rng(rng: Mapping) -> None:
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])


# ---- the run's recording ------------------------------------------------------------------------

class _Array:
    """A CPU tensor stored as a numpy array (pickles several times faster than a tensor)."""
    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __reduce__(self):
        return _Array, (self.array,)


def _pack(obj):
    if isinstance(obj, torch.Tensor) and obj.device.type == "cpu" and obj.dtype != torch.bfloat16 \
            and not obj.requires_grad and type(obj) is torch.Tensor:
        return _Array(obj.numpy().copy())
    if isinstance(obj, dict):
        return {k: _pack(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(_pack(v) for v in obj)
    return obj


def _unpack(obj):
    if isinstance(obj, _Array):
        return torch.from_numpy(obj.array)
    if isinstance(obj, dict):
        return {k: _unpack(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(_unpack(v) for v in obj)
    return obj


class _Pending:
    __slots__ = ("seq", "plant", "kind", "x", "controls", "nudge", "warm_start", "device_seconds", "joules",
                 "state")

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


class RunRecorder(PlantRecorder):
    """The recording of a run, with its checkpoints and, when resumed, the replay of the queries
    recorded after the newest checkpoint (see the module docstring). Make one with :meth:`create`
    (a new run) or :meth:`open` (a resumed run); add each method's plants with :meth:`add_plants`."""

    def __init__(self, *args, **kwargs) -> None:  # pragma: no cover - use create() or open()
        raise TypeError("make a RunRecorder with RunRecorder.create(path, metadata=...) or RunRecorder.open(path).")

    @staticmethod
    def _schema() -> str:
        return _RUN_SCHEMA

    @classmethod
    def create(cls, path: str | Path, *, metadata: Mapping | None = None,
               power_loss_safe: bool = False) -> "RunRecorder":
        self = object.__new__(cls)
        self._create(path, metadata, power_loss_safe)
        self._pending: list[_Pending] = []
        self._counts: dict[str, int] = {}
        self._recorded: dict[str, dict] = {}
        return self

    @classmethod
    def open(cls, path: str | Path, *, power_loss_safe: bool = False) -> "RunRecorder":
        """Reopen the run file at ``path`` to continue it: the queries after its newest checkpoint become
        the replay queue. Raises :class:`ResumeError` if it has no checkpoint."""
        self = object.__new__(cls)
        self.path = Path(path)
        if not self.path.is_file():
            raise ResumeError(f"{str(self.path)!r} does not exist: the run folder has no recording to resume "
                              f"from (was it written by this pnnlab?).")
        self._connect(power_loss_safe)
        try:
            meta = {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}
            row = self._db.execute("SELECT seq FROM checkpoints WHERE id = 0").fetchone()
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise ResumeError(f"{str(self.path)!r} is not a run recording with checkpoints ({error}).") from None
        if meta.get("format_version") != FORMAT_VERSION or row is None:
            self._db.close()
            raise ResumeError(f"{str(self.path)!r} holds no checkpoint: the run stopped before its first "
                              f"training step was prepared. Nothing was trained; start a new run.")
        self.meta = meta
        self._seq = self._db.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM queries").fetchone()[0]
        self._counts = dict(self._db.execute("SELECT plant, COUNT(*) FROM queries GROUP BY plant").fetchall())
        self._recorded = {name: json.loads(identity) for name, identity in
                          self._db.execute("SELECT name, identity FROM plants")}
        self._pending = self._load_pending(row[0])
        self._db.execute("UPDATE meta SET value = ? WHERE key = 'status'", (json.dumps("open"),))
        self._db.commit()
        return self

    def _load_pending(self, since: int) -> list[_Pending]:
        pending = []
        rows = self._db.execute(
            "SELECT q.seq, q.plant, q.kind, q.device_seconds, q.joules, q.error, q.info, s.data FROM queries q "
            "LEFT JOIN query_state s ON s.seq = q.seq WHERE q.seq >= ? ORDER BY q.seq", (since,)).fetchall()
        for seq, plant, kind, seconds, joules, error, info, data in rows:
            if error is not None or data is None:
                break  # a failed query (or one without its state) is measured again; nothing after it is used
            x, controls, nudge = None, {}, None
            for role, name, dtype, shape, blob in self._db.execute(
                    "SELECT role, name, dtype, shape, data FROM tensors WHERE seq = ? AND role IN "
                    "('input', 'control', 'nudge')", (seq,)):
                t = _decode(dtype, shape, blob)
                if role == "input":
                    x = t
                elif role == "control":
                    controls[name] = t
                else:
                    nudge = t
            pending.append(_Pending(seq=seq, plant=plant, kind=kind, x=x, controls=controls, nudge=nudge,
                                    warm_start=json.loads(info).get("warm_start"), device_seconds=seconds,
                                    joules=joules, state=data))
        return pending

    @property
    def pending(self) -> int:
        """Recorded queries still to be replayed."""
        return len(self._pending)

    def add_plants(self, plants) -> None:
        """Record these plants. A name the file already holds (a resumed run) must come with the same
        device: its :meth:`~pnnlab.plants.base.Plant.identity` must equal the recorded one, else
        :class:`PlantIdentityError`."""
        from .recording import _named_plants
        named = _named_plants(plants)
        self.check_identity(named)
        new = {}
        for name, plant in named.items():
            if name in self._recorded:
                self._register(name, plant, index=self._counts.get(name, 0))
            else:
                new[name] = plant
        if new:
            super().add_plants(new)

    def check_identity(self, plants: Mapping[str, Plant]) -> None:
        """Raise :class:`PlantIdentityError` if a plant under a recorded name is not the recorded device
        (its :meth:`~pnnlab.plants.base.Plant.identity` differs); new names pass."""
        for name, plant in plants.items():
            recorded = self._recorded.get(name)
            if recorded is None:
                continue
            now = _identity(plant)
            if now != recorded:
                diff = sorted(k for k in set(now) | set(recorded) if now.get(k) != recorded.get(k))
                raise PlantIdentityError(
                    f"plant {name!r} is not the device this run recorded: its identity differs in {diff} "
                    f"(recorded {[recorded.get(k) for k in diff]}, now {[now.get(k) for k in diff]}). Resume "
                    f"against the same device, or start a new run.")

    def _after_query(self, seq: int, plant: Plant, result, generator) -> None:
        # a call's result is its recorded output (tensors table); other results are kept whole
        state = {"plant": plant.state_dict(), "meter": dict(vars(plant.meter)),
                 "generator": None if generator is None else generator.get_state(),
                 "result": None if isinstance(result, torch.Tensor) else result}
        self._db.execute("INSERT INTO query_state VALUES (?, ?)", (seq, pickle.dumps(_pack(state), protocol=5)))

    def answer(self, plant: Plant, *, kind: str, x: torch.Tensor, controls: Mapping, generator=None, nudge=None,
               initial=None, **extra):
        """The replay hook (see :meth:`Plant.attach_recorder`): the next recorded query, if any, must be
        this one; then the plant and the per-call generator are set to their state after it and its
        recorded result is returned. ``None`` once every recorded query has been replayed."""
        if not self._pending:
            return None
        q = self._pending[0]
        name = self._names.get(id(plant))
        where = f"resumed run, recorded query seq {q.seq} (plant {q.plant!r}, {q.kind})"
        problem = None
        if name != q.plant or kind != q.kind:
            problem = f"plant {name!r} asked for a {kind} query"
        else:
            problem = _difference("x", x, q.x, 0.0)
            for k in q.controls:
                problem = problem or _difference(f"controls[{k!r}]", controls[k], q.controls[k], 0.0)
            value = None if nudge is None else getattr(nudge, "force", getattr(nudge, "value", None))
            if problem is None and (value is None) != (q.nudge is None):
                problem = "the nudge differs (one of them has none)"
            elif problem is None and value is not None:
                problem = _difference("nudge", value, q.nudge, 0.0)
            if problem is None and q.warm_start is not None and (initial is not None) != q.warm_start:
                problem = "the warm start differs"
        if problem:
            raise ReplayMismatchError(f"{where}: {problem}; the resumed run diverged from the recorded one "
                                      f"(non-deterministic code, or a change since the run was written).")
        self._pending.pop(0)
        state = _unpack(pickle.loads(q.state))
        if state["result"] is None:
            row = self._db.execute("SELECT dtype, shape, data FROM tensors WHERE seq = ? AND role = 'output' AND "
                                   "name = 'y'", (q.seq,)).fetchone()
            state["result"] = _decode(*row)
        plant.load_state_dict(state["plant"])
        vars(plant.meter).update(state["meter"])
        if generator is not None and state["generator"] is not None:
            generator.set_state(state["generator"])
        self._index[name] += 1
        return state["result"], q.device_seconds, q.joules

    def write_checkpoint(self, payload: bytes, *, method_index: int, step: int,
                         records: list[tuple[int, dict]]) -> None:
        """Store ``payload`` as the newest checkpoint, with the metrics ``records`` written since the
        previous one, in one transaction; drop the per-query states it makes unnecessary."""
        if self._pending:
            raise RuntimeError(f"a checkpoint while {len(self._pending)} recorded queries are not yet replayed "
                               f"would skip them; checkpoint after the replay.")
        self._db.executemany("INSERT INTO records (method_index, data) VALUES (?, ?)",
                             [(i, json.dumps(r)) for i, r in records])
        self._db.execute("INSERT OR REPLACE INTO checkpoints VALUES (0, ?, ?, ?, ?, ?)",
                         (self._seq, method_index, step, time.time(), payload))
        self._db.execute("DELETE FROM query_state WHERE seq < ?", (self._seq,))
        self._db.commit()

    def checkpoint(self) -> tuple[int, bytes]:
        """``(method_index, payload)`` of the newest checkpoint."""
        row = self._db.execute("SELECT method_index, data FROM checkpoints WHERE id = 0").fetchone()
        return row[0], row[1]

    def records(self) -> list[tuple[int, dict]]:
        """The metrics records on file, ``(method_index, record)``, in order."""
        return [(i, json.loads(d)) for i, d in self._db.execute("SELECT method_index, data FROM records ORDER BY id")]
