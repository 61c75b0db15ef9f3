"""A compiled CPU kernel for the MZI mesh: the column product ``C_{L-1} ... C_0 X`` and its backward in C.

Why. On a CPU the mesh is bound by per-call overhead and by memory traffic, not by arithmetic: the
column engine and the diamond engine (:mod:`.mesh_engine`, :mod:`.mesh_diamond`) issue hundreds of
PyTorch calls per pass and keep every layer's fields for the backward. This kernel applies the whole
mesh in one call and keeps the fields of a batch slice in the core's cache.

What it computes (exactly the mesh, in float32 arithmetic). The fields ``X`` (``(N, K)``, complex64, one
column per field) are stored *planar* (real and imaginary planes, ``(2, N, K)``, the field index ``k``
innermost, so every MZI is a vectorised loop over ``k``). The MZIs are applied in their phase-vector order
(column by column, top to bottom: ``layout.mzi_column``, ``layout.mzi_top``), which is the mesh's order
of application since the MZIs of one column touch disjoint mode pairs. MZI ``i`` on modes ``(m, m + 1)``
does ``[x_m, x_{m+1}] <- T_i [x_m, x_{m+1}]`` for every field.

Backward (no stored intermediate fields). Walking the MZIs in reverse, the kernel holds the output
rows ``y`` of MZI ``i`` and the gradient ``g`` with respect to them, and in the same loop

    x = T_i^{-1} y            (the field entering MZI i, recovered by inverting its 2x2 matrix),
    dL/dT_i += g x^H          (summed over the fields),
    g <- T_i^H g              (the gradient with respect to the MZI's inputs),

PyTorch's convention for complex gradients (``grad = dL/dRe + i dL/dIm``; for ``y = T x``:
``grad_x = T^H grad_y``, ``grad_T = grad_y x^H``). Recovering ``x`` by inversion is the digital analogue of
time-reversing the light; it is exact up to rounding for the well-conditioned matrices of real MZIs
(lossless MZIs are unitary, a uniform insertion loss scales them). A safety check compares the
recovered mesh input with the saved one: if the relative error exceeds :data:`RECONSTRUCTION_TOL`
(ill-conditioned 2x2 matrices, e.g. a strongly unbalanced arm loss compounded over a deep mesh), the
gradient is recomputed by autograd through ordinary PyTorch operations (the engine's plain path), a
warning says so once and :data:`fallbacks` counts it.

MZI matrices. ``mzi_transfer`` (:mod:`.mesh_engine`) computes its matrices here too on the CPU in
float32 (:func:`mzi_matrices`), with their theta/phi backward. Matrices that go straight from it into
:func:`columns` send their gradient to theta and phi inside the kernel's backward, so dL/dT is never
materialised as a tensor.

Parallelism. The fields (zero-padded to a multiple of :data:`LANES`) are cut into independent chunks of
at most :data:`MAX_CHUNK` fields, shared over ``torch.get_num_threads()`` threads: the caller and
persistent pool threads, each calling the C code on its range of chunks (ctypes releases the GIL; not
OpenMP, whose second runtime beside PyTorch's own spins between calls). Each chunk sums its own
``dL/dT`` partials, summed afterwards. Work buffers are reused across calls (a fresh allocation costs
page faults) under a lock, never shared by two live computations.

Build. The C source below is compiled on first use by :func:`pnnlab._ckernel.build` (the system C
compiler, a cache under ``~/.cache/pnnlab/kernels`` keyed by source, flags and CPU, :mod:`ctypes`). No
compiler, a failed build, a non-CPU device, complex128, or ``PNNLAB_MESH_KERNEL=off`` in the environment:
the engine keeps its PyTorch paths (:func:`available` says which, :func:`status` why).
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import warnings
import weakref

import torch

from ... import _ckernel

__all__ = ["LANES", "MAX_CHUNK", "RECONSTRUCTION_TOL", "available", "columns", "disabled", "mzi_available",
           "mzi_matrices", "status"]

#: vector width of the kernel's inner loops (floats): the batch is zero-padded to a multiple of it
LANES = 16
#: longest chunk of fields (a multiple of LANES; see _chunk), chosen by measurement on this project's 2-core
#: CPU machine (AMD EPYC, AVX-512): 256 ports, batch 256, backward 22 / 11.5 / 7.7 / 6.2 / 5.8 ms for chunks
#: of 16 / 32 / 64 / 128 / 256 fields on one thread
MAX_CHUNK = 256
#: largest relative error of the recovered mesh input (max |x_rec - x| / max |x|) before the backward falls
#: back to the autograd path
RECONSTRUCTION_TOL = 1e-3

_SOURCE = r"""
#include <math.h>
#include <stddef.h>
/* K (fields) is padded to a multiple of W and every row starts 64-byte aligned */
#define W 16
typedef float vf __attribute__((vector_size(4 * W)));
#define V(p) (*(const vf *)__builtin_assume_aligned((p), 64))
#define P(p) (*(vf *)__builtin_assume_aligned((p), 64))
static inline float lanes(vf v)
{
    float t[W];
    __builtin_memcpy(t, &v, sizeof t);
    for (int h = W / 2; h >= 1; h /= 2)
        for (int j = 0; j < h; ++j) t[j] += t[j + h];
    return t[0];
}

