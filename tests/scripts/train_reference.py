"""PyTorch's figure for beard's training fidelity check: BEARD/DC-bench's evaluate_synset recipe
(Code/eva_utils.py: SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 256 shuffled, cross-entropy,
range(epochs + 1) epochs, lr x0.1 and a new optimizer after epoch epochs // 2 + 1, optionally DSA's
color_crop_cutout_flip_scale_rotate in mode 'S') on a res_*.pt distilled set, one model per seed,
test accuracy on the CIFAR-10 test images in ../shared/data (ToTensor + Normalize, DC's constants).
Run by hand with a python that has torch (CI has none):

    /usr/bin/python3 tests/scripts/train_reference.py --epochs 300 --seeds 0 1 2 \\
        --out tests/fixtures/train/reference.json

The output JSON holds the per-seed accuracies (percent), their mean and std (np.std, as BEARD),
the wall time per run, the threads and the torch version; `make train-fidelity` compares beard's
figure with it. Models come from torch's default initialisation seeded per run (DC re-seeds
from the clock instead; seeding makes the figure reproducible).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import VARIANTS, get_network  # noqa: E402
import zoo_models  # noqa: E402


def make_net(arch, channel=3, num_classes=10, im_size=32):
    """ConvNet variants from torch_models, every other architecture from zoo_models"""
    if arch in VARIANTS:
        return get_network(arch, channel, num_classes, (im_size, im_size))
    return zoo_models.build(arch, channel, num_classes, im_size)

MEAN = [0.4914, 0.4822, 0.4465]
STD = [0.2023, 0.1994, 0.2010]


# ---- DC's DiffAugment (utils.py), align_corners spelled out as PyTorch >= 1.3 defaults it
class ParamDiffAug:
    def __init__(self):
        self.aug_mode = 'S'
        self.prob_flip = 0.5
        self.ratio_scale = 1.2
        self.ratio_rotate = 15.0
        self.ratio_crop_pad = 0.125
        self.ratio_cutout = 0.5
        self.brightness = 1.0
        self.saturation = 2.0
        self.contrast = 0.5


def rand_scale(x, param):
    ratio = param.ratio_scale
    sx = torch.rand(x.shape[0]) * (ratio - 1.0 / ratio) + 1.0 / ratio
    sy = torch.rand(x.shape[0]) * (ratio - 1.0 / ratio) + 1.0 / ratio
    theta = torch.tensor([[[sx[i], 0, 0], [0, sy[i], 0]] for i in range(x.shape[0])], dtype=torch.float)
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


def rand_rotate(x, param):
    ratio = param.ratio_rotate
    theta = (torch.rand(x.shape[0]) - 0.5) * 2 * ratio / 180 * float(np.pi)
    theta = torch.tensor([[[torch.cos(theta[i]), torch.sin(-theta[i]), 0],
                           [torch.sin(theta[i]), torch.cos(theta[i]), 0]] for i in range(x.shape[0])],
                         dtype=torch.float)
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


def rand_flip(x, param):
    randf = torch.rand(x.size(0), 1, 1, 1)
    return torch.where(randf < param.prob_flip, x.flip(3), x)


def rand_brightness(x, param):
    randb = torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype)
    return x + (randb - 0.5) * param.brightness


def rand_saturation(x, param):
    x_mean = x.mean(dim=1, keepdim=True)
    rands = torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype)
    return (x - x_mean) * (rands * param.saturation) + x_mean


def rand_contrast(x, param):
    x_mean = x.mean(dim=[1, 2, 3], keepdim=True)
    randc = torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype)
    return (x - x_mean) * (randc + param.contrast) + x_mean


def rand_crop(x, param):
    ratio = param.ratio_crop_pad
    shift_x, shift_y = int(x.size(2) * ratio + 0.5), int(x.size(3) * ratio + 0.5)
    translation_x = torch.randint(-shift_x, shift_x + 1, size=[x.size(0), 1, 1])
    translation_y = torch.randint(-shift_y, shift_y + 1, size=[x.size(0), 1, 1])
    grid_batch, grid_x, grid_y = torch.meshgrid(torch.arange(x.size(0)), torch.arange(x.size(2)),
                                                torch.arange(x.size(3)), indexing="ij")
    grid_x = torch.clamp(grid_x + translation_x + 1, 0, x.size(2) + 1)
    grid_y = torch.clamp(grid_y + translation_y + 1, 0, x.size(3) + 1)
    x_pad = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return x_pad.permute(0, 2, 3, 1).contiguous()[grid_batch, grid_x, grid_y].permute(0, 3, 1, 2)


def rand_cutout(x, param):
    ratio = param.ratio_cutout
    cutout_size = int(x.size(2) * ratio + 0.5), int(x.size(3) * ratio + 0.5)
    offset_x = torch.randint(0, x.size(2) + (1 - cutout_size[0] % 2), size=[x.size(0), 1, 1])
    offset_y = torch.randint(0, x.size(3) + (1 - cutout_size[1] % 2), size=[x.size(0), 1, 1])
    grid_batch, grid_x, grid_y = torch.meshgrid(torch.arange(x.size(0)), torch.arange(cutout_size[0]),
                                                torch.arange(cutout_size[1]), indexing="ij")
    grid_x = torch.clamp(grid_x + offset_x - cutout_size[0] // 2, min=0, max=x.size(2) - 1)
    grid_y = torch.clamp(grid_y + offset_y - cutout_size[1] // 2, min=0, max=x.size(3) - 1)
    mask = torch.ones(x.size(0), x.size(2), x.size(3), dtype=x.dtype)
    mask[grid_batch, grid_x, grid_y] = 0
    return x * mask.unsqueeze(1)


AUGMENT_FNS = {'color': [rand_brightness, rand_saturation, rand_contrast], 'crop': [rand_crop],
               'cutout': [rand_cutout], 'flip': [rand_flip], 'scale': [rand_scale], 'rotate': [rand_rotate]}


def diff_augment(x, strategy, param):
    pbties = strategy.split('_')
    p = pbties[torch.randint(0, len(pbties), size=(1,)).item()]
    for f in AUGMENT_FNS[p]:
        x = f(x, param)
    return x.contiguous()


# ---- data
def load_test(data_dir, limit=0):
    raw = np.fromfile(os.path.join(data_dir, "cifar-10-batches-bin", "test_batch.bin"), dtype=np.uint8)
    raw = raw.reshape(-1, 3073)
    if limit:
        raw = raw[:limit]
    y = torch.from_numpy(raw[:, 0].astype(np.int64))
    x = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy()).float().div(255)
    for c in range(3):
        x[:, c] = (x[:, c] - MEAN[c]) / STD[c]
    return x, y


def load_pool(path, exp):
    try:  # torch >= 2.6 loads weights only by default; res files hold numpy scalars
        d = torch.load(path, weights_only=False)
    except TypeError:
        d = torch.load(path)
    images, labels = d['data'][exp]
    return images.detach().float(), labels.detach().long()


# ---- the recipe (evaluate_synset + epoch)
def train_one(images, labels, x_test, y_test, epochs, seed, aug, batch=256, lr=0.01, arch="ConvNet"):
    torch.manual_seed(seed)
    net = make_net(arch)
    lr_schedule = [epochs // 2 + 1]
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=0.0005)
    criterion = nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=batch,
                                         shuffle=True, num_workers=0)
    param = ParamDiffAug()
    t0 = time.time()
    net.train()
    for ep in range(epochs + 1):
        for img, lab in loader:
            if aug:
                img = diff_augment(img, 'color_crop_cutout_flip_scale_rotate', param)
            loss = criterion(net(img), lab)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if ep in lr_schedule:
            lr *= 0.1
            optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=0.0005)
    seconds = time.time() - t0
    net.eval()
    with torch.no_grad():
        correct = sum(int((net(x_test[i:i + 256]).argmax(1) == y_test[i:i + 256]).sum())
                      for i in range(0, len(y_test), 256))
    return 100.0 * correct / len(y_test), seconds


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.environ.get("BEARD_SHARED", os.path.join(here, "..", "..", "..", "shared"))
    ap.add_argument("--pool", default=os.path.join(shared, "beard", "dataset_pool",
                                                    "res_RandomReal_CIFAR10_ConvNet_10ipc.pt"))
    ap.add_argument("--data", default=os.path.join(shared, "data"))
    ap.add_argument("--exp", type=int, default=-1)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--aug", action="store_true", help="DSA augmentation (the figure of acceptance 1 has none)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--arch", default="ConvNet", help="any of beard's architectures (tests/scripts/zoo_models.py)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    images, labels = load_pool(a.pool, a.exp)
    x_test, y_test = load_test(a.data)
    accs, secs = [], []
    for s in a.seeds:
        acc, sec = train_one(images, labels, x_test, y_test, a.epochs, s, a.aug, arch=a.arch)
        accs.append(acc)
        secs.append(sec)
        print(f"seed {s}: test accuracy {acc:.2f}% ({sec:.1f}s)", flush=True)
    res = {"arch": a.arch, "pool": os.path.basename(a.pool), "experiment": a.exp, "epochs": a.epochs, "aug": a.aug,
           "seeds": a.seeds, "accuracies": accs, "mean_accuracy": float(np.mean(accs)),
           "std_accuracy": float(np.std(accs)), "seconds": secs, "n_test": len(y_test),
           "threads": a.threads, "torch": torch.__version__}
    print(f"mean {res['mean_accuracy']:.2f} +- {res['std_accuracy']:.2f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
