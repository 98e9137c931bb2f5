"""PyTorch side of `beard bench --torch`: the same three measurements on the CPU.

Prints one machine-readable line: TORCH <forward ips> <fwd+bwd-to-input ips> <train ips>.
"""
import argparse
import os
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError as err:
    sys.exit(f"bench_torch.py: PyTorch is needed ({err}; Debian: apt-get install python3-torch)")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "scripts"))
from torch_models import VARIANTS, get_network  # noqa: E402


def timed(fn, seconds):
    fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        t = time.perf_counter() - t0
        if t >= seconds and n >= 3:
            return t / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="ConvNet")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--classes", type=int, default=10)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    shape = (a.channels, a.classes, a.size)
    if a.arch in VARIANTS:
        net = get_network(a.arch, a.channels, a.classes, (a.size, a.size))
    else:
        try:
            import zoo_models  # noqa: E402  (the other architectures only: ConvNet runs without it)
        except ImportError as err:
            sys.exit(f"bench_torch.py: {a.arch} needs torchvision ({err}; Debian: apt-get install python3-torchvision)")

        net = zoo_models.build(a.arch, *shape)
    net.eval()
    x = torch.rand(a.batch, a.channels, a.size, a.size)
    y = torch.randint(0, a.classes, (a.batch,))

    def fwd():
        with torch.no_grad():
            net(x)

    def fwd_bwd():
        xa = x.clone().requires_grad_(True)
        loss = F.cross_entropy(net(xa), y)
        torch.autograd.grad(loss, [xa])

    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def train():
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()

    t_f = timed(fwd, a.seconds)
    t_fb = timed(fwd_bwd, a.seconds)
    net.train()
    t_tr = timed(train, a.seconds)
    print("TORCH %.2f %.2f %.2f" % (a.batch / t_f, a.batch / t_fb, a.batch / t_tr))


if __name__ == "__main__":
    main()
