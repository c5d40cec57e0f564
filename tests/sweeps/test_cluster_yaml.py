"""cluster.yaml is accepted by Ray's own cluster-launcher validator, offline, and keeps the security
defaults (token auth on every node, dashboard on 127.0.0.1)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "cluster.yaml"


def _validate(cfg: dict) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    full = prepare_config(copy.deepcopy(cfg))  # what `ray up` does first: merge provider defaults
    validate_config(full)
    return full


def test_ray_validator_accepts_cluster_yaml():
    import ray.autoscaler

    cfg = yaml.safe_load(CLUSTER_YAML.read_text())
    full = _validate(cfg)
    schema = json.loads((Path(os.path.dirname(ray.autoscaler.__file__)) / "ray-schema.json").read_text())
    assert list(jsonschema.Draft7Validator(schema).iter_errors(cfg)) == []  # the file as written, too
    head = full["head_node_type"]
    gpu_types = [t for t in full["available_node_types"].values() if t["resources"].get("GPU")]
    assert gpu_types and all(t["resources"]["GPU"] == 8 and t.get("min_workers", 0) == 0 for t in gpu_types)
    assert all(t["max_workers"] > 0 for t in gpu_types)  # autoscaled workers
    assert "GPU" not in full["available_node_types"][head]["resources"]
    assert any("pip install" in c and "scaling-orchestrator" in c for c in full["setup_commands"])


def test_security_defaults():
    cfg = yaml.safe_load(CLUSTER_YAML.read_text())
    head_start = " ".join(cfg["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head_start and "--dashboard-host=127.0.0.1" in head_start
    assert "RAY_AUTH_MODE=token" in " ".join(cfg["worker_start_ray_commands"])
    assert "~/.ray/auth_token" in cfg["file_mounts"]
    assert "0.0.0.0" not in CLUSTER_YAML.read_text()


@pytest.mark.parametrize("breakage", ["typo", "fractional_gpu", "unknown_head"])
def test_validator_is_live(breakage):
    """The same validator rejects a broken copy, so the acceptance above means something."""
    cfg = yaml.safe_load(CLUSTER_YAML.read_text())
    if breakage == "typo":
        cfg["setup_command"] = cfg.pop("setup_commands")
    elif breakage == "fractional_gpu":
        cfg["available_node_types"]["gpu_8x"]["resources"]["GPU"] = 0.5
    else:
        cfg["head_node_type"] = "nope"
    with pytest.raises(Exception):
        _validate(cfg)