/* Planar fields: re plane then im plane, each n_rows x K, row r field k at r*K + k.
   T: 8 floats per MZI (t00 re, im, t01 re, im, t10 re, im, t11 re, im), in order of application. */

typedef struct {
    int n_rows, K, n_mzi, chunk, c0, c1;
    const int *top;
    const float *T;
    float *state, *grad, *gT;
    const float *x;      /* backward: the saved mesh input (complex64, strides xs0, xs1 in elements) */
    long xs0, xs1;
    int k_real;          /* fields before padding */
    float *check;        /* backward: 2 floats per chunk (max error, max |x|) */
} job_t;

static void forward_chunks(const job_t *j)
{
    const int n_rows = j->n_rows, K = j->K, n_mzi = j->n_mzi, chunk = j->chunk;
    const int *top = j->top;
    const float *T = j->T;
    float *R = j->state, *I = j->state + (size_t)n_rows * K;
    for (int c = j->c0; c < j->c1; ++c) {
        int k0 = c * chunk, k1 = k0 + chunk < K ? k0 + chunk : K;
        for (int i = 0; i < n_mzi; ++i) {
            const float *t = T + 8 * (size_t)i;
            const float t00r = t[0], t00i = t[1], t01r = t[2], t01i = t[3];
            const float t10r = t[4], t10i = t[5], t11r = t[6], t11i = t[7];
            float *restrict ar = R + (size_t)top[i] * K, *restrict br = ar + K;
            float *restrict ai = I + (size_t)top[i] * K, *restrict bi = ai + K;
            for (int kb = k0; kb < k1; kb += W) {
                const vf xr = V(ar + kb), xi = V(ai + kb), yr = V(br + kb), yi = V(bi + kb);
                P(ar + kb) = t00r * xr - t00i * xi + t01r * yr - t01i * yi;
                P(ai + kb) = t00r * xi + t00i * xr + t01r * yi + t01i * yr;
                P(br + kb) = t10r * xr - t10i * xi + t11r * yr - t11i * yi;
                P(bi + kb) = t10r * xi + t10i * xr + t11r * yi + t11i * yr;
            }
        }
    }
}

