"""`scaling train`: one real GPT pretraining run, counted and checkpointed.

    scaling train --n-layer 4 --d-model 256 --tokens 20M --out runs/r1 --json          default corpus
    scaling train --params 10M --tokens-per-param 20 --corpus '~/data/*.jsonl' --out runs/r2
    scaling train --params 1M --tokens 50M --schedule wsd --cooldowns 0.25,0.5 --out runs/r3
    scaling train --params 10M --tokens 200M --tokenizer gpt2/tokenizer.json --log tensorboard --out runs/r4
    scaling train --n-layer 12 --d-model 768 --context 1024 --vocab-size 50257 --tokens 2.5B \\
        --batch-tokens 512K --device cuda --compile --nproc 8 --out runs/gpt2
    scaling plan fit.json --budget 1e18 --write-config run.json && scaling train --config run.json --out runs/p
    python -m torch.distributed.run --nproc-per-node 8 -m orchestrator.cli train ... --out runs/gpt2   same, torchrun

The model is either a shape (--n-layer, --d-model, [--n-head]) or a size (--params, picked by the
shape rule of `scaling.shapes`); the data is --tokens, or --tokens-per-param times N. Or --config
RUN.json: a `scaling.config.RunConfig` JSON (what `scaling plan --write-config` writes, or a run
folder's config.json) instead of the model, data and training flags; the execution flags (--device,
--dtype, --compile, --nproc, --parallel, --threads, --run-id) and --cache-dir still apply to it. Unset --lr and
--warmup-tokens follow the size rules of `scaling.recipe`. Running again with the same
--out resumes from its checkpoint (--no-resume starts over). Writes config.json, trial.json,
curves.csv, points.csv and checkpoint/ into --out; --json prints the trial row. A diverged run
exits 0 and says why. --log tensorboard|wandb|mlflow (repeatable) also logs train/val loss, val bits
per byte, LR, tokens/s and MFU at every evaluation, and the config with N, D and C (`scaling.trackers`).
--tokenizer TOKENIZER.json uses a published tokenizer (e.g. GPT-2's) instead of training a BPE; every
run records it (trial.json `tokenizer`, `tokenizer_hash`) and reports bits per byte (`val_bpb`) beside
nats/token.
"""

from __future__ import annotations

import argparse
import sys

from orchestrator.cli.common import (
    add_command, add_log_arg, add_progress_arg, count_arg, finite_float, int_count_arg, positive_float,
    positive_int, print_json, seed_arg,
)


