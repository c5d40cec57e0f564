"""`scaling plan FIT.json|RUNS`: compute-optimal model size, tokens, loss and shape from a fitted law.

    scaling plan fit.json --budget 1e21 --json             compute-optimal N, D, shape, loss, intervals
    scaling plan runs.csv --budget 1e22                    fit the runs with auto first (the default), then plan
    scaling plan fit.json --params 7B                      best D for a fixed model size
    scaling plan fit.json --tokens 2T                      best N for a fixed data size
    scaling plan fit.json --target-loss 2.1                cheapest (N, D) reaching a loss
    scaling plan fit.json --budget 1e22 --inference-tokens 2T   inference-aware (Sardana et al. 2024)
    scaling plan fit.json --budget 1e22 --flops-per-s 989e12 --mfu 0.4 --devices 8   + wall clock

    scaling plan fit.json --budget 1e20 --vocab 50304 --context 2048 --write-config run.json
    scaling train --config run.json --out runs/planned            train what the plan wrote

Given a runs table (CSV/Parquet file, sweep or run folder) instead of a fit JSON, plan fits it first
with `--approach` (default auto: the forecaster of `analysis.forecast`, its candidate laws weighed by
forecasting the table's held-out parts along the axis the question extrapolates: budgets for --budget,
sizes for --params, tokens per parameter for --tokens; its calibrated prediction interval becomes the
planned loss's interval). `scaling demo` forecasts its held-out run with exactly this. A fit JSON is
planned with the law it holds (an auto fit JSON, `scaling fit --approach auto --out`, likewise).

The numbers come from `analysis.plan`; this layer adds the model shape (`scaling.shapes`) and a
runnable `RunConfig` for it (`--write-config`, read by `scaling train --config`). The vocabulary,
context, corpus and optimiser settings of that config are those of the runs the fit came from (its
`source`: a sweep folder's manifest, or a run folder's config.json) when they can be found, else
`--vocab`/`--context` and the `scaling.config` defaults; `--vocab`/`--context` always win.
"""

from __future__ import annotations

import argparse

from orchestrator.cli.common import (
    add_column_args, add_command, count_arg, finite_float, nonneg_int, positive_float, positive_int, print_json,
    seed_arg, write_json,
)


