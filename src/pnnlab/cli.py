"""The ``pnnlab`` command line: a thin wrapper around the Python API."""

from __future__ import annotations

import sys

import click

from . import __version__


def _fail(error: BaseException, code: int = 2) -> None:
    message = " ".join(str(error).split()) or type(error).__name__  # one line
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _run_or_exit(spec, *, out_dir: str, progress: bool, resume_dir: str | None = None,
                 checkpoint_every_s: float | None = None):
    """Run ``spec``; every failure becomes a one-line message and an exit code, never a traceback:
    2 for a user error found before the run starts (bad spec, missing or invalid file, unusable
    --out, a method that cannot train the model), 1 for a run that failed while training (its
    traceback is in the run folder's error.txt), 130 for Ctrl-C and 143 for SIGTERM (the run folder is
    marked failed in both cases)."""
    from .experiments import resume, run
    from .experiments.run import CHECKPOINT_EVERY_S, RunTerminated
    every = CHECKPOINT_EVERY_S if checkpoint_every_s is None else checkpoint_every_s
    try:
        if resume_dir is not None:  # a refused resume (ResumeError, a ValueError) is a user error: exit 2
            return resume(resume_dir, spec=spec, progress=progress, echo=click.echo, checkpoint_every_s=every)
        return run(spec, out_dir=out_dir, progress=progress, echo=click.echo, checkpoint_every_s=every)
    except (KeyboardInterrupt, RunTerminated) as error:
        how, code = ("(Ctrl-C)", 130) if isinstance(error, KeyboardInterrupt) else ("(SIGTERM)", 143)
        folder = getattr(error, "run_folder", None)
        _fail(f"interrupted {how}; " + (f"run folder {folder} is marked failed" if folder is not None
                                        else "no run folder was created"), code)
    except Exception as error:
        folder = getattr(error, "run_folder", None)
        if folder is None:  # found before any folder existed: a user error
            _fail(error)
        _fail(f"the run failed: {type(error).__name__}: {error} (traceback in {folder}/error.txt)", 1)


