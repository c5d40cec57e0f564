"""Every entry under a folder with its mode, size, mtime and bytes: what the bad-input and damaged-state
tests compare before and after a command, to show it created, changed or removed nothing."""

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
