"""Fast mesh propagation by *diamonds*: groups of MZIs applied as batched dense blocks (BLAS).

The column-by-column engine (:mod:`.mesh_engine`) applies a mesh of L columns as L sequential
elementwise steps. Here the same MZIs are regrouped so that the mesh becomes a short sequence of
*block-diagonal* matrices, each applied by ONE batched matrix product at BLAS speed.

Light-cone coordinates. An MZI in column ``c`` on the mode pair ``(m, m + 1)`` (``m = c mod 2``, the
alternating layouts: Clements' rectangular and Reck's triangular mesh) gets the integer coordinates
``a = (c + m) / 2`` and ``b = (c - m) / 2 + b0`` (``b0 = floor((N - 2) / 2)`` keeps ``b >= 0``). Two
MZIs that share a mode, the second in a later column, have ``a2 >= a1`` and ``b2 >= b1`` (the second
is in the first's forward light cone). Cut the (a, b) plane into squares of side ``h``: the square
``(A, B) = (a // h, b // h)`` is a *diamond* in the (column, mode) picture, ``h^2`` MZIs touching ``w = 2h``
consecutive modes (its block) over ``2h - 1`` columns. Diamonds on one anti-diagonal ``d = A + B``
touch disjoint blocks (they tile the modes, the tiling shifted by ``h`` from one ``d`` to the next),
and a diamond depends only on diamonds of smaller ``d``. So

    C_{L-1} ... C_0 = P_{d_max} ... P_{d_min},   P_d = block-diagonal of the (w x w) diamond matrices of layer d,

exactly (the MZIs are only regrouped, not approximated). Applying P_d to an ``(N, K)`` field is one
batched product ``(N/w, w, w) @ (N/w, w, K)``: ``2 N K`` complex multiply-adds per ``h`` columns, the same
count as the column engine (four per MZI and field) but at BLAS speed instead of elementwise speed.

The diamond matrices are built (:class:`_DiamondBuild`) for ALL diamonds at once, ``2h - 1`` elementwise
steps over a ``(w, w, D)`` tensor (the diamond index ``D`` innermost, so that every step is a long
vectorised loop), with an analytic backward (adjoint sweep; the 2x2 gradients come from the stored
rows); bigger diamonds are merged from four children of half the size by batched products of their
non-zero quarters (:class:`MergePlan`, differentiated by autograd). :class:`_LayerStack` applies the layers with an analytic backward (two batched products per
layer). Fields are kept in a padded row layout: mode ``m`` is row ``m + offset``; the padding rows
are zero and stay zero (no MZI couples them), so that every layer's blocks tile the rows.

Simplification: none in the physics; the grouping is exact up to float rounding (the sums are
evaluated in a different order from the column engine).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # pragma: no cover
    from .mesh_layout import MeshLayout

__all__ = ["DiamondPlan", "MergePlan", "build_blocks", "diamond_matrix_apply"]


class DiamondPlan:
    """Geometry of the diamond grouping of one alternating layout for one half-width ``h``.

    Attributes: ``h``, ``w = 2h``, ``offset`` (row of mode 0), ``n_rows`` (padded rows, a multiple
    of w), ``layers`` (tuple of (aligned, first diamond, number of blocks) per layer, in order of
    application), ``n_diamonds``, ``index`` (LongTensor ``(h*h, n_diamonds)``: the MZI applied at
    every local slot, ``n_mzis`` for an identity slot), ``steps`` (tuple of (first slot, pairs, first
    row) per local step), ``slot_of`` (LongTensor ``(n_mzis,)``: each MZI's flat slot in ``index``),
    ``base_h`` (the diamonds are built elementwise at half-width ``base_h`` and doubled by
    :class:`MergePlan` products up to ``h``; ``base_h = h``: no merge).
    """

    def __init__(self, layout: "MeshLayout", h: int, *, base_h: int | None = None) -> None:
        n = layout.n_ports
        cols = layout.mzi_column.tolist()
        tops = layout.mzi_top.tolist()
        if any((c - m) % 2 for c, m in zip(cols, tops)):
            raise ValueError(f"{layout} is not an alternating layout (every column c must act on pairs (m, m+1) "
                             f"with m = c mod 2); the diamond engine cannot group it.")
        if h < 1:
            raise ValueError(f"h must be >= 1, got {h}.")
        self.h = h
        w = self.w = 2 * h
        b0 = (n - 2) // 2
        a = [(c + m) // 2 for c, m in zip(cols, tops)]
        b = [(c - m) // 2 + b0 for c, m in zip(cols, tops)]
        # mode block of diamond (A, B): rows [start, start + w) with start = (A - B) h + b0 - (h - 1) + offset;
        # offset = h - 1 - b0 (mod w) makes start = (A - B) h (mod w): aligned (A + B even) or shifted by h
        offset = (h - 1 - b0) % w
        while offset < h:
            offset += w
        self.offset = offset
        self.n_rows = -(-(offset + n + h) // w) * w
        nb_aligned, nb_shifted = self.n_rows // w, self.n_rows // w - 1
        d_of = [(ai // h) + (bi // h) for ai, bi in zip(a, b)]
        d_min, d_max = min(d_of), max(d_of)
        layers, first = [], 0
        for d in range(d_min, d_max + 1):
            aligned = d % 2 == 0
            nb = nb_aligned if aligned else nb_shifted
            layers.append((aligned, first, nb))
            first += nb
        self.layers = tuple(layers)
        self.n_diamonds = first
        # local steps: slot t has pairs la in [max(0, t - h + 1), min(t, h - 1)], lb = t - la, top row 2 la - t + h - 1
        steps, slot = [], 0
        for t in range(2 * h - 1):
            lo_a, hi_a = max(0, t - h + 1), min(t, h - 1)
            steps.append((slot, hi_a - lo_a + 1, 2 * lo_a - t + h - 1))
            slot += hi_a - lo_a + 1
        self.steps = tuple(steps)
        cpu = torch.device("cpu")  # geometry is built on the CPU (explicitly: no default device), see to()
        index = torch.full((h * h, self.n_diamonds), layout.n_mzis, dtype=torch.long, device=cpu)
        slot_of = torch.empty(layout.n_mzis, dtype=torch.long, device=cpu)
        for k, (ai, bi, d) in enumerate(zip(a, b, d_of)):
            A, B = ai // h, bi // h
            la, lb = ai - A * h, bi - B * h
            aligned, first_d, _ = self.layers[d - d_min]
            start = (A - B) * h + b0 - (h - 1) + offset
            block = start // w if aligned else (start - h) // w
            t = la + lb
            s0, _, _ = steps[t]
            s = s0 + la - max(0, t - h + 1)
            index[s, first_d + block] = k
            slot_of[k] = s * self.n_diamonds + first_d + block
        self.index = index
        self.slot_of = slot_of
        self.n_mzis = layout.n_mzis
        self.n_ports = n
        self._layout = layout
        self.b0, self.d_min = b0, d_min
        self.base_h = h if base_h is None else base_h
        merges, hh = [], self.base_h
        if h % self.base_h or (h // self.base_h) & (h // self.base_h - 1):
            raise ValueError(f"base_h must be h / 2^k, got h={h}, base_h={self.base_h}.")
        while hh < h:
            merges.append((hh, 2 * hh))
            hh *= 2
        self._merge_spec = merges
        self._merges = None
        self.device = cpu

    #: moved with the engine that holds it (pnnlab.devices.move calls to())
    _device_state = True

    def to(self, device) -> "DiamondPlan":
        """Keep the index tensors (and the merge chain's) on ``device``; returns the plan."""
        device = torch.device(device)
        self.device = device
        self.index, self.slot_of = self.index.to(device), self.slot_of.to(device)
        for m in self._merges or ():
            m.to(device)
        return self

    @property
    def merges(self) -> list:
        """The :class:`MergePlan` chain from half-width ``base_h`` up to ``h`` (built on first use)."""
        if self._merges is None:
            plans = {hh: DiamondPlan(self._layout, hh) for hh, _ in self._merge_spec}
            plans[self.h] = self
            self._merges = [MergePlan(plans[a], plans[b]).to(self.device) for a, b in self._merge_spec]
        return self._merges

    def diamond_of(self, A: int, B: int) -> int:
        """Index of the diamond (A, B) in this plan, or -1 if the plan has no such diamond."""
        h, w = self.h, self.w
        layer = A + B - self.d_min
        if not 0 <= layer < len(self.layers):
            return -1
        aligned, first, nb = self.layers[layer]
        start = (A - B) * h + self.b0 - (h - 1) + self.offset
        block = start // w if aligned else (start - h) // w
        return first + block if 0 <= block < nb else -1

    def square_of(self, diamond: int) -> tuple[int, int]:
        """The (A, B) square of a diamond index (inverse of :meth:`diamond_of`)."""
        for i, (aligned, first, nb) in enumerate(self.layers):
            if first <= diamond < first + nb:
                start = (diamond - first) * self.w + (0 if aligned else self.h)
                diff = (start - self.b0 + self.h - 1 - self.offset) // self.h
                d = i + self.d_min
                return (d + diff) // 2, (d - diff) // 2
        raise IndexError(diamond)


class MergePlan:
    """Diamonds of half-width 2h from four children of half-width h (``child``, ``parent`` plans):
    ``P = E11 (E01 + E10) E00`` with child (0,0) and (1,1) on the middle half of the parent's 4h rows,
    (0,1) on the top half and (1,0) on the bottom half (child (2A+i, 2B+j) of parent (A, B) starts
    h (i - j + 1) rows below the parent). ``idx[i][j]``: child index per parent (``child.n_diamonds``
    = identity)."""

    def __init__(self, child: DiamondPlan, parent: DiamondPlan) -> None:
        if parent.h != 2 * child.h:
            raise ValueError("internal: a merge doubles the half-width")
        self.child, self.parent, self.h = child, parent, child.h
        idx = torch.full((2, 2, parent.n_diamonds), child.n_diamonds, dtype=torch.long, device=torch.device("cpu"))
        for p in range(parent.n_diamonds):
            A, B = parent.square_of(p)
            for i in (0, 1):
                for j in (0, 1):
                    c = child.diamond_of(2 * A + i, 2 * B + j)
                    if c >= 0:
                        idx[i, j, p] = c
        self.idx = idx

    def to(self, device) -> "MergePlan":
        """Keep the index tensors (this merge's and its child plan's) on ``device``; returns the merge."""
        self.idx = self.idx.to(device)
        if self.child.device != torch.device(device):
            self.child.to(device)
        return self

    def merge(self, C: torch.Tensor) -> torch.Tensor:
        """Parent matrices ``(D_parent, 4h, 4h)`` from child matrices ``C`` (``(D_child, 2h, 2h)``), by
        three batched products of the non-zero quarters (autograd differentiates them)."""
        s = self.h
        ext = torch.cat([C, torch.eye(2 * s, dtype=C.dtype, device=C.device).unsqueeze(0)], 0)
        idx = self.idx if self.idx.device == C.device else self.idx.to(C.device)
        A, X, Y, Z = (ext[idx[i, j]] for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))
        M = C.new_zeros(A.shape[0], 4 * s, 4 * s)
        M[:, :2 * s, :s] = X[:, :, :s]
        M[:, :2 * s, s:3 * s] = X[:, :, s:] @ A[:, :s]
        M[:, 2 * s:, s:3 * s] = Y[:, :, :s] @ A[:, s:]
        M[:, 2 * s:, 3 * s:] = Y[:, :, s:]
        return torch.cat([M[:, :s], Z @ M[:, s:3 * s], M[:, 3 * s:]], 1)


class _DiamondBuild(torch.autograd.Function):
    """All diamond matrices at once: ``T`` (``(n_mzis, 2, 2)``) -> ``(n_diamonds, w, w)``."""

    @staticmethod
    def forward(ctx, T, plan):
        h, w, D = plan.h, plan.w, plan.n_diamonds
        eye = torch.eye(2, dtype=T.dtype, device=T.device).unsqueeze(0)
        index = plan.index if plan.index.device == T.device else plan.index.to(T.device)
        coef = torch.cat([T, eye], 0)[index]                   # (h*h, D, 2, 2)
        coef = coef.permute(0, 2, 3, 1).unsqueeze(3).contiguous()  # (h*h, 2, 2, 1, D)
        M = T.new_zeros(w, w, D)
        M.view(w * w, D)[:: w + 1] = 1
        saved = T.new_empty(h * h, 2, w, D)
        for s0, npairs, r0 in plan.steps:
            rows = M[r0:r0 + 2 * npairs].view(npairs, 2, w, D)
            f = saved[s0:s0 + npairs]
            f.copy_(rows)
            c = coef[s0:s0 + npairs]                              # (npairs, 2 out, 2 in, 1, D)
            torch.mul(c[:, :, 0], f[:, 0:1], out=rows)            # both output rows at once
            rows.addcmul_(c[:, :, 1], f[:, 1:2])
        ctx.save_for_backward(coef, saved)
        ctx.plan = plan
        return M.permute(2, 0, 1).contiguous()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gM):
        coef, saved = ctx.saved_tensors
        plan = ctx.plan
        h, w, D = plan.h, plan.w, plan.n_diamonds
        # adjoint swept conjugated (Gc = conj(G)): Gc_in[j] = sum_i C[i, j] Gc_out[i], conj(gC[i, j]) = sum Gc_out[i] f_in[j]
        G = gM.new_empty(w, w, D)
        G.copy_(gM.permute(1, 2, 0).conj())
        gcoef = G.new_empty(h * h, 2, 2, D)
        tmp = G.new_empty(h * h, 2, w, D)
        cT = coef.squeeze(3).transpose(1, 2)                     # (h*h, 2 in, 2 out, D): cT[:, j, i] = C[i, j]
        for s0, npairs, r0 in reversed(plan.steps):
            rows = G[r0:r0 + 2 * npairs].view(npairs, 2, w, D)
            f = saved[s0:s0 + npairs]
            torch.sum(rows.unsqueeze(2) * f.unsqueeze(1), dim=3, out=gcoef[s0:s0 + npairs])
            g = tmp[s0:s0 + npairs]
            g.copy_(rows)
            c = cT[s0:s0 + npairs]
            torch.mul(c[:, :, 0].unsqueeze(2), g[:, 0:1], out=rows)
            rows.addcmul_(c[:, :, 1].unsqueeze(2), g[:, 1:2])
        slot_of = plan.slot_of if plan.slot_of.device == gcoef.device else plan.slot_of.to(gcoef.device)
        gT = torch.conj_physical(gcoef.permute(0, 3, 1, 2).reshape(h * h * D, 2, 2)[slot_of])
        return gT, None


