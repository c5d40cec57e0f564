"""`resources: {workers, strategy, placement}`: validated at the edge (one line naming the field), turned into the
trial's processes, parallel strategy, threads and Ray resources, and into the Tune config of a Ray Train trial."""

from __future__ import annotations

import pytest

from sweeps.design import expand
from sweeps.launch import _tune_configs
from sweeps.spec import SpecError, parse_yaml, validate_spec

BASE = "vocab_size: 512\ncontext: 64\nbatch: {tokens: 512}\nmin_steps: 10\ndesign: grid\nsizes: [16k]\ntokens: [100k]\n"


def spec_of(text: str):
    return validate_spec(parse_yaml(BASE + text, "s.yaml"), "s.yaml")


def test_workers_become_processes_strategy_and_per_worker_resources(tmp_path):
    spec = spec_of("resources: {cpus: 2, gpus: 1, workers: 4, strategy: fsdp, placement: spread}\n")
    t = expand(spec)[0]
    train = t.config.train
    assert (train.nproc, train.parallel, train.threads, train.device) == (4, "fsdp", 2, "cuda")
    assert (t.cpus, t.gpus) == (8, 4)  # the trial's totals: 4 workers x (2 CPUs, 1 GPU)
    manifest = {"spec": spec.model_dump(mode="json"), "storage_path": str(tmp_path / "ray"), "data_root": None,
                "trials": [{**t.row(), "config": t.config.model_dump(mode="json")}]}
    cfg = _tune_configs(tmp_path, manifest, manifest["trials"], spec)[0]
    assert cfg["group"] == {"workers": 4, "cpus": 2.0, "gpus": 1.0, "strategy": "fsdp", "placement": "spread",
                            "retries": spec.retries, "storage_path": str(tmp_path / "ray" / "train")}
    one = expand(spec_of("resources: {cpus: 2}\n"))[0]
    assert (one.config.train.nproc, one.config.train.parallel) == (1, "ddp")
    plain = _tune_configs(tmp_path, {**manifest, "trials": [{**one.row(), "config": {}}]}, [{**one.row(), "config": {}}],
                          spec_of("resources: {cpus: 2}\n"))[0]
    assert "group" not in plain  # one process: the plain Tune function trial


@pytest.mark.parametrize("resources,message", [
    ("{workers: 2, gpus: 2}", "resources.gpus: 2 GPUs per worker with workers 2"),
    ("{workers: 2, gpus: 0.5}", "resources.gpus: 0.5 GPUs per worker with workers 2"),
    ("{strategy: fsdp}", "resources.strategy: fsdp shards a model across workers; set workers > 1"),
    ("{workers: 0}", "resources.workers"),
    ("{workers: 2, strategy: zero}", "resources.strategy"),
    ("{workers: 2, placement: anywhere}", "resources.placement"),
    ("{cpus: .nan}", "resources.cpus"),
])
def test_bad_worker_resources_are_one_line_errors(resources, message):
    with pytest.raises(SpecError, match=message.replace(".", r"\.")) as info:
        spec_of(f"resources: {resources}\n")
    assert "\n" not in str(info.value)


def test_parallel_is_set_by_resources_not_train():
    with pytest.raises(SpecError, match="resources.strategy"):
        spec_of("train: {parallel: fsdp}\n")
