"""Run a sweep on Ray Tune: locally by default, on an existing cluster with `address`.

    launch(spec, out)           plan the trials, tokenise the corpus once, write the manifest, run them
    resume(out)                 finish an interrupted sweep (Ctrl-C, a killed driver): completed trials
                                are not rerun, unfinished ones continue from their last checkpoint
    status(out)                 counts, FLOPs done, tokens/s, ETA, one line per trial (no Ray needed)
    launch(spec, out, log=["tensorboard", "wandb", "mlflow"], return_results=True)
                                + experiment trackers; a LaunchResult(status, Tune's ResultGrid)

One trial is one `scaling.train.train` run in a Tune function trainable (`sweeps.trainable`), with
`FailureConfig(max_failures=spec.retries)`; every evaluation is forwarded with
`tune.report(metrics, checkpoint=Checkpoint.from_directory(...))`, and a restarted trial resumes from
`tune.get_checkpoint()` or its run folder's own checkpoint, whichever is newer. `resume` uses
`Tuner.restore`; if Tune's state is unreadable (a truncated tuner.pkl, ray#58179) it falls back to the
sweep's own manifest and starts a new Tune experiment with the unfinished trials only.

Resources: a one-process trial asks for `resources.cpus` CPUs (torch uses that many threads) and `resources.gpus`
GPUs (a fraction shares a GPU, its memory capped to that fraction). A trial of several processes
(`resources.workers > 1`, or `gpus: N > 1`) is a Ray Train V2 `TorchTrainer` driven from inside the Tune trial
(`sweeps.train_group`: DDP or FSDP, on one node or several); Tune then holds only its driver's
`DRIVER_CPUS`, so `max_concurrent_trials` must keep the trials' workers within the cluster (ray#54305).

Security (`sweeps.security`): in Ray 2.60 token authentication is *disabled* unless
`RAY_AUTH_MODE=token` (an unset variable does not turn it on for a cluster joined by address).
Ray's job and dashboard APIs run arbitrary code for whoever can reach them (CVE-2023-48022 was
exploited in the wild), so before anything starts the launcher reads Ray's effective auth mode
(`token_auth_enabled`) and refuses to join a non-loopback address, or to bind the dashboard to a
non-loopback host, while auth is disabled, unless `insecure=True` (`--insecure`).
"""

from __future__ import annotations

import datetime
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from contracts.jsonio import read_json, write_atomic, write_json
from sweeps import store
from sweeps.design import check_epochs, expand
from sweeps.ray_logs import RAY_LOG, QuietRay
from sweeps.spec import SpecError, SweepSpec

STORAGE_DIR = "ray"


