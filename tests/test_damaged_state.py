"""Damaged state is one line and loses nothing: files the tool wrote itself (a run folder, its checkpoint in
both layouts, a sweep folder, a token cache) damaged by a crash, a full disk or a bad copy. Each case damages
a copy of one tiny real run or sweep (made once per module) and runs the real command line in-process
(`orchestrator.cli.main`): exit code 2, exactly one stderr line starting `error:` that names the damaged file
and says what to do, no traceback, and every file of the case's folder byte-identical afterwards (nothing
overwritten, nothing restarted). Then the things that are rebuilt (a Parquet table, a run's rows) keep the
damaged original beside as `*.damaged`, and counts rounded beyond 5% / 2x are said / refused.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch

from cli_case import one_error_line, snapshot
from orchestrator.cli import main

MODEL = {"n_layer": 1, "d_model": 16, "n_head": 1, "context": 32, "vocab_size": 512}
TRAIN = {"tokens": 8 * 512, "batch_tokens": 512, "eval_tokens": 1024, "threads": 1, "lr": 3e-3, "eval_interval": 2}

SWEEP = """
name: dmg
vocab_size: 512
context: 32
data: {max_bytes: 3000000, val_fraction: 0.05}
design: grid
sizes: [10k, 16k]
tokens: [6k]
min_steps: 4
batch: {tokens: 512}
lr: {rule: fixed, value: 3e-3}
train: {eval_tokens: 1024}
eval_interval: 4
"""


class _RunsCode:
    """A pickle that would run `touch <marker>` when loaded without `weights_only`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ------------------------------------------------------------------------------------------ fixtures

def _sharded_copy(run: Path, dest: Path, cfg, data) -> None:
    """`dest`: `run` with its checkpoint rewritten in the sharded layout (DCP shard files) by the real
    `RunState.save` of a one-process run whose strategy checkpoints shards."""
    from scaling.checkpoint import find_checkpoint, remove_checkpoint
    from scaling.parallel import Replicated
    from scaling.trainer import Trainer

    class OneShard(Replicated):
        """One process that checkpoints as FSDP does: named state, the sharded layout."""

        @property
        def sharded_checkpoints(self) -> bool:
            return True

        def state(self, model, optimizer):
            return self.named_state(model, optimizer)

    shutil.copytree(run, dest)
    trainer = Trainer(cfg, dest, data)
    trainer.state.load(find_checkpoint(dest), trainer.plan)
    trainer.state.parallel = OneShard(1, trainer.device)
    remove_checkpoint(dest)
    trainer.state.save(dest, trainer.plan, run_id="run", world_size=1, wall_seconds=0.0)


def _sweep(out: Path, data_config, data) -> None:
    """A sweep folder as `launch` leaves it after an interruption, without Ray: manifest, spec.yaml,
    state.json, trial 0 completed, trial 1 interrupted with a checkpoint, the three Parquet tables."""
    import yaml

    from contracts.jsonio import write_atomic, write_json
    from scaling.config import RunConfig
    from scaling.train import train
    from sweeps import store
    from sweeps.design import expand
    from sweeps.spec import parse_yaml, validate_spec

    spec = validate_spec(parse_yaml(SWEEP, "s.yaml"), "s.yaml")
    trials = expand(spec)
    configs = [RunConfig.model_validate({**t.config.model_dump(mode="json"), "data": data_config.model_dump(mode="json")})
               for t in trials]
    write_json(out / store.MANIFEST, {
        "name": "dmg", "experiments": [], "storage_path": str(out / "ray"), "spec": spec.model_dump(mode="json"),
        "trials": [{**t.row(), "config": c.model_dump(mode="json")} for t, c in zip(trials, configs)]})
    write_atomic(out / "spec.yaml", yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    train(configs[0], store.run_dir(out, trials[0].run_id), data=data, progress=False)
    train(configs[1], store.run_dir(out, trials[1].run_id), data=data, progress=False, stop_after_steps=4)
    write_json(out / store.STATE, {trials[0].run_id: {"status": "completed", "attempts": 1},
                                   trials[1].run_id: {"status": "running", "attempts": 1}})
    store.collect(out)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, stdlib_data, stdlib_data_config) -> Path:
    """One folder holding an interrupted run (`run`, full layout), the same run sharded (`sharded`), a sweep
    (`sweep`), the run's token cache entry (`cache`) and a copy of the run's config (`good.json`)."""
    from scaling.config import RunConfig
    from scaling.train import train

    root = tmp_path_factory.mktemp("pristine")
    cfg = RunConfig.model_validate({"model": MODEL, "data": stdlib_data_config.model_dump(), "train": TRAIN})
    result = train(cfg, root / "run", data=stdlib_data, progress=False, stop_after_steps=4)
    assert result.trial["status"] == "running" and result.trial["step"] == 4
    _sharded_copy(root / "run", root / "sharded", cfg, stdlib_data)
    _sweep(root / "sweep", stdlib_data_config, stdlib_data)
    shutil.copy(root / "run" / "config.json", root / "good.json")
    entry = Path(stdlib_data.root)
    shutil.copytree(entry, root / "cache" / entry.relative_to(stdlib_data_config.cache_dir))
    return root


