"""The compiled CPU mesh kernel (pnnlab.plants.photonics.mesh_kernel): the same mesh, values and gradients,
as the PyTorch paths; its safety net for ill-conditioned MZIs; and what happens without it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings

import pytest
import torch

from pnnlab import _ckernel
from pnnlab.plants.photonics import mesh_kernel
from pnnlab.plants.photonics.mesh_engine import MeshEngine, Rectangular, Triangular, mzi_transfer

HAVE_CC = bool(os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc"))
needs_kernel = pytest.mark.skipif(mesh_kernel.status().startswith(("no C compiler", "disabled")),
                                  reason=f"mesh kernel not built here: {mesh_kernel.status()}")


def test_the_kernel_builds_wherever_a_c_compiler_exists():
    """A machine with a compiler must get the kernel (a broken build would otherwise go unnoticed: every
    other test here would skip and the engine would silently fall back to the slower paths)."""
    if os.environ.get("PNNLAB_MESH_KERNEL", "").lower() in ("0", "off", "false", "no", "torch"):
        pytest.skip("kernel disabled by PNNLAB_MESH_KERNEL")
    if not HAVE_CC:
        pytest.skip("no C compiler on this machine")
    assert mesh_kernel.status().startswith("compiled kernel"), mesh_kernel.status()


def _case(layout, k, *, seed=0, lossy=True):
    gen = torch.Generator().manual_seed(seed)
    n = layout.n_ports
    theta = (6.28 * torch.rand(layout.n_mzis, generator=gen)).requires_grad_(True)
    phi = (6.28 * torch.rand(layout.n_mzis, generator=gen)).requires_grad_(True)
    errors = (0.05 * torch.randn(layout.n_mzis, 2, generator=gen)).requires_grad_(True)
    amp = (0.9 + 0.1 * torch.rand(layout.n_mzis, generator=gen)).requires_grad_(True) if lossy else None
    X = torch.complex(torch.randn(n, k, generator=gen), torch.randn(n, k, generator=gen)).requires_grad_(True)
    W = torch.complex(torch.randn(n, k, generator=gen), torch.randn(n, k, generator=gen))
    leaves = [theta, phi, errors, X] + ([amp] if lossy else [])
    return leaves, (lambda: mzi_transfer(theta, phi, coupler_errors=errors, amplitude=amp)), W


def _close(got, want, rel=1e-4):
    """Every tensor of ``got`` equals ``want``'s to ``rel`` of its largest entry (float32 rounding)."""
    for a, b in zip(got, want, strict=True):
        assert torch.allclose(a, b, atol=rel * max(1.0, float(b.abs().max())), rtol=1e-4)


def _value_and_grads(engine, make_T, X, W, leaves, transpose):
    Y = engine._columns(make_T(), X, transpose=transpose)
    loss = (Y * W.conj()).real.sum() + Y.abs().square().sum()
    return Y.detach(), torch.autograd.grad(loss, leaves)


@needs_kernel
@pytest.mark.parametrize("layout_cls", [Rectangular, Triangular])
@pytest.mark.parametrize("n", [2, 3, 5, 8, 17])
@pytest.mark.parametrize("k", [1, 7, 16, 40])
@pytest.mark.parametrize("transpose", [False, True])
def test_kernel_equals_the_pytorch_reference_in_values_and_every_gradient(layout_cls, n, k, transpose):
    """Phases, coupler errors, insertion loss and the input fields all get the reference gradient (the
    plain autograd path, ordinary differentiable PyTorch operations) to float32 rounding."""
    layout = layout_cls(n)
    engine = MeshEngine(layout)
    leaves, make_T, W = _case(layout, k)
    X = leaves[3]
    called = []
    original = mesh_kernel.columns

    def spy(*args, **kwargs):
        called.append(1)
        return original(*args, **kwargs)

    mesh_kernel.columns = spy
    fallbacks = mesh_kernel.fallbacks
    try:
        Y, grads = _value_and_grads(engine, make_T, X, W, leaves, transpose)
    finally:
        mesh_kernel.columns = original
    assert called, "the engine did not use the kernel for CPU complex64 fields"
    assert mesh_kernel.fallbacks == fallbacks, "the kernel's own backward was not used (reconstruction failed)"
    Y_ref = engine._plain_columns(make_T(), X, transpose=transpose)
    loss = (Y_ref * W.conj()).real.sum() + Y_ref.abs().square().sum()
    refs = torch.autograd.grad(loss, leaves)
    assert torch.allclose(Y, Y_ref.detach(), atol=2e-5, rtol=1e-5)
    _close(grads, refs, rel=5e-5)