def launch(
    spec: SweepSpec,
    out: str | Path,
    *,
    source: str = "spec",
    address: str | None = None,
    storage: str | None = None,
    progress: bool = True,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    dashboard: bool = False,
    dashboard_host: str = "127.0.0.1",
    reuse_actors: bool = True,
    callbacks: Sequence[Any] = (),
    log: Sequence[str] = (),
    return_results: bool = False,
    insecure: bool = False,
    verbose: bool = False,
) -> dict | LaunchResult:
    """Plan, prepare and run a sweep; returns `status(out)` at the end, or with `return_results` a
    `LaunchResult` holding that status and Tune's `ResultGrid`.

    `log`: experiment trackers ("tensorboard", "wandb", "mlflow") fed by Ray Tune's logger callbacks
    (`logger_callbacks`). Nothing is started (no Ray, no folder) when the spec cannot run: a design
    error, a missing tracker package, or a trial asking for more CPUs/GPUs than this machine has
    (local runs) — a `SpecError` names the field. Ray's own log lines and its workers' forwarded output go
    to `<out>/logs/ray.log` (`sweeps.ray_logs`), not the terminal, unless `verbose`.
    """
    _check_security(address, dashboard, dashboard_host, insecure)
    out = Path(out).expanduser().absolute()
    _check_trackers(log)
    if (out / store.MANIFEST).exists():
        raise store.SweepFolderError(f"{out}: already holds a sweep; continue it with `scaling sweep resume {out}`")
    trials = expand(spec, source)
    if address is None and not _ray_initialized():
        _check_local_resources(spec, source, num_cpus, num_gpus)
    data = _prepare_data(spec, progress)
    check_epochs(spec, trials, data.n_train_tokens, source)

    with QuietRay(out / RAY_LOG, verbose=verbose) as quiet:
        owned = _ray_connect(address, num_cpus, num_gpus, dashboard, dashboard_host)
        quiet.connected()
        try:
            _check_cluster_resources(spec, source, remote=address is not None)
        except BaseException:
            if owned:
                import ray

                ray.shutdown()
            raise

        if storage and "://" not in storage:
            storage = str(Path(storage).expanduser().absolute())  # Tune rejects relative storage paths
        storage_path = storage or str(out / STORAGE_DIR)
        experiment = _join(storage_path, spec.sweep_name())
        out.mkdir(parents=True, exist_ok=True)
        manifest = {
            "name": spec.sweep_name(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "source": source,
            "spec": spec.model_dump(mode="json"),
            "storage_path": storage_path,
            "experiments": [experiment],
            "data_root": str(data.root),
            "data_fingerprint": data.fingerprint,
            "n_train_tokens": data.n_train_tokens,
            "versions": _versions(),
            "trials": [{**t.row(), "config": t.config.model_dump(mode="json")} for t in trials],
        }
        try:
            write_json(out / store.MANIFEST, manifest)
            write_atomic(out / "spec.yaml", yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
            write_json(out / store.STATE, {t.run_id: {"status": "pending", "attempts": 0} for t in trials})
            grid = _run(out, manifest, experiment, spec, restore=False, progress=progress, reuse_actors=reuse_actors,
                        callbacks=[*callbacks, *logger_callbacks(log, out, spec.sweep_name())])
        finally:
            _finish(out, owned)
    return LaunchResult(store.status(out), grid) if return_results else store.status(out)


def resume(
    out: str | Path,
    *,
    address: str | None = None,
    progress: bool = True,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    dashboard: bool = False,
    dashboard_host: str = "127.0.0.1",
    reuse_actors: bool = True,
    callbacks: Sequence[Any] = (),
    log: Sequence[str] = (),
    return_results: bool = False,
    insecure: bool = False,
    verbose: bool = False,
) -> dict | LaunchResult:
    """Finish a sweep from its folder. Completed trials are never rerun; failed ones get new attempts.
    `log` and `return_results` as for `launch` (the ResultGrid is None when nothing was left to run)."""
    _check_security(address, dashboard, dashboard_host, insecure)
    out = Path(out).expanduser().absolute()
    _check_trackers(log)
    manifest = store.read_manifest(out)
    if store.driver_alive(out):
        info = read_json(out / store.DRIVER) or {}
        raise store.SweepFolderError(f"{out}: its driver is still running (pid {info.get('pid')}); stop it first")
    spec = _check_folder(out, manifest)
    unfinished = [t for t in manifest["trials"] if not store.is_finished(store.trial_record(out, t["run_id"]))]
    if not unfinished:
        store.collect(out)
        return LaunchResult(store.status(out), None) if return_results else store.status(out)
    if address is None and not _ray_initialized():
        _check_local_resources(spec, manifest.get("source", "spec"), num_cpus, num_gpus)
    data = _prepare_data(spec, progress)
    manifest["data_root"] = str(data.root)
    with QuietRay(out / RAY_LOG, verbose=verbose) as quiet:
        owned = _ray_connect(address, num_cpus, num_gpus, dashboard, dashboard_host)
        quiet.connected()
        try:
            experiment = manifest["experiments"][-1]
            grid = _run(out, manifest, experiment, spec, restore=True, progress=progress, reuse_actors=reuse_actors,
                        callbacks=[*callbacks, *logger_callbacks(log, out, spec.sweep_name())])
        finally:
            _finish(out, owned)
    return LaunchResult(store.status(out), grid) if return_results else store.status(out)


def _check_folder(out: Path, manifest: dict) -> SweepSpec:
    """Before anything starts: the sweep folder's own files read back whole (`sweeps.folder_state`). Damaged
    run rows with an intact checkpoint are set aside and written again (one warning each); anything else
    damaged is one error line. Returns the spec the manifest holds."""
    from pydantic import ValidationError

    from scaling.damage import DamagedStateError
    from sweeps import folder_state

    store.read_state(out)
    folder_state.check_spec_copy(out)
    try:
        spec = SweepSpec.model_validate(manifest.get("spec"))
    except ValidationError as exc:
        where = ".".join(map(str, exc.errors()[0]["loc"])) or "spec"
        raise DamagedStateError(out / store.MANIFEST, f"damaged (its spec: {where}: {exc.errors()[0]['msg']})",
                                "restore it from a backup, or launch spec.yaml into a new folder") from None
    for line in folder_state.repair_runs(out, manifest):
        print(f"warning: {line}", file=sys.stderr)
    folder_state.write_spec_copy(out, manifest["spec"])
    return spec


@dataclass(frozen=True)
class LaunchResult:
    """What `launch(..., return_results=True)` and `resume` give back: the sweep's `status` (as
    `store.status`) and Tune's `ResultGrid` of this session's trials (per-trial metrics, errors,
    checkpoints, `get_dataframe()`); `results` is None when nothing was left to run."""

    status: dict
    results: Any


# --- experiment trackers ---------------------------------------------------------------------------

_TRACKER_MODULES = {"tensorboard": "tensorboardX", "wandb": "wandb", "mlflow": "mlflow"}


def _check_trackers(log: Sequence[str]) -> None:
    import importlib.util

    for kind in log:
        if kind not in _TRACKER_MODULES:
            raise SpecError(f"log: {kind!r} is not one of {', '.join(_TRACKER_MODULES)}")
        if importlib.util.find_spec(_TRACKER_MODULES[kind]) is None:
            raise SpecError(f"log {kind}: the {_TRACKER_MODULES[kind]} package is not installed "
                            f'(pip install "scaling-orchestrator[{kind}]")')


def logger_callbacks(log: Sequence[str], out: Path, name: str) -> list:
    """Ray Tune's logger callbacks for `log`: every trial's reported metrics (train/val loss, val_bpb, lr,
    tokens_per_s, mfu, ...) and its config (the RunConfig, with N, D and C) go to

    - tensorboard: `TBXLoggerCallback`, event files in each trial's folder under the Tune storage;
    - wandb: `WandbLoggerCallback`, project $WANDB_PROJECT or "scaling", group = the sweep's name
      (`WANDB_MODE=offline` keeps it local);
    - mlflow: `MLflowLoggerCallback`, $MLFLOW_TRACKING_URI or the local file store `<out>/mlruns`,
      experiment = the sweep's name.
    """
    callbacks: list = []
    for kind in dict.fromkeys(log):
        if kind == "tensorboard":
            from ray.tune.logger import TBXLoggerCallback

            callbacks.append(TBXLoggerCallback())
        elif kind == "wandb":
            from ray.air.integrations.wandb import WandbLoggerCallback

            # Ray hands the logging actors WANDB_API_KEY only: pass the driver's WANDB_MODE on to wandb.init
            mode = {"mode": os.environ["WANDB_MODE"]} if os.environ.get("WANDB_MODE") else {}
            callbacks.append(WandbLoggerCallback(project=os.environ.get("WANDB_PROJECT", "scaling"), group=name,
                                                 dir=str(out), **mode))
        elif kind == "mlflow":
            from ray.air.integrations.mlflow import MLflowLoggerCallback

            uri = os.environ.get("MLFLOW_TRACKING_URI")
            if not uri:
                uri = (out / "mlruns").absolute().as_uri()
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3: the file store is opt-in
            callbacks.append(MLflowLoggerCallback(tracking_uri=uri, experiment_name=name, save_artifact=False))
    return callbacks


# --- running ---------------------------------------------------------------------------------------

def _run(out: Path, manifest: dict, experiment: str, spec: SweepSpec, *, restore: bool, progress: bool,
         reuse_actors: bool, callbacks: Sequence[Any]) -> Any:
    from ray import tune

    from sweeps.trainable import SweepCallback, make_trainable

    # Tune warns when checkpoints force frequent experiment snapshots; with one small checkpoint per
    # evaluation that is expected and cheap (a JSON file), so keep the console for the progress view.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune's console tables (its "new output engine" prints a header even at verbose=0) would fight with
    # the sweep's own progress view.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    store.write_driver(out)
    sweep_callback = SweepCallback(str(out), progress=progress)
    all_callbacks = [sweep_callback, *callbacks]
    if spec.resources.nproc > 1:
        from sweeps.train_group import make_group_trainable

        trainable = make_group_trainable()
    else:
        trainable = make_trainable()
    tuner = None
    if restore:
        try:
            if not tune.Tuner.can_restore(experiment):
                raise FileNotFoundError(f"no Tune state at {experiment}")
            tuner = tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True, resume_errored=True)
        except Exception as exc:  # truncated tuner.pkl (ray#58179), deleted storage, version change...
            print(f"note: Tune state at {experiment} is unusable ({type(exc).__name__}: {str(exc)[:200]}); "
                  "resuming the unfinished trials from the sweep manifest", file=sys.stderr)
            tuner = None
        else:
            _replace_callbacks(tuner, all_callbacks)
    if tuner is None:
        todo = [t for t in manifest["trials"] if not store.is_finished(store.trial_record(out, t["run_id"]))]
        if restore:
            name = f"{manifest['name']}-resume{len(manifest['experiments'])}"
            experiment = _join(manifest["storage_path"], name)
            manifest["experiments"].append(experiment)
            write_json(out / store.MANIFEST, manifest)
        else:
            name = manifest["name"]
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search(_tune_configs(out, manifest, todo, spec))},
            tune_config=tune.TuneConfig(
                max_concurrent_trials=spec.max_concurrent_trials,
                reuse_actors=reuse_actors,
                trial_name_creator=_trial_name,
                trial_dirname_creator=_trial_name,
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=manifest["storage_path"],
                failure_config=tune.FailureConfig(max_failures=spec.retries),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                callbacks=all_callbacks,
                verbose=0,
            ),
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return tuner.fit()


