"""Vowels on a 3-layer coherent MZI network with on-chip electro-optic activations, under fabrication
errors: in-situ adjoint training (3 and 4 passes) against in-silico, PAT and SPSA.

Setting of issue 8 section 3: the 7-vowel, 12-formant task of Hillenbrand et al. (1995), split by
speaker (pnnlab.data.vowels), classified by ``pnnlab.models.photonic_mesh.build_photonic_mesh``: three
13-port rectangular MZI meshes (12 formant ports and one port fed with a fixed reference light, see
the third round of choices below), Williamson 2020 electro-optic activations between them (on-chip plants
with their own hidden errors), photodetection of 7 ports, a per-class scale and offset. Anchors:
Bandyopadhyay et al., Nat. Photon. 2024 (doi:10.1038/s41566-024-01567-z) report 92.5 % on 6 vowels
training a 6-neuron, 3-layer chip in situ; Pai et al., Science 380, 398 (2023) train a 3-layer, 4-port
chip with the adjoint method. Neither is the same task or chip as this simulation.

Every chip has ``MeshFabrication.typical()`` (2 % coupler errors, random static phase offsets, 0.2 dB
per MZI; assumed values, see its docstring), heaters with 2 % thermal crosstalk and a 12-bit DAC, the
default detector (1e4 photons per unit power, thermal noise, 12-bit ADC), and activations with
``EOMismatch()`` (assumed). The twins are the nominal (design) physics: the ideal mesh.

Rows (same epochs, batch size, evaluation schedule and learning rate for every torch row):

* adjoint (3 passes)  Hughes 2018 / Pai 2023 in situ: forward, adjoint and interference passes of light
* adjoint (4 passes)  plus one pass measuring the time-reversed field alone (docs/methods/adjoint.md)
* PAT                 plant forward, nominal-twin backward
* in-silico           nominal twin only, deployed to the plant
* SPSA                2 plant evaluations of the whole network per step (one random direction)
* ideal (UB)          the ``ideal`` method: trained and evaluated on the true physics, noise off
* matched MLP         digital 12-h-7 tanh network with about the same trainable parameter count
* logistic regression / MLP ceilings (scikit-learn, regularisation on validation)

The learning rate (LR below) was NOT tuned per method (one value for all rows, assumed); the model's
activation gain and initial bias were chosen on seed 0's validation split with an ideal chip (see
build_photonic_mesh); the read-out's initial scale (the logits' temperature, learnt from there:
READOUT_SCALE) on seed 0's validation split with the fabricated chip (ideal method, 60 epochs: 20 ->
93.2 %, 50 -> 100 %, 100 / 200 -> 97.7 %; also tried there, not adopted: a relay gain of 1.5 or 2 on
the re-encoded amplitudes 97.7 / 95.5 %, activation gain 2 pi 95.5 %, lr 0.05 95.5 %, 150 epochs
97.7 %; seed 0's 44 validation samples cannot separate these: one sample is 2.3 points). Phases are
periodic controls (wrapped, gradient 1; ControlSpec(periodic=True)). The epoch is selected on
validation (``history.selected``); seeds 1, 2, 3 vary the speaker split, the chips' errors and the
initial phases. Test accuracy is never used for any choice.

Second round of choices (issue 8 section 3 asks for >= 92.5 %), on the validation splits of seeds 0, 4
and 5 (44 / 45 / 47 samples; seeds 4 and 5 are never reported, and seed 0 alone saturates at 98-100 %),
ideal method, validation accuracy at the validation-selected epoch, mean of the three: this
configuration (power read-out, scale 50, lr 0.02, 60 epochs) 95.6 % (100 / 93.3 / 93.6); lr 0.01
94.9 %; 150 epochs 95.6 % (the same epochs selected); a coherent read-out of the last mesh
(``FieldReadout``, a Re y + b |y|^2 + c) with initial scales 20 / 100: 94.8 % (60 and 150 epochs),
50 / 250: 94.8 %; 16-port meshes 92.0 %. None is better by even one
validation sample on the mean, so nothing was changed. The logistic-regression ceiling on the same
validation splits: 100 / 95.6 / 100 %. The initial phases cannot be chosen usefully on these chips:
``MeshFabrication.typical()`` adds an unknown static offset of std pi to every phase shifter, so the
effective phases are uniformly random whatever is commanded (the mean resultant length of a wrapped
normal of std pi is exp(-pi^2 / 2) = 0.007): an identity-like or Haar-random command only exists
after calibration, which is another chip (not this one).

Third round of choices. Without a reference light this chip is even in its input: a signed amplitude
encoding, an odd activation (the field times a function of its intensity), a relay that re-encodes
|field| and a power read-out give output(-x) = output(x), so the sign of every z-scored formant is lost
(tests/test_photonic_digits_bias.py checks it). ``ReferenceLight`` on an extra port breaks the symmetry.
Validation splits of seeds 0, 4, 5, 6, 7, 8 (never reported), same protocol as above, mean of six: ideal
method, this chip without a reference 93.9 %, 13 ports with a reference of amplitude 1: 96.0 %,
amplitude 2: 96.4 % (100 / 95.6 / 95.7 / 97.8 / 95.8 / 93.3), 14 ports with two references of
amplitude 2: 96.4 %, amplitude 1 with lr 0.01: 96.0 %, with read-out scale 20: 95.3 %; the 4-pass
adjoint: no reference 93.5 %, amplitude 1 and 2 both 96.8 %. Adopted: 13 ports, one reference of
amplitude 2 (best on the ideal method, tied on the adjoint). On seeds 0, 4, 5 alone, 13 ports without a
reference gave 94.9 % (baseline 95.7 %), so the gain is the reference, not the extra port.

    python benchmarks/bench_photonic_vowels.py [--seeds 1 2 3] [--epochs 60] [--methods adjoint4 ideal ...]
                                               [--plot PATH] [--smoke]

``--plot PATH`` writes test accuracy on the plant against training plant queries and metered device time,
one curve per method (benchmarks/_photonic_plot.py); off unless given.
"""

