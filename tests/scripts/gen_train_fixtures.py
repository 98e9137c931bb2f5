"""Reference trajectories of BEARD/DC-bench's training recipe for tests/test_train.c, from PyTorch
(run by hand with a python that has torch and torchattacks 3.5.1):
    /usr/bin/python3 tests/scripts/gen_train_fixtures.py
It writes tests/fixtures/train/trajectory.bin (BEARDFIX format, see tests/scripts/fixture.py).

With one batch per epoch (12 images, batch 256) and no augmentation the recipe is deterministic, so
beard must follow PyTorch's trajectory step for step. Both sides build the data, the soft labels
and the initial parameters of a ConvNetASwish from the same closed-form expressions (below and in
test_train.c), so the fixture only holds results. (Swish, not ReLU: among the ~10^5 ReLU inputs of a
trajectory a few always lie within float rounding of the kink, and one that flips changes a
gradient by percents; a smooth network keeps the comparison well-conditioned.)
  sgd:   SGD lr 0.01, momentum 0.9, wd 5e-4, hard labels, epochs=6 (7 epochs; lr x0.1 and a new
         optimizer after epoch 4): the mean loss of each epoch and the final logits of the data
  adam:  Adam lr 1e-3, wd 5e-4, soft labels, epochs=4, same schedule
  pgd:   SGD as above, epochs=2, every batch replaced by torchattacks.PGD(eps 8/255, alpha 2/225,
         no random start; 3 steps instead of BEARD's 10 to keep the test fast), targeted at
         (y + 1) % 10 with the model in eval mode, as BEARD's epoch() does (normalised inputs,
         box [0, 1] in that space)
and TRADES' outer loss on random logits with autograd's gradients (trades.*).
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import write_fixture  # noqa: E402
from torch_models import get_network  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "train", "trajectory.bin")
N = 12


def data():
    j = np.arange(N * 3 * 32 * 32, dtype=np.float64)
    x = (1.5 * np.sin(0.0123 * j + 0.3 * (j % 11))).astype(np.float32).reshape(N, 3, 32, 32)
    y = np.arange(N) % 10
    soft = np.array([[math.sin(0.7 * i + 1.1 * k) * 2 for k in range(10)] for i in range(N)])
    soft = np.exp(soft) / np.exp(soft).sum(1, keepdims=True)
    return torch.from_numpy(x), torch.from_numpy(y).long(), torch.from_numpy(soft.astype(np.float32))


def init(net):
    for k, (name, p) in enumerate(net.named_parameters()):
        i = np.arange(p.numel(), dtype=np.float64)
        s = np.sin(0.731 * i + 1.3 * k)
        if p.dim() >= 2:
            v = s * 0.5 / math.sqrt(p.numel() / p.shape[0])
        elif name.endswith("weight"):
            v = 1.0 + 0.1 * s
        else:
            v = 0.1 * s
        with torch.no_grad():
            p.copy_(torch.from_numpy(v.astype(np.float32)).view_as(p))


def pgd_targeted(net, x, target, eps=8 / 255, alpha=2 / 225, steps=3):
    import torchattacks
    net.eval()
    atk = torchattacks.PGD(net, eps=eps, alpha=alpha, steps=steps, random_start=False)
    atk.set_mode_targeted_by_label(quiet=True)
    adv = atk(x, target)
    net.train()
    return adv


def run(opt_name, lr, epochs, soft_labels, attack):
    torch.manual_seed(0)
    x, y, soft = data()
    net = get_network("ConvNetASwish")
    init(net)
    make = (lambda lr_: torch.optim.SGD(net.parameters(), lr=lr_, momentum=0.9, weight_decay=0.0005)) \
        if opt_name == "sgd" else (lambda lr_: torch.optim.Adam(net.parameters(), lr=lr_, weight_decay=0.0005))
    optimizer = make(lr)
    losses = []
    net.train()
    for ep in range(epochs + 1):
        img = x
        if attack:
            img = pgd_targeted(net, x, (y + 1) % 10)
        out = net(img)
        loss = F.cross_entropy(out, soft if soft_labels else y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if ep == epochs // 2 + 1:
            lr *= 0.1
            optimizer = make(lr)
    net.eval()
    with torch.no_grad():
        logits = net(x)
    return torch.tensor(losses), logits


def trades_case(T):
    g = torch.Generator().manual_seed(9)
    B, K, beta = 5, 10, 6.0
    zn = (torch.randn(B, K, generator=g) * 2).requires_grad_(True)
    za = (torch.randn(B, K, generator=g) * 2).requires_grad_(True)
    y = torch.tensor([0, 3, 9, 9, 4])
    loss = F.cross_entropy(zn, y) + beta / B * nn.KLDivLoss(reduction="sum")(F.log_softmax(za, 1), F.softmax(zn, 1))
    dn, da = torch.autograd.grad(loss, [zn, za])
    T.update({"trades.zn": zn, "trades.za": za, "trades.y": y.float(), "trades.loss": loss.view(1),
              "trades.dn": dn, "trades.da": da})


def main():
    T = {}
    for name, args in {"sgd": ("sgd", 0.01, 6, False, False), "adam": ("adam", 1e-3, 4, True, False),
                       "pgd": ("sgd", 0.01, 2, False, True)}.items():
        losses, logits = run(*args)
        T[name + ".losses"] = losses
        T[name + ".logits"] = logits
        print(name, losses.numpy())
    trades_case(T)
    write_fixture(OUT, T)
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
