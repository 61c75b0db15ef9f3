"""Delay-based reservoir: one Mackey-Glass nonlinear node with delayed feedback and time-multiplexed
virtual nodes.

Source: L. Appeltant, M. C. Soriano, G. Van der Sande, J. Danckaert, S. Massar, J. Dambre,
B. Schrauwen, C. R. Mirasso & I. Fischer, "Information processing using a single dynamical node as
complex system", Nat. Commun. 2, 468 (2011), doi:10.1038/ncomms1476.

Physics (time in units of the node's response time; vectorised over the batch of series)::

    dX/dt = -X(t) + eta * F(X(t - tau) + gamma * J(t) + beta),      F(s) = s / (1 + |s|^p)

* one nonlinear node X with a delay loop of length ``tau``; the feedback strength ``eta``, the
  input scaling ``gamma`` and the DC bias ``beta`` of the node's input (its operating point) are the
  controls a lab tunes (all trainable, see below);
* time multiplexing: every input step k lasts one delay period ``N * theta``, divided into
  ``N = n_virtual`` intervals of length ``theta``; during interval i the input is
  ``J = sum_d mask[i, d] u_k[d]`` (sample and hold), with a fixed random binary mask of +-1 drawn
  from the plant's seed (a design value, known to the twins; not trainable);
* virtual node i of step k is the node state X sampled at the end of interval i: the read-out gives
  ``N`` states per input step. Nodes are coupled through the delay (node i feels its own value one
  period ago) and, when ``theta`` is short against the response time, through the node's inertia
  (node i starts where node i - 1 ended, so it keeps a fraction ``exp(-theta)`` of it);
* at rest before the series: the delay line holds ``initial_state`` (default 0, the fixed point of
  F at zero input);
* design delay ``tau = (N + desync_nodes) theta``: ``desync_nodes = 0`` is Appeltant's synchronised
  loop; ``desync_nodes = 1`` the desynchronised loop of Paquot et al., Sci. Rep. 2, 287 (2012),
  doi:10.1038/srep00287, where node i feels node i - 1 of the previous step (a ring of virtual nodes).

Appeltant et al. use ``N = 400``, ``theta = 0.2`` (so ``tau = N theta = 80``), ``eta = 0.4``,
``gamma = 0.05`` and ``p = 1`` for NARMA10, with a random mask of levels +-0.1 (values as used by
public reproductions of their numerical study, e.g. github.com/mtzoufras/Echo_State_Network_with_a_single_dynamical_node
and P. Jacobson's DelayReservoir code; the paper's text was not accessible here; its NARMA10 NRMSE is
quoted as about 0.12-0.15 in ``REFERENCES.md``). This plant's mask is +-1, so its ``gamma`` is the
paper's ``gamma`` times the mask level: Appeltant's 0.05 x 0.1 is ``gamma = 0.005`` here.

The operating point (``beta``). Mackey-Glass's F is defined for s >= 0; this plant continues it to
s < 0 as an odd function (``|s|^p``), which keeps F bounded for every control (a physical circuit does
not blow up), but which has no even (quadratic) term at s = 0: F(s) = s - s|s| + ... for p = 1. With
``beta = 0``, ``eta < 1`` (fixed point X* = 0) and a +-mask, the node input s changes sign from one
virtual node to the next, so the products u(k) u(k - l) a task such as NARMA10 needs are missing
(NARMA10 NRMSE 0.3-0.45 at Appeltant's values). Appeltant's own F(s) = s / (1 + s) at p = 1 expands
as s - s^2 + ... on both sides of 0. A bias ``beta`` larger than the input amplitude ``gamma max|J|``
keeps s > 0, on Mackey-Glass's own branch, and restores that quadratic term: the small-signal regime
of the paper (NARMA10 test NRMSE 0.129 +- 0.003 desynchronised, 0.142 +- 0.008 in Appeltant's
loop, 400 nodes, ``benchmarks/bench_reservoir_narma.py``).

Integration scheme: exponential Euler with the drive held over each step. The step is
``h = theta / substeps``; with ``a = exp(-h)``,
``X_{n+1} = a X_n + (1 - a) eta F((X_{n-D} + X_{n+1-D}) / 2 + gamma J_n + beta)`` (+ noise), where
``D = round(tau / h)`` is the delay in steps: the linear decay is integrated exactly and the delayed
feedback is held at the mean of its values at the two ends of the step (its error is second order in
h; with ``substeps = 1`` node i of step k feels the mean of virtual nodes i - 1 and i of step k - 1).
Because every delayed value a block of ``D`` steps needs lies in the past, each block is one linear
recurrence, solved at once with a cumulative sum (blocks are capped so that ``exp(h L) <= exp(30)``,
float64 throughout).

Hidden truth (each off by default, :class:`NodeError`, ``delay_mismatch``, ``process_noise``,
``detection_noise``):

* node nonlinearity error: the circuit's exponent is ``p + exponent_error`` and its gain
  ``eta (1 + gain_error)`` (component tolerances of an electronic Mackey-Glass circuit);
* delay mismatch: the delay loop is ``tau = (N + desync_nodes) theta + delay_mismatch`` (a cable or
  fibre cut to the wrong length, a clock off from the loop), rounded to the integration step; the virtual nodes then
  drift against the input clock and neighbouring nodes couple through the delay;
* process noise: an Ornstein-Uhlenbeck term ``sigma dW`` in the node equation (electronic noise; the
  exact discretisation adds ``sigma sqrt((1 - a^2) / 2)`` times a unit normal per step);
* detection noise: additive Gaussian noise on every sampled node state (the digitiser).

Both noises are drawn from the per-call generator. ``nominal_twin()`` integrates the design equation
(``p``, ``eta``, ``tau = N theta``); ``true_twin()`` the hidden one with both noises off. Both are
differentiable in ``eta``, ``gamma`` and the input (in-silico training, PAT).

Simplifications: a scalar node (no second time scale, no band-pass filter of optoelectronic
reservoirs); the input is held exactly over each interval (no finite bandwidth of the modulator);
``|s|^p`` in the denominator keeps F defined and bounded for negative arguments (the circuit's
response for ``s < 0`` is assumed odd; see the operating point above); no drift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ... import devices
from ..._validation import check_finite_float, check_int, check_nonnegative, check_positive
from ...metering import CostModel
from ...twins.base import Twin
from ..base import ControlSpec, Plant
from ..capabilities import Dynamical, Simulated

__all__ = ["DelayReservoirPlant", "DelayReservoirTwin", "NodeError", "mackey_glass", "integrate_delay_reservoir"]

#: largest exp(h L) of one solved block (keeps the cumulative-sum recurrence well inside float64)
_BLOCK_LOG_GROWTH = 30.0


@dataclass(frozen=True)
class NodeError:
    """Hidden error of the nonlinear node: exponent ``p + exponent_error``, gain ``eta (1 + gain_error)``."""

    exponent_error: float = 0.0
    gain_error: float = 0.0

    def __post_init__(self) -> None:
        check_finite_float("NodeError.exponent_error", self.exponent_error)
        g = check_finite_float("NodeError.gain_error", self.gain_error)
        if g <= -1.0:
            raise ValueError(f"NodeError.gain_error must be > -1 (the gain stays positive), got {g}; typical "
                             f"component tolerances are a few per cent (0.05).")


def mackey_glass(s: torch.Tensor, p: float) -> torch.Tensor:
    """F(s) = s / (1 + |s|^p), the Mackey-Glass nonlinearity (Appeltant 2011, eq. 1, with |s|)."""
    return s / (1.0 + s.abs().pow(p))


def integrate_delay_reservoir(drive: torch.Tensor, *, eta: torch.Tensor, gamma: torch.Tensor, p: float,
                              theta: float, substeps: int, delay_steps: int, initial_state: float = 0.0,
                              bias: torch.Tensor | float = 0.0, process_noise: float = 0.0,
                              generator: torch.Generator | None = None) -> torch.Tensor:
    """Node trajectory for the masked input ``drive`` (batch, T, N): the value J held during each of
    the N virtual-node intervals of each input step. Returns the virtual-node states (batch, T, N)
    (the node sampled at the end of every interval), float64, differentiable in everything.

    ``eta`` is the effective gain (gain error included), ``bias`` the DC offset beta of the node's
    input and ``delay_steps`` the delay ``D`` in integration steps ``h = theta / substeps``. Computes on
    ``drive``'s device; ``generator`` (process noise) may live on another (see :mod:`pnnlab.devices`)."""
    batch, length, n = drive.shape
    h = theta / substeps
    a = math.exp(-h)
    total = length * n * substeps
    j = drive.to(torch.float64).reshape(batch, length * n).repeat_interleave(substeps, dim=1)
    device = drive.device
    eta = torch.as_tensor(eta, dtype=torch.float64, device=device)
    gamma = torch.as_tensor(gamma, dtype=torch.float64, device=device)
    bias = torch.as_tensor(bias, dtype=torch.float64, device=device)
    block_cap = max(1, int(_BLOCK_LOG_GROWTH / h))
    noise_scale = process_noise * math.sqrt((1.0 - a * a) / 2.0)
    # recent[:, i] = X_{n0 - D + i}, i = 0..D (the delay line plus the present value X_{n0})
    recent = torch.full((batch, delay_steps + 1), float(initial_state), dtype=torch.float64, device=device)
    out = []
    n0 = 0
    while n0 < total:
        length_block = min(delay_steps, block_cap, total - n0)
        # (X_{n0-D+l} + X_{n0-D+l+1}) / 2, l = 0..L-1: all in the past (L <= D)
        delayed = 0.5 * (recent[:, :length_block] + recent[:, 1:length_block + 1])
        g = (1.0 - a) * eta * mackey_glass(delayed + gamma * j[:, n0:n0 + length_block] + bias, p)
        if noise_scale:
            g = g + noise_scale * devices.randn(g.shape, generator=generator, device=device, dtype=torch.float64)
        # X_{n0+l+1} = a X_{n0+l} + g_l  =>  X_{n0+l+1} = a^{l+1} (X_{n0} + sum_{m<=l} a^{-(m+1)} g_m)
        steps = torch.arange(1, length_block + 1, dtype=torch.float64, device=device)
        grow = torch.exp(h * steps)  # a^{-(l+1)}
        new = (recent[:, -1:] + torch.cumsum(g * grow, dim=1)) / grow
        out.append(new)
        recent = torch.cat([recent[:, length_block:], new], dim=1)
        n0 += length_block
    x = torch.cat(out, dim=1)  # X_1 .. X_total
    return x[:, substeps - 1::substeps].reshape(batch, length, n)


