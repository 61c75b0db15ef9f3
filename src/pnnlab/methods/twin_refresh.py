"""Twins refreshed during training: a model-based method (PAT by default) whose twins are re-fitted
every ``every`` steps on the plant queries the training itself made.

A twin fitted once drifts out of date: the device drifts (a fibre's transmission matrix, a laser's
power), and training moves the controls away from where the twin was fitted. Work on training against
mismatch and drift keeps the model of the hardware up to date from measurements made during training:
dual adaptive training learns error-prediction networks jointly with the model (Zheng et al., DAT,
arXiv:2212.06141), DOCTOR recalibrates drifting photonic tensor cores when monitors trigger it (ScopeX-ASU,
J. Lightwave Technol. 2024); physics-aware training itself rests on a twin fitted to recorded pairs
(Wright et al., Nature 601, 549 (2022), doi:10.1038/s41586-021-04223-6). (Fully forward mode training,
Xue et al., Nature 632, 280 (2024), doi:10.1038/s41586-024-07687-4, avoids the twin instead, measuring the
gradient in situ.) This module implements the common core, not any one paper's algorithm:

* ``TwinRefresh(inner, every=K, window=W, fit={...})`` runs ``inner.step`` (PAT or in-silico) unchanged;
  while it runs, an in-memory tap at the plant boundary (``plant.attach_recorder``, the hook the SQLite
  recorder uses; attached only during the step) keeps the ``(x, controls, y)`` of every successful plant
  query, per plant, the last ``W`` queries;
* every ``K`` steps each physical layer's twin (it must have trainable parameters: a
  :class:`~pnnlab.twins.LearnedTwin`, :class:`~pnnlab.twins.ResidualTwin` or
  :class:`~pnnlab.twins.CalibratedTwin`) is re-fitted by :func:`~pnnlab.twins.fit_twin` on that plant's
  buffer, warm-started (the twin's normalisation is set on its first fit only), with a validation split
  of whole queries and early stopping: the epoch-0 twin is a candidate, so a refresh never makes the
  twin worse on its held-out queries;
* by default the refresh makes **no plant query** (it uses only queries training already made).
  ``probe_batches=n`` spends a stated budget instead: on each refresh step the last ``n`` training
  batches are sent through the model on the plant once more (one forward query per physical layer per
  batch) and added to the buffer; these queries happen inside :meth:`step`, so the plant meter and the
  training totals (``train_queries``) count them. In-silico training makes no queries, so refreshing it
  needs ``probe_batches >= 1``.

Gradients of a step come from the twin as it was at the start of the step; a refresh after step ``k``
changes the gradients from step ``k + 1`` on. The method keeps the inner method's requirements (a twin)
and its evaluation; it is model-based. It holds no reference to the model: buffers, counters, fit
reports and a copy of every refreshed twin's state (restored into the layers' twins by the next step
after unpickling, since a layer's twin lies outside the model's ``state_dict``), so pickling the method
object checkpoints it.

Simplifications: one fit recipe for every layer; the window is a count of queries, not a time; the
validation split is random over the window (with drift, a split by time would be stricter).
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Mapping

import torch
from torch import nn

from .._validation import check_int, check_positive
from ..execution import OnPlant, executing
from ..layers import PhysicalLayer, physical_layers
from .base import Method, MethodRequirementError, NeedsTwin, Requirement
from .physics_aware import PhysicsAwareTraining

__all__ = ["NeedsFittableTwin", "TwinRefresh", "conformance_example"]

#: fit_twin arguments a refresh may set (the data, the budget and the normalisation are the method's)
_FIT_KEYS = ("val_fraction", "epochs", "lr", "patience", "batch_size", "seed", "weight_decay")
_FIT_DEFAULTS = {"epochs": 30, "lr": 1e-2, "patience": 5, "batch_size": 256, "val_fraction": 0.2, "seed": 0}


class NeedsFittableTwin(Requirement):
    """The layer's twin must have trainable parameters for a refresh to fit."""

    def missing(self, layer):
        twin = layer.twin
        if twin is None:
            return None  # NeedsTwin says so
        if any(p.requires_grad for p in twin.parameters()):
            return None
        return (f"a twin with trainable parameters to refresh (its {type(twin).__name__} has none); pass e.g. "
                f"ResidualTwin.around(plant.nominal_twin(), control_shapes=...), a LearnedTwin or "
                f"CalibratedTwin(plant.nominal_twin(), constants=[...])")