@needs_kernel
def test_kernel_agrees_with_the_diamond_engine_and_the_monitored_columns_on_a_large_mesh():
    layout = Rectangular(64)
    engine = MeshEngine(layout)
    leaves, make_T, W = _case(layout, 100, lossy=True)
    X = leaves[3]
    Y_kernel = engine.apply(X.T, make_T())
    with mesh_kernel.disabled():
        Y_diamond = engine.apply(X.T, make_T())
    with torch.no_grad():
        Y_columns = engine.apply(X.T, make_T(), monitor=True)[0]
    assert torch.allclose(Y_kernel, Y_diamond, atol=1e-5)
    assert torch.allclose(Y_kernel, Y_columns, atol=1e-5)
    g_kernel = torch.autograd.grad(Y_kernel.abs().square().sum(), leaves)
    g_diamond = torch.autograd.grad(Y_diamond.abs().square().sum(), leaves)
    _close(g_kernel, g_diamond)


@needs_kernel
def test_results_do_not_depend_on_the_thread_count():
    layout = Rectangular(12)
    engine = MeshEngine(layout)
    leaves, make_T, W = _case(layout, 2 * mesh_kernel.MAX_CHUNK + 70)  # three chunks, shared over the threads
    threads = torch.get_num_threads()
    out = []
    try:
        for t in (1, 2, 3):
            torch.set_num_threads(t)
            out.append(_value_and_grads(engine, make_T, leaves[3], W, leaves, False))
    finally:
        torch.set_num_threads(threads)
    for Y, grads in out[1:]:
        assert torch.allclose(Y, out[0][0], atol=1e-6)
        for a, b in zip(grads, out[0][1]):
            assert torch.allclose(a, b, atol=1e-5 * max(1.0, float(b.abs().max())))


@needs_kernel
def test_a_second_backward_through_a_retained_graph_gives_the_same_gradients():
    """The backward recovers the fields in a work buffer, not in the saved output."""
    layout = Rectangular(9)
    engine = MeshEngine(layout)
    leaves, make_T, W = _case(layout, 20)
    Y = engine._columns(make_T(), leaves[3])
    loss = (Y * W.conj()).real.sum()
    first = torch.autograd.grad(loss, leaves, retain_graph=True)
    engine._columns(make_T(), leaves[3])  # another pass in between must not disturb the retained graph
    second = torch.autograd.grad(loss, leaves)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@needs_kernel