from __future__ import annotations

import argparse

import torch

import pnnlab
from pnnlab.data.vowels import load_vowels
from pnnlab.methods.adjoint import AdjointInSitu
from pnnlab.methods.zeroth_order import SPSA
from pnnlab.models.digital_baselines import build_matched_mlp, trainable_parameter_count
from pnnlab.models.photonic_mesh import ReferenceLight, build_photonic_mesh
from pnnlab.plants.photonics.activation import EOMismatch
from pnnlab.plants.photonics.mzi_mesh import Detector, Heaters, MeshFabrication

from _pat_common import compare, print_table, run_seeds
from _photonic_plot import plot_cost_curves

LR = 0.02
BATCH = 32
#: initial per-class read-out scale (the logits' temperature; learnt, from this start): chosen on seed 0's
#: validation split (ideal method, 60 epochs: 20 -> 93.2 %, 50 -> 100 %, 100 -> 97.7 %, 200 -> 97.7 %;
#: the 4-pass adjoint with 50: 97.7 %), never on test
READOUT_SCALE = 50.0
#: third round (see the docstring): a reference light on a 13th port, amplitude 2 in the features' units
N_PORTS = 13
REFERENCE = ReferenceLight(ports=(12,), amplitude=2.0)

NAMES = {"adjoint3": "adjoint, 3 passes (in situ, on the plant)",
         "adjoint4": "adjoint, 4 passes (in situ, on the plant)",
         "PAT": "PAT (plant forward, nominal-twin backward)",
         "in-silico": "in-silico (nominal twin, deployed to the plant)",
         "SPSA": "SPSA (1 direction, 2 evaluations per step)",
         "ideal": "ideal (UPPER BOUND: true physics, noise off)",
         "matched MLP": "matched MLP (digital, same trainable params)"}


def physical(data, seed):
    return build_photonic_mesh(in_features=data.in_features, n_classes=data.n_classes, n_ports=N_PORTS, layers=3,
                               reference=REFERENCE,
                               fabrication=MeshFabrication.typical(), heaters=Heaters(crosstalk=0.02, dac_bits=12),
                               detector=Detector(), activation=EOMismatch(), readout_scale=READOUT_SCALE, seed=seed)


