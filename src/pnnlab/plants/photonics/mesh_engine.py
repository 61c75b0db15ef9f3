"""A fast, differentiable engine for meshes of 2x2 Mach-Zehnder interferometers (MZIs).

Layouts (:mod:`.mesh_layout`; :class:`Rectangular`, Clements et al., Optica 3, 1460 (2016), doi:10.1364/OPTICA.3.001460;
:class:`Triangular`, Reck, Zeilinger, Bernstein & Bertani, PRL 73, 58 (1994),
doi:10.1103/PhysRevLett.73.58) are both a sequence of *columns*. Column ``c`` has a parity
``p = layout.column_parity[c]`` and acts on disjoint neighbouring mode pairs ``(m, m + 1)`` with
``m = p (mod 2)``; a pair of that parity without an MZI in that column is a straight waveguide
(identity). Modes are numbered 0..N-1 from the top. After the last column an output phase screen
``diag(exp(i psi))`` follows, so the whole mesh is

    U = diag(exp(i psi)) C_{L-1} ... C_1 C_0,      y = U x   (x, y column vectors of mode fields).

MZIs are numbered column by column, top to bottom (``layout.mzi_column``, ``layout.mzi_top``): the
phase vectors ``theta`` and ``phi`` (one entry per MZI) follow that order.

MZI convention (the physical factorisation, Pai et al. / Bandyopadhyay et al. style): external
phase ``phi`` on the top arm at the input, a directional coupler, internal phase ``theta`` on the top
arm, a second coupler,

    T(theta, phi) = B(a2) D(theta) B(a1) D(phi),   D(t) = diag(exp(i t), 1),
    B(a) = [[cos(pi/4 + a), i sin(pi/4 + a)], [i sin(pi/4 + a), cos(pi/4 + a)]],

with coupler angle errors ``a1, a2`` (0 for a 50:50 coupler; power splitting cos^2(pi/4 + a) ~
1/2 - a). For ideal couplers

    T = i exp(i theta/2) [[exp(i phi) sin(theta/2), cos(theta/2)], [exp(i phi) cos(theta/2), -sin(theta/2)]],

so ``theta = 0`` is the cross state, ``theta = pi`` the bar state; a uniform insertion loss multiplies
T by an amplitude factor ``sqrt(10^(-dB/10))``.

Speed. Without monitoring (training, ``matrix``), on the CPU in complex64, the compiled kernel of
:mod:`.mesh_kernel` applies the whole column product in one call (and computes ``mzi_transfer``'s
matrices); where it is not available (no C compiler, complex128, another device, ``PNNLAB_MESH_KERNEL=off``,
:func:`.mesh_kernel.disabled`) the MZIs are regrouped into *diamonds*
(:mod:`.mesh_diamond`): the mesh is exactly a product of about N/h block-diagonal layers of (2h x 2h)
blocks, each applied by one batched matrix product (BLAS), with analytic backwards; for a batch of at
least 1.5 N the engine builds U that way from the identity and applies it as one matmul, otherwise it
propagates the batch through the layers. The diamond size is chosen per N (:meth:`MeshEngine._half_width`).
``monitor=True`` (the in-situ passes, which read the field entering every column, :class:`MeshFields`)
uses the column path: every column is ONE batched 2x2 matrix product over all its mode pairs (the state
is kept in a padded ``(N + 2, K)`` buffer: one dummy row above and below, so that even and odd columns
are both contiguous reshapes into ``(pairs, 2, K)``); a custom :class:`torch.autograd.Function` runs the
column products without building an autograd graph and has an analytic backward: the adjoint field is
swept backwards once (one product per column) and the gradients of all 2x2 matrices of a parity come
from ONE batched product of stored forward and adjoint fields. The layouts that do not alternate
parities column by column (none built in) also take the column path.

Reciprocity: light sent backwards from the outputs sees the transpose U^T (``reverse=True``): the
screen first, then the columns in reverse order, each with its 2x2 matrix transposed.

Tracing and export. The custom Functions above cannot be recorded by ``torch.jit.trace`` or
``torch.export``. Inside :func:`plain_ops` (and automatically while a tracer, ``torch.export`` or
``torch.compile`` runs) the engine takes a reference path of ordinary differentiable operations: the
MZI matrices by plain autograd, U built column by column from the identity (one batched 2x2 product per
column) and applied as one matmul, with no branch on the batch size. It equals the fast path to float
rounding (tests/test_mesh_engine_fast.py) and is what :mod:`pnnlab.export.edge` records.

Devices. The engine computes on the device of the MZI matrices and fields it is given; its index
tensors and diamond plans move with :meth:`MeshEngine.to` (called by the plant's ``to``), the layout's
integer geometry stays on the CPU.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from dataclasses import dataclass

import torch

from . import mesh_kernel
from .mesh_diamond import DiamondPlan, diamond_matrix_apply
from .mesh_layout import MeshLayout, Rectangular, Triangular  # noqa: F401  (re-exported: the engine's API)

__all__ = ["MeshLayout", "Rectangular", "Triangular", "MeshFields", "MeshEngine", "mzi_transfer", "first_half",
           "plain_ops", "plain_ops_active"]

_plain_depth = 0  # how many plain_ops() blocks are open (process-wide, like torch's own mode flags)


@contextlib.contextmanager
def plain_ops():
    """Within this block the mesh engine computes with ordinary differentiable torch operations only: no
    custom autograd Function, no reused in-place workspace and no branch on the batch size. U is built
    column by column (one batched 2x2 product per column, autograd differentiates it) and applied as
    one matmul. It is the reference path for tracing and export (``torch.jit.trace`` records it,
    ``torch.export`` exports it with a dynamic batch: :mod:`pnnlab.export.edge`), and is selected
    automatically while tracing or exporting; outside those it is slower than the fast path and equal to
    it to float rounding (tests/test_mesh_engine_fast.py). Monitoring (``monitor=True``, the in-situ
    passes, which run without gradients) keeps the column engine."""
    global _plain_depth
    _plain_depth += 1
    try:
        yield
    finally:
        _plain_depth -= 1


def plain_ops_active() -> bool:
    """True inside :func:`plain_ops` and while ``torch.jit.trace``, ``torch.export`` or ``torch.compile``
    trace the engine."""
    if _plain_depth > 0 or torch.jit.is_tracing():
        return True
    compiler = getattr(torch, "compiler", None)
    if compiler is None:  # pragma: no cover - torch < 2.1
        return False
    exporting = getattr(compiler, "is_exporting", None)
    return bool(compiler.is_compiling() or (exporting is not None and exporting()))


def _on(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device`` (no copy when it is there already)."""
    return t if t.device == device else t.to(device)