def test_ill_conditioned_mzis_fall_back_to_autograd_with_a_warning_and_correct_gradients(monkeypatch):
    """Inverting a (near-)singular 2x2 matrix cannot recover the fields: the reconstruction check catches
    it and the gradient is recomputed exactly."""
    monkeypatch.setattr(mesh_kernel, "_warned_fallback", False)
    layout = Rectangular(6)
    engine = MeshEngine(layout)
    gen = torch.Generator().manual_seed(3)
    T = mzi_transfer(torch.rand(layout.n_mzis, generator=gen), torch.rand(layout.n_mzis, generator=gen)).detach()
    T[4] = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.complex64)  # rank one: singular
    T = T.requires_grad_(True)
    X = torch.complex(torch.randn(6, 5, generator=gen), torch.randn(6, 5, generator=gen)).requires_grad_(True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Y = engine._columns(T, X)
        grads = torch.autograd.grad(Y.abs().square().sum(), (T, X))
    assert any("ill-conditioned" in str(w.message) for w in caught)
    assert mesh_kernel.fallbacks >= 1
    Y_ref = engine._plain_columns(T, X)
    refs = torch.autograd.grad(Y_ref.abs().square().sum(), (T, X))
    _close(grads, refs)


@needs_kernel
def test_the_kernel_is_not_used_for_complex128_or_inside_disabled():
    layout = Rectangular(6)
    T = mzi_transfer(torch.rand(layout.n_mzis), torch.rand(layout.n_mzis))
    X = torch.randn(6, 3, dtype=torch.complex64)
    assert mesh_kernel.available(T, X)
    assert not mesh_kernel.available(T.to(torch.complex128), X.to(torch.complex128))
    with mesh_kernel.disabled():
        assert not mesh_kernel.available(T, X)
    assert not mesh_kernel.available(T.to("meta"), X.to("meta"))


def test_switching_the_kernel_off_by_environment_keeps_the_engine_working(tmp_path):
    code = ("import torch\n"
            "from pnnlab.plants.photonics import mesh_kernel\n"
            "from pnnlab.plants.photonics.mesh_engine import MeshEngine, Rectangular, mzi_transfer\n"
            "e = MeshEngine(Rectangular(8)); th = torch.rand(28, requires_grad=True)\n"
            "y = e.apply(torch.randn(4, 8, dtype=torch.complex64), mzi_transfer(th, torch.rand(28)))\n"
            "y.abs().sum().backward()\n"
            "print(mesh_kernel.status()); print(bool(torch.isfinite(th.grad).all()))\n")
    env = dict(os.environ, PNNLAB_MESH_KERNEL="off", PNNLAB_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["disabled by PNNLAB_MESH_KERNEL", "True"]


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler on this machine")
def test_a_fresh_cache_directory_gets_a_fresh_build(tmp_path):
    code = ("from pnnlab.plants.photonics import mesh_kernel\n"
            "print(mesh_kernel.status())\n")
    env = dict(os.environ, PNNLAB_CACHE_DIR=str(tmp_path))
    env.pop("PNNLAB_MESH_KERNEL", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("compiled kernel " + str(tmp_path)), out.stdout
    assert list((tmp_path / "kernels").glob("mesh_kernel_*.so"))


@needs_kernel
@pytest.mark.parametrize("errors,loss_db", [(False, False), (True, True)])
def test_phases_straight_from_mzi_transfer_get_the_reference_gradient_without_materialising_dT(errors, loss_db):
    """mzi_transfer's matrices going straight into the kernel route the gradient to theta and phi inside
    the kernel's backward; the result equals plain autograd of the textbook formula, also when T is used
    a second time in the loss (both contributions add up) and when T was modified in place (no fusion)."""
    from pnnlab.plants.photonics.mesh_engine import _mzi_transfer_autograd

    layout = Rectangular(10)
    engine = MeshEngine(layout)
    gen = torch.Generator().manual_seed(5)
    theta = (6.28 * torch.rand(layout.n_mzis, generator=gen)).requires_grad_(True)
    phi = (6.28 * torch.rand(layout.n_mzis, generator=gen)).requires_grad_(True)
    err = 0.05 * torch.randn(layout.n_mzis, 2, generator=gen) if errors else None
    amp = 0.9 + 0.1 * torch.rand(layout.n_mzis, generator=gen) if loss_db else None
    x = torch.complex(torch.randn(30, 10, generator=gen), torch.randn(30, 10, generator=gen))
    W = torch.complex(torch.randn(30, 10, generator=gen), torch.randn(30, 10, generator=gen))

    def loss_of(T):
        y = engine.apply(x, T)
        return (y * W.conj()).real.sum() + 0.3 * T.abs().square().sum() * T.real.sum()

    T = mzi_transfer(theta, phi, coupler_errors=err, amplitude=amp)
    assert mesh_kernel._fusable(T) is not None
    got = torch.autograd.grad(loss_of(T), (theta, phi))
    T_ref = _mzi_transfer_autograd(theta, phi, err, amp, torch.float32).to(torch.complex64)
    with mesh_kernel.disabled():
        want = torch.autograd.grad(loss_of(T_ref), (theta, phi))
    _close(got, want)
    T2 = mzi_transfer(theta, phi, coupler_errors=err, amplitude=amp)
    T2.mul_(1.0)  # an in-place change: the kernel must not take the phases behind it
    assert mesh_kernel._fusable(T2) is None
    again = torch.autograd.grad(loss_of(T2), (theta, phi))
    _close(again, want)


@needs_kernel
def test_threads_running_meshes_at_once_get_their_own_buffers():
    """A plant server's worker threads run meshes concurrently: the cached buffers must not be shared."""
    from concurrent.futures import ThreadPoolExecutor

    layout = Rectangular(16)
    engine = MeshEngine(layout)

    def job(seed):
        leaves, make_T, W = _case(layout, 48, seed=seed)
        out = []
        for _ in range(20):
            out.append(_value_and_grads(engine, make_T, leaves[3], W, leaves, False))
        return out

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(job, range(3)))
    for seed, runs in enumerate(results):
        Y0, g0 = job(seed)[0]  # alone, after the others finished
        for Y, grads in runs:
            assert torch.equal(Y, Y0)
            assert all(torch.equal(a, b) for a, b in zip(grads, g0))


def test_code_is_only_loaded_from_a_private_directory(tmp_path):
    """The fallback build directory sits in the shared temporary directory: one that others may write to
    must be refused (another user could plant the library this process would load)."""
    uid = os.getuid() if hasattr(os, "getuid") else None
    if uid is None:
        pytest.skip("no POSIX user ids here")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert _ckernel.private(private, uid)
    assert not _ckernel.private(shared, uid)
    assert not _ckernel.private(private, uid + 1)  # somebody else's


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler on this machine")
def test_an_unwritable_cache_directory_builds_in_a_private_temporary_one(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = "from pnnlab.plants.photonics import mesh_kernel\nprint(mesh_kernel.status())\n"
    env = dict(os.environ, PNNLAB_CACHE_DIR=str(blocker), TMPDIR=str(tmp_path))
    env.pop("PNNLAB_MESH_KERNEL", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("compiled kernel " + str(tmp_path / "pnnlab-kernels-")), out.stdout


@needs_kernel
def test_inference_mode_first_then_training_and_an_empty_batch():
    """Buffers and indices first made under torch.inference_mode() stay usable for training afterwards,
    and an empty batch gives an empty result (and a zero gradient) rather than an error."""
    engine = MeshEngine(Rectangular(8))
    gen = torch.Generator().manual_seed(2)
    x = torch.complex(torch.randn(4, 8, generator=gen), torch.randn(4, 8, generator=gen))
    theta, phi = torch.rand(28, generator=gen), torch.rand(28, generator=gen)
    with torch.inference_mode():
        y_inf = engine.forward(x, theta, phi)
    th = theta.clone().requires_grad_(True)
    y = engine.forward(x, th, phi)
    y.abs().square().sum().backward()
    assert torch.equal(y.detach(), y_inf) and th.grad is not None and bool(torch.isfinite(th.grad).all())
    empty = engine.forward(x[:0], th, phi)
    assert empty.shape == (0, 8)
    (g,) = torch.autograd.grad(empty.abs().sum(), th, allow_unused=True)
    assert g is None or float(g.abs().max()) == 0.0


@needs_kernel
def test_the_kernel_is_never_taken_inside_plain_ops():
    """Tracers and torch.export must record ordinary operations: inside plain_ops() even the engine's
    internal column product skips the C code."""
    from pnnlab.plants.photonics.mesh_engine import plain_ops

    layout = Rectangular(6)
    engine = MeshEngine(layout)
    T = mzi_transfer(torch.rand(layout.n_mzis), torch.rand(layout.n_mzis))
    X = torch.randn(6, 4, dtype=torch.complex64)
    called = []
    original = mesh_kernel.columns
    mesh_kernel.columns = lambda *a, **k: called.append(1) or original(*a, **k)
    try:
        with plain_ops():
            inside = engine._columns(T, X)
        outside = engine._columns(T, X)
    finally:
        mesh_kernel.columns = original
    assert len(called) == 1  # only the call outside the block
    assert torch.allclose(inside, outside, atol=1e-5)


@needs_kernel
def test_the_fallback_also_routes_fused_phase_gradients(monkeypatch):
    """An MZI that blocks all light (amplitude 0: a singular matrix) straight from mzi_transfer: the
    reconstruction fails and the autograd fallback's dL/dT still reaches theta and phi correctly."""
    from pnnlab.plants.photonics.mesh_engine import _mzi_transfer_autograd

    monkeypatch.setattr(mesh_kernel, "_warned_fallback", True)  # the warning itself is tested above
    layout = Rectangular(6)
    engine = MeshEngine(layout)
    gen = torch.Generator().manual_seed(4)
    theta = torch.rand(layout.n_mzis, generator=gen).requires_grad_(True)
    phi = torch.rand(layout.n_mzis, generator=gen).requires_grad_(True)
    amp = torch.ones(layout.n_mzis)
    amp[3] = 0.0
    x = torch.complex(torch.randn(5, 6, generator=gen), torch.randn(5, 6, generator=gen))
    T = mzi_transfer(theta, phi, amplitude=amp)
    assert mesh_kernel._fusable(T) is not None
    before = mesh_kernel.fallbacks
    got = torch.autograd.grad(engine.apply(x, T).abs().square().sum(), (theta, phi))
    assert mesh_kernel.fallbacks == before + 1
    T_ref = _mzi_transfer_autograd(theta, phi, None, amp, torch.float32).to(torch.complex64)
    with mesh_kernel.disabled():
        want = torch.autograd.grad(engine.apply(x, T_ref).abs().square().sum(), (theta, phi))
    _close(got, want)
