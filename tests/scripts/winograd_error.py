"""How far Winograd F(2x2, 3x3) and F(4x4, 3x3), computed in float32, move the logits of
BEARD's BACON ConvNet from a float64 direct convolution, beside float32 direct, on the first
128 real CIFAR-10 test images of ../shared (or $BEARD_SHARED). Written for the README's note on
BEARD_CONV=winograd4; the transforms are the textbook ones (Lavin and Gray), as in winograd.c.

    /usr/bin/python3 tests/scripts/winograd_error.py
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import ConvNet  # noqa: E402
from gen_attack_refs import MEAN, STD, load_cifar_bin  # noqa: E402

torch.set_num_threads(1)
S = os.environ.get("BEARD_SHARED", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared"))
x, _ = load_cifar_bin(S + "/data/cifar-10-batches-bin/test_batch.bin", 128)
x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
net = ConvNet(3, 10)
sd = torch.load(S + "/beard/model_pool/BACON_ConvNet_CIFAR10_50_None_0.6995.pth", map_location="cpu")
net.load_state_dict(sd); net.eval()
T = {
 2: (np.array([[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]], float),
     np.array([[1,0,0],[.5,.5,.5],[.5,-.5,.5],[0,0,1]], float),
     np.array([[1,1,1,0],[0,1,-1,-1]], float)),
 4: (np.array([[4,0,-5,0,1,0],[0,-4,-4,1,1,0],[0,4,-4,-1,1,0],[0,-2,-1,2,1,0],[0,2,-1,-2,1,0],[0,4,0,-5,0,1]], float),
     np.array([[1/4,0,0],[-1/6,-1/6,-1/6],[-1/6,1/6,-1/6],[1/24,1/12,1/6],[1/24,-1/12,1/6],[0,0,1]], float),
     np.array([[1,1,1,1,1,0],[0,1,-1,2,-2,0],[0,1,1,4,4,0],[0,1,-1,8,-8,1]], float)),
}
def wino(inp, w, b, m, dt):
    BT, G, AT = [torch.tensor(t, dtype=dt) for t in T[m]]
    a = m + 2
    inp = inp.to(dt); w = w.to(dt)
    N, C, H, W = inp.shape
    p = F.pad(inp, (1, 1 + (-W) % m, 1, 1 + (-H) % m))
    th, tw = (H + m - 1) // m, (W + m - 1) // m
    d = p.unfold(2, a, m).unfold(3, a, m)  # N C th tw a a
    V = BT @ d @ BT.T
    U = G @ w @ G.T  # O C a a
    M = torch.einsum("ocij,nctwij->notwij", U, V)
    Y = AT @ M @ AT.T  # N O th tw m m
    Y = Y.permute(0, 1, 2, 4, 3, 5).reshape(N, -1, th * m, tw * m)[:, :, :H, :W]
    return Y + b.to(dt).view(1, -1, 1, 1)
def run(mode, dt):
    h = x.to(dt)
    L = list(net.features)
    for i, l in enumerate(L):
        if isinstance(l, torch.nn.Conv2d):
            if mode == "direct" or l.in_channels < 8:
                h = F.conv2d(h, l.weight.to(dt), l.bias.to(dt), padding=1)
            else:
                h = wino(h, l.weight, l.bias, mode, dt)
        elif isinstance(l, torch.nn.GroupNorm):
            h = F.group_norm(h, l.num_groups, l.weight.to(dt), l.bias.to(dt), l.eps)
        else:
            h = l(h)
    h = h.reshape(h.shape[0], -1)
    return F.linear(h, net.classifier.weight.to(dt), net.classifier.bias.to(dt))
with torch.no_grad():
    ref = run("direct", torch.float64)
    for mode in ("direct", 2, 4):
        y = run(mode, torch.float32).double()
        e = (y - ref).abs()
        print(f"{str(mode):7s} max |dlogit| {e.max():.3g}  mean {e.mean():.3g}  max rel {(e / ref.abs().clamp(min=1)).max():.3g}  argmax same {(y.argmax(1)==ref.argmax(1)).float().mean():.4f}")
    print("|logit| max", ref.abs().max().item())
