"""Peak memory of preparing and streaming a corpus does not grow with the corpus (tokens are memmapped).

Measures, each in a fresh child process (its own ``ru_maxrss``), on

- the default corpus (the Python standard library, ~31 MB of text), and
- a corpus 4x its size: the same files written 4 times to a temp folder, copies 1..3 with their ASCII
  letters rotated (a Caesar shift), so every copy is distinct text with distinct words for the BPE,

two phases:

- ``prepare``: `prepare_data` from an empty cache (BPE training + encoding into the memmaps);
- ``stream``: `prepare_data` as a cache hit, then `--batches` training batches from a `TokenStream`
  and a fixed validation set, the way `scaling.train` reads them.

It prints both sizes and the ratio 4x / 1x per phase, for the peak RSS (``ru_maxrss``) and for its
anonymous part (``RssAnon`` of /proc/self/status, polled); the target is about 1.0 (RSS must not grow
with corpus size). Every child imports torch first, as a training process does: that baseline
(~220 MB) is measured on its own too.

    nice -n 10 python benchmarks/bench_memory.py               # ~3-10 min on 2 cores
    python benchmarks/bench_memory.py --vocab 512 --batches 50  # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import string
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

CHILD_CODE = r"""
import json, resource, sys, threading, time
import torch  # the baseline a training process always has

peak = {"RssAnon": 0, "RssFile": 0}
def sample():  # peaks of anonymous and file-backed resident memory, polled every 20 ms (Linux)
    while True:
        try:
            for line in open("/proc/self/status"):
                key, _, value = line.partition(":")
                if key in peak:
                    peak[key] = max(peak[key], int(value.split()[0]))
        except OSError:
            return
        time.sleep(0.02)
threading.Thread(target=sample, daemon=True).start()
args = json.loads(sys.argv[1])
out = {"phase": args["phase"]}
t0 = time.perf_counter()
if args["phase"] != "baseline":
    from scaling.config import DataConfig
    from scaling.data import TokenStream, prepare_data, val_batches
    cfg = DataConfig(corpus=tuple(args["corpus"]), vocab_size=args["vocab"], cache_dir=args["cache"])
    data = prepare_data(cfg, progress=False)
    out.update(n_train_tokens=data.n_train_tokens, n_val_tokens=data.n_val_tokens, n_bytes=data.n_bytes,
               tokenizer_train_bytes=data.tokenizer_train_bytes)
    if args["phase"] == "stream":
        stream = TokenStream(data.train_tokens(), context=args["context"], batch_size=args["batch_size"], seed=0)
        total = 0
        for _ in range(args["batches"]):
            x, y = stream.next_batch()
            total += int(x.sum())
        val = val_batches(data, context=args["context"], n_tokens=args["val_tokens"], batch_size=args["batch_size"])
        out.update(epochs=stream.epochs, val_batches=len(val))
out["seconds"] = round(time.perf_counter() - t0, 2)
time.sleep(0.05)
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out["peak_anon_mb"] = peak["RssAnon"] / 1024
out["peak_file_mb"] = peak["RssFile"] / 1024
print(json.dumps(out))
"""


def _rotate(k: int) -> dict[int, int]:
    """A translation table shifting ASCII letters by k places (keeps case, digits and symbols)."""
    lo, up = string.ascii_lowercase, string.ascii_uppercase
    return str.maketrans(lo + up, lo[k:] + lo[:k] + up[k:] + up[:k])


def write_scaled_corpus(folder: Path, copies: int) -> int:
    """The default corpus `copies` times under `folder/copyK/`, copy K>0 letter-rotated by 7K. Returns bytes."""
    from scaling.corpus import default_corpus_files

    root = Path(sysconfig.get_paths()["stdlib"])
    total = 0
    for k in range(copies):
        table = _rotate((7 * k) % 26)
        for src in default_corpus_files():
            dst = folder / f"copy{k}" / src.relative_to(root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            text = src.read_text(encoding="utf-8", errors="replace")
            total += dst.write_text(text.translate(table) if k else text, encoding="utf-8")
    return total


def run_child(args: dict) -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD_CODE, json.dumps(args)], capture_output=True, text=True, env=env
    )
    if proc.returncode:
        sys.exit(f"child {args['phase']} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--scale", type=int, default=4, help="the big corpus is this many copies of the default")
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--val-tokens", type=int, default=65536)
    p.add_argument("--workdir", default=None, help="temp folder for the big corpus and the caches")
    a = p.parse_args()

    with tempfile.TemporaryDirectory(dir=a.workdir, prefix="bench-memory-") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        big_bytes = write_scaled_corpus(tmp / "big", a.scale)
        print(f"wrote the {a.scale}x corpus: {big_bytes / 1e6:.1f} MB in {time.perf_counter() - t:.1f} s", flush=True)
        common = dict(vocab=a.vocab, batches=a.batches, context=a.context, batch_size=a.batch_size,
                      val_tokens=a.val_tokens)
        baseline = run_child({"phase": "baseline"})
        print(f"baseline (python + torch): peak RSS {baseline['peak_rss_mb']:.0f} MB "
              f"(anon {baseline['peak_anon_mb']:.0f}, file {baseline['peak_file_mb']:.0f})", flush=True)
        results = {}
        for name, corpus in (("1x", []), (f"{a.scale}x", [str(tmp / "big")])):
            cache = str(tmp / f"cache-{name}")
            for phase in ("prepare", "stream"):
                r = run_child({"phase": phase, "corpus": corpus, "cache": cache, **common})
                results[(name, phase)] = r
                print(f"{name:>3} {phase:<8} peak RSS {r['peak_rss_mb']:5.0f} MB (anon {r['peak_anon_mb']:4.0f}, "
                      f"file {r['peak_file_mb']:4.0f})  {r['seconds']:6.1f} s  "
                      f"{r['n_bytes'] / 1e6:6.1f} MB text  {r['n_train_tokens'] / 1e6:6.2f}M train tokens"
                      + (f"  epochs {r['epochs']:.3f}" if phase == "stream" else
                         f"  BPE on {r['tokenizer_train_bytes'] / 1e6:.1f} MB"), flush=True)

    big = f"{a.scale}x"
    print(f"\nvocab {a.vocab}; stream = {a.batches} batches of {a.batch_size} x {a.context} tokens "
          f"+ {a.val_tokens} validation tokens")
    print(f"{'phase':<8} {'peak RSS':<14} {'1x MB':>8} {big + ' MB':>8} {'ratio':>6}   (target ~1.0)")
    for phase in ("prepare", "stream"):
        for key, label in (("peak_rss_mb", "total"), ("peak_anon_mb", "anonymous")):
            small, large = results[("1x", phase)][key], results[(big, phase)][key]
            print(f"{phase:<8} {label:<14} {small:8.0f} {large:8.0f} {large / small:6.2f}")
    print(f"corpus size ratio: {results[(big, 'prepare')]['n_bytes'] / results[('1x', 'prepare')]['n_bytes']:.2f}")


if __name__ == "__main__":
    main()
