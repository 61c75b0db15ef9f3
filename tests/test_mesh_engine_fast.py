"""The fast (diamond-grouped, BLAS) mesh path against a plain column-by-column reference.

The reference applies the columns one after another with ordinary differentiable PyTorch ops (no
engine code, autograd gradients), so that the diamond grouping, its padding, its transposed (reverse)
pass and both analytic backwards (diamond build, layer stack) and the analytic MZI gradient are all
checked against an independent computation, forward AND gradients, for complex64 and complex128,
N = 2..65 (odd and even), with coupler errors and insertion loss."""

import math

import pytest
import torch

from pnnlab.plants.photonics.mesh_diamond import DiamondPlan, diamond_matrix_apply
from pnnlab.plants.photonics.mesh_engine import (MeshEngine, Rectangular, Triangular, _mzi_transfer_autograd,
                                                 mzi_transfer)

REAL = {torch.complex64: torch.float32, torch.complex128: torch.float64}
TOL = {torch.complex64: 2e-5, torch.complex128: 1e-12}


def _columns_reference(layout, T, X):
    """C_{L-1} ... C_0 X by plain autograd ops, one column at a time (X: (N, K) column fields)."""
    cols, tops = layout.mzi_column, layout.mzi_top
    for c in range(layout.n_columns):
        k = torch.nonzero(cols == c).flatten()
        m = tops[k]
        a, b = X[m], X[m + 1]
        t = T[k]
        X = X.index_copy(0, m, t[:, 0, 0:1] * a + t[:, 0, 1:2] * b)
        X = X.index_copy(0, m + 1, t[:, 1, 0:1] * a + t[:, 1, 1:2] * b)
    return X