static void backward_chunks(const job_t *j)
{
    const int n_rows = j->n_rows, K = j->K, n_mzi = j->n_mzi, chunk = j->chunk;
    const int *top = j->top;
    const float *T = j->T;
    float *R = j->state, *I = j->state + (size_t)n_rows * K;
    float *GR = j->grad, *GI = j->grad + (size_t)n_rows * K, *gT = j->gT;
    for (int c = j->c0; c < j->c1; ++c) {
        int k0 = c * chunk, k1 = k0 + chunk < K ? k0 + chunk : K;
        float *gTc = gT + (size_t)c * n_mzi * 8;
        for (int i = n_mzi - 1; i >= 0; --i) {
            const float *t = T + 8 * (size_t)i;
            const float t00r = t[0], t00i = t[1], t01r = t[2], t01i = t[3];
            const float t10r = t[4], t10i = t[5], t11r = t[6], t11i = t[7];
            /* U = T^{-1} = adj(T) / det(T) (a singular T gives inf/NaN, caught by the caller's check) */
            const float dr = t00r * t11r - t00i * t11i - (t01r * t10r - t01i * t10i);
            const float di = t00r * t11i + t00i * t11r - (t01r * t10i + t01i * t10r);
            const float d2 = dr * dr + di * di, er = dr / d2, ei = -di / d2;  /* 1 / det */
            const float u00r = t11r * er - t11i * ei, u00i = t11r * ei + t11i * er;
            const float u01r = -(t01r * er - t01i * ei), u01i = -(t01r * ei + t01i * er);
            const float u10r = -(t10r * er - t10i * ei), u10i = -(t10r * ei + t10i * er);
            const float u11r = t00r * er - t00i * ei, u11i = t00r * ei + t00i * er;
            float *restrict ar = R + (size_t)top[i] * K, *restrict br = ar + K;
            float *restrict ai = I + (size_t)top[i] * K, *restrict bi = ai + K;
            float *restrict gar = GR + (size_t)top[i] * K, *restrict gbr = gar + K;
            float *restrict gai = GI + (size_t)top[i] * K, *restrict gbi = gai + K;
            /* two passes over the chunk (it sits in L1/L2) instead of one: each keeps its operands in
               registers (one fused loop needs ~40 vector registers and spills) */
            for (int kb = k0; kb < k1; kb += W) {  /* x = T^{-1} y */
                const vf yar = V(ar + kb), yai = V(ai + kb), ybr = V(br + kb), ybi = V(bi + kb);
                P(ar + kb) = u00r * yar - u00i * yai + u01r * ybr - u01i * ybi;
                P(ai + kb) = u00r * yai + u00i * yar + u01r * ybi + u01i * ybr;
                P(br + kb) = u10r * yar - u10i * yai + u11r * ybr - u11i * ybi;
                P(bi + kb) = u10r * yai + u10i * yar + u11r * ybi + u11i * ybr;
            }
            /* dL/dT += g x^H (eight vector accumulators: GCC/Clang vector extensions keep them in registers,
               lowered to the machine's vector width; summed over lanes once per chunk) and g <- T^H g */
            vf s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, s4 = {0}, s5 = {0}, s6 = {0}, s7 = {0};
            for (int kb = k0; kb < k1; kb += W) {
                const vf xar = V(ar + kb), xai = V(ai + kb), xbr = V(br + kb), xbi = V(bi + kb);
                const vf pr = V(gar + kb), pi = V(gai + kb), qr = V(gbr + kb), qi = V(gbi + kb);
                s0 += pr * xar + pi * xai; s1 += pi * xar - pr * xai;
                s2 += pr * xbr + pi * xbi; s3 += pi * xbr - pr * xbi;
                s4 += qr * xar + qi * xai; s5 += qi * xar - qr * xai;
                s6 += qr * xbr + qi * xbi; s7 += qi * xbr - qr * xbi;
                P(gar + kb) = t00r * pr + t00i * pi + t10r * qr + t10i * qi;
                P(gai + kb) = t00r * pi - t00i * pr + t10r * qi - t10i * qr;
                P(gbr + kb) = t01r * pr + t01i * pi + t11r * qr + t11i * qi;
                P(gbi + kb) = t01r * pi - t01i * pr + t11r * qi - t11i * qr;
            }
            float *o = gTc + 8 * (size_t)i;
            o[0] = lanes(s0); o[1] = lanes(s1); o[2] = lanes(s2); o[3] = lanes(s3);
            o[4] = lanes(s4); o[5] = lanes(s5); o[6] = lanes(s6); o[7] = lanes(s7);
        }
        /* how well the mesh input was recovered: max |x_rec - x| and max |x| (per component) over the
           chunk's real fields; x: complex64, element (r, k) at x + 2 (r xs0 + k xs1) */
        float err = 0.0f, big = 0.0f;
        const int kr = k1 < j->k_real ? k1 : j->k_real;
        for (int r = 0; r < n_rows; ++r)
            for (int k = k0; k < kr; ++k) {
                const float *xv = j->x + 2 * ((size_t)r * j->xs0 + (size_t)k * j->xs1);
                const float er = R[(size_t)r * K + k] - xv[0], ei = I[(size_t)r * K + k] - xv[1];
                const float ae = fmaxf(fabsf(er), fabsf(ei)), ax = fmaxf(fabsf(xv[0]), fabsf(xv[1]));
                err = (ae > err || ae != ae) ? ae : err;  /* NaN propagates */
                big = ax > big ? ax : big;
            }
        j->check[2 * c] = err;
        j->check[2 * c + 1] = big;
    }
}

