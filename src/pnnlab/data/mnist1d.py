"""MNIST-1D (Greydanus & Kobak, "Scaling down deep learning with MNIST-1D", ICML 2024, arXiv:2011.14439),
generated locally with the ``mnist1d`` package's procedural generator; never its download.

Install with ``pip install pnnlab[mnist1d]``.
"""

from __future__ import annotations

import random

import numpy as np

from .._validation import check_int
from .base import TaskData, to_task


def load_mnist1d(*, num_samples: int = 5000, train_fraction: float = 0.8, val_fraction: float = 0.2,
                 seed: int = 42, normalise: bool = True) -> TaskData:
    """Generate MNIST-1D: 40-sample 1-D signals of 10 digit templates with shifts, shear and noise.
    ``seed`` seeds the generator and the validation split carved out of its training part."""
    num_samples = check_int("num_samples", num_samples, minimum=10)
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}; e.g. 0.8.")
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("MNIST-1D needs the mnist1d package: pip install 'pnnlab[mnist1d]'.") from error
    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = num_samples, train_fraction, seed
    # the generator seeds the global NumPy and random states; keep the caller's untouched
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return to_task("mnist1d", data["x"], data["y"], data["x_test"], data["y_test"], 10,
                   f"MNIST-1D generated locally ({num_samples} samples, seed {seed})", normalise=normalise,
                   val_fraction=val_fraction, seed=seed)
