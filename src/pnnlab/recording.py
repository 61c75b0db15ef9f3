"""Recording and replay at the plant boundary (issue 11, section 3).

Every query a plant answers (``plant(x, controls)`` and capability queries such as
:meth:`~pnnlab.plants.capabilities.EnergyBased.relax`) passes through one hook in
:class:`~pnnlab.plants.base.Plant`. A :class:`PlantRecorder` attached there appends each query to a
SQLite database (Python's standard :mod:`sqlite3`; one file, readable with any SQLite client):

* ``plants``: one row per recorded plant: the name given to the recorder, its class, ``describe()``,
  ``in_features``/``out_features``, its control specs and its cost model (JSON);
* ``meta``: key/value JSON (format version, pnnlab version, creation time, status, user metadata such
  as the run configuration);
* ``queries``: one row per query: a global sequence number ``seq`` (order of the run), the plant
  name, the plant's own query index ``index``, ``kind`` (``"call"`` or ``"relax"``), the wall clock
  time (seconds since the epoch), the device seconds and joules the query added to the plant's meter
  (energy charged inside the query, such as programming pulses, included), the batch size, whether
  the meter counted it, and the error text of a query whose result failed the boundary check;
* ``tensors``: the tensors of each query by ``(seq, role, name)``: role ``input`` (``x``),
  ``control`` (one per control), ``output`` (the measured ``y``, or an equilibrium's ``output``,
  ``nodes.<i>`` and ``power_W``) and ``nudge``; raw bytes with dtype and shape, so a round trip is
  bit-identical.

Every query is committed before its result goes back to the trainer (SQLite in WAL mode), so a
process killed at any moment (SIGKILL included) loses no query the device answered, short of the one
being written. ``synchronous=NORMAL`` by default: durable when the process dies; an operating-system
crash or power cut can lose the last transactions (the file stays consistent). ``power_loss_safe=True``
syncs every commit to disk (``synchronous=FULL``; measured 1.8 ms per query against 0.15 ms on this
project's machine, see ``docs/recording.md``).

:class:`Recording` reads a database back; :meth:`Recording.to_dataset` gives ``(x, controls, y)``
tensors for fitting a twin (Wright et al. 2022, doi:10.1038/s41586-021-04223-6, fit theirs to
recorded input-output pairs). :class:`ReplayPlant` answers queries from a recording, which lets a
training run be repeated without the device (tests, debugging).

The ``energy_gradients(state)`` read-outs of an energy-based plant are recorded with the relaxation
whose state they read (role ``energy_gradient``), so a :class:`ReplayPlant` of an energy-based plant
serves ``relax`` and ``energy_gradients`` too. Resuming a killed run (checkpoints, replay of the queries
after the last one) builds on this file: see :mod:`pnnlab.checkpoint`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Mapping, NamedTuple, Sequence

import torch

from .metering import CostModel
from .plants.base import ControlSpec, Plant
from .plants.capabilities import Equilibrium, OutputClamp, OutputForce

#: version of the database layout written by :class:`PlantRecorder`
FORMAT_VERSION = 2
#: versions this pnnlab reads (1: no plant identity, no energy gradients)
READABLE_VERSIONS = (1, 2)

_DTYPES = {str(d).removeprefix("torch."): d for d in (torch.float16, torch.bfloat16, torch.float32,
                                                       torch.float64, torch.int64, torch.int32, torch.bool)}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plants (name TEXT PRIMARY KEY, class TEXT NOT NULL, description TEXT NOT NULL,
    in_features INTEGER NOT NULL, out_features INTEGER NOT NULL, control_specs TEXT NOT NULL,
    cost TEXT NOT NULL, identity TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS queries (seq INTEGER PRIMARY KEY, plant TEXT NOT NULL REFERENCES plants(name),
    plant_index INTEGER NOT NULL, kind TEXT NOT NULL, wall_time REAL NOT NULL, device_seconds REAL NOT NULL,
    joules REAL NOT NULL, batch INTEGER NOT NULL, metered INTEGER NOT NULL, error TEXT, info TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tensors (seq INTEGER NOT NULL REFERENCES queries(seq), role TEXT NOT NULL,
    name TEXT NOT NULL, dtype TEXT NOT NULL, shape TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (seq, role, name));
"""