def register(subparsers) -> None:
    p = add_command(subparsers, "train", __doc__,
                    "train one GPT on a corpus: loss curve, N and FLOPs, checkpoints")
    model = p.add_argument_group("model (a shape, or --params)")
    model.add_argument("--n-layer", type=positive_int, help="transformer blocks")
    model.add_argument("--d-model", type=positive_int, help="residual width")
    model.add_argument("--n-head", type=positive_int, help="attention heads (default: head size near 64, see scaling.shapes)")
    model.add_argument("--d-ff", type=positive_int, help="MLP width (default 4 x d_model)")
    model.add_argument("--params", type=count_arg, metavar="N", help="target parameter count, e.g. 10M (shape rule)")
    model.add_argument("--params-convention", choices=("total", "nonembedding"), default="total",
                       help="what --params (and --tokens-per-param) counts (default: total)")
    model.add_argument("--context", type=positive_int, default=256, help="sequence length in tokens (default 256)")
    model.add_argument("--vocab-size", type=positive_int, default=None,
                       help="vocabulary (default: the --tokenizer's, else a 4096-token BPE trained on the corpus)")
    model.add_argument("--positions", choices=("learned", "rotary"), default="learned")
    model.add_argument("--untied", action="store_true", help="separate output head (default: tied to the embedding)")
    model.add_argument("--bias", action="store_true", help="biases in Linear and LayerNorm layers")

    data = p.add_argument_group("data")
    data.add_argument("--corpus", nargs="+", default=[], metavar="PATH",
                      help="text files, folders, globs, .jsonl or .parquet (default: the Python standard library)")
    data.add_argument("--tokenizer", metavar="TOKENIZER.json",
                      help="an HF tokenizer.json (e.g. GPT-2's) instead of training a BPE on the corpus")
    data.add_argument("--text-field", default="text", help="JSONL key / Parquet column / datasets column with the text")
    data.add_argument("--max-bytes", type=int_count_arg, help="use only the first documents up to this size")
    data.add_argument("--doc-max-bytes", type=int_count_arg,
                      help="cut documents longer than this at line boundaries (a single-file corpus needs it "
                           "for a validation split)")
    data.add_argument("--val-fraction", type=finite_float, default=0.02, help="share of documents held out (default 0.02)")
    data.add_argument("--cache-dir", help="where prepared corpora go (default $SCALING_CACHE or ~/.cache/scaling)")

    tr = p.add_argument_group("training")
    size = tr.add_mutually_exclusive_group()
    size.add_argument("--tokens", type=int_count_arg, metavar="D", help="training tokens, e.g. 20M")
    size.add_argument("--tokens-per-param", type=positive_float, metavar="R", help="D = R x N (Chinchilla: about 20)")
    tr.add_argument("--batch-tokens", type=int_count_arg, default=8192, help="tokens per optimiser step (default 8192)")
    tr.add_argument("--micro-batch-tokens", type=int_count_arg, help="tokens per forward/backward (gradient accumulation)")
    tr.add_argument("--lr", type=finite_float, help="peak learning rate (default: size rule)")
    tr.add_argument("--warmup-tokens", type=int_count_arg, help="LR warmup (default: size rule)")
    tr.add_argument("--schedule", choices=("cosine", "constant", "wsd"), default="cosine")
    tr.add_argument("--min-lr-ratio", type=finite_float, default=0.1, help="final LR / peak (default 0.1)")
    tr.add_argument("--decay-fraction", type=finite_float, default=0.2, help="WSD cool-down length / D (default 0.2)")
    tr.add_argument("--cooldowns", type=_fractions, default=(), metavar="F,F,...",
                    help="WSD cool-down branches at these fractions of D, e.g. 0.25,0.5")
    tr.add_argument("--weight-decay", type=finite_float, default=0.1)
    tr.add_argument("--beta2", type=finite_float, help="AdamW beta2 (default 0.95)")
    tr.add_argument("--grad-clip", type=finite_float, default=1.0)
    tr.add_argument("--eval-interval", type=positive_int, help="steps between evaluations (default: about 20 per run)")
    tr.add_argument("--eval-tokens", type=int_count_arg, default=65536, help="validation tokens per evaluation")
    tr.add_argument("--seed", type=seed_arg, default=0)

    run_ = p.add_argument_group("execution")
    run_.add_argument("--config", metavar="RUN.json",
                      help="a RunConfig JSON (`scaling plan --write-config`) instead of the model/data/training flags")
    run_.add_argument("--out", required=True, help="run folder (created; resumed when it holds a checkpoint)")
    run_.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    run_.add_argument("--dtype", choices=("auto", "float32", "bfloat16"), default="auto",
                      help="auto: bf16 autocast on CUDA, fp32 on CPU")
    run_.add_argument("--compile", action="store_true", help="torch.compile the model")
    run_.add_argument("--nproc", type=positive_int, default=1,
                      help="data-parallel processes on this machine (DDP), started by torchrun's launcher; "
                           "or run this command under torchrun / srun / Ray Train, which set RANK and WORLD_SIZE")
    run_.add_argument("--parallel", choices=("ddp", "fsdp"), default="ddp",
                      help="several processes: ddp replicates the model, fsdp shards it (fully_shard; default ddp)")
    run_.add_argument("--threads", type=positive_int, help="CPU threads per process (default: torch's)")
    run_.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                      help="continue from --out's checkpoint if there is one (default: yes)")
    run_.add_argument("--run-id", help="name in the runs table (default: the --out folder's name)")
    run_.add_argument("--json", action="store_true", help="print the trial row as JSON")
    add_progress_arg(run_, "--quiet")
    add_log_arg(run_)
    run_flags = {a.dest: a.default for g in (model, data, tr) for a in g._group_actions if a.dest != "cache_dir"}
    p.set_defaults(func=run, _run_flags=run_flags)


def _fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of fractions") from None


