"""Tolerance of a trained network to each fabrication error of its plants: accuracy against the size of
every error "knob" of the plants' own non-ideality models, Monte Carlo over the fabrication draw.

``fabrication_tolerance(run_dir, factors=(0, 0.5, 1, 2, 4))`` rebuilds the trained model of a completed
run from its own spec (``config.json``: the registered model and its arguments, built through the
registry exactly as the run built it), with one knob multiplied by each factor and every other knob
unchanged, loads the trained parameters (``params-<method>.pt``) and measures the test accuracy.

**What a knob is (the documented rule).** While the model is rebuilt, every :class:`~pnnlab.plants.base.Plant`
constructed is intercepted and its constructor arguments (defaults included) are read. A knob is a
float field of a dataclass passed to a plant's constructor (nested dataclasses included, e.g.
``detection.detector``) such that

1. its value in the run is finite and not 0, and the dataclass's own validation accepts 0 for it
   (fields that must stay positive -- correlation lengths, photon numbers, heater power per pi,
   encoding scales -- are design values);
2. setting it to 0 in a plant built standalone with the run's arguments (same seed) leaves the plant's
   **nominal twin** unchanged (otherwise it is a design value: the polariton lattice's interaction
   constants, say) and changes its **true twin** (kind ``"hidden truth"``) or, failing that, its
   measured output under a fixed generator (kind ``"measured only"``: noise, or an effect the true twin
   does not model). Fields that change nothing (cost-model figures) are not knobs. Both twins and the
   measurement are compared bit for bit on 8 example inputs at the plant's initial controls.

Integer fields (bit depths, DAC resolutions), booleans, plain float constructor arguments and
``None``-valued arguments are not knobs. The knob ``<plant>.<argument>.<field>`` (``<plant>`` the
registered plant name, else the class name) scales that field in *every* plant of that class in the
model (all meshes of a network come from one fabrication process). The pseudo-knob ``all`` scales every
knob together. By default every hidden-truth knob is analysed on the true twin (a measured-only knob
gives a flat curve there by construction) and every knob on the plant, plus ``all``.

**Monte Carlo: what is paired and what is re-drawn.** Each plant draws its hidden errors from its own
``seed`` constructor argument. For every knob and factor:

- the *trained chip* (``accuracy_trained_chip``): every plant keeps the seed it was trained with, so
  it is the very realisation the network was trained on with that knob's magnitude scaled (for the
  Gaussian errors of the built-in plants, the same standard-normal draw times the scaled std). At
  factor 1 this is exactly the trained model: the analysis checks that the rebuilt network's test
  outputs equal the trained one's bit for bit and raises otherwise (a plant whose truth depends on
  more than its constructor arguments, e.g. a device state written during training, or a builder that
  draws its own randomness, cannot be analysed this way);
- ``draws`` *fresh chips* (``accuracy_mean``, ``accuracy_std``: mean and sample std over them): fresh
  chip d (1..draws) gives every plant whose ``seed`` is an int the seed ``seed + 1000 * d``; the same
  fresh seeds are used at every factor and for every knob, so the curves are paired across factors
  and knobs (common random numbers). Before any fresh chip is used, its plants' nominal twins are
  checked against the trained ones: a plant whose seed also draws its *design* (e.g. a multimode
  fibre's transmission matrix) would make a fresh chip a different device, and is refused with
  ``draws=0`` (trained chip only) as the fix.

Accuracy is measured on the rebuilt plant's true twin (hidden physics, noise off; ``on="true_twin"``,
the default) or on the simulated plant itself (``on="plant"``, measurement noise from a generator
seeded ``seed``, the same for every row, queries metered on the rebuilt plant). Where every physical
layer has a twin, the result also carries the accuracy of the trained network on its nominal twins
(the design-perfect chip), which scaling every knob to 0 reproduces when the plants' hidden truth
is made only of knobs (no finite bit depth, say).

A factor that a dataclass's validation refuses (e.g. a mesh coupler error above 0.3 rad, an SLM
crosstalk of 0.2 or more) or whose plant cannot be built gives a row with NaN accuracy and the reason
in ``note``. Writes ``fabrication.csv`` and ``fabrication.png`` (one curve per knob: fresh-chip mean
with sample-std error bars, the trained chip dashed) into ``out`` (default ``RUN_DIR/export/<method>``).

Simplifications: only the plants' constructor arguments are varied (a model-level setting such as
the D2NN model's ``truth_scale`` is reached through the plant arguments it produces); device state
written during training (programmed conductances, drift) is
not restored, as in :func:`~pnnlab.export.hardware.load_trained_model`.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..execution import OnPlant, OnTrueTwin, OnTwin, executing
from ..plants.capabilities import Simulated
from ..train import evaluate
from .hardware import _physical_layers, load_trained_model
from .knobs import Knob, _Call, _intercept, _is_instance, _knobs_of, _no_knobs, _scaled, discover_knobs
from .tolerance import write_rows

__all__ = ["Knob", "FabricationResult", "discover_knobs", "fabrication_tolerance"]

#: fresh chip d gives a plant of trained seed s the seed s + SEED_STRIDE * d
SEED_STRIDE = 1000


@dataclass
class FabricationResult:
    rows: list[dict]
    knobs: list[Knob]
    #: trained accuracy (on ``on``) and, where every physical layer has a twin, the nominal-twin accuracy
    reference: dict
    folder: Path


def _select(knobs: list[Knob], wanted, on: str) -> list[str]:
    """Knob names from the user's choice (full names, unique dotted suffixes, or ``all``); by default
    every knob (on the true twin: every hidden-truth knob) and ``all`` (every knob together)."""
    names = [k.name for k in knobs]
    if wanted is None:
        default = [k.name for k in knobs if on == "plant" or k.kind == "hidden truth"]
        return default + (["all"] if len(default) > 1 else [])
    if isinstance(wanted, str):
        wanted = [w.strip() for w in wanted.split(",") if w.strip()]
    chosen = []
    for w in wanted:
        if w == "all" or w in names:
            match = w
        else:
            matches = [n for n in names if n.endswith("." + w)]
            if len(matches) != 1:
                close = difflib.get_close_matches(w, names + ["all"], n=3, cutoff=0.4)
                why = (f"matches {len(matches)} knobs ({', '.join(matches)}); give the full name" if matches
                       else "is not a knob of this run's plants" +
                       (f" (did you mean {', '.join(close)}?)" if close else ""))
                raise ValueError(f"knobs: {w!r} {why}. Knobs of this run: {', '.join(names)}, or 'all' (every knob "
                                 f"together).")
            match = matches[0]
        if match not in chosen:
            chosen.append(match)
    if not chosen:
        raise ValueError(f"knobs must name at least one knob; knobs of this run: {', '.join(names)}, or 'all'.")
    return chosen


# ---- rebuilding with scaled knobs ----------------------------------------------------------------------
def _changer(scale: dict[tuple[type, tuple[str, ...]], float], draw: int) -> Callable[[type, dict], dict]:
    def change(cls, arguments):
        for (knob_cls, path), factor in scale.items():
            if knob_cls is cls and _is_instance(arguments.get(path[0])):
                try:
                    arguments[path[0]] = _scaled(arguments[path[0]], path[1:], factor)
                except AttributeError:  # this plant's argument lacks the nested field
                    pass
        seed = arguments.get("seed")
        if draw and isinstance(seed, int) and not isinstance(seed, bool):
            arguments["seed"] = seed + SEED_STRIDE * draw
        return arguments
    return change


def _refusals(knobs: list[Knob], calls: list[_Call], factors) -> dict[tuple[str, float], str]:
    """Which (knob, factor) pairs the dataclasses' own validation refuses, with the reason."""
    refused = {}
    for knob in knobs:
        for call in calls:
            if call.cls is not knob.plant_class or not _is_instance(call.arguments.get(knob.path[0])):
                continue
            for factor in factors:
                try:
                    _scaled(call.arguments[knob.path[0]], knob.path[1:], factor)
                except AttributeError:
                    continue
                except (ValueError, TypeError) as error:
                    refused.setdefault((knob.name, factor), f"{knob.name} x {factor:g} refused: {error}")
    return refused