def _coupler_pair(coupler_errors, real, device):
    """The theta-dependent and the constant part of B(a2) D(theta) B(a1) without the phases:
    T = amplitude (e^{i theta} K1 + K0) diag(e^{i phi}, 1), K1, K0 of shape (n, 2, 2) or (2, 2)."""
    if coupler_errors is None:
        c1 = s1 = c2 = s2 = torch.tensor(math.sqrt(0.5), dtype=real, device=device)
    else:
        a = coupler_errors.to(real) + math.pi / 4
        c1, s1 = torch.cos(a[..., 0]), torch.sin(a[..., 0])
        c2, s2 = torch.cos(a[..., 1]), torch.sin(a[..., 1])
    zero = torch.zeros_like(c1)
    cplx = lambda re, im: torch.complex(re, im)  # noqa: E731
    k1 = torch.stack([torch.stack([cplx(c1 * c2, zero), cplx(zero, s1 * c2)], -1),
                      torch.stack([cplx(zero, c1 * s2), cplx(-s1 * s2, zero)], -1)], -2)
    k0 = torch.stack([torch.stack([cplx(-s1 * s2, zero), cplx(zero, c1 * s2)], -1),
                      torch.stack([cplx(zero, s1 * c2), cplx(c1 * c2, zero)], -1)], -2)
    return k1, k0


class _MZITransfer(torch.autograd.Function):
    """T = amp (e^{i theta} K1 + K0) diag(e^{i phi}, 1) with the analytic gradients in theta and phi:
    dT/dtheta = i amp e^{i theta} K1 diag(e^{i phi}, 1), dT/dphi = i T[:, :, 0] (first column)."""

    @staticmethod
    def forward(ctx, theta, phi, k1, k0, amp):
        e_th = torch.polar(torch.ones_like(theta), theta)
        e_ph = torch.polar(torch.ones_like(phi), phi)
        P = e_th[:, None, None] * k1                     # theta-dependent part (before the phi column scale)
        T = P + k0
        T[:, :, 0] *= e_ph[:, None]
        P[:, :, 0] *= e_ph[:, None]
        if amp is not None:
            T *= amp
            P *= amp
        # derivatives as real views: g_x = Re sum conj(g) dT/dx = sum (g_re dT_re + g_im dT_im)
        ctx.save_for_backward(torch.view_as_real(P * 1j), torch.view_as_real(T[:, :, 0] * 1j))
        return T

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        d_theta, d_phi = ctx.saved_tensors
        g = torch.view_as_real(g.resolve_conj().contiguous())  # (n, 2, 2, 2)
        n = g.shape[0]
        g_theta = (g.reshape(n, 8) * d_theta.reshape(n, 8)).sum(1) if ctx.needs_input_grad[0] else None
        g_phi = (g[:, :, 0].reshape(n, 4) * d_phi.reshape(n, 4)).sum(1) if ctx.needs_input_grad[1] else None
        return g_theta, g_phi, None, None, None


