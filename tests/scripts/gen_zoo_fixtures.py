"""Reference tensors for tests/test_zoo.c: every zoo architecture in PyTorch
(tests/scripts/zoo_models.py) on real test images from ../shared. Run by hand:
    /usr/bin/python3 tests/scripts/gen_zoo_fixtures.py [--shared ../shared]
It writes tests/fixtures/zoo.bin (BEARDFIX format, see fixture.py).

Parameters are not stored (ResNet-50 alone has 23M): both sides fill every state_dict
entry from the same formula (zoo_param below, mirrored in test_zoo.c), keyed by the entry's
name. The references are PyTorch's results in float64 (the exact answer for these
parameters). Two things set each check's tolerance (test_zoo.c allows twice each, above a
floor): PyTorch's own float32 error against the float64 answer, since deep float32
networks (ResNet-50, BN backward at 64 px) differ from it by more than a fixed 1e-4; and
the ReLU kinks. A gradient is discontinuous where a ReLU input is 0: an input within
float32 rounding of 0 (|x| ~ 1e-6) takes either side in a float32 forward, and its mask
decides whether that one element passes gradient. Through train-mode BatchNorm's batch
sums one such element moves every gradient below it: in VGG11BN one BatchNorm output of
-2.9e-7 that beard's forward computes as +8.9e-7 moves the gradients under it by 1.7%
(with that mask flipped, float64 PyTorch and beard agree to 2e-6). So a third run, in
float64, flips the backward mask of every ReLU input within ten times the float32 run's
rms error of that input (KINK_C) of 0; its distance from the float64 answer bounds what
float32 rounding at the kinks can do. Max pooling's near-ties are the other kink: the
kink run sends the gradient of each window whose runner-up is within the same margin of
its maximum to the runner-up. (Exact ties, as MNIST's black background makes, come from
equal inputs; float32 keeps them equal and both sides take the first.)
Per case (architecture, channels, size, classes) the fixture holds
  <case>.key.<name>    the shape of every state_dict entry, in PyTorch's order
  <case>.logits        (64, K) eval-mode logits on the first 64 test images
  <case>.logits_err32  max |float32 - float64| of PyTorch's logits
  <case>.dx            (1, C, H, W) d CE(logits_0, y_0) / d x_0, eval mode
  <case>.dx_err32      PyTorch float32's relative L2 error of dx, then the kink run's
  <case>.train_loss    mean CE of the first 8 images in train mode (batch statistics)
  <case>.step.<name>   after one SGD step on those 8 (lr 0.01, momentum 0.9, weight decay
                       5e-4: BEARD's recipe) from the train-mode forward: the entry's first
                       16 values, the L2 norm d of its change, PyTorch float32's relative
                       L2 error of the change (|change32 - change| / d), and the kink
                       run's (parameters and BatchNorm running statistics)
Inputs are normalised as BEARD feeds them (CIFAR-10 / MNIST mean and std); 64 px cases
upsample the CIFAR images 2x (nearest)."""
import argparse
import gzip
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import write_fixture  # noqa: E402
import zoo_models  # noqa: E402

# (case, architecture, channels, size, classes)
CASES = [
    ("mlp", "MLP", 3, 32, 10), ("lenet", "LeNet", 3, 32, 10), ("alexnet", "AlexNet", 3, 32, 10),
    ("alexnetbn", "AlexNetBN", 3, 32, 10), ("vgg11", "VGG11", 3, 32, 10), ("vgg11bn", "VGG11BN", 3, 32, 10),
    ("resnet18", "ResNet18", 3, 32, 10), ("resnet18bn", "ResNet18BN", 3, 32, 10),
    ("resnet18bn_ap", "ResNet18BN_AP", 3, 32, 10), ("resnet18_ap", "ResNet18_AP", 3, 32, 10),
    ("tv18", "resnet18_modified", 3, 32, 10), ("tv50", "resnet50_modified", 3, 32, 100),
    ("mobilenetv2", "MobileNetV2", 3, 32, 10), ("wrn", "WRN_16_2", 3, 32, 10),
    ("shufflenet", "ShuffleNetV2_0_5", 3, 32, 10),
    # 1 channel, 28 px (MNIST): DC's padding tweaks
    ("mlp_mnist", "MLP", 1, 28, 10), ("lenet_mnist", "LeNet", 1, 28, 10), ("alexnet_mnist", "AlexNet", 1, 28, 10),
    ("vgg11_mnist", "VGG11", 1, 28, 10), ("resnet18bn_ap_mnist", "ResNet18BN_AP", 1, 28, 10),
    # 64 px (TinyImageNet's size), 200 classes
    ("tv18_64", "resnet18_modified", 3, 64, 200), ("mobilenetv2_64", "MobileNetV2", 3, 64, 200),
    ("resnet18bn_64", "ResNet18BN", 3, 64, 200),
]
N_EVAL, N_TRAIN = 64, 8
CIFAR = ([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010])
MNIST = ([0.1307], [0.3081])