def fabrication_tolerance(run_dir: str | Path, *, method: str | None = None,
                          factors: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0), knobs=None, draws: int = 5,
                          on: str = "true_twin", seed: int = 0, out: str | Path | None = None) -> FabricationResult:
    """Test accuracy against each fabrication-error knob's size (factor times the run's value); see the
    module docstring for the knobs, what is paired and what is re-drawn. ``knobs``: names (full, a unique
    dotted suffix such as ``coupler_error_std_rad``, or ``all``), a comma-separated string, or None
    (every knob and ``all``). Writes ``fabrication.csv`` / ``fabrication.png`` into ``out`` (default
    ``RUN_DIR/export/<method>``)."""
    from ..experiments.run import _build

    if on not in ("true_twin", "plant"):
        raise ValueError(f"on must be 'true_twin' (hidden physics, noise off) or 'plant' (the simulated plant, "
                         f"noise included), got {on!r}.")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 0:
        raise ValueError(f"draws must be an integer >= 0 (fresh fabrication draws; 0 = the trained chip only), "
                         f"got {draws!r}.")
    try:
        factors = tuple(float(f) for f in factors)
    except (TypeError, ValueError):
        raise ValueError(f"factors must be numbers (multiples of each knob's value in the run), got "
                         f"{factors!r}.") from None
    if not factors or any(not math.isfinite(f) or f < 0 for f in factors):
        raise ValueError(f"factors must be finite numbers >= 0 (0 = that error off, 1 = as trained), got {factors!r}.")
    reference_model, method, resolved, data = load_trained_model(run_dir, method)
    layers = _physical_layers(reference_model)
    if not layers:
        raise ValueError(f"run {str(run_dir)!r} ({method}) has no physical layer: no fabrication error to vary.")
    if on == "true_twin":
        unsimulated = [name for name, layer in layers if not isinstance(layer.plant, Simulated)]
        if unsimulated:
            raise ValueError(f"on='true_twin' needs simulated plants, but layer(s) {', '.join(unsimulated)} are not; "
                             f"pass on='plant'.")
    offline = {k: v for k, v in resolved.items() if k != "remote"}
    _, make_model, _ = _build(offline)
    state = torch.load(Path(run_dir) / f"params-{method}.pt", weights_only=True)
    x, y = data.split("test")

    def measure(model) -> float:
        execution = OnTrueTwin() if on == "true_twin" else OnPlant()
        return evaluate(model, x, y, execution=execution, generator=torch.Generator().manual_seed(seed))["accuracy"]

    with _intercept() as calls:
        make_model()
    found = _knobs_of(calls)
    if not found:
        raise _no_knobs(calls, f"run {str(run_dir)!r}")
    chosen = _select(found, knobs, on)
    by_name = {k.name: k for k in found}
    seeded = [c for c in calls
              if isinstance(c.arguments.get("seed"), int) and not isinstance(c.arguments.get("seed"), bool)]
    if draws and not seeded:
        raise ValueError(f"run {str(run_dir)!r}: none of its plants takes an integer seed, so its hidden truth cannot "
                         f"be re-drawn; pass draws=0 (the trained chip only).")

    cache: dict = {}

    def accuracy(scale: dict, draw: int) -> tuple[float, str]:
        key = (tuple(sorted(((f"{cls.__module__}.{cls.__qualname__}", path), factor)
                            for (cls, path), factor in scale.items() if factor != 1.0)), draw)
        if key not in cache:
            try:
                with _intercept(_changer({k: f for k, f in scale.items() if f != 1.0}, draw)):
                    model = make_model()
                model.load_state_dict(state)
                model.eval()
                cache[key] = (measure(model), "")
            except ValueError as error:
                cache[key] = (math.nan, f"plant not buildable: {error}")
        return cache[key]

    def logits(model) -> torch.Tensor:
        execution = OnTrueTwin() if on == "true_twin" else OnPlant()
        execution = execution.with_generator(torch.Generator().manual_seed(seed))
        with torch.no_grad(), executing(execution):
            return model(x)

    # both models fresh (a plant's device state, e.g. drift, advances with every query)
    expected = logits(reference_model)
    with _intercept():
        rebuilt_model = make_model()
    rebuilt_model.load_state_dict(state)
    rebuilt_model.eval()
    if not torch.equal(logits(rebuilt_model), expected):
        raise RuntimeError(f"rebuilding run {str(run_dir)!r} from its spec does not reproduce the trained network's "
                           f"outputs on the {on}: its plants' truth depends on more than their constructor arguments "
                           f"(device state written in training? a model builder that draws its own randomness?), so "
                           f"the fabrication tolerance cannot be measured this way.")
    trained, _ = accuracy({}, 0)  # a fresh rebuild, measured like every row
    _check_fresh_designs(make_model, state, reference_model, range(1, draws + 1), run_dir)
    reference = {"trained_accuracy": trained, "on": on, "test_samples": len(y), "method": method,
                 "nominal_twin_accuracy": None}
    if all(layer.twin is not None for _, layer in layers):
        reference["nominal_twin_accuracy"] = evaluate(reference_model, x, y, execution=OnTwin())["accuracy"]

    refused = _refusals(found, calls, factors)
    rows = []
    for name in chosen:
        members = found if name == "all" else [by_name[name]]
        for factor in factors:
            note = "; ".join(refused[(m.name, factor)] for m in members if (m.name, factor) in refused)
            if note:
                chip, fresh = math.nan, []
            else:
                scale = {(m.plant_class, m.path): factor for m in members}
                chip, why = accuracy(scale, 0)
                fresh, notes = [], [why] if why else []
                for d in range(1, draws + 1):
                    a, why = accuracy(scale, d)
                    if why:
                        notes.append(f"fresh chip {d}: {why}")
                    else:
                        fresh.append(a)
                if name != "all" and by_name[name].kind != "hidden truth" and on == "true_twin":
                    notes.append("measured-only knob: no effect on the true twin (noise off)")
                note = "; ".join(notes)
            a = np.asarray(fresh, dtype=float)
            value = math.nan if name == "all" else by_name[name].value * factor
            rows.append({"knob": name, "factor": factor, "value": value,
                         "trained_value": math.nan if name == "all" else by_name[name].value,
                         "accuracy_trained_chip": chip,
                         "accuracy_mean": float(a.mean()) if len(a) else math.nan,
                         "accuracy_std": float(a.std(ddof=1)) if len(a) > 1 else math.nan,  # none from 1 chip
                         "draws": len(a), "test_samples": len(y), "on": on, "note": note})
    folder = write_rows(run_dir, method, out, "fabrication.csv", rows)
    _plot(folder / "fabrication.png", rows, reference, draws)
    return FabricationResult(rows=rows, knobs=[by_name[n] for n in chosen if n != "all"], reference=reference,
                             folder=folder)