# ------------------------------------------------------------------------------------------ the cases

@dataclass
class Damaged:
    id: str
    folder: str                                # the pristine folder copied into the case: run, sharded, sweep, cache
    damage: Callable[[Path, Path], None]       # (the copy, a marker folder) -> None
    argv: list[str]                            # "{d}": the case's folder; "{good}": the pristine run's config
    names: str                                 # the damaged file, as the error line must name it
    remedy: str                                # what the error line must tell the user to do


def _write(rel: str, data: bytes | str | Callable[[bytes], bytes]) -> Callable[[Path, Path], None]:
    def damage(d: Path, marker: Path) -> None:
        path = d / rel
        if callable(data):
            path.write_bytes(data(path.read_bytes()))
        else:
            path.write_bytes(data.encode() if isinstance(data, str) else data)
    return damage


def _json_edit(rel: str, edit: Callable[[dict], object]) -> Callable[[Path, Path], None]:
    def damage(d: Path, marker: Path) -> None:
        path = d / rel
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return damage


def _remove(rel: str) -> Callable[[Path, Path], None]:
    def damage(d: Path, marker: Path) -> None:
        path = d / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return damage


def _replace_with_folder(rel: str) -> Callable[[Path, Path], None]:
    def damage(d: Path, marker: Path) -> None:
        (d / rel).unlink()
        (d / rel).mkdir()
        (d / rel / "x").write_text("x")
    return damage


def _torch_file(rel: str, obj: Callable[[Path], object]) -> Callable[[Path, Path], None]:
    def damage(d: Path, marker: Path) -> None:
        torch.save(obj(marker), d / rel)
    return damage


def _code_pickle(rel: str) -> Callable[[Path, Path], None]:
    def damage(d: Path, marker: Path) -> None:
        (d / rel).write_bytes(pickle.dumps(_RunsCode(marker / "ran")))
    return damage


def _both(*damages: Callable[[Path, Path], None]) -> Callable[[Path, Path], None]:
    def damage(d: Path, marker: Path) -> None:
        for dm in damages:
            dm(d, marker)
    return damage


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


RESUME = ["train", "--config", "{good}", "--out", "{d}", "--no-progress"]
NO_RESUME = "--no-resume"
STATE, META = "checkpoint/state.pt", "checkpoint/meta.json"


REWRITE_META = "delete it and run again: it is written again from state.pt"


def _run(id: str, damage, names: str, remedy: str = NO_RESUME) -> Damaged:
    return Damaged(id, "run", damage, RESUME, names, remedy if names != META else REWRITE_META)