def _threads() -> None:
    # The networks here are small: one intra-op thread is fastest, and more threads slow down badly
    # when the cores are shared (measured: 15x slower with 2 threads on a loaded 2-core machine).
    import torch
    torch.set_num_threads(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pnnlab")
def main() -> None:
    """Train physical neural networks on simulated hardware or real devices."""


@main.command()
@click.option("--out", "out_dir", default="runs", show_default=True, help="Folder for run folders.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed for the data split, the plants and training.")
@click.option("--epochs", default=None, type=int, help="Override the number of training epochs.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def demo(out_dir: str, seed: int, epochs: int | None, progress: bool) -> None:
    """Physics-aware vs in-silico training of a simulated SHG network on vowels (mismatched plant)."""
    from .experiments import demo_spec, format_table
    _threads()
    click.echo("pnnlab demo: 7-vowel task (Hillenbrand 1995) on a simulated broadband-SHG physical network\n"
               "whose true physics (dispersion, shaper error, detector nonlinearity, noise) differs from its\n"
               "digital twin. Training in-silico (twin only) and physics-aware (Wright et al. 2022).")
    result = _run_or_exit(demo_spec(seed=seed, epochs=epochs), out_dir=out_dir, progress=progress)
    click.echo("\n" + format_table(result.summary["results"]))
    click.echo(f"\nrun folder: {result.folder}  (plot: accuracy_vs_queries.png)")


@main.command(name="run")
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", default="runs", show_default=True, help="Folder for run folders.")
@click.option("--epochs", default=None, type=click.IntRange(min=1),
              help="Override [train] epochs (for a quick check of an experiment file).")
@click.option("--resume", "resume_dir", default=None, type=click.Path(file_okay=False),
              help="Continue the killed or interrupted run in this run folder from its last checkpoint "
                   "(recorded queries are replayed, not repeated). SPEC is optional; if given it must match.")
@click.option("--checkpoint-every", "checkpoint_every_s", default=None, type=click.FloatRange(min=0),
              help="Seconds of wall time between checkpoints (default 10; 0: after every step).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def run_command(spec: str | None, out_dir: str, epochs: int | None, resume_dir: str | None,
                checkpoint_every_s: float | None, progress: bool) -> None:
    """Run the experiment described by the TOML file SPEC, or continue one with --resume RUN_DIR."""
    from .experiments import format_table, load_spec
    from .experiments.run import CHECKPOINT_EVERY_S
    _threads()
    every = CHECKPOINT_EVERY_S if checkpoint_every_s is None else checkpoint_every_s
    if resume_dir is None and spec is None:
        _fail(ValueError("give an experiment file SPEC, or --resume RUN_DIR to continue a run."))
    if epochs is not None:
        if spec is None:
            _fail(ValueError("--epochs changes the configuration, and a resumed run keeps its own; "
                             "drop --epochs (or start a new run with SPEC --epochs N)."))
        try:
            spec = load_spec(spec)
        except ValueError as error:
            _fail(error)
        if isinstance(spec.get("train", {}), dict):
            spec["train"] = {**spec.get("train", {}), "epochs": epochs}
    if resume_dir is not None:
        result = _run_or_exit(spec, out_dir=out_dir, progress=progress, resume_dir=resume_dir,
                              checkpoint_every_s=every)
        if result.already_completed:
            click.echo(f"run {result.folder} is already completed; nothing to resume.")
            return
    else:
        result = _run_or_exit(spec, out_dir=out_dir, progress=progress, checkpoint_every_s=every)
    click.echo("\n" + format_table(result.summary["results"]))
    click.echo(f"\nrun folder: {result.folder}")


@main.command(name="list")
@click.argument("kind", required=False, type=click.Choice(["plants", "methods", "datasets", "models"]))
def list_command(kind: str | None) -> None:
    """List every registered substrate, method, dataset and model with a one-line description."""
    from .registry import ALL
    for name, registry in ALL.items():
        if kind is not None and name != kind:
            continue
        click.echo(f"{name}:")
        for entry in registry.entries():
            click.echo(f"  {entry.name:<24} {entry.summary}")
        click.echo("")


@main.command(name="sweep")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", default="sweeps", show_default=True,
              help="Folder for sweep folders (the sweep writes OUT/<name>/).")
@click.option("--address", default=None, help="Run on the existing Ray cluster at this address (default: a "
                                               "local Ray started for the sweep).")
@click.option("--resume", is_flag=True, help="Continue the sweep in OUT/<name>/: finished trials are kept, "
                                            "interrupted run folders continue from their checkpoints.")
@click.option("--serial", is_flag=True, help="Run the trials one after another in this process, without Ray.")
def sweep_command(spec: str, out_dir: str, address: str | None, resume: bool, serial: bool) -> None:
    """Run the sweep in SPEC (an experiment file with a [sweep] table) on Ray Tune; writes a table
    (mean +- std over seeds per configuration) and the accuracy-against-queries plot."""
    from .experiments.spec import SpecError
    from .sweeps import run_sweep
    _threads()
    try:
        result = run_sweep(spec, out_dir=out_dir, serial=serial, address=address, resume=resume, echo=click.echo)
    except SpecError as error:
        _fail(error)
    except KeyboardInterrupt:
        click.echo("interrupted: continue with the same command and --resume", err=True)
        sys.exit(130)
    except RuntimeError as error:
        _fail(error, code=1)
    click.echo("\n" + result.table)
    click.echo(f"sweep folder: {result.folder}  (table.md, results.json, accuracy_vs_queries.png)")


@main.command(name="export")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--method", default=None, help="Which method's trained parameters (default: the run's last method).")
@click.option("--out", "out_dir", default=None, help="Folder to write (default RUN_DIR/export/<method>).")
@click.option("--slm-bits", default="8,16", show_default=True, help="Bit depths of the phase-map PNGs.")
@click.option("--tolerance", "sizes", default=None,
              help="Also run the programming-error tolerance analysis at these sizes (fractions of each "
                   "control's range), e.g. 0,0.005,0.01,0.02.")
@click.option("--fabrication", "factors", default=None,
              help="Also run the fabrication-error tolerance: each knob of the plants' own non-ideality model "
                   "(e.g. mzi_mesh.fabrication.coupler_error_std_rad) times these factors, e.g. 0,0.5,1,2,4.")
@click.option("--knobs", default=None,
              help="With --fabrication: which knobs (comma-separated; full names, a unique ending such as "
                   "coupler_error_std_rad, or 'all' = every knob together). Default: every knob and 'all'; an "
                   "unknown name lists the run's knobs.")
