"""Phases that realise a given unitary on the ideal mesh.

:func:`decompose` follows the nulling algorithms of

* Clements, Humphreys, Metcalf, Kolthammer & Walmsley, "Optimal design for universal multiport
  interferometers", Optica 3, 1460 (2016), doi:10.1364/OPTICA.3.001460 (rectangular mesh): for
  i = 0..N-2, an even i nulls U[N-1-j, i-j] (j = 0..i) by multiplying U from the right by T^-1 on
  columns (i-j, i-j+1), an odd i nulls U[N-1-i+j, j] by multiplying from the left by T on rows
  (N-2-i+j, N-1-i+j). The result is diagonal, D = T_L ... U ... T_R^-1; each left MZI is then moved
  through D (T^-1 D = D' T', solved below for this module's MZI convention), giving
  U = D_final (product of MZIs), and every MZI is placed in the column of the rectangle where it acts.
* Reck, Zeilinger, Bernstein & Bertani, PRL 73, 58 (1994), doi:10.1103/PhysRevLett.73.58
  (triangular mesh): rows N-1, N-2, ... are nulled from the right only, row r with MZIs on columns
  (0,1), (1,2), ..., (r-1, r); no phase screen needs to be moved.

MZI convention (see :mod:`.mesh_engine`): T(theta, phi) = i e^{i theta/2}
[[e^{i phi} sin(theta/2), cos(theta/2)], [e^{i phi} cos(theta/2), -sin(theta/2)]]. The nulling
conditions in that convention (derived here, not copied):

* from the right on columns (k, k+1) of a row with entries (a, b), zeroing a:
  theta = 2 atan2(|b|, |a|), phi = pi + arg(a) - arg(b);
* from the left on rows (k, k+1) of a column with entries (a, b), zeroing b:
  theta = 2 atan2(|a|, |b|), phi = arg(b) - arg(a);
* moving a left MZI through the diagonal: T(theta, phi)^-1 diag(d1, d2) = diag(d1', d2') T(theta, phi')
  with phi' = arg(d1) - arg(d2), d1' = -e^{-i(theta + phi)} d2, d2' = -e^{-i theta} d2.

The computation runs in complex128 (numpy) whatever the input dtype. Phases are returned wrapped into
[0, 2 pi).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .mesh_engine import MeshLayout, Rectangular, Triangular

TWO_PI = 2.0 * math.pi


@dataclass(frozen=True)
class MeshPhases:
    """Phases of a mesh in the layout's MZI order: ``theta`` and ``phi`` ``(n_mzis,)``, the output
    screen ``psi`` ``(N,)``; float64 tensors in [0, 2 pi)."""

    theta: torch.Tensor
    phi: torch.Tensor
    psi: torch.Tensor


def _wrap(x):
    return np.mod(x, TWO_PI)


def _null_right(U, r, k):
    a, b = U[r, k], U[r, k + 1]
    theta = 2.0 * math.atan2(abs(b), abs(a))
    phi = math.pi + np.angle(a) - np.angle(b)
    T = _mzi(theta, phi)
    U[:, k:k + 2] = U[:, k:k + 2] @ T.conj().T
    U[r, k] = 0.0
    return theta, phi


def _mzi(theta, phi):
    s, c = math.sin(theta / 2), math.cos(theta / 2)
    ep = np.exp(1j * phi)
    return 1j * np.exp(1j * theta / 2) * np.array([[ep * s, c], [ep * c, -s]])


def _check_unitary(U: np.ndarray, atol: float) -> None:
    n = U.shape[0]
    err = float(np.abs(U.conj().T @ U - np.eye(n)).max())
    if err > atol:
        raise ValueError(f"U must be unitary to decompose it on a lossless mesh: max |U^H U - I| = {err:.3g} "
                         f"> atol={atol}; orthonormalise it first (e.g. the Q of a QR decomposition) or, for a "
                         f"general matrix, use an SVD layer (svd_settings).")


def decompose(U, *, layout: MeshLayout | None = None, atol: float = 1e-8) -> MeshPhases:
    """Phases (theta, phi, psi) such that the ideal lossless mesh of ``layout`` realises ``U``
    (``MeshEngine(layout).matrix(mzi_transfer(theta, phi), psi) == U`` to float rounding).

    ``U``: a unitary ``(N, N)`` (tensor or array, any complex dtype). ``layout``: ``Rectangular(N)``
    (Clements, default) or ``Triangular(N)`` (Reck)."""
    if isinstance(U, torch.Tensor):
        U = U.detach().cpu().numpy()
    U = np.array(U, dtype=np.complex128)
    if U.ndim != 2 or U.shape[0] != U.shape[1] or U.shape[0] < 2:
        raise ValueError(f"U must be a square matrix of size >= 2, got shape {U.shape}.")
    n = U.shape[0]
    if layout is None:
        layout = Rectangular(n)
    if not isinstance(layout, MeshLayout):
        raise TypeError(f"layout must be Rectangular(n) or Triangular(n), got {type(layout).__name__}.")
    if layout.n_ports != n:
        raise ValueError(f"layout has {layout.n_ports} ports but U is {n} x {n}; pass layout={type(layout).__name__}({n}).")
    _check_unitary(U, atol)
    W = U.copy()
    if isinstance(layout, Triangular):
        ops = []  # (k, theta, phi) in the order the light meets them
        for r in range(n - 1, 0, -1):
            for k in range(r):
                theta, phi = _null_right(W, r, k)
                ops.append((k, theta, phi))
        diag = np.diag(W).copy()
    elif isinstance(layout, Rectangular):
        right, left = [], []
        for i in range(n - 1):
            for j in range(i + 1):
                if i % 2 == 0:
                    k = i - j
                    theta, phi = _null_right(W, n - 1 - j, k)
                    right.append((k, theta, phi))
                else:
                    k = n - 2 - i + j
                    col = j
                    a, b = W[k, col], W[k + 1, col]
                    theta = 2.0 * math.atan2(abs(a), abs(b))
                    phi = np.angle(b) - np.angle(a)
                    T = _mzi(theta, phi)
                    W[k:k + 2, :] = T @ W[k:k + 2, :]
                    W[k + 1, col] = 0.0
                    left.append((k, theta, phi))
        diag = np.diag(W).copy()
        moved = []
        for k, theta, phi in reversed(left):  # the left MZI next to D first
            d1, d2 = diag[k], diag[k + 1]
            phi_new = np.angle(d1) - np.angle(d2)
            diag[k] = -np.exp(-1j * (theta + phi)) * d2
            diag[k + 1] = -np.exp(-1j * theta) * d2
            moved.append((k, theta, phi_new))
        # U = D * L'_1 ... L'_m * R_n ... R_1: the light meets R_1..R_n, then L'_m..L'_1
        ops = right + moved
    else:
        raise TypeError(f"decompose knows Rectangular and Triangular layouts, got {type(layout).__name__}.")
    theta, phi = _place(layout, ops)
    return MeshPhases(theta=torch.from_numpy(_wrap(theta)), phi=torch.from_numpy(_wrap(phi)),
                      psi=torch.from_numpy(_wrap(np.angle(diag))))


def _place(layout: MeshLayout, ops) -> tuple[np.ndarray, np.ndarray]:
    """Put each MZI (in the order the light meets it) into the earliest column of its parity after
    the MZIs already placed on its two modes; check that this fills the layout exactly."""
    n = layout.n_ports
    index = {(int(c), int(m)): i for i, (c, m) in enumerate(zip(layout.mzi_column, layout.mzi_top))}
    parity = layout.column_parity
    free = [0] * n
    theta = np.zeros(layout.n_mzis)
    phi = np.zeros(layout.n_mzis)
    used = set()
    for k, t, p in ops:
        c = max(free[k], free[k + 1])
        while c < layout.n_columns and (parity[c] != k % 2 or (c, k) not in index):
            c += 1
        if (c, k) not in index or (c, k) in used:
            raise RuntimeError(f"internal: the decomposition does not fit {layout} (MZI on modes {k},{k + 1})")
        used.add((c, k))
        theta[index[(c, k)]], phi[index[(c, k)]] = t, p
        free[k] = free[k + 1] = c + 1
    if len(used) != layout.n_mzis:
        raise RuntimeError(f"internal: the decomposition placed {len(used)} of {layout.n_mzis} MZIs")
    return theta, phi


def random_unitary(n: int, *, generator: torch.Generator | None = None,
                   dtype: torch.dtype = torch.complex128) -> torch.Tensor:
    """A Haar-random n x n unitary (QR of a complex Gaussian matrix with the phases of R's diagonal
    divided out; Mezzadri, Notices AMS 54, 592 (2007))."""
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    re = torch.randn(n, n, generator=gen, dtype=torch.float64)
    im = torch.randn(n, n, generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(torch.complex(re, im) / math.sqrt(2.0))
    d = torch.diagonal(r)
    return (q * (d / d.abs()).unsqueeze(0)).to(dtype)