def _encode(tensor: torch.Tensor) -> tuple[str, str, bytes]:
    t = tensor.detach().cpu().contiguous()
    name = str(t.dtype).removeprefix("torch.")
    if name not in _DTYPES:
        raise TypeError(f"cannot record a tensor of dtype {t.dtype}; supported: {sorted(_DTYPES)}.")
    flat = t.reshape(-1)
    raw = flat.view(torch.uint8) if t.dtype != torch.bool else flat.to(torch.uint8)
    return name, json.dumps(list(t.shape)), raw.numpy().tobytes()


def _decode(dtype: str, shape: str, data: bytes) -> torch.Tensor:
    if dtype not in _DTYPES:
        raise ValueError(f"the recording holds a tensor of unknown dtype {dtype!r}.")
    raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    target = _DTYPES[dtype]
    t = raw.to(torch.bool) if target == torch.bool else raw.view(target)
    return t.reshape(json.loads(shape)).clone()


def _spec_to_json(spec: ControlSpec) -> dict:
    return asdict(spec) | {"shape": list(spec.shape)}


def _spec_from_json(data: dict) -> ControlSpec:
    return ControlSpec(**(data | {"shape": tuple(data["shape"])}))


class PlantRecorder:
    """Append every query of the attached plants to a SQLite file at ``path``.

    ``plants`` is a :class:`~pnnlab.plants.base.Plant`, a sequence of plants (named ``"0"``,
    ``"1"``, ... in order, as :func:`pnnlab.plants_of` lists a model's plants) or a mapping
    name -> plant. ``metadata`` is any JSON-serialisable dict (for example the run configuration)
    stored in the ``meta`` table. The file must not exist yet (a recording is never overwritten or
    appended to by a second run).

    Use as a context manager (:func:`record`), or call :meth:`close` yourself. Every query is
    committed as it is recorded (see the module docstring); ``power_loss_safe=True`` also syncs each
    commit to disk. :meth:`add_plants` records more plants later (a run that builds a model per method).
    """

    def __init__(self, path: str | Path, plants: Plant | Sequence[Plant] | Mapping[str, Plant], *,
                 metadata: Mapping | None = None, power_loss_safe: bool = False) -> None:
        named = _named_plants(plants)
        self._create(path, metadata, power_loss_safe)
        self.add_plants(named)

    def _create(self, path, metadata, power_loss_safe: bool) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"path={str(self.path)!r} already exists; a recording is never overwritten. "
                                  f"Choose a new file (one per run) or delete the old one.")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}.")
        if not isinstance(power_loss_safe, bool):
            raise TypeError(f"power_loss_safe must be True or False, got {power_loss_safe!r}.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connect(power_loss_safe)
        self._db.executescript(self._schema())
        self._seq = 0
        meta = {"format_version": FORMAT_VERSION, "pnnlab_version": _pnnlab_version(),
                "created": time.time(), "status": "open", "user": dict(metadata or {})}
        self._db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
        self._db.commit()

    def _connect(self, power_loss_safe: bool) -> None:
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if power_loss_safe else 'NORMAL'}")
        self._names: dict[int, str] = {}
        self._index: dict[str, int] = {}
        self._plants: dict[str, Plant] = {}
        self._states: dict[int, tuple] = {}  # id(Equilibrium) -> (weakref, seq), for energy gradients

    @staticmethod
    def _schema() -> str:
        return _SCHEMA

    def add_plants(self, plants: Plant | Sequence[Plant] | Mapping[str, Plant]) -> None:
        """Record these plants too (names must be new; a list is named ``"0"``, ``"1"``, ...)."""
        if self._db is None:
            raise RuntimeError(f"the recorder of {str(self.path)!r} is closed; plants cannot be added.")
        named = _named_plants(plants)
        for name, plant in named.items():
            if name in self._plants or id(plant) in self._names:
                raise ValueError(f"plant {name!r} ({plant.describe()}) is already recorded by this recorder; "
                                 f"give each plant one new name.")
            self._insert_plant(name, plant)
        self._db.commit()
        for name, plant in named.items():
            self._register(name, plant, index=0)

    def _insert_plant(self, name: str, plant: Plant) -> None:
        specs = {k: _spec_to_json(v) for k, v in plant.control_specs().items()}
        self._db.execute("INSERT INTO plants VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (name, f"{type(plant).__module__}.{type(plant).__qualname__}", plant.describe(),
                          plant.in_features, plant.out_features, json.dumps(specs),
                          json.dumps(asdict(plant.cost)), json.dumps(_identity(plant))))

    def _register(self, name: str, plant: Plant, *, index: int) -> None:
        self._names[id(plant)] = name
        self._index[name] = index
        self._plants[name] = plant
        plant.attach_recorder(self)

    @property
    def queries(self) -> int:
        """Number of queries recorded so far (committed or not)."""
        return self._seq

    def on_query(self, plant: Plant, *, kind: str, x: torch.Tensor, controls: Mapping[str, torch.Tensor],
                 result, error: BaseException | None, device_seconds: float, joules: float, metered: bool,
                 nudge=None, initial=None, generator=None, **extra) -> None:
        """The boundary hook (called by :class:`~pnnlab.plants.base.Plant`): append one query."""
        if self._db is None:
            raise RuntimeError(f"the recorder of {str(self.path)!r} is closed but still attached to "
                               f"{type(plant).__name__}; detach it or keep it open while the plant is used.")
        name = self._names.get(id(plant))
        if name is None:
            raise RuntimeError(f"{type(plant).__name__} reported a query to a recorder it was not registered with.")
        seq = self._seq
        info: dict = {}
        tensors = [("input", "x", x)] + [("control", k, v) for k, v in controls.items()]
        if isinstance(result, torch.Tensor):
            tensors.append(("output", "y", result))
        elif isinstance(result, Equilibrium):
            tensors.append(("output", "output", result.output))
            info["nodes"] = []
            for i, node in enumerate(result.nodes):
                if isinstance(node, torch.Tensor):
                    tensors.append(("output", f"nodes.{i}", node))
                    info["nodes"].append(i)
            if isinstance(result.power_W, torch.Tensor):
                tensors.append(("output", "power_W", result.power_W))
            info["residual"] = result.residual
        if kind == "relax":
            info["nudge"] = ("free" if nudge is None else "force" if isinstance(nudge, OutputForce)
                             else "clamp")
            if isinstance(nudge, (OutputForce, OutputClamp)):
                tensors.append(("nudge", info["nudge"], nudge.force if isinstance(nudge, OutputForce)
                                else nudge.value))
            info["warm_start"] = initial is not None
            info["force_unit"] = float(getattr(plant, "force_unit", 1.0))
        self._db.execute("INSERT INTO queries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (seq, name, self._index[name], kind, time.time(), float(device_seconds), float(joules),
                          int(x.shape[0]), int(metered),
                          None if error is None else f"{type(error).__name__}: {error}", json.dumps(info)))
        self._db.executemany("INSERT INTO tensors VALUES (?, ?, ?, ?, ?, ?)",
                             [(seq, role, tname, *_encode(t)) for role, tname, t in tensors])
        if isinstance(result, Equilibrium):
            self._remember_state(result, seq)
        self._after_query(seq, plant, result, generator)
        self._seq += 1
        self._index[name] += 1
        self._db.commit()  # durable before the result goes back to the trainer

    def _after_query(self, seq: int, plant: Plant, result, generator) -> None:
        """Hook for subclasses (in the query's transaction): :class:`pnnlab.checkpoint.RunRecorder`
        stores the plant's state after the query here."""

    def _remember_state(self, state: Equilibrium, seq: int) -> None:
        import weakref
        if len(self._states) > 256:  # states already garbage-collected
            self._states = {k: v for k, v in self._states.items() if v[0]() is not None}
        self._states[id(state)] = (weakref.ref(state), seq)

    def on_energy_gradients(self, plant: Plant, state, gradients: Mapping[str, torch.Tensor]) -> None:
        """The read-out hook: store ``energy_gradients(state)`` with the relaxation that produced ``state``
        (a state this recorder did not see relaxed is ignored; a repeated read-out keeps the first)."""
        if self._db is None:
            return
        entry = self._states.get(id(state))
        if entry is None or entry[0]() is not state:
            return
        seq = entry[1]
        self._db.executemany("INSERT OR IGNORE INTO tensors VALUES (?, ?, ?, ?, ?, ?)",
                             [(seq, "energy_gradient", k, *_encode(v)) for k, v in gradients.items()])
        self._db.commit()

    def commit(self) -> None:
        """Make everything recorded so far durable (each query already is, when it is recorded)."""
        if self._db is not None:
            self._db.commit()

    def step_callback(self, record: dict) -> None:
        """A ``pnnlab.train(callback=...)`` that commits after every training step and evaluation (kept for
        existing code: every query is committed when it is recorded)."""
        self.commit()

    def close(self, *, status: str = "closed") -> None:
        """Commit, mark the recording ``status`` and detach from the plants (idempotent)."""
        if self._db is None:
            return
        for plant in self._plants.values():
            plant.detach_recorder(self)
        self._db.execute("UPDATE meta SET value = ? WHERE key = 'status'", (json.dumps(status),))
        self._db.commit()
        self._db.close()
        self._db = None

    def __enter__(self) -> "PlantRecorder":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # the queries before an exception happened on the device: keep them, and say how the run ended
        self.close(status="closed" if exc_type is None else f"failed: {exc_type.__name__}: {exc}")


