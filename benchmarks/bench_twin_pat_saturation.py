"""SHG vowels with a detector that saturates at the signal level: PAT needs a twin that knows it.

Setting of bench_pat_vowels.py (the SHG-PNN of Wright et al., Nature 601, 549 (2022),
doi:10.1038/s41586-021-04223-6; 7 vowels of Hillenbrand et al. (1995), speaker split into train /
validation / test; one SHG layer, 74 trainable parameters), with ``SHGMismatch.typical()`` except the
detector: it saturates at ``--level`` = 0.01 P_ref (``y -> L tanh(y / L)``), about ten times the operating
level of trained networks (1e-3 P_ref, docs/substrates/shg.md) instead of the typical 0.05. There PAT with
the nominal twin, whose detector is linear, drives the outputs into saturation (docs/substrates/shg.md:
"collapses to chance"). Detector noise ``TYPICAL_NOISE`` (assumed values). The rows:

* PAT, nominal twin                  the design physics, linear detector
* PAT, calibrated twin (N queries)   ``SHGCalibratableTwin`` with GDD, TOD, phase scale, pixel gains, spot size
                                     and the saturation level as fitted ``Constant`` s, fitted by ``fit_twin``
                                     before training from ``--fit-queries`` plant queries (each ``--fit-batch``
                                     encoded training inputs at one control setting: amplitudes U[0, 1], phases
                                     s * U[-pi, pi] with s ~ U[0, 1] per query, so that the probes span dim
                                     to bright outputs and reach the saturation); those queries are counted;
                                     ``--fit-starts`` fits (the design start and restarts from dispersions
                                     drawn in an assumed prior range) share them, the lowest validation error
                                     on the fitting queries' own split is kept
* PAT, residual twin (N queries)     nominal + MLP 64-64 correction, fitted from ``--residual-queries`` queries at
                                     the plant's initial-control distribution (where training starts); counted
* PAT + refresh, calibrated          ``TwinRefresh(PAT)``: the same calibratable twin, starting from the design
                                     values (saturation start 1.0 P_ref, i.e. nearly linear here), re-fitted every
                                     ``--every`` steps on the last ``--window`` training queries: no extra query
* PAT + refresh, residual            (``--refresh-residual``; slow) the same with an unfitted residual twin
                                     (starts equal to the nominal one)
* in-silico, nominal / calibrated    backpropagation through the twin only, deployed to the plant (the calibrated
                                     row reuses the PAT row's fitted twin; its fitting queries are counted again)
* ideal (UPPER BOUND)                the ``ideal`` method (true physics, noise off)
* random features, matched MLP, logistic regression / MLP ceilings, as in bench_pat_vowels.py

Protocol. Every torch row trains ``--epochs`` epochs (150, half of bench_pat_vowels' 300, to keep the run
near 10 minutes), batch 16, Adam, evaluation every 25 epochs; the test accuracy is read at the epoch
selected on validation (``history.selected``) and at the final epoch. Learning rates are bench_pat_vowels'
TUNED_LR (chosen there on seed 0's validation split, typical recipe; not re-tuned here). The saturation
level, the calibration sampler and the refresh settings (every 20 steps, window 50 queries, 20 epochs, lr
0.02; residual: window 200, lr 3e-3) were chosen a priori and checked once on seed 0's validation split
(where also L = 0.003 P_ref was tried: even the ideal bound reached only 57 % there, so the task itself
breaks, not the twin). Reported: seeds 1, 2, 3 (speaker split, plant truth, initial controls, fits). Query
totals: training queries + fitting queries (the ``total queries`` column), as spent by each row's plant.

    python benchmarks/bench_twin_pat_saturation.py [--seeds 1 2 3] [--epochs 150] [--level 0.01]
                                                   [--refresh-residual] [--smoke]
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time
from dataclasses import replace

import torch

import pnnlab
from pnnlab.data.vowels import load_vowels
from pnnlab.models.digital_baselines import build_matched_mlp, trainable_parameter_count
from pnnlab.models.shg_classifier import TYPICAL_NOISE, build_shg_classifier, build_shg_random_features
from pnnlab.plants.optics.shg import DetectorSaturation, SHGMismatch
from pnnlab.twins import (CalibratedTwin, Constant, FromPlant, ResidualTwin, SHGCalibratableTwin, fit_twin,
                          relative_error)

from _pat_common import compare, fmt, mean_std, run_torch, sklearn_ceilings

#: bench_pat_vowels.TUNED_LR (seed 0 validation, typical recipe), reused unchanged
LR = {"pat": 0.01, "in_silico": 0.005, "ideal": 0.002, "random": 0.01, "mlp": 0.01}


def calibratable(plant, gdd_fs2: float = 0.0, tod_fs3: float = 0.0) -> CalibratedTwin:
    """The design physics with every constant the plant's truth could change as a fitted Constant (the fit
    starts from the design values, or from the given dispersion for a restart)."""
    base = SHGCalibratableTwin.from_layout(plant, saturation_level=1.0)
    base.group_delay_dispersion_fs2.fill_(gdd_fs2)
    base.third_order_dispersion_fs3.fill_(tod_fs3)
    return CalibratedTwin(base, constants=[
        Constant("group_delay_dispersion_fs2", scale=100.0), Constant("third_order_dispersion_fs3", scale=1000.0),
        Constant("phase_scale", positive=True), Constant("pixel_gains", positive=True),
        Constant("resolution_pixels", positive=True), Constant("saturation_level", positive=True)])


def residual(plant, seed) -> ResidualTwin:
    shapes = {k: s.shape for k, s in plant.control_specs().items()}
    return ResidualTwin.around(plant.nominal_twin(), control_shapes=shapes, hidden=(64, 64), seed=seed)


def sampler(plant, x_encoded, batch, regime):
    """One calibration query: ``batch`` encoded training inputs and one control setting."""
    specs = plant.control_specs()

    def sample(gen):
        x = x_encoded[torch.randint(0, len(x_encoded), (batch,), generator=gen)]
        if regime == "local":
            return x, plant.initial_controls(gen)
        spread = float(torch.rand(1, generator=gen))
        return x, {"amplitude": torch.rand(specs["amplitude"].shape, generator=gen),
                   "phase": spread * math.pi * (2 * torch.rand(specs["phase"].shape, generator=gen) - 1)}
    return sample


def row_names(args) -> dict[str, str]:
    return {
        "nominal": "PAT, nominal twin (linear detector)",
        "calibrated": f"PAT, calibrated twin ({args.fit_queries} queries)",
        "residual": f"PAT, residual twin ({args.residual_queries} queries)",
        "refresh": "PAT + refresh, calibrated (own queries)",
        "refresh_residual": "PAT + refresh, residual (own queries)",
        "insilico": "in-silico, nominal twin",
        "insilico_cal": f"in-silico, calibrated twin ({args.fit_queries} queries)",
        "ideal": "ideal (UPPER BOUND: true physics, noise off)",
        "random": "random features (frozen SHG-class map)",
        "mlp": "matched MLP (digital, same trainable params)",
    }


def collect(plant, sample, queries, seed):
    """``queries`` plant queries (one control setting each) as a QueryDataset, so that several fits (the
    restarts) share them: each query is spent once."""
    from pnnlab.recording import QueryDataset
    gen = torch.Generator().manual_seed(seed)
    xs, cs, ys, seq = [], {}, [], []
    for q in range(queries):
        x, controls = sample(gen)
        ys.append(plant(x, controls))
        xs.append(x)
        seq.append(torch.full((x.shape[0],), q))
        for k, v in controls.items():
            cs.setdefault(k, []).append(v.expand(x.shape[0], *v.shape))
    return QueryDataset(torch.cat(xs), {k: torch.cat(v) for k, v in cs.items()}, torch.cat(ys), torch.cat(seq))


def fit_calibrated(args, plant, data, seed, settings):
    """Fit the calibratable twin from the design start and ``--fit-starts - 1`` restarts whose dispersion
    starts are drawn from an assumed prior range (GDD U[-500, 500] fs^2, TOD U[-1e4, 1e4] fs^3: up to ~1.4 cm
    of fused silica, a mis-set compressor); keep the fit with the lowest validation error on the
    fitting queries' own validation split (no task data are used)."""
    gen = torch.Generator().manual_seed(50_000 + seed)
    best = None
    for start in range(args.fit_starts):
        gdd, tod = (0.0, 0.0) if start == 0 else (float(1000 * torch.rand(1, generator=gen) - 500),
                                                  float(2e4 * torch.rand(1, generator=gen) - 1e4))
        twin, report = fit_twin(calibratable(plant, gdd, tod), data, lr=0.02, **settings)
        if best is None or report.val_error < best[1].val_error:
            best = (twin, report, start)
    return best


