"""BEARD's black-box log lines on the checkpoints in ../shared (run by hand):

    python tests/scripts/gen_blackbox_log.py --pool ../shared/beard/model_pool \
        --data ../shared/data/cifar-10-batches-bin/test_batch.bin --limit 64 \
        --out tests/fixtures/evaluate/blackbox_bacon64.txt

A port of BEARD's Code/evaluate_model_blackbox.py and eva_utils.epoch_blackbox (read as
the specification, github zhouzhengqd/BEARD): the surrogate (load_file, BACON) is attacked
with BEARD's parameters on each test batch (256, normalised tensors, torchattacks 3.5.1),
the examples scored on the surrogate and on each model of eval_nets (here the six of
../shared, in BEARD's order DC, DSA, MTT, DM, IDM, BACON), and one line per attack is
formatted with BEARD's format string. The attacks are the deterministic ones of BEARD's
black-box config, so that the accuracies are reproducible to the sample. The attack times are written as 0.00
(machine-dependent; the C test masks them and compares everything else byte for byte).
Writes the message part of each line (no timestamp), one per line.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torchattacks

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import ConvNet  # noqa: E402

MEAN = [0.4914, 0.4822, 0.4465]
STD = [0.2023, 0.1994, 0.2010]
FILES = {"DC": "DC_ConvNet_CIFAR10_50_None.pth", "DSA": "DSA_ConvNet_CIFAR10_50_None_0.6048.pth",
         "MTT": "MTT_ConvNet_CIFAR10_50_None_0.6966.pth", "DM": "DM_ConvNet_CIFAR10_50_None.pth",
         "IDM": "IDM_ConvNet_CIFAR10_50_None_0.6691.pth", "BACON": "BACON_ConvNet_CIFAR10_50_None_0.6995.pth"}
ATTACKS = ["Clean", "FGSM", "PGD"]


def attack_batch(net, name, img, lab, target):
    if name == "PGD":
        atk = torchattacks.PGD(net, eps=8 / 255, alpha=2 / 225, steps=10, random_start=False)
    elif name == "FGSM":
        atk = torchattacks.FGSM(net, eps=8 / 255)
    elif name == "PGD_L2":
        atk = torchattacks.PGDL2(net, eps=128 / 255, alpha=15 / 255, steps=10, random_start=False)
    else:
        return img
    if target:
        atk.set_mode_targeted_by_label(quiet=True)
        return atk(img, (lab + 1) % 10)
    return atk(img, lab)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--limit", type=int, default=64)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    raw = np.fromfile(a.data, dtype=np.uint8).reshape(-1, 3073)[:a.limit]
    lab_all = torch.from_numpy(raw[:, 0].astype(np.int64))
    x = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy()).float().div(255)
    x = (x - torch.tensor(MEAN).reshape(1, 3, 1, 1)) / torch.tensor(STD).reshape(1, 3, 1, 1)
    nets = {}
    for k, f in FILES.items():
        n = ConvNet(3, 10)
        n.load_state_dict(torch.load(os.path.join(a.pool, f), map_location="cpu"))
        nets[k] = n.eval()
    net_eval = nets["BACON"]  # load_file
    lines = []
    for attack in ATTACKS:
        accs, evals = {}, {}
        for target in [True, False]:
            eval_acc = {name: 0 for name in nets}
            acc_avg, num = 0, 0
            for i in range(0, len(x), 256):
                img, lab = x[i:i + 256], lab_all[i:i + 256]
                img = attack_batch(net_eval, attack, img, lab, target)
                out = net_eval(img)
                acc_avg += np.sum(np.equal(np.argmax(out.data.numpy(), axis=-1), lab.numpy()))
                for name, model in nets.items():
                    with torch.no_grad():
                        eo = model(img)
                    eval_acc[name] += np.sum(np.equal(np.argmax(eo.numpy(), axis=-1), lab.numpy()))
                num += lab.shape[0]
            accs[target] = acc_avg / num
            evals[target] = [{name: v / num for name, v in eval_acc.items()}]
        line = ("%s attack on %s: final acc is:  target_attack: %.2f +- %.2f, attack time is %.2f; "
                "non_target_attack: %.2f +- %.2f, attack time is %.2f, dataset: %s, IPC: %s, DSA:%r, num_eval: %d, "
                "aug:%s , model: %s, attack_type: %s, target_attack: %s, src_dataset: %s, "
                "eval_accuracies_target: {%s}, eval_accuracies_non_target: {%s}" % (
                    attack, "BACON", accs[True] * 100, 0.0, 0.0, accs[False] * 100, 0.0, 0.0, "CIFAR10", "50", True, 0,
                    False, "ConvNet", ATTACKS, [True, False], True, evals[True], evals[False]))
        print(line)
        lines.append(line)
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
