"""A classification task: train, validation and test tensors plus what they mean.

Every loader returns three disjoint splits. Hyper-parameters, read-out choices and the epoch to report
are chosen on the *validation* split; the *test* split is only ever scored (see ``docs/design.md``,
"Results that must not depend on how they were tuned"). Features are z-scored with the training
split's statistics only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

SPLITS = ("train", "val", "test")


@dataclass
class TaskData:
    """Train/validation/test splits of a classification task. Features are float32 and finite, labels
    int64 in [0, n_classes); no split is empty."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    description: str = ""
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int) or self.n_classes < 2:
            raise ValueError(f"{self.name}: n_classes must be an integer >= 2, got {self.n_classes!r}.")
        features = None
        for split in SPLITS:
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
                raise TypeError(f"{self.name}: x_{split} and y_{split} must be torch tensors, got "
                                f"{type(x).__name__} and {type(y).__name__}.")
            if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
                raise ValueError(f"{self.name}: x_{split} must be (n, features) and y_{split} (n,), got "
                                 f"{tuple(x.shape)} and {tuple(y.shape)}.")
            if x.shape[0] == 0:
                raise ValueError(f"{self.name}: the {split} split is empty; the loader's fractions leave no "
                                 f"samples for it (use more data or a larger {split} fraction).")
            if features is None:
                features = x.shape[1]
            elif x.shape[1] != features:
                raise ValueError(f"{self.name}: x_{split} has {x.shape[1]} features but x_train has {features}.")
            if not torch.is_floating_point(x):
                raise TypeError(f"{self.name}: x_{split} must be floating point, got {x.dtype}.")
            if not bool(torch.isfinite(x).all()):
                bad = int((~torch.isfinite(x)).sum())
                raise ValueError(f"{self.name}: x_{split} contains {bad} NaN or infinite feature values; "
                                 f"impute or drop those samples before building the task.")
            if y.dtype != torch.int64:
                raise TypeError(f"{self.name}: y_{split} must hold int64 class indices, got {y.dtype}.")
            if int(y.min()) < 0 or int(y.max()) >= self.n_classes:
                raise ValueError(f"{self.name}: y_{split} has labels in [{int(y.min())}, {int(y.max())}] but "
                                 f"n_classes={self.n_classes}; labels must lie in [0, {self.n_classes - 1}].")

    @property
    def in_features(self) -> int:
        return int(self.x_train.shape[1])

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of the split called ``name`` (``"train"``, ``"val"`` or ``"test"``)."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}.")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def summary(self) -> str:
        return (f"{self.name}: {len(self.y_train)} train / {len(self.y_val)} validation / "
                f"{len(self.y_test)} test samples, {self.in_features} features, {self.n_classes} classes")


def standardise(x_train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Z-score every split with the training split's mean and standard deviation."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return tuple((x - mean) / std for x in (x_train, *others))


def check_fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}; e.g. {name}=0.2.")
    return float(value)


def validation_indices(y: np.ndarray, val_fraction: float, seed: int,
                       groups: np.ndarray | None = None) -> np.ndarray:
    """A boolean mask of the training rows that go to validation: stratified by class, or, when
    ``groups`` is given (for example speakers), whole groups so that no group spans two splits."""
    val_fraction = check_fraction("val_fraction", val_fraction)
    rng = np.random.default_rng([int(seed), 0x5A1])
    mask = np.zeros(len(y), dtype=bool)
    if groups is not None:
        names = np.array(sorted(set(groups.tolist())))
        n_val = max(1, int(round(val_fraction * len(names))))
        if n_val >= len(names):
            raise ValueError(f"val_fraction={val_fraction} leaves no training group among {len(names)}.")
        chosen = set(rng.permutation(names)[:n_val].tolist())
        return np.array([g in chosen for g in groups.tolist()])
    n_val = max(1, int(round(val_fraction * len(y))))
    if n_val >= len(y):
        raise ValueError(f"val_fraction={val_fraction} leaves no training sample among {len(y)}; pass a "
                         f"smaller val_fraction or use more data.")
    from sklearn.model_selection import train_test_split
    counts = np.unique(y, return_counts=True)[1]
    stratify = y if counts.min() >= 2 and n_val >= len(counts) and len(y) - n_val >= len(counts) else None
    _, val_rows = train_test_split(np.arange(len(y)), test_size=n_val, random_state=int(rng.integers(2**31)),
                                   stratify=stratify)
    mask[val_rows] = True
    return mask


def to_task(name: str, x_train, y_train, x_test, y_test, n_classes: int, description: str,
            class_names=None, *, normalise: bool = True, val_fraction: float = 0.2, seed: int = 0,
            groups=None) -> TaskData:
    """Build a :class:`TaskData` from a train/test split, carving the validation split out of the
    training rows (``val_fraction`` of them, stratified, or of their ``groups``; ``seed`` picks which).
    With ``normalise`` every split is z-scored with the statistics of the remaining training rows."""
    x_train = np.asarray(x_train, dtype=np.float64)
    x_test = np.asarray(x_test, dtype=np.float64)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    is_val = validation_indices(y_train, val_fraction, seed,
                                None if groups is None else np.asarray(groups))
    x_fit, y_fit, x_val, y_val = x_train[~is_val], y_train[~is_val], x_train[is_val], y_train[is_val]
    if normalise:
        x_fit, x_val, x_test = standardise(x_fit, x_val, x_test)

    def features(a):
        return torch.as_tensor(a, dtype=torch.float32)

    def labels(a):
        return torch.as_tensor(np.array(a), dtype=torch.int64)

    return TaskData(name=name, x_train=features(x_fit), y_train=labels(y_fit), x_val=features(x_val),
                    y_val=labels(y_val), x_test=features(x_test), y_test=labels(y_test),
                    n_classes=int(n_classes), description=description, class_names=list(class_names or []))