def fnv1a(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def splitmix(x):
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def zoo_param(name, shape):
    """The fill both sides use: u in [-1, 1) from splitmix64(fnv1a(name) + index)."""
    n = int(np.prod(shape)) if len(shape) else 1
    with np.errstate(over="ignore"):
        idx = np.arange(n, dtype=np.uint64) + np.uint64(fnv1a(name))
    u = (splitmix(idx) >> np.uint64(40)).astype(np.float64) * 2.0 ** -24 * 2 - 1
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "weight" and len(shape) >= 2:
        v = u * math.sqrt(6.0 / (n / shape[0]))  # He-uniform: keeps unnormalised nets alive
    elif leaf == "weight":
        v = 1 + 0.2 * u
    elif leaf in ("bias", "running_mean"):
        v = 0.1 * u
    elif leaf == "running_var":
        v = 1 + 0.25 * (u + 1)
    else:
        return None
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def fill(model):
    sd = model.state_dict()
    for k, t in sd.items():
        v = zoo_param(k, tuple(t.shape))
        if v is not None:
            t.copy_(v)


def load_cifar(shared, n):
    raw = np.fromfile(os.path.join(shared, "data/cifar-10-batches-bin/test_batch.bin"), dtype=np.uint8)
    raw = raw.reshape(-1, 3073)[:n]
    x = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    m, s = (torch.tensor(v).view(1, 3, 1, 1) for v in CIFAR)
    return (x - m) / s, torch.from_numpy(raw[:, 0].astype(np.int64))


def load_mnist(shared, n):
    with gzip.open(os.path.join(shared, "data/mnist/t10k-images-idx3-ubyte.gz")) as f:
        img = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n]
    with gzip.open(os.path.join(shared, "data/mnist/t10k-labels-idx1-ubyte.gz")) as f:
        lab = np.frombuffer(f.read(), dtype=np.uint8, offset=8)[:n]
    x = torch.from_numpy(img.astype(np.float32) / 255.0)
    return (x - MNIST[0][0]) / MNIST[1][0], torch.from_numpy(lab.astype(np.int64))


# The kink run flips the masks within KINK_C times the float32 rounding of each ReLU's
# input: beard's forward (Winograd convolutions) is within about twice PyTorch float32's
# error of float64, so 10 leaves a margin of 5 over beard's rms error at every ReLU.
KINK_C = 10.0


class _Kinks:
    """the ReLUs of a run, in call order: 'record' keeps each input (the float32 run),
    'flip' flips the backward mask of each input within KINK_C * (its recorded input's
    rms error) of 0 (the float64 kink run)"""
    mode, seen, calls, flipped = None, [], 0, 0


class _KinkReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        K = _Kinks
        mask = x > 0
        if K.mode == "record":
            K.seen.append(x.detach().double().clone())
        elif K.mode == "flip":
            x32 = K.seen[K.calls]
            rms = x.detach().pow(2).mean().sqrt()
            err = (x.detach() - x32).pow(2).mean().sqrt()
            near = x.detach().abs() <= KINK_C * err
            K.flipped += int(near.sum())
            mask = mask ^ near
        K.calls += 1
        ctx.save_for_backward(mask)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return g * mask


def _kink_relu(x, inplace=False):
    return _KinkReLU.apply(x)


class _KinkMaxPool(torch.autograd.Function):
    """non-overlapping max pooling (k = stride, no padding) whose gradient goes to the
    last position of each window within KINK_C * err below its maximum, where there is
    one, instead of to the maximum"""

    @staticmethod
    def forward(ctx, x, k, err):
        N, C, H, W = x.shape
        Ho, Wo = H // k, W // k
        u = x[:, :, :Ho * k, :Wo * k].reshape(N, C, Ho, k, Wo, k).permute(0, 1, 2, 4, 3, 5).reshape(N, C, Ho, Wo, k * k)
        m = u.max(-1).values
        # a value within the margin below the maximum takes the gradient instead (exact
        # ties come from equal inputs, equal in float32 too, and stay PyTorch's)
        near = (u >= m.unsqueeze(-1) - KINK_C * err) & (u < m.unsqueeze(-1))
        first = u.argmax(-1)
        last = torch.where(near.any(-1), k * k - 1 - near.flip(-1).int().argmax(-1), first)
        _Kinks.flipped += int(near.any(-1).sum())
        ctx.save_for_backward(last)
        ctx.shape = (N, C, H, W, k)
        return m

    @staticmethod
    def backward(ctx, g):
        (last,) = ctx.saved_tensors
        N, C, H, W, k = ctx.shape
        Ho, Wo = H // k, W // k
        du = torch.zeros(N, C, Ho, Wo, k * k, dtype=g.dtype)
        du.scatter_(-1, last.unsqueeze(-1), g.unsqueeze(-1))
        dx = torch.zeros(N, C, H, W, dtype=g.dtype)
        dx[:, :, :Ho * k, :Wo * k] = du.reshape(N, C, Ho, Wo, k, k).permute(0, 1, 2, 4, 3, 5).reshape(N, C, Ho * k, Wo * k)
        return dx, None, None


