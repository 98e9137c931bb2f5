"""PyTorch ports of one iteration of DC, DSA and MTT, written from the official code as the
specification (VICO-UoE/DatasetCondensation main.py and utils.py; GeorgeCazenavette/
mtt-distillation distill.py, buffer.py and utils.py), with every random draw made an
explicit input so that beard's C implementation can be run on the same numbers.
Used by gen_distill_so_fixtures.py; read by nothing in the suite.

DC / DSA, one outer step (main.py, "update synthetic data"):
  for each class c: gw_real = grad of CE(net(real_c)) w.r.t. the parameters, detached;
  gw_syn = the same for the class's synthetic images, with the graph kept; the loss is
  sum_c match_loss(gw_syn, gw_real); one SGD step (lr_img, momentum 0.5) on image_syn.
  DSA augments real_c and syn_c with the same draw (the official code passes one seed to
  both calls, so every sample of both batches gets the first sample's parameters).
  BatchNorm networks first run 16 real images per class through the net in training mode
  (running statistics) and then match in eval mode.
  The inner loop: epochs of SGD (lr_net, no momentum) on the synthetic set, DSA with
  per-sample parameters when DSA is on, BatchNorm in training mode.

MTT, one iteration (distill.py): a student starts from an expert's epoch `start`; syn_steps
SGD steps theta <- theta - syn_lr * grad CE(theta; DSA(x_batch)) on minibatches of the
synthetic set (chunks of a permutation, taken from its end: indices_chunks.pop()); the
loss ||theta_N - theta_target||^2 / ||theta_start - theta_target||^2 (both divided by the
parameter count first, as the code does); SGD with momentum 0.5 on the images (lr_img) and
on syn_lr (lr_lr). MTT's DSA calls F.affine_grid / F.grid_sample with align_corners=True.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_dsa_fixtures as dsa  # noqa: E402


def _affine(x, theta_rows, align_corners):
    theta = torch.tensor(theta_rows, dtype=x.dtype)
    grid = F.affine_grid(theta, x.shape, align_corners=align_corners)
    return F.grid_sample(x, grid, align_corners=align_corners)


def dsa_apply(x, op, p, align_corners=False):
    """DC's DiffAugment op `op` with the explicit per-sample draws p (dict of (B,) tensors,
    as gen_dsa_fixtures.draws makes them); align_corners as MTT (True) or DC (False)"""
    if op == "none":
        return x
    if op in ("scale", "rotate"):
        B = x.shape[0]
        if op == "scale":
            rows = [[[p["scale_x"][i], 0, 0], [0, p["scale_y"][i], 0]] for i in range(B)]
        else:
            t = p["angle"]
            rows = [[[torch.cos(t[i]), torch.sin(-t[i]), 0], [torch.sin(t[i]), torch.cos(t[i]), 0]] for i in range(B)]
        return _affine(x, rows, align_corners).contiguous()
    return dsa.OPS[op](x, p).contiguous()  # DiffAugment ends with x.contiguous()


def siamese(p, B):
    """every sample takes sample 0's parameters (DC's batch mode)"""
    return {k: v[:1].expand(B).clone() for k, v in p.items()}


# ----------------------------------------------------------------------------
# DC's match_loss


def distance_wb(gwr, gws):
    shape = gwr.shape
    if len(shape) == 4:
        gwr, gws = gwr.reshape(shape[0], -1), gws.reshape(shape[0], -1)
    elif len(shape) == 3:
        gwr, gws = gwr.reshape(shape[0], -1), gws.reshape(shape[0], -1)
    elif len(shape) == 1:
        return torch.tensor(0.0, dtype=gwr.dtype)
    return torch.sum(1 - torch.sum(gwr * gws, dim=-1) / (torch.norm(gwr, dim=-1) * torch.norm(gws, dim=-1) + 0.000001))


def match_loss(gw_syn, gw_real, metric):
    if metric == "ours":
        return sum(distance_wb(r, s) for r, s in zip(gw_real, gw_syn))
    r = torch.cat([g.reshape(-1) for g in gw_real])
    s = torch.cat([g.reshape(-1) for g in gw_syn])
    if metric == "mse":
        return torch.sum((s - r) ** 2)
    if metric == "cos":
        return 1 - torch.sum(r * s, dim=-1) / (torch.norm(r, dim=-1) * torch.norm(s, dim=-1) + 0.000001)
    raise ValueError(metric)


def has_bn(net):
    return any("BatchNorm" in m._get_name() for m in net.modules())


def dc_outer_step(net, real, image_syn, ipc, metric, lr_img, mom_buf=None, draws=None, bn_real=None):
    """One outer step of DC/DSA. real: list per class of (n, C, H, W); draws: list per class
    of (op, p) applied siamese to real and synthetic (None: DC); bn_real: the 16-per-class
    batch for BatchNorm's running statistics. Returns loss, grad, new image_syn, new
    momentum buffer (torch.optim.SGD's: buf = grad at the first step)."""
    params = list(net.parameters())
    if has_bn(net):
        net.train()
        net(bn_real)
        for m in net.modules():
            if "BatchNorm" in m._get_name():
                m.eval()
    image_syn = image_syn.detach().clone().requires_grad_(True)
    loss = torch.tensor(0.0)
    for c, img_real in enumerate(real):
        img_syn = image_syn[c * ipc:(c + 1) * ipc]
        lab_real = torch.full((img_real.shape[0],), c, dtype=torch.long)
        lab_syn = torch.full((ipc,), c, dtype=torch.long)
        if draws is not None:
            op, p = draws[c]
            img_real = dsa_apply(img_real, op, siamese(p, img_real.shape[0]))
            img_syn = dsa_apply(img_syn, op, siamese(p, ipc))
        gw_real = torch.autograd.grad(F.cross_entropy(net(img_real), lab_real), params)
        gw_real = [g.detach().clone() for g in gw_real]
        gw_syn = torch.autograd.grad(F.cross_entropy(net(img_syn), lab_syn), params, create_graph=True)
        loss = loss + match_loss(gw_syn, gw_real, metric)
    (grad,) = torch.autograd.grad(loss, image_syn)
    buf = grad.clone() if mom_buf is None else 0.5 * mom_buf + grad
    new = image_syn.detach() - lr_img * buf
    return loss.detach(), grad, new, buf


def dc_inner_epoch(net, image_syn, label_syn, lr_net, batch_train=256, draw=None):
    """one epoch of DC's epoch('train', ...) on the synthetic set, in the given order (the
    set fits one batch of 256, so the DataLoader's shuffle only reorders a sum); draw:
    (op, per-sample p) for DSA's inner loop, or None"""
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=lr_net)
    n = image_syn.shape[0]
    for s in range(0, n, batch_train):
        img, lab = image_syn[s:s + batch_train], label_syn[s:s + batch_train]
        if draw is not None:
            img = dsa_apply(img, draw[0], draw[1])
        loss = F.cross_entropy(net(img), lab)
        opt.zero_grad()
        loss.backward()
        opt.step()