@contextmanager
def record(plants: Plant | Sequence[Plant] | Mapping[str, Plant], path: str | Path, *,
           metadata: Mapping | None = None) -> Iterator[PlantRecorder]:
    """``with record(plants, "run/queries.sqlite") as rec:`` attach a :class:`PlantRecorder` for the
    block; every query is committed when the block ends, normally or by an exception."""
    recorder = PlantRecorder(path, plants, metadata=metadata)
    with recorder:
        yield recorder


def _named_plants(plants) -> dict[str, Plant]:
    if isinstance(plants, Plant):
        named = {"0": plants}
    elif isinstance(plants, Mapping):
        named = dict(plants)
    elif isinstance(plants, Sequence) and not isinstance(plants, (str, bytes)):
        named = {str(i): p for i, p in enumerate(plants)}
    else:
        raise TypeError(f"plants must be a Plant, a list of plants or a dict name -> plant, got "
                        f"{type(plants).__name__}; for a model pass pnnlab.plants_of(model).")
    if not named:
        raise ValueError("plants is empty; pass at least one plant to record.")
    for name, plant in named.items():
        if not isinstance(name, str) or not isinstance(plant, Plant):
            raise TypeError(f"plants[{name!r}] must map a str name to a Plant, got {type(plant).__name__}.")
    if len({id(p) for p in named.values()}) != len(named):
        raise ValueError("the same plant appears twice in plants; record each plant once.")
    return named


