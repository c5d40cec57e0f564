"""`scaling demo --quick` from the command line, as a user runs it: interrupted with Ctrl-C part-way
through the sweep, run again with the same --out (which must resume, not start over), then checked
end to end: the JSON result, the sweep folder the other subcommands read, the report.

The reduced demo (`orchestrator.demo.QUICK_OVERRIDES`): a 10 MB slice of the stdlib corpus, IsoFLOP budgets
2e10-2e11 FLOPs x 4 sizes (10 distinct runs: the narrowest shapes coincide); here with its held-out run at
3x the largest budget (6e11, `--heldout-factor 3`) instead of the quick demo's 10x, which alone trained more
tokens than the whole sweep. About 3 minutes on 2 cores.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")

pytestmark = pytest.mark.slow

RAY_DAEMONS = ("raylet", "gcs_server")


def _ray_daemons(driver_pids: set[int]) -> set[int]:
    """Ray daemons of a session these drivers started: Ray names a local session after its driver's pid
    (`session_<date>_<driver pid>` in every daemon's arguments), so other tests' clusters, running beside
    this one under pytest-xdist, are not counted."""
    sessions = re.compile(r"session_[0-9_-]+_(" + "|".join(str(p) for p in driver_pids) + r")\b")
    pids = set()
    for p in psutil.process_iter(["name", "cmdline"]):
        cmd = p.info["cmdline"] or []
        text = " ".join([p.info["name"] or "", *cmd[:1]])
        if any(d in text for d in RAY_DAEMONS) and sessions.search(" ".join(cmd)):
            pids.add(p.pid)
    return pids


def _completed_trials(sweep: Path) -> dict[str, dict]:
    out = {}
    for f in sorted((sweep / "runs").glob("*/trial.json")):
        try:
            t = json.loads(f.read_text())
        except (OSError, ValueError):  # being rewritten
            continue
        if t.get("status") == "completed":
            out[t["run_id"]] = t
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Run the quick demo, interrupt it after two finished trials, run it again to the end."""
    root = tmp_path_factory.mktemp("demo")
    out = root / "out"
    env = {**os.environ, "SCALING_CACHE": str(root / "cache"), "RAY_AUTH_MODE": "disabled",
           "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    # --heldout-factor 3: the held-out run (at 10x it trains more tokens than the whole sweep) is the
    # fixture's largest cost; 3x beyond the sweep still checks a forecast outside it
    cmd = [sys.executable, "-m", "orchestrator.cli", "demo", "--quick", "--heldout-factor", "3", "--out", str(out),
           "--json", "--no-progress"]

    # 1. start, wait for two finished trials, then Ctrl-C (SIGINT to the process group, as a terminal does)
    with open(root / "first.err", "w") as err:
        first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env, start_new_session=True)
        deadline = time.monotonic() + 400
        while len(_completed_trials(out / "sweep")) < 2:
            if first.poll() is not None or time.monotonic() > deadline:
                first.kill()
                pytest.fail(f"demo exited ({first.returncode}) or stalled before two trials finished:\n"
                            + (root / "first.err").read_text()[-3000:])
            time.sleep(1)
        os.killpg(first.pid, signal.SIGINT)
        try:
            first.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
            pytest.fail("the demo did not stop within 120 s of Ctrl-C:\n" + (root / "first.err").read_text()[-3000:])
    done_before = _completed_trials(out / "sweep")

    # 2. the same command again
    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stdout, stderr = second.communicate(timeout=900)
    (root / "second.err").write_text(stderr)
    assert second.returncode == 0, stderr[-4000:]
    time.sleep(2)
    leftover = _ray_daemons({first.pid, second.pid})
    return {"out": out, "first_rc": first.returncode, "first_err": (root / "first.err").read_text(),
            "done_before": done_before, "result": json.loads(stdout), "second_err": stderr,
            "leftover_ray": leftover}


def test_ctrl_c_stops_the_demo_and_a_rerun_resumes_the_sweep(demo):
    assert demo["first_rc"] != 0, "the interrupted demo must not carry on to the fits"
    assert "resuming the sweep" in demo["second_err"]
    # trials finished before Ctrl-C were not trained again: their records are untouched
    after = _completed_trials(demo["out"] / "sweep")
    assert len(demo["done_before"]) >= 2
    for run_id, before in demo["done_before"].items():
        assert after[run_id]["wall_s"] == before["wall_s"] and after[run_id]["final_loss"] == before["final_loss"]
    assert not demo["leftover_ray"], f"Ray daemons left running: {demo['leftover_ray']}"


def test_the_result_has_the_promised_keys_and_a_checked_forecast(demo, check_output):
    r = check_output(demo["result"], "demo")   # `scaling demo --json` follows contracts/output.schema.json
    for key in ("budget", "N_opt", "D_opt", "predicted_loss", "interval", "actual_loss", "error_pct", "a", "b",
                "wall_s", "report"):
        assert key in r, key
    assert r["budget"] == pytest.approx(6e11)  # 3x the largest quick budget (--heldout-factor 3)
    assert r["N_opt"] * r["D_opt"] * 6 == pytest.approx(r["budget"], rel=1e-6)
    lo, hi = r["interval"]
    assert lo < r["predicted_loss"] < hi
    assert 0 < r["actual_loss"] < 5.3  # below the unigram entropy of the corpus: the model learned
    assert r["error_pct"] == pytest.approx(100 * (r["predicted_loss"] - r["actual_loss"]) / r["actual_loss"])
    # a forecast 3x beyond the sweep, from 10 tiny runs: within 10% is a working pipeline, not luck
    assert abs(r["error_pct"]) < 10, r
    assert 0.2 < r["a"] < 0.8 and r["a"] + r["b"] == pytest.approx(1, abs=1e-6)
    laws = {"chinchilla", "kaplan_nd", "kaplan_bounded"}   # the last bounded by ln 512, the vocabulary it records
    assert r["law"] in laws and laws <= {row["candidate"] for row in r["selection"]["table"]}
    assert r["selection"]["axis"] == "budget" and sum(r["weights"].values()) == pytest.approx(1.0)
    assert laws <= set(r["candidates_at_run"])
    for v in r["candidates_at_run"].values():
        assert v["error_pct"] == pytest.approx(100 * (v["predicted"] - r["actual_loss"]) / r["actual_loss"])
    fc = json.loads((demo["out"] / "fit-forecast.json").read_text())
    assert fc["ceiling"] == pytest.approx(math.log(512)) and fc["vocab_size"] == 512
    # the sweep's design and cost, and the recipe the held-out run trained with (the sweep's own)
    assert r["sweep_design"] == "isoflop" and r["sweep_budgets"] == [2e10, 6e10, 2e11]
    assert r["sweep_flops"] == pytest.approx(r["sweep_flops_one_run_per_point"])  # one run per point
    assert r["recipe"]["schedule"] == "cosine" and r["recipe"]["batch_tokens"] == 1024
    held = r["heldout"]
    assert held["N"] * held["D"] * 6 == pytest.approx(r["budget"], rel=0.01)


def test_the_output_is_a_sweep_folder_the_other_commands_read(demo):
    out = demo["out"]
    status = subprocess.run([sys.executable, "-m", "orchestrator.cli", "sweep", "status", str(out / "sweep"), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    st = json.loads(status.stdout)
    counts = st["counts"]
    assert counts["completed"] == len(st["trials"]) >= 9 and counts["pending"] == 0
    fit = subprocess.run([sys.executable, "-m", "orchestrator.cli", "fit", str(out / "sweep"), "--approach", "2",
                          "--budget-col", "budget", "--json", "--no-progress"], capture_output=True, text=True,
                         timeout=120)
    assert fit.returncode == 0, fit.stderr
    assert json.loads(fit.stdout)["a"] == pytest.approx(demo["result"]["approach2_a"], rel=1e-6)
    report = Path(demo["result"]["report"])
    assert report.parent == out and report.stat().st_size > 100_000
    html = report.read_text()
    assert "<html" in html and "plotly" in html.lower()
    for name in ("fit-approach3.json", "fit-approach2.json", "fit-kaplan.json", "fit-forecast.json", "forecast.json",
                 "demo.json"):
        assert (out / name).exists(), name
    assert "Forecast (the law every command uses)" in html


def test_plan_of_the_demo_sweep_is_the_demos_forecast_to_the_last_digit(demo):
    """`scaling plan OUT/sweep --budget C --json` fits the same forecaster the demo did: the same loss,
    interval and law, digit for digit."""
    r = demo["result"]
    plan = subprocess.run([sys.executable, "-m", "orchestrator.cli", "plan", str(demo["out"] / "sweep"), "--budget",
                           repr(r["budget"]), "--json", "--no-shape"], capture_output=True, text=True, timeout=300)
    assert plan.returncode == 0, plan.stderr
    p = json.loads(plan.stdout)
    assert p["loss"] == r["predicted_loss"] and p["intervals"]["loss"] == r["interval"]
    assert p["N"] == r["N_opt"] and p["D"] == r["D_opt"]
    assert p["auto"]["chosen"] == r["law"] and p["auto"]["weights"] == r["weights"]


def test_a_held_out_run_of_another_plan_is_named_with_what_to_do(demo, tmp_path):
    """Rerunning into a folder whose held-out run was planned otherwise (an older version, another
    --heldout-factor or --set) stops in one line that says to delete that folder, not --no-resume (which
    the demo does not have); nothing in the folder changes."""
    out = tmp_path / "out"
    shutil.copytree(demo["out"], out, ignore=shutil.ignore_patterns("ray"))
    config = out / "heldout" / "config.json"
    cfg = json.loads(config.read_text())
    cfg["model"]["d_model"] += 4
    config.write_text(json.dumps(cfg))
    before = {p: p.stat().st_mtime_ns for p in (out / "heldout").rglob("*") if p.is_file()}
    env = {**os.environ, "SCALING_CACHE": str(demo["out"].parent / "cache"), "RAY_AUTH_MODE": "disabled",
           "RAY_USAGE_STATS_ENABLED": "0"}
    r = subprocess.run([sys.executable, "-m", "orchestrator.cli", "demo", "--quick", "--heldout-factor", "3", "--out",
                        str(out), "--json", "--no-progress"], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 2, r.stderr[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert "held-out run of another plan" in last and f"delete {out / 'heldout'}" in last, last
    assert "--no-resume" not in last and "Traceback" not in r.stderr
    assert {p: p.stat().st_mtime_ns for p in (out / "heldout").rglob("*") if p.is_file()} == before


def test_the_terminal_shows_the_demo_not_ray(demo):
    """The rerun's terminal carries the demo's own lines only: no Ray start-up or Tune INFO line, no
    worker output, no traceback (issue 23); Ray's lines are kept in the sweep folder's logs/ray.log."""
    err = demo["second_err"]
    for noise in ("INFO worker.py", "Started a local Ray instance", "INFO tune.py", "pid=", "Traceback",
                  "Exception ignored"):
        assert noise not in err, f"{noise!r} reached the terminal:\n{err[-3000:]}"
    assert "[1/5] resuming the sweep" in err and "[5/5]" in err
    log = (demo["out"] / "sweep" / "logs" / "ray.log").read_text()
    assert "Started a local Ray instance" in log