# ----------------------------------------------------------------------------
# MTT


def flat_params(net):
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


def functional(net, flat):
    """net's forward with its parameters taken from one flat vector (ReparamModule)"""
    names, shapes = zip(*[(n, p.shape) for n, p in net.named_parameters()])
    parts, off = {}, 0
    for n, s in zip(names, shapes):
        k = 1
        for d in s:
            k *= d
        parts[n] = flat[off:off + k].view(s)
        off += k
    from torch.nn.utils import stateless
    return lambda x: stateless.functional_call(net, parts, (x,))


def mtt_iteration(net, image_syn, label_syn, syn_lr, start, target, steps, lr_img, lr_lr, img_buf=None,
                  lr_buf=None):
    """steps: list of (indices, op, per-sample p) per unrolled step. Returns loss, grad of
    the images, grad of syn_lr, the images and syn_lr after the SGD steps, and the buffers."""
    net.train()
    image_syn = image_syn.detach().clone().requires_grad_(True)
    syn_lr = torch.tensor(float(syn_lr)).requires_grad_(True)
    student = [start.clone().requires_grad_(True)]
    for idx, op, p in steps:
        x = image_syn[idx]
        y = label_syn[idx]
        x = dsa_apply(x, op, p, align_corners=True)
        out = functional(net, student[-1])(x)
        ce = F.cross_entropy(out, y)
        grad = torch.autograd.grad(ce, student[-1], create_graph=True)[0]
        student.append(student[-1] - syn_lr * grad)
    num_params = start.numel()
    param_loss = F.mse_loss(student[-1], target, reduction="sum") / num_params
    param_dist = F.mse_loss(start, target, reduction="sum") / num_params
    loss = param_loss / param_dist
    g_img, g_lr = torch.autograd.grad(loss, [image_syn, syn_lr])
    bi = g_img.clone() if img_buf is None else 0.5 * img_buf + g_img
    bl = g_lr.clone() if lr_buf is None else 0.5 * lr_buf + g_lr
    return (loss.detach(), g_img, g_lr, image_syn.detach() - lr_img * bi, syn_lr.detach() - lr_lr * bl, bi, bl)
