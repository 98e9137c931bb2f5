"""Step-fidelity references for DC, DSA and MTT (tests/test_distill_so.c), from the PyTorch
ports in dd_reference.py. Run by hand with a python that has torch:
    /usr/bin/python3 tests/scripts/gen_distill_so_fixtures.py
It writes tests/fixtures/distill/so_steps.bin (BEARDFIX format, see fixture.py).

Small settings that exercise every path of the official algorithms: a ConvNet of width
8 on 8x8 images with 3 classes (the official loops do not depend on the resolution or
the class count), 2 images per class, 6 real images per class. Every random input is
drawn here and stored: the network's weights, the real batches, the synthetic set, each
class's DSA draw (op code as src/data/dsa.h numbers them: color 0, crop 1, cutout 2,
flip 3, scale 4, rotate 5, none 6), the inner loop's per-sample draw, MTT's minibatch
indices per unrolled step (the official chunking of torch.randperm, last chunk first) and
their draws.

Cases:
  dc     DC (noise init) with each distance (ours, mse, cos); then one inner epoch
  dcbn   DC on ConvNetBN: running statistics from 16 real images per class in training
         mode, matching in eval mode, inner epoch in training mode
  dsa    DSA (real init): siamese draws per class (rotate, color, cutout), inner epoch with
         per-sample scale; dsa2 the same inputs with crop, flip, scale
  mtt    two MTT iterations (momentum buffers carry over) of 5 unrolled steps, batch_syn 4,
         every DSA op with align_corners=True
  dsa_ac MTT's scale and rotate (align_corners=True) alone: output and input gradient
  buffer tests/fixtures/distill/buffers/replay_buffer_0.pt, a small replay buffer in
         buffer.py's layout as torch.save writes it, with its checksum and one snapshot
"""
import copy
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dd_reference as dd  # noqa: E402
import gen_dsa_fixtures as dsa  # noqa: E402
from fixture import write_fixture  # noqa: E402
from torch_models import ConvNet  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "distill", "so_steps.bin")
OPS = ["color", "crop", "cutout", "flip", "scale", "rotate", "none"]
K, IPC, NREAL, RES, WIDTH = 3, 2, 6, 8, 8

torch.manual_seed(777)
g = torch.Generator().manual_seed(778)
T = {}


def net_for(norm="instancenorm"):
    net = ConvNet(3, K, net_width=WIDTH, net_norm=norm, im_size=(RES, RES))
    with torch.no_grad():
        for n, p in net.named_parameters():
            if p.dim() == 1 and "features" in n:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return net


def put_sd(prefix, net):
    for k, v in net.state_dict().items():
        if v.dtype.is_floating_point:
            T[f"{prefix}.{k}"] = v.clone()  # a copy: the state_dict's tensors are the live ones


def put_draw(prefix, op, p):
    T[prefix + ".op"] = torch.tensor([float(OPS.index(op))])
    for k, v in p.items():
        T[prefix + ".p." + k] = v


def images(n):
    return torch.randn(n, 3, RES, RES, generator=g)


labels = torch.arange(K).repeat_interleave(IPC)

# ---------------------------------------------------------------------------- DC
net0 = net_for()
real = [images(NREAL) * 0.8 + 0.1 * c for c in range(K)]
syn = images(K * IPC)
put_sd("dc.sd", net0)
T["real"], T["dc.syn"] = torch.cat(real), syn  # the real batches of every DC/DSA case
for metric in ("ours", "mse", "cos"):
    net = copy.deepcopy(net0)
    loss, grad, new, _ = dd.dc_outer_step(net, real, syn, IPC, metric, 0.1)
    T[f"dc.{metric}.loss"], T[f"dc.{metric}.grad"], T[f"dc.{metric}.after"] = loss.reshape(1), grad, new
    if metric == "ours":
        dd.dc_inner_epoch(net, new, labels, 0.01)
        put_sd("dc.inner.sd", net)

# ---------------------------------------------------------------------------- DC, BatchNorm
net0 = net_for("batchnorm")
bn_real = torch.cat([images(16) * 0.8 + 0.1 * c for c in range(K)])
put_sd("dcbn.sd", net0)
T["dcbn.syn"], T["dcbn.bn_real"] = syn, bn_real
net = copy.deepcopy(net0)
loss, grad, new, _ = dd.dc_outer_step(net, real, syn, IPC, "ours", 0.1, bn_real=bn_real)
T["dcbn.ours.loss"], T["dcbn.ours.grad"], T["dcbn.ours.after"] = loss.reshape(1), grad, new
put_sd("dcbn.rs", net)  # running statistics after the training-mode pass
dd.dc_inner_epoch(net, new, labels, 0.01)
put_sd("dcbn.inner.sd", net)

