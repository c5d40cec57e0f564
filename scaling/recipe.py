"""Default training hyperparameters as functions of model shape: what a run uses when the config says None.

A scaling-law sweep is only as good as its worst-tuned rung (Porian et al. 2024, arXiv 2406.19146:
an untuned LR, a long warmup and a default beta2 at small batch are three of the reasons Kaplan's and
Chinchilla's laws disagree). So the defaults scale with the model:

- **Peak LR** (`default_lr`): LR_WIDTH / d_model, at most LR_MAX. This is muP's rule for hidden
  weights under Adam (Yang et al. 2022, Tensor Programs V, Table 3; Everett et al. 2024 find the same
  1/width optimum with Adam in the standard parametrisation): an Adam update moves a unit's input by
  ~ lr x fan-in, so the stable LR falls as 1/width. With the shape rule of `scaling.shapes`
  (d_model = 64 n_layer, N_nonembedding ~ 12 n_layer d^2) it is lr ~ N_nonembedding^(-1/3), the
  exponent of Porian et al.'s fitted optimum 0.0047 (N / 108e6)^(-1/3); we write it in the width, not
  in total N, because at CPU scale the embedding is most of N and Porian's law (fitted at 5M-900M
  parameters, batches of 40k-300k tokens) asks for 0.03-0.07 there: far past the LR at which our tiny
  models stall at the unigram loss. LR_WIDTH = 0.5 and LR_MAX = 0.0125 are calibrated by the scans in
  LR_SCAN (a first calibration at 0.25 / d_model, capped at 0.02, proved 2x too low for 2-layer models
  and too high for the narrowest: scan C). At GPU scale the rule gives 6.5e-4 at GPT-2 small (d 768),
  4.9e-4 at d 1024, 2.4e-4 at d 2048, 1.2e-4 at d 4096: GPT-3's published LRs (Brown et al. 2020,
  Table 2.1: 6e-4, 3e-4, 2e-4, 1.2e-4) within a factor 1.6; set `lr` (or a sweep's LR rule) to
  tune it for your batch.
- **Warmup** (`default_warmup_tokens`): N tokens (Porian et al.: the warmup as long as the model's
  parameter count in tokens, against Kaplan's fixed 3,000 steps that ate most of a small model's
  run), at most WARMUP_MAX_FRACTION = 25% of the run, at least one optimiser step. The cap is not
  10%: in short runs (a few tokens per parameter, the large models of an IsoFLOP sweep) a 10% warmup
  at a near-optimal LR left the model stalled at the unigram loss (LR_SCAN), a 25-33% one did not.
- **AdamW beta2**: the config's 0.95. Porian et al. find 0.99 better at small batch; at our CPU batch
  (4,096 tokens) the scan shows no difference (LR_SCAN), so the default stays.
"""

from __future__ import annotations

from scaling import counting
from scaling.config import ModelConfig

LR_WIDTH = 0.5  # peak LR = LR_WIDTH / d_model
LR_MAX = 0.0125  # never above this, whatever the shape
WARMUP_MAX_FRACTION = 0.25

