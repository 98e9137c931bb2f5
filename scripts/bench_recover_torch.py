"""PyTorch side of `beard bench --recover --torch`: SRe2L's recover iteration (VILA-Lab/SRe2L
recover_cifar.py: random roll, the teacher in eval mode with BN-statistics hooks, CE + r_bn x
BN term, Adam(0.5, 0.9), cosine lr, clip) on the CPU, timed.

Prints one machine-readable line: TORCH_RECOVER <iterations per second>.
"""
import argparse
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "scripts"))
from torch_models import get_network  # noqa: E402

MEAN, STD = [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]


def model(arch):
    if arch in ("resnet18_modified", "ResNet18"):  # beard's zoo name; ResNet18 as the script once said
        import torchvision
        m = torchvision.models.resnet18(num_classes=10)
        m.conv1 = nn.Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
        m.maxpool = nn.Identity()
        return m
    return get_network(arch)


class Hook:
    def __init__(self, m):
        m.register_forward_hook(self.fn)

    def fn(self, m, i, o):
        x = i[0]
        nch = x.shape[1]
        mean = x.mean([0, 2, 3])
        var = x.permute(1, 0, 2, 3).contiguous().reshape([nch, -1]).var(1, unbiased=False)
        self.r = torch.norm(m.running_var.data - var, 2) + torch.norm(m.running_mean.data - mean, 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet18_modified")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = model(a.arch).eval()
    for p in net.parameters():
        p.requires_grad = False
    hooks = [Hook(m) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    targets = torch.arange(a.batch) % 10
    inputs = torch.randn((a.batch, 3, 32, 32), requires_grad=True)
    opt = torch.optim.Adam([inputs], lr=0.25, betas=[0.5, 0.9], eps=1e-8)
    crit = nn.CrossEntropyLoss()
    total = 1000

    def step(it):
        for g in opt.param_groups:
            g["lr"] = 0.5 * (1 + np.cos(np.pi * it / total)) * 0.25
        x = torch.roll(inputs, shifts=(random.randint(0, 4), random.randint(0, 4)), dims=(2, 3))
        opt.zero_grad()
        out = net(x)
        rescale = [10.0] + [1.0] * (len(hooks) - 1)
        loss = crit(out, targets) + 0.01 * torch.stack([h.r * s for h, s in zip(hooks, rescale)]).sum()
        loss.backward()
        opt.step()
        for c in range(3):
            inputs.data[:, c] = torch.clamp(inputs.data[:, c], -MEAN[c] / STD[c], (1 - MEAN[c]) / STD[c])

    step(0)
    n, t0 = 0, time.perf_counter()
    while True:
        step(n + 1)
        n += 1
        t = time.perf_counter() - t0
        if t >= a.seconds and n >= 3:
            break
    print(f"TORCH_RECOVER {n / t:.6f}")


if __name__ == "__main__":
    main()
