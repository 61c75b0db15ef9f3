"""Fitted twins for the oscillator and fibre plants, and a data-efficiency curve on the SHG plant.

Held-out relative error ||y - y_hat|| / ||y|| of twins fitted with ``fit_twin`` from a stated number of
plant queries (each a batch of ``--batch`` inputs at one control setting drawn from the plant's
initial-control distribution, i.e. where training starts; counted by the plant's meter), measured on 200
further queries drawn the same way (evaluation, counted separately).

Part C, two plants with learned twins:

* coupled oscillators, fitted from ``--osc-queries`` (250) queries of 16 inputs (4000 samples; fewer control
  settings than the other plants, since its twins integrate one setting per call) (Wright et al., Nature 601, 549 (2022), doi:10.1038/s41586-021-04223-6; the PAT
  reference system), 8 oscillators, ``OscillatorMismatch.wright2022()`` (extra coupling 0.2 with its
  on-site diagonal, nonlinearity error 0.1, input noise 0.02: the reference code's values). Calibrated
  twin: the plant's equation with the extra coupling matrix dJ as the fitted constant (the model class of
  ``CoupledOscillatorTrueTwin`` at design values, dJ = 0, k = 1; the nonlinearity factor k is not fitted,
  since that twin reads it as a Python float, so this calibrated twin cannot reach the noise floor);
* multimode fibre (Popoff et al., PRL 104, 100601 (2010); Momeni et al., Science 382, 1297 (2023)), 8 input
  pixels, 16 camera pixels, 64 modes, default SLM (8-bit quantisation, crosstalk) and camera (shot and read
  noise, saturation, 12-bit ADC), static medium. Calibrated twin: the crude twin (TM measured once with 30 %
  error) with its complex transmission matrix as the fitted constant (quantisation, crosstalk and the
  camera stay outside its model class).

Learned: MLP 128-128 over [x, flattened controls]; residual: the nominal twin + an MLP 64-64 correction.

Part D, data efficiency on SHG (``SHGMismatch.typical()``, ``TYPICAL_NOISE``, assumed values): held-out
error of the calibrated, learned and residual twins against the fitting queries spent (100, 300, 1000,
2000), same held-out queries for every budget of a seed.

Protocol: seeds vary the plant (its hidden draws), the fitting queries and the held-out queries; fit
settings (Adam, 80/20 query split for early stopping, at least ``--min-steps`` Adam steps) were set a
priori, the learning rates are bench_twin_fitting's (3e-3 for networks, 0.02 for physical constants).
Reported: mean +- std over ``--seeds``; the true twin (hidden physics, noise off) is a DIAGNOSTIC floor.

    python benchmarks/bench_twin_plants.py [--seeds 1 2 3] [--budget 2000] [--smoke]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from pnnlab.models.shg_classifier import TYPICAL_NOISE
from pnnlab.plants.mechanics.oscillators import CoupledOscillatorPlant, CoupledOscillatorTrueTwin, OscillatorMismatch
from pnnlab.plants.optics.fibre import FibrePlant
from pnnlab.plants.optics.shg import SHGMismatch, SHGPlant
from pnnlab.twins import (CalibratedTwin, Constant, FromPlant, GroupedControls, LearnedTwin, ResidualTwin,
                          SHGCalibratableTwin, fit_twin, relative_error)


def n_params(module) -> int:
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in module.parameters() if p.requires_grad)


def ms(values) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} +- {statistics.stdev(values):.4f}"


def sampler(plant, batch):
    def sample(gen):
        return plant.example_inputs(batch, gen), plant.initial_controls(gen)
    return sample


def held_out(plant, batch, queries, seed):
    gen = torch.Generator().manual_seed(seed)
    sample = sampler(plant, batch)
    xs, cs, ys = [], {}, []
    for _ in range(queries):
        x, c = sample(gen)
        ys.append(plant(x, c))
        xs.append(x)
        for k, v in c.items():
            cs.setdefault(k, []).append(v.expand(batch, *v.shape))
    return torch.cat(xs), {k: torch.cat(v) for k, v in cs.items()}, torch.cat(ys)


def fit_settings(args, budget, lr, seed):
    steps_per_epoch = math.ceil(0.8 * budget * args.batch / args.fit_batch)
    epochs = max(args.epochs, math.ceil(args.min_steps / steps_per_epoch))
    return {"epochs": epochs, "lr": lr, "patience": max(args.patience, epochs // 10), "batch_size": args.fit_batch,
            "seed": seed}


def shapes_of(plant):
    return {k: s.shape for k, s in plant.control_specs().items()}


def oscillator_plant(seed):
    return CoupledOscillatorPlant(n_oscillators=8, mismatch=OscillatorMismatch.wright2022(), seed=seed)


def oscillator_nominal(plant):
    # the oscillator twins integrate one coupling matrix per call: evaluate recorded queries group-wise
    return GroupedControls(plant.nominal_twin(), control_shapes=shapes_of(plant))


def oscillator_calibrated(plant):
    n = plant.n_oscillators
    design = CoupledOscillatorTrueTwin(n_oscillators=n, t_end=plant.t_end, n_steps=plant.n_steps,
                                      extra_coupling=torch.zeros(n, n), frequency_factor=1.0)
    return CalibratedTwin(GroupedControls(design, control_shapes=shapes_of(plant)),
                          constants=[Constant("twin.extra_coupling", scale=0.1)])


def fibre_plant(seed):
    return FibrePlant(in_features=8, out_features=16, n_modes=64, seed=seed)


def fibre_calibrated(plant):
    return CalibratedTwin(plant.nominal_twin(), constants=[Constant("tm")])


def shg_plant(seed):
    return SHGPlant(n_inputs=12, n_outputs=7, mismatch=SHGMismatch.typical(), noise=TYPICAL_NOISE, seed=seed)


def shg_calibrated(plant):
    return CalibratedTwin(SHGCalibratableTwin.from_layout(plant, saturation_level=1.0), constants=[
        Constant("group_delay_dispersion_fs2", scale=100.0), Constant("third_order_dispersion_fs3", scale=1000.0),
        Constant("phase_scale", positive=True), Constant("pixel_gains", positive=True),
        Constant("resolution_pixels", positive=True), Constant("saturation_level", positive=True)])


def twins_for(plant, calibrated, seed, nominal=None):
    shapes = shapes_of(plant)
    nominal = plant.nominal_twin() if nominal is None else nominal(plant)
    return {
        "calibrated": (calibrated(plant), 0.02),
        "learned (MLP 128-128)": (LearnedTwin(in_features=plant.in_features, out_features=plant.out_features,
                                              control_shapes=shapes, hidden=(128, 128), seed=seed), 3e-3),
        "residual (nominal + MLP 64-64)": (ResidualTwin.around(nominal, control_shapes=shapes, hidden=(64, 64),
                                                               seed=seed), 3e-3),
    }


def part_c(args, title, make_plant, calibrated, note, nominal=None, budget=None, batch=None):
    args = argparse.Namespace(**{**vars(args), "budget": budget or args.budget, "batch": batch or args.batch})
    print(f"\nC. {title}: twins fitted from {args.budget} queries of {args.batch} inputs (initial-control "
          f"distribution), held out {args.held_out} further queries; seeds {args.seeds}\n   {note}")
    rows = {}
    for seed in args.seeds:
        plant = make_plant(seed)
        x_te, c_te, y_te = held_out(plant, args.batch, args.held_out, seed=10_000 + seed)
        entry = rows.setdefault("nominal (design / crude twin)", [0, [], []])
        nominal_twin = plant.nominal_twin() if nominal is None else nominal(plant)
        entry[1].append(relative_error(nominal_twin, x_te, c_te, y_te))
        entry[2].append(0)
        for name, (twin, lr) in twins_for(plant, calibrated, seed, nominal).items():
            before = plant.meter.queries
            twin, report = fit_twin(twin, FromPlant(plant, sampler(plant, args.batch)), budget=args.budget,
                                    **fit_settings(args, args.budget, lr, seed))
            assert plant.meter.queries - before == report.queries == args.budget
            entry = rows.setdefault(name, [n_params(twin), [], []])
            entry[1].append(relative_error(twin, x_te, c_te, y_te))
            entry[2].append(report.queries)
        entry = rows.setdefault("true twin (DIAGNOSTIC: hidden physics, noise off)", [0, [], []])
        true_twin = plant.true_twin() if nominal is None else GroupedControls(plant.true_twin(),
                                                                             control_shapes=shapes_of(plant))
        entry[1].append(relative_error(true_twin, x_te, c_te, y_te))
        entry[2].append(0)
    print(f"{'twin':52s} {'params':>7s} {'fit queries':>11s}  held-out rel. error")
    for name, (p, v, q) in rows.items():
        print(f"{name:52s} {p:7d} {max(q):11d}  {ms(v)}")


def part_d(args):
    budgets = [10, 30] if args.smoke else [100, 300, 1000, 2000]
    print(f"\nD. data efficiency on SHG (n_inputs 12, n_outputs 7, SHGMismatch.typical(), TYPICAL_NOISE; assumed): "
          f"held-out rel. error vs fitting queries ({args.batch} inputs each, initial-control distribution), "
          f"{args.held_out} held-out queries; seeds {args.seeds}")
    table: dict[str, dict[int, list[float]]] = {}
    floor, nominal = [], []
    for seed in args.seeds:
        plant = shg_plant(seed)
        x_te, c_te, y_te = held_out(plant, args.batch, args.held_out, seed=10_000 + seed)
        floor.append(relative_error(plant.true_twin(), x_te, c_te, y_te))
        nominal.append(relative_error(plant.nominal_twin(), x_te, c_te, y_te))
        for budget in budgets:
            for name, (twin, lr) in twins_for(plant, shg_calibrated, seed).items():
                twin, report = fit_twin(twin, FromPlant(plant, sampler(plant, args.batch)), budget=budget,
                                        **fit_settings(args, budget, lr, seed))
                assert report.queries == budget
                table.setdefault(name, {}).setdefault(budget, []).append(relative_error(twin, x_te, c_te, y_te))
        print(f"  seed {seed} done", flush=True)
    print(f"{'fit queries':>11s} " + " ".join(f"{name:>32s}" for name in table))
    for budget in budgets:
        print(f"{budget:11d} " + " ".join(f"{ms(table[name][budget]):>32s}" for name in table))
    print(f"nominal twin (0 queries): {ms(nominal)}; true twin (DIAGNOSTIC noise floor): {ms(floor)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--held-out", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--fit-batch", type=int, default=256)
    parser.add_argument("--min-steps", type=int, default=1000)
    parser.add_argument("--osc-queries", type=int, default=250,
                        help="oscillator fitting queries (its twins run once per control setting: slower)")
    parser.add_argument("--osc-batch", type=int, default=16)
    parser.add_argument("--skip-c", action="store_true")
    parser.add_argument("--skip-d", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny settings (seconds), same tables")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.smoke:
        args.seeds, args.budget, args.held_out, args.epochs, args.min_steps, args.patience = args.seeds[:1], 10, 5, 2, 2, 2
        args.osc_queries, args.osc_batch = 4, 4
    start = time.time()
    if not args.skip_c:
        print(f"(oscillators and fibre: started at {time.time() - start:.0f} s)")
        part_c(args, "coupled oscillators (8, OscillatorMismatch.wright2022())", oscillator_plant,
               oscillator_calibrated, "calibrated: the extra coupling dJ fitted (k = 1 + eta not fitted)",
               nominal=oscillator_nominal, budget=args.osc_queries, batch=args.osc_batch)
        part_c(args, "multimode fibre (8 in, 16 camera pixels, 64 modes, default SLM and camera, static)",
               fibre_plant, fibre_calibrated, "calibrated: the complex transmission matrix fitted (SLM, camera "
               "outside the model class)")
    if not args.skip_d:
        print(f"(SHG curve: started at {time.time() - start:.0f} s)")
        part_d(args)
    print(f"\n(wall time {time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
