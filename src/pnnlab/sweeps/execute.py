"""Running a sweep: every trial an ordinary run folder, executed by Ray Tune (or one after another).

Folder of a sweep (``OUT/<name>/``)::

    sweep.json              the plan: the base spec, the seeds, every planned trial
    runs/<stamp>-<trial>/   one ordinary run folder per trial (pnnlab run's layout)
    trials/<trial>.json     a finished trial: its configuration, seed, run folder and results
    ray/                    Ray Tune's experiment state (what `--resume` restores)
    table.md, results.json  mean +- std over seeds per configuration and method
    accuracy_vs_queries.png test accuracy against plant queries, mean +- std band per configuration

Resuming (``pnnlab sweep SPEC --resume``) restores Ray Tune's own state (``Tuner.restore``, errored
and unfinished trials run again); a finished trial is never redone, and a trial whose run folder was
interrupted continues that run folder with :func:`pnnlab.experiments.run.resume` (recorded plant
queries are replayed, not asked again) instead of starting over.

A trial on a hardware plant holds a custom Ray resource for the device, ``pnnlab_device:<name>``
(one unit), so two trials never share one instrument. On a local Ray (no ``--address``) the sweep
declares that resource itself; on a cluster, start the node wired to the instrument with it, e.g.
``ray start --resources='{"pnnlab_device:127.0.0.1:50051": 1}'``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..experiments.spec import SpecError
from .plan import SweepPlan, Trial, apply_overrides, load_sweep

__all__ = ["run_sweep", "SweepResult", "ray_resources", "RAY_INSTALL_HINT"]

RAY_INSTALL_HINT = ("pnnlab sweep runs its trials on Ray Tune, which is not installed: pip install "
                    "'pnnlab[sweep]' (ray[tune] and optuna). Or pass --serial (serial=True) to run the trials "
                    "one after another in this process, without Ray.")


@dataclass
class SweepResult:
    folder: Path
    trials: list[dict]  # finished trials, as written to trials/<name>.json
    table: str  # the Markdown table


def ray_resources(plan: SweepPlan) -> dict[str, float]:
    """What one trial holds: one CPU, and the plan's device as a custom resource (one unit)."""
    resources = {"cpu": 1.0}
    if plan.device is not None:
        resources[f"pnnlab_device:{plan.device}"] = 1.0
    return resources


def _find_run(runs: Path, trial_name: str) -> Path | None:
    found = sorted(p for p in runs.glob(f"*-{trial_name}") if p.is_dir())
    return found[-1] if found else None


def run_trial(folder: Path, base: dict, trial: Trial) -> dict:
    """Run (or finish) one trial in ``folder/runs`` and write ``folder/trials/<name>.json``."""
    import torch

    from ..experiments.run import resume, run
    from ..checkpoint import ResumeError

    torch.set_num_threads(1)  # trials run side by side: one intra-op thread each
    started = time.time()
    folder = Path(folder)
    done = folder / "trials" / f"{trial.name}.json"
    if done.is_file():
        return json.loads(done.read_text())
    runs = folder / "runs"
    previous = _find_run(runs, trial.name)
    result = None
    if previous is not None:
        try:
            result = resume(previous)  # a completed folder returns at once; an interrupted one continues
        except ResumeError:
            result = None  # no checkpoint to continue from: start the trial again in a new folder
    if result is None:
        spec = apply_overrides(base, trial.overrides, trial.seed, f"{base.get('name', 'sweep')}-{trial.name}")
        result = run(spec, out_dir=runs)  # warmed up: wall times comparable across trials
    record = {"trial": trial.name, "index": trial.index, "config_id": trial.config_id,
              "overrides": trial.overrides, "seed": trial.seed, "folder": str(result.folder),
              "results": result.summary["results"], "started": started, "finished": time.time()}
    done.parent.mkdir(parents=True, exist_ok=True)
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str))
    tmp.replace(done)
    return record


