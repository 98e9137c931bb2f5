"""Loads a folder of MTT replay buffers the way the official distill.py does and checks
their layout against the PyTorch model (run by hand):
    /usr/bin/python3 tests/scripts/check_mtt_buffer.py BUFFER_DIR ARCH [CHANNELS CLASSES SIZE]
BUFFER_DIR is {buffer_path}/{dataset}[_NO_ZCA]/{model}; ARCH a torch_models variant."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import get_network  # noqa: E402

d, arch = sys.argv[1], sys.argv[2]
ch, K, im = (int(v) for v in sys.argv[3:6]) if len(sys.argv) > 5 else (3, 10, 32)
net = get_network(arch, ch, K, (im, im))
shapes = [tuple(p.shape) for p in net.parameters()]
n, total = 0, 0
while os.path.exists(os.path.join(d, f"replay_buffer_{n}.pt")):
    buf = torch.load(os.path.join(d, f"replay_buffer_{n}.pt"))
    assert isinstance(buf, list) and buf, "a list of trajectories"
    for traj in buf:
        assert isinstance(traj, list) and traj, "a trajectory is a list of snapshots"
        for snap in traj:
            assert [tuple(p.shape) for p in snap] == shapes, "snapshot shapes differ from the model's"
            assert all(p.dtype == torch.float32 for p in snap)
        # what distill.py does with it
        flat = torch.cat([p.data.reshape(-1) for p in traj[0]], 0)
        assert flat.numel() == sum(p.numel() for p in net.parameters())
    print(f"replay_buffer_{n}.pt: {len(buf)} experts x {len(buf[0])} snapshots, {len(shapes)} tensors each")
    total += len(buf)
    n += 1
assert n > 0, "no replay_buffer_0.pt"
print(f"ok: {n} files, {total} experts of {arch}")
