"""FSDP (`fully_shard`) over 2 gloo processes trains the same model as one process with the same global batch,
through a WSD cool-down branch; N and FLOPs are counted as without sharding. Its checkpoints are sharded
(`torch.distributed.checkpoint`): one shard file per rank, each with half of every parameter, no full state
dict anywhere; stopped inside the branch and resumed, the run is bit for bit the uninterrupted FSDP run, and the
same checkpoint resumed by one process (DCP reshards) continues it to a relative 1e-5, and a one-process
checkpoint resumes in two FSDP processes."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from scaling.checkpoint import find_checkpoint, load_checkpoint
from scaling.config import RunConfig
from scaling.counting import param_counts
from scaling.errors import ConfigError
from scaling.model import GPT
from scaling.train import train

MODEL = {"n_layer": 2, "d_model": 32, "n_head": 2, "context": 64, "vocab_size": 512}


def config(stdlib_data_config, nproc: int, parallel: str = "fsdp") -> RunConfig:
    return RunConfig.model_validate({
        "model": MODEL, "data": stdlib_data_config.model_dump(),
        "train": {"tokens": 24 * 1024, "batch_tokens": 2048, "eval_tokens": 5 * 1024, "threads": 1, "lr": 3e-3,
                  "eval_interval": 4, "nproc": nproc, "device": "cpu", "parallel": parallel, "schedule": "wsd",
                  "cooldowns": [0.5], "decay_fraction": 0.5},
    })


def losses(result) -> list[tuple]:
    return [(r["step"], r["branch"], r["val_loss"], r["train_loss"]) for r in result.curves]


def elements_per_file(folder, prefix: str) -> dict[str, int]:
    """Elements of the tensors named `prefix...` held in each shard file, from DCP's own metadata."""
    from torch.distributed.checkpoint import FileSystemReader

    metadata = FileSystemReader(folder).read_metadata()
    counts: dict[str, int] = {}
    for index, info in metadata.storage_data.items():
        if not index.fqn.startswith(prefix):
            continue
        chunk = next(c for c in metadata.state_dict_metadata[index.fqn].chunks if tuple(c.offsets) == tuple(index.offset))
        counts[info.relative_path] = counts.get(info.relative_path, 0) + math.prod(chunk.sizes)
    return counts


@pytest.fixture(scope="module")
def single(stdlib_data, stdlib_data_config, tmp_path_factory):
    """The run of `config` in one process (parallel: fsdp is a plain model there)."""
    return train(config(stdlib_data_config, 1), tmp_path_factory.mktemp("one"), data=stdlib_data, progress=False)