class _LayerStack(torch.autograd.Function):
    """Apply the diamond layers (``blocks``: ``(n_diamonds, w, w)``) to padded fields ``X``
    (``(n_rows, K)``, zero padding rows); ``transpose``: apply the transposed mesh (layers reversed,
    blocks transposed). The padding rows ``[0, h)`` and ``[n_rows - h, n_rows)`` are outside every
    shifted layer: they are zeroed once and stay zero (an aligned layer maps them to exact zeros)."""

    @staticmethod
    def forward(ctx, blocks, X, plan, transpose):
        h = plan.h
        R, K = X.shape
        layers = plan.layers[::-1] if transpose else plan.layers
        n_layers = len(layers)
        S = X.new_empty(n_layers + 1, R, K)
        S[1:, :h] = 0
        S[1:, R - h:] = 0
        S[0] = X
        views = _split(S, plan, K)
        bl = (blocks.mT if transpose else blocks).split([nb for _, _, nb in plan.layers])
        if transpose:
            bl = bl[::-1]
        for i, (aligned, _, _) in enumerate(layers):
            torch.bmm(bl[i], views[aligned][i], out=views[aligned][i + 1])
        ctx.save_for_backward(blocks, S)
        ctx.plan, ctx.transpose = plan, transpose
        return S[-1].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gY):
        # the adjoint field is swept CONJUGATED (Gc = conj(G)): every product then takes plain or
        # transposed operands, which BLAS reads in place (a conjugated operand would be copied first)
        #   forward B:    Gc_in = B^T Gc_out,  conj(gB) = Gc_out f_in^T
        #   transpose B^T: Gc_in = B Gc_out,   conj(gB) = f_in Gc_out^T
        blocks, S = ctx.saved_tensors
        plan, transpose = ctx.plan, ctx.transpose
        h = plan.h
        R, K = gY.shape
        layers = plan.layers[::-1] if transpose else plan.layers
        n_layers = len(layers)
        want_b, want_x = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        sizes = [nb for _, _, nb in plan.layers]
        G = gY.new_empty(2, R, K)
        G[:, :h] = 0
        G[:, R - h:] = 0
        G[n_layers % 2].copy_(gY.conj())
        g_views = _split(G, plan, K)
        f_views = _split(S, plan, K)
        gBc = torch.empty_like(blocks) if want_b else None
        gb = gBc.split(sizes) if want_b else None
        adj = (blocks if transpose else blocks.mT).split(sizes)
        if transpose:
            gb = gb[::-1] if want_b else None
            adj = adj[::-1]
        for i in range(n_layers - 1, -1, -1):
            aligned = layers[i][0]
            g_out = g_views[aligned][(i + 1) % 2]
            if want_b:
                f_in = f_views[aligned][i]
                if transpose:
                    torch.bmm(f_in, g_out.mT, out=gb[i])
                else:
                    torch.bmm(g_out, f_in.mT, out=gb[i])
            if i == 0 and not want_x:
                break
            torch.bmm(adj[i], g_out, out=g_views[aligned][i % 2])
        return (torch.conj_physical(gBc) if want_b else None), (torch.conj_physical(G[0]) if want_x else None), None, None


