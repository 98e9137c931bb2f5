"""Reference values for the transfer attacks' operators (run by hand):

    python tests/scripts/gen_transfer_fixtures.py tests/fixtures/attacks/transfer_ops.bin

- input diversity (torchattacks DIFGSM.input_diversity): F.interpolate(bilinear,
  align_corners=False) to rnd x rnd for rnd = 28..31, then F.pad to 32 x 32 with top
  (32 - rnd) // 2 and left 32 - rnd - 1, and the gradient of sum(out * gout) w.r.t. x;
- TI-FGSM's kernels (torchattacks TIFGSM.gkern / lkern / ukern, 15 x 15, nsig 3, float32)
  and its depthwise convolution F.conv2d(g, kernel, padding="same", groups=3).
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torchattacks import TIFGSM

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from fixture import write_fixture  # noqa: E402

torch.manual_seed(0)
x = torch.rand(3, 32, 32)
gout = torch.randn(3, 32, 32)
t = {"x": x, "gout": gout}
for rnd in range(28, 32):
    xi = x[None].clone().requires_grad_(True)
    top, left = (32 - rnd) // 2, 32 - rnd - 1
    r = F.interpolate(xi, size=[rnd, rnd], mode="bilinear", align_corners=False)
    out = F.pad(r, [left, 32 - rnd - left, top, 32 - rnd - top], value=0)
    (out * gout[None]).sum().backward()
    t[f"di_out_{rnd}"] = out[0]
    t[f"di_gin_{rnd}"] = xi.grad[0]
t["ti_gaussian_15"] = TIFGSM.gkern(None, 15, 3).astype(np.float32)
t["ti_linear_15"] = TIFGSM.lkern(None, 15).astype(np.float32)
t["ti_uniform_15"] = TIFGSM.ukern(None, 15).astype(np.float32)
g = torch.randn(3, 32, 32)
k = torch.from_numpy(np.expand_dims(np.stack([t["ti_gaussian_15"]] * 3), 1))
t["ti_in"] = g
t["ti_conv"] = F.conv2d(g[None], k, stride=1, padding="same", groups=3)[0]
write_fixture(sys.argv[1], t)
print("wrote", sys.argv[1])
