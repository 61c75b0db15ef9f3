"""CMA-ES: covariance matrix adaptation evolution strategy, through the ``cma`` package.

Hansen & Ostermeier, Evol. Comput. 9, 159 (2001), doi:10.1162/106365601750190398; Hansen, "The CMA
evolution strategy: a tutorial", arXiv:1604.00772. Each step samples a population of lambda parameter
vectors ``theta_k = m + sigma B D z_k`` (z_k standard normal), evaluates the batch loss of each on the
plant, and lets ``cma`` update the mean m, the step size sigma and the covariance C = B D^2 B^T from
the ranking. The model's parameters are then set to the new mean. Plant queries per step: lambda
forward passes (one query per physical layer each); lambda defaults to cma's 4 + floor(3 ln P).

The search runs over the raw (unconstrained) parameters, so every candidate is inside the controls'
physical ranges. ``cma`` is an optional dependency (``pip install pnnlab[cma]``); its sampling uses
this method's own NumPy generator, never the global NumPy seed.
"""

from __future__ import annotations

import numpy as np
import torch

from .._validation import check_int, check_positive
from ..layers import physical_layers
from .base import Method
from .zeroth_order import get_vector, plant_loss, set_vector, trainable_parameters


def _import_cma():
    try:
        import cma
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("CMAES needs the optional package 'cma'; install it with "
                          "`pip install pnnlab[cma]` (or `pip install cma`).") from error
    return cma


class CMAES(Method):
    name = "cmaes"
    summary = "CMA-ES (cma package) over all trainable parameters; lambda plant evaluations per step"
    requirements = ()
    plant_queries_per_step = "population_size forward passes (each one query per physical layer)"
    updates_parameters = True

    def __init__(self, *, sigma0: float = 0.1, population_size: int | None = None, diagonal: bool = False,
                 seed: int = 0) -> None:
        self.sigma0 = check_positive("sigma0", sigma0)
        if not isinstance(diagonal, bool):
            raise TypeError(f"diagonal must be True or False, got {diagonal!r}.")
        self.diagonal = diagonal
        if population_size is not None:
            population_size = check_int("population_size", population_size, minimum=2)
        self.population_size = population_size
        self.seed = check_int("seed", seed, minimum=0)
        self._rng = np.random.default_rng(self.seed)
        self._es = None
        self._key = None

    def population(self, n_params: int) -> int:
        return self.population_size or 4 + int(3 * np.log(n_params))

    def queries_per_step(self, model) -> int:
        n_params = sum(p.numel() for p in trainable_parameters(model))
        return self.population(n_params) * len(physical_layers(model))

    def _strategy(self, model, theta: np.ndarray):
        key = (id(model), theta.size)
        if self._es is None or self._key != key:
            cma = _import_cma()
            rng = self._rng
            options = {"popsize": self.population(theta.size), "verbose": -9, "seed": np.nan,
                       "randn": lambda *shape: rng.standard_normal(shape), "verb_log": 0,
                       "verb_disp": 0, "tolfun": 0, "tolx": 0, "tolfunhist": 0, "tolstagnation": 10 ** 9,
                       "CMA_diagonal": self.diagonal}
            self._es = cma.CMAEvolutionStrategy(theta, self.sigma0, options)
            self._key = key
        return self._es

    def step(self, model, x, y, loss_fn):
        params = trainable_parameters(model)
        vector = get_vector(params)
        theta = vector.detach().double().cpu().numpy()  # the cma library works on the host

        def as_params(values) -> torch.Tensor:
            return torch.as_tensor(np.asarray(values), dtype=vector.dtype, device=vector.device)

        es = self._strategy(model, theta)
        candidates = es.ask()
        losses = []
        try:
            for candidate in candidates:
                set_vector(params, as_params(candidate))
                losses.append(plant_loss(model, x, y, loss_fn))
        except Exception:
            set_vector(params, as_params(theta))
            raise
        es.tell(candidates, losses)
        set_vector(params, as_params(es.mean))
        return float(np.mean(losses))

    def __repr__(self):
        return f"CMAES(sigma0={self.sigma0}, population_size={self.population_size}, diagonal={self.diagonal})"
