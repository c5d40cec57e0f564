"""Every bad input is one line: a table of bad sweep specs, `--set` overrides, tables, fit JSONs and
flags of every subcommand. Each case runs the real command line in-process (`orchestrator.cli.main`)
and asserts exit code 2, exactly one stderr line starting `error:` that names what the user wrote,
no traceback, and no file created, changed or removed in the case's folder. A few cases run the
installed command in a subprocess (argparse's usage block, a broken pipe, an internal error's log).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_case import one_error_line, snapshot
from orchestrator.cli import main

ROOT = Path(__file__).resolve().parents[1]

# ------------------------------------------------------------------------------------------ inputs

SPEC = """\
name: bad-inputs
vocab_size: 512
context: 64
design: isoflop
budgets: [2e11, 6e11]
isoflop: {sizes_per_budget: 3, spread: 2, tokens_per_param: 40}
min_steps: 10
batch: {rule: fixed, tokens: 1024}
lr: {rule: fixed, value: 3e-3}
resources: {cpus: 1}
"""

GRID = """\
vocab_size: 512
context: 64
design: grid
sizes: [20k, 50k]
tokens: [1M, 2M]
min_steps: 10
batch: {rule: fixed, tokens: 1024}
"""


def _table() -> str:
    """A good CSV of 20 distinct (N, D) points from a Chinchilla law."""
    N = np.repeat(np.geomspace(2e7, 2e9, 5), 4)
    D = N * np.tile([5.0, 10.0, 20.0, 40.0], 5)
    loss = 1.8 + 400 / N**0.34 + 1500 / D**0.36
    return pd.DataFrame({"N": N, "D": D, "loss": loss}).to_csv(index=False)


GOOD_CSV = _table()


def _spec(replace: dict[str, str] | None = None, extra: str = "", base: str = SPEC) -> str:
    """SPEC with some top-level lines replaced (key -> new line, '' drops it) and `extra` appended."""
    lines = []
    for line in base.splitlines():
        key = line.split(":", 1)[0]
        if replace and key in replace:
            if replace[key]:
                lines.append(replace[key])
        else:
            lines.append(line)
    return "\n".join(lines) + "\n" + extra


@dataclass
class Bad:
    id: str
    argv: list[str]                 # "{d}" is the case's folder
    names: str                      # what the user wrote, expected in the error line
    files: dict[str, str | bytes] = field(default_factory=dict)


def _plan_spec(spec: str, *extra: str, names: str, id: str) -> Bad:
    return Bad(id, ["sweep", "plan", "{d}/s.yaml", "--no-probe", *extra], names, {"s.yaml": spec})


def _set(override: str, names: str, id: str) -> Bad:
    return Bad(id, ["sweep", "plan", "{d}/s.yaml", "--no-probe", "--set", override], names, {"s.yaml": SPEC})


DEEP = "x: " + "[" * 5000 + "]" * 5000 + "\n"

SPECS = [
    _plan_spec("", names="s.yaml", id="spec-empty"),
    _plan_spec("- 1\n- 2\n", names="s.yaml", id="spec-a-list"),
    _plan_spec("design: [unclosed\n", names="s.yaml", id="spec-bad-yaml"),
    _plan_spec(SPEC + DEEP, names="s.yaml", id="spec-nested-5000-deep"),
    _plan_spec(SPEC + "vocab_size: 1024\n", names="vocab_size", id="spec-duplicate-key"),
    _plan_spec(_spec(extra="batch: {tokens: 1024, tokens: 2048}\n", replace={"batch": ""}), names="tokens",
               id="spec-duplicate-nested-key"),
    _plan_spec(_spec({"design": "design: spiral"}), names="spiral", id="spec-unknown-design"),
    _plan_spec(SPEC + "budgetz: [1e12]\n", names="budgetz", id="spec-unknown-field"),
    _plan_spec(_spec({"budgets": "budgets: [-1e18]"}), names="-1e18", id="spec-negative-budget"),
    _plan_spec(_spec({"budgets": "budgets: [.inf]"}), names="budgets", id="spec-infinite-budget"),
    _plan_spec(_spec({"budgets": "budgets: [.nan]"}), names="budgets", id="spec-nan-budget"),
    _plan_spec(_spec({"budgets": "budgets: [1e3]"}), names="budgets[0]: 1000 FLOPs: no model fits", id="spec-tiny-budget"),
    _plan_spec(_spec({"budgets": "budgets: [1e400]"}), names="budgets", id="spec-budget-overflow"),
    _plan_spec(_spec({"budgets": "budgets: [lots]"}), names="lots", id="spec-budget-word"),
    _plan_spec(_spec({"lr": "lr: {rule: fixed, value: .inf}"}), names="lr", id="spec-infinite-lr"),
    _plan_spec(_spec({"lr": "lr: {rule: fixed, value: .nan}"}), names="lr", id="spec-nan-lr"),
    _plan_spec(_spec({"lr": "lr: {rule: fixed, value: -1}"}), names="lr", id="spec-negative-lr"),
    _plan_spec(_spec({"lr": "lr: {rule: power, value: 1e-3, exponent: 1e300}"}), names="exponent",
               id="spec-lr-exponent-overflow"),
    _plan_spec(_spec({"lr": "lr: {rule: power, value: 1e-3, exponent: .nan}"}), names="exponent",
               id="spec-lr-exponent-nan"),
    _plan_spec(_spec({"lr": "lr: {rule: fixed, value: 1e-3, multipliers: [.inf]}"}), names="multipliers",
               id="spec-lr-multiplier-inf"),
    _plan_spec(_spec({"resources": "resources: {cpus: .inf}"}), names="cpus", id="spec-infinite-cpus"),
    _plan_spec(_spec({"resources": "resources: {cpus: 0}"}), names="cpus", id="spec-zero-cpus"),
    _plan_spec(_spec({"resources": "resources: {cpus: 1, gpus: 1.5}"}), names="gpus", id="spec-gpus-1.5"),
    _plan_spec(_spec({"resources": "resources: {cpus: 1, gpus: .nan}"}), names="gpus", id="spec-gpus-nan"),
    _plan_spec(_spec({"batch": "batch: {tokens: 0.3}"}), names="batch.tokens", id="spec-batch-rounds-to-zero"),
    _plan_spec(_spec({"batch": "batch: {tokens: 0}"}), names="batch.tokens", id="spec-batch-zero"),
    _plan_spec(_spec({"batch": "batch: {tokens: .inf}"}), names="batch.tokens", id="spec-batch-inf"),
    _plan_spec(_spec({"batch": "batch: {rule: power, tokens: 1024, exponent: 2}"}), names="exponent",
               id="spec-batch-exponent-2"),
    _plan_spec(_spec(base=GRID, replace={"tokens": "tokens: [0.4]"}), names="tokens", id="spec-tokens-round-to-zero"),
    _plan_spec(_spec(base=GRID, replace={"tokens": "tokens: [.inf]"}), names="tokens", id="spec-tokens-inf"),
    _plan_spec(_spec(base=GRID, replace={"sizes": "sizes: [0.2]"}), names="sizes", id="spec-size-rounds-to-zero"),
    _plan_spec(_spec(base=GRID, replace={"sizes": "sizes: [{n_layer: 2, d_model: 30, n_head: 4}]"}),
               names="d_model", id="spec-heads-do-not-divide"),
    _plan_spec(_spec(base=GRID, replace={"sizes": "sizes: []"}), names="sizes", id="spec-no-sizes"),
    _plan_spec(SPEC + "seeds: [18446744073709551616]\n", names="seeds", id="spec-seed-beyond-64-bits"),
    _plan_spec(SPEC + "seeds: [9223372036854775808]\n", names="seeds", id="spec-seed-2-to-63"),
    _plan_spec(SPEC + "seeds: [-1]\n", names="seeds", id="spec-negative-seed"),
    _plan_spec(SPEC + "seeds: [1.5]\n", names="seeds", id="spec-fractional-seed"),
    _plan_spec(_spec({"context": "context: 0"}), names="context", id="spec-zero-context"),
    _plan_spec(_spec({"context": "context: 1e30"}), names="context", id="spec-huge-context"),
    _plan_spec(_spec({"vocab_size": "vocab_size: 10"}), names="vocab_size", id="spec-tiny-vocab"),
    _plan_spec(SPEC + "train: {warmup_tokens: 1e15}\n", names="warmup_tokens", id="spec-warmup-longer-than-run"),
    _plan_spec(SPEC + "train: {eval_tokens: .inf}\n", names="eval_tokens", id="spec-eval-tokens-inf"),
    _plan_spec(SPEC + "train: {tokens: 5}\n", names="train.tokens", id="spec-managed-train-field"),
    _plan_spec(SPEC + "train: {colour: red}\n", names="colour", id="spec-unknown-train-field"),
    _plan_spec(SPEC + "schedule: {kind: wsd, cooldowns: [1.5]}\n", names="cooldowns", id="spec-cooldown-1.5"),
    _plan_spec(SPEC + "schedule: {kind: cosine, min_lr_ratio: .nan}\n", names="min_lr_ratio",
               id="spec-min-lr-ratio-nan"),
    _plan_spec(SPEC + "checkpoint_sync_s: .inf\n", names="checkpoint_sync_s", id="spec-sync-inf"),
    _plan_spec(SPEC + "max_epochs: .nan\n", names="max_epochs", id="spec-max-epochs-nan"),
    _plan_spec(SPEC + "retries: 1e9\n", names="retries", id="spec-retries-huge"),
    _plan_spec(SPEC + "name: 'a b/c'\n", names="name", id="spec-bad-name"),
    _plan_spec(SPEC + "corpus: ['{d}/nothing-here-*.txt']\n", names="nothing-here-*.txt",
               id="spec-corpus-glob-matches-nothing"),
    _plan_spec(SPEC + "corpus: ['{d}/shard.json.bz2']\n", names="shard.json.bz2", id="spec-corpus-unknown-format"),
    # an unknown extension is refused, never read as text (scaling.corpus): a named file, a folder or glob of none
    Bad("spec-corpus-unknown-extension", ["sweep", "plan", "{d}/s.yaml", "--no-probe"], "tokens.bin",
        {"s.yaml": SPEC + "corpus: ['{d}/tokens.bin']\n", "tokens.bin": b"\x00\x01\x02"}),
    Bad("spec-corpus-no-extension", ["sweep", "plan", "{d}/s.yaml", "--no-probe"], "README",
        {"s.yaml": SPEC + "corpus: ['{d}/README']\n", "README": "plain words"}),
    Bad("spec-corpus-csv", ["sweep", "plan", "{d}/s.yaml", "--no-probe"], "table.csv",
        {"s.yaml": SPEC + "corpus: ['{d}/table.csv']\n", "table.csv": "a,b\n1,2\n"}),
    Bad("spec-corpus-folder-of-unknown-formats", ["sweep", "plan", "{d}/s.yaml", "--no-probe"], "blobs",
        {"s.yaml": SPEC + "corpus: ['{d}/blobs']\n", "blobs/a.bin": b"\x00", "blobs/b.dat": b"\x01"}),
    Bad("spec-corpus-glob-of-unknown-formats", ["sweep", "plan", "{d}/s.yaml", "--no-probe"], "*.dat",
        {"s.yaml": SPEC + "corpus: ['{d}/*.dat']\n", "a.dat": b"\x00"}),
    _plan_spec(_spec({"isoflop": "isoflop: {sizes_per_budget: 0}"}), names="sizes_per_budget",
               id="spec-isoflop-zero-sizes"),
    _plan_spec(_spec({"isoflop": "isoflop: {spread: .inf}"}), names="spread", id="spec-isoflop-spread-inf"),
    _plan_spec(_spec({"isoflop": "isoflop: {tokens_per_param: -3}"}), names="tokens_per_param",
               id="spec-isoflop-negative-ratio"),
    _plan_spec(SPEC + "max_concurrent_trials: 0\n", names="max_concurrent_trials", id="spec-zero-concurrency"),
    Bad("spec-missing-file", ["sweep", "plan", "{d}/missing.yaml", "--no-probe"], "missing.yaml"),
    Bad("spec-is-a-folder", ["sweep", "plan", "{d}/sub", "--no-probe"], "sub", {"sub/x": "1"}),
    Bad("spec-binary", ["sweep", "plan", "{d}/s.yaml", "--no-probe"], "s.yaml", {"s.yaml": b"\xff\xfe\x00\x81" * 50}),
    Bad("spec-symlink-loop", ["sweep", "plan", "{d}/loop.yaml", "--no-probe"], "loop.yaml", {"loop.yaml": "@loop.yaml"}),
    Bad("spec-name-too-long", ["sweep", "plan", "{d}/" + "x" * 300 + ".yaml", "--no-probe"], "xxxx"),
]

SETS = [
    _set("budgets", "budgets", "set-no-equals"),
    _set("=3", "=3", "set-no-key"),
    _set("budgets[9]=1e12", "budgets", "set-index-out-of-range"),
    _set("isoflop..spread=3", "isoflop..spread", "set-bad-path"),
    _set("budgets=[1e11", "budgets", "set-bad-yaml"),
    _set("budgets=[-5]", "-5", "set-negative-budget"),
    _set("budgets=[.inf]", "budgets", "set-infinite-budget"),
    _set("isoflop.spread=0", "spread", "set-zero-spread"),
    _set("isoflop.spread=abc", "abc", "set-word-spread"),
    _set("design=spiral", "spiral", "set-unknown-design"),
    _set("lr.value=.inf", "lr", "set-infinite-lr"),
    _set("lr.value=1e999", "lr", "set-overflow-lr"),
    _set("batch.tokens=0.3", "batch.tokens", "set-batch-rounds-to-zero"),
    _set("seeds=[99999999999999999999]", "seeds", "set-seed-too-big"),
    _set("resources.cpus=.inf", "cpus", "set-infinite-cpus"),
    _set("context.x=3", "context", "set-into-a-number"),
    _set("colour=red", "colour", "set-unknown-field"),
    _set("train.warmup_tokens=1e15", "warmup_tokens", "set-warmup-too-long"),
    _set("x=" + "[" * 5000 + "]" * 5000, "x", "set-nested-5000-deep"),
]

TABLES = [
    Bad("fit-missing-table", ["fit", "{d}/missing.csv"], "missing.csv"),
    Bad("fit-unknown-extension", ["fit", "{d}/t.xlsx"], "t.xlsx", {"t.xlsx": GOOD_CSV}),
    Bad("fit-empty-csv", ["fit", "{d}/t.csv"], "t.csv", {"t.csv": ""}),
    Bad("fit-binary-csv", ["fit", "{d}/t.csv"], "t.csv", {"t.csv": b"\x89PNG\r\n\x1a\n\x00\xff" * 40}),
    Bad("fit-binary-parquet", ["fit", "{d}/t.parquet"], "t.parquet", {"t.parquet": b"PAR1garbage"}),
    Bad("fit-missing-column", ["fit", "{d}/t.csv", "--n-col", "params"], "params", {"t.csv": GOOD_CSV}),
    Bad("fit-duplicate-columns", ["fit", "{d}/t.csv"], "loss",
        {"t.csv": GOOD_CSV.replace("N,D,loss", "N,D,loss,loss").replace("\n", ",3.0\n").replace("loss,3.0", "loss")}),
    Bad("fit-identical-rows", ["fit", "{d}/t.csv"], "t.csv", {"t.csv": "N,D,loss\n" + "1e8,2e9,3.1\n" * 18}),
    Bad("fit-too-few-points", ["fit", "{d}/t.csv"], "t.csv", {"t.csv": "N,D,loss\n1e8,2e9,3.1\n2e8,2e9,3.0\n1e8,4e9,3.0\n"}),
    Bad("fit-text-in-loss", ["fit", "{d}/t.csv"], "loss",
        {"t.csv": GOOD_CSV.replace(GOOD_CSV.splitlines()[3].split(",")[2], "high", 1)}),
    Bad("fit-infinite-n", ["fit", "{d}/t.csv"], "N", {"t.csv": GOOD_CSV.replace(GOOD_CSV.splitlines()[2].split(",")[0], "inf", 1)}),
    Bad("fit-negative-loss", ["fit", "{d}/t.csv"], "loss", {"t.csv": "N,D,loss\n" + "".join(
        f"{n:g},{d:g},{-1.0 if i == 0 else 3 - i / 50}\n" for i, (n, d) in enumerate(
            (n, d) for n in (1e7, 3e7, 1e8, 3e8) for d in (1e9, 3e9, 1e10, 3e10)))}),
    Bad("fit-folder-without-points", ["fit", "{d}/runs"], "runs", {"runs/readme.txt": "nothing"}),
    Bad("fit-symlink-loop", ["fit", "{d}/loop.csv"], "loop.csv", {"loop.csv": "@loop.csv"}),
    Bad("fit-name-too-long", ["fit", "{d}/" + "t" * 300 + ".csv"], "tttt"),
    Bad("fit-drop-all", ["fit", "{d}/t.csv", "--drop-highest", "20"], "drop the 20", {"t.csv": GOOD_CSV}),
    Bad("fit-out-under-a-file", ["fit", "{d}/t.csv", "--out", "{d}/t.csv/fit.json"], "fit.json", {"t.csv": GOOD_CSV}),
    Bad("fit-out-is-a-folder", ["fit", "{d}/t.csv", "--out", "{d}/sub"], "sub", {"t.csv": GOOD_CSV, "sub/x": "1"}),
]

FLAGS = [
    # fit
    Bad("fit-bootstrap-negative", ["fit", "{d}/t.csv", "--bootstrap", "-3"], "--bootstrap", {"t.csv": GOOD_CSV}),
    Bad("fit-bootstrap-word", ["fit", "{d}/t.csv", "--bootstrap", "many"], "many", {"t.csv": GOOD_CSV}),
    Bad("fit-level-1", ["fit", "{d}/t.csv", "--level", "1"], "--level", {"t.csv": GOOD_CSV}),
    Bad("fit-level-nan", ["fit", "{d}/t.csv", "--level", "nan"], "--level", {"t.csv": GOOD_CSV}),
    Bad("fit-approach-4", ["fit", "{d}/t.csv", "--approach", "4"], "4", {"t.csv": GOOD_CSV}),
    Bad("fit-seed-beyond-64-bits", ["fit", "{d}/t.csv", "--seed", str(2**64)], "--seed", {"t.csv": GOOD_CSV}),
    Bad("fit-seed-negative", ["fit", "{d}/t.csv", "--seed", "-1"], "--seed", {"t.csv": GOOD_CSV}),
    Bad("fit-budget-rtol-inf", ["fit", "{d}/t.csv", "--approach", "2", "--budget-rtol", "inf"], "--budget-rtol",
        {"t.csv": GOOD_CSV}),
    Bad("fit-drop-negative", ["fit", "{d}/t.csv", "--drop-highest", "-2"], "--drop-highest", {"t.csv": GOOD_CSV}),
    Bad("fit-unknown-flag", ["fit", "{d}/t.csv", "--colour"], "--colour", {"t.csv": GOOD_CSV}),
    Bad("fit-vocab-size-1", ["fit", "{d}/t.csv", "--approach", "kaplan", "--vocab-size", "1"], "--vocab-size",
        {"t.csv": GOOD_CSV}),
    Bad("fit-vocab-size-fraction", ["fit", "{d}/t.csv", "--approach", "kaplan", "--vocab-size", "2.5"], "2.5",
        {"t.csv": GOOD_CSV}),
    Bad("fit-vocab-size-approach-3", ["fit", "{d}/t.csv", "--vocab-size", "512"], "--vocab-size", {"t.csv": GOOD_CSV}),
    Bad("fit-vocab-size-below-the-losses", ["fit", "{d}/t.csv", "--approach", "kaplan", "--vocab-size", "8"],
        "ceiling", {"t.csv": GOOD_CSV}),
    Bad("backtest-vocab-size-approach-3", ["backtest", "{d}/t.csv", "--holdout", "N >= 1e9", "--approach", "3",
                                           "--vocab-size", "512"], "--vocab-size", {"t.csv": GOOD_CSV}),
    Bad("fit-auto-vocab-size-below-the-losses", ["fit", "{d}/t.csv", "--approach", "auto", "--vocab-size", "8"],
        "ln V", {"t.csv": GOOD_CSV}),
    Bad("backtest-out-is-a-folder", ["backtest", "{d}/t.csv", "--holdout", "N >= 1e9", "--out", "{d}"], "is a folder",
        {"t.csv": GOOD_CSV}),
    Bad("report-out-is-a-folder", ["report", "{d}/t.csv", "--out", "{d}"], "is a folder", {"t.csv": GOOD_CSV}),
    Bad("plan-write-config-is-a-folder", ["plan", "{d}/fit.json", "--budget", "1e21", "--write-config", "{d}"],
        "is a folder", {"fit.json": "@fit"}),
    Bad("fit-keep-all-approach-3", ["fit", "{d}/t.csv", "--keep-all"], "--keep-all", {"t.csv": GOOD_CSV}),
    Bad("backtest-keep-all-approach-3", ["backtest", "{d}/t.csv", "--holdout", "N >= 1e9", "--approach", "3",
                                         "--keep-all"], "--keep-all", {"t.csv": GOOD_CSV}),
    Bad("plan-keep-all-fit-json", ["plan", "{d}/fit.json", "--budget", "1e21", "--keep-all"], "--keep-all",
        {"fit.json": "@fit"}),
    Bad("plan-keep-all-approach-3", ["plan", "{d}/t.csv", "--budget", "1e21", "--approach", "3", "--keep-all"],
        "--keep-all", {"t.csv": GOOD_CSV}),
    Bad("report-forecast-not-a-forecaster", ["report", "{d}/t.csv", "--forecast", "{d}/fit.json", "--out",
                                             "{d}/r.html"], "fit.json", {"t.csv": GOOD_CSV, "fit.json": "@fit"}),
    Bad("fit-no-source", ["fit"], "SOURCE"),
    # plan
    Bad("plan-budget-negative", ["plan", "{d}/fit.json", "--budget", "-1"], "-1", {"fit.json": "@fit"}),
    Bad("plan-budget-zero", ["plan", "{d}/fit.json", "--budget", "0"], "0", {"fit.json": "@fit"}),
    Bad("plan-budget-inf", ["plan", "{d}/fit.json", "--budget", "inf"], "inf", {"fit.json": "@fit"}),
    Bad("plan-budget-nan", ["plan", "{d}/fit.json", "--budget", "nan"], "nan", {"fit.json": "@fit"}),
    Bad("plan-budget-unknown-suffix", ["plan", "{d}/fit.json", "--budget", "3X"], "3X", {"fit.json": "@fit"}),
    Bad("plan-budget-overflow", ["plan", "{d}/fit.json", "--budget", "1e400"], "1e400", {"fit.json": "@fit"}),
    Bad("plan-params-word", ["plan", "{d}/fit.json", "--params", "big"], "big", {"fit.json": "@fit"}),
    Bad("plan-tokens-and-budget", ["plan", "{d}/fit.json", "--budget", "1e21", "--tokens", "1T"], "--tokens",
        {"fit.json": "@fit"}),
    Bad("plan-target-loss-nan", ["plan", "{d}/fit.json", "--target-loss", "nan"], "--target-loss", {"fit.json": "@fit"}),
    Bad("plan-target-loss-below-E", ["plan", "{d}/fit.json", "--target-loss", "0.5"], "0.5", {"fit.json": "@fit"}),
    Bad("plan-mfu-2", ["plan", "{d}/fit.json", "--budget", "1e21", "--flops-per-s", "1e15", "--mfu", "2"], "mfu: 2",
        {"fit.json": "@fit"}),
    Bad("plan-mfu-nan", ["plan", "{d}/fit.json", "--budget", "1e21", "--flops-per-s", "1e15", "--mfu", "nan"], "--mfu",
        {"fit.json": "@fit"}),
    Bad("plan-devices-zero", ["plan", "{d}/fit.json", "--budget", "1e21", "--devices", "0"], "--devices",
        {"fit.json": "@fit"}),
    Bad("plan-devices-inf", ["plan", "{d}/fit.json", "--budget", "1e21", "--devices", "inf"], "--devices",
        {"fit.json": "@fit"}),
    Bad("plan-vocab-zero", ["plan", "{d}/fit.json", "--budget", "1e21", "--vocab-size", "0"], "--vocab-size",
        {"fit.json": "@fit"}),
    Bad("plan-context-negative", ["plan", "{d}/fit.json", "--budget", "1e21", "--context", "-8"], "--context",
        {"fit.json": "@fit"}),
    Bad("plan-nothing-asked", ["plan", "{d}/fit.json"], "--budget", {"fit.json": "@fit"}),
    Bad("plan-inference-alone", ["plan", "{d}/fit.json", "--params", "1B", "--inference-tokens", "1T"],
        "--inference-tokens", {"fit.json": "@fit"}),
    Bad("plan-write-config-under-file", ["plan", "{d}/fit.json", "--budget", "1e21", "--write-config",
                                         "{d}/fit.json/cfg.json"], "cfg.json", {"fit.json": "@fit"}),
    # backtest
    Bad("backtest-holdout-overflow", ["backtest", "{d}/t.csv", "--holdout", "N > 9**9**9**9"], "9**9**9**9",
        {"t.csv": GOOD_CSV}),
    Bad("backtest-holdout-huge-range", ["backtest", "{d}/t.csv", "--holdout", "rows 1-10000000000"], "10000000000",
        {"t.csv": GOOD_CSV}),
    Bad("backtest-holdout-largest-0", ["backtest", "{d}/t.csv", "--holdout", "largest 0 N"], "largest 0 N",
        {"t.csv": GOOD_CSV}),
    Bad("backtest-holdout-unknown-column", ["backtest", "{d}/t.csv", "--holdout", "width > 3"], "width",
        {"t.csv": GOOD_CSV}),
    Bad("backtest-holdout-syntax", ["backtest", "{d}/t.csv", "--holdout", "N >>> 3"], "N >>> 3", {"t.csv": GOOD_CSV}),
    Bad("backtest-holdout-code", ["backtest", "{d}/t.csv", "--holdout", "__import__('os').system('true')"],
        "__import__", {"t.csv": GOOD_CSV}),
    Bad("backtest-holdout-everything", ["backtest", "{d}/t.csv", "--holdout", "N > 0"], "N > 0", {"t.csv": GOOD_CSV}),
    Bad("backtest-holdout-nothing", ["backtest", "{d}/t.csv", "--holdout", "N < 0"], "N < 0", {"t.csv": GOOD_CSV}),
    Bad("backtest-holdout-row-0", ["backtest", "{d}/t.csv", "--holdout", "rows 0"], "row 0", {"t.csv": GOOD_CSV}),
    Bad("backtest-holdout-row-beyond", ["backtest", "{d}/t.csv", "--holdout", "rows 99"], "99", {"t.csv": GOOD_CSV}),
    Bad("backtest-level-0", ["backtest", "{d}/t.csv", "--holdout", "largest N", "--level", "0"], "level",
        {"t.csv": GOOD_CSV}),
    Bad("backtest-bootstrap-negative", ["backtest", "{d}/t.csv", "--holdout", "largest N", "--bootstrap", "-1"],
        "--bootstrap", {"t.csv": GOOD_CSV}),
    Bad("backtest-forecast-flops-inf", ["backtest", "{d}/t.csv", "--lobo", "--forecast-flops", "inf"],
        "--forecast-flops", {"t.csv": GOOD_CSV}),
    Bad("backtest-missing-targets", ["backtest", "{d}/t.csv", "--holdout", "largest N", "--targets", "{d}/no.csv"],
        "no.csv", {"t.csv": GOOD_CSV}),
    Bad("backtest-weights-bad", ["backtest", "{d}/t.csv", "--weights", "heavy"], "heavy", {"t.csv": GOOD_CSV}),
    # report
    Bad("report-missing-source", ["report", "{d}/none.csv", "--out", "{d}/r.html"], "none.csv"),
    Bad("report-bootstrap-negative", ["report", "{d}/t.csv", "--bootstrap", "-1", "--out", "{d}/r.html"],
        "--bootstrap", {"t.csv": GOOD_CSV}),
    Bad("report-drop-negative", ["report", "{d}/t.csv", "--drop-highest", "-1", "--out", "{d}/r.html"],
        "--drop-highest", {"t.csv": GOOD_CSV}),
    Bad("report-fit-is-list", ["report", "{d}/t.csv", "--fit", "{d}/f.json", "--out", "{d}/r.html"], "f.json",
        {"t.csv": GOOD_CSV, "f.json": "[1, 2]"}),
    Bad("report-budget-rtol-nan", ["report", "{d}/t.csv", "--budget-rtol", "nan", "--out", "{d}/r.html"],
        "--budget-rtol", {"t.csv": GOOD_CSV}),
    # train (all refused before any data is prepared)
    Bad("train-no-size", ["train", "--out", "{d}/run"], "--tokens"),
    Bad("train-tokens-zero", ["train", "--n-layer", "1", "--d-model", "16", "--tokens", "0", "--out", "{d}/run"], "0"),
    Bad("train-tokens-rounds-to-zero", ["train", "--n-layer", "1", "--d-model", "16", "--tokens", "0.4",
                                        "--out", "{d}/run"], "0.4"),
    Bad("train-lr-inf", ["train", "--n-layer", "1", "--d-model", "16", "--tokens", "1M", "--lr", "inf",
                         "--out", "{d}/run"], "--lr"),
    Bad("train-lr-nan", ["train", "--n-layer", "1", "--d-model", "16", "--tokens", "1M", "--lr", "nan",
                         "--out", "{d}/run"], "--lr"),
    Bad("train-seed-beyond-64-bits", ["train", "--n-layer", "1", "--d-model", "16", "--tokens", "1M", "--seed",
                                      str(2**64), "--out", "{d}/run"], "--seed"),
    Bad("train-batch-rounds-to-zero", ["train", "--n-layer", "1", "--d-model", "16", "--tokens", "1M",
                                       "--batch-tokens", "0.3", "--out", "{d}/run"], "0.3"),
    Bad("train-warmup-longer-than-run", ["train", "--n-layer", "1", "--d-model", "16", "--tokens", "1M",
                                         "--warmup-tokens", "2M", "--out", "{d}/run"], "--warmup-tokens"),
    Bad("train-val-fraction-1", ["train", "--n-layer", "1", "--d-model", "16", "--tokens", "1M",
                                 "--val-fraction", "1", "--out", "{d}/run"], "val_fraction"),
    Bad("train-heads-do-not-divide", ["train", "--n-layer", "1", "--d-model", "30", "--n-head", "4",
                                      "--tokens", "1M", "--out", "{d}/run"], "d_model"),
    Bad("train-cooldowns-word", ["train", "--n-layer", "1", "--d-model", "16", "--tokens", "1M", "--schedule", "wsd",
                                 "--cooldowns", "half", "--out", "{d}/run"], "half"),
    Bad("train-corpus-glob-nothing", ["train", "--n-layer", "1", "--d-model", "16", "--tokens", "1M",
                                      "--corpus", "{d}/none-*.txt", "--out", "{d}/run"], "none-*.txt"),
    Bad("train-corpus-unknown-format", ["train", "--n-layer", "1", "--d-model", "16", "--tokens", "1M",
                                        "--corpus", "{d}/c.json.bz2", "--out", "{d}/run"], "c.json.bz2",
        {"c.json.bz2": b"BZh91AY&SY"}),
    Bad("train-corpus-unknown-extension", ["train", "--n-layer", "1", "--d-model", "16", "--tokens", "1M",
                                           "--corpus", "{d}/shard.bin", "--out", "{d}/run"], "shard.bin",
        {"shard.bin": b"\x00\x01"}),
    Bad("train-corpus-docx", ["train", "--n-layer", "1", "--d-model", "16", "--tokens", "1M",
                              "--corpus", "{d}/book.docx", "--out", "{d}/run"], "book.docx", {"book.docx": b"PK\x03"}),
    Bad("train-corpus-folder-of-unknown-formats", ["train", "--n-layer", "1", "--d-model", "16", "--tokens", "1M",
                                                   "--corpus", "{d}/blobs", "--out", "{d}/run"], "blobs",
        {"blobs/a.bin": b"\x00", "blobs/LICENSE": "words"}),
    Bad("train-out-under-a-file", ["train", "--n-layer", "1", "--d-model", "16", "--tokens", "1M",
                                   "--out", "{d}/f.txt/run"], "f.txt", {"f.txt": "x"}),
    Bad("train-huge-probe", ["train", "--n-layer", "96", "--d-model", "65536", "--tokens", "1M", "--device", "cpu",
                             "--out", "{d}/run"], "65536"),
    # sweep launch / resume / status (refused before Ray starts)
    Bad("launch-bad-spec", ["sweep", "launch", "{d}/s.yaml", "--out", "{d}/out"], "spiral",
        {"s.yaml": _spec({"design": "design: spiral"})}),
    Bad("launch-num-cpus-zero", ["sweep", "launch", "{d}/s.yaml", "--out", "{d}/out", "--num-cpus", "0"],
        "--num-cpus", {"s.yaml": SPEC}),
    Bad("launch-num-gpus-negative", ["sweep", "launch", "{d}/s.yaml", "--out", "{d}/out", "--num-gpus", "-1"],
        "--num-gpus", {"s.yaml": SPEC}),
    Bad("launch-dashboard-exposed", ["sweep", "launch", "{d}/s.yaml", "--out", "{d}/out", "--dashboard",
                                     "--dashboard-host", "0.0.0.0"], "0.0.0.0", {"s.yaml": SPEC}),
    Bad("launch-remote-without-auth", ["sweep", "launch", "{d}/s.yaml", "--out", "{d}/out", "--address",
                                       "10.1.2.3:6379"], "10.1.2.3:6379", {"s.yaml": SPEC}),
    Bad("resume-missing", ["sweep", "resume", "{d}/none"], "none"),
    Bad("status-missing", ["sweep", "status", "{d}/none"], "none"),
    Bad("status-not-a-sweep", ["sweep", "status", "{d}/sub"], "sub", {"sub/x": "1"}),
    Bad("sweep-plan-slots-zero", ["sweep", "plan", "{d}/s.yaml", "--no-probe", "--slots", "0"], "--slots",
        {"s.yaml": SPEC}),
    Bad("sweep-unknown-action", ["sweep", "explode", "{d}/s.yaml"], "explode"),
    Bad("sweep-plan-huge-probe", ["sweep", "plan", "{d}/s.yaml"], "65536",
        {"s.yaml": _spec(base=GRID, replace={"sizes": "sizes: [{n_layer: 96, d_model: 65536, n_head: 64}]"})}),
    # demo (refused before anything runs)
    Bad("demo-heldout-factor-negative", ["demo", "--out", "{d}/demo", "--heldout-factor", "-1"], "--heldout-factor"),
    Bad("demo-heldout-factor-inf", ["demo", "--out", "{d}/demo", "--heldout-factor", "inf"], "--heldout-factor"),
    Bad("demo-bootstrap-negative", ["demo", "--out", "{d}/demo", "--bootstrap", "-1"], "--bootstrap"),
    Bad("demo-bad-set", ["demo", "--out", "{d}/demo", "--set", "budgets=[-1]"], "-1"),
    Bad("demo-out-under-a-file", ["demo", "--out", "{d}/f.txt/demo"], "f.txt", {"f.txt": "x"}),
    # the command itself
    Bad("unknown-command", ["explode"], "explode"),
]

FITS = [
    Bad("plan-fit-missing", ["plan", "{d}/none.json", "--budget", "1e21"], "none.json"),
    Bad("plan-fit-folder", ["plan", "{d}/sub", "--budget", "1e21"], "sub", {"sub/x": "1"}),
    Bad("plan-fit-binary", ["plan", "{d}/f.json", "--budget", "1e21"], "f.json", {"f.json": b"\x00\xff\xfe\x80" * 64}),
    Bad("plan-fit-list", ["plan", "{d}/f.json", "--budget", "1e21"], "f.json", {"f.json": "[1, 2, 3]"}),
    Bad("plan-fit-truncated", ["plan", "{d}/f.json", "--budget", "1e21"], "f.json", {"f.json": "@fit-truncated"}),
    Bad("plan-fit-nested-deep", ["plan", "{d}/f.json", "--budget", "1e21"], "f.json",
        {"f.json": '{"a": ' + "[" * 100000 + "]" * 100000 + "}"}),
    Bad("plan-fit-E-nan", ["plan", "{d}/f.json", "--budget", "1e21"], "E", {"f.json": "@fit:E=NaN"}),
    Bad("plan-fit-E-negative", ["plan", "{d}/f.json", "--budget", "1e21"], "E", {"f.json": "@fit:E=-3.0"}),
    Bad("plan-fit-alpha-zero", ["plan", "{d}/f.json", "--budget", "1e21"], "alpha", {"f.json": "@fit:alpha=0.0"}),
    Bad("plan-fit-beta-negative", ["plan", "{d}/f.json", "--budget", "1e21"], "beta", {"f.json": "@fit:beta=-0.2"}),
    Bad("plan-fit-A-infinite", ["plan", "{d}/f.json", "--budget", "1e21"], "A", {"f.json": "@fit:A=Infinity"}),
    Bad("plan-fit-B-string", ["plan", "{d}/f.json", "--budget", "1e21"], "B", {"f.json": '@fit:B="big"'}),
    Bad("plan-fit-no-approach", ["plan", "{d}/f.json", "--budget", "1e21"], "approach", {"f.json": "@fit:approach=null"}),
    Bad("plan-fit-unknown-approach", ["plan", "{d}/f.json", "--budget", "1e21"], "approach", {"f.json": "@fit:approach=7"}),
    Bad("plan-fit-symlink-loop", ["plan", "{d}/loop.json", "--budget", "1e21"], "loop.json", {"loop.json": "@loop.json"}),
    Bad("report-fit-E-nan", ["report", "{d}/f.json", "--out", "{d}/r.html"], "E", {"f.json": "@fit:E=NaN"}),
]

def _mixed_csv() -> str:
    """GOOD_CSV with two eval-data hashes: the first 12 rows measured on one eval set, the rest on another."""
    df = pd.read_csv(__import__("io").StringIO(GOOD_CSV))
    df["data_fingerprint"] = ["aaaa"] * 12 + ["bbbb"] * (len(df) - 12)
    return df.to_csv(index=False)


COMPARE = [
    Bad("compare-base-missing", ["compare", "{d}/none.csv", "{d}/t.csv"], "none.csv", {"t.csv": GOOD_CSV}),
    Bad("compare-to-negative", ["compare", "{d}/t.csv", "{d}/t.csv", "--to=-1e21"], "-1e21", {"t.csv": GOOD_CSV}),
    Bad("compare-to-inf", ["compare", "{d}/t.csv", "{d}/t.csv", "--to", "inf"], "inf", {"t.csv": GOOD_CSV}),
    Bad("compare-level-1", ["compare", "{d}/t.csv", "{d}/t.csv", "--level", "1"], "--level", {"t.csv": GOOD_CSV}),
    Bad("compare-bootstrap-negative", ["compare", "{d}/t.csv", "{d}/t.csv", "--bootstrap", "-3"], "--bootstrap",
        {"t.csv": GOOD_CSV}),
    Bad("compare-approach-3-fit", ["compare", "{d}/f.json", "{d}/t.csv"], "f.json", {"f.json": "@fit", "t.csv": GOOD_CSV}),
    Bad("compare-out-is-a-folder", ["compare", "{d}/t.csv", "{d}/t.csv", "--out", "{d}/sub"], "sub",
        {"t.csv": GOOD_CSV, "sub/x": "1"}),
    Bad("compare-mixed-eval-hashes", ["compare", "{d}/m.csv", "{d}/t.csv"], "--allow-mixed",
        {"m.csv": _mixed_csv(), "t.csv": GOOD_CSV}),
    Bad("fit-mixed-eval-hashes", ["fit", "{d}/m.csv"], "data_fingerprint", {"m.csv": _mixed_csv()}),
    Bad("plan-mixed-eval-hashes", ["plan", "{d}/m.csv", "--budget", "1e21"], "--allow-mixed", {"m.csv": _mixed_csv()}),
    Bad("backtest-mixed-eval-hashes", ["backtest", "{d}/m.csv", "--holdout", "largest N"], "--allow-mixed",
        {"m.csv": _mixed_csv()}),
    Bad("report-mixed-eval-hashes", ["report", "{d}/m.csv", "--out", "{d}/r.html"], "--allow-mixed",
        {"m.csv": _mixed_csv()}),
    Bad("plan-fit-json-allow-mixed", ["plan", "{d}/f.json", "--budget", "1e21", "--allow-mixed"], "--allow-mixed",
        {"f.json": "@fit"}),
    Bad("compare-different-eval-hashes", ["compare", "{d}/a.csv", "{d}/b.csv", "--bootstrap", "0"], "aaaa",
        {"a.csv": GOOD_CSV.replace("N,D,loss", "N,D,loss,eval_data_hash").replace("\n", ",aaaa\n")
         .replace("eval_data_hash,aaaa", "eval_data_hash"),
         "b.csv": GOOD_CSV.replace("N,D,loss", "N,D,loss,eval_data_hash").replace("\n", ",bbbb\n")
         .replace("eval_data_hash,bbbb", "eval_data_hash")}),
]

CASES = SPECS + SETS + TABLES + FLAGS + FITS + COMPARE



def _hp_table(lr=None, one_setting=False, diverged_all=False) -> str:
    """An LR sweep CSV: 3 sizes x 2 token counts x 3 LRs, optimum bracketed in each cell."""
    rows = []
    for N in (1e6, 3e6, 1e7):
        for D in (2e7, 8e7):
            for m in ((1.0,) if one_setting else (0.5, 1.0, 2.0)):
                loss = "nan" if diverged_all else 3.0 + 0.05 * np.log(m) ** 2
                rows.append({"N": N, "D": D, "lr": 1e-3 * m if lr is None else lr, "loss": loss})
    return pd.DataFrame(rows).to_csv(index=False)


HP_CASES = [
    Bad("hparams-missing-table", ["hparams", "{d}/none.csv"], "none.csv"),
    Bad("hparams-lr-zero", ["hparams", "{d}/h.csv"], "'lr'", {"h.csv": _hp_table(lr=0.0)}),
    Bad("hparams-lr-negative", ["hparams", "{d}/h.csv"], "'lr'", {"h.csv": _hp_table(lr=-1e-3)}),
    Bad("hparams-lr-inf", ["hparams", "{d}/h.csv"], "'lr'", {"h.csv": _hp_table(lr=float("inf"))}),
    Bad("hparams-no-lr-column", ["hparams", "{d}/h.csv", "--lr-col", "peak_lr"], "peak_lr", {"h.csv": _hp_table()}),
    Bad("hparams-one-setting-per-cell", ["hparams", "{d}/h.csv"], "0 of 6 (N, D) cells", {"h.csv": _hp_table(one_setting=True)}),
    Bad("hparams-all-diverged", ["hparams", "{d}/h.csv"], "0 of 6 (N, D) cells", {"h.csv": _hp_table(diverged_all=True)}),
    Bad("hparams-at-not-a-pair", ["hparams", "{d}/h.csv", "--at", "1B"], "1B", {"h.csv": _hp_table()}),
    Bad("hparams-at-negative", ["hparams", "{d}/h.csv", "--at", "1B,-2"], "-2", {"h.csv": _hp_table()}),
    Bad("hparams-band-one", ["hparams", "{d}/h.csv", "--band", "1"], "--band", {"h.csv": _hp_table()}),
    Bad("hparams-out-is-a-folder", ["hparams", "{d}/h.csv", "--out", "{d}"], "is a folder", {"h.csv": _hp_table()}),
    Bad("plan-hparams-not-hparams", ["plan", "{d}/fit.json", "--budget", "1e21", "--hparams", "{d}/h.json"],
        "h.json", {"h.json": "{}", "fit.json": "@fit"}),
    Bad("plan-hparams-missing", ["plan", "{d}/fit.json", "--budget", "1e21", "--hparams", "{d}/none.json"], "none.json",
        {"fit.json": "@fit"}),
]
CASES += HP_CASES

def test_at_least_100_cases():
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)


# ------------------------------------------------------------------------------------------ the check

@pytest.fixture(scope="module")
def fit_json(tmp_path_factory) -> str:
    """A real approach-3 fit JSON written by `scaling fit --out`."""
    d = tmp_path_factory.mktemp("fit")
    (d / "t.csv").write_text(GOOD_CSV)
    assert main(["fit", str(d / "t.csv"), "--out", str(d / "fit.json"), "--json"]) == 0
    return (d / "fit.json").read_text()


def _materialise(case: Bad, d: Path, fit_text: str) -> None:
    for name, content in case.files.items():
        path = d / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str) and content.startswith("@"):
            what = content[1:]
            if what == "fit":
                path.write_text(fit_text)
            elif what == "fit-truncated":
                path.write_text(fit_text[: len(fit_text) // 2])
            elif what.startswith("fit:"):
                key, _, value = what[4:].partition("=")
                obj = json.loads(fit_text)
                assert key in obj, key
                obj[key] = "__SENTINEL__"
                path.write_text(json.dumps(obj).replace('"__SENTINEL__"', value))
            else:                                              # a symlink loop: name -> itself
                os.symlink(d / what, path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content.replace("{d}", str(d)))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line(case: Bad, tmp_path, capsys, fit_json, monkeypatch):
    d = tmp_path / "case"
    d.mkdir()
    _materialise(case, d, fit_json)
    monkeypatch.chdir(d)
    monkeypatch.setenv("SCALING_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SCALING_LOG_DIR", str(tmp_path / "logs"))
    before = snapshot(d)
    rc = main([a.replace("{d}", str(d)) for a in case.argv])
    line = one_error_line(rc, capsys.readouterr())
    assert case.names in line, f"{case.names!r} not in {line!r}"
    assert snapshot(d) == before
    assert not (tmp_path / "logs").exists()


# ------------------------------------------------------------------------------------------ subprocesses

def _scaling(*argv: str, cwd: Path, env_extra: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "orchestrator", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, **kw)


def test_argparse_error_is_one_line_in_a_subprocess(tmp_path):
    r = _scaling("plan", "fit.json", "--budget", "-1", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.splitlines() == ["error: scaling plan: argument --budget: '-1' is not a positive number "
                                     "(see scaling plan --help)"]


def test_spec_error_is_one_line_in_a_subprocess(tmp_path):
    (tmp_path / "s.yaml").write_text(SPEC + "vocab_size: 1024\n")
    r = _scaling("sweep", "plan", "s.yaml", "--no-probe", cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "vocab_size" in r.stderr, r.stderr


def test_broken_pipe_is_quiet(tmp_path):
    """`scaling sweep plan ... | head -1`: the reader goes away; no traceback, no message."""
    (tmp_path / "s.yaml").write_text(_spec({"isoflop": "isoflop: {sizes_per_budget: 9, spread: 2, tokens_per_param: 40}"}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "orchestrator", "sweep", "plan", "s.yaml", "--no-probe", "--json"],
                         cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.read(10)
    p.stdout.close()                                       # the reader exits, like `head -c 10`
    err = p.stderr.read().decode()
    p.wait(timeout=120)
    assert err == "", err
    assert p.returncode in (0, 141)


def test_a_bug_is_one_line_and_a_log(tmp_path, capsys, monkeypatch):
    """A genuine bug: one line naming a log file that holds the traceback; exit 1."""
    import orchestrator.cli.fit as fit_cmd

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(fit_cmd, "run", broken)
    monkeypatch.setenv("SCALING_LOG_DIR", str(tmp_path / "logs"))
    (tmp_path / "t.csv").write_text(GOOD_CSV)
    rc = main(["fit", str(tmp_path / "t.csv")])
    err = capsys.readouterr().err
    assert rc == 1
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("internal error, details in "), err
    log = Path(lines[0].removeprefix("internal error, details in "))
    assert log.parent == tmp_path / "logs"
    text = log.read_text()
    assert "Traceback" in text and "ZeroDivisionError: a bug" in text
