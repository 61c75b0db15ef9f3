"""MNIST and Fashion-MNIST from IDX files in a user's directory.

Files are the standard ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``
and ``t10k-labels-idx1-ubyte`` (optionally ``.gz``). ``download=True`` fetches them from the public mirrors for
users with a network; tests never do.

MNIST: Y. LeCun, L. Bottou, Y. Bengio & P. Haffner, Proc. IEEE 86, 2278 (1998).
Fashion-MNIST: H. Xiao, K. Rasul & R. Vollgraf, arXiv:1708.07747 (2017).
"""

from __future__ import annotations

import gzip
import struct
import urllib.request
from pathlib import Path

import numpy as np

from .base import TaskData, to_task

FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
         "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
MIRRORS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a NumPy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{str(path)!r} is not an IDX file (bad magic number).")
    dtype = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}.get(data[2])
    if dtype is None:
        raise ValueError(f"{str(path)!r} has an unknown IDX element type 0x{data[2]:02x}.")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    array = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{str(path)!r} is truncated: header says {shape}, found {array.size} values.")
    return array.reshape(shape)


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (directory / name).is_file():
            return directory / name
    return None


def download_idx(name: str, directory: str | Path) -> None:  # pragma: no cover - network
    """Fetch the four IDX files of ``name`` ('mnist' or 'fashion_mnist') into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for stem in FILES.values():
        target = directory / f"{stem}.gz"
        if not target.exists():
            urllib.request.urlretrieve(MIRRORS[name] + f"{stem}.gz", target)


def _load(name: str, directory, *, download: bool, limit_train: int | None, normalise: bool,
          val_fraction: float, seed: int) -> TaskData:
    if directory is None:
        raise ValueError(f"{name}: pass directory= the folder holding the IDX files "
                         f"({', '.join(FILES.values())}), or download=True with a directory to fill.")
    directory = Path(directory).expanduser()
    if download:
        download_idx(name, directory)
    arrays = {}
    for key, stem in FILES.items():
        found = _find(directory, stem)
        if found is None:
            raise FileNotFoundError(f"{name}: {stem}[.gz] not found in {str(directory)!r}; put the IDX files "
                                    f"there or pass download=True (needs a network).")
        arrays[key] = read_idx(found)
    x_train = arrays["x_train"].reshape(len(arrays["x_train"]), -1).astype(np.float64) / 255.0
    x_test = arrays["x_test"].reshape(len(arrays["x_test"]), -1).astype(np.float64) / 255.0
    y_train, y_test = arrays["y_train"], arrays["y_test"]
    if limit_train is not None:
        x_train, y_train = x_train[:limit_train], y_train[:limit_train]
    return to_task(name, x_train, y_train, x_test, y_test, 10,
                   f"{name} from IDX files in {directory} (published test split; validation seed {seed})",
                   normalise=normalise, val_fraction=val_fraction, seed=seed)


def load_mnist(directory: str | Path | None = None, *, download: bool = False, limit_train: int | None = None,
               normalise: bool = True, val_fraction: float = 1 / 6, seed: int = 0) -> TaskData:
    """MNIST (28x28 = 784 features, 10 classes) from IDX files; the published test split is kept and
    ``val_fraction`` of the training images (stratified, chosen by ``seed``) become the validation split."""
    return _load("mnist", directory, download=download, limit_train=limit_train, normalise=normalise,
                 val_fraction=val_fraction, seed=seed)


def load_fashion_mnist(directory: str | Path | None = None, *, download: bool = False,
                       limit_train: int | None = None, normalise: bool = True, val_fraction: float = 1 / 6,
                       seed: int = 0) -> TaskData:
    """Fashion-MNIST (28x28 = 784 features, 10 classes) from IDX files; validation as in :func:`load_mnist`."""
    return _load("fashion_mnist", directory, download=download, limit_train=limit_train, normalise=normalise,
                 val_fraction=val_fraction, seed=seed)