def build_config(args: argparse.Namespace):
    """The `RunConfig` the arguments describe (ConfigError, one line, on anything invalid)."""
    from scaling.config import DataConfig, ModelConfig, RunConfig, TrainConfig, parse_config
    from scaling.counting import param_counts
    from scaling.errors import ConfigError
    from scaling.shapes import heads_for_width, shape_for_params

    src = "scaling train"
    if args.vocab_size is None:
        if args.tokenizer:
            from scaling.bpe import load_tokenizer

            args.vocab_size = load_tokenizer(args.tokenizer)[0].get_vocab_size()
        else:
            args.vocab_size = 4096
    if args.vocab_size < 260:
        raise ConfigError(f"--vocab-size: {args.vocab_size} is too small: a byte-level BPE needs at least 260 tokens "
                          f"(256 bytes, <|endoftext|> and a few merges)")
    shape_given = args.n_layer is not None or args.d_model is not None
    if shape_given and args.params is not None:
        raise ConfigError(f"{src}: give a shape (--n-layer, --d-model) or --params, not both")
    model_extra = {"positions": args.positions, "tie_embeddings": not args.untied, "bias": args.bias}
    if args.params is not None:
        if args.n_head is not None or args.d_ff is not None:
            raise ConfigError(f"{src}: --n-head and --d-ff are chosen by the shape rule when --params is given")
        model = shape_for_params(args.params, vocab_size=args.vocab_size, context=args.context,
                                 convention=args.params_convention, **model_extra)
    elif args.n_layer is not None and args.d_model is not None:
        n_head = args.n_head if args.n_head is not None else (heads_for_width(args.d_model) if args.d_model > 0 else 1)
        model = parse_config(ModelConfig, dict(n_layer=args.n_layer, d_model=args.d_model, n_head=n_head,
                                                d_ff=args.d_ff, context=args.context, vocab_size=args.vocab_size,
                                                **model_extra), src)
    else:
        raise ConfigError(f"{src}: give --n-layer and --d-model, or --params")
    if args.tokens is not None:
        tokens = args.tokens
    else:
        key = "params" if args.params_convention == "total" else "params_nonembedding"
        tokens = int(round(args.tokens_per_param * param_counts(model)[key]))
    data = parse_config(DataConfig, dict(corpus=tuple(args.corpus), vocab_size=args.vocab_size,
                                         text_field=args.text_field, max_bytes=args.max_bytes,
                                         doc_max_bytes=args.doc_max_bytes,
                                         val_fraction=args.val_fraction, tokenizer=args.tokenizer,
                                         cache_dir=args.cache_dir), src)
    train_fields = dict(
        tokens=tokens, batch_tokens=args.batch_tokens, micro_batch_tokens=args.micro_batch_tokens, lr=args.lr,
        warmup_tokens=args.warmup_tokens, schedule=args.schedule, min_lr_ratio=args.min_lr_ratio,
        decay_fraction=args.decay_fraction, cooldowns=tuple(args.cooldowns), weight_decay=args.weight_decay,
        grad_clip=args.grad_clip, eval_interval=args.eval_interval, eval_tokens=args.eval_tokens, seed=args.seed,
        device=args.device, dtype=args.dtype, compile=args.compile, nproc=args.nproc, parallel=args.parallel,
        threads=args.threads,
    )
    if args.beta2 is not None:
        train_fields["beta2"] = args.beta2
    try:
        train_cfg = parse_config(TrainConfig, train_fields, src)
    except ConfigError as exc:  # name the flag the user wrote (--warmup-tokens), not the field
        raise ConfigError(_as_flags(str(exc), train_fields)) from None
    return parse_config(RunConfig, dict(model=model.model_dump(), data=data.model_dump(), train=train_cfg.model_dump(),
                                        run_id=args.run_id), src)


def config_from_file(args: argparse.Namespace):
    """The `RunConfig` of `--config`, with the execution flags that were given (not default) applied."""
    from contracts.jsonio import read_json_object
    from scaling.config import RunConfig, parse_config
    from scaling.errors import ConfigError

    given = sorted(dest for dest, default in args._run_flags.items() if getattr(args, dest) != default)
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise ConfigError(f"--config {args.config}: {flag} is a model/data/training flag; set it in the file instead")
    d = read_json_object(args.config, "run config", error=ConfigError)
    cfg = parse_config(RunConfig, d, args.config)
    train = {k: getattr(args, k) for k in ("device", "dtype", "compile", "nproc", "threads")
             if getattr(args, k) not in (None, False, "auto", 1)}
    if args.parallel != "ddp":
        train["parallel"] = args.parallel
    data = {"cache_dir": args.cache_dir} if args.cache_dir else {}
    top = {"run_id": args.run_id} if args.run_id else {}
    return parse_config(RunConfig, {**cfg.model_dump(), **top, "train": {**cfg.train.model_dump(), **train},
                                    "data": {**cfg.data.model_dump(), **data}}, args.config)


