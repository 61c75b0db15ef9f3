"""The ``pnnlab`` command line: a thin wrapper around the Python API."""

from __future__ import annotations

import sys

import click

from . import __version__


def _fail(error: Exception) -> None:
    click.echo(f"error: {error}", err=True)
    sys.exit(2)


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
@click.option("--seed", default=0, show_default=True, help="Seed for data split, plants and training.")
@click.option("--epochs", default=None, type=int, help="Override the number of training epochs.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def demo(out_dir: str, seed: int, epochs: int | None, progress: bool) -> None:
    """Physics-aware vs in-silico training of a simulated SHG network on vowels (mismatched plant)."""
    from .experiments import demo_spec, format_table, run
    _threads()
    click.echo("pnnlab demo: 7-vowel task (Hillenbrand 1995) on a simulated broadband-SHG physical network\n"
               "whose true physics (dispersion, shaper error, detector nonlinearity, noise) differs from its\n"
               "digital twin. Training in-silico (twin only) and physics-aware (Wright et al. 2022).")
    try:
        result = run(demo_spec(seed=seed, epochs=epochs), out_dir=out_dir, progress=progress, echo=click.echo)
    except (ValueError, FileNotFoundError, KeyError) as error:
        _fail(error)
    click.echo("\n" + format_table(result.summary["results"]))
    click.echo(f"\nrun folder: {result.folder}  (plot: accuracy_vs_queries.png)")


@main.command(name="run")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", default="runs", show_default=True, help="Folder for run folders.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def run_command(spec: str, out_dir: str, progress: bool) -> None:
    """Run the experiment described by the TOML file SPEC."""
    from .experiments import format_table, run
    _threads()
    try:
        result = run(spec, out_dir=out_dir, progress=progress, echo=click.echo)
    except (ValueError, FileNotFoundError, KeyError) as error:
        _fail(error)
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


if __name__ == "__main__":  # pragma: no cover
    main()
