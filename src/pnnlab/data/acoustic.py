"""Measured input-output pairs of a real acoustic cavity (the nonlinear physical layer of physical local
learning: Momeni, Rahmani, Malléjac, del Hougne, Fleury, "Backpropagation-free training of deep physical
neural networks", Science 382, 1297 (2023); data published with the paper's code, MIT licence,
copyright 2023 Ali Momeni).

Two CSV files, ``x_data.csv`` and ``y_data.csv``, 10001 rows of 20 comma-separated values, no header;
row i of ``y_data`` is the measured response to row i of ``x_data`` (the first row is the response to
zero input). Inputs lie in [0, 1), responses in [0, 1.93]. The paper fitted a small MLP to rows
0-8999, validated on 9000-9299 and tested on 9300-9999 (:data:`PAPER_SPLIT`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["AcousticPairs", "PAPER_SPLIT", "load_acoustic_pairs"]

PAPER_SPLIT = {"train": (0, 9000), "val": (9000, 9300), "test": (9300, 10001)}
"""Row ranges [start, stop) of the split used by Momeni et al. (2023)."""


@dataclass(frozen=True)
class AcousticPairs:
    """``x`` (N, 20) inputs and ``y`` (N, 20) measured responses, float32; ``path`` the folder read."""

    x: torch.Tensor
    y: torch.Tensor
    path: Path

    def rows(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows [start, stop) as (x, y)."""
        return self.x[start:stop], self.y[start:stop]

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``"train"`` (rows 0-8999), ``"val"`` (9000-9299) or ``"test"`` (9300-10000), as in the paper."""
        if name not in PAPER_SPLIT:
            raise ValueError(f"split must be one of {sorted(PAPER_SPLIT)}, got {name!r}.")
        return self.rows(*PAPER_SPLIT[name])


def default_path() -> Path | None:
    """``shared/data/phyll_acoustic`` beside the checkout (or above the working directory), if present."""
    here = Path(__file__).resolve()
    for parent in [Path.cwd(), *here.parents]:
        for candidate in (parent / "shared" / "data" / "phyll_acoustic",
                          parent.parent / "shared" / "data" / "phyll_acoustic"):
            if (candidate / "x_data.csv").is_file() and (candidate / "y_data.csv").is_file():
                return candidate
    return None


def _read(path: Path) -> torch.Tensor:
    rows = []
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append([float(v) for v in line.split(",")])
            except ValueError:
                raise ValueError(f"{str(path)!r} line {number} is not comma-separated numbers: {line[:60]!r}.") from None
    if not rows or len({len(r) for r in rows}) != 1:
        raise ValueError(f"{str(path)!r} must hold rows of equal length, got lengths {sorted({len(r) for r in rows})}.")
    return torch.tensor(rows, dtype=torch.float32)


def load_acoustic_pairs(path: str | Path | None = None) -> AcousticPairs:
    """Read the measured pairs from the folder ``path`` (holding ``x_data.csv`` and ``y_data.csv``);
    defaults to ``../shared/data/phyll_acoustic`` found beside the checkout."""
    if path is None:
        path = default_path()
        if path is None:
            raise FileNotFoundError("no acoustic data found beside the checkout (shared/data/phyll_acoustic); pass "
                                    "path= to a folder with x_data.csv and y_data.csv (published with the code of "
                                    "Momeni et al., Science 382, 1297 (2023)).")
    path = Path(path)
    missing = [n for n in ("x_data.csv", "y_data.csv") if not (path / n).is_file()]
    if missing:
        raise FileNotFoundError(f"acoustic data folder {str(path)!r} lacks {missing}; pass path= to the folder holding "
                                f"x_data.csv and y_data.csv (Momeni et al., Science 382, 1297 (2023)).")
    x, y = _read(path / "x_data.csv"), _read(path / "y_data.csv")
    if x.shape != y.shape:
        raise ValueError(f"x_data.csv is {tuple(x.shape)} but y_data.csv is {tuple(y.shape)} in {str(path)!r}; "
                         f"the files must pair row by row.")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError(f"non-finite values in the acoustic data of {str(path)!r}.")
    return AcousticPairs(x=x, y=y, path=path)
