"""Mesh layouts: the columns of 2x2 Mach-Zehnder interferometers a mesh is made of, and where each MZI sits.

:class:`Rectangular` is Clements et al., Optica 3, 1460 (2016), doi:10.1364/OPTICA.3.001460;
:class:`Triangular` is Reck, Zeilinger, Bernstein & Bertani, PRL 73, 58 (1994),
doi:10.1103/PhysRevLett.73.58. Both are a sequence of *columns*: column ``c`` has a parity
``p = layout.column_parity[c]`` and acts on disjoint neighbouring mode pairs ``(m, m + 1)`` with
``m = p (mod 2)``. MZIs are numbered column by column, top to bottom (``layout.mzi_column``,
``layout.mzi_top``), the order of the phase vectors. Propagation through a layout is
:mod:`.mesh_engine`'s.
"""

from __future__ import annotations

import torch

from ..._validation import check_int

__all__ = ["MeshLayout", "Rectangular", "Triangular"]


class MeshLayout:
    """Geometry of a mesh: columns, their parity and the MZI positions (see the module docstring).

    Attributes: ``n_ports`` (N), ``n_columns`` (L), ``n_mzis``, ``column_parity`` (tuple of 0/1),
    ``mzi_column`` and ``mzi_top`` (LongTensors of length ``n_mzis``: column and top mode of every
    MZI, in the phase-vector order). Subclasses define :meth:`_positions`.
    """

    name = "mesh"

    def __init__(self, n_ports: int) -> None:
        self.n_ports = check_int("n_ports", n_ports, minimum=2)
        positions = self._positions(self.n_ports)  # list of (column, top mode), column-major
        columns = sorted({c for c, _ in positions})
        if columns != list(range(len(columns))):
            raise RuntimeError("internal: layout columns must be numbered 0..L-1")
        positions = sorted(positions)
        self.n_columns = len(columns)
        self.n_mzis = len(positions)
        parity = [None] * self.n_columns
        for c, m in positions:
            if parity[c] is None:
                parity[c] = m % 2
            elif parity[c] != m % 2:
                raise RuntimeError("internal: a column mixes mode-pair parities")
        self.column_parity = tuple(parity)
        self.mzi_column = torch.tensor([c for c, _ in positions], dtype=torch.long)
        self.mzi_top = torch.tensor([m for _, m in positions], dtype=torch.long)

    def _positions(self, n: int) -> list[tuple[int, int]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.n_ports == other.n_ports

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.n_ports))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_ports={self.n_ports})"


class Rectangular(MeshLayout):
    """Clements' rectangular mesh: N columns (N = 2: one), column c holds the MZIs on pairs
    (m, m+1) with m = c (mod 2), N(N-1)/2 MZIs, optical depth N, balanced path lengths."""

    name = "rectangular (Clements 2016)"

    def _positions(self, n):
        depth = 1 if n == 2 else n
        return [(c, m) for c in range(depth) for m in range(c % 2, n - 1, 2)]


class Triangular(MeshLayout):
    """Reck's triangular mesh: N - 1 diagonals; diagonal d (d = 0..N-2) holds MZIs on pairs
    (m, m+1), m = 0..N-2-d, applied in that order, placed at column 2d + m: 2N - 3 columns,
    N(N-1)/2 MZIs, path depths from 1 to 2N - 3."""

    name = "triangular (Reck 1994)"

    def _positions(self, n):
        return [(2 * d + m, m) for d in range(n - 1) for m in range(n - 1 - d)]
