"""What the ranks' agreement on a SIGTERM stop step costs (`scaling.preemption`, `scaling.trainer._train_step`).

    python benchmarks/bench_stop_agreement.py                 2 gloo processes, 2000 all-reduces of each kind
    python benchmarks/bench_stop_agreement.py --smoke-test    200 of each

Every optimiser step of a data-parallel run already all-reduces the step's training loss (one float, AVG). The
stop flag rides in that message: [loss, flag], two floats instead of one. This script measures, in one run on
2 gloo processes of this machine, the time of one all-reduce of 1 float (before), of 2 floats (the loss and the
flag together, now) and of 1 float + a second all-reduce of 1 float (what a separate agreement collective would
cost), and one optimiser step of the smallest test model (1 layer, d 32, 2048 tokens per step over 2 processes)
as the reference. Printed: the medians in microseconds and the ratios of the extra cost to a step.

The machine this runs on is shared by other work in development: compare the ratios, not the microseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _timed(fns: dict, n: int) -> dict[str, float]:
    """Median microseconds per call of each of `fns`, over `n` calls each, in interleaved blocks of 20 (a
    barrier before each block), so the machine's load drifts the same way for all of them."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(n // 20):
        for name, fn in fns.items():
            dist.barrier()
            t0 = time.perf_counter()
            for _ in range(20):
                fn()
            samples[name].append((time.perf_counter() - t0) / 20 * 1e6)
    return {name: statistics.median(v) for name, v in samples.items()}


def _worker(rank: int, world: int, port: int, n: int, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    one, two, flag = torch.zeros(1), torch.zeros(2), torch.zeros(1)

    def loss_only():
        dist.all_reduce(one, op=dist.ReduceOp.AVG)

    def loss_and_flag():
        dist.all_reduce(two, op=dist.ReduceOp.AVG)

    def separate():
        dist.all_reduce(one, op=dist.ReduceOp.AVG)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)

    from torch.nn.parallel import DistributedDataParallel as DDP

    from scaling.config import ModelConfig
    from scaling.model import GPT

    torch.manual_seed(0)
    model = DDP(GPT(ModelConfig(n_layer=1, d_model=32, n_head=2, context=64, vocab_size=512)))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 512, (2048 // 64 // world, 64))

    def step():
        _, loss = model(x, x)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss_only()

    results = _timed({"loss_only": loss_only, "loss_and_flag": loss_and_flag, "separate": separate}, n)
    results |= _timed({"step": step}, max(40, n // 10))
    if rank == 0:
        queue.put(results)
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke-test", action="store_true")
    args = parser.parse_args()
    n = 200 if args.smoke_test else 2000
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, n, queue)) for r in range(2)]
    for p in procs:
        p.start()
    r = queue.get()
    for p in procs:
        p.join()
    extra_now = r["loss_and_flag"] - r["loss_only"]
    extra_separate = r["separate"] - r["loss_only"]
    print(f"gloo, 2 processes, medians of {n} all-reduces:")
    print(f"  all-reduce 1 float (the loss, before):          {r['loss_only']:8.1f} us")
    print(f"  all-reduce 2 floats (loss + stop flag, now):    {r['loss_and_flag']:8.1f} us")
    print(f"  1 float + a separate 1-float MAX all-reduce:    {r['separate']:8.1f} us")
    print(f"  one optimiser step of the 1-layer d32 test GPT: {r['step']:8.1f} us")
    print(f"extra per step, flag in the loss message: {extra_now:+.1f} us = {extra_now / r['step']:+.2%} of a step")
    print(f"extra per step, a separate all-reduce:    {extra_separate:+.1f} us = {extra_separate / r['step']:+.2%} of a step")


if __name__ == "__main__":
    main()
