"""Shared test set-up: Ray runs locally without auth or telemetry; published data found beside the project."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


# The modules that take longest on the 2-core CI machine (seconds measured with `pytest --durations=0`,
# 2026-12-08), run first: the suite runs on two pytest-xdist workers, a module on one worker
# (`--dist loadfile`: its shared Ray cluster and sweeps stay shared), and starting the longest first lets
# the short ones fill in behind them (longest-processing-time-first). Only the order changes.
LONGEST_FIRST = (
    "tests/e2e/test_demo.py",                  # the quick demo, Ctrl-C and resume: ~250 s
    "tests/sweeps/test_launch.py",             # ~200 s
    "tests/sweeps/test_train_group.py",        # ~180 s
    "tests/scaling/test_ddp.py",               # ~120 s
    "tests/scaling/test_fsdp.py",              # ~115 s
    "tests/analysis/test_report.py",           # ~85 s
    "tests/sweeps/test_gpu_check.py",          # ~75 s
    "tests/sweeps/test_branch_sweep.py",       # ~60 s
)


def pytest_collection_modifyitems(session, config, items):
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}

    def key(item):
        path = Path(str(item.fspath)).relative_to(PROJECT_ROOT).as_posix()
        return rank.get(path, len(rank))

    items.sort(key=key)  # stable: within a module, and among the rest, the collected order stays


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data/` (published scaling-law data); tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"published data not found at {SHARED_DATA} (it lives beside the project, not in it)")
    return SHARED_DATA


# A small slice of the default corpus (the first 3 MB of the Python standard library, sorted by path:
# 236 non-empty files -> 223 train / 13 validation documents, 1.33M train and 53k validation tokens, 2.17 bytes/token,
# unigram entropy 5.33 nats/token) with a 512-token BPE. Prepared once per test session into a session
# temp cache (4.7 s of CPU, 5-10 s wall on the shared 2 cores); tests that train a model use it.
# Models trained on it need `vocab_size=512` (STDLIB_DATA_SETTINGS["vocab_size"]).
STDLIB_DATA_SETTINGS = {"max_bytes": 3_000_000, "vocab_size": 512, "val_fraction": 0.05}


@pytest.fixture(scope="session")
def stdlib_data_config(tmp_path_factory):
    """The `DataConfig` of `stdlib_data` (its `cache_dir` is the session cache, so `prepare_data` on it is a cache hit)."""
    from scaling.config import DataConfig

    return DataConfig(**STDLIB_DATA_SETTINGS, cache_dir=str(tmp_path_factory.mktemp("scaling-cache")))


@pytest.fixture(scope="session")
def stdlib_data(stdlib_data_config):
    """`TokenData` of a ~3 MB slice of the stdlib corpus at vocab 512 (see STDLIB_DATA_SETTINGS)."""
    from scaling.data import prepare_data

    return prepare_data(stdlib_data_config, progress=False)


@pytest.fixture(scope="session")
def check_output():
    """`check_output(obj, command)`: validate a command's --json output against its definition in
    contracts/output.schema.json (raises jsonschema.ValidationError naming the field)."""
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the dev extra: pip install -e '.[dev]'")
    import json

    from contracts.outputs import SCHEMA_FILE

    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)

    def check(obj, command: str):
        jsonschema.Draft202012Validator({**schema, "$ref": f"#/$defs/{command}"}).validate(obj)
        return obj

    return check
