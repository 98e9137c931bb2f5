"""Small dataset files for tests/test_data.c: SVHN's .mat layout and TinyImageNet's JPEGs.
Run by hand with a python that has torch, torchvision, scipy and PIL:
    /usr/bin/python3 tests/scripts/gen_data_fixtures.py
It writes tests/fixtures/data/:
  svhn/train_32x32.mat   5 images, labels 1..10 (10 is the digit 0), as the official files:
                         X uint8 (32, 32, 3, N), y (N, 1) double, MATLAB v5
  svhn/test_32x32.mat    3 images
  tiny/color.JPEG        a 64x64 RGB JPEG
  tiny/gray.JPEG         a 64x64 grayscale JPEG (TinyImageNet has some)
  data_ref.bin           BEARDFIX: torchvision.datasets.SVHN's data and labels for both
                         files (its own code, the md5 check bypassed), and PIL's
                         Image.open(f).convert('RGB') of the two JPEGs, as (3, 64, 64)
"""
import os
import sys

import numpy as np
import scipy.io
import torchvision
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import write_fixture  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "data")


def main():
    rng = np.random.RandomState(11)
    os.makedirs(os.path.join(OUT, "svhn"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "tiny"), exist_ok=True)
    ref = {}
    for split, n, labels in (("train", 5, [1, 10, 3, 10, 9]), ("test", 3, [2, 7, 10])):
        X = rng.randint(0, 256, size=(32, 32, 3, n)).astype(np.uint8)
        y = np.array(labels, dtype=np.float64).reshape(n, 1)
        scipy.io.savemat(os.path.join(OUT, "svhn", "%s_32x32.mat" % split), {"X": X, "y": y}, format="5")
        torchvision.datasets.SVHN._check_integrity = lambda self: True
        ds = torchvision.datasets.SVHN(os.path.join(OUT, "svhn"), split=split, download=False)
        ref["svhn.%s.x" % split] = ds.data.astype(np.float32)  # (n, 3, 32, 32)
        ref["svhn.%s.y" % split] = ds.labels.astype(np.float32)
    # JPEGs: smooth content so that they compress to a few kB
    yy, xx = np.mgrid[0:64, 0:64]
    rgb = np.stack([(xx * 4) % 256, (yy * 4) % 256, ((xx + yy) * 2) % 256], axis=-1).astype(np.uint8)
    rgb = np.clip(rgb.astype(int) + rng.randint(-8, 9, size=rgb.shape), 0, 255).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(os.path.join(OUT, "tiny", "color.JPEG"), quality=90)
    gray = ((xx * 3 + yy * 1) % 256).astype(np.uint8)
    Image.fromarray(gray, "L").save(os.path.join(OUT, "tiny", "gray.JPEG"), quality=90)
    for name in ("color", "gray"):
        im = np.asarray(Image.open(os.path.join(OUT, "tiny", name + ".JPEG")).convert("RGB"))
        ref["tiny.%s" % name] = im.transpose(2, 0, 1).astype(np.float32)
    write_fixture(os.path.join(OUT, "data_ref.bin"), ref)


if __name__ == "__main__":
    main()