def _identity(plant: Plant) -> dict:
    """``plant.identity()`` as JSON-normal data (tuples become lists, as they do in the file)."""
    identity = plant.identity()
    if not isinstance(identity, Mapping):
        raise TypeError(f"{type(plant).__name__}.identity() must return a dict, got {type(identity).__name__}.")
    try:
        return json.loads(json.dumps(dict(identity)))
    except TypeError as error:
        raise TypeError(f"{type(plant).__name__}.identity() must be JSON-serialisable ({error}).") from None


def _pnnlab_version() -> str:
    from . import __version__
    return __version__


@dataclass(frozen=True)
class Query:
    """One recorded query. ``output`` is ``y`` for a call and the equilibrium's output for a relax
    (``None`` when the measurement failed the boundary check, then ``error`` says why); ``extra``
    holds a relax's ``nodes.<i>``, ``power_W``, the nudge tensor and the ``energy_gradient.<control>``
    read out from its state; ``info`` the nudge kind, warm start and solver residual."""

    seq: int
    plant: str
    plant_index: int
    kind: str
    wall_time: float
    device_seconds: float
    joules: float
    batch: int
    metered: bool
    error: str | None
    x: torch.Tensor
    controls: dict
    output: torch.Tensor | None
    extra: dict
    info: dict


class QueryDataset(NamedTuple):
    """Recorded input-output pairs of one plant: ``x`` (N, in), ``controls`` (name -> (N, *shape),
    the settings each sample was measured with), ``y`` (N, out), ``seq`` (N,) the query of each sample."""

    x: torch.Tensor
    controls: dict
    y: torch.Tensor
    seq: torch.Tensor