def builders(data, seed):
    n_params = trainable_parameter_count(physical(data, seed))
    return {
        "adjoint3": (lambda: physical(data, seed), AdjointInSitu()),
        "adjoint4": (lambda: physical(data, seed), AdjointInSitu(passes=4)),
        "PAT": (lambda: physical(data, seed), pnnlab.PhysicsAwareTraining()),
        "in-silico": (lambda: physical(data, seed), pnnlab.InSilico()),
        "SPSA": (lambda: physical(data, seed), SPSA(seed=seed)),
        "ideal": (lambda: physical(data, seed), pnnlab.IdealBackprop()),
        "matched MLP": (lambda: build_matched_mlp(in_features=data.in_features, n_classes=data.n_classes,
                                                  parameters=n_params, seed=seed), pnnlab.InSilico()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--evaluate-every", type=int, default=5)
    parser.add_argument("--plot", default=None, help="write accuracy against plant queries and device time here (PNG)")
    parser.add_argument("--methods", nargs="+", default=None, choices=sorted(NAMES),
                        help="run only these rows (default: all); the ceilings are always printed")
    parser.add_argument("--smoke", action="store_true", help="tiny settings (seconds), same table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    epochs, every, seeds = args.epochs, args.evaluate_every, args.seeds
    if args.smoke:
        epochs, every, seeds = 1, 1, seeds[:1]
    training = {"epochs": epochs, "batch_size": BATCH}
    print(f"training: {epochs} epochs, batch {BATCH}, Adam lr {LR} for every torch row (not tuned, assumed); "
          f"evaluation every {every} epochs; seeds {seeds} (seed = speaker split, chip errors, initial phases); "
          f"activation gain/bias chosen on seed 0's validation split (ideal chip), read-out scale {READOUT_SCALE:g} "
          f"on seed 0's validation split (fabricated chip, ideal method)")
    print("chips: MeshFabrication.typical() (assumed), Heaters(crosstalk=0.02, dac_bits=12), Detector() defaults, "
          "EOMismatch() activations (assumed); twins: nominal (ideal mesh)")
    print(f"chip: {N_PORTS} ports, the 12 formants on ports 0-11 and a fixed reference light on port(s) "
          f"{list(REFERENCE.ports)}, amplitude {REFERENCE.amplitude:g} (chosen on the validation splits of "
          f"seeds 0, 4-8, never reported; see the docstring)")
    chosen = builders if args.methods is None else (
        lambda data, seed: {k: v for k, v in builders(data, seed).items() if k in args.methods})
    rows, n_test = run_seeds(load_vowels, chosen, NAMES, {k: LR for k in NAMES}, seeds, training=training,
                             evaluate_every=every, twin_check=("in-silico",), twin_label="on its twin",
                             smoke=args.smoke)
    print_table(rows, n_test)
    print("train queries: plant queries of all physical layers during training (adjoint: 3 or 4 per mesh and 7 per "
          "activation per step; PAT: 1 per layer per step; SPSA: 2 per layer per step; in-silico and ideal: 0).")
    print("anchors: Bandyopadhyay et al. 2024 (Nat. Photon., doi:10.1038/s41566-024-01567-z) report 92.5 % on 6 "
          "vowels trained in situ on a 3-layer chip; Pai et al. 2023 (Science 380, 398) > 94 % on their tasks; not "
          "the same task or chip.")
    compare(rows, [(NAMES["adjoint3"], NAMES["in-silico"]), (NAMES["adjoint4"], NAMES["adjoint3"]),
                   (NAMES["adjoint4"], NAMES["PAT"]), (NAMES["ideal"], NAMES["adjoint4"]),
                   (NAMES["adjoint4"], NAMES["SPSA"]), (NAMES["adjoint4"], NAMES["matched MLP"])], n_test)
    if args.plot:
        plot_cost_curves(rows, args.plot, title=f"vowels on a 3-layer 13-port MZI network (reference light) "
                                                f"with fabrication errors "
                                                f"(seeds {seeds}, {epochs} epochs, batch {BATCH})")


if __name__ == "__main__":
    main()
