"""The README's main job: physics-aware training against in-silico training of a simulated SHG network
(Wright et al., Nature 601, 549 (2022)) on the 7-vowel task, with the plant not matching its twin."""

from __future__ import annotations


def demo_spec(*, seed: int = 0, epochs: int | None = None) -> dict:
    from ..models.shg_classifier import RECOMMENDED_TRAINING
    train = dict(RECOMMENDED_TRAINING)
    if epochs is not None:
        train["epochs"] = epochs
    return {
        "name": "demo-shg-vowels",
        "seed": seed,
        "data": {"name": "vowels"},
        "model": {"name": "shg_classifier", "mismatch": "typical", "noise": "typical"},
        "methods": [{"name": "in_silico"}, {"name": "pat"}],
        "train": train,
    }
