#!/usr/bin/env python3
"""Reference numbers from PyTorch for ssgd's PyTorchReferenceTests.

A small network covering conv, BN, ReLU, a DenseNet layer (BN-ReLU-conv plus concatenation),
a DenseNet transition (BN-ReLU-conv1x1-avgpool), max-pooling and a linear layer, with the same
module names ssgd gives its layers:

    input (N=8, 3, 8, 8)
    conv0  Conv2d 3->4 3x3 p1, no bias          -> (8, 4, 8, 8)
    bn0    BatchNorm2d(4), ReLU
    dense  bn1 BatchNorm2d(4), ReLU, conv1 Conv2d 4->2 3x3 p1 no bias; cat[x, new]
                                                -> (8, 6, 8, 8)
    trans  bn1 BatchNorm2d(6), ReLU, conv1 Conv2d 6->6 1x1 no bias, AvgPool2d(2)
                                                -> (8, 6, 4, 4)
    MaxPool2d(2), flatten                       -> (8, 24)
    fc     Linear 24->5                         -> logits (8, 5)

Writes Tests/Fixtures/pytorch_reference.safetensors (float32 tensors, written here by hand with
struct and json so that ssgd's decoder is checked against an independent encoder):

    input, logits, loss (scalar, mean cross-entropy), input_grad (of the mean loss),
    initial/<name>  every parameter and BN running statistic before anything ran,
    grad/<name>     gradient of the mean loss for every parameter (one training-mode forward),
    train_losses    (10,) losses of 10 steps of SGD(lr, momentum 0.9, nesterov) on the batch,
    trained/<name>  parameters and running statistics after those 10 steps,
and __metadata__ with the labels, lr, momentum, steps, seed and torch version.

Usage (see tools/README.md): python3 tools/pytorch_reference.py
"""

import json
import struct
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 20170531
BATCH = 8
CLASSES = 5
LR = 0.05
MOMENTUM = 0.9
STEPS = 10
OUTPUT = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "pytorch_reference.safetensors"


class SingleLayer(nn.Module):
    """densenet.pytorch's SingleLayer: BN-ReLU-conv3x3, concatenated after the input."""

    def __init__(self, channels, growth):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, growth, 3, padding=1, bias=False)

    def forward(self, x):
        return torch.cat([x, self.conv1(F.relu(self.bn1(x)))], 1)


class Transition(nn.Module):
    """densenet.pytorch's Transition: BN-ReLU-conv1x1-avgpool2."""

    def __init__(self, channels):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv1(F.relu(self.bn1(x))), 2)


class Reference(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(4)
        self.dense = SingleLayer(4, 2)
        self.trans = Transition(6)
        self.fc = nn.Linear(24, CLASSES)

    def forward(self, x):
        x = F.relu(self.bn0(self.conv0(x)))
        x = self.trans(self.dense(x))
        x = F.max_pool2d(x, 2)
        return self.fc(torch.flatten(x, 1))


def snapshot(model, prefix):
    """Parameters and running statistics (not num_batches_tracked) under prefix/name."""
    return {
        f"{prefix}/{name}": tensor.detach().clone()
        for name, tensor in model.state_dict().items()
        if not name.endswith("num_batches_tracked")
    }


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name, tensor in tensors.items():
        data = tensor.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(text)))
        file.write(text)
        for blob in blobs:
            file.write(blob)


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    model = Reference()
    # Non-trivial BN scales and shifts, so their gradients are not those of γ=1, β=0.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
    initial = model.state_dict()
    initial = {name: tensor.clone() for name, tensor in initial.items()}
    x = torch.randn(BATCH, 3, 8, 8)
    labels = torch.randint(0, CLASSES, (BATCH,))

    # One training-mode forward and backward of the mean loss.
    model.train()
    x_leaf = x.clone().requires_grad_(True)
    logits = model(x_leaf)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    tensors = {"input": x, "logits": logits.detach(), "loss": loss.detach(), "input_grad": x_leaf.grad}
    model.load_state_dict(initial)  # undo the running-statistics update of that forward
    tensors.update(snapshot(model, "initial"))
    tensors.update({f"grad/{name}": p.grad.detach().clone() for name, p in model.named_parameters()})

    # Ten Nesterov steps on the same batch from the initial state.
    model.zero_grad(set_to_none=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True)
    losses = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        step_loss = F.cross_entropy(model(x), labels)
        step_loss.backward()
        optimizer.step()
        losses.append(step_loss.item())
    tensors["train_losses"] = torch.tensor(losses, dtype=torch.float32)
    tensors.update(snapshot(model, "trained"))

    metadata = {
        "format": "ssgd-pytorch-reference",
        "version": "1",
        "torch": torch.__version__,
        "seed": str(SEED),
        "labels": ",".join(str(int(v)) for v in labels),
        "lr": repr(LR),
        "momentum": repr(MOMENTUM),
        "steps": str(STEPS),
        "classes": str(CLASSES),
    }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors(OUTPUT, tensors, metadata)
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes, {len(tensors)} tensors); loss {loss.item():.6f}, "
          f"losses {losses[0]:.6f} ... {losses[-1]:.6f}")


if __name__ == "__main__":
    main()
