"""Checkpoints of a run: one folder, written atomically, read back with `torch.load(weights_only=True)`.

    <out>/checkpoint/
        state.pt     model, optimiser, data-stream position, RNG, run progress (curves, points so far),
                     and, inside a WSD cool-down branch, the trunk's state to return to
        meta.json    step, branch, status, tokens, tokens_processed (every token trained, cool-down
                     branches included: how far the run is), format: readable without torch

A new checkpoint is written to ``checkpoint.tmp`` and swapped in by renames, so a crash at any moment
leaves a complete checkpoint on disk (``checkpoint`` or, between the two renames, ``checkpoint.old``).
Everything saved is tensors, numbers, strings, lists and dicts, so loading needs no pickle trust.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from contracts.jsonio import write_atomic

FORMAT = 1
DIR_NAME = "checkpoint"


def checkpoint_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / DIR_NAME


def find_checkpoint(out_dir: str | Path) -> Path | None:
    """The complete checkpoint folder of a run, or None (also recovers from a crash between renames)."""
    out_dir = Path(out_dir)
    for name in (DIR_NAME, DIR_NAME + ".old"):
        folder = out_dir / name
        if (folder / "state.pt").exists() and (folder / "meta.json").exists():
            return folder
    return None


def save_checkpoint(out_dir: str | Path, state: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write `state` (torch.save) and `meta` (JSON) as `<out_dir>/checkpoint`, atomically; returns the folder."""
    out_dir = Path(out_dir)
    final, tmp, old = out_dir / DIR_NAME, out_dir / (DIR_NAME + ".tmp"), out_dir / (DIR_NAME + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save({"format": FORMAT, **state}, tmp / "state.pt")
    write_atomic(tmp / "meta.json", json.dumps({"format": FORMAT, **meta}, indent=1, default=_json_default) + "\n")
    _fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(folder: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The saved state dict, loaded with ``weights_only=True`` (no arbitrary unpickling)."""
    state = torch.load(Path(folder) / "state.pt", map_location=map_location, weights_only=True)
    if state.get("format") != FORMAT:
        raise ValueError(f"{folder}: checkpoint format {state.get('format')!r}, this version reads {FORMAT}")
    return state


def remove_checkpoint(out_dir: str | Path) -> None:
    for name in (DIR_NAME, DIR_NAME + ".tmp", DIR_NAME + ".old"):
        shutil.rmtree(Path(out_dir) / name, ignore_errors=True)


def rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _fsync_dir(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")