def _mask(n_virtual: int, input_dim: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.where(devices.rand((n_virtual, input_dim), generator=g, device="cpu") < 0.5, -1.0, 1.0)


class DelayReservoirTwin(Twin):
    """Differentiable delay reservoir: flat series (batch, steps * input_dim) -> flattened virtual-node
    states (batch, steps * n_virtual). ``delay_mismatch`` (the delay minus N theta) and ``node_error``
    are the twin's belief (the design delay and no error for the nominal twin, the hidden values for the
    true twin)."""

    def __init__(self, *, mask: torch.Tensor, steps: int, theta: float, substeps: int, exponent: float,
                 node_error: NodeError = NodeError(), delay_mismatch: float = 0.0,
                 initial_state: float = 0.0) -> None:
        n_virtual, input_dim = mask.shape
        super().__init__(in_features=steps * input_dim, out_features=steps * n_virtual)
        self.register_buffer("mask", mask.clone())
        self.steps, self.input_dim, self.n_virtual = steps, input_dim, n_virtual
        self.theta, self.substeps, self.exponent = theta, substeps, exponent
        self.node_error, self.delay_mismatch, self.initial_state = node_error, delay_mismatch, initial_state

    def forward(self, x, controls):
        u = x.reshape(x.shape[0], self.steps, self.input_dim)
        states = run_reservoir(u, controls, mask=self.mask, theta=self.theta, substeps=self.substeps,
                               exponent=self.exponent, node_error=self.node_error,
                               delay_mismatch=self.delay_mismatch, initial_state=self.initial_state)
        return states.reshape(x.shape[0], -1).to(x.dtype)


def delay_steps_for(n_virtual: int, theta: float, substeps: int, delay_mismatch: float) -> int:
    """The delay ``tau = N theta + delay_mismatch`` in integration steps ``theta / substeps`` (rounded);
    ``delay_mismatch`` here is every offset from N theta (design and hidden together)."""
    steps = round((n_virtual * theta + delay_mismatch) / (theta / substeps))
    if steps < 1:
        raise ValueError(f"delay_mismatch={delay_mismatch} leaves a delay of {n_virtual * theta + delay_mismatch} "
                         f"time units, under one integration step; the mismatch must be > -N theta.")
    return steps


def run_reservoir(u: torch.Tensor, controls, *, mask: torch.Tensor, theta: float, substeps: int,
                  exponent: float, node_error: NodeError, delay_mismatch: float, initial_state: float,
                  process_noise: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Virtual-node states (batch, T, N) for a series ``u`` (batch, T, input_dim), float64."""
    drive = u.to(torch.float64) @ mask.to(device=u.device, dtype=torch.float64).T
    eta = controls["eta"].reshape(()) * (1.0 + node_error.gain_error)
    return integrate_delay_reservoir(drive, eta=eta, gamma=controls["gamma"].reshape(()),
                                     bias=controls["bias"].reshape(()),
                                     p=exponent + node_error.exponent_error, theta=theta, substeps=substeps,
                                     delay_steps=delay_steps_for(mask.shape[0], theta, substeps, delay_mismatch),
                                     initial_state=initial_state, process_noise=process_noise,
                                     generator=generator)


class DelayReservoirPlant(Plant, Simulated, Dynamical):
    """One Mackey-Glass node with delayed feedback, read out at ``n_virtual`` virtual nodes per input step.

    Parameters
    ----------
    n_virtual:
        virtual nodes N per input step (400 in Appeltant 2011).
    steps:
        input steps T of the flat interface ``plant(x)``: ``x`` is (batch, steps * input_dim), the
        output the flattened states (batch, steps * n_virtual). ``trajectory(u, controls)`` takes any T.
    input_dim:
        values per input step (1 for NARMA10).
    desync_nodes:
        design delay ``tau = (N + desync_nodes) theta`` (0: synchronised, Appeltant 2011; 1: the
        desynchronised ring of Paquot 2012).
    theta:
        virtual-node separation in units of the node response time (0.2 in Appeltant 2011).
    exponent:
        the design exponent p of the nonlinearity (1 in Appeltant's NARMA10 study).
    substeps:
        integration steps per virtual node (h = theta / substeps).
    node_error, delay_mismatch, process_noise, detection_noise:
        the hidden truth (see the module docstring; all off by default). ``delay_mismatch`` is in units
        of the node response time (``theta`` = one virtual node).
    initial_state:
        the value the delay line holds before a series starts.
    time_unit_s:
        the node response time in seconds, for the cost model (ASSUMED 1 us, typical of an electronic
        or optoelectronic node; Appeltant's electronic circuit is slower).
    cost:
        a :class:`~pnnlab.metering.CostModel` per series of ``steps`` inputs; default: one delay period
        ``N theta`` per input step plus an assumed 1 ms per query to load the masked waveform.
    seed:
        seeds the input mask (design) and the plant's own noise generator.

    Controls: ``eta`` (feedback strength, [0, 2]), ``gamma`` (input scaling, [0, 2]) and ``bias``
    (beta, the DC offset of the node's input, [0, 1]), all trainable by gradient methods through the
    twins; the mask is fixed.
    """

    summary = "delay reservoir: one Mackey-Glass node with delayed feedback, time-multiplexed virtual nodes"

    def __init__(self, *, n_virtual: int = 400, steps: int = 1, input_dim: int = 1, desync_nodes: int = 0,
                 theta: float = 0.2,
                 exponent: float = 1.0, substeps: int = 1, node_error: NodeError = NodeError(),
                 delay_mismatch: float = 0.0, process_noise: float = 0.0, detection_noise: float = 0.0,
                 initial_state: float = 0.0, time_unit_s: float = 1e-6, cost: CostModel | None = None,
                 seed: int = 0) -> None:
        n_virtual = check_int("n_virtual", n_virtual)
        steps = check_int("steps", steps)
        input_dim = check_int("input_dim", input_dim)
        theta = check_positive("theta", theta)
        exponent = check_positive("exponent", exponent)
        substeps = check_int("substeps", substeps)
        desync_nodes = check_int("desync_nodes", desync_nodes, minimum=0)
        if not isinstance(node_error, NodeError):
            raise TypeError(f"node_error must be a pnnlab NodeError(exponent_error=..., gain_error=...), got "
                            f"{type(node_error).__name__}.")
        delay_mismatch = check_finite_float("delay_mismatch", delay_mismatch)
        if exponent + node_error.exponent_error <= 0:
            raise ValueError(f"exponent + node_error.exponent_error must stay > 0, got "
                             f"{exponent + node_error.exponent_error}; reduce the exponent error.")
        if cost is not None and not isinstance(cost, CostModel):
            raise TypeError(f"cost must be a pnnlab CostModel or None, got {type(cost).__name__}.")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}.")
        time_unit_s = check_positive("time_unit_s", time_unit_s)
        if cost is None:
            period = n_virtual * theta * time_unit_s
            cost = CostModel(seconds_per_query=1e-3, seconds_per_sample=steps * period,
                             joules_per_query=0.0, joules_per_sample=steps * period * 1.0,
                             source="assumed: one delay period N theta per input step (node response time "
                                    f"{time_unit_s:g} s), 1 ms per query to load the masked waveform, 1 W "
                                    "for node, laser/electronics and digitiser")
        super().__init__(in_features=steps * input_dim, out_features=steps * n_virtual, cost=cost, seed=seed)
        self.n_virtual, self.steps, self.input_dim, self.n_state = n_virtual, steps, input_dim, n_virtual
        self.theta, self.exponent, self.substeps = theta, exponent, substeps
        self.desync_nodes = desync_nodes
        self._design_offset = desync_nodes * theta  # tau - N theta by design
        self.initial_state = check_finite_float("initial_state", initial_state)
        self.time_unit_s = time_unit_s
        self.mask = _mask(n_virtual, input_dim, 7_919 * (seed + 1))
        # hidden truth: never read by training methods
        self._node_error = node_error
        self._delay_mismatch = delay_mismatch
        self._delay_steps = delay_steps_for(n_virtual, theta, substeps, self._design_offset + delay_mismatch)
        self._process_noise = check_nonnegative("process_noise", process_noise)
        self._detection_noise = check_nonnegative("detection_noise", detection_noise)

    # ---- plant interface ------------------------------------------------------------------
    def control_specs(self):
        return {"eta": ControlSpec((1,), 0.0, 2.0, description="feedback strength of the delay loop"),
                "gamma": ControlSpec((1,), 0.0, 2.0, description="input scaling (modulation depth)"),
                "bias": ControlSpec((1,), 0.0, 1.0, description="DC offset of the node's input (operating point)")}

    def initial_controls(self, generator=None):
        """Appeltant's NARMA10 values eta = 0.4 and gamma = 0.05 x mask level 0.1 = 0.005 (see the
        module docstring), and a bias of 0.01 (ASSUMED: above gamma max|J| for inputs in [0, 1], so the
        node sits on Mackey-Glass's s > 0 branch)."""
        return {"eta": torch.tensor([0.4], device=self.device), "gamma": torch.tensor([0.005], device=self.device),
                "bias": torch.tensor([0.01], device=self.device)}

    def example_inputs(self, batch, generator=None):
        """NARMA-style inputs, uniform in [0, 0.5]."""
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        return 0.5 * devices.rand((batch, self.in_features), generator=gen, device=self.device)

    def _states(self, u, controls, generator):
        states = run_reservoir(u, controls, mask=self.mask, theta=self.theta, substeps=self.substeps,
                               exponent=self.exponent, node_error=self._node_error,
                               delay_mismatch=self._design_offset + self._delay_mismatch,
                               initial_state=self.initial_state, process_noise=self._process_noise, generator=generator)
        if self._detection_noise:
            states = states + self._detection_noise * devices.randn(states.shape, generator=generator,
                                                                    device=states.device, dtype=states.dtype)
        return states.to(u.dtype)

    def _measure(self, x, controls, generator):
        u = x.reshape(x.shape[0], self.steps, self.input_dim)
        return self._states(u, controls, generator).reshape(x.shape[0], -1)

    def _trajectory(self, u, controls, generator):
        return self._states(u, controls, generator)

    def nominal_twin(self) -> DelayReservoirTwin:
        """The design equation: exponent p, gain eta, tau = (N + desync_nodes) theta; no noise."""
        return DelayReservoirTwin(mask=self.mask, steps=self.steps, theta=self.theta, substeps=self.substeps,
                                  exponent=self.exponent, delay_mismatch=self._design_offset,
                                  initial_state=self.initial_state)

    def true_twin(self) -> DelayReservoirTwin:
        """The hidden equation (node error, delay mismatch) with both noises off. Diagnostics and the
        ideal bound only."""
        return DelayReservoirTwin(mask=self.mask, steps=self.steps, theta=self.theta, substeps=self.substeps,
                                  exponent=self.exponent, node_error=self._node_error,
                                  delay_mismatch=self._design_offset + self._delay_mismatch,
                                  initial_state=self.initial_state)

    def describe(self):
        return (f"DelayReservoirPlant(n_virtual={self.n_virtual}, steps={self.steps}, input_dim={self.input_dim}, "
                f"desync_nodes={self.desync_nodes}, theta={self.theta}, substeps={self.substeps})")