def run_seed(args, seed, data, mismatch):
    n_fit, n_res = args.fit_queries, args.residual_queries
    names = row_names(args)
    build = lambda: build_shg_classifier(in_features=data.in_features, n_classes=data.n_classes,
                                         mismatch=mismatch, noise=TYPICAL_NOISE, seed=seed)
    training = {"epochs": args.epochs, "batch_size": 16, "evaluate_every": args.evaluate_every}
    fit_settings = {"epochs": args.fit_epochs, "patience": 15, "batch_size": 256, "seed": seed}
    out, notes, fitted_twin = {}, {}, None

    def physical_run(key, method, twin=None, fit_queries=0):
        model = build()
        if twin is not None:
            model[1].set_twin(twin)
        r = run_torch(model, method, data, seed=seed, lr=LR["ideal" if key == "ideal" else "in_silico"
                                                          if key.startswith("insilico") else "pat"], **training)
        r["fit_queries"] = fit_queries
        r["total"] = r["queries"] + fit_queries
        out[names[key]] = r
        return model, r

    physical_run("nominal", pnnlab.PhysicsAwareTraining())
    # calibrated twin fitted before training, on its own plant (the same truth as every row of this seed)
    probe = build()
    plant, x_enc = probe[1].plant, probe[0](data.x_train)
    start = time.perf_counter()
    recorded = collect(plant, sampler(plant, x_enc, args.fit_batch, "mixed"), n_fit, seed)
    twin, report, chosen = fit_calibrated(args, plant, recorded, seed, fit_settings)
    assert plant.meter.queries == n_fit  # the restarts share the queries
    fitted_twin = twin
    notes["calibrated"] = (f"fit val error {report.val_error:.3f} (from {report.initial_val_error:.3f}; start "
                           f"{chosen} of {args.fit_starts} kept), "
                           f"saturation fitted {float(twin.values()['saturation_level']):.4g} (hidden {args.level:g}), "
                           f"{time.perf_counter() - start:.0f} s")
    physical_run("calibrated", pnnlab.PhysicsAwareTraining(), twin=copy.deepcopy(fitted_twin), fit_queries=n_fit)
    probe = build()
    plant = probe[1].plant
    twin, report = fit_twin(residual(plant, seed), FromPlant(plant, sampler(plant, x_enc, args.fit_batch, "local")),
                            budget=n_res, lr=3e-3, **fit_settings)
    assert report.queries == n_res
    notes["residual"] = f"fit val error {report.val_error:.3f} (from {report.initial_val_error:.3f})"
    physical_run("residual", pnnlab.PhysicsAwareTraining(), twin=twin, fit_queries=n_res)
    probe = build()
    method = pnnlab.TwinRefresh(every=args.every, window=args.window,
                                fit={"epochs": args.refresh_epochs, "lr": 0.02, "patience": 5, "seed": seed})
    model, _ = physical_run("refresh", method, twin=calibratable(probe[1].plant))
    assert all(r["probe_queries"] == 0 for r in method.reports)
    notes["refresh"] = (f"{method.refreshes} refreshes, last val error {method.reports[-1]['val_error']:.3f}, "
                        f"saturation fitted {float(model[1].twin.values()['saturation_level']):.4g}"
                        if method.reports else "no refresh")
    if args.refresh_residual:
        method = pnnlab.TwinRefresh(every=args.every, window=4 * args.window,
                                    fit={"epochs": args.refresh_epochs, "lr": 3e-3, "patience": 5, "seed": seed})
        physical_run("refresh_residual", method, twin=residual(probe[1].plant, seed))
        notes["refresh_residual"] = (f"{method.refreshes} refreshes, last val error "
                                     f"{method.reports[-1]['val_error']:.3f}" if method.reports else "no refresh")
    model, r = physical_run("insilico", pnnlab.InSilico())
    model, r = physical_run("insilico_cal", pnnlab.InSilico(), twin=copy.deepcopy(fitted_twin), fit_queries=n_fit)
    physical_run("ideal", pnnlab.IdealBackprop())
    n_params = trainable_parameter_count(build())
    for key, model in (("random", build_shg_random_features(in_features=data.in_features, n_classes=data.n_classes,
                                                            seed=seed)),
                       ("mlp", build_matched_mlp(in_features=data.in_features, n_classes=data.n_classes,
                                                 parameters=n_params, seed=seed))):
        r = run_torch(model, pnnlab.InSilico(), data, seed=seed, lr=LR[key], **training)
        r["fit_queries"], r["total"] = 0, 0
        out[names[key]] = r
    for name, r in sklearn_ceilings(data, seed, hidden=64, smoke=args.smoke).items():
        r["fit_queries"], r["total"] = 0, 0
        out[name] = r
    return out, {names[k]: v for k, v in notes.items()}


