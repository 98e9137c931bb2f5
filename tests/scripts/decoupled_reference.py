"""The decoupled methods end to end in PyTorch, the reference side of `make distill-fidelity`
(run by hand or by that target, with Debian's python3-torch and python3-torchvision):

    /usr/bin/python3 tests/scripts/decoupled_reference.py --data ../shared/data --out DIR \\
        [--teacher T.pth | --squeeze-epochs 5] [--methods SRe2L CDA G-VBSM DELT] [--ipc 10] ...

Steps, each our port of the official code (tests/scripts/gen_decoupled_fixtures.py holds the
step-level ports that the suite checks beard against; this script runs the same loops at full
length):
  squeeze  SRe2L's squeeze_cifar.py: torchvision ResNet-18 with a 3x3 stride-1 conv1 and no
           maxpool (or DC's ConvNet with BatchNorm, --arch ConvNetBN), SGD 0.1 / 0.9 / 5e-4,
           CosineAnnealingLR, batch 128, RandomCrop(32, 4) + flip; the state_dict is saved in
           torchvision's layout, which `beard distill` and `beard train` load;
  recover  SRe2L (recover_cifar.py), CDA (recover_cda_tiny.py at 32 px), G-VBSM (one teacher,
           Branch_CIFAR_10; the clip with the dataset's constants, as beard's CLI default) and
           DELT (data_selection.py medium + recover.py early-late), images written as the
           methods release them (JPEG, PNG for G-VBSM) with PIL;
  relabel  SRe2L's relabel_cifar.py: mixup 0.8, KL at T = 30, AdamW 1e-3 / 0.01,
           CosineAnnealingLR, batch 128, RandomCrop + flip, the teacher in train mode, a
           student of --student-arch (default ConvNet, BEARD's model), --seeds runs;
  random   --ipc random real images per class from the training set (PNG), relabelled alike.
Writes DIR/reference.json: per method the students' test accuracies and the seconds each
stage took.
"""
import argparse
import json
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_decoupled_fixtures as P  # noqa: E402
from torch_models import get_network  # noqa: E402

MEAN, STD = P.CIFAR_MEAN, P.CIFAR_STD
IN_MEAN, IN_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def load_cifar(data_dir, train):
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] if train else ["test_batch.bin"]
    xs, ys = [], []
    for n in names:
        raw = np.fromfile(os.path.join(data_dir, "cifar-10-batches-bin", n), dtype=np.uint8).reshape(-1, 3073)
        ys.append(raw[:, 0].astype(np.int64))
        xs.append(raw[:, 1:].reshape(-1, 3, 32, 32))
    return np.concatenate(xs), np.concatenate(ys)


def normalise(u8, mean=MEAN, std=STD):
    x = torch.from_numpy(u8).float() / 255.0
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def make_model(arch, K=10):
    if arch in ("ResNet18", "resnet18_modified"):  # beard's zoo name: resnet18_modified
        m = torchvision.models.resnet18(num_classes=K)
        m.conv1 = nn.Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
        m.maxpool = nn.Identity()
        return m
    return get_network(arch, 3, K, (32, 32))


def crop_flip_batch(u8_batch):
    """the data loaders' RandomCrop(32, padding=4) + RandomHorizontalFlip per image, on pixels"""
    x = torch.from_numpy(np.ascontiguousarray(u8_batch)).float() / 255.0
    out = torch.empty_like(x)
    for b in range(x.shape[0]):
        i, j = random.randint(0, 8), random.randint(0, 8)  # torch.randint(0, 40 - 32 + 1)
        img = TF.crop(TF.pad(x[b], [4, 4, 4, 4], fill=0), i, j, 32, 32)
        if torch.rand(1) < 0.5:
            img = TF.hflip(img)
        out[b] = img
    return (out - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def accuracy(net, x, y):
    net.eval()
    with torch.no_grad():
        c = sum(int((net(x[i:i + 256]).argmax(1) == y[i:i + 256]).sum()) for i in range(0, len(y), 256))
    return 100.0 * c / len(y)


def squeeze(a, xtr, ytr, xte, yte):
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    net = make_model(a.arch)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=a.squeeze_epochs)
    t0 = time.time()
    for ep in range(a.squeeze_epochs):
        net.train()
        perm = torch.randperm(len(ytr)).numpy()
        for s in range(0, len(perm), 128):
            idx = perm[s:s + 128]
            x = crop_flip_batch(xtr[idx])
            opt.zero_grad()
            F.cross_entropy(net(x), torch.from_numpy(ytr[idx])).backward()
            opt.step()
        sched.step()
        print(f"squeeze epoch {ep}: {time.time() - t0:.0f}s", flush=True)
    acc = accuracy(net, normalise(xte), torch.from_numpy(yte))
    path = os.path.join(a.out, "teacher.pth")
    torch.save(net.state_dict(), path)
    return path, acc, time.time() - t0


