"""Checkpoints of a run: one folder, written atomically, read back without trusting a pickle.

Two layouts, recorded in the checkpoint (`layout` in `meta.json` and `state.pt`):

    <out>/checkpoint/                         full (one process, DDP): format 1
        state.pt     model, optimiser, data-stream position, RNG, run progress (curves, points so far),
                     and, inside a WSD cool-down branch, the trunk's state to return to
        meta.json    step, branch, status, tokens, tokens_processed (every token trained, cool-down
                     branches included: how far the run is), format, layout: readable without torch

    <out>/checkpoint/                         sharded (FSDP over several processes): format 2
        __<r>_0.distcp   rank r's shard of every tensor (model, AdamW moments, the trunk's in a branch),
                         written by rank r itself: `torch.distributed.checkpoint` (DCP)
        .metadata        which slice of which tensor lies where in those files (DCP, written by rank 0)
        state.pt         the rest, without a tensor of the model or optimiser: the optimiser's param groups,
                         stream position, RNG, progress (rank 0)
        meta.json        as above, plus `shards` (the processes that wrote it)

A new checkpoint is written to ``checkpoint.tmp`` (in the sharded layout by every rank, then a barrier) and
swapped in by rank 0's renames, so a crash at any moment leaves a complete checkpoint on disk (``checkpoint``
or, between the two renames, ``checkpoint.old``); `state.pt` is written last, so a folder holding it is whole.

Loading trusts no pickle: `state.pt` and every DCP tensor are read with ``torch.load(weights_only=True)``;
DCP's `.metadata` (a pickle) is read by an unpickler that builds only DCP's own metadata records, `torch.Size`,
dtypes and paths, and refuses the "bytes" entries DCP would read with ``weights_only=False`` (nothing but
tensors is saved in the shards). DCP reads each tensor's slices from whichever files hold them, so a sharded
checkpoint loads into any number of processes, sharded or not (resharding: 2 ranks -> 1 process is tested).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pathlib
import pickle
import shutil
import sys
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from contracts.jsonio import write_atomic
from scaling.damage import RESTART, DamagedStateError, read_state_json

FORMAT = 1  # the full layout: everything in state.pt
FORMAT_SHARDED = 2  # the sharded layout: tensors in DCP shard files beside state.pt
LAYOUTS = {FORMAT: "full", FORMAT_SHARDED: "sharded"}
DIR_NAME = "checkpoint"


def checkpoint_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / DIR_NAME


def find_checkpoint(out_dir: str | Path) -> Path | None:
    """The complete checkpoint folder of a run, or None when it has none (also recovers from a crash between
    the renames of `save_checkpoint`). A `checkpoint` folder that is there but incomplete or damaged (its
    meta.json unreadable, a shard file missing) is a `DamagedStateError`, never None: a fresh start would
    overwrite the progress it holds."""
    out_dir = Path(out_dir)
    for folder in (out_dir / DIR_NAME, out_dir / (DIR_NAME + ".old")):  # .old: only while the renames run
        if folder.exists() or folder.is_symlink():
            check_folder(folder)
            return folder
    return None


def check_folder(folder: Path) -> dict[str, Any]:
    """Check, without unpickling anything, that a checkpoint folder is whole: a folder, `state.pt` present and a
    whole zip archive, `meta.json` a valid record (written again from `state.pt` when it is missing,
    `rebuild_meta`), and in the sharded layout `.metadata` and every rank's shard file; returns the meta."""
    if not folder.is_dir():
        raise DamagedStateError(folder, "damaged (not a folder)", RESTART)
    _check_file(folder / "state.pt")
    if not zipfile.is_zipfile(folder / "state.pt"):  # torch.save writes one zip archive: a cut one has no end record
        raise DamagedStateError(folder / "state.pt", "damaged: truncated or not a torch checkpoint (not a whole zip "
                                "archive); nothing in it was read", RESTART)
    meta_path = folder / "meta.json"
    meta = read_meta(folder) if meta_path.exists() or meta_path.is_symlink() else rebuild_meta(folder)
    if meta["format"] == FORMAT_SHARDED:
        for name in [".metadata"] + [f"__{r}_0.distcp" for r in range(meta.get("shards", 1))]:
            _check_file(folder / name)
    return meta


