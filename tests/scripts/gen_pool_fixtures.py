"""Small distilled-set files in every layout beard's pool loader reads, for tests/test_pool.c.
Run by hand with a python that has torch and PIL:
    /usr/bin/python3 tests/scripts/gen_pool_fixtures.py
It writes tests/fixtures/train/pool/ (4x4 RGB "images", 10 classes, CIFAR-10's mean/std):
  res_tiny.pt          DC/DSA/DM layout {'data': [[x0, y0], [x1, y1]], 'accs_all_exps': ...}
  res_tiny_legacy.pt   the same saved with torch < 1.6's format
  res_soft.pt          one experiment with a (n, 10) soft-label matrix
  mtt_tiny/            images_best.pt, labels_best.pt, lr_best.pt (0-dim)
  idm_tiny.pkl         pickle.dump((images, labels)) as IDM/BACON write it
  pair_dict.pt         {'images': x, 'labels': y}
  bad_labels.pt        a label outside [0, 10)
  bad_shape.pt         3-d images
  folder/              class_000..class_002 with PNG (RGB, RGBA, gray, palette) and JPEG files
  expected.bin         BEARDFIX: the tensors above, the folder's images as torchvision's
                       ToTensor + Normalize computes them from PIL's decoding, and
                       number_sign_augment (BEARD eva_utils.py) of a (2, 3, 6, 6) batch
"""
import os
import pickle
import shutil
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import write_fixture  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "train", "pool")
MEAN = [0.4914, 0.4822, 0.4465]
STD = [0.2023, 0.1994, 0.2010]


def number_sign_augment(image_syn, label_syn):  # BEARD Code/eva_utils.py, verbatim in substance
    half_length = image_syn.shape[2] // 2
    a, b, c, d = image_syn[:, :, :half_length, :half_length].clone(), image_syn[:, :, half_length:, :half_length].clone(), \
        image_syn[:, :, :half_length, half_length:].clone(), image_syn[:, :, half_length:, half_length:].clone()
    a, b, c, d = F.upsample(a, scale_factor=2, mode='bilinear'), F.upsample(b, scale_factor=2, mode='bilinear'), \
        F.upsample(c, scale_factor=2, mode='bilinear'), F.upsample(d, scale_factor=2, mode='bilinear')
    return torch.concat([a, b, c, d], dim=0), label_syn.repeat(4)


def to_tensor_normalize(img):
    a = np.asarray(img.convert('RGB'), dtype=np.uint8)
    t = torch.from_numpy(a.copy()).permute(2, 0, 1).float().div(255)  # ToTensor
    for c in range(3):
        t[c] = (t[c] - MEAN[c]) / STD[c]  # Normalize (float32, as torchvision computes it)
    return t


def main():
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    g = torch.Generator().manual_seed(5)
    T = {}
    x0, x1 = torch.randn(6, 3, 4, 4, generator=g), torch.randn(6, 3, 4, 4, generator=g)
    y0, y1 = torch.tensor([0, 1, 2, 3, 4, 9]), torch.tensor([9, 8, 7, 6, 5, 0])
    torch.save({'data': [[x0, y0], [x1, y1]], 'accs_all_exps': {'ConvNet': [0.1, 0.2]}}, OUT + "/res_tiny.pt")
    torch.save({'data': [[x0, y0], [x1, y1]]}, OUT + "/res_tiny_legacy.pt", _use_new_zipfile_serialization=False)
    soft = torch.softmax(torch.randn(6, 10, generator=g), 1)
    torch.save({'data': [[x1, soft]]}, OUT + "/res_soft.pt")
    os.makedirs(OUT + "/mtt_tiny")
    torch.save(x0.clone().requires_grad_(True), OUT + "/mtt_tiny/images_best.pt")
    torch.save(y1, OUT + "/mtt_tiny/labels_best.pt")
    torch.save(torch.tensor(0.0123), OUT + "/mtt_tiny/lr_best.pt")
    with open(OUT + "/idm_tiny.pkl", "wb") as f:
        pickle.dump((x1, y0), f)
    torch.save({'images': x0.double(), 'labels': y0.int()}, OUT + "/pair_dict.pt")
    torch.save({'data': [[x0, torch.tensor([0, 1, 2, 3, 10, 0])]]}, OUT + "/bad_labels.pt")
    torch.save({'data': [[x0[:, 0], y0]]}, OUT + "/bad_shape.pt")
    T.update({"x0": x0, "x1": x1, "y0": y0, "y1": y1, "soft": soft})

    # image folder: sorted class folders are classes 0, 1, 2
    rs = np.random.RandomState(3)
    files = [("class_000", "a.png", "RGB"), ("class_000", "b.jpg", "RGB"), ("class_001", "c.png", "RGBA"),
             ("class_001", "d.png", "L"), ("class_002", "e.png", "P"), ("class_002", "f.jpeg", "L"),
             ("class_002", "notes.txt", None)]
    expected, labels = [], []
    for cls, name, mode in files:
        os.makedirs(os.path.join(OUT, "folder", cls), exist_ok=True)
        path = os.path.join(OUT, "folder", cls, name)
        if mode is None:
            open(path, "w").write("not an image\n")
            continue
        px = rs.randint(0, 256, size=(4, 4, 4)).astype(np.uint8)
        if mode == "RGB":
            img = Image.fromarray(px[:, :, :3], "RGB")
        elif mode == "RGBA":
            img = Image.fromarray(px, "RGBA")
        elif mode == "L":
            img = Image.fromarray(px[:, :, 0], "L")
        else:
            img = Image.fromarray(px[:, :, :3], "RGB").convert("P", palette=Image.ADAPTIVE, colors=8)
        img.save(path, quality=90) if name.endswith(("jpg", "jpeg")) else img.save(path)
        expected.append(to_tensor_normalize(Image.open(path)))
        labels.append(int(cls[-1]))
    T["folder.x"] = torch.stack(expected)
    T["folder.y"] = torch.tensor(labels, dtype=torch.float32)

    u = torch.randn(2, 3, 6, 6, generator=g)
    ux, uy = number_sign_augment(u, torch.tensor([3, 7]))
    T.update({"unpack.x": u, "unpack.out": ux, "unpack.y": uy})
    write_fixture(OUT + "/expected.bin", T)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print("wrote", OUT, total, "bytes")


if __name__ == "__main__":
    main()