def load_teacher(a, path):
    net = make_model(a.arch)
    sd = torch.load(path, map_location="cpu")
    if "state_dict" in sd:
        sd = sd["state_dict"]
    net.load_state_dict({k.replace("module.", ""): v for k, v in sd.items()})
    net.eval()
    for p in net.parameters():
        p.requires_grad = False
    return net


def save_folder(out, x, y, ids, ext):
    px = x.clone()
    for c in range(3):
        px[:, c] = torch.clamp(px[:, c] * STD[c] + MEAN[c], 0, 1)
    for b in range(px.shape[0]):
        d = os.path.join(out, f"new{int(y[b]):03d}")
        os.makedirs(d, exist_ok=True)
        img = Image.fromarray((px[b].numpy().transpose(1, 2, 0) * 255).astype(np.uint8))
        img.save(os.path.join(d, f"class{int(y[b]):03d}_id{int(ids[b]):03d}.{ext}"))


def recover_sre2l_family(a, net, method, out):
    it_total = a.iterations[method]
    lr, r_bn = {"SRe2L": (0.25, 0.01), "CDA": (0.4, 0.05)}[method]
    step = P.Sre2lStep("cda" if method == "CDA" else "sre2l", lr, r_bn, 10.0, it_total, MEAN, STD)
    for ipc_id in range(a.ipc):
        targets = torch.arange(10)
        inputs = torch.randn((10, 3, 32, 32), requires_grad=True)
        opt = torch.optim.Adam([inputs], lr=lr, betas=[0.5, 0.9], eps=1e-8)
        for it in range(it_total):
            d = {"roll": (random.randint(0, 4), random.randint(0, 4))}
            if method == "CDA":
                mc = P.cda_min_crop(it, it_total, 1.0, "cosine")
                d["crop"] = T.RandomResizedCrop.get_params(inputs, [mc, 1.0], [3.0 / 4.0, 4.0 / 3.0])
                d["flip"] = bool(torch.rand(1) < 0.5)
            r = step.run(net, inputs, opt, targets, it, d)
            if it % 20 == 0:
                print(f"{method} ipc {ipc_id} it {it}: loss {r['loss']:.4f}", flush=True)
        save_folder(out, inputs.detach(), targets, [ipc_id] * 10, "jpg")