# ---------------------------------------------------------------------------- DSA
net0 = net_for()
syn_real = torch.cat([r[:IPC] for r in real])  # DSA starts from real images
put_sd("dsa.sd", net0)
T["dsa.syn"] = syn_real
for case, ops in (("dsa", ["rotate", "color", "cutout"]), ("dsa2", ["crop", "flip", "scale"])):
    draws = []
    for c, op in enumerate(ops):
        p = dsa.draws(1, RES, RES, g)
        draws.append((op, p))
        put_draw(f"{case}.draw{c}", op, p)
    net = copy.deepcopy(net0)
    loss, grad, new, _ = dd.dc_outer_step(net, real, syn_real, IPC, "ours", 0.1, draws=draws)
    T[f"{case}.ours.loss"], T[f"{case}.ours.grad"], T[f"{case}.ours.after"] = loss.reshape(1), grad, new
    if case == "dsa":
        p = dsa.draws(K * IPC, RES, RES, g)
        put_draw("dsa.inner", "scale", p)
        dd.dc_inner_epoch(net, new, labels, 0.01, draw=("scale", p))
        put_sd("dsa.inner.sd", net)

# ---------------------------------------------------------------------------- MTT
net = net_for()
start = dd.flat_params(net)
target = start + 0.05 * torch.randn(start.shape, generator=g)
syn = images(K * IPC)
put_sd("mtt.sd", net)
T["mtt.start"], T["mtt.target"], T["mtt.syn"] = start, target, syn
syn_lr, img_buf, lr_buf = 0.01, None, None
chunks = []
for it in range(2):
    steps = []
    for k in range(5):
        if not chunks:
            perm = torch.randperm(K * IPC, generator=g)
            chunks = list(torch.split(perm, 4))
        idx = chunks.pop()
        op = OPS[(it * 5 + k) % 6]
        p = dsa.draws(len(idx), RES, RES, g)
        steps.append((idx, op, p))
        T[f"mtt.it{it}.step{k}.idx"] = idx.float()
        put_draw(f"mtt.it{it}.step{k}", op, p)
    loss, g_img, g_lr, syn, syn_lr_t, img_buf, lr_buf = dd.mtt_iteration(
        net, syn, labels, syn_lr, start, target, steps, 100.0, 1e-5, img_buf, lr_buf)
    syn_lr = float(syn_lr_t)
    T[f"mtt.it{it}.loss"], T[f"mtt.it{it}.grad"], T[f"mtt.it{it}.grad_lr"] = loss.reshape(1), g_img, g_lr.reshape(1)
    T[f"mtt.it{it}.after"], T[f"mtt.it{it}.lr_after"] = syn, syn_lr_t.reshape(1)

# ---------------------------------------------------------------------------- MTT's DSA
# scale and rotate with align_corners=True on a non-square batch: output and input gradient
x = torch.randn(4, 3, 12, 10, generator=g)
p = dsa.draws(4, 12, 10, g)
T["dsa_ac.x"] = x
put_draw("dsa_ac", "scale", p)
dout = torch.randn(4, 3, 12, 10, generator=g)
T["dsa_ac.dout"] = dout
for op in ("scale", "rotate"):
    xi = x.clone().requires_grad_(True)
    y = dd.dsa_apply(xi, op, p, align_corners=True)
    T[f"dsa_ac.{op}.out"] = y
    T[f"dsa_ac.{op}.dx"] = torch.autograd.grad(y, xi, dout)[0]

# ---------------------------------------------------------------------------- replay buffer
# buffer.py's layout written by torch.save: 2 experts x 3 per-epoch snapshots of the
# width-8 ConvNet's parameters (the values: an expert's start plus epoch-dependent noise)
BUF = os.path.join(os.path.dirname(OUT), "buffers", "replay_buffer_0.pt")
os.makedirs(os.path.dirname(BUF), exist_ok=True)
ref = net_for()
trajectories = []
for x in range(2):
    traj = []
    for t in range(3):
        traj.append([(p.detach() + 0.01 * (x + 1) * t * torch.randn(p.shape, generator=g)).clone()
                     for p in ref.parameters()])
    trajectories.append(traj)
torch.save(trajectories, BUF)
T["buffer.sum"] = torch.tensor([float(sum(p.double().sum() for tr in trajectories for sn in tr for p in sn))])
T["buffer.e1t2"] = torch.cat([p.reshape(-1) for p in trajectories[1][2]])

os.makedirs(os.path.dirname(OUT), exist_ok=True)
write_fixture(OUT, T)
print("wrote", OUT, os.path.getsize(OUT), "bytes,", len(T), "tensors")
