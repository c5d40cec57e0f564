"""The printout of `scaling hparams`: each law with its intervals, its cells, and the predictions."""

from __future__ import annotations

from contracts.counts import format_count


def summary(result) -> str:
    lines = [f"hparams: {result.source}"]
    for block in (result.lr, result.batch):
        if block is None:
            continue
        lines += _law_lines(block)
    if result.batch is None:
        lines.append("batch: not varied in this table (or too few bracketed cells): no batch law")
    if result.predictions:
        level = result.lr.law.interval_level
        lines.append(f"predicted optimum ({100 * level:.0f}% interval of the law):")
        for p in result.predictions:
            text = f"  N {format_count(p['N'])}, D {format_count(p['D'])}: lr {_v(p['lr'], p['lr_interval'])}"
            if p.get("batch_tokens") is not None:
                text += f", batch {_v(p['batch_tokens'], p['batch_interval'], count=True)} tokens/step"
            lines.append(text)
    return "\n".join(lines)


def _v(x: float, interval, count: bool = False) -> str:
    f = (lambda v: format_count(v)) if count else (lambda v: f"{v:.3g}")
    return f(x) + (f" [{f(interval[0])}, {f(interval[1])}]" if interval else "")


def _law_lines(block) -> list[str]:
    law, name = block.law, "peak LR" if block.setting == "lr" else "batch (tokens/step)"
    sel = law.selection_ or {}
    kept = [c for c in block.cells if c.kept]
    lines = [f"{name} (column {block.column!r}): {len(kept)} of {len(block.cells)} (N, D) cells kept",
             f"  law      {law_value(law, block.setting)}",
             f"  form     {law.form_}: {sel.get('reason', 'given')}"]
    mse = sel.get("mse") or {}
    if mse:
        rms = ", ".join(f"{f} {v ** 0.5:.3f}" if v is not None else f"{f} -" for f, v in mse.items())
        lines.append(f"  cuts     {sel.get('n_cuts', 0)} along {sel.get('axis')}; held-out RMS error in ln {block.setting}*: {rms}")
    for p, v in law.params_.items():
        iv = law.intervals_.get(p)
        lines.append(f"  {p:<8} {v:+.4f}" + (f"  [{iv[0]:+.4f}, {iv[1]:+.4f}]" if iv else ""))
    lines.append(f"  residual RMS of ln {block.setting}* over the cells: {law.residual_rms_:.3f} "
                 f"({law.n_bootstrap_text()})")
    lines.append(f"  {'N':>8} {'D':>8} {'C (FLOPs)':>10} {'tried':>5} {'div':>4} {'best':>9} {'optimum':>9}  method")
    for c in block.cells:
        best = "-" if c.best is None else f"{c.best:.3g}"
        opt = f"{c.optimum:.3g}" if c.optimum is not None else "-"
        how = c.method if c.kept else f"kept out: {c.reason}"
        lines.append(f"  {format_count(c.N):>8} {format_count(c.D):>8} {c.C:>10.3g} {c.n_settings:>5} "
                     f"{c.n_diverged:>4} {best:>9} {opt:>9}  {how}")
    return lines


def law_value(law, setting: str) -> str:
    """The law as a power law: "lr* = k * N^b * D^c" or "lr* = k * C^b" (k = e^a)."""
    import math

    k = math.exp(law.params_["a"])
    if law.form_ == "C":
        return f"{setting}* = {k:.4g} * C^{law.params_['b']:+.4f}"
    return f"{setting}* = {k:.4g} * N^{law.params_['b']:+.4f} * D^{law.params_['c']:+.4f}"