def _split(S: torch.Tensor, plan: DiamondPlan, K: int):
    """Per step, the rows of ``S`` (``(steps, n_rows, K)``) as blocks of an aligned layer
    (``(n_rows / w, w, K)``) and of a shifted layer (rows h.., ``(n_rows / w - 1, w, K)``)."""
    w, h, R = plan.w, plan.h, S.shape[1]
    shifted = S[:, h:R - h].unflatten(1, ((R - 2 * h) // w, w)).unbind(0)
    aligned = S.view(S.shape[0], R // w, w, K).unbind(0)
    return {False: shifted, True: aligned}


def build_blocks(plan: DiamondPlan, T: torch.Tensor) -> torch.Tensor:
    """The diamond matrices of ``plan`` (``(n_diamonds, w, w)``): elementwise for half-width
    ``plan.base_h``, then doubled by :class:`MergePlan` products up to ``plan.h``."""
    if not plan.merges:
        return _DiamondBuild.apply(T, plan)
    blocks = _DiamondBuild.apply(T, plan.merges[0].child)
    for m in plan.merges:
        blocks = m.merge(blocks)
    return blocks


def diamond_matrix_apply(plan: DiamondPlan, T: torch.Tensor, X: torch.Tensor, *, transpose: bool = False
                         ) -> torch.Tensor:
    """``C_{L-1} ... C_0 X`` (or its transpose applied, ``transpose=True``) for fields ``X`` of shape
    ``(N, K)`` (column vectors), differentiable in ``T`` and ``X``."""
    n, k = X.shape
    blocks = build_blocks(plan, T)
    Xp = X.new_zeros(plan.n_rows, k)
    Xp[plan.offset:plan.offset + n] = X
    Y = _LayerStack.apply(blocks, Xp, plan, transpose)
    return Y[plan.offset:plan.offset + n]
