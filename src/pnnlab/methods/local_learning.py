"""Physical local learning (PhyLL): Momeni, Rahmani, Mallejac, del Hougne & Fleury,
"Backpropagation-free training of deep physical neural networks", Science 382, 1297 (2023),
doi:10.1126/science.adi8474.

Architecture: each block is a fixed, *unknown* physical transform (here a
:class:`~pnnlab.plants.optics.fibre.FibrePlant` behind a :class:`~pnnlab.layers.PhysicalLayer` with
frozen controls) followed by a trainable digital layer; blocks are stacked and every block is
trained by its own contrastive objective on positive (correct label embedded) and negative (wrong
label) samples. The physical layer is only run forward, so no model of it is needed (and none is
read): the digital weights see the *measured* physical outputs, noise and drift included.

Objective: this implementation uses the symmetric pairwise contrastive loss on the block goodness
``G = mean(h^2)`` of each positive/negative pair,

    L_l = mean_i softplus( -a [G_l(x_i, y_i) - G_l(x_i, y'_i)] ),

(Lee & Song, "SymBa", arXiv:2303.08418 (2023)), which only needs the *difference* of goodness and
therefore no threshold. Simplification: the paper's exact goodness measure (REFERENCES.md recalls a
cosine-similarity form) could not be checked here; the structure (layer-local contrastive objective,
positive and negative passes, physical layer without a model, digital trainable layers) is the
paper's.

Plant queries per step: one query per physical block with 2 x batch samples. Inference: one query
per physical block with batch x n_classes samples (every label is tried, highest total goodness wins).
"""

from __future__ import annotations

from torch import nn

from .._validation import check_positive
from .forward_forward import GoodnessMethod


class PhysicalLocalLearning(GoodnessMethod):
    name = "phyll"
    summary = "physical local learning: layer-local contrastive objective, no model of the physics (Momeni 2023)"

    def __init__(self, *, sharpness: float = 4.0, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.sharpness = check_positive("sharpness", sharpness)

    def local_loss(self, g_pos, g_neg):
        return nn.functional.softplus(-self.sharpness * (g_pos - g_neg)).mean()

    def __repr__(self):
        return f"PhysicalLocalLearning(sharpness={self.sharpness})"


__all__ = ["PhysicalLocalLearning"]
