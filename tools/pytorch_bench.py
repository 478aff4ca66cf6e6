#!/usr/bin/env python3
"""PyTorch CPU reference for `ssgd bench`: training images/s of the same four models (MODELS.md)
at the same micro-batches and thread counts, with the same step (zero grads, forward, softmax
cross-entropy, backward, SGD momentum 0.9 lr 0.01, no Nesterov), random inputs, one warm-up step,
median of the timed steps (wall and process CPU time). The JSON (--json) also holds the process's
peak resident set size. `ssgd bench --compare --python PYTHON` runs this script row by row,
interleaved with its own rows; it is the single PyTorch-side definition of the benchmark.

    python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0+cpu numpy
    /tmp/torchenv/bin/python tools/pytorch_bench.py [--models mlp,vgg16,nin,densenet40]
        [--batches 64,128] [--threads 1,2] [--iterations 5] [--json FILE]
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))


def vgg16():
    layers, channels = [], 3
    for width in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
        if width == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


def nin():
    def block(cin, cout, k, p=0):
        return [nn.Conv2d(cin, cout, k, padding=p), nn.ReLU()]
    return nn.Sequential(
        *block(3, 192, 5, 2), *block(192, 160, 1), *block(160, 96, 1), nn.MaxPool2d(3, 2, 1),
        *block(96, 192, 5, 2), *block(192, 192, 1), *block(192, 192, 1), nn.AvgPool2d(3, 2, 1, count_include_pad=False),
        *block(192, 192, 3, 1), *block(192, 192, 1), *block(192, 100, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())


class DenseLayer(nn.Module):
    def __init__(self, channels, growth):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, growth, 3, padding=1, bias=False)

    def forward(self, x):
        return torch.cat([x, self.conv(F.relu(self.bn(x)))], 1)


def densenet40(growth=12, classes=100):
    layers, channels = [nn.Conv2d(3, 16, 3, padding=1, bias=False)], 16
    for block in range(3):
        for _ in range(12):
            layers.append(DenseLayer(channels, growth))
            channels += growth
        if block < 2:
            layers += [nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, channels, 1, bias=False), nn.AvgPool2d(2)]
    layers += [nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes)]
    return nn.Sequential(*layers)


MODELS = {  # builder, input shape, classes, parameter count of MODELS.md, forward MFLOPs per image
    "mlp": (mlp, (1, 28, 28), 10, 1_863_690, 3.723),
    "vgg16": (vgg16, (3, 32, 32), 10, 14_986_698, 626.928),
    "nin": (nin, (3, 32, 32), 100, 984_356, 447.185),
    "densenet40": (densenet40, (3, 32, 32), 100, 1_060_132, 529.706),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="mlp,vgg16,nin,densenet40")
    parser.add_argument("--batches", default="64,128")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.manual_seed(0)
    results = []
    for name in args.models.split(","):
        build, shape, classes, expected, mflops = MODELS[name]
        model = build()
        count = sum(p.numel() for p in model.parameters())
        assert count == expected, f"{name}: {count} parameters, MODELS.md says {expected}"
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        model.train()
        for threads in [int(t) for t in args.threads.split(",")]:
            torch.set_num_threads(threads)
            for batch in [int(b) for b in args.batches.split(",")]:
                x = torch.randn(batch, *shape)
                y = torch.randint(0, classes, (batch,))
                times, cpu_times = [], []
                for i in range(args.iterations + 1):
                    start, cpu_start = time.perf_counter(), time.process_time()
                    optimizer.zero_grad(set_to_none=False)
                    F.cross_entropy(model(x), y).backward()
                    optimizer.step()
                    if i > 0:
                        times.append(time.perf_counter() - start)
                        cpu_times.append(time.process_time() - cpu_start)
                median = statistics.median(times)
                images = batch / median
                row = {"model": name, "batch": batch, "threads": threads, "step_ms": median * 1e3,
                       "cpu_ms": statistics.median(cpu_times) * 1e3, "iterations": len(times),
                       "images_per_second": images, "gflops": 3 * mflops * images / 1e3}
                results.append(row)
                print(f"pytorch {name} B={batch} {threads}T: {images:.1f} img/s, {row['gflops']:.1f} GFLOPS "
                      f"(median of {len(times)} steps, {median * 1e3:.1f} ms)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            # ru_maxrss is in KiB on Linux: the peak resident set of this whole process.
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            json.dump({"torch": torch.__version__, "peak_rss_bytes": peak, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
