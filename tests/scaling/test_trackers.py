"""`scaling train --log tensorboard|wandb|mlflow`: the same scalars and config reach each tracker, offline.

TensorBoard: the event files are read back (TFRecord framing + tensorboardX's Event protobuf); W&B runs in
offline mode and its run folder's summary and config are read; MLflow writes a local file store that
`MlflowClient` reads back. wandb and mlflow are optional extras: without them those checks skip."""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path

import pytest

from orchestrator.cli import main
from scaling.trackers import flatten, scalars

HAVE = {k: importlib.util.find_spec(m) is not None for k, m in
        (("tensorboard", "tensorboardX"), ("wandb", "wandb"), ("mlflow", "mlflow"))}


def read_tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} from every event file under `folder` (TFRecord: length, crc, data, crc)."""
    from tensorboardX.proto import event_pb2

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        i = 0
        while i + 12 <= len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            event = event_pb2.Event.FromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            for v in event.summary.value:
                if v.HasField("simple_value"):
                    out.setdefault(v.tag, []).append((event.step, v.simple_value))
    return out


def read_wandb_offline(path: Path) -> tuple[list[dict], dict]:
    """(history rows, config) of an offline W&B run file: LevelDB-log framing (7-byte header, then records of
    crc32, length, type in 32 KiB blocks) around `wandb_internal_pb2.Record` protobufs."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, block, records, partial = path.read_bytes(), 7, 32768, [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, n, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + n], pos + 7 + n
        if kind == 1:
            records.append(chunk)
        elif kind in (2, 3):
            partial = (partial if kind == 3 else b"") + chunk
        elif kind == 4:
            records.append(partial + chunk)
    history, config = [], {}
    for raw in records:
        r = pb.Record.FromString(raw)
        key = lambda item: item.key or "/".join(item.nested_key)  # noqa: E731
        if r.WhichOneof("record_type") == "history":
            history.append({key(i): json.loads(i.value_json) for i in r.history.item})
        elif r.WhichOneof("record_type") == "run":
            config.update({key(i): json.loads(i.value_json) for i in r.run.config.update})
    return history, config


def test_scalars_and_flatten():
    m = {"train_loss": 3.0, "val_loss": 2.5, "val_bpb": 1.2, "lr": 1e-3, "tokens": 10, "mfu": None,
         "tokens_per_s": float("nan"), "branch": "trunk", "step": 1}
    assert scalars(m) == {"train/loss": 3.0, "val/loss": 2.5, "val/bpb": 1.2, "lr": 1e-3, "tokens": 10.0}
    assert set(scalars({**m, "branch": "cooldown@0.5"})) == {f"cooldown@0.5/{k}" for k in scalars(m)}
    assert flatten({"model": {"d_model": 64, "x": (1, 2)}, "run_id": None}) == {"model.d_model": 64, "model.x": "(1, 2)",
                                                                                "run_id": "None"}


def test_train_logs_to_every_tracker(stdlib_data, stdlib_data_config, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    kinds = [k for k, ok in HAVE.items() if ok]
    out = tmp_path / "run"
    c = stdlib_data_config
    argv = ["train", "--n-layer", "1", "--d-model", "32", "--context", "64", "--tokens", "8k", "--batch-tokens", "1k",
            "--eval-interval", "2", "--eval-tokens", "2k", "--threads", "1", "--out", str(out), "--json", "--quiet",
            "--max-bytes", str(c.max_bytes), "--vocab-size", str(c.vocab_size), "--val-fraction", str(c.val_fraction),
            "--cache-dir", c.cache_dir]
    for k in kinds:
        argv += ["--log", k]
    assert main(argv) == 0
    trial = json.loads(capsys.readouterr().out)
    curves = [r for r in (out / "curves.csv").read_text().splitlines()[1:]]
    assert len(curves) == 4  # steps 2, 4, 6, 8

    tb = read_tensorboard_scalars(out / "tensorboard")
    assert [s for s, _ in tb["val/loss"]] == [2, 4, 6, 8]
    assert tb["val/loss"][-1][1] == pytest.approx(trial["final_loss"], rel=1e-6)
    assert tb["val/bpb"][-1][1] == pytest.approx(trial["val_bpb"], rel=1e-6)
    for tag in ("train/loss", "lr", "tokens_per_s", "tokens"):
        assert len(tb[tag]) == 4, tag

    if HAVE["wandb"]:
        (path,) = (out / "wandb").glob("offline-run-*/run-*.wandb")
        history, config = read_wandb_offline(path)
        assert [h["trainer/step"] for h in history] == [2, 4, 6, 8]
        assert history[-1]["val/loss"] == pytest.approx(trial["final_loss"], rel=1e-6)
        assert history[-1]["val/bpb"] == pytest.approx(trial["val_bpb"], rel=1e-6)
        assert config["N"] == trial["params"] and config["D"] == 8000 and config["model.d_model"] == 32

    if HAVE["mlflow"]:
        from mlflow.tracking import MlflowClient

        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        client = MlflowClient(tracking_uri=(out / "mlruns").absolute().as_uri())
        exp = client.get_experiment_by_name("scaling")
        (run,) = client.search_runs([exp.experiment_id])
        assert run.info.run_name == "run" and run.info.status == "FINISHED"
        assert float(run.data.params["N"]) == trial["params"] and float(run.data.params["D"]) == 8000
        assert float(run.data.params["C"]) == pytest.approx(6 * trial["params"] * 8000)
        history = client.get_metric_history(run.info.run_id, "val/loss")
        assert sorted(m.step for m in history) == [2, 4, 6, 8]
        assert max(history, key=lambda m: m.step).value == pytest.approx(trial["final_loss"], rel=1e-6)
    missing = [k for k, ok in HAVE.items() if not ok]
    if missing:
        pytest.skip(f"checked {kinds}; not installed: {missing} (the [wandb] / [mlflow] extras)")


def test_log_rejects_unknown_tracker(tmp_path, capsys):
    code = main(["train", "--n-layer", "1", "--d-model", "32", "--tokens", "8k", "--out", str(tmp_path),
                 "--log", "neptune"])
    err = capsys.readouterr().err
    assert code == 2 and "invalid choice: 'neptune'" in err and err.count("\n") == 1   # one line, exit 2