def _problem(layout, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    real = torch.float64
    n = layout.n_ports
    theta = 2 * math.pi * torch.rand(layout.n_mzis, generator=g, dtype=real)
    phi = 2 * math.pi * torch.rand(layout.n_mzis, generator=g, dtype=real)
    psi = 2 * math.pi * torch.rand(n, generator=g, dtype=real)
    errors = 0.08 * torch.randn(layout.n_mzis, 2, generator=g, dtype=real)
    amplitude = 1 - 0.1 * torch.rand(layout.n_mzis, generator=g, dtype=real)  # non-uniform loss per MZI
    return theta, phi, psi, errors, amplitude, g


def _grads(loss, tensors):
    return torch.autograd.grad(loss, tensors)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("layout_cls", [Rectangular, Triangular])
def test_fast_path_equals_column_reference_forward_and_gradients(layout_cls, dtype):
    """Every N from 2 to 65, both fast routes (fields propagated through the diamond layers for a
    small batch, U built once for a large one), forward and reverse, forward values and the
    gradients of theta, phi, psi and the input field."""
    every = dtype == torch.complex128 and layout_cls is Rectangular  # every N once; a spread of N for the others
    sizes = range(2, 66) if every else (2, 3, 4, 5, 8, 9, 16, 17, 32, 33, 64, 65)
    for n in sizes:
        lay = layout_cls(n)
        eng = MeshEngine(lay, dtype=dtype)
        theta, phi, psi, errors, amplitude, g = _problem(lay, dtype, n)
        for batch in (max(1, n // 3), 2 * n):          # direct route, U route (batch >= 1.5 N)
            for reverse in (False, True):
                params = [t.clone().requires_grad_(True) for t in (theta, phi, psi)]
                x = torch.randn(batch, n, generator=g, dtype=torch.complex128).to(dtype).requires_grad_(True)
                w = torch.randn(batch, n, generator=g, dtype=torch.complex128).to(dtype)

                def T_of(th, ph, fast):
                    if fast:
                        return mzi_transfer(th, ph, coupler_errors=errors, amplitude=amplitude, dtype=dtype)
                    return _mzi_transfer_autograd(th.to(REAL[dtype]), ph.to(REAL[dtype]), errors,
                                                  amplitude.to(REAL[dtype]), REAL[dtype]).to(dtype)

                y = eng.apply(x, T_of(params[0], params[1], True), params[2], reverse=reverse)
                screen = torch.polar(torch.ones_like(params[2]), params[2]).to(dtype)
                T_ref = T_of(params[0], params[1], False)
                if reverse:  # y = x U: the transposed columns applied to the screened input
                    y_ref = _reverse_reference(lay, T_ref, x * screen)
                else:
                    y_ref = _columns_reference(lay, T_ref, x.T).T * screen
                scale = float(y_ref.detach().abs().max())
                assert float((y - y_ref).detach().abs().max()) <= TOL[dtype] * max(scale, 1.0), (n, batch, reverse)
                loss = (w * y).real.sum() + y.abs().square().sum()
                loss_ref = (w * y_ref).real.sum() + y_ref.abs().square().sum()
                got = _grads(loss, [*params, x])
                want = _grads(loss_ref, [*params, x])
                for name, a, b in zip(("theta", "phi", "psi", "x"), got, want):
                    err = float((a - b).abs().max())
                    assert err <= 10 * TOL[dtype] * max(float(b.abs().max()), 1.0), (n, batch, reverse, name, err)


def _reverse_reference(layout, T, x):
    """x U for row vectors (light from the outputs): U^T applied = the columns in reverse order,
    each 2x2 transposed, built here as the explicit product of column matrices (independent of the
    forward column reference)."""
    n = layout.n_ports
    Y = x.T
    for c in range(layout.n_columns - 1, -1, -1):
        k = torch.nonzero(layout.mzi_column == c).flatten()
        m = layout.mzi_top[k]
        t = T[k].transpose(1, 2)
        a, b = Y[m], Y[m + 1]
        Y = Y.index_copy(0, m, t[:, 0, 0:1] * a + t[:, 0, 1:2] * b)
        Y = Y.index_copy(0, m + 1, t[:, 1, 0:1] * a + t[:, 1, 1:2] * b)
    assert Y.shape[0] == n
    return Y.T


@pytest.mark.parametrize("h,base_h", [(1, 1), (2, 2), (3, 3), (4, 4), (8, 8), (4, 2), (8, 2), (8, 4)])
def test_every_diamond_size_equals_the_reference_including_meshes_smaller_than_a_diamond(h, base_h):
    """The engine picks the diamond half-width h (and the half-width base_h built elementwise before
    doubling by merge products) by N; here each is forced on small meshes (including N < 2h, where
    one diamond overhangs the mesh on both sides)."""
    dtype = torch.complex128
    for layout_cls in (Rectangular, Triangular):
        for n in (2, 3, 6, 7, 12, 19):
            lay = layout_cls(n)
            theta, phi, _, errors, amplitude, g = _problem(lay, dtype, 100 + n)
            T = mzi_transfer(theta, phi, coupler_errors=errors, amplitude=amplitude, dtype=dtype).requires_grad_(True)
            X = torch.randn(n, 4, generator=g, dtype=dtype, requires_grad=True)
            W = torch.randn(n, 4, generator=g, dtype=dtype)
            plan = DiamondPlan(lay, h, base_h=base_h)
            for transpose in (False, True):
                Y = diamond_matrix_apply(plan, T, X, transpose=transpose)
                Y_ref = _reverse_reference(lay, T, X.T).T if transpose else _columns_reference(lay, T, X)
                assert torch.allclose(Y, Y_ref, atol=1e-12), (layout_cls, n, transpose)
                got = _grads((W * Y).real.sum(), [T, X])
                want = _grads((W * Y_ref).real.sum(), [T, X])
                for a, b in zip(got, want):
                    assert torch.allclose(a, b, atol=1e-12), (layout_cls, n, transpose)


def test_diamond_plan_groups_every_mzi_once_in_causal_order():
    """Each MZI sits in exactly one diamond slot; along every mode the MZIs met one after another
    are in strictly later layers or in the same diamond at a later local step."""
    for layout in (Rectangular(13), Triangular(10), Rectangular(8)):
        for h in (1, 2, 4):
            plan = DiamondPlan(layout, h)
            idx = plan.index.flatten()
            real = idx[idx < layout.n_mzis]
            assert sorted(real.tolist()) == list(range(layout.n_mzis))
            assert torch.equal(idx[plan.slot_of], torch.arange(layout.n_mzis))
            layer_of_diamond = torch.empty(plan.n_diamonds, dtype=torch.long)
            for i, (_, first, nb) in enumerate(plan.layers):
                layer_of_diamond[first:first + nb] = i
            step_of_slot = torch.empty(h * h, dtype=torch.long)
            for t, (s0, npairs, _) in enumerate(plan.steps):
                step_of_slot[s0:s0 + npairs] = t
            diamond = plan.slot_of % plan.n_diamonds
            step = step_of_slot[plan.slot_of // plan.n_diamonds]
            for mode in range(layout.n_ports):
                on = [k for k in range(layout.n_mzis) if int(layout.mzi_top[k]) in (mode - 1, mode)]
                on.sort(key=lambda k: int(layout.mzi_column[k]))
                for k1, k2 in zip(on, on[1:]):
                    l1, l2 = int(layer_of_diamond[diamond[k1]]), int(layer_of_diamond[diamond[k2]])
                    same = int(diamond[k1]) == int(diamond[k2])
                    assert l2 > l1 or (same and int(step[k2]) > int(step[k1])), (layout, h, mode, k1, k2)
            # every diamond's block lies inside the padded rows, and the padding rows hold no mode
            assert plan.offset >= h and plan.offset + layout.n_ports <= plan.n_rows - h
            assert plan.n_rows % plan.w == 0


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_analytic_mzi_gradient_equals_autograd(dtype):
    """The analytic theta/phi backward of mzi_transfer against the plain autograd formula, for ideal
    couplers, coupler errors, a uniform and a per-MZI loss; and a coupler-error gradient (which takes
    the autograd path) still flows."""
    g = torch.Generator().manual_seed(3)
    n = 11
    real = REAL[dtype]
    for errors in (None, 0.07 * torch.randn(n, 2, generator=g, dtype=torch.float64)):
        for amplitude in (None, 0.9, 1 - 0.2 * torch.rand(n, generator=g, dtype=torch.float64)):
            th = torch.rand(n, generator=g, dtype=torch.float64).requires_grad_(True)
            ph = torch.rand(n, generator=g, dtype=torch.float64).requires_grad_(True)
            W = torch.randn(n, 2, 2, generator=g, dtype=torch.complex128).to(dtype)
            T = mzi_transfer(th, ph, coupler_errors=errors, amplitude=amplitude, dtype=dtype)
            amp = None if amplitude is None else torch.as_tensor(amplitude, dtype=torch.float64).to(real)
            T_ref = _mzi_transfer_autograd(th.to(real), ph.to(real), errors, amp, real).to(dtype)
            assert T.dtype == dtype and torch.allclose(T, T_ref, atol=TOL[dtype])
            got = _grads((W * T).real.sum() + T.abs().square().sum(), [th, ph])
            want = _grads((W * T_ref).real.sum() + T_ref.abs().square().sum(), [th, ph])
            for a, b in zip(got, want):
                assert a.dtype == torch.float64 and torch.allclose(a, b, atol=10 * TOL[dtype])
    errors = (0.07 * torch.randn(n, 2, generator=g, dtype=torch.float64)).requires_grad_(True)
    T = mzi_transfer(torch.rand(n, dtype=torch.float64), torch.rand(n, dtype=torch.float64),
                     coupler_errors=errors, dtype=dtype)
    (grad,) = _grads(T.abs().square().sum() + T.real.sum(), [errors])
    assert float(grad.abs().max()) > 0


def test_fast_path_and_monitored_column_path_agree_on_a_large_mesh():
    """At 128 ports (diamond half-width 8 for a big batch, 4 for a small one), complex64: the fast
    path against the engine's monitored column-by-column propagation."""
    lay = Rectangular(128)
    eng = MeshEngine(lay, dtype=torch.complex64)
    theta, phi, psi, errors, amplitude, g = _problem(lay, torch.complex64, 7)
    T = mzi_transfer(theta, phi, coupler_errors=errors, amplitude=amplitude)
    for batch in (40, 256):
        x = torch.randn(batch, 128, generator=g, dtype=torch.float64).to(torch.complex64)
        for reverse in (False, True):
            y_col, _ = eng.apply(x, T, psi, reverse=reverse, monitor=True)
            y = eng.apply(x, T, psi, reverse=reverse)
            assert float((y - y_col).abs().max()) < 2e-5 * float(y_col.abs().max())


# ---- the traceable reference path (plain_ops) ----------------------------------------------------
def _custom_functions(y):
    """Names of the custom autograd Functions in y's graph (none on the plain path)."""
    seen, stack, found = set(), [y.grad_fn], []
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        if isinstance(fn, torch.autograd.function.BackwardCFunction):
            found.append(type(fn).__name__)
        stack.extend(f for f, _ in fn.next_functions)
    return found


@pytest.mark.parametrize("layout_cls", [Rectangular, Triangular])
def test_plain_ops_path_equals_the_fast_path_values_and_gradients(layout_cls):
    """plain_ops() (ordinary autograd ops: U built column by column, applied as one matmul; the path
    tracers and torch.export record) against the fast path (diamonds, custom autograd Functions):
    complex128 to 1e-12 and complex64 to 2e-5 relative, outputs, U and the gradients of theta, phi,
    psi and the input, forward and reverse, batch 1 and 2N, N odd and even (48: merged diamonds)."""
    from contextlib import nullcontext

    from pnnlab.plants.photonics.mesh_engine import plain_ops, plain_ops_active

    for dtype in (torch.complex64, torch.complex128):
        for n in (2, 5, 8, 17, 48):
            lay = layout_cls(n)
            eng = MeshEngine(lay, dtype=dtype)
            theta, phi, psi, errors, amplitude, g = _problem(lay, dtype, n)
            for batch in (1, 2 * n):
                x0 = torch.randn(batch, n, generator=g, dtype=torch.complex128).to(dtype)
                w = torch.randn(batch, n, generator=g, dtype=torch.complex128).to(dtype)
                for reverse in (False, True):
                    def run(plain):
                        params = [t.clone().requires_grad_(True) for t in (theta, phi, psi)]
                        x = x0.clone().requires_grad_(True)
                        with plain_ops() if plain else nullcontext():
                            assert plain_ops_active() == plain
                            T = mzi_transfer(params[0], params[1], coupler_errors=errors, amplitude=amplitude,
                                             dtype=dtype)
                            y = eng.apply(x, T, params[2], reverse=reverse)
                            U = eng.matrix(T, params[2])
                        assert bool(_custom_functions(y)) != plain  # the plain path has none; the fast one has
                        loss = (w * y).real.sum() + y.abs().square().sum() + U.abs().square().sum()
                        return y, U, torch.autograd.grad(loss, [*params, x])

                    y, U, grads = run(False)
                    y_p, U_p, grads_p = run(True)
                    scale = max(float(y.detach().abs().max()), 1.0)
                    assert float((y_p - y).detach().abs().max()) <= TOL[dtype] * scale, (dtype, n, batch, reverse)
                    assert float((U_p - U).detach().abs().max()) <= TOL[dtype], (dtype, n, reverse)
                    for name, a, b in zip(("theta", "phi", "psi", "x"), grads_p, grads):
                        err = float((a - b).abs().max())
                        assert err <= 10 * TOL[dtype] * max(float(b.abs().max()), 1.0), (dtype, n, batch, name, err)
    assert not plain_ops_active()


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # the shape checks, constant under a trace
def test_tracing_selects_the_plain_path_by_itself_and_the_trace_holds_at_every_batch_size():
    """torch.jit.trace of a mesh (errors and loss) needs no flag: the engine sees the tracer and takes the
    plain path (a trace of the fast path records its custom Functions as Python calls, which cannot be
    saved), and the saved and reloaded trace recorded at one batch size equals the fast path at others."""
    import io

    lay = Rectangular(6)
    eng = MeshEngine(lay)
    theta, phi, psi, errors, amplitude, g = _problem(lay, torch.complex64, 3)

    def mesh(x):
        T = mzi_transfer(theta, phi, coupler_errors=errors, amplitude=amplitude)
        return eng.apply(x, T, psi).abs().square()

    x = torch.randn(20, 6, generator=g, dtype=torch.float64).to(torch.complex64)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.trace(mesh, x[:4], check_trace=False), buffer)
    buffer.seek(0)
    traced = torch.jit.load(buffer)
    for batch in (1, 4, 20):  # 20 >= 1.5 N: the fast path builds U there; for 1 and 4 it propagates the fields
        assert torch.allclose(traced(x[:batch]), mesh(x[:batch]), atol=2e-6, rtol=1e-5), batch


def test_diamond_plans_and_their_merge_chain_move_with_the_engine():
    """Engine.to moves its index tensors and every plan (also one built later, and the merge chain of
    a merged plan) and drops its field buffers."""
    eng = MeshEngine(Rectangular(12))
    plan = eng._plan((4, 2))  # merged: half-width 2 built, doubled to 4
    assert plan.merges and plan.index.device.type == "cpu"
    eng.to("meta")
    late = eng._plan((2, 1))  # built after the move: on the engine's device
    for p in (plan, late, *(m.child for m in plan.merges)):
        assert p.index.device.type == "meta" and p.slot_of.device.type == "meta"
    assert all(m.idx.device.type == "meta" for m in plan.merges + late.merges)
    assert all(t.device.type == "meta" for t in (*eng._mzis_of, *eng._flat_of)) and not eng._cache
    col, top = eng.positions("meta")
    assert col.device.type == "meta" and torch.equal(eng.positions("cpu")[0], eng.layout.mzi_column)
