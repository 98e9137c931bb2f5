"""PyTorch logits of BEARD's six model-pool checkpoints on the 761 real CIFAR-10 test images
in ../shared (run by hand: /usr/bin/python3 tests/scripts/gen_model_pool_logits.py [SHARED]).
Writes tests/fixtures/model_pool_logits.bin: "<checkpoint stem>.logits" (761, 10) float32,
computed on the CPU in float32 exactly as BEARD's test loader feeds the model (ToTensor,
Normalize)."""
import glob
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fixture import write_fixture  # noqa: E402
from torch_models import ConvNet  # noqa: E402

shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "shared")
raw = np.fromfile(os.path.join(shared, "data/cifar-10-batches-bin/test_batch.bin"), dtype=np.uint8).reshape(-1, 3073)
x = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy()).float().div(255)
mean = torch.tensor([0.4914, 0.4822, 0.4465]).reshape(1, 3, 1, 1)
std = torch.tensor([0.2023, 0.1994, 0.2010]).reshape(1, 3, 1, 1)
x = (x - mean) / std
out = {}
for path in sorted(glob.glob(os.path.join(shared, "beard/model_pool/*.pth"))):
    net = ConvNet(3, 10)
    net.load_state_dict(torch.load(path, map_location="cpu"))
    net.eval()
    with torch.no_grad():
        logits = torch.cat([net(x[i:i + 256]) for i in range(0, len(x), 256)])
    stem = os.path.splitext(os.path.basename(path))[0]
    out[stem + ".logits"] = logits
    print(stem, "accuracy %.2f" % (100 * (logits.argmax(1) == torch.from_numpy(raw[:, 0].astype(np.int64))).float().mean()))
write_fixture(os.path.join(HERE, "..", "fixtures", "model_pool_logits.bin"), out)