def recover_gvbsm(a, net, xtr_u8, out):
    it_total = a.iterations["G-VBSM"]
    # the statistics pass: RandomCrop + flip, shuffled, batches of 64, eval-mode teacher
    perm = torch.randperm(len(xtr_u8)).numpy()
    train = crop_flip_batch(xtr_u8[perm])
    run = P.gvbsm_train_stats(net, train, 64)
    rec = P.GvbsmRecover(net, run, mean=MEAN, std=STD)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    total = 10 * a.ipc
    targets = torch.arange(10).repeat_interleave(a.ipc)  # turn_index: class-major
    ids = torch.arange(a.ipc).repeat(10)
    for s in range(0, total, 100):
        tg, idb = targets[s:s + 100], ids[s:s + 100]
        inputs = torch.randn((len(tg), 3, 32, 32), requires_grad=True)
        opt = torch.optim.Adam([inputs], lr=0.05, betas=[0.5, 0.9], eps=1e-8)
        for it in range(it_total):
            d = {"crop": (random.randint(0, 8), random.randint(0, 8)), "flip": bool(torch.rand(1) < 0.5),
                 "roll": (random.randint(0, 32), random.randint(0, 32)),
                 "drop": [random.random() > 1.0 - 0.4 for _ in convs]}
            r = rec.iteration(inputs, tg, opt, 0.05, it, it_total, d)
            if it % 100 == 0:  # the hooked verifier (the last teacher: this one)
                rec.observe(inputs.detach(), [random.random() > 1.0 - 0.4 for _ in convs])
            if it % 20 == 0:
                print(f"G-VBSM it {it}: loss {r['loss']:.4f} nuc {r['loss_nuc']:.4f}", flush=True)
        save_folder(out, inputs.detach(), tg, idb, "png")


