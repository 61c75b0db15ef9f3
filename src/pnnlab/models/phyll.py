"""The network of physical local learning as published: Momeni, Rahmani, Malléjac, del Hougne &
Fleury, "Backpropagation-free training of deep physical neural networks", Science 382, 1297 (2023),
doi:10.1126/science.adi8474, reference code github.com/MomeniAli/PhyLL (MIT licence).

What the authors' code does (``Acoustic/acoustics_pnn.py``, ``Microwave/microwave_pnn.py``,
``Optics/optics_pnn.py``, commit e10480b) and what :class:`PhyLLNet` implements:

* **Label in the physics.** ``overlay_y_on_x`` writes the label into the *input of the first
  physical layer*: the first ``n_classes`` entries of the (zero-padded) input are set to 0 and entry
  ``y`` to ``max |x|`` (acoustic l. 124-128, microwave l. 121-125; the optics variant adds label rows
  to the image, l. 143-149). The physics therefore sees label and data together. Here the label
  entries are prepended, ``u = [v onehot(c), x]`` with ``v = max_j |x_j|`` of each sample
  (simplification: the authors take the maximum over the whole batch, which makes a sample's score
  depend on its batch-mates; ``label_value`` fixes ``v`` instead).
* **Block.** A fixed physical system ``Phi_l`` followed by a trainable linear layer ``a_l = W_l z_l + b_l``
  (``nn.Linear(..., bias=True)``, ``Layer.P0``/``Layer.P``), where ``z_l = [Phi_l(h_{l-1}), h_{l-1}]``
  with the skip in the acoustic and microwave variants (``torch.cat((self.PNN_Acoustic(h), h), 1)``,
  acoustic l. 159, 195) and ``z_l = Phi_l(h_{l-1})`` in the optics variant (the skip is commented
  out, l. 271-272). ``h_0 = u`` and ``h_l = a_l`` (the raw linear output, detached: ``Layer.train``
  returns ``self.forward(x).detach()``); the physical layer does its own input normalisation
  (acoustic: ``|x| / ||x||``, l. 174).
* **Goodness.** ``G_l = cos(|a_l|, p_l)`` with ``p_l`` a fixed random unit vector per layer,
  ``p_l = n / (||n|| + 1e-4)``, ``n ~ N(0, I)`` (``p_vector0``, ``p_vector1``, ..., acoustic l. 113-120;
  ``nn.CosineSimilarity(dim=1, eps=1e-6)``). The probes are buffers, never trained.
* **Prediction.** Every label is tried and the goodness is summed over layers,
  ``score_c = sum_l G_l(x, c)``, ``argmax_c`` (``FNet.predict``). ``forward(x)`` returns the
  ``(batch, n_classes)`` scores, so :func:`pnnlab.evaluate` works unchanged.

The physical systems are passed in as modules (``physics``): any fixed, label-agnostic map of a
``(batch, width)`` tensor, e.g. a frozen :class:`~pnnlab.layers.PhysicalLayer` behind its input
encoding (see :func:`pnnlab.models.fibre_local.build_fibre_phyll_net`), or, for digital controls, a
fixed random feature map or the identity. Plant queries: one per physical block per call.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .._validation import check_int, check_positive, make_generator

#: the authors' regulariser in the probe normalisation, ``p / (||p|| + 1e-4)`` (acoustic l. 114)
PROBE_EPS = 1e-4
#: ``nn.CosineSimilarity(dim=1, eps=1e-6)`` of the authors' goodness (acoustic l. 239)
COSINE_EPS = 1e-6


def random_unit_vector(width: int, generator: torch.Generator) -> torch.Tensor:
    """A fixed random probe ``n / (||n|| + 1e-4)``, ``n ~ N(0, I_width)`` (Momeni 2023 code)."""
    n = torch.randn(width, generator=generator)
    return n / (n.norm() + PROBE_EPS)


def cosine_goodness(a: torch.Tensor, probe: torch.Tensor) -> torch.Tensor:
    """``G = cos(|a|, p)`` per sample, as ``nn.CosineSimilarity(dim=1, eps=1e-6)`` computes it."""
    return nn.functional.cosine_similarity(a.abs(), probe.expand_as(a), dim=1, eps=COSINE_EPS)


class PhyLLNet(nn.Module):
    """Blocks ``[physical system -> trainable linear]`` with cosine goodness (Momeni et al. 2023).

    Parameters
    ----------
    physics: one fixed module per block mapping ``(batch, width_in)`` to ``(batch, physical_width)``;
        its parameters must be frozen (``requires_grad=False``): PhyLL never differentiates it.
    linears: one ``nn.Linear`` per block; block ``l``'s input width is ``physical_width_l`` plus the
        width of its input ``h_{l-1}`` when ``skip`` is true.
    n_classes: number of labels (the first ``n_classes`` entries of the first block's input).
    skip: concatenate the block input to the physical output, ``[Phi(h), h]`` (acoustic and microwave
        variants) or not (optics variant).
    label_value: the value written at the label's position; ``None`` = ``max |x|`` of each sample.
    seed: draws the fixed random unit probes, one per block.
    """

    def __init__(self, *, physics: Sequence[nn.Module], linears: Sequence[nn.Linear], n_classes: int,
                 skip: bool = True, label_value: float | None = None, seed: int = 0) -> None:
        super().__init__()
        if not physics or len(physics) != len(linears):
            raise ValueError(f"physics and linears must be non-empty and of equal length (one physical system "
                             f"and one linear layer per block), got {len(physics)} and {len(linears)}.")
        if not all(isinstance(m, nn.Module) for m in physics):
            raise TypeError("physics must be a sequence of nn.Module (nn.Identity() for a block without physics).")
        if not all(isinstance(m, nn.Linear) for m in linears):
            raise TypeError("linears must be a sequence of nn.Linear (the trainable layer of each block).")
        for i, m in enumerate(physics):
            if any(p.requires_grad for p in m.parameters()):
                raise ValueError(f"physics[{i}] has trainable parameters; PhyLL keeps the physical systems fixed: "
                                 f"call p.requires_grad_(False) on them.")
        if not isinstance(skip, bool):
            raise TypeError(f"skip must be True or False, got {skip!r}.")
        self.physics = nn.ModuleList(physics)
        self.linears = nn.ModuleList(linears)
        self.n_classes = check_int("n_classes", n_classes, minimum=2)
        self.skip = skip
        self.label_value = None if label_value is None else check_positive("label_value", label_value)
        gen = make_generator(seed)
        for i, lin in enumerate(self.linears):
            self.register_buffer(f"probe{i}", random_unit_vector(lin.out_features, gen))

    @property
    def n_blocks(self) -> int:
        return len(self.linears)

    def probe(self, index: int) -> torch.Tensor:
        """The fixed random unit vector of block ``index``."""
        return getattr(self, f"probe{index}")

    def embed(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``[v onehot(label), x]``: the label goes into the input of the first physical layer."""
        if self.label_value is None:
            v = x.abs().amax(dim=1, keepdim=True)
        else:
            v = torch.full((x.shape[0], 1), self.label_value, dtype=x.dtype, device=x.device)
        onehot = nn.functional.one_hot(labels, self.n_classes).to(x.dtype)
        return torch.cat([v * onehot, x], dim=1)

    def block_input(self, index: int, h: torch.Tensor) -> torch.Tensor:
        """``z_l = [Phi_l(h), h]`` (skip) or ``Phi_l(h)``; the physics is run without gradient."""
        with torch.no_grad():
            phi = self.physics[index](h)
        return torch.cat([phi, h], dim=1) if self.skip else phi

    def goodness(self, index: int, a: torch.Tensor) -> torch.Tensor:
        return cosine_goodness(a, self.probe(index))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        labels = torch.arange(self.n_classes, device=x.device).repeat(batch)
        h = self.embed(x.repeat_interleave(self.n_classes, dim=0), labels)
        scores = torch.zeros(batch * self.n_classes, dtype=x.dtype, device=x.device)
        for i, linear in enumerate(self.linears):
            h = linear(self.block_input(i, h.detach()))
            scores = scores + self.goodness(i, h)
        return scores.view(batch, self.n_classes)


class RandomFeatureMap(nn.Module):
    """Fixed random features ``standardise(cos(R h / rms(h) + c))`` (random Fourier features, Rahimi &
    Recht, NeurIPS 20 (2007)): the digital stand-in of a physical layer of the same width in the
    controls of the benchmarks. ``R`` has i.i.d. N(0, bandwidth^2 / in_features) entries (so each
    argument has variance bandwidth^2), ``c`` is uniform in [0, 2 pi); nothing is trainable."""

    def __init__(self, in_features: int, out_features: int, *, bandwidth: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        self.in_features = check_int("in_features", in_features)
        self.out_features = check_int("out_features", out_features)
        self.bandwidth = check_positive("bandwidth", bandwidth)
        gen = make_generator(seed)
        self.register_buffer("weight", self.bandwidth * torch.randn(out_features, in_features, generator=gen)
                             / in_features ** 0.5)
        self.register_buffer("phase", 2 * torch.pi * torch.rand(out_features, generator=gen))

    def forward(self, h):
        h = h / (h.square().mean(dim=1, keepdim=True).sqrt() + 1e-6)
        f = torch.cos(h @ self.weight.T + self.phase)
        f = f - f.mean(dim=1, keepdim=True)
        return f / (f.std(dim=1, keepdim=True) + 1e-6)




def phyll_linear(in_features: int, out_features: int, generator: torch.Generator) -> nn.Linear:
    """``nn.Linear`` with PyTorch's default uniform(+-1/sqrt(fan_in)) initialisation, drawn from ``generator``."""
    layer = nn.Linear(in_features, out_features)
    bound = 1.0 / in_features ** 0.5
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)
    return layer


def build_phyll_net(*, in_features: int, n_classes: int, physics, physical_width: int | None,
                    n_blocks: int = 2, hidden: int = 64, skip: bool = True, label_value: float | None = None,
                    seed: int = 0) -> PhyLLNet:
    """Stack ``n_blocks`` PhyLL blocks of ``hidden`` units.

    ``physics(width_in, index)`` returns block ``index``'s fixed physical system (``physical_width``
    outputs). ``physics=None`` builds the *no-physics* control: ``z_l = h_{l-1}`` (identity, no skip,
    ``physical_width`` ignored), the digital-only network whose widths a benchmark sets for the same
    number of trainable parameters.
    """
    in_features = check_int("in_features", in_features)
    n_classes = check_int("n_classes", n_classes, minimum=2)
    n_blocks = check_int("n_blocks", n_blocks)
    hidden = check_int("hidden", hidden)
    if physics is not None and not callable(physics):
        raise TypeError(f"physics must be a function (width_in, index) -> fixed nn.Module, or None for the "
                        f"no-physics control, got {type(physics).__name__}.")
    gen = make_generator(seed)
    modules, linears, width = [], [], in_features + n_classes
    for index in range(n_blocks):
        if physics is None:
            modules.append(nn.Identity())
            z_width = width
        else:
            modules.append(physics(width, index))
            z_width = check_int("physical_width", physical_width) + (width if skip else 0)
        linears.append(phyll_linear(z_width, hidden, gen))
        width = hidden
    return PhyLLNet(physics=modules, linears=linears, n_classes=n_classes,
                    skip=skip and physics is not None, label_value=label_value, seed=seed + 7919)


def phyll_parameter_count(*, in_features: int, n_classes: int, n_blocks: int, hidden: int,
                          physical_width: int | None, skip: bool = True) -> int:
    """Trainable parameters of :func:`build_phyll_net` (``physical_width=None``: the no-physics control)."""
    total, width = 0, in_features + n_classes
    for _ in range(n_blocks):
        z = width if physical_width is None else physical_width + (width if skip else 0)
        total += (z + 1) * hidden
        width = hidden
    return total


def hidden_for_equal_parameters(target: int, *, in_features: int, n_classes: int, n_blocks: int) -> int:
    """Width of the no-physics control whose trainable-parameter count is closest to ``target``."""
    return min(range(1, 4097), key=lambda h: abs(phyll_parameter_count(
        in_features=in_features, n_classes=n_classes, n_blocks=n_blocks, hidden=h, physical_width=None) - target))


__all__ = ["PhyLLNet", "RandomFeatureMap", "build_phyll_net", "cosine_goodness", "hidden_for_equal_parameters",
           "phyll_linear", "phyll_parameter_count", "random_unit_vector"]