@click.option("--draws", default=5, show_default=True, type=click.IntRange(min=0),
              help="Monte Carlo draws per size (--tolerance, >= 1) / fresh fabrication draws per factor "
                   "(--fabrication; 0 = the trained chip only).")
@click.option("--on", "on", default="true_twin", show_default=True, type=click.Choice(["true_twin", "plant"]),
              help="Where --tolerance and --fabrication measure: the hidden physics with noise off, or the "
                   "simulated plant (noise included).")
@click.option("--edge", "edge", default=None, type=click.Choice(["nominal", "true"]),
              help="Also write a standalone inference artefact (TorchScript + a torch-only runtime) with the "
                   "physics of the layers' twins (nominal) or of the simulated plant's hidden truth (true).")
def export_command(run_dir: str, method: str | None, out_dir: str | None, slm_bits: str, sizes: str | None,
                   factors: str | None, knobs: str | None, draws: int, on: str, edge: str | None) -> None:
    """Write what a lab needs to program the trained network of RUN_DIR into its device: control tables
    with units, phase maps (PNG), mesh phase tables, crossbar conductances and pulse programs."""
    import math

    from .export import export_edge, export_run, fabrication_tolerance, tolerance_analysis
    _threads()
    where = "the true physics (noise off)" if on == "true_twin" else "the plant (noise included)"
    try:
        if knobs is not None and factors is None:
            raise ValueError("--knobs chooses the knobs of the fabrication tolerance; add --fabrication FACTORS "
                             "(e.g. --fabrication 0,0.5,1,2,4).")
        bits = tuple(int(b) for b in slm_bits.split(","))
        result = export_run(run_dir, method=method, out=out_dir, slm_bits=bits)
        click.echo(f"exported {result.manifest['method']} of {run_dir} to {result.folder} "
                   f"({len(result.manifest['layers'])} physical layer(s); manifest.json lists every file)")
        if sizes is not None:
            rows = tolerance_analysis(run_dir, method=result.manifest["method"], out=result.folder, draws=draws,
                                      sizes=tuple(float(s) for s in sizes.split(",")), on=on)
            click.echo(f"programming error (std, fraction of range) -> test accuracy on {where}, mean ± std "
                       f"over draws:")
            for r in rows:
                click.echo(f"  {r['size']:<8g} {100 * r['accuracy_mean']:.1f} ± {100 * r['accuracy_std']:.1f} % "
                           f"({r['draws']} draw(s), {r['test_samples']} test samples)")
        if factors is not None:
            try:
                parsed = tuple(float(f) for f in factors.split(","))
            except ValueError:
                raise ValueError(f"--fabrication takes comma-separated factors such as 0,0.5,1,2,4, got "
                                 f"{factors!r}.") from None
            fab = fabrication_tolerance(run_dir, method=result.manifest["method"], out=result.folder, draws=draws,
                                        factors=parsed, knobs=knobs, on=on)
            ref = fab.reference
            nominal = ref["nominal_twin_accuracy"]
            click.echo(f"fabrication error (factor x the run's value) -> test accuracy % on {where}, "
                       f"{ref['test_samples']} test samples (1 sample = {100 / ref['test_samples']:.1f} %); trained "
                       f"{100 * ref['trained_accuracy']:.1f} %"
                       + ("" if nominal is None else f", nominal twin (design chip) {100 * nominal:.1f} %") + ":")
            click.echo(f"  {'knob':<52} {'factor':>6} {'value':>10} {'trained chip':>12} "
                       f"{f'{draws} fresh chip(s)':>16}")
            for r in fab.rows:
                fresh = ("n/a" if math.isnan(r["accuracy_mean"]) else f"{100 * r['accuracy_mean']:.1f}"
                         + ("" if math.isnan(r["accuracy_std"]) else f" ± {100 * r['accuracy_std']:.1f}"))
                chip = "n/a" if math.isnan(r["accuracy_trained_chip"]) else f"{100 * r['accuracy_trained_chip']:.1f}"
                value = "" if math.isnan(r["value"]) else f"{r['value']:.4g}"
                click.echo(f"  {r['knob']:<52} {r['factor']:>6g} {value:>10} {chip:>12} {fresh:>16}"
                           + (f"  ({r['note']})" if r["note"] else ""))
            click.echo(f"  table and plot: {fab.folder / 'fabrication.csv'}, {fab.folder / 'fabrication.png'}")
        if edge is not None:
            report = export_edge(run_dir, method=result.manifest["method"], physics=edge,
                                 out=None if out_dir is None else f"{out_dir}/edge")
            cost = report["per_inference"]
            click.echo(f"edge artefact ({edge} physics): network.ts + predict.py; traced network matches the trained "
                       f"one on {report['check']['samples']} test samples (max |diff| "
                       f"{report['check']['max_abs_difference']:.1e}); per inference: physical "
                       f"{cost['physical_part']['per_inference_batch_256']['seconds']:.3g} s / "
                       f"{cost['physical_part']['per_inference_batch_256']['joules']:.3g} J (cost models, batch 256), "
                       f"same network on this CPU {cost['same_network_on_cpu']['latency_s_per_sample_batch_256']:.3g} s")
    except ValueError as error:
        _fail(error)