class Recording:
    """Read a database written by :class:`PlantRecorder` (read-only; safe while a run is still writing:
    it sees the committed queries)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"path={str(self.path)!r} is not a recording file; pass the .sqlite file "
                                    f"a PlantRecorder wrote.")
        self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            self.meta = {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}
            version = self.meta.get("format_version")
            identity = "identity" if version == FORMAT_VERSION else "'{}'"
            rows = self._db.execute("SELECT name, class, description, in_features, out_features, control_specs, "
                                    f"cost, {identity} FROM plants ORDER BY rowid").fetchall()
            if version not in READABLE_VERSIONS:
                raise ValueError(f"{str(self.path)!r} has recording format {version!r}; this pnnlab reads formats "
                                 f"{READABLE_VERSIONS}.")
        except sqlite3.DatabaseError as error:
            raise ValueError(f"{str(self.path)!r} is not a pnnlab recording ({error}).") from None
        self.plants = {r[0]: {"class": r[1], "description": r[2], "in_features": r[3], "out_features": r[4],
                              "control_specs": {k: _spec_from_json(v) for k, v in json.loads(r[5]).items()},
                              "cost": CostModel(**json.loads(r[6])), "identity": json.loads(r[7])} for r in rows}

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Recording":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM queries").fetchone()[0]

    def _plant_name(self, plant: str | None) -> str:
        if plant is None:
            if len(self.plants) != 1:
                raise ValueError(f"the recording holds plants {sorted(self.plants)}; pass plant=<name>.")
            return next(iter(self.plants))
        if plant not in self.plants:
            raise KeyError(f"plant={plant!r} is not in the recording; it holds {sorted(self.plants)}.")
        return plant

    def queries(self, plant: str | None = None, *, kind: str | None = None) -> Iterator[Query]:
        """The recorded queries in order (of one plant if ``plant`` is given, of one kind if ``kind`` is)."""
        sql, args = "SELECT * FROM queries", []
        where = []
        if plant is not None:
            where.append("plant = ?")
            args.append(self._plant_name(plant))
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if where:
            sql += " WHERE " + " AND ".join(where)
        for row in self._db.execute(sql + " ORDER BY seq", args).fetchall():
            yield self._query(row)

    def _query(self, row) -> Query:
        seq = row[0]
        x, controls, output, extra = None, {}, None, {}
        for role, name, dtype, shape, data in self._db.execute(
                "SELECT role, name, dtype, shape, data FROM tensors WHERE seq = ? ORDER BY rowid", (seq,)):
            t = _decode(dtype, shape, data)
            if role == "input":
                x = t
            elif role == "control":
                controls[name] = t
            elif role == "output" and name in ("y", "output"):
                output = t
            elif role == "energy_gradient":
                extra[f"energy_gradient.{name}"] = t
            else:
                extra[name] = t
        return Query(seq=seq, plant=row[1], plant_index=row[2], kind=row[3], wall_time=row[4],
                     device_seconds=row[5], joules=row[6], batch=row[7], metered=bool(row[8]), error=row[9],
                     x=x, controls=controls, output=output, extra=extra, info=json.loads(row[10]))

    def to_dataset(self, plant: str | None = None) -> QueryDataset:
        """Every successful ``__call__`` query of ``plant`` as input-output pairs for twin fitting."""
        name = self._plant_name(plant)
        xs, ys, seqs, controls = [], [], [], {k: [] for k in self.plants[name]["control_specs"]}
        for q in self.queries(name, kind="call"):
            if q.output is None:
                continue
            xs.append(q.x)
            ys.append(q.output)
            seqs.append(torch.full((q.batch,), q.seq, dtype=torch.int64))
            for k, v in q.controls.items():
                controls[k].append(v.unsqueeze(0).expand(q.batch, *v.shape))
        if not xs:
            raise ValueError(f"the recording has no successful queries of plant {name!r}; nothing to fit to.")
        return QueryDataset(torch.cat(xs), {k: torch.cat(v) for k, v in controls.items()}, torch.cat(ys),
                            torch.cat(seqs))


# replay lives in its own module; re-exported here so `pnnlab.recording` keeps one import path
from .replay import EnergyReplayPlant, ReplayMismatchError, ReplayPlant  # noqa: E402,F401