_max_pool2d = F.max_pool2d


def _kink_max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    K = _Kinks
    k, st = kernel_size, stride if stride is not None else kernel_size
    plain = k == st and isinstance(k, int) and padding == 0 and dilation == 1 and not ceil_mode and not return_indices
    if K.mode == "record":
        K.seen.append(x.detach().double().clone())
        K.calls += 1
    elif K.mode == "flip" and plain:
        err = (x.detach() - K.seen[K.calls]).pow(2).mean().sqrt()
        K.calls += 1
        return _KinkMaxPool.apply(x, k, err)
    elif K.mode == "flip":
        K.calls += 1
    return _max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode=ceil_mode, return_indices=return_indices)


def run(model, x, y, kink=False):
    """eval logits, one image's input gradient, one SGD step in train mode; the model is
    left as it was (a deep copy takes the step). Every ReLU is _KinkReLU and every max
    pooling _kink_max_pool2d (F.relu and F.max_pool2d, which nn.ReLU and nn.MaxPool2d
    call, replaced for the run): a float32 run records their inputs, and then kink=True
    (float64) flips the near-zero backward masks and breaks the near-ties the other way."""
    import copy
    model = copy.deepcopy(model)
    relu = F.relu
    F.relu, F.max_pool2d = _kink_relu, _kink_max_pool2d
    _Kinks.calls, _Kinks.flipped = 0, 0
    try:
        model.eval()
        out = {}
        if not kink:  # the forward has no kinks
            _Kinks.mode = None
            with torch.no_grad():
                out["logits"] = model(x)
        if kink:
            _Kinks.mode = "flip"
        elif x.dtype == torch.float32:
            _Kinks.mode, _Kinks.seen = "record", []
        else:
            _Kinks.mode = None
        x0 = x[:1].clone().requires_grad_(True)
        loss = F.cross_entropy(model(x0), y[:1], reduction="sum")
        out["dx"] = torch.autograd.grad(loss, x0)[0]
        before = {k: v.clone() for k, v in model.state_dict().items()}
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        opt.zero_grad()
        loss = F.cross_entropy(model(x[:N_TRAIN]), y[:N_TRAIN])
        loss.backward()
        opt.step()
    finally:
        F.relu, F.max_pool2d = relu, _max_pool2d
        _Kinks.mode = None
    out["flipped"] = _Kinks.flipped
    out["loss"] = loss.item()
    out["step"] = {}
    for k, t in model.state_dict().items():
        if t.dtype.is_floating_point:
            out["step"][k] = (t.flatten()[:16].double().numpy(), (t - before[k]).double().flatten())
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "fixtures", "zoo.bin"))
    ap.add_argument("--case", action="append", help="only these cases (debugging; the fixture then holds only them)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    cifar = load_cifar(args.shared, N_EVAL)
    mnist = load_mnist(args.shared, N_EVAL)
    T = {}
    for case, arch, C, H, K in CASES:
        if args.case and case not in args.case:
            continue
        x, y = mnist if C == 1 else cifar
        if H == 64:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        y = y % K
        torch.manual_seed(0)
        model = zoo_models.build(arch, C, K, H)
        fill(model)
        for k, t in model.state_dict().items():
            T["%s.key.%s" % (case, k)] = np.array(t.shape, dtype=np.float32)
        r32 = run(model, x, y)
        r64 = run(model.double(), x.double(), y)
        rk = run(model.double(), x.double(), y, kink=True)
        _Kinks.seen = []
        T[case + ".logits"] = r64["logits"]
        T[case + ".logits_err32"] = np.array([(r32["logits"].double() - r64["logits"]).abs().max().item()])
        T[case + ".dx"] = r64["dx"]
        dn = r64["dx"].norm()
        T[case + ".dx_err32"] = np.array([((r32["dx"].double() - r64["dx"]).norm() / dn).item(),
                                          ((rk["dx"] - r64["dx"]).norm() / dn).item()])
        T[case + ".train_loss"] = np.array([r64["loss"]])
        kmax = 0.0
        for k, (v, ch) in r64["step"].items():
            d = ch.norm().item()
            e32 = (r32["step"][k][1] - ch).norm().item() / max(d, 1e-30)
            ek = (rk["step"][k][1] - ch).norm().item() / max(d, 1e-30)
            kmax = max(kmax, ek)
            T["%s.step.%s" % (case, k)] = np.concatenate([v, [d, e32, ek]])
        loss, nflip = r64["loss"], rk["flipped"]
        del r32, r64, rk
        print("%-20s %-18s %dx%dx%d K=%-3d loss %.4f  float32: logits %.2g, dx %.2g; %d kinks: dx %.2g, step %.2g" %
              (case, arch, C, H, H, K, loss, T[case + ".logits_err32"][0], T[case + ".dx_err32"][0], nflip,
               T[case + ".dx_err32"][1], kmax), flush=True)
    write_fixture(args.out, T)
    print("wrote", args.out, len(T), "tensors")


if __name__ == "__main__":
    main()
