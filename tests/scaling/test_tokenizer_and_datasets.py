"""A given tokenizer.json (`--tokenizer`, `data.tokenizer`), bits per byte, and corpora saved by HF `datasets`.

No network: the tokenizer is built here with `tokenizers` (a byte-level BPE trained on other text, as
GPT-2's is), and the datasets are written here with `Dataset.save_to_disk`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from orchestrator.cli import main
from scaling.config import DataConfig
from scaling.corpus import default_corpus_files, iter_documents, resolve_corpus
from scaling.data import prepare_data
from scaling.errors import DataError

datasets = pytest.importorskip("datasets", reason="the [datasets] extra is not installed")


def stdlib_texts(n: int, start: int = 0) -> list[str]:
    files = [f for f in default_corpus_files() if f.suffix == ".py"][start:start + n]
    return [t for t in (f.read_text(errors="replace") for f in files) if t.strip()]


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory):
    """A 400-token byte-level BPE with <|endoftext|>, trained on other stdlib files than the corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(stdlib_texts(40, start=400), trainer)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(path))
    return path


@pytest.fixture(scope="module")
def saved_dataset(tmp_path_factory):
    """A DatasetDict (train, test) of stdlib sources saved with save_to_disk, plus an int column."""
    texts = stdlib_texts(120)
    folder = tmp_path_factory.mktemp("ds") / "corpus"
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"content": texts[:100], "n": list(range(100))}),
        "test": datasets.Dataset.from_dict({"content": texts[100:], "n": list(range(len(texts) - 100))}),
    })
    dd.save_to_disk(str(folder))
    return folder, texts


def test_saved_dataset_is_one_corpus_entry_read_in_split_order(saved_dataset, tmp_path):
    folder, texts = saved_dataset
    files = resolve_corpus([str(folder)])
    assert files == [folder]
    docs = list(iter_documents(files, text_field="content"))
    assert [d.text for d in docs] == [t for t in texts if t]
    assert docs[0].source.endswith("[train]:row 0") and docs[-1].source.startswith(f"{folder}[test]")
    with pytest.raises(DataError, match="no column 'text'"):
        list(iter_documents(files))
    with pytest.raises(DataError, match="'n' is .*not a string column"):
        list(iter_documents(files, text_field="n"))
    single = tmp_path / "single"
    datasets.Dataset.from_dict({"text": ["a b c", "d e"]}).save_to_disk(str(single))
    assert [d.text for d in iter_documents(resolve_corpus([str(single)]))] == ["a b c", "d e"]


def test_given_tokenizer_is_used_as_is_and_recorded(saved_dataset, tokenizer_json, tmp_path):
    from tokenizers import Tokenizer

    folder, texts = saved_dataset
    cfg = DataConfig(corpus=(str(folder),), text_field="content", vocab_size=400, tokenizer=str(tokenizer_json),
                     cache_dir=str(tmp_path / "cache"), val_fraction=0.1)
    data = prepare_data(cfg, progress=False)
    given = Tokenizer.from_file(str(tokenizer_json))
    eot = given.token_to_id("<|endoftext|>")
    assert data.tokenizer_hash and data.tokenizer_source == str(tokenizer_json)
    assert data.tokenizer().to_str() == given.to_str()
    tokens = np.concatenate([np.asarray(data.train_tokens()), np.asarray(data.val_tokens())])
    assert data.n_train_tokens + data.n_val_tokens == sum(len(given.encode(t).ids) + 1 for t in texts)
    first = given.encode(texts[0]).ids + [eot]
    assert data.train_tokens()[:len(first)].tolist() == first or data.val_tokens()[:len(first)].tolist() == first
    assert tokens.max() < given.get_vocab_size()
    assert data.val_bytes_per_token == pytest.approx(data.val_bytes / data.n_val_tokens)
    own = prepare_data(cfg.model_copy(update={"tokenizer": None}), progress=False)
    assert own.fingerprint != data.fingerprint and own.tokenizer_hash is None
    with pytest.raises(DataError, match="smaller than the 400 tokens"):
        prepare_data(cfg.model_copy(update={"vocab_size": 300}), progress=False)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(DataError, match="not a tokenizers tokenizer.json"):
        prepare_data(cfg.model_copy(update={"tokenizer": str(bad)}), progress=False)


def test_train_with_tokenizer_on_a_saved_dataset_reports_bits_per_byte(saved_dataset, tokenizer_json, tmp_path,
                                                                      capsys):
    folder, _ = saved_dataset
    out = tmp_path / "run"
    code = main(["train", "--corpus", str(folder), "--text-field", "content", "--tokenizer", str(tokenizer_json),
                 "--val-fraction", "0.1", "--cache-dir", str(tmp_path / "cache"), "--n-layer", "1", "--d-model", "32",
                 "--context", "64", "--tokens", "4k", "--batch-tokens", "1k", "--eval-interval", "2",
                 "--eval-tokens", "2k", "--threads", "1", "--out", str(out), "--json", "--quiet"])
    assert code == 0
    trial = json.loads(capsys.readouterr().out)
    assert trial["vocab_size"] == 400  # the tokenizer's, when --vocab-size is not given
    assert trial["tokenizer"] == str(tokenizer_json) and len(trial["tokenizer_hash"]) == 128
    bpt = trial["val_bytes_per_token"]
    assert 1.0 < bpt < 6.0
    assert trial["val_bpb"] == pytest.approx(trial["final_loss"] / math.log(2) / bpt)
    header, *rows = (out / "curves.csv").read_text().splitlines()
    col = header.split(",").index("val_bpb")
    loss_col = header.split(",").index("val_loss")
    for row in rows:
        cells = row.split(",")
        assert float(cells[col]) == pytest.approx(float(cells[loss_col]) / math.log(2) / bpt)
    assert json.loads((out / "config.json").read_text())["data"]["tokenizer"] == str(tokenizer_json)
