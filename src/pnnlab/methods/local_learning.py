"""Physical local learning (PhyLL) as published, and the contrastive local method it grew from.

:class:`PhysicalLocalLearning` (``phyll``): Momeni, Rahmani, Malléjac, del Hougne & Fleury,
"Backpropagation-free training of deep physical neural networks", Science 382, 1297 (2023),
doi:10.1126/science.adi8474; checked line by line against the authors' code
(github.com/MomeniAli/PhyLL, commit e10480b: ``Acoustic/acoustics_pnn.py``,
``Microwave/microwave_pnn.py``, ``Optics/optics_pnn.py``, ``DNNs/main.py``). It trains a
:class:`~pnnlab.models.phyll.PhyLLNet`. One training step on a batch ``(x, y)``:

1. one wrong label per sample, uniform over the others
   (``choice(list(set(range(C)) - {y}))``, acoustic l. 189-190); positive input
   ``u+ = [v onehot(y), x]``, negative ``u- = [v onehot(y'), x]`` (the label enters the first
   physical layer, ``overlay_y_on_x``);
2. for each block ``l`` in turn: the physical system is measured once on the positive and negative
   inputs (``p_t = cat(PNN(h_pos), h_pos)``, l. 195-196; one plant query with 2 x batch samples here),
   then the block's own Adam takes ``inner_steps`` steps on the *same* measured inputs
   (``Layer.train``, ``for i in range(self.num_epochs_internal)``, l. 256-270) on

       L_l = mean_i softplus(-alpha [G_l(u+_i) - G_l(u-_i)]),   G_l = cos(|W_l z_l + b_l|, p_l)

   (``torch.log(1 + torch.exp(-self.threshold * delta))``; softplus is the same function, computed
   without overflow), and only then its detached outputs go on to block ``l + 1``;
3. prediction: every label is tried and ``sum_l G_l`` is maximised (``FNet.predict``).

The variants' constants, from the authors' code (``Layer.__init__``):

=============  =====  ========  ===========  ======  =====================================
variant        alpha  Adam lr   inner steps  skip    batch / epochs in their scripts
=============  =====  ========  ===========  ======  =====================================
acoustic       4      5e-4      10           yes     full training set / 200 epochs
microwave      4      2.5e-4    10           yes     full training set / 100 epochs
optics         5      5e-5      20           no      10,000 / 350 epochs (MNIST)
digital (DNN)  4      1e-4      25           n/a     (GELU, no absolute value; not built)
=============  =====  ========  ===========  ======  =====================================

``PhysicalLocalLearning.acoustic()``, ``.microwave()`` and ``.optics()`` give these; the skip is a
property of the network (``PhyLLNet(skip=...)``). The method owns one Adam per block (as the
authors' ``Layer.opt``), so it steps parameters itself (``updates_parameters = True``) and the
optimizer ``train`` would create is not used; ``lr`` is the method's. The physical systems are
only run forward: no twin is needed or read.

Plant queries per step: one per physical block (2 x batch samples: positive and negative);
inference: one per physical block with batch x n_classes samples.

:class:`ContrastiveLocalLearning` (``contrastive_local``) is what pnnlab called ``phyll`` before:
the symmetric pairwise loss ``softplus(-a [G+ - G-])`` (Lee & Song, "SymBa", arXiv:2303.08418
(2023)) on the mean-square goodness of a :class:`~pnnlab.models.goodness.GoodnessNet` (label
embedded *after* a fixed physical front end), one optimizer step per batch. It shares PhyLL's loss
but not its algorithm.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import devices
from .._validation import check_int, check_positive, make_generator
from ..execution import OnPlant, executing
from ..layers import physical_layers
from ..models.phyll import PhyLLNet
from .base import Method, NeedsModel
from .forward_forward import GoodnessMethod


def wrong_labels(y: torch.Tensor, n_classes: int, generator: torch.Generator) -> torch.Tensor:
    """One wrong label per sample, uniform over the ``n_classes - 1`` others."""
    shift = devices.randint(1, n_classes, y.shape, generator=generator, device=y.device)
    return (y + shift) % n_classes


class PhysicalLocalLearning(Method):
    name = "phyll"
    summary = ("physical local learning as published: label into the physics, cosine goodness against a fixed "
               "random unit vector, several Adam steps per block per batch, no model of the physics (Momeni 2023)")
    requirements = (NeedsModel(PhyLLNet, build="pnnlab.models.fibre_local.build_fibre_phyll_net"),)
    updates_parameters = True
    plant_queries_per_step = "1 query per physical block (2 x batch samples: positive and negative)"

    def __init__(self, *, alpha: float = 4.0, lr: float = 5e-4, inner_steps: int = 10, seed: int = 0) -> None:
        self.alpha = check_positive("alpha", alpha)
        self.lr = check_positive("lr", lr)
        self.inner_steps = check_int("inner_steps", inner_steps)
        self._generator = make_generator(seed)
        self._optimizers: dict[int, torch.optim.Optimizer] = {}

    @classmethod
    def acoustic(cls, *, seed: int = 0) -> "PhysicalLocalLearning":
        """Acoustic-cavity variant: alpha 4, Adam 5e-4, 10 steps (``Acoustic/acoustics_pnn.py`` l. 227-230)."""
        return cls(alpha=4.0, lr=5e-4, inner_steps=10, seed=seed)

    @classmethod
    def microwave(cls, *, seed: int = 0) -> "PhysicalLocalLearning":
        """Microwave-cavity variant: alpha 4, Adam 2.5e-4, 10 steps (``Microwave/microwave_pnn.py`` l. 290-293)."""
        return cls(alpha=4.0, lr=2.5e-4, inner_steps=10, seed=seed)

    @classmethod
    def optics(cls, *, seed: int = 0) -> "PhysicalLocalLearning":
        """Optical (multimode-fibre) variant: alpha 5, Adam 5e-5, 20 steps (``Optics/optics_pnn.py`` l. 160-163)."""
        return cls(alpha=5.0, lr=5e-5, inner_steps=20, seed=seed)

    def queries_per_step(self, model) -> int:
        return len(physical_layers(model))

    def local_loss(self, g_pos: torch.Tensor, g_neg: torch.Tensor) -> torch.Tensor:
        """``mean softplus(-alpha (G+ - G-))``."""
        return nn.functional.softplus(-self.alpha * (g_pos - g_neg)).mean()

    def negative_labels(self, y: torch.Tensor, n_classes: int) -> torch.Tensor:
        return wrong_labels(y, n_classes, self._generator)

    def optimizer(self, linear: nn.Linear) -> torch.optim.Optimizer:
        """The block's own Adam (created on first use, kept across steps like the authors' ``Layer.opt``)."""
        key = id(linear)
        opt = self._optimizers.get(key)
        if opt is None or opt.param_groups[0]["params"][0] is not linear.weight:
            opt = torch.optim.Adam(linear.parameters(), lr=self.lr)
            self._optimizers[key] = opt
        return opt

    def step(self, model, x, y, loss_fn):
        if not isinstance(model, PhyLLNet):
            raise TypeError(f"PhysicalLocalLearning trains a pnnlab.models.phyll.PhyLLNet (physical blocks followed "
                            f"by trainable linear layers), got {type(model).__name__}; build one with "
                            f"pnnlab.models.fibre_local.build_fibre_phyll_net, or use ContrastiveLocalLearning "
                            f"for a GoodnessNet.")
        batch = x.shape[0]
        labels = torch.cat([y, self.negative_labels(y, model.n_classes)])
        h = model.embed(torch.cat([x, x]), labels)
        total = 0.0
        with executing(OnPlant()):
            for i, linear in enumerate(model.linears):
                z = model.block_input(i, h.detach())
                opt = self.optimizer(linear)
                running = 0.0
                for _ in range(self.inner_steps):
                    g = model.goodness(i, linear(z))
                    loss = self.local_loss(g[:batch], g[batch:])
                    if not bool(torch.isfinite(loss)):
                        raise FloatingPointError(
                            f"phyll: block {i}'s local loss is {float(loss.detach())} (non-finite measurements or "
                            f"weights); no step was taken. Check the plant's outputs or lower lr (lr={self.lr}).")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    running += float(loss.detach())
                total += running / self.inner_steps
                with torch.no_grad():
                    h = linear(z)
        return total / model.n_blocks

    def __repr__(self):
        return f"PhysicalLocalLearning(alpha={self.alpha}, lr={self.lr}, inner_steps={self.inner_steps})"


class ContrastiveLocalLearning(GoodnessMethod):
    name = "contrastive_local"
    summary = ("contrastive local learning: symmetric pairwise loss on mean-square goodness of a GoodnessNet, one "
               "optimizer step per batch (SymBa loss, Lee & Song 2023); not the published PhyLL")

    def __init__(self, *, sharpness: float = 4.0, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.sharpness = check_positive("sharpness", sharpness)

    def local_loss(self, g_pos, g_neg):
        return nn.functional.softplus(-self.sharpness * (g_pos - g_neg)).mean()

    def __repr__(self):
        return f"ContrastiveLocalLearning(sharpness={self.sharpness})"


__all__ = ["ContrastiveLocalLearning", "PhysicalLocalLearning", "wrong_labels"]