RUNS = [
    _run("state-truncated-half", _write(STATE, _half), STATE),
    _run("state-truncated-100-bytes", _write(STATE, lambda b: b[:100]), STATE),
    _run("state-last-byte-gone", _write(STATE, lambda b: b[:-1]), STATE),
    _run("state-empty", _write(STATE, b""), STATE),
    _run("state-random-bytes", _write(STATE, lambda b: os.urandom(len(b))), STATE),
    _run("state-text", _write(STATE, "not a checkpoint\n" * 50), STATE),
    _run("state-pickle-that-runs-code", _code_pickle(STATE), STATE),
    _run("state-torch-file-that-runs-code", _torch_file(STATE, lambda m: {"format": 1, "x": _RunsCode(m / "ran")}),
         STATE),
    _run("state-a-list", _torch_file(STATE, lambda m: [1, 2, 3]), STATE),
    _run("state-format-9", _torch_file(STATE, lambda m: {"format": 9}), STATE),
    _run("state-no-plan", _torch_file(STATE, lambda m: {"format": 1, "model": {}, "optimizer": {}}), STATE),
    _run("state-a-folder", _replace_with_folder(STATE), STATE),
    _run("state-missing", _remove(STATE), STATE),
    _run("meta-garbage", _write(META, "{garbage"), META),
    _run("meta-empty", _write(META, b""), META),
    _run("meta-truncated", _write(META, _half), META),
    _run("meta-binary", _write(META, b"\x00\xff\xfe\x80" * 16), META),
    _run("meta-a-list", _write(META, "[1, 2]"), META),
    _run("meta-format-7", _json_edit(META, lambda m: {**m, "format": 7}), META),
    _run("meta-step-negative", _json_edit(META, lambda m: {**m, "step": -3}), META),
    _run("meta-step-text", _json_edit(META, lambda m: {**m, "step": "four"}), META),
    _run("checkpoint-a-file", _both(_remove("checkpoint"), _write("checkpoint", "x")), "checkpoint"),
    _run("checkpoint-old-meta-garbage-between-renames",
         _both(lambda d, m: (d / "checkpoint").rename(d / "checkpoint.old"), _write("checkpoint.old/meta.json", "{")),
         "checkpoint.old/meta.json", REWRITE_META),
    _run("checkpoint-empty-folder", _both(_remove(STATE), _remove(META)), STATE),
    _run("meta-missing-and-state-not-a-run", _both(_remove(META), _torch_file(STATE, lambda m: {"format": 1})),
         STATE),
    _run("config-garbage", _write("config.json", "{garbage"), "config.json"),
    _run("config-truncated", _write("config.json", _half), "config.json"),
    _run("config-a-list", _write("config.json", "[]"), "config.json"),
    _run("config-no-model", _json_edit("config.json", lambda c: {k: v for k, v in c.items() if k != "model"}),
         "config.json"),
]

SHARDED = [
    Damaged("sharded-metadata-truncated", "sharded", _write("checkpoint/.metadata", _half), RESUME,
            "checkpoint/.metadata", NO_RESUME),
    Damaged("sharded-metadata-runs-code", "sharded", _code_pickle("checkpoint/.metadata"), RESUME,
            "checkpoint/.metadata", NO_RESUME),
    Damaged("sharded-metadata-missing", "sharded", _remove("checkpoint/.metadata"), RESUME,
            "checkpoint/.metadata", NO_RESUME),
    Damaged("sharded-shard-missing", "sharded", _remove("checkpoint/__0_0.distcp"), RESUME,
            "checkpoint/__0_0.distcp", NO_RESUME),
    Damaged("sharded-shard-truncated", "sharded", _write("checkpoint/__0_0.distcp", _half), RESUME,
            "checkpoint/__0_0.distcp", NO_RESUME),
    Damaged("sharded-shard-empty", "sharded", _write("checkpoint/__0_0.distcp", b""), RESUME,
            "checkpoint/__0_0.distcp", NO_RESUME),
    Damaged("sharded-state-truncated", "sharded", _write(STATE, _half), RESUME, STATE, NO_RESUME),
]

CACHE_ARGV = ["train", "--config", "{d}/cfg.json", "--out", "{d}/fresh", "--no-progress"]


def _cache(id: str, damage_entry: Callable[[Path], None], names: str) -> Damaged:
    def damage(d: Path, marker: Path) -> None:
        (entry,) = (d / "tokens").iterdir()
        damage_entry(entry)
    return Damaged(id, "cache", damage, CACHE_ARGV, names, "delete the cache entry")


CACHES = [
    _cache("cache-meta-garbage", lambda e: (e / "meta.json").write_text("{garbage"), "meta.json"),
    _cache("cache-meta-a-list", lambda e: (e / "meta.json").write_text("[]"), "meta.json"),
    _cache("cache-meta-no-token-count", lambda e: (e / "meta.json").write_text(json.dumps(
        {k: v for k, v in json.loads((e / "meta.json").read_text()).items() if k != "n_train_tokens"})), "meta.json"),
    _cache("cache-meta-bad-dtype", lambda e: (e / "meta.json").write_text(json.dumps(
        {**json.loads((e / "meta.json").read_text()), "dtype": "float64"})), "meta.json"),
    _cache("cache-train-truncated", lambda e: (e / "train.bin").write_bytes(_half((e / "train.bin").read_bytes())),
           "train.bin"),
    _cache("cache-val-missing", lambda e: (e / "val.bin").unlink(), "val.bin"),
]

