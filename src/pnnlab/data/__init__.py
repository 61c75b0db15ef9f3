"""Dataset loaders and task definitions. Each loader returns a :class:`TaskData`."""

from .base import TaskData, standardise
from .idx import load_fashion_mnist, load_mnist, read_idx
from .mnist1d import load_mnist1d
from .mnist_small import load_mnist_small
from .tabular import load_digits, load_iris, load_wine
from .vowels import load_vowels

__all__ = ["TaskData", "load_digits", "load_fashion_mnist", "load_iris", "load_mnist", "load_mnist1d", "load_mnist_small",
           "load_vowels", "load_wine", "read_idx", "standardise"]
