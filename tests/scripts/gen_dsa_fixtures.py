"""Reference tensors for tests/test_dsa.c: DC's DSA ops (VICO-UoE/DatasetCondensation utils.py,
identical in BEARD's Code/eva_utils.py) evaluated by PyTorch on fixed random parameters.
Run by hand with a python that has torch:
    /usr/bin/python3 tests/scripts/gen_dsa_fixtures.py
It writes tests/fixtures/train/dsa.bin (BEARDFIX format, see tests/scripts/fixture.py).

Each op below is DC's function with its torch.rand / torch.randint calls replaced by the
explicit per-sample draws `p` (the same draws test_dsa.c puts into a DsaSample), so both
sides apply the same transformation. Two cases per op:
  <op>.small: B=4, C=3, H=12, W=10 (non-square, crop/cutout offsets at their extremes),
              forward output and autograd's input gradient for a random upstream `dout`;
  <op>.big:   B=1, C=3, H=W=32 (the CIFAR shape), forward output only, for scale/rotate.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import write_fixture  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "train", "dsa.bin")

# DC's ParamDiffAug
prob_flip, ratio_scale, ratio_rotate, ratio_crop_pad = 0.5, 1.2, 15.0, 0.125
ratio_cutout, brightness, saturation, contrast = 0.5, 1.0, 2.0, 0.5


def rand_scale(x, p):
    sx, sy = p["scale_x"], p["scale_y"]
    theta = [[[sx[i], 0, 0], [0, sy[i], 0]] for i in range(x.shape[0])]
    theta = torch.tensor(theta, dtype=torch.float)
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


def rand_rotate(x, p):
    theta = p["angle"]
    theta = [[[torch.cos(theta[i]), torch.sin(-theta[i]), 0], [torch.sin(theta[i]), torch.cos(theta[i]), 0]]
             for i in range(x.shape[0])]
    theta = torch.tensor(theta, dtype=torch.float)
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


def rand_flip(x, p):
    randf = torch.where(p["flip"] > 0, torch.zeros(()), torch.ones(())).view(-1, 1, 1, 1)
    return torch.where(randf < prob_flip, x.flip(3), x)


def rand_color(x, p):
    randb = p["brightness"].view(-1, 1, 1, 1)
    x = x + (randb - 0.5) * brightness
    x_mean = x.mean(dim=1, keepdim=True)
    rands = p["saturation"].view(-1, 1, 1, 1)
    x = (x - x_mean) * (rands * saturation) + x_mean
    x_mean = x.mean(dim=[1, 2, 3], keepdim=True)
    randc = p["contrast"].view(-1, 1, 1, 1)
    x = (x - x_mean) * (randc + contrast) + x_mean
    return x


def rand_crop(x, p):
    translation_x = p["crop_x"].long().view(-1, 1, 1)
    translation_y = p["crop_y"].long().view(-1, 1, 1)
    grid_batch, grid_x, grid_y = torch.meshgrid(
        torch.arange(x.size(0), dtype=torch.long),
        torch.arange(x.size(2), dtype=torch.long),
        torch.arange(x.size(3), dtype=torch.long), indexing="ij")
    grid_x = torch.clamp(grid_x + translation_x + 1, 0, x.size(2) + 1)
    grid_y = torch.clamp(grid_y + translation_y + 1, 0, x.size(3) + 1)
    x_pad = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return x_pad.permute(0, 2, 3, 1).contiguous()[grid_batch, grid_x, grid_y].permute(0, 3, 1, 2)


def rand_cutout(x, p):
    cutout_size = int(x.size(2) * ratio_cutout + 0.5), int(x.size(3) * ratio_cutout + 0.5)
    offset_x = p["cutout_x"].long().view(-1, 1, 1)
    offset_y = p["cutout_y"].long().view(-1, 1, 1)
    grid_batch, grid_x, grid_y = torch.meshgrid(
        torch.arange(x.size(0), dtype=torch.long),
        torch.arange(cutout_size[0], dtype=torch.long),
        torch.arange(cutout_size[1], dtype=torch.long), indexing="ij")
    grid_x = torch.clamp(grid_x + offset_x - cutout_size[0] // 2, min=0, max=x.size(2) - 1)
    grid_y = torch.clamp(grid_y + offset_y - cutout_size[1] // 2, min=0, max=x.size(3) - 1)
    mask = torch.ones(x.size(0), x.size(2), x.size(3), dtype=x.dtype)
    mask[grid_batch, grid_x, grid_y] = 0
    return x * mask.unsqueeze(1)


OPS = {"color": rand_color, "crop": rand_crop, "cutout": rand_cutout, "flip": rand_flip,
       "scale": rand_scale, "rotate": rand_rotate}


def draws(B, H, W, g):
    """Per-sample parameters drawn as DC draws them (ranges included)."""
    shift_x, shift_y = int(H * ratio_crop_pad + 0.5), int(W * ratio_crop_pad + 0.5)
    cut_x, cut_y = int(H * ratio_cutout + 0.5), int(W * ratio_cutout + 0.5)
    p = {
        "brightness": torch.rand(B, generator=g),
        "saturation": torch.rand(B, generator=g),
        "contrast": torch.rand(B, generator=g),
        "crop_x": torch.randint(-shift_x, shift_x + 1, (B,), generator=g).float(),
        "crop_y": torch.randint(-shift_y, shift_y + 1, (B,), generator=g).float(),
        "cutout_x": torch.randint(0, H + (1 - cut_x % 2), (B,), generator=g).float(),
        "cutout_y": torch.randint(0, W + (1 - cut_y % 2), (B,), generator=g).float(),
        "flip": (torch.rand(B, generator=g) < prob_flip).float(),
        "scale_x": torch.rand(B, generator=g) * (ratio_scale - 1.0 / ratio_scale) + 1.0 / ratio_scale,
        "scale_y": torch.rand(B, generator=g) * (ratio_scale - 1.0 / ratio_scale) + 1.0 / ratio_scale,
        "angle": (torch.rand(B, generator=g) - 0.5) * 2 * ratio_rotate / 180 * float(np.pi),
    }
    # the extremes of the integer ranges, so clamping at both borders is exercised
    if B >= 4:
        p["crop_x"][0], p["crop_x"][1] = -shift_x, shift_x
        p["crop_y"][0], p["crop_y"][1] = shift_y, -shift_y
        p["cutout_x"][0], p["cutout_x"][1] = 0, H - cut_x % 2
        p["cutout_y"][0], p["cutout_y"][1] = W - cut_y % 2, 0
        p["flip"][0], p["flip"][1] = 1, 0
        p["angle"][0] = ratio_rotate / 180 * math.pi * 0.999
        p["scale_x"][1], p["scale_y"][1] = 1.0 / ratio_scale, ratio_scale * 0.999
    return p


def main():
    g = torch.Generator().manual_seed(20240611)
    T = {}
    for case, (B, C, H, W) in {"small": (4, 3, 12, 10), "big": (1, 3, 32, 32)}.items():
        x = torch.randn(B, C, H, W, generator=g)
        p = draws(B, H, W, g)
        T[case + ".x"] = x
        for k, v in p.items():
            T[case + ".p." + k] = v
        dout = torch.randn(B, C, H, W, generator=g)
        if case == "small":
            T[case + ".dout"] = dout
        for name, fn in OPS.items():
            if case == "big" and name not in ("scale", "rotate"):
                continue
            xi = x.clone().requires_grad_(True)
            y = fn(xi, p)
            T[case + "." + name + ".out"] = y
            if case == "small":
                (dx,) = torch.autograd.grad(y, xi, dout)
                T[case + "." + name + ".dx"] = dx
    write_fixture(OUT, T)
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