def register(subparsers) -> None:
    p = add_command(subparsers, "plan", __doc__,
                    "plan N, D, loss and model shape for a budget from a fitted law")
    p.add_argument("fit", metavar="FIT_OR_RUNS",
                   help="fit JSON written by `scaling fit --out` (approach 3, kaplan, auto, or 1/2), or a runs table "
                        "(CSV/Parquet, sweep or run folder) to fit first with --approach")
    p.add_argument("--approach", default=None, choices=["auto", "3", "kaplan"],
                   help="runs table only: the law to fit first (default auto, analysis.forecast; 3; kaplan)")
    p.add_argument("--keep-all", action="store_true",
                   help="runs table, auto: keep every row (no domain rules; see `scaling fit --help`)")
    p.add_argument("--bootstrap", type=nonneg_int, default=None, metavar="B",
                   help="runs table only: bootstrap resamples of that fit (default 200)")
    p.add_argument("--seed", type=seed_arg, default=None, metavar="S", help="runs table only: seed of the bootstrap (default 0)")
    add_column_args(p)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--budget", type=count_arg, metavar="FLOPS", help="training compute, e.g. 1e21")
    what.add_argument("--params", type=count_arg, metavar="N", help="fixed model size, e.g. 7B")
    what.add_argument("--tokens", type=count_arg, metavar="D", help="fixed training tokens, e.g. 2T")
    what.add_argument("--target-loss", type=finite_float, metavar="NATS", help="loss to reach, nats/token")
    p.add_argument("--inference-tokens", type=count_arg, metavar="D_INF",
                   help="tokens to be served over the model's life: minimise training + inference FLOPs "
                        "at the loss of --budget or --target-loss")
    p.add_argument("--unique-tokens", type=count_arg, metavar="U",
                   help="unique tokens available (data-constrained fit): D > U repeats them, priced in by "
                        "Muennighoff et al. 2023; the plan reports the epochs")
    p.add_argument("--flops-per-s", type=count_arg, metavar="FLOPS", help="peak FLOP/s of one device, e.g. 989e12 (H100 bf16)")
    p.add_argument("--mfu", type=finite_float, help="model FLOPs utilisation, 0-1, e.g. 0.4")
    p.add_argument("--devices", type=positive_float, default=1.0, help="number of devices (default 1)")
    p.add_argument("--vocab-size", "--vocab", dest="vocab_size", type=positive_int, default=None,
                   help="vocabulary of the planned model (default: the fit's sweep or run, else ModelConfig's)")
    p.add_argument("--context", type=positive_int, default=None,
                   help="context length of the planned model (default: the fit's sweep or run, else ModelConfig's)")
    p.add_argument("--no-shape", action="store_true", help="skip the model shape")
    p.add_argument("--write-config", metavar="PATH", help="write a RunConfig JSON for the planned run")
    p.add_argument("--hparams", metavar="HP.json",
                   help="peak LR and batch from `scaling hparams --out HP.json` laws at the planned N, D (written "
                        "into --write-config with their intervals; default: the size rule's LR, the sweep's batch)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from analysis.errors import InputError
    from analysis.plan import Planner
    from contracts.counts import format_count

    for flag, value in (("--vocab", args.vocab_size), ("--context", args.context)):
        if value is not None and value <= 0:
            raise InputError(f"{flag}: {value} is not a positive integer")
    if args.write_config:
        from orchestrator.cli.common import check_out_path

        check_out_path(args.write_config, "--write-config", file=True)
    hp = None
    if args.hparams:
        from analysis.hparams import read_hparams

        hp = read_hparams(args.hparams)
    est = _fit_or_read(args)
    planner = Planner.from_fit(est, unique_tokens=args.unique_tokens)
    hw = dict(flops_per_s=args.flops_per_s, mfu=args.mfu, devices=args.devices)
    if args.inference_tokens is not None:
        if args.budget is None and args.target_loss is None:
            raise InputError("--inference-tokens needs --budget or --target-loss (the loss to hold fixed)")
        plan = planner.inference(args.inference_tokens, budget=args.budget, target_loss=args.target_loss, **hw)
    elif args.budget is not None:
        plan = planner.budget(args.budget, **hw)
    elif args.params is not None:
        plan = planner.params(args.params, **hw)
    elif args.tokens is not None:
        plan = planner.tokens(args.tokens, **hw)
    elif args.target_loss is not None:
        plan = planner.target_loss(args.target_loss, **hw)
    else:
        raise InputError("give one of --budget, --params, --tokens or --target-loss")

    out = plan.to_dict()
    out["fit"] = str(args.fit)
    if args.unique_tokens is not None:
        out["unique_tokens"] = float(args.unique_tokens)
        out["epochs"] = float(plan.D) / float(args.unique_tokens)
    base = source_run_config(est.source_, args.fit)
    shape = None if args.no_shape else model_shape(plan, vocab_size=args.vocab_size, context=args.context, base=base)
    if shape is not None:
        out.update(shape)
    if hp is not None:
        out["hparams"] = with_hparams(out, hp, plan, args.hparams)
    if args.write_config:
        if not shape or "run_config" not in shape:
            raise InputError("--write-config needs a model shape (drop --no-shape; scaling.shapes must be present)")
        write_json(shape["run_config"], args.write_config)
    if args.json:
        print_json(out)
        return 0
    print(plan.summary())
    if args.unique_tokens is not None:
        print(f"{'epochs':<22}{out['epochs']:.3g} over {format_count(args.unique_tokens)} unique tokens "
              "(repetition priced in: Muennighoff et al. 2023)")
    if shape and "shape" in shape:
        s = shape["shape"]
        print(f"{'model shape':<22}n_layer {s['n_layer']}, d_model {s['d_model']}, n_head {s['n_head']}, "
              f"d_ff {s['d_ff']}, context {s['context']}, vocab {s['vocab_size']}"
              + (f" -> {_shape_count_text(shape)}" if shape.get("shape_params") else ""))
    elif shape and "shape_error" in shape:
        print(f"{'model shape':<22}unavailable: {shape['shape_error']}")
    if hp is not None:
        h = out["hparams"]
        iv = h["lr_interval"]
        print(f"{'peak LR':<22}{h['lr']:.3g}" + (f" [{iv[0]:.3g}, {iv[1]:.3g}]" if iv else "") + f" (from {args.hparams})")
        if h["batch_tokens"] is not None:
            bi = h["batch_interval"]
            print(f"{'batch':<22}{format_count(h['batch_tokens'])} tokens/step"
                  + (f" [{format_count(bi[0])}, {format_count(bi[1])}]" if bi else "") + f" (from {args.hparams})")
    if args.write_config:
        print(f"{'run config':<22}{args.write_config}")
    return 0


def with_hparams(out: dict, hp, plan, path: str) -> dict:
    """The fitted LR (and batch) at the planned run (`analysis.hparams.plan_settings`), written into
    `out["run_config"]` when there is one, with where they came from and their intervals."""
    from analysis.hparams import plan_settings
    from scaling.config import TrainConfig, parse_config

    counts = out.get("shape_param_counts") or {}
    N = counts.get("params" if hp.n_convention == "total" else "params_nonembedding", plan.N)
    cfg = out.get("run_config")
    context = cfg["model"]["context"] if cfg else 1
    h = plan_settings(hp, float(N), float(plan.D), context=context, source=path)
    if cfg:
        train = dict(cfg["train"], lr=h["lr"], lr_source=h["lr_source"])
        intervals = {"lr": h["lr_interval"]} if h["lr_interval"] else {}
        if h["batch_tokens"] is not None:
            train["batch_tokens"] = h["batch_tokens"]
            if train.get("micro_batch_tokens") and h["batch_tokens"] % train["micro_batch_tokens"]:
                train["micro_batch_tokens"] = None
            if h["batch_interval"]:
                intervals["batch_tokens"] = h["batch_interval"]
        train["planned_intervals"] = intervals or None
        cfg["train"] = parse_config(TrainConfig, train, "plan --hparams").model_dump(mode="json")
    return h


def _fit_or_read(args: argparse.Namespace):
    """The fitted estimator of a fit JSON (`read_fit`), or the fit of a runs table with `--approach`."""
    from pathlib import Path

    from analysis.errors import InputError
    from analysis.fitjson import read_fit

    path = Path(args.fit)
    columns = {"n_col": args.n_col, "d_col": args.d_col, "c_col": args.c_col, "loss_col": args.loss_col}
    if path.suffix.lower() == ".json" or not path.exists():
        given = [flag for flag, v in (("--n-col", args.n_col), ("--d-col", args.d_col), ("--c-col", args.c_col),
                                      ("--loss-col", args.loss_col), ("--best-of", args.best_of),
                                      ("--approach", args.approach), ("--bootstrap", args.bootstrap),
                                      ("--seed", args.seed), ("--keep-all", args.keep_all or None),
                                      ("--allow-mixed", args.allow_mixed or None)) if v is not None]
        if given:
            raise InputError(f"{args.fit}: {', '.join(given)} apply to a runs table (fitted first), not to a fit JSON")
        return read_fit(args.fit)
    from analysis.backtest import fit_approach
    from analysis.io import load_points
    from orchestrator.cli.common import fit_warnings_to_stderr

    from analysis.forecast import DEFAULT_BOOTSTRAP

    approach = args.approach or "auto"
    if args.keep_all and approach != "auto":
        raise InputError("--keep-all applies to --approach auto (the forecaster's domain rules)")
    with fit_warnings_to_stderr():
        pts = load_points(args.fit, best_of=args.best_of, allow_mixed=args.allow_mixed, **columns)
        return fit_approach(pts, approach, bootstrap=DEFAULT_BOOTSTRAP if args.bootstrap is None else args.bootstrap,
                            random_state=args.seed or 0, axis=question_axis(args), keep_all=args.keep_all).estimator


def question_axis(args: argparse.Namespace) -> str:
    """The axis the plan's question extrapolates (`analysis.forecast.cuts`): budget for --budget and
    --target-loss, size for --params, tokens per parameter for --tokens."""
    if args.params is not None:
        return "size"
    if args.tokens is not None:
        return "tokens_per_param"
    return "budget"


def _shape_count_text(shape: dict) -> str:
    """The shape's size under the plan's N convention, and its total when the plan's N is non-embedding."""
    from contracts.counts import format_count

    if shape["shape_convention"] == "nonembedding":
        return (f"{format_count(shape['shape_params'])} non-embedding parameters (the plan's N), "
                f"{format_count(shape['shape_params_total'])} in total with embeddings")
    return f"{format_count(shape['shape_params'])} parameters (total)"


#: Train settings of the fit's runs that a planned run keeps; the rest (tokens, LR, warmup, evaluation and
#: checkpoint steps, cool-downs) follow from the planned size and D.
_KEPT_TRAIN = ("batch_tokens", "micro_batch_tokens", "min_lr_ratio", "schedule", "decay_fraction", "weight_decay",
               "beta1", "beta2", "eps", "grad_clip", "eval_tokens", "seed", "dtype", "diverge_factor")


def source_run_config(source: str | None, fit_path: str) -> dict | None:
    """The run config (a `RunConfig` dict) of the runs a fit came from, or None when it cannot be found.

    A fit of a sweep folder records `<sweep>/points.parquet` as its source, a fit of a run folder
    `<run>/points.csv`; the sweep's manifest (`sweeps.store.MANIFEST`) holds every trial's config (the
    largest trial's is taken), the run folder its `config.json`. A relative source is tried from here
    and from the fit JSON's folder."""
    from pathlib import Path

    from contracts.jsonio import read_json
    from sweeps.store import MANIFEST

    if not source:
        return None
    for base in (Path.cwd(), Path(fit_path).parent):
        path = base / source
        for folder in (path, path.parent):
            if not folder.is_dir():
                continue
            try:
                if (folder / MANIFEST).is_file():
                    trials = read_json(folder / MANIFEST).get("trials") or []
                    configs = [t["config"] for t in trials if isinstance(t, dict) and "config" in t]
                    return max(configs, key=lambda c: c["model"]["d_model"] * c["model"]["n_layer"]) if configs else None
                if (folder / "config.json").is_file():
                    return read_json(folder / "config.json")
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                return None
    return None


def model_shape(plan, *, vocab_size: int | None, context: int | None, base: dict | None = None) -> dict:
    """The GPT shape nearest the planned N (`scaling.shapes.shape_for_params`) and a RunConfig for it.

    `base`: the run config of the fit's runs (`source_run_config`): its vocabulary, context, model
    options, data and the train settings in `_KEPT_TRAIN` carry over; `vocab_size`/`context` win."""
    try:
        from scaling.shapes import shape_for_params
    except ImportError as exc:
        return {"shape_error": f"scaling.shapes is not available ({exc})"}
    from scaling.config import DataConfig, ModelConfig, RunConfig, TrainConfig, parse_config

    fields = ModelConfig.model_fields
    base_model = (base or {}).get("model") or {}
    vocab = vocab_size or base_model.get("vocab_size") or fields["vocab_size"].default
    ctx = context or base_model.get("context") or fields["context"].default
    options = {k: base_model[k] for k in ("tie_embeddings", "positions", "bias") if k in base_model}
    convention = plan.n_convention if plan.n_convention in ("total", "nonembedding") else "total"
    cfg = shape_for_params(plan.N, vocab_size=vocab, context=ctx, convention=convention, **options)
    out: dict = {"shape": cfg.model_dump(), "shape_convention": convention,
                 "shape_from": "the fit's runs" if base else "defaults"}
    out["shape"]["d_ff"] = cfg.ffw_size
    try:
        from scaling.counting import param_counts

        counts = param_counts(cfg)
        out["shape_params"] = counts["params" if convention == "total" else "params_nonembedding"]
        out["shape_params_total"] = counts["params"]
        out["shape_param_counts"] = counts
    except ImportError:
        pass
    data = {**((base or {}).get("data") or {}), "vocab_size": vocab}
    kept = {k: v for k, v in ((base or {}).get("train") or {}).items() if k in _KEPT_TRAIN}
    src = "plan --write-config"
    run_cfg = RunConfig(
        model=cfg,
        data=parse_config(DataConfig, data, src),
        train=parse_config(TrainConfig, {**kept, "tokens": max(1, int(round(plan.D)))}, src),
    )
    out["run_config"] = run_cfg.model_dump(mode="json")
    return out
