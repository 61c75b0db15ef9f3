"""A classification task: train and test tensors plus what they mean."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class TaskData:
    """Train/test split of a classification task. Features are float32, labels int64 in [0, n_classes)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    description: str = ""
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
                raise ValueError(f"{self.name}: x_{split} must be (n, features) and y_{split} (n,), got "
                                 f"{tuple(x.shape)} and {tuple(y.shape)}.")
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise ValueError(f"{self.name}: train and test have different feature counts.")

    @property
    def in_features(self) -> int:
        return int(self.x_train.shape[1])

    def summary(self) -> str:
        return (f"{self.name}: {len(self.y_train)} train / {len(self.y_test)} test samples, "
                f"{self.in_features} features, {self.n_classes} classes")


def standardise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z-score both splits with the training split's mean and standard deviation."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (x_train - mean) / std, (x_test - mean) / std


def to_task(name: str, x_train, y_train, x_test, y_test, n_classes: int, description: str,
            class_names=None, *, normalise: bool = True) -> TaskData:
    x_train = np.asarray(x_train, dtype=np.float64)
    x_test = np.asarray(x_test, dtype=np.float64)
    if normalise:
        x_train, x_test = standardise(x_train, x_test)
    return TaskData(name=name,
                    x_train=torch.as_tensor(x_train, dtype=torch.float32),
                    y_train=torch.as_tensor(np.array(y_train), dtype=torch.int64),
                    x_test=torch.as_tensor(x_test, dtype=torch.float32),
                    y_test=torch.as_tensor(np.array(y_test), dtype=torch.int64),
                    n_classes=int(n_classes), description=description,
                    class_names=list(class_names or []))
