"""JSON and atomic files: the one way the project writes a file and reads a JSON object.

`write_atomic` writes to a temporary file in the same folder, fsyncs it and renames it over the
target, so a crash (or a full disk) at any moment leaves the old file or the new one, never half of
one, and no temporary file behind when the write itself fails.
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from contracts.errors import UserError


def to_jsonable(obj: Any) -> Any:
    """numpy scalars and arrays (anything with `tolist`), Paths, tuples, and non-finite floats (to null)
    turned into what `json.dumps` accepts."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, torch tensors
        return to_jsonable(obj.tolist())
    return obj


def dumps(obj: Any, indent: int | None = 2) -> str:
    """`obj` as JSON text (after `to_jsonable`), ending in a newline."""
    return json.dumps(to_jsonable(obj), indent=indent) + "\n"


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write `data` to `path` atomically (temporary file in the same folder, fsync, rename, fsync of
    the folder). On any failure (a full disk, a file-size limit, Ctrl-C) the previous file is intact,
    the temporary file is removed, and an `OSError` names `path`, never the temporary file (so the command
    line reports `error: <path>: File too large`, one line); a `path` that is a folder is refused first."""
    path = Path(path)
    if path.is_dir():  # refused before a temporary file exists: the rename would name that file, not `path`
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file (give a file name)", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)  # mkstemp makes 0600; a written file gets the usual 0666 & ~umask
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and exc.filename != str(path):  # None, or the temporary file's name
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    _fsync_folder(path.parent)
    return path


def _read_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


# Read once, at import: os.umask can only be read by setting it, and setting it to 0 on every write would
# let a file another thread creates in that instant (a Ray worker runs trials in threads) come out 0666.
_FILE_MODE = 0o666 & ~_read_umask()


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX: fsync the directory); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """`obj` as JSON at `path`, atomically."""
    return write_atomic(path, dumps(obj, indent))


def read_json_object(path: str | Path, kind: str = "", error: type[UserError] = UserError) -> dict[str, Any]:
    """The JSON object in `path`, or a `UserError` naming the file: missing, a folder, unreadable, not
    JSON, or JSON that is not an object. `kind` names the file in the message ("fit": "no such fit
    file", "not a fit JSON"); `error` is the `UserError` subclass raised."""
    path = Path(path)
    file, doc = (f"{kind} file", f"{kind} JSON") if kind else ("file", "JSON object")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise error(f"{path}: no such {file} (not found)") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, not a {doc}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a {doc} (not UTF-8 text)") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {file} ({exc.strerror or exc})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not a {doc} ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise error(f"{path}: not a {doc} (nested too deeply)") from None
    if not isinstance(obj, dict):
        raise error(f"{path}: not a {doc} (expected a JSON object, found a {type(obj).__name__})")
    return obj


def read_json(path: str | Path, default: Any = None) -> Any:
    """The JSON in `path`, or `default` when the file is missing or half-written (for state files the
    project itself writes and re-reads while they may be replaced)."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default