def mzi_transfer(theta: torch.Tensor, phi: torch.Tensor, *, coupler_errors: torch.Tensor | None = None,
                 amplitude: torch.Tensor | float | None = None, dtype: torch.dtype = torch.complex64
                 ) -> torch.Tensor:
    """The 2x2 transfer matrices ``T = amplitude * B(a2) D(theta) B(a1) D(phi)`` of many MZIs,
    shape ``(n, 2, 2)`` (see the module docstring). ``coupler_errors``: ``(n, 2)`` coupler angle
    errors (a1, a2) in radians or None; ``amplitude``: field transmission per MZI (``(n,)`` or a
    float) or None for lossless. Differentiable in every argument (theta and phi by an analytic
    backward; coupler errors or amplitudes that require a gradient take the plain autograd path)."""
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    theta = theta.to(real)
    phi = phi.to(real)
    amp_t = None
    if amplitude is not None:
        amp_t = amplitude.to(real) if isinstance(amplitude, torch.Tensor) else \
            torch.tensor(float(amplitude), dtype=real, device=theta.device)
    slow = (coupler_errors is not None and coupler_errors.requires_grad) or (amp_t is not None and amp_t.requires_grad) \
        or theta.ndim != 1 or phi.shape != theta.shape or plain_ops_active()
    if slow:
        return _mzi_transfer_autograd(theta, phi, coupler_errors, amp_t, real).to(dtype)
    k1, k0 = _coupler_pair(coupler_errors, real, theta.device)
    if dtype == torch.complex64 and mesh_kernel.mzi_available(theta) and phi.device.type == "cpu" \
            and (amp_t is None or amp_t.ndim == 0 or amp_t.numel() == theta.shape[0]):
        return mesh_kernel.mzi_matrices(theta, phi, k1, k0, amp_t)
    if coupler_errors is None:
        k1, k0 = k1.expand(theta.shape[0], 2, 2), k0.expand(theta.shape[0], 2, 2)
    amp = None if amp_t is None else (amp_t.reshape(-1, 1, 1) if amp_t.ndim else amp_t)
    return _MZITransfer.apply(theta, phi, k1, k0, amp).to(dtype)


def _mzi_transfer_autograd(theta, phi, coupler_errors, amp, real):
    """The same matrices by plain autograd (any argument may require a gradient)."""
    e_theta = torch.polar(torch.ones_like(theta), theta)
    e_phi = torch.polar(torch.ones_like(phi), phi)
    if coupler_errors is None:
        # ideal 50:50 couplers: (1/2) [[e^{i phi}(e^{i theta}-1), i(e^{i theta}+1)], [i e^{i phi}(e^{i theta}+1), 1-e^{i theta}]]
        t11 = 0.5 * e_phi * (e_theta - 1)
        t12 = 0.5j * (e_theta + 1)
        t21 = 0.5j * e_phi * (e_theta + 1)
        t22 = 0.5 * (1 - e_theta)
    else:
        a = coupler_errors.to(real) + math.pi / 4
        c1, s1 = torch.cos(a[..., 0]), torch.sin(a[..., 0])
        c2, s2 = torch.cos(a[..., 1]), torch.sin(a[..., 1])
        t11 = e_phi * (c1 * c2 * e_theta - s1 * s2)
        t12 = 1j * (s1 * c2 * e_theta + c1 * s2)
        t21 = 1j * e_phi * (c1 * s2 * e_theta + s1 * c2)
        t22 = c1 * c2 - s1 * s2 * e_theta
    t = torch.stack([torch.stack([t11, t12], -1), torch.stack([t21, t22], -1)], -2)
    if amp is not None:
        t = t * amp.reshape(-1, 1, 1) if amp.ndim else t * amp
    return t


