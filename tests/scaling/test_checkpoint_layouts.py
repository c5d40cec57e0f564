"""The two checkpoint layouts of `scaling.checkpoint` in one process: the sharded one (DCP shard files beside
state.pt) round-trips its tensors, replaces the previous checkpoint whole, holds tensors only, and a crafted
`.metadata` pickle is refused before it can run anything; an unknown format is one clear error."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch

from scaling import checkpoint as ckpt
from scaling.damage import DamagedStateError


def shards(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"model": {"w": torch.randn(6, 4, generator=g), "b": torch.randn(4, generator=g)},
            "optimizer": {"w": {"step": torch.tensor(3.0), "exp_avg": torch.randn(6, 4, generator=g)}}}


def zeros_like(tree: dict) -> dict:
    return {k: zeros_like(v) if isinstance(v, dict) else torch.zeros_like(v) for k, v in tree.items()}


def assert_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            assert_equal(a[k], b[k])
        else:
            assert torch.equal(a[k], b[k]), k


def test_sharded_layout_round_trips_and_replaces_the_previous_checkpoint(tmp_path):
    ckpt.save_checkpoint(tmp_path, {"progress": {"step": 1}}, {"step": 1}, shards(1))
    folder = ckpt.save_checkpoint(tmp_path, {"progress": {"step": 2}}, {"step": 2}, shards(2))
    assert folder == ckpt.find_checkpoint(tmp_path) == tmp_path / "checkpoint"
    assert sorted(os.listdir(tmp_path)) == ["checkpoint"]  # no .tmp or .old left behind
    assert sorted(os.listdir(folder)) == [".metadata", "__0_0.distcp", "meta.json", "state.pt"]
    meta = json.loads((folder / "meta.json").read_text())
    assert (meta["format"], meta["layout"], meta["shards"], meta["step"]) == (2, "sharded", 1, 2)
    state = ckpt.load_checkpoint(folder)
    assert state["layout"] == "sharded" and state["progress"] == {"step": 2} and "model" not in state
    loaded = zeros_like(shards(2))
    ckpt.load_shards(folder, loaded)
    assert_equal(loaded, shards(2))


def test_full_layout_is_todays_format_1(tmp_path):
    folder = ckpt.save_checkpoint(tmp_path, {"model": {"w": torch.ones(2)}}, {"step": 4})
    assert sorted(os.listdir(folder)) == ["meta.json", "state.pt"]
    meta = json.loads((folder / "meta.json").read_text())
    assert (meta["format"], meta["layout"]) == (1, "full") and "shards" not in meta
    state = torch.load(folder / "state.pt", weights_only=True)
    assert state["format"] == 1 and torch.equal(state["model"]["w"], torch.ones(2))
    del state["layout"]  # written before layouts existed: read as full
    torch.save(state, folder / "state.pt")
    assert ckpt.load_checkpoint(folder)["layout"] == "full"
    torch.save({**state, "format": 3}, folder / "state.pt")
    with pytest.raises(DamagedStateError, match=r"checkpoint format 3, this version reads \[1, 2\]"):
        ckpt.load_checkpoint(folder)


def test_shards_hold_tensors_only(tmp_path):
    with pytest.raises(TypeError, match=r"sharded checkpoint: optimizer.w.lr is a float, not a tensor"):
        ckpt.save_checkpoint(tmp_path, {}, {}, {"optimizer": {"w": {"lr": 0.1}}})


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_metadata_pickle_is_refused_before_it_runs(tmp_path):
    folder = ckpt.save_checkpoint(tmp_path, {}, {}, shards(1))
    marker = tmp_path / "ran"
    (folder / ".metadata").write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(DamagedStateError, match=r"\.metadata: not DCP metadata: .*posix.system is not DCP tensor metadata"):
        ckpt.load_shards(folder, zeros_like(shards(1)))
    assert not marker.exists()
    pickle.loads((folder / ".metadata").read_bytes())  # the same file, unpickled plainly, does run code
    assert marker.exists()