class _Tap:
    """In-memory recorder for one plant: keeps the last ``window`` successful ``__call__`` queries.
    The plant's controls are detached views of the layer's parameters, which the optimizer changes in
    place, so everything is cloned."""

    def __init__(self, window: int | None) -> None:
        self.queries: deque = deque(maxlen=window)
        self.seen = 0

    def on_query(self, plant, *, kind, x, controls, result, error, **_):
        if kind != "call" or error is not None or not isinstance(result, torch.Tensor):
            return
        self.queries.append((x.detach().clone(), {k: v.detach().clone() for k, v in controls.items()},
                             result.detach().clone()))
        self.seen += 1

    def dataset(self):
        from ..recording import QueryDataset
        xs, cs, ys, seq = [], {}, [], []
        for q, (x, controls, y) in enumerate(self.queries):
            xs.append(x)
            ys.append(y)
            seq.append(torch.full((x.shape[0],), q, dtype=torch.int64, device=x.device))
            for k, v in controls.items():
                cs.setdefault(k, []).append(v.reshape(1, *v.shape).expand(x.shape[0], *v.shape))
        return QueryDataset(torch.cat(xs), {k: torch.cat(v) for k, v in cs.items()}, torch.cat(ys), torch.cat(seq))


class TwinRefresh(Method):
    """``inner`` (default :class:`PhysicsAwareTraining`) with every physical layer's twin re-fitted every
    ``every`` steps on the plant queries of the training steps (see the module docstring).

    Parameters
    ----------
    inner: a model-based method that uses each layer's twin (``PhysicsAwareTraining()``, ``InSilico()``).
    every: refresh period, in training steps (K).
    window: queries kept per plant (the most recent; ``None`` keeps all).
    fit: :func:`~pnnlab.twins.fit_twin` settings for every refresh (``epochs``, ``lr``, ``patience``,
        ``batch_size``, ``val_fraction``, ``seed``, ``weight_decay``); defaults ``epochs=30, lr=1e-2,
        patience=5``. Each refresh uses ``seed + refresh index`` for its split.
    probe_batches: extra plant queries per refresh (default 0: none): the last ``probe_batches`` training
        batches sent through the model on the plant, one forward query per physical layer each, counted
        by the meters and the training totals.
    min_queries: a plant with fewer buffered queries is not refreshed yet (at least 2, to split).
    """

    name = "twin_refresh"
    summary = ("model-based: PAT (or in-silico) with each layer's fittable twin re-fitted every K steps on the "
               "training's own plant queries (DAT/DOCTOR-style refresh)")
    requirements = (NeedsTwin(), NeedsFittableTwin())
    plant_queries_per_step = ("the inner method's (PAT: 1 forward query per physical layer per batch); refreshes "
                              "add none, or probe_batches forward queries per physical layer when asked")

    def __init__(self, inner: Method | None = None, *, every: int = 50, window: int | None = 500,
                 fit: Mapping | None = None, probe_batches: int = 0, min_queries: int = 4) -> None:
        inner = PhysicsAwareTraining() if inner is None else inner
        if not isinstance(inner, Method) or isinstance(inner, TwinRefresh):
            raise TypeError(f"inner must be a pnnlab Method that trains with the layers' twins, such as "
                            f"PhysicsAwareTraining() or InSilico(), got {type(inner).__name__}.")
        if not any(isinstance(r, NeedsTwin) for r in inner.requirements):
            raise ValueError(f"inner={type(inner).__name__}() does not use a twin (it does not require one), so "
                             f"refreshing the twin cannot change its training; use PhysicsAwareTraining() or "
                             f"InSilico().")
        self.inner = inner
        self.every = check_int("every", every)
        self.window = None if window is None else check_int("window", window)
        fit = dict(fit or {})
        unknown = sorted(set(fit) - set(_FIT_KEYS))
        if unknown:
            raise ValueError(f"fit has unknown keys {unknown}; allowed: {list(_FIT_KEYS)} (fit_twin's settings; the "
                             f"data, budget and normalisation are chosen by the refresh).")
        self.fit = {**_FIT_DEFAULTS, **fit}
        for key in ("epochs", "patience", "batch_size"):  # checked now, not at the first refresh
            self.fit[key] = check_int(f"fit[{key!r}]", self.fit[key])
        self.fit["lr"] = check_positive("fit['lr']", self.fit["lr"])
        self.fit["seed"] = check_int("fit['seed']", self.fit["seed"], minimum=0)
        self.probe_batches = check_int("probe_batches", probe_batches, minimum=0)
        self.min_queries = check_int("min_queries", min_queries, minimum=2)
        if self.probe_batches == 0 and inner.plant_queries_per_step.strip().startswith("0"):
            raise ValueError(f"inner={type(inner).__name__}() makes no plant queries, so a refresh would have no "
                             f"data; pass probe_batches >= 1 (a stated query budget per refresh).")
        self.updates_parameters = inner.updates_parameters
        self.evaluation = inner.evaluation
        self.steps = 0
        self.refreshes = 0
        #: one dict per refitted twin: step, layer, queries, samples, probe_queries, initial_val_error,
        #: val_error, epochs_run, prepared (whether its normalisation was set by this fit)
        self.reports: list[dict] = []
        self._taps: list[_Tap] = []
        self._recent: deque = deque(maxlen=max(self.probe_batches, 1))
        self._twin_states: dict[int, tuple[dict, bool | None]] = {}  # layer -> (state_dict, prepared)
        self._restore = False

    # ---- checks -----------------------------------------------------------------------------
    def check(self, model: nn.Module) -> None:
        missing = self.inner.missing_for(model) + [m for m in self.missing_for(model) if m not in
                                                   self.inner.missing_for(model)]
        if missing:
            raise MethodRequirementError(
                f"method {self.name!r} (around {self.inner.name!r}) cannot train this model: " + "; ".join(missing)
                + f". Methods that would work with this model: {', '.join(self.methods_that_can_train(model)) or 'none'}.")

    # ---- pickling: no model references; refreshed twins restored on the next step -------------------
    def __setstate__(self, state):
        self.__dict__.update(state)
        self._restore = bool(self._twin_states)

    def _restore_twins(self, layers: list[PhysicalLayer]) -> None:
        for index, (state, prepared) in self._twin_states.items():
            if index < len(layers) and layers[index].twin is not None:
                layers[index].twin.load_state_dict(state)
                if prepared is not None:
                    _set_prepared(layers[index].twin, prepared)
        self._restore = False

    # ---- the step ---------------------------------------------------------------------------
    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
        layers = physical_layers(model)
        if self._restore:
            self._restore_twins(layers)
        plants = _unique([layer.plant for layer in layers])
        while len(self._taps) < len(plants):
            self._taps.append(_Tap(self.window))
        taps = self._taps[:len(plants)]
        for plant, tap in zip(plants, taps):
            plant.attach_recorder(tap)
        # the task step needs the twins' Jacobians, not gradients for the twins' own parameters (only a
        # refresh fits those): freeze them during the step so that no stale .grad accumulates on them
        frozen = [p for layer in layers if layer.twin is not None for p in layer.twin.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        probe_queries = 0
        try:
            loss = self.inner.step(model, x, y, loss_fn)
            self.steps += 1
            self._recent.append(x.detach().clone())
            refresh = self.steps % self.every == 0
            if refresh and self.probe_batches:
                before = sum(p.meter.queries for p in plants)
                was_training = model.training
                with torch.no_grad(), executing(OnPlant()):
                    for xb in list(self._recent)[-self.probe_batches:]:
                        model(xb)
                model.train(was_training)
                probe_queries = sum(p.meter.queries for p in plants) - before
        finally:
            for plant, tap in zip(plants, taps):
                plant.detach_recorder(tap)
            for p in frozen:
                p.requires_grad_(True)
        if refresh:
            self._refresh(layers, plants, taps, probe_queries)
        return loss

    def _refresh(self, layers, plants, taps, probe_queries: int) -> None:
        from ..twins.fit import fit_twin
        self.refreshes += 1
        fitted: dict[int, object] = {}
        for index, layer in enumerate(layers):
            twin = layer.twin
            tap = taps[_index_of(plants, layer.plant)]
            if id(twin) in fitted or len(tap.queries) < self.min_queries:
                continue
            settings = dict(self.fit)
            settings["seed"] = int(settings["seed"]) + self.refreshes
            prepare = not getattr(twin, "prepared", True)
            data = tap.dataset()
            twin, report = fit_twin(twin, data, prepare=prepare, **settings)
            fitted[id(twin)] = report
            self._twin_states[index] = ({k: v.detach().clone() for k, v in twin.state_dict().items()},
                                        getattr(twin, "prepared", None))
            self.reports.append({"step": self.steps, "layer": index, "queries": len(tap.queries),
                                 "samples": int(data.x.shape[0]), "probe_queries": probe_queries,
                                 "initial_val_error": report.initial_val_error, "val_error": report.val_error,
                                 "epochs_run": report.epochs_run, "prepared": prepare})

    def __repr__(self) -> str:
        return (f"TwinRefresh({self.inner!r}, every={self.every}, window={self.window}, "
                f"probe_batches={self.probe_batches})")


def _set_prepared(twin, flag: bool) -> None:
    """Restore a learned twin's ``prepared`` flag (a ResidualTwin keeps it on its correction)."""
    from ..twins.learned import LearnedTwin, ResidualTwin
    target = twin.correction if isinstance(twin, ResidualTwin) else twin
    if isinstance(target, LearnedTwin):
        target.prepared = bool(flag)


def _unique(plants):
    out = []
    for plant in plants:
        if not any(plant is p for p in out):
            out.append(plant)
    return out


def _index_of(plants, plant) -> int:
    return next(i for i, p in enumerate(plants) if p is plant)


def conformance_example():
    """A tiny model the conformance suite can train with ``TwinRefresh()``: a power-law plant with a
    residual twin (trainable) and a digital read-out; returns ``(model, x, y)``."""
    from ..layers import ChannelAffine
    from ..plants.toy.power_law import PowerLawPlant
    from ..twins.learned import ResidualTwin
    plant = PowerLawPlant(features=2)
    twin = ResidualTwin.around(plant.nominal_twin(), control_shapes={"exponent": (1,)}, hidden=(8,))
    model = nn.Sequential(PhysicalLayer(plant, twin=twin), ChannelAffine(2))
    gen = torch.Generator().manual_seed(0)
    x = 0.5 + torch.rand(8, 2, generator=gen)
    y = torch.randint(0, 2, (8,), generator=gen)
    return model, x, y