@dataclass
class MeshFields:
    """Fields monitored inside a mesh for a batch (``monitor=True``).

    ``inputs[c]`` (shape ``(L + 1, batch, N)``) is the field entering column ``c`` (in the forward
    numbering also for a reverse pass, where light travels from boundary L to boundary 0);
    ``inputs[L]`` is the field leaving the last column, before the output phase screen (forward) or
    after the screen (reverse pass: the field injected at the outputs times the screen). The field
    at an MZI's external phase shifter ``phi`` (top arm, at its input) is ``inputs[c][:, m]``; the
    field at its internal shifter ``theta`` follows from :meth:`MeshEngine.internal_fields`.
    ``output``: the field leaving the mesh, ``(batch, N)``. Detached (measured) values.
    """

    inputs: torch.Tensor
    output: torch.Tensor
    reverse: bool = False


def _entries(coef):
    """The four entries of padded 2x2 matrices (L_p, B, n_p, 2, 2), each as a tuple of L_p (B, n_p, 1) views."""
    return tuple(coef[..., i, j, None].contiguous().unbind(0) for i in (0, 1) for j in (0, 1))


def _rows(S, n_slots):
    """Per parity p, the top and bottom rows of every slot at every step, as lists of (n_p, K) views
    (one C++ unbind each, so the column loop creates no views in Python)."""
    out = []
    for p in (0, 1):
        start, ns = 1 - p, n_slots[p]
        top = S[:, :, start:start + 2 * ns:2].unbind(0)
        bot = S[:, :, start + 1:start + 2 * ns:2].unbind(0)
        out.append((top, bot))
    return out


def _apply(e, i, top, bot, dst_top, dst_bot):
    """(dst_top, dst_bot) = C (top, bot) for column ``i`` of the entries ``e``: four multiply-adds."""
    torch.mul(e[0][i], top, out=dst_top)
    dst_top.addcmul_(e[1][i], bot)
    torch.mul(e[2][i], top, out=dst_bot)
    dst_bot.addcmul_(e[3][i], bot)


class _Lease:
    """Marks a cached field buffer as held by an autograd graph until its backward has run (or the
    graph is freed, which drops the last strong reference to the lease)."""

    __slots__ = ("free", "__weakref__")

    def __init__(self) -> None:
        self.free = False


def _workspace(cache: dict, key, shape, like: torch.Tensor):
    """A field buffer of ``shape`` reused across calls (fresh pages cost more than the columns on CPU):
    the cached one if no live graph holds it, else a new one (which then becomes the cached one). A
    graph whose backward runs twice (retain_graph=True) after the buffer was reused raises PyTorch's
    in-place modification error rather than returning a wrong gradient."""
    entry = cache.get(key)
    if entry is not None:
        buf, lease_ref = entry
        lease = lease_ref()
        if lease is None or lease.free:
            lease = _Lease()
            cache[key] = (buf, weakref.ref(lease))
            return buf, lease
    buf = like.new_empty(shape)
    lease = _Lease()
    cache[key] = (buf, weakref.ref(lease))
    return buf, lease