STATUS = ["sweep", "status", "{d}"]
RESUME_SWEEP = ["sweep", "resume", "{d}", "--no-progress", "--num-cpus", "1"]
REBUILD = "scaling sweep resume"


def _first_run(d: Path) -> Path:
    return sorted((d / "runs").iterdir())[0]


def _in_run(index: int, damage: Callable[[Path, Path], None]) -> Callable[[Path, Path], None]:
    """`damage` applied inside the `index`-th run folder of a sweep (0: completed, 1: interrupted)."""
    def apply(d: Path, marker: Path) -> None:
        damage(sorted((d / "runs").iterdir())[index], marker)
    return apply


def _sweep_case(id: str, argv: list[str], damage, names: str, remedy: str) -> Damaged:
    return Damaged(id, "sweep", damage, argv, names, remedy)


SWEEPS = [
    _sweep_case("sweep-json-garbage-status", STATUS, _write("sweep.json", "{garbage"), "sweep.json", "restore it"),
    _sweep_case("sweep-json-garbage-resume", RESUME_SWEEP, _write("sweep.json", "{garbage"), "sweep.json", "restore it"),
    _sweep_case("sweep-json-truncated", STATUS, _write("sweep.json", _half), "sweep.json", "restore it"),
    _sweep_case("sweep-json-a-list", STATUS, _write("sweep.json", "[]"), "sweep.json", "restore it"),
    _sweep_case("sweep-json-no-trials", STATUS, _json_edit("sweep.json", lambda m: {**m, "trials": None}),
                "sweep.json", "restore it"),
    _sweep_case("sweep-json-trial-without-id", STATUS, _json_edit("sweep.json", lambda m: {**m, "trials": [{}]}),
                "sweep.json", "restore it"),
    _sweep_case("sweep-json-spec-damaged-resume", RESUME_SWEEP,
                _json_edit("sweep.json", lambda m: {**m, "spec": {**m["spec"], "design": "spiral"}}),
                "sweep.json", "restore it"),
    _sweep_case("state-json-garbage-status", STATUS, _write("state.json", "{garbage"), "state.json", REBUILD),
    _sweep_case("state-json-garbage-resume", RESUME_SWEEP, _write("state.json", "{garbage"), "state.json", REBUILD),
    _sweep_case("state-json-entry-a-number", STATUS, _json_edit("state.json", lambda s: {k: 3 for k in s}),
                "state.json", REBUILD),
    _sweep_case("spec-yaml-garbage-status", STATUS, _write("spec.yaml", "design: [unclosed\n"), "spec.yaml", REBUILD),
    _sweep_case("spec-yaml-a-list-resume", RESUME_SWEEP, _write("spec.yaml", "- 1\n- 2\n"), "spec.yaml", REBUILD),
    _sweep_case("spec-yaml-binary", STATUS, _write("spec.yaml", b"\xff\xfe\x00" * 20), "spec.yaml", REBUILD),
    _sweep_case("trial-json-garbage", STATUS, _in_run(0, _write("trial.json", "{garbage")), "trial.json", REBUILD),
    _sweep_case("trial-json-truncated", STATUS, _in_run(0, _write("trial.json", _half)), "trial.json", REBUILD),
    _sweep_case("trial-json-no-status", STATUS,
                _in_run(0, _json_edit("trial.json", lambda t: {k: v for k, v in t.items() if k != "status"})),
                "trial.json", REBUILD),
    _sweep_case("curves-csv-last-line-cut", STATUS, _in_run(0, _write("curves.csv", lambda b: b[:-8])),
                "curves.csv", REBUILD),
    _sweep_case("curves-csv-empty", STATUS, _in_run(1, _write("curves.csv", b"")), "curves.csv", REBUILD),
    _sweep_case("points-csv-binary", STATUS, _in_run(0, _write("points.csv", b"\xff\xfe\x00\x81" * 30)),
                "points.csv", REBUILD),
    _sweep_case("points-csv-no-loss-column", STATUS, _in_run(0, _write("points.csv", "a,b\n1,2\n")),
                "points.csv", REBUILD),
    _sweep_case("run-checkpoint-meta-garbage-resume", RESUME_SWEEP, _in_run(1, _write(META, "{garbage")),
                "checkpoint/meta.json", "delete"),
    _sweep_case("run-checkpoint-state-empty-resume", RESUME_SWEEP, _in_run(1, _write(STATE, b"")),
                "checkpoint/state.pt", "delete"),
    _sweep_case("run-checkpoint-state-truncated-resume", RESUME_SWEEP, _in_run(1, _write(STATE, _half)),
                "checkpoint/state.pt", "delete"),
    _sweep_case("run-checkpoint-a-file-resume", RESUME_SWEEP, _in_run(1, _both(_remove("checkpoint"),
                                                                                 _write("checkpoint", "x"))),
                "checkpoint", "delete"),
    _sweep_case("run-rows-damaged-without-checkpoint-resume", RESUME_SWEEP,
                _in_run(0, _both(_remove("checkpoint"), _write("points.csv", "a,b\n1,2\n"))),
                "points.csv", "delete"),
    _sweep_case("run-config-garbage-resume", RESUME_SWEEP,
                _in_run(1, _both(_remove("checkpoint"), _write("config.json", "{garbage"))), "config.json", "delete"),
]