def print_table(rows, n_test):
    print(f"\n{'method':<46} {'params':>6} {'test @ val-sel. %':>18} {'test final %':>14} {'val @ sel. %':>13} "
          f"{'evaluated on':>24} {'train q.':>8} {'fit q.':>6} {'total q.':>8} {'wall s':>6}")
    for name, results in rows.items():
        print(f"{name:<46} {results[0]['params']:>6} {fmt(r['selected'] for r in results):>18} "
              f"{fmt(r['final'] for r in results):>14} {fmt(r['val'] for r in results):>13} "
              f"{results[0]['evaluated_on']:>24} {statistics.fmean(r['queries'] for r in results):>8.0f} "
              f"{statistics.fmean(r['fit_queries'] for r in results):>6.0f} "
              f"{statistics.fmean(r['total'] for r in results):>8.0f} {statistics.fmean(r['wall'] for r in results):>6.1f}")
    lo, hi = min(n_test), max(n_test)
    print(f"test set: {lo}-{hi} samples per seed (one test sample = {100 / hi:.2f}-{100 / lo:.2f} points; a small "
          f"test set: read differences of a few points with care).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--evaluate-every", type=int, default=25)
    parser.add_argument("--level", type=float, default=0.01, help="detector saturation level, units of P_ref")
    parser.add_argument("--fit-queries", type=int, default=1000)
    parser.add_argument("--residual-queries", type=int, default=2000)
    parser.add_argument("--fit-batch", type=int, default=4)
    parser.add_argument("--fit-epochs", type=int, default=150)
    parser.add_argument("--fit-starts", type=int, default=3, help="calibration restarts (sharing the queries)")
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--refresh-epochs", type=int, default=20)
    parser.add_argument("--refresh-residual", action="store_true",
                        help="add the PAT + refresh row with a residual twin (slow: about 2 min per seed)")
    parser.add_argument("--smoke", action="store_true", help="tiny settings (seconds), same table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.smoke:
        args.seeds, args.epochs, args.evaluate_every = args.seeds[:1], 1, 1
        args.fit_queries, args.residual_queries, args.fit_epochs, args.fit_starts = 12, 12, 2, 2
        args.every, args.window, args.refresh_epochs = 4, 8, 2
    mismatch = replace(SHGMismatch.typical(), detector=DetectorSaturation(level=args.level))
    print(f"SHG vowels, SHGMismatch.typical() with the detector saturating at {args.level:g} P_ref (typical: 0.05; "
          f"operating level of trained networks about 1e-3 P_ref, docs/substrates/shg.md); noise TYPICAL_NOISE "
          f"(assumed values). {args.epochs} epochs, batch 16, Adam, learning rates {LR} (bench_pat_vowels' "
          f"TUNED_LR, seed 0 validation); seeds {args.seeds}; refresh every {args.every} steps on the last "
          f"{args.window} queries (residual: {4 * args.window}), {args.refresh_epochs} epochs per refresh.", flush=True)
    rows, n_test, notes = {}, [], {}
    start = time.perf_counter()
    for seed in args.seeds:
        data = load_vowels(seed=seed)
        n_test.append(len(data.y_test))
        out, seed_notes = run_seed(args, seed, data, mismatch)
        print(f"seed {seed}: {data.summary()}", flush=True)
        for name, r in out.items():
            rows.setdefault(name, []).append(r)
            if r["evaluated_on"] != "digital":
                print(f"  {name}: test {100 * r['selected']:.1f} % at val-selected epoch {r['epoch']}, final "
                      f"{100 * r['final']:.1f} % ({r['wall']:.1f} s)" + (f"; {seed_notes[name]}" if name in seed_notes
                                                                       else ""), flush=True)
    print_table(rows, n_test)
    print("train q.: plant queries of the training steps (refresh rows: no more than plain PAT; the refresh fits on "
          "them); fit q.: plant queries spent fitting the twin before training (counted by the plant's meter); "
          "the in-silico calibrated row reuses the PAT row's fitted twin and counts its queries again. "
          "Wright et al. 2022 report 93 % with PAT on their experimental SHG-PNN (linear-regime detector).")
    n = row_names(args)
    compare(rows, [(n["calibrated"], n["nominal"]), (n["refresh"], n["nominal"]), (n["refresh"], n["calibrated"]),
                   (n["ideal"], n["refresh"]), (n["ideal"], n["calibrated"]), (n["insilico_cal"], n["insilico"]),
                   (n["calibrated"], "logistic regression (ceiling; C on val)")], n_test)
    print(f"\n(wall time {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
