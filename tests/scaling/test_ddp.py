"""Several data-parallel processes by the standard launcher (torchrun's environment, gloo on CPU) see the same
batches as one process with the same global batch and train the same model: `train(nproc=2)`, `scaling train
--nproc 2`, and `python -m torch.distributed.run --nproc-per-node 2 -m orchestrator.cli train`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import main
from scaling.config import RunConfig
from scaling.distributed import world_from_env
from scaling.errors import ConfigError
from scaling.train import train

MODEL = {"n_layer": 1, "d_model": 32, "n_head": 2, "context": 64, "vocab_size": 512}
ROOT = Path(__file__).resolve().parents[2]


def config(stdlib_data_config, nproc: int) -> RunConfig:
    return RunConfig.model_validate({
        "model": MODEL, "data": stdlib_data_config.model_dump(),
        "train": {"tokens": 24 * 1024, "batch_tokens": 2048, "eval_tokens": 4096, "threads": 1, "lr": 3e-3,
                  "eval_interval": 3, "nproc": nproc, "device": "cpu"},
    })


def cli_args(stdlib_data_config, out: Path) -> list[str]:
    """`scaling train` arguments for the run of `config()` (the stdlib corpus: a cache hit)."""
    c = stdlib_data_config
    return ["train", "--n-layer", "1", "--d-model", "32", "--n-head", "2", "--context", "64", "--vocab-size", "512",
            "--tokens", "24k", "--batch-tokens", "2048", "--eval-tokens", "4096", "--threads", "1", "--lr", "3e-3",
            "--eval-interval", "3", "--device", "cpu", "--max-bytes", str(c.max_bytes), "--val-fraction",
            str(c.val_fraction), "--cache-dir", c.cache_dir, "--out", str(out), "--json", "--quiet"]


@pytest.fixture(scope="module")
def single(stdlib_data, stdlib_data_config, tmp_path_factory):
    return train(config(stdlib_data_config, 1), tmp_path_factory.mktemp("one"), data=stdlib_data, progress=False)


def assert_same_curve(single, curves: list[dict]) -> None:
    # same data, same init, gradients averaged: the trajectories agree up to float summation order
    one = [r["val_loss"] for r in single.curves]
    two = [r["val_loss"] for r in curves]
    assert len(one) == len(two) == 4
    for a, b in zip(one, two):
        assert b == pytest.approx(a, rel=2e-3)
    assert two[-1] < two[0] - 0.15
    assert single.curves[0]["train_loss"] == pytest.approx(curves[0]["train_loss"], rel=1e-4)


def test_two_launched_processes_match_one_process_and_resume(single, stdlib_data, stdlib_data_config, tmp_path):
    ddp_cfg = config(stdlib_data_config, 2)
    part = train(ddp_cfg, tmp_path / "two", data=stdlib_data, progress=False, stop_after_steps=5)
    assert part.trial["status"] == "running" and part.trial["step"] == 5
    assert json.loads((tmp_path / "two" / "checkpoint" / "meta.json").read_text())["step"] == 5
    ddp = train(ddp_cfg, tmp_path / "two", data=stdlib_data, progress=False)
    assert ddp.trial["status"] == "completed" and ddp.trial["nproc"] == 2
    assert ddp.trial["batch_tokens"] == single.trial["batch_tokens"] == 2048
    assert ddp.trial["micro_batch_tokens"] == 1024  # each rank reads half of every batch
    assert_same_curve(single, ddp.curves)
    assert json.loads((tmp_path / "two" / "trial.json").read_text())["status"] == "completed"


def test_cli_nproc_2_matches_one_process(single, stdlib_data, stdlib_data_config, tmp_path, capsys):
    assert main([*cli_args(stdlib_data_config, tmp_path / "cli"), "--nproc", "2"]) == 0
    trial = json.loads(capsys.readouterr().out)
    assert trial["status"] == "completed" and trial["nproc"] == 2 and trial["micro_batch_tokens"] == 1024
    assert trial["final_loss"] == pytest.approx(single.trial["final_loss"], rel=2e-3)


def test_runs_under_torchrun(single, stdlib_data, stdlib_data_config, tmp_path):
    """Each rank runs the command; the launcher's environment makes them one run, rank 0 prints."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
         "orchestrator.cli", *cli_args(stdlib_data_config, tmp_path / "torchrun")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    trial = json.loads(proc.stdout)  # one JSON document: rank 1 printed nothing
    assert trial["status"] == "completed" and trial["nproc"] == 2
    assert_same_curve(single, _read_curves(tmp_path / "torchrun"))


