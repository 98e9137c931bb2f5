"""Peak memory of one MTT iteration in PyTorch on the CPU, the unrolled graph of the
official distill.py (through its port, tests/scripts/dd_reference.py: the student's
parameters as one flat tensor per step, each step's gradient with create_graph=True, the
loss ||theta_N - target||^2 / ||theta_0 - target||^2 backpropagated to the images and
syn_lr). CIFAR-10's shapes, ConvNet, IPC images per class, syn_steps steps of all the
synthetic images (batch_syn = 10 x IPC, distill.py's default), DSA on each step.
Compare with the peak memory `beard bench --distill MTT --ipc IPC` reports.

usage: /usr/bin/python3 scripts/mtt_memory_torch.py [--ipc 10] [--syn-steps 30] [--threads 2]
"""
import argparse
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "scripts"))
import dd_reference as dd  # noqa: E402
import gen_dsa_fixtures as dsa  # noqa: E402
from torch_models import ConvNet  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ipc", type=int, default=10)
    ap.add_argument("--syn-steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    n = 10 * a.ipc
    net = ConvNet(3, 10)
    start = dd.flat_params(net)
    target = start + 0.01 * torch.randn(start.shape)
    syn = torch.randn(n, 3, 32, 32)
    labels = torch.arange(10).repeat_interleave(a.ipc)
    ops = ["color", "crop", "cutout", "flip", "scale", "rotate"]
    steps = [(torch.randperm(n, generator=g), ops[k % 6], dsa.draws(n, 32, 32, g)) for k in range(a.syn_steps)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.time()
    dd.mtt_iteration(net, syn, labels, 0.01, start, target, steps, 100.0, 1e-5)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"PyTorch MTT IPC {a.ipc}, syn_steps {a.syn_steps}: one iteration {time.time() - t:.1f} s, "
          f"peak RSS {peak:.0f} MB ({before:.0f} MB before it)")


if __name__ == "__main__":
    main()