class _ColumnStack(torch.autograd.Function):
    """Apply the columns of B meshes at once to ``X`` (``(B, N, K)`` complex): ``coef[p]`` are the
    padded 2x2 matrices of all columns of parity p, ``(L_p, B, n_p, 2, 2)``; ``schedule`` lists
    (parity, index within the parity group) in the order the columns are applied. Returns the output
    ``(B, N, K)`` and the padded fields entering every step ``(L + 1, B, N + 2, K)`` (not differentiable).

    Padded rows: row 0 and row N + 1 are dummies (always zero); mode m is row m + 1; a slot j of
    parity 0 is rows (2j + 1, 2j + 2) = modes (2j, 2j + 1), of parity 1 rows (2j, 2j + 1) = modes
    (2j - 1, 2j); slots touching a dummy row hold the identity."""

    @staticmethod
    def forward(ctx, coef0, coef1, X, schedule, n_slots, cache):
        b, n, k = X.shape
        steps = len(schedule)
        S, lease = _workspace(cache, ("S", schedule, b, k, X.dtype, X.device), (steps + 1, b, n + 2, k), X)
        ctx.lease = lease
        ctx.cache = cache
        ctx.set_materialize_grads(False)  # no zero gradient for the (non-differentiable) fields output
        S[:, :, 0] = 0
        S[:, :, n + 1] = 0
        S[0, :, 1:n + 1] = X
        entries = (_entries(coef0), _entries(coef1))
        rows = _rows(S, n_slots)
        for step, (p, i) in enumerate(schedule):
            top, bot = rows[p]
            _apply(entries[p], i, top[step], bot[step], top[step + 1], bot[step + 1])
        ctx.save_for_backward(coef0, coef1, S)
        ctx.schedule, ctx.n_slots = schedule, n_slots
        ctx.mark_non_differentiable(S)
        return S[steps, :, 1:n + 1].clone(), S

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gY, _gS):
        coef0, coef1, S = ctx.saved_tensors
        schedule, n_slots = ctx.schedule, ctx.n_slots
        steps = len(schedule)
        if gY is None:  # only the monitored fields were used: no gradient flows
            ctx.lease.free = True
            return None, None, None, None, None, None
        b, n, k = gY.shape
        # the adjoint field, swept backwards through two ping-pong buffers; the gradient of every
        # column's 2x2 matrices, sum_K g_out conj(f_in)^T, is taken while that column's fields are hot
        G, _ = _workspace(ctx.cache, ("G", b, k, gY.dtype, gY.device), (2, b, n + 2, k), gY)  # free again on return
        G[:, :, 0] = 0
        G[:, :, n + 1] = 0
        G[steps % 2, :, 1:n + 1] = gY
        adj = (_entries(coef0.mH.resolve_conj()), _entries(coef1.mH.resolve_conj()))
        want = (ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        grads = [torch.empty_like(coef0) if want[0] else None, torch.empty_like(coef1) if want[1] else None]
        slots = []
        for p in (0, 1):
            start, ns = 1 - p, n_slots[p]
            slots.append((S[:, :, start:start + 2 * ns].unflatten(2, (ns, 2)).unbind(0),
                          G[:, :, start:start + 2 * ns].unflatten(2, (ns, 2)).unbind(0),
                          G[:, :, start:start + 2 * ns:2].unbind(0), G[:, :, start + 1:start + 2 * ns:2].unbind(0)))
        for step in range(steps - 1, -1, -1):
            p, i = schedule[step]
            f_slots, g_slots, g_top, g_bot = slots[p]
            src, dst = (step + 1) % 2, step % 2
            if want[p]:
                torch.matmul(g_slots[src], f_slots[step].mH, out=grads[p][i])
            _apply(adj[p], i, g_top[src], g_bot[src], g_top[dst], g_bot[dst])
        gX = G[0, :, 1:n + 1].clone() if ctx.needs_input_grad[2] else None
        ctx.lease.free = True
        return grads[0], grads[1], gX, None, None, None


class MeshEngine:
    """Propagation through one mesh layout at one complex dtype.

    ``engine.matrix(T, psi)`` builds U (``(N, N)``) from the MZI matrices ``T`` (``(n_mzis, 2, 2)``,
    from :func:`mzi_transfer`) and the output screen phases ``psi`` (``(N,)``, or None for no
    screen); ``engine.apply(x, T, psi)`` returns ``y = x U^T`` for row-vector fields ``x``
    (``(batch, N)`` complex): ``y[b] = U x[b]``. ``reverse=True`` sends the fields backwards from the
    outputs (``y = x U``, i.e. U^T applied). ``monitor=True`` also returns :class:`MeshFields`.
    ``engine.forward(x, theta, phi, psi)`` is the ideal lossless mesh in one call.
    """

    def __init__(self, layout: MeshLayout, *, dtype: torch.dtype = torch.complex64) -> None:
        if not isinstance(layout, MeshLayout):
            raise TypeError(f"layout must be a pnnlab MeshLayout (Rectangular(n) or Triangular(n)), got "
                            f"{type(layout).__name__}.")
        if dtype not in (torch.complex64, torch.complex128):
            raise ValueError(f"dtype must be torch.complex64 or torch.complex128, got {dtype}.")
        self.layout = layout
        self.dtype = dtype
        self.device = torch.device("cpu")  # of the index tensors and plans (moved by to(); the layout stays on the CPU)
        self._cache: dict = {}  # reusable field buffers, see _workspace
        self._positions: dict = {}  # device -> (mzi_column, mzi_top) there
        n = layout.n_ports
        self.n_ports = n
        # padded slots: parity 0 -> rows 1.., slot j = modes (2j, 2j+1); parity 1 -> rows 0.., slot j = modes (2j-1, 2j)
        self.n_slots = ((n + 1) // 2, (n + 2) // 2)
        par = torch.tensor(layout.column_parity, dtype=torch.long)
        group_index = torch.zeros(layout.n_columns, dtype=torch.long)
        counts = [0, 0]
        schedule = []
        for c, p in enumerate(layout.column_parity):
            group_index[c] = counts[p]
            schedule.append((p, counts[p]))
            counts[p] += 1
        self.group_sizes = tuple(counts)
        self.schedule = tuple(schedule)
        # fast path (monitor=False): the diamond grouping of .mesh_diamond for the alternating layouts
        self._alternating = all(p == c % 2 for c, p in enumerate(layout.column_parity))
        self._plans: dict = {}
        self._kernel_tops = None  # int32 top modes for the compiled kernel (forward, reversed), made on first use
        # kept for introspection/tests: (diamond half-width, number of block-diagonal layers) of the U-build
        self._blocks = (self._half_width(n, n)[0], len(self._plan(self._half_width(n, n)).layers)) \
            if self._alternating else None
        self.reverse_schedule = tuple(reversed(schedule))
        p_mzi = par[layout.mzi_column]
        slot = (layout.mzi_top + p_mzi) // 2
        flat = group_index[layout.mzi_column] * torch.tensor(self.n_slots)[p_mzi] + slot
        self._mzis_of = tuple(torch.nonzero(p_mzi == p).flatten() for p in (0, 1))
        self._flat_of = tuple(flat[self._mzis_of[p]] for p in (0, 1))

    # ---- device ----------------------------------------------------------------------------------
    #: moved with the plant that holds it (pnnlab.devices.move calls to())
    _device_state = True

    def to(self, device) -> "MeshEngine":
        """Keep the index tensors and diamond plans on ``device`` (the fields may come from anywhere: an
        index on another device is copied per call); the reusable field buffers are dropped. The layout's
        integer geometry stays on the CPU. Returns the engine."""
        from ... import devices

        device = devices.as_device(device)
        self.device = device
        self._mzis_of = tuple(t.to(device) for t in self._mzis_of)
        self._flat_of = tuple(t.to(device) for t in self._flat_of)
        for plan in self._plans.values():
            plan.to(device)
        self._cache.clear()
        self._positions.clear()
        self._kernel_tops = None  # CPU-only kernel indices, rebuilt on first use on the CPU
        return self

    def __getstate__(self) -> dict:
        """Pickled (checkpoints, copies) without the reusable field buffers: they hold weak references
        to autograd leases and are rebuilt on the next call."""
        state = dict(self.__dict__)
        state["_cache"] = {}
        state["_positions"] = {}
        return state

    def positions(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(layout.mzi_column, layout.mzi_top)`` on ``device`` (cached per device), for indexing
        monitored fields."""
        device = torch.device(device)
        got = self._positions.get(device)
        if got is None:
            got = self._positions[device] = (self.layout.mzi_column.to(device), self.layout.mzi_top.to(device))
        return got

    # ---- coefficients ------------------------------------------------------------------------
    def _padded(self, T: torch.Tensor, transpose: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        if T.shape != (self.layout.n_mzis, 2, 2):
            raise ValueError(f"T must have shape ({self.layout.n_mzis}, 2, 2) (one 2x2 matrix per MZI of "
                             f"{self.layout}), got {tuple(T.shape)}.")
        T = T.to(self.dtype)
        if transpose:
            T = T.transpose(-1, -2)
        out = []
        eye = torch.eye(2, dtype=self.dtype, device=T.device)
        for p in (0, 1):
            total = self.group_sizes[p] * self.n_slots[p]
            base = eye.expand(total, 2, 2)
            padded = base.index_copy(0, _on(self._flat_of[p], T.device),
                                     T.index_select(0, _on(self._mzis_of[p], T.device))) \
                if self._mzis_of[p].numel() else base.clone()
            out.append(padded.view(self.group_sizes[p], self.n_slots[p], 2, 2))
        return out[0], out[1]

    def _run(self, X: torch.Tensor, T: torch.Tensor, reverse: bool):
        c0, c1 = self._padded(T, transpose=reverse)
        schedule = self.reverse_schedule if reverse else self.schedule
        Y, S = _ColumnStack.apply(c0.unsqueeze(1), c1.unsqueeze(1), X.unsqueeze(0), schedule, self.n_slots,
                                  self._cache)
        return Y[0], S[:, 0]

    # ---- diamond fast path -------------------------------------------------------------------
    @staticmethod
    def _half_width(n: int, k: int) -> tuple[int, int]:
        """(diamond half-width h, half-width built elementwise before doubling by products) for N
        ports and K fields, chosen by measurement on a 1-thread CPU (benchmarks/bench_mesh_speed.py):
        small diamonds where per-call overhead dominates, bigger ones (fewer, larger batched
        products) as N grows."""
        if n <= 16:
            return 1, 1
        if n <= 40:
            return 2, 2
        if n <= 160:
            return 4, 4
        return (8, 4) if k >= 128 else (4, 4)

    def _plan(self, hb: tuple[int, int]) -> DiamondPlan:
        plan = self._plans.get(hb)
        if plan is None:  # geometry on the CPU (explicit devices: no default device), then to the engine's
            plan = self._plans[hb] = DiamondPlan(self.layout, hb[0], base_h=hb[1]).to(self.device)
        return plan

    def _columns(self, T: torch.Tensor, X: torch.Tensor, *, transpose: bool = False) -> torch.Tensor:
        """C_{L-1} ... C_0 X (or the transposed mesh applied), X of shape (N, K), without monitoring."""
        T = self._checked(T)
        if not plain_ops_active() and mesh_kernel.available(T, X):  # tracers and export never see the C code
            return self._kernel_columns(T, X, transpose)
        if not self._alternating:
            Y, _ = self._run(X, T, reverse=transpose)
            return Y
        return diamond_matrix_apply(self._plan(self._half_width(self.n_ports, X.shape[1])), T, X, transpose=transpose)

    def _kernel_columns(self, T: torch.Tensor, X: torch.Tensor, transpose: bool) -> torch.Tensor:
        """:meth:`_columns` by the compiled CPU kernel (:mod:`.mesh_kernel`): the MZIs in order of
        application (reversed and transposed for the transposed mesh)."""
        tops = self._kernel_tops
        if tops is None:
            with torch.inference_mode(False):  # cached: must stay usable outside inference mode
                top = self.layout.mzi_top.to(torch.int32)
                tops = self._kernel_tops = (top.contiguous(), top.flip(0).contiguous())
        Tk = T.transpose(-1, -2).flip(0) if transpose else T

        def fallback(Tk_, X_):  # the same product by ordinary differentiable operations
            T_ = Tk_.flip(0).transpose(-1, -2) if transpose else Tk_
            return self._plain_columns(T_, X_, transpose=transpose)

        return mesh_kernel.columns(Tk, X.to(self.dtype), tops[1] if transpose else tops[0], fallback)

    def _plain_columns(self, T: torch.Tensor, X: torch.Tensor, *, transpose: bool = False) -> torch.Tensor:
        """:meth:`_columns` with ordinary differentiable operations (:func:`plain_ops`): the padded
        ``(N + 2, K)`` state of the column path, every column one batched ``(pairs, 2, 2) @ (pairs, 2, K)``
        product, the rows rebuilt by concatenation (no in-place write, so autograd and tracers follow)."""
        c = self._padded(T, transpose=transpose)
        schedule = self.reverse_schedule if transpose else self.schedule
        zero = X.new_zeros(1, X.shape[1])
        S = torch.cat([zero, X.to(self.dtype), zero])
        for p, i in schedule:
            start, ns = 1 - p, self.n_slots[p]
            end = start + 2 * ns
            block = (c[p][i] @ S[start:end].reshape(ns, 2, -1)).reshape(2 * ns, -1)
            S = torch.cat([S[:start], block, S[end:]])
        return S[1:self.n_ports + 1]

    def _checked(self, T: torch.Tensor) -> torch.Tensor:
        if T.shape != (self.layout.n_mzis, 2, 2):
            raise ValueError(f"T must have shape ({self.layout.n_mzis}, 2, 2) (one 2x2 matrix per MZI of "
                             f"{self.layout}), got {tuple(T.shape)}.")
        return T.to(self.dtype)

    def _screen(self, psi: torch.Tensor | None) -> torch.Tensor | None:
        if psi is None:
            return None
        if psi.shape != (self.n_ports,):
            raise ValueError(f"psi (output phase screen) must have shape ({self.n_ports},), got {tuple(psi.shape)}.")
        real = torch.float64 if self.dtype == torch.complex128 else torch.float32
        psi = psi.to(real)
        return torch.polar(torch.ones_like(psi), psi)

    # ---- public --------------------------------------------------------------------------------
    def matrix(self, T: torch.Tensor, psi: torch.Tensor | None = None) -> torch.Tensor:
        """The mesh's transfer matrix U = diag(exp(i psi)) C_{L-1} ... C_0, shape (N, N)."""
        eye = torch.eye(self.n_ports, dtype=self.dtype, device=T.device)
        U = self._plain_columns(T, eye) if plain_ops_active() else self._columns(T, eye)
        screen = self._screen(psi)
        return U if screen is None else screen.unsqueeze(1) * U

    def apply(self, x: torch.Tensor, T: torch.Tensor, psi: torch.Tensor | None = None, *,
              reverse: bool = False, monitor: bool = False):
        """Propagate row-vector fields ``x`` (``(batch, N)``): ``y = x U^T`` (forward) or ``y = x U``
        (``reverse``: light entering the outputs). Returns ``y`` or ``(y, MeshFields)``."""
        if not torch.is_complex(x) or x.ndim != 2 or x.shape[1] != self.n_ports:
            raise ValueError(f"x must be a complex field of shape (batch, {self.n_ports}), got "
                             f"{x.dtype} {tuple(x.shape)}.")
        x = x.to(self.dtype)
        if not monitor and plain_ops_active():  # the traceable reference path: U from ordinary ops, one matmul
            U = self.matrix(T, psi)
            return x @ U if reverse else x @ U.T
        screen = self._screen(psi)
        if not monitor:
            if 2 * x.shape[0] >= 3 * self.n_ports:  # many fields: build U once, then one matmul
                U = self.matrix(T, psi)
                return x @ U if reverse else x @ U.T
            if reverse:
                xin = x if screen is None else x * screen
                return self._columns(T, xin.T, transpose=True).T
            y = self._columns(T, x.T).T
            return y if screen is None else y * screen
        if reverse:
            xin = x if screen is None else x * screen
            Y, S = self._run(xin.T, T, reverse=True)
            y = Y.T
        else:
            Y, S = self._run(x.T, T, reverse=False)
            y = Y.T if screen is None else Y.T * screen
        if not monitor:
            return y
        n = self.n_ports
        fields = S[:, 1:n + 1].transpose(1, 2).detach()  # (L + 1, batch, N) in step order
        if reverse:
            fields = fields.flip(0)
        return y, MeshFields(inputs=fields.clone(), output=y.detach().clone(), reverse=reverse)

    def internal_fields(self, fields: MeshFields, T_first: torch.Tensor) -> torch.Tensor:
        """Field in the top arm of every MZI between its two couplers (at the internal shifter
        theta), ``(batch, n_mzis)``, for a forward pass: ``T_first`` (``(n_mzis, 2, 2)``) is the first
        half ``B(a1) D(phi)`` of every MZI (:meth:`MeshEngine.first_half`). For a reverse pass the light
        meets the second coupler first: pass the transposed second half ``(B(a2))^T`` and the field
        leaving each MZI's output side (``inputs[c + 1]``), handled here by ``fields.reverse``."""
        col, top = self.positions(fields.inputs.device)
        col = col + (1 if fields.reverse else 0)
        a = fields.inputs[col, :, top]        # (n_mzis, batch)
        b = fields.inputs[col, :, top + 1]
        T_first = T_first.to(self.dtype)
        return (T_first[:, 0, 0:1] * a + T_first[:, 0, 1:2] * b).T

    def forward(self, x: torch.Tensor, theta: torch.Tensor, phi: torch.Tensor,
                psi: torch.Tensor | None = None) -> torch.Tensor:
        """Ideal lossless mesh: ``apply(x, mzi_transfer(theta, phi), psi)``."""
        return self.apply(x, mzi_transfer(theta, phi, dtype=self.dtype), psi)


def first_half(phi: torch.Tensor, *, coupler_errors: torch.Tensor | None = None,
               dtype: torch.dtype = torch.complex64) -> torch.Tensor:
    """``B(a1) D(phi)`` per MZI, ``(n, 2, 2)``: the part of each MZI before its internal shifter."""
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    phi = phi.to(real)
    a1 = (coupler_errors[..., 0].to(real) if coupler_errors is not None else torch.zeros_like(phi)) + math.pi / 4
    c, s = torch.cos(a1), torch.sin(a1)
    e = torch.polar(torch.ones_like(phi), phi)
    row0 = torch.stack([c * e, 1j * s.to(e.dtype)], -1)
    row1 = torch.stack([1j * s * e, c.to(e.dtype)], -1)
    return torch.stack([row0, row1], -2).to(dtype)
