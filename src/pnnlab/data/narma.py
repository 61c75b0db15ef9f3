"""NARMA time series (nonlinear auto-regressive moving average), generated locally.

Definition (Atiya & Parlos, "New results on recurrent network training: unifying the algorithms and
accelerating convergence", IEEE Trans. Neural Netw. 11, 697 (2000), doi:10.1109/72.846741; the
NARMA10 benchmark of reservoir computing, e.g. Appeltant et al., Nat. Commun. 2, 468 (2011))::

    y(k+1) = 0.3 y(k) + 0.05 y(k) sum_{i=0}^{n-1} y(k-i) + 1.5 u(k-n+1) u(k) + 0.1,   u(k) ~ U[0, 0.5]

with ``n = 10`` for NARMA10. The task: from the inputs u(0..k), predict y(k+1); a sample pairs the
input u(k) with the target y(k+1).

NARMA data are a regression task of whole series, so they do not fit :class:`pnnlab.data.TaskData`
(classification: int64 labels); :func:`load_narma` returns a :class:`SeriesTask` instead and is a plain
function, not a registered dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._validation import check_int

__all__ = ["SeriesTask", "load_narma", "narma", "nrmse"]


def narma(n_series: int, length: int, *, order: int = 10, seed: int = 0, burn_in: int = 200,
          generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_series`` independent NARMA-``order`` series of ``length`` steps: inputs ``u`` and targets ``y``
    of shape (n_series, length) (float64), ``y[:, k]`` the value y(k+1) that follows input ``u[:, k]``.
    The first ``burn_in`` steps of the recursion (started at y = 0) are discarded. A series whose
    recursion diverges (rare for NARMA10 with u in [0, 0.5]) is drawn again."""
    n_series = check_int("n_series", n_series)
    length = check_int("length", length)
    order = check_int("order", order)
    burn_in = check_int("burn_in", burn_in, minimum=0)
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    total = burn_in + length + order
    out_u, out_y = [], []
    while len(out_u) < n_series:
        u = 0.5 * torch.rand(n_series, total, generator=gen, dtype=torch.float64)
        y = torch.zeros(n_series, total + 1, dtype=torch.float64)
        for k in range(order - 1, total):
            window = y[:, k - order + 1:k + 1]
            y[:, k + 1] = (0.3 * y[:, k] + 0.05 * y[:, k] * window.sum(dim=1)
                           + 1.5 * u[:, k - order + 1] * u[:, k] + 0.1)
        ok = torch.isfinite(y).all(dim=1) & (y.abs().max(dim=1).values < 10.0)
        start = burn_in + order
        for i in torch.nonzero(ok).flatten().tolist():
            if len(out_u) < n_series:
                out_u.append(u[i, start:start + length])
                out_y.append(y[i, start + 1:start + 1 + length])
    return torch.stack(out_u), torch.stack(out_y)


def nrmse(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Normalised root-mean-square error sqrt(mean((prediction - target)^2) / var(target))."""
    prediction, target = prediction.double().flatten(), target.double().flatten()
    return float(((prediction - target).pow(2).mean() / target.var(unbiased=False)).sqrt())


@dataclass
class SeriesTask:
    """Train/validation/test splits of a sequence-regression task: inputs ``x_*`` (n, T) or (n, T, d),
    targets ``y_*`` (n, T); the first ``washout`` steps of every series are the reservoir's transient
    and are neither fitted nor scored. The splits are independent series."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    washout: int = 0
    description: str = ""

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {name!r}.")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def scored(self, y: torch.Tensor) -> torch.Tensor:
        """``y`` (n, T, ...) without the washout steps."""
        return y[:, self.washout:]


def load_narma(*, order: int = 10, length: int = 1000, n_train: int = 3, n_val: int = 1, n_test: int = 1,
               washout: int = 100, seed: int = 0) -> SeriesTask:
    """A NARMA-``order`` task of independent series of ``length`` steps (float32), the splits drawn from
    one generator seeded ``seed`` (another seed: other series)."""
    washout = check_int("washout", washout, minimum=0)
    if washout >= length:
        raise ValueError(f"washout={washout} must be shorter than length={length}; nothing would be scored.")
    n = [check_int(name, v) for name, v in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test))]
    u, y = narma(sum(n), length, order=order, seed=seed)
    u, y = u.float(), y.float()
    a, b = n[0], n[0] + n[1]
    return SeriesTask(f"narma{order}", u[:a], y[:a], u[a:b], y[a:b], u[b:], y[b:], washout=washout,
                      description=f"NARMA{order} (Atiya & Parlos 2000), u ~ U[0, 0.5], {length} steps per "
                                  f"series, {n_train}/{n_val}/{n_test} series, washout {washout}, seed {seed}")