def _as_flags(message: str, fields: dict) -> str:
    """`message` with each TrainConfig field name it mentions written as its flag (lr -> --lr)."""
    import re

    names = "|".join(sorted(map(re.escape, fields), key=len, reverse=True))
    return re.sub(rf"(?<![\w-])({names})(?![\w-])", lambda m: "--" + m.group(1).replace("_", "-"), message)


def run(args: argparse.Namespace) -> int:
    from scaling.data import prepare_data
    from scaling.distributed import world_from_env
    from orchestrator.cli.common import check_out_path
    from scaling.errors import ConfigError
    from scaling.memory import check_fits
    from scaling.train import train

    check_out_path(args.out, "--out")
    if args.config:
        cfg = config_from_file(args)
    elif args.tokens is None and args.tokens_per_param is None:
        raise ConfigError("scaling train: give --tokens or --tokens-per-param (or --config RUN.json)")
    else:
        cfg = build_config(args)
    device = cfg.train.device if cfg.train.device != "auto" else ("cuda" if _cuda() else "cpu")
    check_fits(cfg.model, cfg.train.micro_batch_tokens or cfg.train.batch_tokens, device, what="scaling train",
               shards=cfg.train.nproc if cfg.train.parallel == "fsdp" else 1)
    from scaling.trackers import check_available, open_trackers

    world = world_from_env()  # under torchrun every rank runs this command; rank 0 speaks and logs
    speaks = world is None or world.rank == 0
    check_available(args.log)
    data = prepare_data(cfg.data, progress=not args.no_progress and speaks)
    trackers = open_trackers(args.log, args.out, cfg) if speaks else None
    try:
        result = train(cfg, args.out, data=data, resume=args.resume, progress=not args.no_progress and speaks,
                       reporter=trackers)
    finally:
        if trackers is not None:
            trackers.close()
    if not speaks:
        return 0
    trial = result.trial
    if result.stopped_by:
        print(f"stopped by {result.stopped_by} at step {trial.get('step')}: checkpoint saved in {result.out_dir}; "
              f"run the same command again to resume", file=sys.stderr)
    if args.json:
        print_json(trial)
    else:
        _print_summary(trial, result.points, result.out_dir)
    if trial["status"] == "diverged":
        print(f"diverged: {trial['diverge_reason']}", file=sys.stderr)
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _print_summary(trial: dict, points: list[dict], out_dir) -> None:
    def num(x: float | None, fmt: str = ".4g") -> str:
        return "n/a" if x is None else format(x, fmt)

    print(f"run {trial['run_id']}: {trial['status']}")
    print(f"  model    {trial['n_layer']} layers, d_model {trial['d_model']}, {trial['n_head']} heads, "
          f"context {trial['context']}, vocab {trial['vocab_size']}")
    print(f"  params   {trial['params']:,} total, {trial['params_nonembedding']:,} non-embedding, "
          f"{trial['params_embedding']:,} embedding")
    print(f"  data     {trial['tokens_seen'] or 0:,} tokens seen of {trial['tokens']:,} planned "
          f"({num(trial['epochs'], '.3g')} epochs), {trial['steps']} steps of {trial['batch_tokens']:,} tokens")
    print(f"  compute  {num(trial['flops_6nd'], '.3e')} FLOPs (6ND), {num(trial['flops_detailed'], '.3e')} FLOPs "
          f"(Chinchilla App. F)")
    print(f"  loss     {num(trial['final_loss'])} nats/token validation, {num(trial['final_train_loss'])} train"
          + (f" (unigram entropy {trial['unigram_entropy']:.4g})" if trial.get("unigram_entropy") else ""))
    for pt in points:
        if pt["kind"] == "cooldown":
            print(f"  cooldown {pt['tokens']:,} tokens: {num(pt['loss'])} nats/token")
    mfu = "" if trial["mfu"] is None else f", MFU {trial['mfu']:.1%}"
    print(f"  speed    {num(trial['tokens_per_s'], ',.0f')} tokens/s on {trial['device']}{mfu}, "
          f"{num(trial['wall_s'], '.1f')} s wall")
    print(f"  wrote    {out_dir}/trial.json, curves.csv, points.csv, checkpoint/")
