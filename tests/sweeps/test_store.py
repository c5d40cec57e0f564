"""The runs table of a sweep folder: statuses kept right (completed, running, failed, pending) and
rows deduplicated when collected again. Run folders come from real `scaling.train.train` runs; the
state file is what the driver's Tune callback writes."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from scaling.train import train
from contracts.jsonio import write_json
from sweeps import store
from sweeps.design import expand
from sweeps.spec import parse_yaml, validate_spec

SPEC = """
name: st
vocab_size: 512
context: 64
data: {max_bytes: 3000000}
design: grid
sizes: [16k, 20k, 28k, 36k]
tokens: [40k]
min_steps: 20
batch: {tokens: 1024}
lr: {rule: fixed, value: 3e-3}
train: {eval_tokens: 2048}
eval_interval: 10
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A sweep folder: trial 0 completed, 1 interrupted (running), 2 failed by Ray, 3 never started."""
    from scaling.data import prepare_data

    spec = validate_spec(parse_yaml(SPEC, "s.yaml"), "s.yaml")
    trials = expand(spec)
    out = tmp_path_factory.mktemp("store") / "sweep"
    data = prepare_data(spec.data_config(), progress=False)
    write_json(out / store.MANIFEST, {
        "name": "st", "experiments": [], "storage_path": str(out / "ray"),
        "trials": [{**t.row(), "config": t.config.model_dump(mode="json")} for t in trials]})
    train(trials[0].config, store.run_dir(out, trials[0].run_id), data=data, progress=False)
    train(trials[1].config, store.run_dir(out, trials[1].run_id), data=data, progress=False, stop_after_steps=20)
    train(trials[2].config, store.run_dir(out, trials[2].run_id), data=data, progress=False, stop_after_steps=10)
    write_json(out / store.STATE, {
        trials[0].run_id: {"status": "completed", "attempts": 1},
        trials[1].run_id: {"status": "running", "attempts": 1, "tokens": 20 * 1024, "tokens_per_s": 1000.0},
        trials[2].run_id: {"status": "failed", "attempts": 3, "error": "RuntimeError: out of memory"},
        trials[3].run_id: {"status": "pending", "attempts": 0},
    })
    return out


def test_statuses(folder):
    ids = [t["run_id"] for t in store.read_manifest(folder)["trials"]]
    tables = store.collect(folder)
    trials = tables.trials.set_index("run_id")
    assert list(trials.index) == ids[:3]  # the never-started trial has no row
    assert trials.loc[ids[0], "status"] == "completed" and math.isfinite(trials.loc[ids[0], "final_loss"])
    assert trials.loc[ids[1], "status"] == "running"
    assert trials.loc[ids[2], "status"] == "failed" and "out of memory" in trials.loc[ids[2], "error"]
    assert trials.loc[ids[2], "attempts"] == 3
    points = tables.points.set_index("run_id")
    assert list(points.index) == [ids[0]] and points.loc[ids[0], "status"] == "completed"
    for name in ("trials", "curves", "points"):
        assert (folder / f"{name}.parquet").exists()

    s = store.status(folder)
    # no driver runs this folder: the interrupted trial is `stopped` (resume continues it)
    assert s["counts"] == {"completed": 1, "running": 0, "stopped": 1, "failed": 1, "diverged": 0, "pending": 1}
    by_id = {t["run_id"]: t for t in s["trials"]}
    assert by_id[ids[0]]["progress"] == 1.0 and by_id[ids[3]]["progress"] == 0.0
    assert 0 < by_id[ids[1]]["progress"] < 1
    assert s["driver"] == "not running" and 0 < s["flops_done"] < s["flops_total"]


def test_recollection_deduplicates(folder):
    first = store.collect(folder)
    ids = [t["run_id"] for t in store.read_manifest(folder)["trials"]]
    curves_csv = store.run_dir(folder, ids[0]) / "curves.csv"
    original = curves_csv.read_text()
    try:  # a resumed run re-reporting its last evaluations: the same rows twice
        rows = original.splitlines()
        curves_csv.write_text("\n".join(rows + rows[-3:]) + "\n")
        again = store.collect(folder)
    finally:
        curves_csv.write_text(original)
    assert len(again.curves) == len(first.curves) and len(again.trials) == len(first.trials)
    assert not again.curves.duplicated(["run_id", "step", "branch"]).any()
    reread = store.read_tables(folder)
    pd.testing.assert_frame_equal(reread.points, again.points)
