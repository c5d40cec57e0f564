"""What the bad-input and damaged-state tests check of every refused command: its one `error:` line
(`one_error_line`), and every entry under its folder before and after (`snapshot`: mode, size, mtime,
bytes), to show it created, changed or removed nothing."""

from __future__ import annotations

import os
from pathlib import Path


def snapshot(d: Path) -> dict[str, tuple]:
    out = {}
    for root, dirs, files in os.walk(d):
        for name in dirs + files:
            p = Path(root) / name
            st = p.lstat()
            out[str(p.relative_to(d))] = (st.st_mode, st.st_size, st.st_mtime_ns,
                                          p.read_bytes() if p.is_file() and not p.is_symlink() else None)
    return out


def one_error_line(rc: int, captured) -> str:
    """The one `error:` line a refused command printed (exit 2, no traceback on either stream); asserted."""
    err = captured.err
    assert "Traceback" not in err and "Traceback" not in captured.out
    assert rc == 2, f"exit {rc}: {err!r}"
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]