def _read_curves(out: Path) -> list[dict]:
    import csv

    with open(out / "curves.csv", newline="") as f:
        return [{k: float(v) if k in ("val_loss", "train_loss") else v for k, v in row.items()}
                for row in csv.DictReader(f)]


def test_launcher_environment_is_read_and_checked(stdlib_data, stdlib_data_config, tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert world_from_env() is None
    with pytest.raises(ConfigError, match=r"a reporter \(e.g. --log trackers\) needs the run's rank 0"):
        train(config(stdlib_data_config, 2), tmp_path / "r", data=stdlib_data, progress=False,
              reporter=lambda m, c: None)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert world_from_env() is None
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    w = world_from_env()
    assert (w.rank, w.local_rank, w.world_size) == (2, 0, 4)
    with pytest.raises(ConfigError, match="train.nproc: 2, but the launcher started 4 processes"):
        train(config(stdlib_data_config, 2), tmp_path / "r", data=stdlib_data, progress=False)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ConfigError, match="RANK 4, WORLD_SIZE 4"):
        world_from_env()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ConfigError, match="RANK='x' is not an integer"):
        world_from_env()


def _run_and_terminate(argv: list[str], ready, target) -> tuple[int, str, str]:
    """Start `scaling ...argv`, wait until `ready()` (the run is training), send SIGTERM to `target(proc)`, wait."""
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", *argv], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while not ready() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        target(proc).send_signal(signal.SIGTERM)
        out_text, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out_text, err


def test_sigterm_to_one_rank_or_to_the_launcher_stops_every_rank_at_one_step_and_resumes(
        stdlib_data, stdlib_data_config, tmp_path):
    """`scaling train --nproc 2`: SIGTERM to one rank only, then (resumed) to the launching process, which torchrun's
    agent passes on to both ranks. Each time the ranks agree on the stop step (the flag rides the loss all-reduce),
    one checkpoint is written at that step and the command exits 0; resumed, the run equals an uninterrupted
    two-process run bit for bit (CPU, gloo)."""
    import psutil

    from scaling.checkpoint import find_checkpoint

    part = tmp_path / "part"
    args = cli_args(stdlib_data_config, part)
    args[args.index("24k")] = "240k"                    # 117 steps: long enough to be signalled mid-run
    args[args.index("--eval-interval") + 1] = "10"
    args += ["--nproc", "2"]

    def one_rank(proc):
        ranks = [p for p in psutil.Process(proc.pid).children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]
        assert len(ranks) == 2, [p.cmdline() for p in ranks]
        return max(ranks, key=lambda p: p.pid)          # started second: local rank 1

    def step_now() -> int:
        trial = json.loads((part / "trial.json").read_text()) if (part / "trial.json").exists() else {}
        return int(trial.get("step") or 0)

    stops: list[int] = []
    for target in (one_rank, lambda proc: psutil.Process(proc.pid)):
        after = stops[-1] if stops else 0
        rc, out, err = _run_and_terminate(args, lambda: step_now() > after, target)
        assert rc == 0, err[-3000:]
        assert "Traceback" not in err and "stopped by SIGTERM" in err, err[-3000:]
        trial = json.loads(out)
        assert trial["status"] == "running" and trial["step"] > after
        assert find_checkpoint(part) == part / "checkpoint"
        assert json.loads((part / "checkpoint" / "meta.json").read_text())["step"] == trial["step"]
        assert not (part / "checkpoint.tmp").exists() and not (part / "checkpoint.old").exists()
        stops.append(trial["step"])

    cfg = RunConfig.model_validate(json.loads((part / "config.json").read_text()))
    assert cfg.train.nproc == 2
    resumed = train(cfg, part, data=stdlib_data, progress=False)
    full = train(cfg, tmp_path / "full", data=stdlib_data, progress=False)
    assert resumed.trial["status"] == full.trial["status"] == "completed" and stops[-1] < full.trial["step"]
    assert resumed.trial["final_loss"] == full.trial["final_loss"]
    assert [(r["step"], r["val_loss"], r["train_loss"]) for r in resumed.curves] == \
           [(r["step"], r["val_loss"], r["train_loss"]) for r in full.curves]