def _trial_name(trial) -> str:
    from sweeps.trainable import trial_name

    return trial_name(trial)


def _tune_configs(out: Path, manifest: dict, trials: list[dict], spec: SweepSpec) -> list[dict]:
    """One Tune config per trial, longest first (fewer idle slots at the end of the sweep)."""
    ordered = sorted(trials, key=lambda t: -float(t["flops_detailed"]))
    sync_s = float(manifest["spec"].get("checkpoint_sync_s", 60.0))
    res = spec.resources
    group = None
    if res.nproc > 1:  # the worker group of a Ray Train trial (sweeps.train_group)
        group = {"workers": res.nproc, "cpus": res.worker_cpus, "gpus": res.worker_gpus, "strategy": res.strategy,
                 "placement": res.placement, "retries": spec.retries,
                 "storage_path": _join(manifest["storage_path"], "train")}
    return [
        {
            "run_id": t["run_id"],
            "run_dir": str(store.run_dir(out, t["run_id"])),
            "config": t["config"],
            "cpus": t["cpus"],
            "gpus": t["gpus"],
            "data_root": manifest.get("data_root"),
            "checkpoint_sync_s": sync_s,
            # for trackers (Tune logs the config): the trial's N, planned D and C = 6ND
            "N": t["params"], "D": t["tokens"], "C": 6.0 * float(t["params"]) * float(t["tokens"]),
            **({"group": group} if group else {}),
        }
        for t in ordered
    ]