CASES = RUNS + SHARDED + CACHES + SWEEPS


def test_at_least_40_cases():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


# ------------------------------------------------------------------------------------------ the check

def _materialise(case: Damaged, pristine: Path, d: Path, marker: Path) -> None:
    shutil.copytree(pristine / case.folder, d, symlinks=True)
    if case.folder == "cache":
        good = json.loads((pristine / "good.json").read_text())
        good["data"]["cache_dir"] = str(d)
        (d / "cfg.json").write_text(json.dumps(good))
    case.damage(d, marker)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_damaged_state_is_one_line(case: Damaged, pristine, tmp_path, capsys, monkeypatch):
    d, marker = tmp_path / "case", tmp_path / "marker"
    marker.mkdir()
    _materialise(case, pristine, d, marker)
    monkeypatch.setenv("SCALING_LOG_DIR", str(tmp_path / "logs"))
    before = snapshot(d)
    argv = [a.replace("{d}", str(d)).replace("{good}", str(pristine / "good.json")) for a in case.argv]
    rc = main(argv)
    line = one_error_line(rc, capsys.readouterr())
    assert case.names in line, f"{case.names!r} not in {line!r}"
    assert case.remedy in line, f"{case.remedy!r} not in {line!r}"
    assert snapshot(d) == before                     # nothing overwritten, restarted or set aside
    assert not list(marker.iterdir())                 # no pickle ran
    assert not (tmp_path / "logs").exists()           # no internal error


# ------------------------------------------------------------------------------------------ rebuilt, kept beside

