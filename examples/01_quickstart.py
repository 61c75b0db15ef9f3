"""Physics-aware training vs in-silico training on a mismatched SHG plant (about a minute on a laptop).

    python examples/01_quickstart.py
"""

import torch

import pnnlab
from pnnlab.data import load_vowels
from pnnlab.models.shg_classifier import RECOMMENDED_TRAINING, TYPICAL_NOISE, build_shg_classifier
from pnnlab.plants.optics.shg import SHGMismatch

torch.set_num_threads(1)
data = load_vowels()
print(data.summary())
for method in (pnnlab.InSilico(), pnnlab.PhysicsAwareTraining()):
    model = build_shg_classifier(in_features=data.in_features, n_classes=data.n_classes,
                                 mismatch=SHGMismatch.typical(), noise=TYPICAL_NOISE, seed=0)
    history = pnnlab.train(model, method, data, **RECOMMENDED_TRAINING, seed=0, progress=True)
    final = history.final
    print(f"{method.name:>10}: test accuracy on the plant {final['test_accuracy']:.1%} "
          f"after {final['train_queries']} plant queries")
