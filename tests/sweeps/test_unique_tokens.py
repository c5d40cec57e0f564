"""Sweep and run folders record U, the unique tokens a run draws its D tokens from (the train split's
token count), so the data-constrained law (Muennighoff et al. 2023) can price repeated data in: real
tiny training runs on a corpus small enough that D > U, the runs table, and `analysis.io.load_points`."""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path

import pandas as pd
import pytest

from analysis.forecast.candidates import applicable
from analysis.errors import InputError
from analysis.io import FitWarning, load_points
from contracts.jsonio import write_json
from contracts.runs_table import POINT_COLUMNS, TRIAL_COLUMNS, UNIQUE_TOKENS
from scaling.config import RunConfig
from scaling.data import prepare_data
from sweeps import store

WORDS = "the of model data token scale loss law compute budget train step layer width depth run fit".split()


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """A ~10 KB corpus of 24 documents: a few thousand train tokens, so 16k training tokens repeat it."""
    root = tmp_path_factory.mktemp("corpus")
    rng = random.Random(0)
    for i in range(24):
        text = "\n".join(" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(6))
        (root / f"doc{i:02d}.txt").write_text(text + "\n")
    cfg = {"corpus": [str(root)], "vocab_size": 300, "val_fraction": 0.2, "cache_dir": str(tmp_path_factory.mktemp("cache"))}
    return cfg, prepare_data(RunConfig.model_validate(_run(cfg, 32)).data, progress=False)


def _run(data: dict, d_model: int) -> dict:
    return {"model": {"n_layer": 1, "d_model": d_model, "n_head": 2, "context": 32, "vocab_size": 300},
            "data": data, "train": {"tokens": 16 * 1024, "batch_tokens": 1024, "eval_tokens": 1024, "threads": 1,
                                    "lr": 3e-3}}


@pytest.fixture(scope="module")
def sweep(small_corpus, tmp_path_factory) -> Path:
    """A sweep folder of two real runs (d_model 32 and 48) on the small corpus, collected by `sweeps.store`."""
    from scaling.train import train

    data_cfg, data = small_corpus
    out = tmp_path_factory.mktemp("sweep") / "dc"
    configs = {f"d{w}": RunConfig.model_validate(_run(data_cfg, w)) for w in (32, 48)}
    write_json(out / store.MANIFEST, {
        "name": "dc", "experiments": [], "n_train_tokens": data.n_train_tokens,
        "trials": [{"run_id": k, "config": c.model_dump(mode="json")} for k, c in configs.items()]})
    for run_id, cfg in configs.items():
        train(cfg, store.run_dir(out, run_id), data=data, progress=False)
    write_json(out / store.STATE, {k: {"status": "completed", "attempts": 1} for k in configs})
    store.collect(out)
    return out


def test_a_run_records_its_corpus_train_tokens_as_unique_tokens(small_corpus, sweep):
    _, data = small_corpus
    run = store.run_dir(sweep, "d32")
    trial = json.loads((run / "trial.json").read_text())
    points = pd.read_csv(run / "points.csv")
    assert UNIQUE_TOKENS in TRIAL_COLUMNS and UNIQUE_TOKENS in POINT_COLUMNS
    assert tuple(points.columns) == POINT_COLUMNS
    assert trial[UNIQUE_TOKENS] == data.n_train_tokens == points[UNIQUE_TOKENS].item()
    assert trial["tokens"] > 2 * data.n_train_tokens  # D > U: the run repeats its corpus
    assert points["epochs"].item() == pytest.approx(points["tokens"].item() / data.n_train_tokens)


def test_the_sweep_tables_and_load_points_carry_unique_tokens(small_corpus, sweep):
    _, data = small_corpus
    tables = store.read_tables(sweep)
    assert tables.points[UNIQUE_TOKENS].tolist() == [data.n_train_tokens] * 2
    assert tables.trials[UNIQUE_TOKENS].tolist() == [data.n_train_tokens] * 2
    for source in (sweep, store.run_dir(sweep, "d48")):
        pts = load_points(source)
        assert pts.columns["u"] == UNIQUE_TOKENS
        assert pts.U.tolist() == [float(data.n_train_tokens)] * len(pts)
        assert (pts.D > pts.U).all()
    assert "data_constrained" in applicable(load_points(sweep), None)[0]


def test_folders_without_the_column_still_load(sweep, tmp_path):
    """Run folders written before the column existed (none, or empty in every row) load with U unknown;
    a folder where only some rows have it leaves U out with a warning naming the count."""
    table = pd.read_parquet(sweep / "points.parquet")
    table.drop(columns=UNIQUE_TOKENS).to_csv(tmp_path / "old.csv", index=False)
    table.assign(unique_tokens=None).to_csv(tmp_path / "empty.csv", index=False)
    for name in ("old.csv", "empty.csv"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", FitWarning)
            pts = load_points(tmp_path / name)
        assert pts.U is None and "u" not in pts.columns
    table.loc[0, UNIQUE_TOKENS] = None
    table.to_csv(tmp_path / "mixed.csv", index=False)
    with pytest.warns(FitWarning, match=r"'unique_tokens' is empty in 1 of 2 rows"):
        assert load_points(tmp_path / "mixed.csv").U is None
    with pytest.raises(InputError, match=r"column 'unique_tokens', row 1 is empty"):
        load_points(tmp_path / "mixed.csv", u_col=UNIQUE_TOKENS)
