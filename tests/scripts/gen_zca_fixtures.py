"""ZCA whitening references for tests/test_distill_so.c from kornia, as MTT uses it
(kornia.enhance.ZCAWhitening(eps=0.1, compute_inv=True), fitted on [0, 1] pixels).
kornia is not a beard dependency; install MTT's pinned version next to Debian's torch:
    /usr/bin/python3 -m pip install --target DIR kornia==0.6.3 --no-deps
    PYTHONPATH=DIR /usr/bin/python3 tests/scripts/gen_zca_fixtures.py
It writes tests/fixtures/distill/zca.bin: 60 training images of 3x4x4 smooth random
pixels (so that the covariance has a spread of eigenvalues), the fitted mean, transform
and inverse, and 5 held-out images with their whitened and round-trip values."""
import os
import sys

import kornia
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import write_fixture  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "distill", "zca.bin")
g = torch.Generator().manual_seed(99)


def images(n):
    x = torch.rand(n, 3, 2, 2, generator=g)
    x = F.interpolate(x, size=(4, 4), mode="bilinear", align_corners=False)
    return (x + 0.05 * torch.rand(n, 3, 4, 4, generator=g)).clamp(0, 1)


train, test = images(60), images(5)
zca = kornia.enhance.ZCAWhitening(eps=0.1, compute_inv=True)
zca.fit(train)
T = {"train": train, "test": test, "mean": zca.mean_vector.reshape(-1), "T": zca.transform_matrix,
     "T_inv": zca.transform_inv, "test_white": zca(test), "test_back": zca.inverse_transform(zca(test)),
     "kornia_version": torch.tensor([float(x) for x in kornia.__version__.split(".")[:3]])}
os.makedirs(os.path.dirname(OUT), exist_ok=True)
write_fixture(OUT, T)
print("wrote", OUT, os.path.getsize(OUT), "bytes")