@pytest.mark.slow
def test_fsdp_checkpoints_are_sharded_and_resume_exactly_in_two_processes_or_one(single, stdlib_data,
                                                                                stdlib_data_config, tmp_path):
    cfg = config(stdlib_data_config, 2)
    whole = train(cfg, tmp_path / "whole", data=stdlib_data, progress=False)
    # 12 steps; the branch to D/2 = step 6 decays over its last half (steps 3-6): 5 steps end inside it
    part = train(cfg, tmp_path / "fsdp", data=stdlib_data, progress=False, stop_after_steps=5)
    assert part.trial["status"] == "running"

    folder = find_checkpoint(tmp_path / "fsdp")
    files = sorted(p.name for p in folder.iterdir())
    assert files == [".metadata", "__0_0.distcp", "__1_0.distcp", "meta.json", "state.pt"]
    meta = json.loads((folder / "meta.json").read_text())
    assert (meta["format"], meta["layout"], meta["shards"], meta["step"]) == (2, "sharded", 2, 5)
    state = load_checkpoint(folder)  # torch.load(weights_only=True)
    assert state["layout"] == "sharded" and "model" not in state and "optimizer" not in state
    assert state["progress"]["branch"] == 0 and set(state["trunk"]) == {"stream", "progress", "optimizer_param_groups"}
    # no full state dict in state.pt: its only tensors are the RNG state
    assert (folder / "state.pt").stat().st_size < 20_000 < min((folder / f"__{r}_0.distcp").stat().st_size for r in (0, 1))
    # each rank's file holds half of every parameter (and of the trunk's copy: in a branch)
    n = sum(t.numel() for t in GPT(cfg.model).state_dict().values())  # the tied head counted as its own entry
    for prefix in ("model.", "trunk_model."):
        per_file = elements_per_file(folder, prefix)
        assert sorted(per_file) == ["__0_0.distcp", "__1_0.distcp"] and sum(per_file.values()) == n
        assert all(c == n / 2 for c in per_file.values()), per_file  # every dimension sharded is even here
    sizes = [(folder / f).stat().st_size for f in ("__0_0.distcp", "__1_0.distcp")]
    assert all(0.4 < s / sum(sizes) < 0.6 for s in sizes), sizes
    shutil.copytree(tmp_path / "fsdp", tmp_path / "reshard")

    fsdp = train(cfg, tmp_path / "fsdp", data=stdlib_data, progress=False)
    assert fsdp.trial["status"] == "completed" and fsdp.trial["nproc"] == 2 and fsdp.trial["parallel"] == "fsdp"
    # resumed from the shards: exactly the uninterrupted 2-process run (same reductions, same order)
    assert losses(fsdp) == losses(whole)
    assert [(p["kind"], p["tokens"], p["loss"]) for p in fsdp.points] == \
           [(p["kind"], p["tokens"], p["loss"]) for p in whole.points]

    # counting is unchanged by sharding: N of the whole model, C = 6ND
    for key in ("params", "params_nonembedding", "params_embedding", "flops_6nd", "flops_detailed", "tokens_seen"):
        assert fsdp.trial[key] == single.trial[key], key
    assert fsdp.trial["params"] == param_counts(cfg.model)["params"] == sum(
        p.numel() for p in GPT(cfg.model).parameters())
    one = [(r["branch"], r["val_loss"]) for r in single.curves]
    two = [(r["branch"], r["val_loss"]) for r in fsdp.curves]
    assert len(one) == len(two) >= 4
    for (ka, a), (kb, b) in zip(one, two):
        assert ka == kb and b == pytest.approx(a, rel=2e-3)
    cool = [p for p in fsdp.points if p["kind"] == "cooldown"]
    ref = [p for p in single.points if p["kind"] == "cooldown"]
    assert len(cool) == len(ref) == 1 and cool[0]["loss"] == pytest.approx(ref[0]["loss"], rel=2e-3)
    assert fsdp.points[-1]["loss"] == pytest.approx(single.points[-1]["loss"], rel=2e-3)

    # the 2-rank checkpoint resumed by one process: DCP reads both shards into the whole model (and trunk)
    resharded = train(config(stdlib_data_config, 1), tmp_path / "reshard", data=stdlib_data, progress=False)
    assert resharded.trial["status"] == "completed" and resharded.trial["nproc"] == 1
    assert [r[:2] for r in losses(resharded)] == [r[:2] for r in losses(whole)]
    for (_, _, va, ta), (_, _, vb, tb) in zip(losses(resharded), losses(whole)):
        assert va == pytest.approx(vb, rel=1e-5) and ta == pytest.approx(tb, rel=1e-5)
    assert resharded.points[-1]["loss"] == pytest.approx(whole.points[-1]["loss"], rel=1e-5)
    after = load_checkpoint(find_checkpoint(tmp_path / "reshard"))
    assert after["layout"] == "full" and set(after["model"]) == set(GPT(cfg.model).state_dict())

    # another strategy is another run: resuming the FSDP run with DDP is refused in one line, before any process starts
    with pytest.raises(ConfigError, match=r"holds a run with train.parallel = 'fsdp', not 'ddp'; use --no-resume"):
        train(config(stdlib_data_config, 2, "ddp"), tmp_path / "fsdp", data=stdlib_data, progress=False)


@pytest.mark.slow
def test_a_one_process_checkpoint_resumes_in_two_fsdp_processes(single, stdlib_data, stdlib_data_config, tmp_path):
    """The other way: a full checkpoint (one process, inside the branch, trunk set aside) is broadcast from rank 0
    and sharded; the 2-process run goes on to the one-process run's losses to a relative 1e-5."""
    part = train(config(stdlib_data_config, 1), tmp_path / "run", data=stdlib_data, progress=False, stop_after_steps=5)
    assert part.trial["status"] == "running"
    state = load_checkpoint(find_checkpoint(tmp_path / "run"))
    assert state["layout"] == "full" and state["trunk"] is not None
    fsdp = train(config(stdlib_data_config, 2), tmp_path / "run", data=stdlib_data, progress=False)
    assert fsdp.trial["status"] == "completed" and fsdp.trial["nproc"] == 2
    assert [r[:2] for r in losses(fsdp)] == [r[:2] for r in losses(single)]
    for (_, _, va, ta), (_, _, vb, tb) in zip(losses(fsdp), losses(single)):
        assert va == pytest.approx(vb, rel=1e-5) and ta == pytest.approx(tb, rel=1e-5)
    assert [p["kind"] for p in fsdp.points] == ["cooldown", "final"]
    assert fsdp.points[-1]["loss"] == pytest.approx(single.points[-1]["loss"], rel=1e-5)
    assert load_checkpoint(find_checkpoint(tmp_path / "run"))["layout"] == "sharded"
