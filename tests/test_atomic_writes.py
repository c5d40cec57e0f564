"""Nothing lost: a write that fails half-way leaves the previous file intact and no temporary file.

The failure is real, not mocked: a child process lowers its file-size limit (RLIMIT_FSIZE) below the
new content, so the kernel refuses the write part-way (EFBIG), exactly as a full disk would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

resource = pytest.importorskip("resource")   # POSIX only

ROOT = Path(__file__).resolve().parents[1]

LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)      # EFBIG as an error, not a killed process
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
sys.argv = sys.argv[1:]
"""


def _run_limited(limit: int, code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LIMITED + code, str(limit), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_write_json_that_fails_half_way_keeps_the_old_file(tmp_path):
    from contracts.jsonio import write_json

    target = tmp_path / "fit.json"
    write_json(target, {"E": 1.8, "old": True})
    old = target.read_bytes()
    code = ("from contracts.jsonio import write_json\n"
            "try:\n"
            "    write_json(sys.argv[1], {'E': 1.9, 'pad': 'x' * 200000})\n"
            "except OSError as exc:\n"
            "    print('OSError', exc.errno, exc.filename)\n")
    r = _run_limited(4096, code, str(target))
    assert r.stdout.startswith("OSError 27 "), r.stdout + r.stderr     # EFBIG, naming the target
    assert r.stdout.split()[2] == str(target)
    assert target.read_bytes() == old                                   # the previous file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.json"]   # no temporary file left


def test_scaling_fit_out_on_a_full_disk_keeps_the_previous_fit(tmp_path):
    """`scaling fit --out fit.json` hitting the limit: one line, exit 2, the old fit still readable."""
    N = np.repeat(np.geomspace(2e7, 2e9, 5), 4)
    D = N * np.tile([5.0, 10.0, 20.0, 40.0], 5)
    pd.DataFrame({"N": N, "D": D, "loss": 1.8 + 400 / N**0.34 + 1500 / D**0.36}).to_csv(tmp_path / "t.csv", index=False)
    from orchestrator.cli import main

    assert main(["fit", str(tmp_path / "t.csv"), "--out", str(tmp_path / "fit.json")]) == 0
    old = (tmp_path / "fit.json").read_bytes()
    code = "from orchestrator.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    r = _run_limited(len(old) // 2, code, "fit", str(tmp_path / "t.csv"), "--bootstrap", "20", "--out",
                     str(tmp_path / "fit.json"))
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [f"error: {tmp_path / 'fit.json'}: File too large"], r.stderr
    assert (tmp_path / "fit.json").read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.json", "t.csv"]
    from analysis.fitjson import read_fit

    assert read_fit(tmp_path / "fit.json").approach == 3


def test_project_writes_files_only_through_the_atomic_helper():
    """No module writes a file in place (write_text, open(..., 'w'), to_csv/to_parquet to a path, write_html).
    Appends (a lock file, the attempts log) are not rewrites and are left alone."""
    import re

    pattern = re.compile(r"\.write_text\(|\.write_bytes\(|open\([^)]*['\"]wb?['\"]|\.to_csv\(\s*[^)\s]|"
                         r"\.to_parquet\(\s*(?!buf)[^)\s]|write_html\(|savefig\(")
    allowed = {("contracts", "jsonio.py"), ("scaling", "bpe.py")}  # the helper; bpe writes into a temp folder renamed whole
    offenders = []
    for package in ("contracts", "scaling", "sweeps", "analysis", "orchestrator"):
        for path in (ROOT / package).rglob("*.py"):
            if (package, path.name) in allowed:
                continue
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line) and not line.lstrip().startswith("#"):
                    offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)