def _replace_callbacks(tuner, callbacks: list) -> None:
    """Tuner.restore brings back the callbacks pickled at launch; use this session's instead (Tune has
    no public API for it: the restored RunConfig is reached through the tuner's internals, and if those
    change the pickled callbacks, which rebuild their state from disk, are kept)."""
    try:
        tuner._local_tuner.get_run_config().callbacks = list(callbacks)
    except AttributeError:
        print("note: keeping the callbacks saved with the Tune experiment", file=sys.stderr)


def _finish(out: Path, owned: bool) -> None:
    store.clear_driver(out)
    try:
        store.collect(out)
    finally:
        if owned:
            import ray

            ray.shutdown()


# --- Ray and resources -----------------------------------------------------------------------------

def _ray_initialized() -> bool:
    if "ray" not in sys.modules:
        return False
    import ray

    return ray.is_initialized()


def _ray_connect(address: str | None, num_cpus: int | None, num_gpus: int | None, dashboard: bool,
                 dashboard_host: str) -> bool:
    """Start a local Ray or join `address`; True when this call started it (and must shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init("local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=dashboard,
                 dashboard_host=dashboard_host)
    return True


def token_auth_enabled() -> bool:
    """Ray's effective authentication mode in this process (what `ray.init` will use), read from Ray
    itself, not from the `RAY_AUTH_MODE` variable (unset means disabled in Ray 2.60)."""
    try:
        from ray._private.authentication.authentication_utils import is_token_auth_enabled
    except ImportError:  # a Ray without token auth at all
        return False
    return bool(is_token_auth_enabled())


def _check_security(address: str | None, dashboard: bool, dashboard_host: str, insecure: bool) -> None:
    """Refuse (or, with `insecure`, warn about) an unauthenticated cluster reachable from the network."""
    from sweeps.security import check_connection

    warning = check_connection(address, dashboard, dashboard_host, auth_enabled=token_auth_enabled(),
                               insecure=insecure)
    if warning:
        print(warning, file=sys.stderr)


def _check_local_resources(spec: SweepSpec, source: str, num_cpus: int | None, num_gpus: int | None) -> None:
    """Before starting anything: one trial must fit on this machine."""
    cpus = num_cpus if num_cpus is not None else (os.cpu_count() or 1)
    res = spec.resources
    if res.trial_cpus > cpus:
        workers = f" ({res.nproc} workers)" if res.nproc > 1 else ""
        raise SpecError(f"{source}: resources.cpus: {res.trial_cpus:g} CPUs per trial{workers} but this machine has "
                        f"{cpus} (use --address to run on a cluster)")
    if res.trial_gpus > 0:
        if num_gpus is None:
            import torch

            num_gpus = torch.cuda.device_count()
        if res.trial_gpus > num_gpus:
            raise SpecError(f"{source}: resources.gpus: {res.trial_gpus:g} GPUs per trial but this machine has "
                            f"{num_gpus} (use --address to run on a cluster)")


def _check_cluster_resources(spec: SweepSpec, source: str, *, remote: bool) -> None:
    """After connecting: some alive node must fit one trial, or one worker of a `workers: N` trial (warn only on
    a remote, maybe autoscaling, cluster)."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    res = spec.resources
    what, cpus, gpus = ("a trial", res.cpus, res.gpus) if res.workers == 1 else \
        ("a worker", res.worker_cpus, res.worker_gpus)
    fits = [n for n in nodes if n["Resources"].get("CPU", 0) >= cpus and n["Resources"].get("GPU", 0) >= gpus]
    if fits:
        return
    biggest_gpu = max((n["Resources"].get("GPU", 0) for n in nodes), default=0)
    biggest_cpu = max((n["Resources"].get("CPU", 0) for n in nodes), default=0)
    msg = (f"resources: {what} needs {cpus:g} CPUs and {gpus:g} GPUs on one node; the largest nodes now "
           f"have {biggest_cpu:g} CPUs, {biggest_gpu:g} GPUs")
    if remote:
        print(f"warning: {msg}; trials wait until the autoscaler adds such a node", file=sys.stderr)
    else:
        raise SpecError(f"{source}: {msg}")


def _prepare_data(spec: SweepSpec, progress: bool):
    """Tokenise the corpus once, in the driver, before any trial starts (cached across sweeps)."""
    from scaling.data import prepare_data

    return prepare_data(spec.data_config(), progress=progress)


def _join(storage: str, name: str) -> str:
    return f"{storage.rstrip('/')}/{name}" if "://" in storage else str(Path(storage) / name)


def _versions() -> dict:
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for pkg in ("ray", "torch", "scaling-orchestrator"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


__all__ = ["launch", "resume"]
