"""Render an HTML file in real headless Chromium: a screenshot and the DOM after scripts ran."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Rendered:
    dom: str            # document after load (--dump-dom)
    screenshot: Path | None  # PNG
    console: list[str]  # console messages Chromium logged ("CONSOLE" lines of its stderr)


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run Chromium in its own process group and kill that whole group afterwards (no stray helpers)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def render(html: Path, png: Path | None, *, width: int = 1280, height: int = 3000, budget_ms: int = 5000,
           timeout: float = 120.0) -> Rendered:
    """Load `html` in headless Chromium, dumping the DOM after its scripts ran; with `png`, load it again
    for a width x height screenshot."""
    exe = chromium_path()
    if exe is None:
        raise FileNotFoundError("chromium not found")
    url = Path(html).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        common = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}"]
        dom = _run([*common, "--dump-dom", url], timeout)
        shot = _run([*common, f"--window-size={width},{height}", f"--screenshot={png}", url], timeout) if png else None
    console = [line for line in (dom.stderr + (shot.stderr if shot else "")).splitlines() if ":CONSOLE" in line]
    return Rendered(dom=dom.stdout, screenshot=Path(png) if png else None, console=console)