def recover_delt(a, net, xtr_u8, ytr, out):
    it_total, R = a.iterations["DELT"], a.delt_round
    # data_selection.py: scores with ImageNet's constants on CIFAR (its loader), medium criterion
    with torch.no_grad():
        x_rank = normalise(xtr_u8, IN_MEAN, IN_STD)
        prob = torch.cat([F.softmax(net(x_rank[i:i + 200]), 1) for i in range(0, len(ytr), 200)])
        score = prob[torch.arange(len(ytr)), torch.from_numpy(ytr)].numpy()
    init, targets = [], []
    for c in range(10):
        idx = np.nonzero(ytr == c)[0]
        order = idx[np.argsort(score[idx], kind="stable")]
        mid, pos_neg = int(np.ceil(len(order) / 2)), -1
        for k in range(a.ipc):
            init.append(order[mid + int(pos_neg * (k + 1) / 2)])
            pos_neg *= -1
            targets.append(c)
    inputs = normalise(xtr_u8[np.array(init)]).clone().requires_grad_(True)
    targets = torch.tensor(targets)
    slicing = P.delt_slicing(a.ipc, {c: it_total for c in range(10)}, R, targets, {})
    slicing = [s for s in slicing if s]
    step = P.Sre2lStep("delt", 0.25, 0.01, 10.0, it_total, MEAN, STD)
    opt = torch.optim.Adam([inputs], lr=0.25, betas=[0.5, 0.9], eps=1e-8)
    for it in range(it_total):
        active = slicing[it // R]
        mc = P.cda_min_crop(it, it_total, 1.0, "cosine")
        d = {"crop": T.RandomResizedCrop.get_params(inputs, [mc, 1.0], [3.0 / 4.0, 4.0 / 3.0]),
             "flip": bool(torch.rand(1) < 0.5), "roll": (random.randint(0, 0), random.randint(0, 0))}
        r = step.run(net, inputs, opt, targets, it, d, active=active)
        if it % 20 == 0:
            print(f"DELT it {it} ({len(active)} active): loss {r['loss']:.4f}", flush=True)
    save_folder(out, inputs.detach(), targets, [i % a.ipc for i in range(len(targets))], "jpg")


def read_folder(d):
    xs, ys = [], []
    for ci, c in enumerate(sorted(os.listdir(d))):
        for f in sorted(os.listdir(os.path.join(d, c))):
            xs.append(np.asarray(Image.open(os.path.join(d, c, f)).convert("RGB")).transpose(2, 0, 1))
            ys.append(ci)
    return np.ascontiguousarray(np.stack(xs)), np.array(ys)


def relabel(a, folder, teacher_path, seed, xte, yte):
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    x_u8, y = read_folder(folder)
    teacher = load_teacher(a, teacher_path)
    teacher.train()  # relabel_cifar.py never calls model_teacher.eval()
    net = make_model(a.student_arch)
    opt = torch.optim.AdamW(net.parameters(), lr=0.001, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=a.relabel_epochs)
    kl = nn.KLDivLoss(reduction="batchmean")
    for ep in range(a.relabel_epochs):
        net.train()
        perm = torch.randperm(len(y)).numpy()
        for s in range(0, len(perm), 128):
            idx = perm[s:s + 128]
            x = crop_flip_batch(x_u8[idx])
            lam = np.random.beta(0.8, 0.8)
            index = torch.randperm(x.shape[0])
            x = lam * x + (1 - lam) * x[index, :]
            opt.zero_grad()
            out = net(x)
            with torch.no_grad():
                soft = teacher(x)
            loss = kl(F.log_softmax(out / 30.0, dim=1), F.softmax(soft / 30.0, dim=1))
            loss.backward()
            opt.step()
        sched.step()
    return accuracy(net, xte, yte)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", default="resnet18_modified",
                    help="teacher: resnet18_modified (alias ResNet18: torchvision's, modified) or ConvNetBN")
    ap.add_argument("--student-arch", default="ConvNet")
    ap.add_argument("--teacher", default=None, help="a squeezed teacher (else squeeze one)")
    ap.add_argument("--squeeze-epochs", type=int, default=5)
    ap.add_argument("--methods", nargs="*", default=["SRe2L", "CDA", "G-VBSM", "DELT", "random"])
    ap.add_argument("--ipc", type=int, default=10)
    ap.add_argument("--sre2l-iterations", type=int, default=40)
    ap.add_argument("--cda-iterations", type=int, default=40)
    ap.add_argument("--gvbsm-iterations", type=int, default=60)
    ap.add_argument("--delt-iterations", type=int, default=80)
    ap.add_argument("--delt-round", type=int, default=20)
    ap.add_argument("--relabel-epochs", type=int, default=100)
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    a.iterations = {"SRe2L": a.sre2l_iterations, "CDA": a.cda_iterations, "G-VBSM": a.gvbsm_iterations,
                    "DELT": a.delt_iterations}
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    xtr, ytr = load_cifar(a.data, True)
    xte_u8, yte = load_cifar(a.data, False)
    xte, yte = normalise(xte_u8), torch.from_numpy(yte)
    res = {"settings": {k: v for k, v in vars(a).items() if k != "iterations"}, "iterations": a.iterations}
    path_json = os.path.join(a.out, "reference.json")
    if a.teacher:
        tpath = a.teacher
        res["teacher_accuracy"] = accuracy(load_teacher(a, tpath), xte, yte)
    else:
        tpath, acc, sec = squeeze(a, xtr, ytr, xte_u8, yte.numpy())
        res["teacher_accuracy"], res["squeeze_seconds"] = acc, sec
    res["teacher"] = tpath
    print(f"teacher {tpath}: {res['teacher_accuracy']:.2f}%", flush=True)
    for m in a.methods:
        torch.manual_seed(a.seed)
        random.seed(a.seed)
        folder = os.path.join(a.out, m)
        t0 = time.time()
        net = load_teacher(a, tpath)
        if m in ("SRe2L", "CDA"):
            recover_sre2l_family(a, net, m, folder)
        elif m == "G-VBSM":
            recover_gvbsm(a, net, xtr, folder)
        elif m == "DELT":
            recover_delt(a, net, xtr, ytr, folder)
        elif m == "random":
            rs = np.random.RandomState(a.seed)
            pick = np.concatenate([rs.choice(np.nonzero(ytr == c)[0], a.ipc, replace=False) for c in range(10)])
            save_folder(folder, normalise(xtr[pick]), ytr[pick], [i % a.ipc for i in range(len(pick))], "png")
        rsec = time.time() - t0
        accs = []
        t1 = time.time()
        for s in a.seeds:
            accs.append(relabel(a, folder, tpath, s, xte, yte))
            print(f"{m} seed {s}: {accs[-1]:.2f}%", flush=True)
        res[m] = {"accuracies": accs, "mean": float(np.mean(accs)), "std": float(np.std(accs)),
                  "recover_seconds": rsec, "relabel_seconds": time.time() - t1, "folder": folder}
        with open(path_json, "w") as f:
            json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
