#!/usr/bin/env python3
"""PyTorch CPU reference for ssgd's distributed row: the step time of one large batch (B = 4096
by default) in one process with N threads against DistributedDataParallel (gloo, loopback) with
N processes of one thread each, for the same models as tools/pytorch_bench.py. Both accumulate
the batch in micro-batches of `--micro` samples (as ssgd's units of ghost_batch do): one
process runs B/micro of them; each DDP rank runs B/(N·micro) and all-reduces once per step.
Step = zero grads, forward + cross-entropy + backward per micro-batch, (all-reduce), SGD
momentum step. Random inputs; one warm-up step, then the median of --iterations steps.

    /tmp/torchenv/bin/python tools/pytorch_ddp_bench.py [--models mlp,vgg16] [--batch 4096]
        [--micro 128] [--processes 2] [--iterations 3] [--json FILE]
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_bench import MODELS  # noqa: E402  (one definition of the reference models)


def step_times(model, optimizer, shape, classes, samples, micro, iterations, ddp=None):
    torch.manual_seed(0)
    xs = [torch.randn(micro, *shape) for _ in range(samples // micro)]
    ys = [torch.randint(0, classes, (micro,)) for _ in range(samples // micro)]
    times = []
    for i in range(iterations + 1):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=False)
        for j, (x, y) in enumerate(zip(xs, ys)):
            last = j == len(xs) - 1
            if ddp is not None and not last:
                with ddp.no_sync():
                    F.cross_entropy(ddp(x), y, reduction="sum").backward()
            else:
                F.cross_entropy((ddp or model)(x), y, reduction="sum").backward()
        optimizer.step()
        if i > 0:
            times.append(time.perf_counter() - start)
    return times


def rank_main(rank, world, port, name, batch, micro, iterations, queue):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    build, shape, classes, _, _ = MODELS[name]
    torch.manual_seed(0)
    model = build()
    model.train()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
    times = step_times(model, optimizer, shape, classes, batch // world, micro, iterations, ddp=ddp)
    dist.barrier()
    if rank == 0:
        queue.put(times)
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="mlp,vgg16")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--micro", type=int, default=128)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--port", type=int, default=29517)
    parser.add_argument("--json")
    # Alternating the order between rounds keeps a drift in the host's speed from favouring one side.
    parser.add_argument("--ddp-first", action="store_true", help="time DDP before the single process")
    args = parser.parse_args()
    results = []
    for name in args.models.split(","):
        build, shape, classes, _, _ = MODELS[name]
        torch.set_num_threads(args.processes)
        torch.manual_seed(0)
        model = build()
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def time_single():
            return statistics.median(step_times(model, optimizer, shape, classes, args.batch, args.micro, args.iterations))

        def time_ddp():
            queue = mp.get_context("spawn").SimpleQueue()
            mp.start_processes(rank_main, args=(args.processes, args.port, name, args.batch, args.micro, args.iterations, queue),
                               nprocs=args.processes, start_method="spawn")
            return statistics.median(queue.get())

        if args.ddp_first:
            ddp = time_ddp()
            single = time_single()
        else:
            single = time_single()
            ddp = time_ddp()
        row = {"model": name, "batch": args.batch, "micro": args.micro, "processes": args.processes,
               "single_step_s": single, "ddp_step_s": ddp, "ddp_over_single": ddp / single}
        results.append(row)
        print(f"pytorch {name} B={args.batch}: one {args.processes}-thread process {single:.3f} s/step, "
              f"DDP {args.processes}×1 thread {ddp:.3f} s/step, DDP/single {ddp / single:.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