/* Chunks [c0, c1) of the fields; the caller shares the chunks over its threads. */
void pnn_mesh_forward(int n_rows, int K, int n_mzi, const int *top, const float *T, float *state,
                      int chunk, int c0, int c1)
{
    job_t j = {n_rows, K, n_mzi, chunk, c0, c1, top, T, state, NULL, NULL, NULL, 0, 0, 0, NULL};
    forward_chunks(&j);
}

/* state: in the mesh output Y, out the recovered input X; grad: in dL/dY, out dL/dX;
   gT: n_chunks x n_mzi x 8 partial sums of dL/dT (written, not accumulated). */
void pnn_mesh_backward(int n_rows, int K, int n_mzi, const int *top, const float *T,
                       float *state, float *grad, float *gT, const float *x, long xs0, long xs1, int k_real,
                       float *check, int chunk, int c0, int c1)
{
    job_t j = {n_rows, K, n_mzi, chunk, c0, c1, top, T, state, grad, gT, x, xs0, xs1, k_real, check};
    backward_chunks(&j);
}

/* MZI transfer matrices T = amp (e^{i theta} K1 + K0) diag(e^{i phi}, 1) (see mesh_engine.mzi_transfer) from
   cos/sin of theta and phi; K1, K0: 8 floats per MZI with stride ks (0: one matrix for all); amp: stride as
   (0: one value; NULL: 1). Real arithmetic (no C99 complex: its multiply calls a library routine). */
void pnn_mzi_forward(int n, const float *ct, const float *st, const float *cp, const float *sp,
                     const float *k1, const float *k0, int ks, const float *amp, int as, float *T)
{
    for (int i = 0; i < n; ++i) {
        const float *a1 = k1 + (size_t)ks * i, *a0 = k0 + (size_t)ks * i;
        const float g = amp ? amp[(size_t)as * i] : 1.0f;
        float *t = T + 8 * (size_t)i;
        for (int rc = 0; rc < 4; ++rc) {
            float re = ct[i] * a1[2 * rc] - st[i] * a1[2 * rc + 1] + a0[2 * rc];
            float im = ct[i] * a1[2 * rc + 1] + st[i] * a1[2 * rc] + a0[2 * rc + 1];
            if ((rc & 1) == 0) {  /* column 0: times e^{i phi} */
                const float r2 = re * cp[i] - im * sp[i];
                im = re * sp[i] + im * cp[i];
                re = r2;
            }
            t[2 * rc] = g * re;
            t[2 * rc + 1] = g * im;
        }
    }
}

/* Gradients of theta and phi from G = dL/dT (8 floats per MZI): g = Re sum conj(G) dT/dx with
   dT/dtheta = amp i e^{i theta} K1 (column 0 times e^{i phi}), dT/dphi = i T on column 0. */
