"""Malformed sweep specs: each gives one `error: <file>: <field>: <value> ...` line, exit code 2, and
nothing is started (no sweep folder, no Ray)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from orchestrator.cli import main
from sweeps.spec import SpecError, load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "sweeps" / "examples"

GRID = "design: grid\nvocab_size: 512\ncontext: 64\nbatch: {tokens: 512}\nmin_steps: 10\n"
ISO = "design: isoflop\nvocab_size: 512\ncontext: 64\nbatch: {tokens: 512}\nmin_steps: 10\n"

# (name, spec text, extra CLI args, expected fragment of the one-line error)
CASES = [
    ("bad_yaml", ISO + "budgets: [3e11, 1e12\n", [], "bad.yaml: line 7: not valid YAML"),
    ("not_a_mapping", "- design\n- isoflop\n", [], "bad.yaml: the spec must be a mapping of fields, got a list"),
    ("empty_file", "\n", [], "bad.yaml: the spec is empty"),
    ("unknown_field", ISO + "budget: [3e11]\n", [], "bad.yaml: budget: unknown field (did you mean 'budgets'?)"),
    ("unknown_nested_field", ISO + "budgets: [1e12]\nisoflop: {spreed: 3}\n", [],
     "bad.yaml: isoflop.spreed: unknown field (did you mean 'spread'?)"),
    ("negative_budget", ISO + "budgets: [3e11, 1e12, -1e18]\n", [], "bad.yaml: budgets[2]: -1e18 is not a positive FLOP count"),
    ("budget_not_a_number", ISO + "budgets: [lots]\n", [], "bad.yaml: budgets[0]: lots is not a positive FLOP count"),
    ("empty_size_list", GRID + "sizes: []\ntokens: [1M]\n", [], "bad.yaml: sizes: [] is empty"),
    ("negative_size", GRID + "sizes: [20k, -5k]\ntokens: [1M]\n", [], "bad.yaml: sizes[1]: -5k is not a positive parameter count"),
    ("shape_heads_do_not_divide", GRID + "sizes: [{n_layer: 2, d_model: 100, n_head: 3}]\ntokens: [1M]\n", [],
     "bad.yaml: sizes[0]: d_model 100 is not divisible by n_head 3"),
    ("shape_unknown_key", GRID + "sizes: [{n_layer: 2, d_model: 64, n_head: 2, heads: 3}]\ntokens: [1M]\n", [],
     "bad.yaml: sizes[0].heads: unknown field"),
    ("unknown_design", "design: random\n", [], "bad.yaml: design: random is not one of 'grid', 'isoflop', 'ladder' or 'isoflop-branches'"),
    ("isoflop_without_budgets", ISO, [], "bad.yaml: budgets: [] is empty; the isoflop design needs at least one FLOP budget"),
    ("grid_without_data", GRID + "sizes: [20k]\n", [], "bad.yaml: tokens: [] grid needs exactly one of tokens or tokens_per_param"),
    ("grid_with_budgets", GRID + "sizes: [20k]\ntokens: [1M]\nbudgets: [1e12]\n", [], "bad.yaml: budgets: [1e12] are not used by the grid design"),
    ("unknown_schedule", ISO + "budgets: [1e12]\nschedule: {kind: linear}\n", [], "bad.yaml: schedule.kind: linear is not one of"),
    ("cooldowns_need_wsd", ISO + "budgets: [1e12]\nschedule: {cooldowns: [0.5]}\n", [],
     "bad.yaml: schedule.kind: cosine has no cool-down branches"),
    ("cooldown_out_of_range", ISO + "budgets: [1e12]\nschedule: {kind: wsd, cooldowns: [0.5, 1.5]}\n", [],
     "bad.yaml: schedule.cooldowns[1]: 1.5 is not a fraction of D in (0, 1)"),
    ("fixed_lr_without_value", ISO + "budgets: [1e12]\nlr: {rule: fixed}\n", [], "bad.yaml: lr.value: missing; rule 'fixed' needs"),
    ("negative_lr", ISO + "budgets: [1e12]\nlr: {rule: fixed, value: -0.001}\n", [], "bad.yaml: lr.value: -0.001 is out of range (must be > 0)"),
    ("more_gpus_than_a_node", ISO + "budgets: [1e12]\nresources: {gpus: 16}\nnode: {gpus: 8}\n", [],
     "bad.yaml: resources.gpus: 16 GPUs per trial but a node has 8 (node.gpus)"),
    ("gpus_not_whole", ISO + "budgets: [1e12]\nresources: {gpus: 1.5}\n", [],
     "bad.yaml: resources.gpus: 1.5 is neither a fraction below 1 nor a whole number of GPUs"),
    ("zero_cpus", ISO + "budgets: [1e12]\nresources: {cpus: 0}\n", [], "bad.yaml: resources.cpus: 0 is out of range (must be > 0)"),
    ("zero_concurrency", ISO + "budgets: [1e12]\nmax_concurrent_trials: 0\n", [], "bad.yaml: max_concurrent_trials: 0 is out of range"),
    ("negative_retries", ISO + "budgets: [1e12]\nretries: -1\n", [], "bad.yaml: retries: -1 is out of range (must be >= 0)"),
    ("duplicate_seeds", ISO + "budgets: [1e12]\nseeds: [0, 0]\n", [], "bad.yaml: seeds: [0, 0] has duplicates"),
    ("vocab_too_small", ISO.replace("512", "100") + "budgets: [1e12]\n", [], "bad.yaml: vocab_size: 100 is out of range (must be >= 260)"),
    ("train_field_managed_by_spec", ISO + "budgets: [1e12]\ntrain: {tokens: 5}\n", [], "bad.yaml: train.tokens: is set by the spec's design"),
    ("train_bad_value", ISO + "budgets: [1e12]\ntrain: {weight_decay: -1}\n", [], "bad.yaml: train.weight_decay: -1 is out of range"),
    ("train_unknown_field", ISO + "budgets: [1e12]\ntrain: {wieght_decay: 0.1}\n", [],
     "bad.yaml: train.wieght_decay: unknown field (did you mean 'weight_decay'?)"),
    ("data_unknown_field", ISO + "budgets: [1e12]\ndata: {max_byte: 10}\n", [], "bad.yaml: data.max_byte: unknown field (did you mean 'max_bytes'?)"),
    ("too_few_steps", GRID.replace("min_steps: 10\n", "") + "sizes: [20k]\ntokens: [100k]\nmin_steps: 500\n", [], "bad.yaml: tokens[0]: the 21.2k-param model (L2 d20) gets 99.8k tokens = 195 steps of 512 tokens, below min_steps 500"),
    ("size_below_every_shape", GRID + "sizes: [10]\ntokens: [1M]\n", [], "bad.yaml: sizes[0]: 10 (total) is below the smallest model"),
    ("two_sizes_one_shape", GRID + "sizes: [28k, 28.1k]\ntokens: [1M]\n", [], "bad.yaml: sizes[1]: 28.1k gives the same shape as sizes[0]"),
    ("optimum_not_bracketed", ISO + "budgets: [1e12]\nisoflop: {tokens_per_param: 5e4}\n", [],
     "do not bracket the expected optimum"),
    ("more_cpus_than_this_machine", ISO + "budgets: [1e12]\nresources: {cpus: 4096}\n", [],
     "bad.yaml: resources.cpus: 4096 CPUs per trial but this machine has"),
    ("override_without_value", ISO + "budgets: [1e12]\n", ["--set", "budgets"], "bad.yaml: --set 'budgets': expected key=value"),
    ("override_negative_budget", ISO + "budgets: [1e12]\n", ["--set", "budgets=[1e11,-3e11]"],
     "bad.yaml: budgets[1]: -3e11 is not a positive FLOP count"),
    ("override_unknown_field", ISO + "budgets: [1e12]\n", ["--set", "isoflop.sprad=3"],
     "bad.yaml: isoflop.sprad: unknown field (did you mean 'spread'?)"),
]


def _ray_running() -> bool:
    return "ray" in sys.modules and sys.modules["ray"].is_initialized()


@pytest.mark.parametrize("name,text,extra,expected", CASES, ids=[c[0] for c in CASES])
def test_malformed_spec_is_one_line_exit_2_nothing_launched(tmp_path, capsys, name, text, extra, expected):
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    out = tmp_path / "out"
    rc = main(["sweep", "launch", str(spec), "--out", str(out), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: bad.yaml: "), lines[0]
    assert expected in lines[0], lines[0]
    assert not out.exists(), "a sweep folder was created for a spec that cannot run"
    assert not _ray_running()


def test_at_least_twenty_malformed_cases():
    assert len(CASES) >= 20


def test_plan_rejects_the_same_way(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(ISO + "budgets: [3e11, 1e12, -1e18]\n")
    assert main(["sweep", "plan", str(spec), "--no-probe"]) == 2
    assert capsys.readouterr().err.strip() == "error: spec.yaml: budgets[2]: -1e18 is not a positive FLOP count"


def test_missing_spec_file(tmp_path, capsys):
    assert main(["sweep", "plan", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: no such spec file" in capsys.readouterr().err


def test_counts_accept_suffixes_and_yaml_strings(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(GRID + "sizes: [20k, '1.5e5', 300000]\ntokens: [1M, 2.5e6]\n")  # 2.5e6 is a float, 1M a string
    s = load_spec(spec)
    assert s.sizes == [20_000.0, 150_000.0, 300_000.0]
    assert s.tokens == [1_000_000, 2_500_000]
    assert s.name == "s"  # default name: the file's stem


def test_overrides_set_nested_and_list_items(tmp_path):
    spec = load_spec(EXAMPLES / "isoflop-cpu.yaml", ["budgets=[1e11,3e11]", "isoflop.spread=2.5", "seeds[0]=7",
                                                     "resources.cpus=2"])
    assert spec.budgets == [1e11, 3e11]
    assert spec.isoflop.spread == 2.5
    assert spec.seeds == [7]
    assert spec.resources.cpus == 2 and spec.resources.threads == 2
    with pytest.raises(SpecError, match=r"--set seeds\[3\]: seeds has no item 3"):
        load_spec(EXAMPLES / "isoflop-cpu.yaml", ["seeds[3]=1"])


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_valid(path):
    spec = load_spec(path)
    assert spec.name == path.stem