def _metrics(record: dict) -> dict:
    out = {"trial": record["trial"], "run_folder": record["folder"]}
    for result in record["results"]:
        for key in ("selected_val_accuracy", "final_val_accuracy", "selected_test_accuracy", "plant_queries"):
            out[f"{result['method']}/{key}"] = result[key]
    first = record["results"][0]
    out["selected_val_accuracy"] = first["selected_val_accuracy"]
    out["final_val_accuracy"] = first["final_val_accuracy"]
    return out


def _ray_trial(config: dict, *, folder: str, plan_json: dict) -> None:
    from ray import tune

    trial = Trial(**plan_json["trials"][config["trial"]])
    tune.report(_metrics(run_trial(Path(folder), plan_json["base"], trial)))


def _ray_optuna_trial(config: dict, *, folder: str, plan_json: dict) -> None:
    """One Optuna configuration on every seed; reports the mean validation metric over seeds."""
    from ray import tune

    keys = _space_keys(plan_json)
    overrides = {keys[int(k[1:])]: v for k, v in sorted(config.items(), key=lambda kv: int(kv[0][1:]))}
    config_id = _config_id(Path(folder), overrides)
    records = []
    for seed in plan_json["seeds"]:
        index = config_id * len(plan_json["seeds"]) + plan_json["seeds"].index(seed)
        trial = Trial(index=index, config_id=config_id, overrides=overrides, seed=int(seed))
        records.append(run_trial(Path(folder), plan_json["base"], trial))
    metric = plan_json["metric"]
    values = [r["results"][0][metric] for r in records]
    tune.report({metric: sum(values) / len(values), "seeds": len(values)})


def _config_id(folder: Path, overrides: dict) -> int:
    """A stable id for an Optuna configuration (its canonical JSON), kept in configs.json."""
    import fcntl

    path = folder / "configs.json"
    key = json.dumps(overrides, sort_keys=True, default=str)
    with open(folder / ".configs.lock", "w") as lock:  # Optuna trials run in parallel workers
        fcntl.flock(lock, fcntl.LOCK_EX)
        configs = json.loads(path.read_text()) if path.is_file() else []
        if key not in configs:
            configs.append(key)
            path.write_text(json.dumps(configs, indent=1))
        return configs.index(key)


def _space_keys(plan_json: dict) -> list[str]:
    """The varied spec paths in a fixed order; Ray/Optuna see them as p0, p1, ... (Ray flattens keys on
    '/' and Optuna dislikes dots)."""
    return list(plan_json["grid"]) + list(plan_json["random"])


def _optuna_space(plan: SweepPlan) -> dict:
    from ray import tune

    keys = _space_keys(plan.to_json())
    space = {}
    for path, values in plan.grid.items():
        space[f"p{keys.index(path)}"] = tune.choice(values)
    for path, dist in plan.random.items():
        kind, args = next(iter(dist.items()))
        name = f"p{keys.index(path)}"
        space[name] = {"uniform": lambda a: tune.uniform(*a), "loguniform": lambda a: tune.loguniform(*a),
                       "randint": lambda a: tune.randint(a[0], a[1] + 1), "choice": tune.choice}[kind](args)
    return space