def test_a_damaged_table_is_set_aside_and_rebuilt_from_the_run_folders(pristine, tmp_path, capsys):
    import pandas as pd

    d = tmp_path / "sweep"
    shutil.copytree(pristine / "sweep", d)
    damaged = _half((d / "points.parquet").read_bytes())
    (d / "points.parquet").write_bytes(damaged)
    assert main(["sweep", "status", str(d)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("warning: ") and "points.parquet" in err[0], err
    assert "points.parquet.damaged" in err[0]
    assert (d / "points.parquet.damaged").read_bytes() == damaged
    assert pd.read_parquet(d / "points.parquet").equals(pd.read_parquet(pristine / "sweep" / "points.parquet"))


def test_a_damaged_table_is_left_alone_while_a_run_folder_is_damaged(pristine, tmp_path, capsys):
    d = tmp_path / "sweep"
    shutil.copytree(pristine / "sweep", d)
    (d / "trials.parquet").write_bytes(b"PAR1 nonsense")
    (_first_run(d) / "trial.json").write_text("{")
    assert main(["sweep", "status", str(d)]) == 2
    assert "trial.json" in capsys.readouterr().err
    assert (d / "trials.parquet").read_bytes() == b"PAR1 nonsense" and not (d / "trials.parquet.damaged").exists()


def test_resume_writes_a_finished_runs_damaged_rows_again_from_its_checkpoint(pristine, tmp_path, stdlib_data_config):
    from sweeps import folder_state, store

    d = tmp_path / "sweep"
    shutil.copytree(pristine / "sweep", d)
    run = _first_run(d)
    good = (run / "points.csv").read_bytes()
    (run / "points.csv").write_bytes(good[:-5])
    (run / "trial.json").write_text("{")
    warnings = folder_state.repair_runs(d, store.read_manifest(d))
    assert len(warnings) == 2 and all(".damaged" in w for w in warnings), warnings
    assert (run / "points.csv.damaged").read_bytes() == good[:-5] and (run / "trial.json.damaged").read_text() == "{"
    assert (run / "points.csv").read_bytes() == good
    assert json.loads((run / "trial.json").read_text())["status"] == "completed"


def test_a_missing_meta_json_is_written_again_from_state_pt_and_the_run_resumes(pristine, tmp_path, capsys):
    d = tmp_path / "run"
    shutil.copytree(pristine / "run", d)
    (d / META).unlink()
    state = (d / STATE).read_bytes()
    assert main(["train", "--config", str(pristine / "good.json"), "--out", str(d), "--no-progress", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"warning: {d / META}: missing; written again from state.pt (step 4)"]
    assert json.loads(captured.out)["status"] == "completed"
    assert (d / STATE).read_bytes() != state  # trained on from step 4 and checkpointed again


def test_no_resume_starts_a_damaged_run_over(pristine, tmp_path, capsys):
    d = tmp_path / "run"
    shutil.copytree(pristine / "run", d)
    (d / STATE).write_bytes(b"")
    assert main(["train", "--config", str(pristine / "good.json"), "--out", str(d), "--no-progress", "--no-resume",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "completed"


# ------------------------------------------------------------------------------------------ output paths, rounding

def test_out_that_is_a_folder_names_the_folder(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    n = np.repeat(np.geomspace(2e7, 2e9, 5), 4)
    dd = n * np.tile([5.0, 10.0, 20.0, 40.0], 5)
    pd.DataFrame({"N": n, "D": dd, "loss": 1.8 + 400 / n**0.34 + 1500 / dd**0.36}).to_csv(tmp_path / "t.csv",
                                                                                        index=False)
    (tmp_path / "out").mkdir()
    assert main(["fit", str(tmp_path / "t.csv"), "--out", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"error: --out {tmp_path / 'out'}: is a folder, not a file (give a file name)"]
    assert list(tmp_path.iterdir()) and not list((tmp_path / "out").iterdir())


def test_check_out_path_refuses_a_folder_for_a_file_before_any_work(tmp_path):
    from contracts.errors import UserError
    from orchestrator.cli.common import check_out_path

    check_out_path(tmp_path, "--out")                          # a folder output (train, demo): fine
    with pytest.raises(UserError, match=r"^--out .*: is a folder, not a file \(give a file name\)$"):
        check_out_path(tmp_path, "--out", file=True)
    check_out_path(tmp_path / "fit.json", "--out", file=True)


GRID = """vocab_size: 512
context: 64
design: grid
sizes: [20k]
tokens: [{tokens}]
min_steps: 1
batch: {{rule: fixed, tokens: 512}}
"""


def test_a_grid_point_rounded_past_2x_is_refused_and_beyond_5_percent_said(tmp_path, capsys):
    (tmp_path / "far.yaml").write_text(GRID.format(tokens=100))
    assert main(["sweep", "plan", str(tmp_path / "far.yaml"), "--no-probe"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "100 tokens rounded to 512" in err[0] and err[0].startswith("error: "), err
    (tmp_path / "near.yaml").write_text(GRID.format(tokens=700))
    assert main(["sweep", "plan", str(tmp_path / "near.yaml"), "--no-probe"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "700 tokens rounded to 512" in err[0] and err[0].startswith("warning: "), err


def test_train_tokens_rounded_past_2x_are_refused(pristine, tmp_path, capsys):
    good = json.loads((pristine / "good.json").read_text())
    good["train"]["tokens"] = 100
    (tmp_path / "cfg.json").write_text(json.dumps(good))
    assert main(["train", "--config", str(tmp_path / "cfg.json"), "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "100 tokens rounded to 512" in err[0], err
    assert not (tmp_path / "r").exists()