def _check_fresh_designs(make_model, state, reference_model, draws, run_dir) -> None:
    """Refuse fresh chips whose plants' nominal twins (their design) differ from the trained ones."""
    reference = _physical_layers(reference_model)
    for d in draws:
        with _intercept(_changer({}, d)):
            model = make_model()
        model.load_state_dict(state)
        for (name, ref), (_, layer) in zip(reference, _physical_layers(model)):
            if ref.twin is None or layer.twin is None:
                continue
            x = ref.plant.example_inputs(8, torch.Generator().manual_seed(0))
            with torch.no_grad():
                a, b = ref.twin(x, ref.control_values()), layer.twin(x, layer.control_values())
            if not torch.allclose(a, b, rtol=1e-5, atol=1e-6):
                raise ValueError(f"run {str(run_dir)!r}: a fresh fabrication draw (plant seed + {SEED_STRIDE * d}) of "
                                 f"layer {name} ({layer.plant.describe()}) changes its nominal twin, i.e. its seed "
                                 f"draws part of its design, not only its hidden errors, so a fresh draw is a different "
                                 f"device; pass draws=0 (the trained chip, knobs scaled) instead.")


def _plot(path: Path, rows: list[dict], reference: dict, draws: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9.0, 4.4))
    knobs = list(dict.fromkeys(r["knob"] for r in rows))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, knob in enumerate(knobs):
        mine = [r for r in rows if r["knob"] == knob]
        f = np.array([r["factor"] for r in mine])
        c = colours[i % len(colours)]
        label = knob
        if draws:
            m = 100 * np.array([r["accuracy_mean"] for r in mine])
            e = 100 * np.array([r["accuracy_std"] for r in mine])
            ax.errorbar(f, m, yerr=e, marker="o", capsize=3, color=c, label=label)
            ax.plot(f, 100 * np.array([r["accuracy_trained_chip"] for r in mine]), ls="--", lw=0.8, color=c)
        else:
            ax.plot(f, 100 * np.array([r["accuracy_trained_chip"] for r in mine]), marker="o", color=c, label=label)
    ax.axvline(1.0, color="grey", lw=0.6)
    ax.plot([1.0], [100 * reference["trained_accuracy"]], marker="*", ms=11, color="k", ls="none",
            label="trained (1x, trained chip)")
    if reference.get("nominal_twin_accuracy") is not None:
        ax.axhline(100 * reference["nominal_twin_accuracy"], color="k", ls=":", lw=0.8, label="nominal twin (design)")
    ax.set_xlabel("fabrication error (factor x the run's value)")
    where = "true physics (noise off)" if reference["on"] == "true_twin" else "plant"
    ax.set_ylabel(f"test accuracy % on the {where}")
    ax.set_title(f"{reference['method']}: " + (f"mean ± std over {draws} fresh chips (dashed: the trained chip)"
                                              if draws else "the trained chip, errors scaled"), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