@main.command(name="bench")
@click.option("--quick", is_flag=True, help="Every benchmark with its smoke settings (a few minutes): a check, "
                                           "not the published comparison.")
@click.option("--only", multiple=True, help="Run only this benchmark (script stem, e.g. bench_pat_vowels); repeat.")
@click.option("--dir", "directory", default="benchmarks", show_default=True,
              help="The folder holding the benchmarks and catalog.toml.")
@click.option("--out", "out_dir", default="bench-report", show_default=True, help="Folder for the report.")
def bench_command(quick: bool, only: tuple[str, ...], directory: str, out_dir: str) -> None:
    """Run the benchmarks that reproduce published results and write a report (Markdown and HTML, with
    the plots): for each result the paper's figure, ours, the settings and the wall time."""
    from .bench import BenchError, run_bench
    try:
        results = run_bench(directory=directory, out=out_dir, quick=quick, only=only, echo=click.echo)
    except BenchError as error:
        _fail(error)
    click.echo(f"report: {out_dir}/report.md and {out_dir}/report.html")
    failed = [r["script"] for r in results if r["status"] != "ok"]
    if failed:
        _fail(RuntimeError(f"{len(failed)} benchmark(s) did not finish: {', '.join(failed)} (logs in {out_dir})"), code=1)


@main.command(name="serve")
@click.option("--plant", "plant_name", required=True,
              help="A registered plant (pnnlab list plants) or package.module:Class (your instrument).")
@click.option("--plant-args", default="{}", show_default=True, help="The plant's keyword arguments (JSON object).")
@click.option("--token-file", required=True, type=click.Path(dir_okay=False),
              help="File holding the shared secret; a missing file gets a new random token (mode 600).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (loopback by default).")
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535), help="0: an ephemeral port.")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host (traffic is not encrypted).")
@click.option("--limits", default=None, help='Device limits, JSON: {"control": {"low": .., "high": .., "max_step": ..}}.')
@click.option("--lease-seconds", default=60.0, show_default=True, type=float,
              help="A trainer's lease on the device lasts this long after its last call.")
def serve_command(plant_name: str, plant_args: str, token_file: str, host: str, port: int, allow_remote: bool,
                  limits: str | None, lease_seconds: float) -> None:
    """Serve a plant over the network (gRPC) to one trainer at a time; see docs/remote.md."""
    import signal
    import warnings
    _threads()
    try:
        from .remote import serve
        from .remote.launch import load_plant, parse_limits, read_token_file
        plant = load_plant(plant_name, plant_args)
        token, created = read_token_file(token_file)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            handle = serve(plant, token=token, host=host, port=port, allow_remote=allow_remote,
                           limits=parse_limits(limits), lease_s=lease_seconds)
    except (ImportError, ValueError, TypeError, OSError, KeyError) as error:
        _fail(error)
    for w in caught:
        click.echo(f"WARNING: {w.message}", err=True)
    click.echo(f"serving {plant.describe()}")
    click.echo(f"token: {'new token written to' if created else 'read from'} {token_file}")
    click.echo(f"address: {handle.address}")
    signal.signal(signal.SIGTERM, lambda *_: handle.stop(grace=1.0))
    try:
        handle.wait()
    except KeyboardInterrupt:
        handle.stop(grace=1.0)
    click.echo("server stopped")


if __name__ == "__main__":  # pragma: no cover
    main()
