"""The universal auto-oscillator model of spin-torque nano-oscillators (STNOs), integrated over a batch.

Source: A. Slavin & V. Tiberkevich, "Nonlinear auto-oscillator theory of microwave generation by
spin-polarized current", IEEE Trans. Magn. 45, 1875-1918 (2009), doi:10.1109/TMAG.2008.2009935.
Each oscillator is one complex amplitude c (power p = |c|^2, dimensionless) obeying::

    dc_i/dt = -i w_i(p_i) c_i - G+_i(p_i) c_i + G-_i(p_i) c_i + sum_j K_ij c_j + f(t) + f_n,i(t)

    w_i(p)  = w0_i + N_i p                  (nonlinear frequency shift N)
    G+_i(p) = G_G (1 + Q p)                 (positive, Gilbert-like damping, nonlinear damping Q)
    G-_i(p) = sigma_i I_i (1 - p)           (negative damping by the spin-transfer torque of the DC current I)
    f(t)    = sum_d F_d exp(-i w_d t)       (external microwave drives, the same at every oscillator)
    <f_n(t) f_n*(t')> = 2 D delta(t - t'),  D = G_G * eta   (thermal noise, eta = k_B T / E_0)

Steady free-running state (G+ = G-): threshold current I_th = G_G / sigma, supercriticality
zeta = I / I_th and power ``p0 = (zeta - 1) / (zeta + Q)`` at frequency ``w0 + N p0``.
Amplitude-phase coupling ``nu = N / (G_G Q + sigma I)`` (the derivative of G+ - G- with p).
A weak drive F locks the oscillator when ``|w_d - w(p0)| < F sqrt(1 + nu^2) / sqrt(p0)`` (the half-width
of the locking band, Slavin & Tiberkevich section VII); thermal noise makes the phase diffuse, its variance
growing as ``(D / p0) (1 + nu^2) t`` at long times (the generation linewidth, which thus grows linearly with
the temperature, their section VI).

Units: time in ns, angular frequencies in rad/ns (1 rad/ns = 159.15 MHz), currents in mA, powers and
amplitudes dimensionless (p = 1 is the model's saturation power).

Scheme: fixed-step integrating-factor (Lawson) RK4 in a frame rotating at a reference angular frequency
``w_ref`` (c = a exp(-i w_ref t)), which removes the ~2 rad/ns carrier; each oscillator's remaining linear
rotation, w0_i - w_ref + N_i p_i(0), is integrated exactly (the factor exp(-i (w0_i - w_ref + N_i p_i(0)) h)),
and RK4 handles the rest (gain and loss, the frequency shift N (p - p(0)), coupling, drives), so the step
only has to resolve the locking dynamics (MHz), not the detunings (tens of MHz); the thermal noise is added after each deterministic RK4 step as a complex
Wiener increment of variance 2 D h (additive noise: strong order 1, deterministic part order 4; the test
suite checks the fourth-order convergence of the noiseless scheme). The measured frequency of each
oscillator is its mean angular frequency over a read-out window after a transient:
``w_meas = w_ref - (sum_k arg(a_{k+1} conj(a_k))) / T_window`` (differentiable).

Simplifications: rotating-wave approximation for the drives (no counter-rotating terms) and for the
coupling (a constant complex matrix K, "electrical" coupling through the shared microwave line with a
phase, Slavin & Tiberkevich section IX); one noise strength D = G_G eta instead of G+(p0) eta; the
oscillators start on their design free-running orbit with fixed phases 2 pi i / N.
"""

from __future__ import annotations

import math

import torch

from ... import devices

TWO_PI = 2.0 * math.pi


def free_running_power(current_mA, *, threshold_mA, nonlinear_damping: float):
    """p0 = (zeta - 1) / (zeta + Q), zeta = I / I_th; zero below threshold. Works on floats and tensors."""
    zeta = current_mA / threshold_mA
    if isinstance(zeta, torch.Tensor):
        return ((zeta - 1.0) / (zeta + nonlinear_damping)).clamp_min(0.0)
    return max(0.0, (zeta - 1.0) / (zeta + nonlinear_damping))


def locking_half_width(*, drive: float, p0: float, nonlinear_shift: float, damping: float,
                       nonlinear_damping: float, sigma_current: float) -> float:
    """Half-width (rad/ns) of the injection-locking band, F sqrt(1 + nu^2) / sqrt(p0) with
    nu = N / (G_G Q + sigma I) (Slavin & Tiberkevich 2009, section VII)."""
    nu = nonlinear_shift / (damping * nonlinear_damping + sigma_current)
    return drive * math.sqrt(1.0 + nu * nu) / math.sqrt(p0)


def _rk4_step(a, t, h, rhs):
    k1 = rhs(a, t)
    k2 = rhs(a + 0.5 * h * k1, t + 0.5 * h)
    k3 = rhs(a + 0.5 * h * k2, t + 0.5 * h)
    k4 = rhs(a + h * k3, t + h)
    return a + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def _noise(shape, *, strength: float, h: float, generator, dtype, device) -> torch.Tensor:
    """Complex Wiener increment with <|dW|^2> = 2 D h, drawn through pnnlab.devices (the same numbers on
    every device for a given generator state)."""
    if generator is None:
        raise ValueError("thermal noise needs a generator (the plant passes its per-call or own generator).")
    real = devices.randn(shape, generator=generator, device=device, dtype=dtype)
    imag = devices.randn(shape, generator=generator, device=device, dtype=dtype)
    return math.sqrt(strength * h) * torch.complex(real, imag)


