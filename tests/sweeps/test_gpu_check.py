"""`benchmarks/gpu_check.py --dry-run` runs every code path of the one-GPU check on the CPU with tiny
sizes: the throughput loop without and with torch.compile, and the packing sweep (4 trials in a dry run,
12 on a GPU) packed 4 at a time against one at a time (real `sweeps.launch` on a local Ray), into one JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def test_gpu_check_dry_run_writes_every_number(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    out = tmp_path / "dry.json"
    gpu_check.main(["--dry-run", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["dry_run"] is True
    plain, compiled = report["throughput"]
    assert plain["compile"] is False and plain["tokens_per_s"] > 0 and plain["params"] > 0
    assert plain["mfu"] is None and plain["peak_flops"] is None  # no peak FLOP/s for a CPU
    assert compiled["compile"] is True and ("tokens_per_s" in compiled or "error" in compiled)
    pack = report["packing"]
    for name in ("packed", "one_at_a_time"):
        assert pack[name]["trials"] == pack[name]["completed"] == 4
        assert pack[name]["tokens"] > 0 and pack[name]["wall_s"] > 0
    assert pack["packed"]["tokens"] == pack["one_at_a_time"]["tokens"]  # the same sweep twice
    assert pack["throughput_ratio_packed_vs_one"] == pytest.approx(
        pack["packed"]["tokens_per_s"] / pack["one_at_a_time"]["tokens_per_s"])