void pnn_mzi_backward(int n, const float *ct, const float *st, const float *cp, const float *sp,
                      const float *k1, const float *k0, int ks, const float *amp, int as, const float *G,
                      float *g_theta, float *g_phi)
{
    for (int i = 0; i < n; ++i) {
        const float *a1 = k1 + (size_t)ks * i, *a0 = k0 + (size_t)ks * i;
        const float g = amp ? amp[(size_t)as * i] : 1.0f;
        const float *q = G + 8 * (size_t)i;
        float gt = 0.0f, gp = 0.0f;
        for (int rc = 0; rc < 4; ++rc) {
            /* d = i e^{i theta} K1_rc */
            float pr = ct[i] * a1[2 * rc] - st[i] * a1[2 * rc + 1];
            float pi = ct[i] * a1[2 * rc + 1] + st[i] * a1[2 * rc];
            float dr = -pi, di = pr;
            if ((rc & 1) == 0) {
                float tr = pr + a0[2 * rc], ti = pi + a0[2 * rc + 1];
                const float t2 = tr * cp[i] - ti * sp[i];
                ti = tr * sp[i] + ti * cp[i];
                tr = t2;
                gp += g * (q[2 * rc] * (-ti) + q[2 * rc + 1] * tr);  /* Re conj(G) i T */
                const float d2 = dr * cp[i] - di * sp[i];
                di = dr * sp[i] + di * cp[i];
                dr = d2;
            }
            gt += g * (q[2 * rc] * dr + q[2 * rc + 1] * di);
        }
        g_theta[i] = gt;
        g_phi[i] = gp;
    }
}

int pnn_mesh_kernel_version(void) { return 6; }
"""

_lock = threading.RLock()
_lib = None
_status = "not built yet"
_warned_fallback = False
#: how many backward passes fell back to the autograd path (the reconstruction check failed)
fallbacks = 0


def _build() -> tuple[object | None, str]:
    lib, why = _ckernel.build(_SOURCE, "mesh_kernel", "PNNLAB_MESH_KERNEL")
    if lib is None:
        return None, why
    c_int, c_long, c_fp = ctypes.c_int, ctypes.c_long, ctypes.c_void_p
    signatures = {
        "pnn_mesh_forward": [c_int, c_int, c_int, c_fp, c_fp, c_fp, c_int, c_int, c_int],
        "pnn_mesh_backward": [c_int, c_int, c_int, c_fp, c_fp, c_fp, c_fp, c_fp, c_fp, c_long, c_long, c_int, c_fp,
                              c_int, c_int, c_int],
        "pnn_mzi_forward": [c_int, *([c_fp] * 6), c_int, c_fp, c_int, c_fp],
        "pnn_mzi_backward": [c_int, *([c_fp] * 6), c_int, c_fp, c_int, c_fp, c_fp, c_fp],
    }
    for fname, argtypes in signatures.items():
        fn = getattr(lib, fname)
        fn.argtypes, fn.restype = argtypes, None
    return lib, why


def _library():
    global _lib, _status
    if _lib is None and _status == "not built yet":
        with _lock:
            if _lib is None and _status == "not built yet":
                _lib, _status = _build()
    return _lib


def status() -> str:
    """Why the kernel is or is not used (builds it on first call)."""
    _library()
    return _status


_pool = None  # persistent worker threads (ctypes releases the GIL during the C calls)
_pool_size = 0


def _shared(fn, args: tuple, n_chunks: int, threads: int) -> None:
    """Run ``fn(*args, c0, c1)`` over the chunks, split into ``threads`` contiguous ranges: the calling
    thread takes the first, persistent pool threads the others (POSIX threads started per call gave no
    speed-up on calls of about a millisecond here)."""
    global _pool, _pool_size
    threads = max(1, min(threads, n_chunks))
    bounds = [n_chunks * t // threads for t in range(threads + 1)]
    if threads == 1:
        fn(*args, 0, n_chunks)
        return
    with _lock:
        if _pool is None or _pool_size < threads - 1:
            from concurrent.futures import ThreadPoolExecutor

            _pool, _pool_size = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="pnnlab-mesh"), \
                threads - 1
    futures = [_pool.submit(fn, *args, bounds[t], bounds[t + 1]) for t in range(1, threads)]
    fn(*args, bounds[0], bounds[1])
    for f in futures:
        f.result()


_off_depth = 0  # open disabled() blocks


@contextlib.contextmanager
def disabled():
    """Within this block the mesh engine does not use the kernel (its PyTorch paths run instead): for
    comparisons and tests."""
    global _off_depth
    _off_depth += 1
    try:
        yield
    finally:
        _off_depth -= 1


def _usable(*tensors: torch.Tensor) -> bool:
    """Not :func:`disabled`, every tensor on the CPU, and the kernel built."""
    return _off_depth == 0 and all(t.device.type == "cpu" for t in tensors) and _library() is not None


def available(T: torch.Tensor, X: torch.Tensor) -> bool:
    """True when :func:`columns` can run these tensors: the kernel built, not :func:`disabled`, CPU
    tensors, complex64, a non-empty batch."""
    return (T.dtype == torch.complex64 and X.dtype == torch.complex64 and X.numel() > 0 and T.shape[0] > 0
            and _usable(T, X))


def _chunk(k: int) -> int:
    """Fields per chunk: the padded batch, in chunks of at most :data:`MAX_CHUNK`. A batch is not cut finer
    to give every thread a chunk: short chunks cost more per MZI, and on this project's 2-core machine two
    threads of 128 fields ran no faster than one of 256 (256 ports: forward 1.43 against 1.36 ms,
    backward 6.6 against 5.6 ms). Larger batches are shared over the threads chunk by chunk."""
    return min(MAX_CHUNK, -(-k // LANES) * LANES)


class _Lease:
    """Held by whoever uses a cached buffer (an autograd graph, or a backward while it runs)."""

    __slots__ = ("__weakref__",)


_buffers: dict = {}  # (tag, shape) -> (buffer, weak reference to its current lease)


def _buffer(tag: str, shape: tuple[int, ...]) -> tuple[torch.Tensor, _Lease]:
    """A float32 CPU buffer of ``shape`` reused across calls while nobody holds its lease: on the machines
    this was measured on, a fresh allocation above ~256 KB costs milliseconds (new pages), more than the
    kernel itself. Keep the returned lease as long as the buffer is in use."""
    key = (tag, shape)
    with _lock:  # threads (a plant server's workers, say) must never share a buffer
        entry = _buffers.get(key)
        if entry is not None and entry[1]() is None:
            buf = entry[0]
        else:
            buf = _aligned(shape)
        lease = _Lease()
        _buffers[key] = (buf, weakref.ref(lease))
    return buf, lease


def _aligned(shape: tuple[int, ...]) -> torch.Tensor:
    """An uninitialised float32 CPU tensor whose data start on a 64-byte boundary (the C code loads whole
    vectors from every row; PyTorch aligns its CPU allocations so, this only makes sure)."""
    numel = 1
    for d in shape:
        numel *= d
    with torch.inference_mode(False):  # a normal tensor, reusable inside and outside inference mode
        raw = torch.empty(numel + 16, dtype=torch.float32, device="cpu")
    skip = (-raw.data_ptr() % 64) // 4
    return raw[skip:skip + numel].view(shape)


def _to_planar(Z: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Write (N, K) complex64 ``Z`` into ``out`` ((2, N, k_pad) float32: real plane, imaginary plane),
    zero padded."""
    k = Z.shape[1]
    out[:, :, :k].copy_(torch.view_as_real(Z.resolve_conj()).permute(2, 0, 1))
    if out.shape[2] > k:
        out[:, :, k:].zero_()
    return out