def simulate_array(drive_frequencies_ghz: torch.Tensor, current_mA: torch.Tensor, *, omega0: torch.Tensor,
                   shift: torch.Tensor, sigma: torch.Tensor, damping: float, nonlinear_damping: float,
                   coupling: torch.Tensor, drive_amplitudes: torch.Tensor, reference_ghz: float,
                   transient_ns: float, window_ns: float, step_ns: float, noise: float = 0.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Measured frequencies (GHz), shape (batch, N), of N coupled oscillators under constant DC currents
    ``current_mA`` (N,) and drives at ``drive_frequencies_ghz`` (batch, n_drives) with amplitudes
    ``drive_amplitudes`` (n_drives,) rad/ns. ``omega0``, ``shift`` (rad/ns) and ``sigma`` (rad/ns/mA)
    have shape (N,), ``coupling`` is the complex (N, N) matrix K (zero diagonal). ``noise`` is D
    (1/ns). Differentiable in the drive frequencies, the currents and every parameter."""
    real = drive_frequencies_ghz.dtype
    cdtype = torch.complex128 if real == torch.float64 else torch.complex64
    batch, n = drive_frequencies_ghz.shape[0], omega0.shape[0]
    w_ref = TWO_PI * float(reference_ghz)
    detuning_drive = TWO_PI * drive_frequencies_ghz - w_ref            # (batch, n_drives)
    growth = sigma * current_mA - damping                                # sigma I - G_G, (N,)
    p_sat = sigma * current_mA + damping * nonlinear_damping             # sigma I + G_G Q, (N,)
    lin_freq = omega0 - w_ref                                            # (N,)
    k_t = coupling.to(cdtype).transpose(0, 1)
    amps = drive_amplitudes.to(real)

    p_start = (growth / p_sat).clamp_min(1e-3).detach()
    # linear part, integrated exactly (Lawson / integrating-factor RK4): each oscillator's rotation at its
    # linear detuning plus N times its initial power; the rest (growth, the power-dependent remainder of
    # the frequency, coupling, drives) is the RK4 part
    spin = -(lin_freq + shift * p_start)                                 # (N,) rad/ns
    h = float(step_ns)
    e_half = torch.polar(torch.ones_like(spin), spin * (0.5 * h)).to(cdtype)
    e_full = e_half * e_half

    def rhs(a, t):
        p = a.real.square() + a.imag.square()
        rate = torch.complex(growth - p_sat * p, -shift * (p - p_start))
        force = torch.polar(amps.expand_as(detuning_drive), -detuning_drive * t).sum(dim=1, keepdim=True)
        return rate * a + a @ k_t + force

    device = drive_frequencies_ghz.device
    phase0 = TWO_PI * torch.arange(n, dtype=real, device=device) / n
    a = torch.polar(p_start.sqrt().to(real), phase0).expand(batch, n).to(cdtype)
    n_transient = int(round(float(transient_ns) / h))
    n_window = int(round(float(window_ns) / h))
    phase = torch.zeros(batch, n, dtype=real, device=device)
    t = 0.0
    for k in range(n_transient + n_window):
        k1 = rhs(a, t)
        k2 = rhs(e_half * (a + (0.5 * h) * k1), t + 0.5 * h)
        k3 = rhs(e_half * a + (0.5 * h) * k2, t + 0.5 * h)
        k4 = rhs(e_full * a + h * e_half * k3, t + h)
        new = e_full * a + (h / 6.0) * (e_full * k1 + 2.0 * e_half * (k2 + k3) + k4)
        if noise:
            new = new + _noise((batch, n), strength=noise, h=h, generator=generator, dtype=real, device=device)
        if k >= n_transient:
            phase = phase + torch.angle(new * a.conj())
        a, t = new, t + h
    window = n_window * h
    return (w_ref - phase / window) / TWO_PI


def simulate_reservoir(current_mA: torch.Tensor, *, omega0: float, shift: float, sigma: float, damping: float,
                       nonlinear_damping: float, node_ns: float, step_ns: float, noise: float = 0.0,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Power p (batch, n_nodes) of one free-running oscillator at the end of each of ``n_nodes``
    intervals of ``node_ns`` during which the DC current is ``current_mA[:, k]`` (time multiplexing,
    Torrejon et al. 2017). The oscillator starts on its free-running orbit at the first current. Integrated in
    the frame rotating at ``omega0`` (the frequency does not change p without drive or coupling)."""
    real = current_mA.dtype
    cdtype = torch.complex128 if real == torch.float64 else torch.complex64
    batch, n_nodes = current_mA.shape
    h = float(step_ns)
    per_node = max(1, int(round(float(node_ns) / h)))
    growth_all = sigma * current_mA - damping
    p_sat_all = sigma * current_mA + damping * nonlinear_damping
    p_start = (growth_all[:, 0] / p_sat_all[:, 0]).clamp_min(1e-3).detach()
    a = p_start.sqrt().to(cdtype).unsqueeze(1)
    out = []
    t = 0.0
    for node in range(n_nodes):
        growth = growth_all[:, node:node + 1]
        p_sat = p_sat_all[:, node:node + 1]

        def rhs(z, _t, growth=growth, p_sat=p_sat):
            p = z.real.square() + z.imag.square()
            return (growth - p_sat * p) * z  # the phase does not feed back on p: no rotation integrated

        for _ in range(per_node):
            a = _rk4_step(a, t, h, rhs)
            if noise:
                a = a + _noise((batch, 1), strength=noise, h=h, generator=generator, dtype=real,
                               device=current_mA.device)
            t += h
        out.append(a.real.square() + a.imag.square())
    return torch.cat(out, dim=1)
