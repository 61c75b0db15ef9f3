"""Small datasets bundled with scikit-learn (no download): 8x8 digits, iris, wine.

Stratified train/validation/test split drawn with ``seed`` (so each seed is a different split);
features z-scored with the training split's statistics.
"""

from __future__ import annotations

from sklearn import datasets
from sklearn.model_selection import train_test_split

from .base import TaskData, check_fraction, to_task


def _load(name: str, loader, description: str, *, test_fraction: float, val_fraction: float, seed: int,
          normalise: bool) -> TaskData:
    check_fraction("test_fraction", test_fraction)
    bunch = loader()
    x_train, x_test, y_train, y_test = train_test_split(
        bunch.data, bunch.target, test_size=test_fraction, random_state=seed, stratify=bunch.target)
    names = [str(n) for n in getattr(bunch, "target_names", [])]
    return to_task(name, x_train, y_train, x_test, y_test, len(set(bunch.target.tolist())),
                   f"{description} (split seed {seed})", class_names=names, normalise=normalise,
                   val_fraction=val_fraction, seed=seed)


def load_digits(*, test_fraction: float = 0.25, val_fraction: float = 0.2, seed: int = 0,
              normalise: bool = True) -> TaskData:
    """1797 handwritten digits, 8x8 pixels (64 features), 10 classes (UCI optical digits via scikit-learn)."""
    return _load("digits", datasets.load_digits, "scikit-learn 8x8 digits", test_fraction=test_fraction,
                 val_fraction=val_fraction, seed=seed, normalise=normalise)


def load_iris(*, test_fraction: float = 0.25, val_fraction: float = 0.2, seed: int = 0,
              normalise: bool = True) -> TaskData:
    """150 iris flowers, 4 features, 3 classes (Fisher 1936, via scikit-learn)."""
    return _load("iris", datasets.load_iris, "scikit-learn iris", test_fraction=test_fraction, val_fraction=val_fraction,
                 seed=seed, normalise=normalise)


def load_wine(*, test_fraction: float = 0.25, val_fraction: float = 0.2, seed: int = 0,
              normalise: bool = True) -> TaskData:
    """178 wines, 13 chemical features, 3 cultivars (UCI wine, via scikit-learn)."""
    return _load("wine", datasets.load_wine, "scikit-learn wine", test_fraction=test_fraction, val_fraction=val_fraction,
                 seed=seed, normalise=normalise)
