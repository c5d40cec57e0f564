"""`scaling train`: a real run from the command line, its JSON, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest

from orchestrator.cli import main


def data_args(stdlib_data_config) -> list[str]:
    """Arguments that name the `stdlib_data` corpus exactly (so preparing it is a cache hit)."""
    c = stdlib_data_config
    return ["--max-bytes", str(c.max_bytes), "--vocab-size", str(c.vocab_size), "--val-fraction",
            str(c.val_fraction), "--cache-dir", c.cache_dir]


def test_train_by_shape_prints_the_trial_row(stdlib_data, stdlib_data_config, tmp_path, capsys):
    out = tmp_path / "r1"
    code = main(["train", "--n-layer", "1", "--d-model", "32", "--context", "64", "--tokens", "16k",
                 "--batch-tokens", "1k", "--eval-tokens", "4k", "--threads", "1", "--out", str(out), "--json",
                 "--quiet", *data_args(stdlib_data_config)])
    assert code == 0
    trial = json.loads(capsys.readouterr().out)
    assert trial["status"] == "completed" and trial["n_layer"] == 1 and trial["d_model"] == 32
    assert trial["n_head"] == 4  # head size d_model / 4 for small widths (scaling.shapes.heads_for_width)
    for key in ("params", "params_nonembedding", "flops_6nd", "flops_detailed", "tokens_seen", "final_loss",
                "tokens_per_s", "mfu", "wall_s"):
        assert key in trial
    assert trial["tokens_seen"] == 16 * 1024 and trial["final_loss"] > 0
    assert (out / "trial.json").exists() and (out / "points.csv").exists()


def test_train_by_size_and_tokens_per_param(stdlib_data, stdlib_data_config, tmp_path, capsys):
    code = main(["train", "--params", "40k", "--tokens-per-param", "0.5", "--context", "64", "--batch-tokens", "1k",
                 "--eval-tokens", "4k", "--threads", "1", "--schedule", "wsd", "--cooldowns", "0.5",
                 "--out", str(tmp_path / "r2"), "--quiet", *data_args(stdlib_data_config)])
    assert code == 0
    text = capsys.readouterr().out
    assert "completed" in text and "cooldown" in text and "non-embedding" in text
    trial = json.loads((tmp_path / "r2" / "trial.json").read_text())
    assert trial["params"] == pytest.approx(40e3, rel=0.2)
    assert trial["tokens"] == round(0.5 * trial["params"])


def test_a_diverged_run_exits_0_with_the_reason(stdlib_data, stdlib_data_config, tmp_path, capsys):
    code = main(["train", "--n-layer", "1", "--d-model", "32", "--context", "64", "--tokens", "64k",
                 "--batch-tokens", "1k", "--lr", "1000", "--grad-clip", "1e9", "--eval-tokens", "4k",
                 "--threads", "1", "--out", str(tmp_path / "d"), "--quiet", *data_args(stdlib_data_config)])
    assert code == 0
    captured = capsys.readouterr()
    assert "diverged" in captured.out
    assert captured.err.startswith("diverged: ")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--n-layer", "2", "--d-model", "100", "--n-head", "3", "--tokens", "1k"], "d_model 100 is not divisible by n_head 3"),
        (["--n-layer", "2", "--d-model", "64", "--tokens", "1k", "--vocab-size", "100"], "--vocab-size: 100 is too small"),
        (["--n-layer", "2", "--d-model", "64", "--params", "1M", "--tokens", "1k"], "not both"),
        (["--d-model", "64", "--tokens", "1k"], "--n-layer and --d-model"),
        (["--n-layer", "2", "--d-model", "64", "--tokens", "1k", "--cooldowns", "0.5"], "--cooldowns need --schedule 'wsd'"),
        (["--n-layer", "2", "--d-model", "64", "--tokens", "1k", "--corpus", "/nonexistent/*.jsonl"], "/nonexistent/*.jsonl"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(argv, message, tmp_path, capsys):
    code = main(["train", *argv, "--out", str(tmp_path / "x"), "--quiet", "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err


def test_empty_corpus_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("")
    code = main(["train", "--n-layer", "1", "--d-model", "32", "--tokens", "1k", "--corpus", str(tmp_path / "empty.txt"),
                 "--out", str(tmp_path / "x"), "--quiet", "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err


def test_a_single_file_corpus_needs_doc_max_bytes_and_trains_with_it(tmp_path, capsys):
    """One long text file is one document: no validation split until --doc-max-bytes cuts it."""
    book = tmp_path / "book.txt"
    book.write_text("".join(f"line {i}: the quick brown fox jumps over the lazy dog {i % 97}\n" for i in range(3000)))
    argv = ["train", "--n-layer", "1", "--d-model", "16", "--context", "32", "--tokens", "2k", "--batch-tokens",
            "256", "--eval-tokens", "512", "--vocab-size", "300", "--threads", "1", "--corpus", str(book),
            "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "single document" in err and "book.txt" in err, err
    assert main([*argv, "--doc-max-bytes", "4096", "--out", str(tmp_path / "b"), "--json"]) == 0
    trial = json.loads(capsys.readouterr().out)
    assert trial["status"] == "completed" and trial["tokens_seen"] == 2048