def _check_file(path: Path) -> None:
    """A file of a checkpoint: there, a file, not empty."""
    if path.exists() and not path.is_file():
        raise DamagedStateError(path, "damaged (a folder, not a file)", RESTART)
    if not path.is_file():
        raise DamagedStateError(path, "missing from the checkpoint (incomplete)", RESTART)
    if path.stat().st_size == 0:
        raise DamagedStateError(path, "damaged (empty)", RESTART)


#: what to do about a damaged meta.json: everything in it is in state.pt too
META_REMEDY = "delete it and run again: it is written again from state.pt beside it"


def read_meta(folder: str | Path) -> dict[str, Any]:
    """`<folder>/meta.json`, checked: format, layout, and (when present) step, shards and tokens as counts."""
    path = Path(folder) / "meta.json"
    meta = read_state_json(path, META_REMEDY, kind="checkpoint meta")
    if meta.get("format") not in LAYOUTS:
        raise DamagedStateError(path, f"damaged (format {meta.get('format')!r}, this version reads "
                                      f"{sorted(LAYOUTS)})", META_REMEDY)
    if meta.get("layout", LAYOUTS[meta["format"]]) != LAYOUTS[meta["format"]]:
        raise DamagedStateError(path, f"damaged (layout {meta.get('layout')!r} with format {meta['format']})",
                                META_REMEDY)
    for key in ("step", "tokens", "tokens_processed", "shards"):
        value = meta.get(key, 1 if key == "shards" else 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < (1 if key == "shards" else 0):
            raise DamagedStateError(path, f"damaged ({key} {value!r} is not a count)", META_REMEDY)
    return meta


def rebuild_meta(folder: Path) -> dict[str, Any]:
    """Write a checkpoint's missing `meta.json` again from its `state.pt` (which holds all it says: the run's
    progress and plan), with one warning line; a `DamagedStateError` when state.pt cannot say it either."""
    state = load_checkpoint(folder)
    progress, plan = state.get("progress"), state.get("plan")
    if not isinstance(progress, dict) or not isinstance(plan, dict) or not isinstance(progress.get("step"), int) \
            or not isinstance(plan.get("batch_tokens"), int):
        raise DamagedStateError(folder / "state.pt", "not a run's checkpoint (no progress or plan in it), and "
                                "meta.json beside it is missing", RESTART)
    meta = {"format": state["format"], "layout": state["layout"], "status": progress.get("status"),
            "step": progress["step"], "branch": progress.get("branch"),
            "tokens": progress["step"] * plan["batch_tokens"], "tokens_processed": progress.get("tokens_processed", 0)}
    if state["layout"] == "sharded":
        meta["shards"] = max(1, len(list(folder.glob("__*_0.distcp"))))
    write_atomic(folder / "meta.json", json.dumps(meta, indent=1, default=_json_default) + "\n")
    print(f"warning: {folder / 'meta.json'}: missing; written again from state.pt (step {meta['step']})",
          file=sys.stderr)
    return read_meta(folder)


def save_checkpoint(out_dir: str | Path, state: dict[str, Any], meta: dict[str, Any],
                    shards: dict[str, Any] | None = None, *, rank: int = 0) -> Path | None:
    """Write `state` (torch.save) and `meta` (JSON) as `<out_dir>/checkpoint`, atomically; returns the folder.

    `shards`: this rank's tensors for the sharded layout (a nested dict of tensors and DTensors, as
    `torch.distributed.checkpoint.state_dict.get_state_dict` gives them). Then every rank of the process group
    calls this (a collective): each writes its own shard file, and rank 0 writes `state` and `meta` and swaps
    the folder in (the others return None). Without `shards`, only rank 0 calls it (the full layout)."""
    out_dir = Path(out_dir)
    final, tmp, old = out_dir / DIR_NAME, out_dir / (DIR_NAME + ".tmp"), out_dir / (DIR_NAME + ".old")
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    fmt = FORMAT
    if shards is not None:
        import torch.distributed as dist
        import torch.distributed.checkpoint as dcp

        _check_tensors_only(shards)
        fmt = FORMAT_SHARDED
        grouped = dist.is_initialized()
        if grouped:
            dist.barrier()  # rank 0 has emptied checkpoint.tmp before anyone writes into it
        # a collective: returns on every rank once all shards and rank 0's .metadata are written (and fsynced)
        with _quiet_single_process():
            dcp.save(shards, storage_writer=dcp.FileSystemWriter(tmp, single_file_per_rank=True, sync_files=True),
                     no_dist=not grouped)
        if rank != 0:
            return None
        meta = {**meta, "shards": dist.get_world_size() if grouped else 1}
    header = {"format": fmt, "layout": LAYOUTS[fmt]}
    write_atomic(tmp / "meta.json", json.dumps({**header, **meta}, indent=1, default=_json_default) + "\n")
    torch.save({**header, **state}, tmp / "state.pt")  # last: a folder with state.pt is complete
    _fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(folder: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The saved state dict, loaded with ``weights_only=True`` (no arbitrary unpickling); its `layout` says
    whether the model and optimiser tensors are in it (`full`) or in the shard files (`sharded`, `load_shards`).
    A truncated, empty or foreign `state.pt` (a pickle that would run code included: it is not run) is a
    `DamagedStateError` naming it."""
    path = Path(folder) / "state.pt"
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of a foreign file: refused below
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise DamagedStateError(path, f"not a checkpoint: {_refused(exc, path)}", RESTART) from None
    except FileNotFoundError:
        raise DamagedStateError(path, "missing from the checkpoint (incomplete)", RESTART) from None
    except IsADirectoryError:
        raise DamagedStateError(path, "damaged (a folder, not a file)", RESTART) from None
    except Exception as exc:  # noqa: BLE001 - torch reports a truncated zip in several exception types
        raise DamagedStateError(path, f"damaged: {_torch_reason(exc, path)}", RESTART) from None
    if not isinstance(state, dict):
        raise DamagedStateError(path, f"not a checkpoint (holds a {type(state).__name__}, not a dict)", RESTART)
    fmt = state.get("format")
    if fmt not in LAYOUTS:
        raise DamagedStateError(path, f"checkpoint format {fmt!r}, this version reads {sorted(LAYOUTS)}", RESTART)
    state.setdefault("layout", LAYOUTS[fmt])
    return state


def _refused(exc: BaseException, path: Path) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in a few words (torch's message is a paragraph)."""
    import re

    if not zipfile.is_zipfile(path):  # torch tried it as a bare pickle: text, random bytes, a crafted pickle
        return "not a torch zip archive (truncated, or another kind of file); refused unread, nothing in it was run"
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    what = f" (it asks for {found.group(1)})" if found else ""
    return f"it holds objects other than tensors{what}; refused unread, nothing in it was run"


def _torch_reason(exc: BaseException, path: Path | None = None) -> str:
    """What is wrong with a file torch could not open, in a few words (`torch.save` writes one zip archive)."""
    text = str(exc)
    if "zip archive" in text or "central directory" in text or isinstance(exc, EOFError) or (
            path is not None and path.is_file() and not zipfile.is_zipfile(path)):
        return "truncated or not a torch checkpoint (not a whole zip archive)"
    return f"unreadable ({type(exc).__name__}: {_first_line(exc)})"


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message, shortened (torch's are paragraphs)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def load_shards(folder: str | Path, shards: dict[str, Any]) -> None:
    """Fill `shards` in place from the sharded layout in `folder`: this process's tensors (sharded DTensors
    or whole tensors), any number of processes reading what any number wrote. A collective when a process
    group is initialised; without one, this process reads every slice it needs itself."""
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp

    _check_tensors_only(shards)
    metadata = Path(folder) / ".metadata"
    try:
        with open(metadata, "rb") as f:
            records = _MetadataUnpickler(f).load()  # refused here, in one line, rather than inside DCP's own report
    except pickle.UnpicklingError as exc:
        text = _first_line(exc).removeprefix("checkpoint .metadata: ")
        problem = f"not DCP metadata: {text}; refused unread, nothing in it was run" \
            if "is not DCP tensor metadata" in text else f"damaged: truncated or not DCP metadata ({text})"
        raise DamagedStateError(metadata, problem, RESTART) from None
    except Exception as exc:  # noqa: BLE001 - a truncated pickle fails in many ways
        raise DamagedStateError(metadata, f"damaged: truncated or not DCP metadata ({_first_line(exc)})",
                                RESTART) from None
    from torch.distributed.checkpoint.api import CheckpointException

    _check_shard_sizes(Path(folder), records)
    try:
        with _quiet_single_process():
            dcp.load(shards, storage_reader=_reader_class()(folder), no_dist=not dist.is_initialized())
    except (Exception, CheckpointException) as exc:  # noqa: BLE001 - DCP wraps each rank's failure in one
        raise DamagedStateError(_damaged_shard(folder), f"damaged shard: {_dcp_reason(exc)}", RESTART) from None


@contextlib.contextmanager
def _quiet_single_process() -> Iterator[None]:
    """Without a process group DCP warns that it assumes one process: that is the intent here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
        yield


def _check_tensors_only(tree: Any, where: str = "") -> None:
    """The shard files hold tensors only (DCP would pickle anything else, and read it back unsafely)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            _check_tensors_only(value, f"{where}.{key}" if where else str(key))
    elif not isinstance(tree, torch.Tensor):
        raise TypeError(f"sharded checkpoint: {where} is a {type(tree).__name__}, not a tensor")


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


def _metadata_classes() -> dict[tuple[str, str], Any]:
    """What DCP's `.metadata` pickle may build: its own metadata records, sizes, dtypes, layouts and paths."""
    import torch.distributed.checkpoint.filesystem as fs
    import torch.distributed.checkpoint.metadata as md

    allowed: dict[tuple[str, str], Any] = {
        (md.__name__, name): getattr(md, name)
        for name in ("Metadata", "TensorStorageMetadata", "TensorProperties", "ChunkStorageMetadata",
                     "MetadataIndex", "StorageMeta", "_MEM_FORMAT_ENCODING")
    }
    allowed[(fs.__name__, "_StorageInfo")] = fs._StorageInfo
    allowed[("torch", "Size")] = torch.Size
    allowed[("torch.serialization", "_get_layout")] = torch.serialization._get_layout
    allowed |= {("pathlib", name): getattr(pathlib, name) for name in ("PosixPath", "PurePosixPath")}
    allowed |= {("torch", name): value for name, value in vars(torch).items() if isinstance(value, torch.dtype)}
    return allowed


class _MetadataUnpickler(pickle.Unpickler):
    """Unpickles DCP metadata and nothing else (a crafted `.metadata` cannot call arbitrary code)."""

    allowed: dict[tuple[str, str], Any] | None = None

    def find_class(self, module: str, name: str) -> Any:
        if _MetadataUnpickler.allowed is None:
            _MetadataUnpickler.allowed = _metadata_classes()
        try:
            return _MetadataUnpickler.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"checkpoint .metadata: {module}.{name} is not DCP tensor metadata") from None


@functools.cache
def _reader_class() -> type:
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.metadata import StorageMeta

    class MetadataCheckingReader(FileSystemReader):
        """DCP's file reader (tensors by ``torch.load(weights_only=True)``) with `.metadata` read by
        `_MetadataUnpickler` instead of `pickle.load`."""

        def read_metadata(self, *args: Any, **kwargs: Any) -> Any:
            rank = kwargs.get("rank")
            name = ".metadata" if rank is None else f"__{rank}.metadata"
            with open(Path(self.path) / name, "rb") as f:
                metadata = _MetadataUnpickler(f).load()
            if getattr(metadata, "storage_meta", None) is None:
                metadata.storage_meta = StorageMeta()
            metadata.storage_meta.load_id = self.load_id
            return metadata

    return MetadataCheckingReader


def _check_shard_sizes(folder: Path, records: Any) -> None:
    """Refuse a shard file shorter than the bytes `.metadata` says it holds (a truncated copy), naming it."""
    needed: dict[str, int] = {}
    for info in (getattr(records, "storage_data", None) or {}).values():
        name = str(getattr(info, "relative_path", ""))
        end = int(getattr(info, "offset", 0)) + int(getattr(info, "length", 0))
        needed[name] = max(needed.get(name, 0), end)
    for name, size in sorted(needed.items()):
        path = folder / name
        have = path.stat().st_size if path.is_file() else -1
        if have < size:
            found = "missing" if have < 0 else f"truncated: {have:,} bytes, .metadata says {size:,}"
            raise DamagedStateError(path, f"damaged shard ({found})", RESTART)


def _damaged_shard(folder: str | Path) -> Path:
    """The one shard file of a checkpoint written by one process, else the checkpoint folder."""
    shards = sorted(Path(folder).glob("__*_*.distcp"))
    return shards[0] if len(shards) == 1 else Path(folder)


def _dcp_reason(exc: BaseException) -> str:
    """The innermost cause of a DCP load failure, one short line (DCP's own report is a traceback per rank)."""
    failures = getattr(exc, "failures", None)
    if isinstance(failures, dict) and failures:
        inner = next(iter(failures.values()))
        inner = inner[0] if isinstance(inner, tuple) and inner else inner
        if isinstance(inner, BaseException):
            return _torch_reason(inner)
    return _torch_reason(exc)
