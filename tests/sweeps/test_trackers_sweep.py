"""`launch(..., log=[...], return_results=True)`: Ray Tune's logger callbacks feed TensorBoard, W&B (offline)
and MLflow (a local file store) with every trial's metrics and its N, D, C; Tune's ResultGrid comes back.

One real sweep of three tiny trials on a local Ray (stopped at the end of the module)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from sweeps.launch import LaunchResult, launch
from sweeps.spec import load_spec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scaling"))
from test_trackers import read_tensorboard_scalars, read_wandb_offline  # noqa: E402

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[2] / "sweeps" / "examples"
HAVE = {k: importlib.util.find_spec(m) is not None for k, m in
        (("tensorboard", "tensorboardX"), ("wandb", "wandb"), ("mlflow", "mlflow"))}


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init("local", num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2)
    yield ray
    ray.shutdown()


def test_sweep_logs_to_trackers_and_returns_the_result_grid(ray_local, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    spec = load_spec(EXAMPLES / "isoflop-cpu.yaml",
                     ["data.max_bytes=3000000", "budgets=[3e10]", "isoflop.sizes_per_budget=3", "isoflop.spread=2",
                      "isoflop.tokens_per_param=5", "context=64", "min_steps=10", "batch.tokens=2048",
                      "train.eval_tokens=2048", "eval_interval=5", "name=trk"])
    kinds = [k for k, ok in HAVE.items() if ok]
    out = tmp_path / "sweep"
    result = launch(spec, out, progress=False, log=kinds, return_results=True)
    assert isinstance(result, LaunchResult)
    assert result.status["counts"].get("completed") == 3, result.status
    grid = result.results
    assert len(grid) == 3 and grid.num_errors == 0
    finals = {r.metrics["run_id"]: r.metrics for r in grid}
    assert all(m["status"] == "completed" and math.isfinite(m["final_loss"]) for m in finals.values())
    configs = {r.config["trial"]["run_id"]: r.config["trial"] for r in grid}
    for run_id, c in configs.items():
        assert c["C"] == pytest.approx(6 * c["N"] * c["D"]) and c["C"] == pytest.approx(3e10, rel=0.05)

    events = list(Path(grid.experiment_path).rglob("events.out.tfevents.*"))
    assert len({p.parent for p in events}) == 3  # one TensorBoard folder per trial
    for folder in {p.parent for p in events}:
        tb = read_tensorboard_scalars(folder)
        assert len(tb["ray/tune/val_loss"]) >= 2 and "ray/tune/val_bpb" in tb

    if HAVE["wandb"]:
        runs = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
        assert len(runs) == 3
        for path in runs:
            history, config = read_wandb_offline(path)
            assert any("val_loss" in h for h in history)
            assert config["trial"]["N"] in {c["N"] for c in configs.values()}

    if HAVE["mlflow"]:
        from mlflow.tracking import MlflowClient

        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        client = MlflowClient(tracking_uri=(out / "mlruns").absolute().as_uri())
        exp = client.get_experiment_by_name("trk")
        runs = client.search_runs([exp.experiment_id])
        assert len(runs) == 3
        for run in runs:
            assert float(run.data.params["trial/N"]) in {c["N"] for c in configs.values()}
            assert len(client.get_metric_history(run.info.run_id, "val_loss")) >= 2
    missing = [k for k, ok in HAVE.items() if not ok]
    if missing:
        pytest.skip(f"checked {kinds}; not installed: {missing} (the [wandb] / [mlflow] extras)")