def _coefficients(T: torch.Tensor) -> torch.Tensor:
    """Complex ``T`` as contiguous float32 (re, im) pairs in its element order (8 floats per 2x2 matrix)."""
    return torch.view_as_real(T.to(torch.complex64).resolve_conj().contiguous()).reshape(-1)


def _forward(lib, state: torch.Tensor, coef: torch.Tensor, top: torch.Tensor, chunk: int, threads: int) -> None:
    """The mesh applied in place to the planar fields ``state`` ((2, N, k_pad))."""
    n, k_pad = state.shape[1], state.shape[2]
    _shared(lib.pnn_mesh_forward, (n, k_pad, top.shape[0], top.data_ptr(), coef.data_ptr(), state.data_ptr(), chunk),
            k_pad // chunk, threads)


class _Columns(torch.autograd.Function):
    @staticmethod
    def forward(ctx, T, X, theta, phi, top, fallback, pack):
        lib = _library()
        T = T.detach()
        n, k = X.shape
        chunk = _chunk(k)
        state, ctx.lease = _buffer("state", (2, n, -(-k // chunk) * chunk))  # leased until this graph is freed
        _to_planar(X.detach(), state)
        _forward(lib, state, _coefficients(T), top, chunk, max(1, torch.get_num_threads()))
        ctx.save_for_backward(T, X.detach(), top)
        ctx.state, ctx.fallback, ctx.chunk, ctx.consumed, ctx.pack = state, fallback, chunk, False, pack
        return torch.complex(state[0, :, :k], state[1, :, :k])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gY):
        global _warned_fallback, fallbacks
        T, X, top = ctx.saved_tensors
        n, k = X.shape
        state, chunk = ctx.state, ctx.chunk
        k_pad = state.shape[2]
        lib = _library()
        threads = max(1, torch.get_num_threads())
        coef = _coefficients(T)  # held: the C calls read its memory
        if ctx.consumed:  # a second backward (retain_graph=True): the first recovered X in place; redo Y
            _forward(lib, _to_planar(X, state), coef, top, chunk, threads)
        ctx.consumed = True
        # the leases below hold the work buffers until this function returns
        grad, _lease_g = _buffer("grad", state.shape)
        _to_planar(gY.to(torch.complex64), grad)
        gT, _lease_t = _buffer("gT", (k_pad // chunk, T.shape[0], 8))
        check, _lease_c = _buffer("check", (k_pad // chunk, 2))
        Xr = X.resolve_conj()
        _shared(lib.pnn_mesh_backward, (n, k_pad, T.shape[0], top.data_ptr(), coef.data_ptr(), state.data_ptr(),
                                        grad.data_ptr(), gT.data_ptr(), Xr.data_ptr(), Xr.stride(0), Xr.stride(1),
                                        k, check.data_ptr(), chunk), k_pad // chunk, threads)
        scale = float(check[:, 1].max())
        err = float(check[:, 0].max()) / scale if scale > 0 else 0.0
        if err <= RECONSTRUCTION_TOL:
            G = gT[0] if gT.shape[0] == 1 else gT.sum(0)  # dL/dT, 8 floats per MZI
            gX = torch.complex(grad[0, :, :k], grad[1, :, :k])
        else:  # also NaN (a singular MZI matrix): the same gradients by autograd
            fallbacks += 1
            if not _warned_fallback:
                _warned_fallback = True
                warnings.warn(f"mesh kernel: the mesh input recovered by inverting the MZI matrices is off by "
                              f"{err:.1e} (relative; tolerance {RECONSTRUCTION_TOL:g}): ill-conditioned MZI "
                              f"matrices. This and later such gradients are recomputed by the autograd path.",
                              RuntimeWarning, stacklevel=2)
            with torch.enable_grad():
                Tg = T.clone().requires_grad_(True)
                Xg = X.clone().requires_grad_(True)
                gT_, gX = torch.autograd.grad(ctx.fallback(Tg, Xg), (Tg, Xg), gY)
            G = _coefficients(gT_)
        if ctx.pack is not None:  # straight to the phases: dL/dT is never materialised as a complex tensor
            return (None, gX, *_mzi_grads(ctx.pack, G), None, None, None)
        return torch.view_as_complex(G.reshape(T.shape[0], 2, 2, 2).clone()), gX, None, None, None, None, None


def mzi_available(theta: torch.Tensor) -> bool:
    """True when :func:`mzi_matrices` can run: the kernel built, not :func:`disabled`, CPU float32 phases."""
    return theta.dtype == torch.float32 and _usable(theta)


def _flat_constant(k: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(n, 2, 2) or (2, 2) complex coupler constants -> (float32 buffer, stride in floats per MZI)."""
    return _coefficients(k), (0 if k.ndim == 2 else 8)


def _mzi_pack(theta, phi, k1, k0, amp) -> tuple:
    """What the C MZI routines read: cos/sin of the phases, the coupler constants, the amplitudes."""
    trig = torch.stack([torch.cos(theta), torch.sin(theta), torch.cos(phi), torch.sin(phi)]).detach()
    (f1, s1), (f0, _) = _flat_constant(k1), _flat_constant(k0)
    if amp is None:
        a, a_stride = None, 0
    else:
        a = amp.detach().to(torch.float32).reshape(-1).contiguous()
        a_stride = 0 if a.numel() == 1 else 1
    return trig, f1, f0, a, s1, a_stride


def _mzi_grads(pack, G: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dL/dtheta, dL/dphi) from dL/dT as 8 floats per MZI (contiguous float32)."""
    trig, f1, f0, a, s1, a_stride = pack
    n = trig.shape[1]
    g_theta = torch.empty(n, dtype=torch.float32, device="cpu")
    g_phi = torch.empty(n, dtype=torch.float32, device="cpu")
    _library().pnn_mzi_backward(n, trig[0].data_ptr(), trig[1].data_ptr(), trig[2].data_ptr(), trig[3].data_ptr(),
                                f1.data_ptr(), f0.data_ptr(), s1, None if a is None else a.data_ptr(), a_stride,
                                G.data_ptr(), g_theta.data_ptr(), g_phi.data_ptr())
    return g_theta, g_phi


class _MZI(torch.autograd.Function):
    @staticmethod
    def forward(ctx, theta, phi, pack):
        trig, f1, f0, a, s1, a_stride = pack
        n = theta.shape[0]
        T = torch.empty(n, 2, 2, dtype=torch.complex64, device="cpu")
        _library().pnn_mzi_forward(n, trig[0].data_ptr(), trig[1].data_ptr(), trig[2].data_ptr(),
                                   trig[3].data_ptr(), f1.data_ptr(), f0.data_ptr(), s1,
                                   None if a is None else a.data_ptr(), a_stride, T.data_ptr())
        ctx.pack = pack
        return T

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gT):
        g_theta, g_phi = _mzi_grads(ctx.pack, _coefficients(gT))
        return (g_theta if ctx.needs_input_grad[0] else None, g_phi if ctx.needs_input_grad[1] else None, None)


def mzi_matrices(theta: torch.Tensor, phi: torch.Tensor, k1: torch.Tensor, k0: torch.Tensor,
                 amp: torch.Tensor | None) -> torch.Tensor:
    """``amp (e^{i theta} K1 + K0) diag(e^{i phi}, 1)`` per MZI, ``(n, 2, 2)`` complex64, by the compiled
    kernel, differentiable in ``theta`` and ``phi`` (float32 CPU, shape ``(n,)``); ``k1``, ``k0``: ``(n, 2, 2)``
    or one ``(2, 2)`` for all; ``amp``: None, a 0-d or an ``(n,)``-element tensor (no gradient).

    The result remembers its phases (``T._pnn_mzi``): when it goes straight into the mesh kernel
    (:func:`columns`), the backward sends the gradient to theta and phi without materialising dL/dT."""
    pack = _mzi_pack(theta, phi, k1, k0, amp)
    T = _MZI.apply(theta, phi, pack)
    if T.grad_fn is not None:  # only a graph has gradients to route (inference tensors have no version)
        T._pnn_mzi = (theta, phi, pack, T.grad_fn, T._version)
    return T


def _fusable(T: torch.Tensor):
    """The phases behind ``T`` if it is an unmodified output of :func:`mzi_matrices`, else None."""
    info = getattr(T, "_pnn_mzi", None)
    if info is None or T.grad_fn is None or T.grad_fn is not info[3] or T._version != info[4]:
        return None
    return info[:3]


def columns(T: torch.Tensor, X: torch.Tensor, top: torch.Tensor, fallback) -> torch.Tensor:
    """``M_{n-1} ... M_0 X`` for the MZI matrices ``T`` (``(n, 2, 2)`` complex64, in order of application)
    acting on the mode pairs ``(top[i], top[i] + 1)`` of the fields ``X`` (``(N, K)`` complex64, CPU),
    differentiable in ``T`` and ``X``. ``top``: int32 CPU tensor; ``fallback(T, X)``: the same product by
    differentiable PyTorch operations (used for the backward when the reconstruction check fails)."""
    if top.dtype != torch.int32 or not top.is_contiguous():
        raise ValueError("internal: top must be a contiguous int32 tensor")
    fused = _fusable(T)
    if fused is None:
        return _Columns.apply(T, X, None, None, top, fallback, None)
    theta, phi, pack = fused
    return _Columns.apply(T.detach(), X, theta, phi, top, fallback, pack)
