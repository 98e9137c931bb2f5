"""The deterministic attacks' per-sample disagreements with torchattacks at 761 images
(`make fidelity` prints them with beard's prediction), sample by sample: torchattacks 3.5.1
run on each image alone in float32 (it reproduces the fixture's batched run) and in float64
(model, images and its own tensors). Where float64 ends on beard's class, rounding decides
the sample, not the algorithm. The cases are those of the run of 2 December 2026.

    /usr/bin/python3 tests/scripts/disagreements_float64.py
"""
import os
import sys

import torch
import torchattacks as ta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import ConvNet, Normalized  # noqa: E402
from gen_attack_refs import MEAN, STD, load_cifar_bin  # noqa: E402

torch.set_num_threads(1)
S = os.environ.get("BEARD_SHARED", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared"))
xpix, y = load_cifar_bin(S + "/data/cifar-10-batches-bin/test_batch.bin", 761)
mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
sd = torch.load(S + "/beard/model_pool/BACON_ConvNet_CIFAR10_50_None_0.6995.pth", map_location="cpu")
MK = {"NIFGSM": lambda m: ta.NIFGSM(m), "UPGD_dlr": lambda m: ta.UPGD(m, loss="dlr"), "SINIFGSM": lambda m: ta.SINIFGSM(m)}
# (attack, semantics, targeted, samples); beard predicts 9, 8, 9; 7, 5; 8; 2
cases = [("NIFGSM", "pixel", True, [114, 521, 684]), ("UPGD_dlr", "beard", False, [27, 147]),
         ("SINIFGSM", "beard", True, [717]), ("SINIFGSM", "pixel", True, [6])]
for name, sem, tg, idx in cases:
    for dt in (torch.float32, torch.float64):
        net = ConvNet(3, 10); net.load_state_dict(sd); net.eval(); net = net.to(dt)
        model = net if sem == "beard" else Normalized(net).to(dt)
        x = ((xpix - mean) / std if sem == "beard" else xpix).to(dt)
        atk = MK[name](model)
        if tg: atk.set_mode_targeted_by_label(quiet=True)
        out = []
        for i in idx:
            xb, yb = x[i:i + 1], y[i:i + 1]
            adv = atk(xb, (yb + 1) % 10 if tg else yb)
            with torch.no_grad(): z = model(adv)[0]
            out.append(f"{i}: pred {int(z.argmax())} (label {int(yb)})")
        print(name, sem, "targeted" if tg else "untargeted", str(dt).split('.')[-1], "; ".join(out), flush=True)