LR_SCAN = """\
Scans on the default corpus (Python stdlib) at vocab 512, context 128, with `scaling.train.train`:
cosine to 10%, AdamW (0.9, 0.95), wd 0.1, tied embeddings unless marked; final validation loss in
nats/token (the same validation windows within a row). Shared 2-core box, Nov 2026.

A. Batch 4,096 tokens, warmup = min(N, 10% of D):
  shape (N total)     tokens  0.00075 0.0015 0.0021 0.003  0.0042 0.0045 0.006  0.012  0.024  0.048 | 0.25/d
  1 x 28  (27k)       600k       -      -      -    4.623    -      -    4.263  4.235  4.331    -   | 0.0089
  1 x 68  (99k)       1M       4.487  4.062  3.909  3.750  3.713    -    4.07*  4.11*  4.07*  4.39* | 0.0037
  2 x 116 (398k)      1M       3.970  3.666    -    3.499    -      -    3.514    -      -      -   | 0.0022
  2 x 116 (398k)      2M         -    3.357    -    3.146    -    3.073    -      -      -      -   | 0.0022
  (* on 512 instead of 256 validation windows: comparable to ~0.01)
  beta2 0.99 instead of 0.95, 1 x 68, 1M tokens: lr 0.0015 4.051 (vs 4.062), lr 0.003 3.750 (vs 3.750*).

B. 2 x 64 (133k tied, 166k untied), the 3 MB test slice, 500k tokens unless marked:
  batch 1,024: lr 0.002 3.698, 0.003 3.605           batch 2,048: 0.002 3.995, 0.003 3.819, 0.004 3.956
  batch 4,096: lr 0.003 4.189, 0.0055 4.529, 0.008 4.729 (all warmup 10%)
  batch 4,096, lr 0.0055: warmup 10% 4.529, warmup 27% 4.034; untied 3.850
  batch 2,048, lr 0.0039 (the rule): warmup 10% 3.753, 25% 3.693; untied, 25% 3.537
  batch 2,048, untied, lr 0.008: warmup 0.4% 4.157, 10% 4.300, 33% 3.502
  batch 2,048, 2M tokens (warmup N): tied 0.003 3.126, 0.0055 3.179, 0.008 2.944;
                                     untied 0.003 3.035, 0.0055 2.923, 0.008 2.942, 0.012 2.918

C. The demo's IsoFLOP sweep (sweeps/examples/demo-cpu.yaml: untied, rotary, batch 1,024, warmup N,
   cosine), budget 1e12 FLOPs, the first rule (0.25/d, cap 0.02) and 2x it:
  shape (N total)     tokens   lr x1           lr x2
  2 x 20 (30k)        5.5M     0.0125  3.268   0.025   3.349
  2 x 28 (48k)        3.5M     0.0089  3.166   0.0179  3.057
  2 x 40 (80k)        2.1M     0.0063  3.153   0.0125  3.135
  2 x 56 (133k)       1.25M    0.0045  3.254   0.0089  3.159
  budget 1e11: 2 x 8 (10k) 1.7M 0.02 4.076, 0.04 4.059; 2 x 12 (16k) 1.05M 0.02 3.813, 0.04 3.810.
  Held-out run of an earlier demo, 2 x 68 rotary (181k), 9.2M tokens: 0.0037 2.532; 2x the LR ~0.5% lower.

Reading: below ~10 tokens per parameter the LR optimum sits just under a cliff past which the model
stalls at the unigram loss for much of the run; a longer warmup and untied embeddings both push the
cliff up, and longer runs recover from it. 0.25/d_model lands at or next to the optimum for the
1-layer models, under the cliff for 2 x 64, and low (+2-7% loss) for 2 x 116 trained longer. Untied
embeddings learned 0.15-0.35 nats/token faster at equal LR and had a smooth LR response; tied ones
stalled at random (2M tokens: 0.0055 worse than both 0.003 and 0.008). Scan C: with untied embeddings
and warmup N the optimum of 2-layer models sits near 0.0125 up to width ~40 and then falls like
1/width (0.5/d_model), the first rule's 0.25/d cost up to 3.5% loss, unevenly across sizes (which
bends an IsoFLOP frontier), and 0.025 at width 20 was past the optimum: hence 0.5/d, capped at 0.0125
(also the best of the 1 x 28 row of scan A).
"""


def default_lr(model: ModelConfig) -> float:
    """Peak AdamW LR: LR_WIDTH / d_model (muP's 1/width rule for Adam), at most LR_MAX."""
    return min(LR_MAX, LR_WIDTH / model.d_model)


def default_warmup_tokens(model: ModelConfig, tokens: int, batch_tokens: int) -> int:
    """Warmup = N tokens (Porian et al. 2024), at most 25% of the run, at least one batch."""
    n = counting.param_counts(model)["params"]
    return int(max(batch_tokens, min(n, WARMUP_MAX_FRACTION * tokens)))