def _run_ray(plan: SweepPlan, folder: Path, *, address: str | None, resume: bool) -> None:
    try:
        import ray
        from ray import tune
    except ImportError as error:
        raise SpecError(RAY_INSTALL_HINT) from error
    resources = ray_resources(plan)
    started_here = False
    if not ray.is_initialized():
        custom = {k: v for k, v in resources.items() if k != "cpu"}
        if address is None:
            ray.init(resources=custom or None, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        started_here = True
    try:
        plan_json = plan.to_json()
        if plan.search == "optuna":
            function = tune.with_parameters(_ray_optuna_trial, folder=str(folder), plan_json=plan_json)
        else:
            function = tune.with_parameters(_ray_trial, folder=str(folder), plan_json=plan_json)
        trainable = tune.with_resources(function, resources)
        storage = folder / "ray"
        if resume and tune.Tuner.can_restore(str(storage)):
            tuner = tune.Tuner.restore(str(storage), trainable, resume_errored=True)
        else:
            if plan.search == "optuna":
                from ray.tune.search.optuna import OptunaSearch
                search = OptunaSearch(metric=plan.metric, mode="max", seed=plan.sampler_seed)
                space, tune_config = _optuna_space(plan), tune.TuneConfig(
                    search_alg=search, num_samples=plan.samples, max_concurrent_trials=plan.max_concurrent)
            else:
                space = {"trial": tune.grid_search(list(range(len(plan.trials))))}
                tune_config = tune.TuneConfig(max_concurrent_trials=plan.max_concurrent)
            tuner = tune.Tuner(trainable, param_space=space, tune_config=tune_config,
                               run_config=tune.RunConfig(name=storage.name, storage_path=str(folder), verbose=0))
        grid = tuner.fit()
        errors = [str(r.error) for r in grid if r.error is not None]
        if errors:
            raise RuntimeError(f"{len(errors)} sweep trial(s) failed; the first: {errors[0]}. Fix the cause and "
                               f"rerun with --resume: finished trials are kept.")
    finally:
        if started_here:
            ray.shutdown()


def run_sweep(spec: Any, *, out_dir: str | Path = "sweeps", serial: bool = False, address: str | None = None,
              resume: bool = False, echo: Callable[[str], None] | None = None) -> SweepResult:
    """Plan and run a sweep (a dict or a TOML path with a ``[sweep]`` table), then write its table and
    plot. ``serial=True`` runs the trials one after another in this process (no Ray); otherwise Ray Tune
    runs them (a local Ray, or the cluster at ``address``). ``resume=True`` continues the sweep in
    ``out_dir/<name>``; without it an existing sweep folder is refused."""
    from .report import write_report

    plan = load_sweep(spec)
    folder = Path(out_dir) / plan.name
    saved = folder / "sweep.json"
    if saved.is_file() and not resume:
        raise SpecError(f"sweep folder {str(folder)!r} exists: pass --resume (resume=True) to continue it, or "
                        f"another --out / name for a new sweep.")
    if resume and saved.is_file():
        before = json.loads(saved.read_text())
        if before["base"] != json.loads(json.dumps(plan.base, default=str)) or before["trials"] != plan.to_json()["trials"]:
            raise SpecError(f"the sweep in {str(folder)!r} was planned from another spec; a sweep resumes with the "
                            f"spec it started with (or start a new one with another name).")
    if plan.search == "optuna" and serial:
        raise SpecError("search = \"optuna\" runs on Ray Tune's OptunaSearch; drop --serial (install "
                        "'pnnlab[sweep]'), or use search = \"random\" to run serially.")
    folder.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(plan.to_json(), indent=2, default=str))
    if echo is not None:
        count = (f"{len(plan.trials)} trials ({len(plan.configs)} configurations x {len(plan.seeds)} seeds)"
                 if plan.trials else f"{plan.samples} Optuna configurations x {len(plan.seeds)} seeds")
        echo(f"sweep {plan.name!r}: {count}, {'serial' if serial else 'Ray Tune'}; folder {folder}")
    if serial:
        for trial in plan.trials:
            record = run_trial(folder, plan.base, trial)
            if echo is not None:
                first = record["results"][0]
                echo(f"  {trial.name}: {first['method']} val {first['selected_val_accuracy']:.3f} "
                     f"test {first['selected_test_accuracy']:.3f} (val-chosen epoch)")
    else:
        _run_ray(plan, folder, address=address, resume=resume)
    records = [json.loads(p.read_text()) for p in sorted((folder / "trials").glob("*.json"))]
    table = write_report(folder, plan, records)
    return SweepResult(folder=folder, trials=records, table=table)

